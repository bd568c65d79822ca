"""``ADKyleModel``: informed trading in Arrow-Debreu securities (Keller and Tseng).

The model in our words
----------------------
There are N states (for options: N possible prices of the underlying) and one
Arrow-Debreu security per state. An insider learns which of K "stories" is true: under
signal ``s_k`` the state distribution is ``eta[k]`` (a row of the K x N payoff matrix).
He sends orders ``W`` to all N markets at once, noise traders add ``eps_i ~ N(0,
sigma_i^2)`` market by market, and a competitive market maker who sees only the total order
flow ``omega`` sets each price to its posterior expected payoff: the state prices are the
posterior mixture ``P(omega) = sum_l q_l(omega) eta[l]`` of the stories (Cor. 7.8), with
``q`` from Bayes' rule on ``omega`` (Theorem 4.1). In equilibrium the market maker's belief
about the insider's orders is right and the insider's orders are optimal against it.

What this class computes, with the paper's numbering:

- ``L`` (Definition 3): the PSD square root of ``eta Sigma^{-2} eta'``, its pseudo-inverse,
  and ``noise_gram`` ``G = eta Sigma^2 eta'``, which is what actually governs the game (see
  :mod:`elecflow.theory.equilibrium`);
- ``demand()``: the equilibrium orders ``W*`` (N x K, column k under ``s_k``), in closed
  form ``(alpha*(K)/sqrt(g)) Sigma^2 eta' Q`` when the centred stories form a regular simplex
  in the ``Sigma^2`` metric (always for K = 2) and the prior is uniform, numerically
  otherwise; ``paper_demand()`` is eq. (37) as printed, ``alpha* eta' L^+ Q`` (with the
  payoff rescaling of Assumption 1 for a non-uniform prior), kept for comparison: it is
  generally not an equilibrium, and equals the closed form iff
  ``Sigma^2 eta' Q / sqrt(g) = eta' L^{-1} Q`` (with constant sigma: ``eta eta' = aI + b11'``;
  with varying sigma it can also hold, e.g. disjoint supports with sigma constant on each
  support and ``sigma_k |eta_k|`` equal);
- ``posterior(omega)``, ``prices(omega)``, ``sample_order_flow(k, n, rng)``: the posterior
  (Prop. 7.7's logistic-normal law in the symmetric case) and the pricing kernel over
  simulated order flow;
- ``realised_impact(omega)`` and ``expected_impact(k)``: the price-impact matrix
  ``Lambda_ij = dP_i / d omega_j`` (Cor. 5.2 at the equilibrium belief). At the equilibrium
  it is ``eta' C(omega) c' eta`` with ``C = diag q - q q'``; in the symmetric case
  ``(alpha*/sqrt(g)) Cov_q(eta(x_i|.), eta(x_j|.))``: proportional to the posterior payoff
  covariance as in eqs. (38)-(39), but with the constant ``alpha*/sqrt(g)`` and no
  ``(1 - 1/K) / sqrt(sigma_i sigma_j)`` (``paper_impact()`` is the printed formula);
- ``cross_impact(phi1, phi2)``: between two derivatives with payoffs ``phi1``, ``phi2``
  over the states (Cor. 7.5);
- ``information_efficiency()``: ``E[q_k | s_k]`` per signal and its prior average (eq. 43).

Library layer: numpy/scipy only.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from elecflow.theory.canonical import Estimate, equilibrium_alpha
from elecflow.theory.equilibrium import Equilibrium, noise_gram, simplex_scale, solve_equilibrium, symmetric_equilibrium
from elecflow.theory.game import posterior_weights

__all__ = ["ADKyleModel", "ROW_SUM_TOL", "SYMMETRY_TOL"]

ROW_SUM_TOL = 1e-9   # |sum(eta[k]) - 1| allowed
SYMMETRY_TOL = 1e-9  # relative defect of Q G Q = g Q below which the closed form is used


def _psd_sqrt(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSD square root and its pseudo-inverse of a symmetric PSD matrix."""
    lam, V = np.linalg.eigh(0.5 * (m + m.T))
    cut = max(lam.max(), 0.0) * m.shape[0] * np.finfo(float).eps * 100
    root = np.sqrt(np.clip(lam, 0.0, None))
    inv = np.where(lam > cut, 1.0 / np.where(root > 0, root, 1.0), 0.0)
    return (V * root) @ V.T, (V * inv) @ V.T



def validated_noise_and_prior(sigma, prior, K: int, N: int, samples: int, n_name: str = "N"):
    """``(sigma, prior)`` as float arrays of lengths ``N`` and ``K`` (a scalar sigma is spread
    over the ``N`` markets; no prior is uniform), with a ValueError naming what is wrong."""
    s = np.asarray(sigma, dtype=np.float64)
    if s.ndim == 0:
        s = np.full(N, float(s))
    if s.shape != (N,):
        raise ValueError(f"sigma must be a scalar or have length {n_name} = {N} (got shape {s.shape})")
    if not (np.all(np.isfinite(s)) and np.all(s > 0.0)):
        raise ValueError("sigma must be finite and > 0")
    if prior is None:
        p = np.full(K, 1.0 / K)
    else:
        p = np.asarray(prior, dtype=np.float64)
        if p.shape != (K,):
            raise ValueError(f"prior must have length K = {K} (got shape {p.shape})")
        if not (np.all(np.isfinite(p)) and np.all(p > 0.0)):
            raise ValueError("prior probabilities must be finite and > 0")
        if abs(p.sum() - 1.0) > 1e-9:
            raise ValueError(f"prior must sum to 1 (got {p.sum()!r})")
    if samples < 2:
        raise ValueError("samples must be >= 2")
    return s, p


class ADKyleModel:
    """The general model of the paper for a payoff matrix, noise intensities and a prior.

    Parameters
    ----------
    eta : array_like, shape (K, N)
        Row k is the state distribution under signal ``s_k`` (>= 0, summing to 1).
        K >= 2 signals, N >= 1 states.
    sigma : float or array_like (N,)
        Noise-trade standard deviation in each market (> 0). Default 1.
    prior : array_like (K,), optional
        The market maker's prior over signals (> 0, summing to 1); uniform if omitted.
    samples : int
        Sobol' sample size for the numerical equilibrium (used only when the closed form
        does not apply).
    seed : int
        Seed of that sample.

    Raises
    ------
    ValueError
        On malformed inputs (shapes, negative or non-normalised rows, sigma <= 0, prior).
    """

    def __init__(self, eta, sigma=1.0, prior=None, *, samples: int = 2**13, seed: int = 0):
        e = np.asarray(eta, dtype=np.float64)
        if e.ndim != 2:
            raise ValueError(f"eta must be a K x N matrix (got {e.ndim} dimensions)")
        K, N = e.shape
        if K < 2 or N < 1:
            raise ValueError(f"eta needs K >= 2 signals and N >= 1 states (got {K} x {N})")
        if not np.all(np.isfinite(e)):
            raise ValueError("eta must be finite")
        if np.any(e < 0.0):
            raise ValueError("eta rows are state distributions: entries must be >= 0")
        sums = e.sum(axis=1)
        if np.any(np.abs(sums - 1.0) > ROW_SUM_TOL):
            raise ValueError(f"every row of eta must sum to 1 within {ROW_SUM_TOL:g} (got {sums.tolist()})")
        if np.all(e == e[0]):
            raise ValueError("all rows of eta are the same distribution: there is nothing to be informed about")
        s, p = validated_noise_and_prior(sigma, prior, K, N, samples, "N")
        self._eta, self._sigma, self._prior = e.copy(), s.copy(), p.copy()
        for a in (self._eta, self._sigma, self._prior):
            a.setflags(write=False)
        self._samples, self._seed = int(samples), int(seed)

    # ----------------------------------------------------------------------- primitives

    @property
    def eta(self) -> np.ndarray:
        return self._eta

    @property
    def sigma(self) -> np.ndarray:
        return self._sigma

    @property
    def prior(self) -> np.ndarray:
        return self._prior

    @property
    def K(self) -> int:
        return self._eta.shape[0]

    @property
    def N(self) -> int:
        return self._eta.shape[1]

    @property
    def uniform_prior(self) -> bool:
        return bool(np.allclose(self._prior, 1.0 / self.K, rtol=0, atol=1e-12))

    @cached_property
    def information_matrix(self) -> np.ndarray:
        """``L^2 = eta Sigma^{-2} eta'`` (Definition 3)."""
        return (self._eta / (self._sigma * self._sigma)[None, :]) @ self._eta.T

    @cached_property
    def _L_pair(self) -> tuple[np.ndarray, np.ndarray]:
        return _psd_sqrt(self.information_matrix)

    @property
    def L(self) -> np.ndarray:
        """The information intensity matrix: PSD square root of ``L^2``."""
        return self._L_pair[0]

    @property
    def L_pinv(self) -> np.ndarray:
        """``L^{-1}``, or the Moore-Penrose pseudo-inverse when the rows of eta are dependent (Remark 6.4)."""
        return self._L_pair[1]

    @property
    def linearly_independent(self) -> bool:
        return int(np.linalg.matrix_rank(self.information_matrix)) == self.K

    @cached_property
    def noise_gram(self) -> np.ndarray:
        """``G = eta Sigma^2 eta'``: covariance of the noise in the payoff-weighted order flow ``eta omega``."""
        return noise_gram(self._eta, self._sigma)

    @cached_property
    def _simplex(self) -> tuple[float, float]:
        return simplex_scale(self.noise_gram)

    @property
    def simplex_defect(self) -> float:
        """Relative distance of ``Q G Q`` from ``g Q``: 0 when the centred stories form a regular
        simplex in the ``Sigma^2`` metric (always for K = 2)."""
        return self._simplex[1]

    @property
    def symmetric(self) -> bool:
        """True when the paper's canonical game applies exactly: ``Q G Q = g Q`` and a uniform prior."""
        return self.simplex_defect <= SYMMETRY_TOL and self.uniform_prior

    @property
    def alpha(self) -> Estimate:
        """``alpha*(K)`` of the canonical game."""
        return equilibrium_alpha(self.K)

    # ---------------------------------------------------------------------- equilibrium

    @cached_property
    def equilibrium(self) -> Equilibrium:
        """The equilibrium: closed form when :attr:`symmetric`, else solved numerically."""
        if self.symmetric:
            return symmetric_equilibrium(self._eta, self._sigma)
        return solve_equilibrium(self._eta, self._sigma, self._prior, self._samples, self._seed)

    def demand(self) -> np.ndarray:
        """Equilibrium informed demand ``W*`` (N x K): column k holds the orders under ``s_k``."""
        return self.equilibrium.demand.copy()

    def paper_demand(self) -> np.ndarray:
        """Eq. (37) as printed: ``alpha*(K) eta' L^+ Q`` (N x K).

        With a non-uniform prior, Assumption 1's rescaling is applied first (payoffs
        ``K pi0_k eta_k``). Not an equilibrium in general: see the module docstring.
        """
        K = self.K
        e = self._eta * (K * self._prior)[:, None]
        L2 = (e / (self._sigma * self._sigma)[None, :]) @ e.T
        _, Lp = _psd_sqrt(L2)
        Q = np.eye(K) - 1.0 / K
        return self.alpha.value * e.T @ Lp @ Q

    def information_efficiency(self) -> tuple[Estimate, np.ndarray]:
        """``(I, I_k)``: the prior-weighted efficiency as an :class:`Estimate` and the per-signal
        ``E[q_k | s_k]``. In the symmetric case every ``I_k`` is ``I(K)``."""
        eq = self.equilibrium
        value = float(self._prior @ eq.efficiency)
        err = float(self._prior @ eq.efficiency_error)
        return Estimate(value, err, eq.method), eq.efficiency.copy()

    # ------------------------------------------------------------------ posterior, prices

    def _check_k(self, k: int) -> int:
        if not 0 <= int(k) < self.K:
            raise ValueError(f"signal index k must be in [0, {self.K}) (got {k})")
        return int(k)

    def posterior(self, omega, belief=None) -> np.ndarray:
        """The market maker's posterior over signals (Theorem 4.1) for order flow ``omega``
        ((N,) or (n, N)); ``belief`` defaults to the equilibrium demand."""
        b = self.equilibrium.demand if belief is None else belief
        return posterior_weights(omega, b, self._sigma, self._prior)

    def prices(self, omega, belief=None) -> np.ndarray:
        """State prices ``P(omega) = eta' q(omega)`` (the pricing kernel, Cor. 7.8)."""
        return self.posterior(omega, belief) @ self._eta

    def expected_prices(self, k: int) -> np.ndarray:
        """``E[P | s_k] = sum_l E[q_l | s_k] eta_l`` (eq. 42)."""
        return self.equilibrium.mean_posterior[self._check_k(k)] @ self._eta

    def sample_order_flow(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` realisations of ``omega = W*(. | s_k) + eps`` (n x N)."""
        k = self._check_k(k)
        if n < 1:
            raise ValueError("n must be >= 1")
        eps = rng.standard_normal((int(n), self.N)) * self._sigma[None, :]
        return self.equilibrium.demand[:, k][None, :] + eps

    # --------------------------------------------------------------------- price impact

    def _belief_scaled(self, belief) -> np.ndarray:
        b = self.equilibrium.demand if belief is None else np.asarray(belief, dtype=np.float64)
        if b.shape != (self.N, self.K):
            raise ValueError(f"belief must be N x K = {self.N} x {self.K}")
        return b / (self._sigma * self._sigma)[:, None]

    def realised_impact(self, omega, belief=None) -> np.ndarray:
        """``Lambda(omega)_ij = dP_i / d omega_j`` (Cor. 5.2): ``eta' C(omega) belief' Sigma^{-2}``.

        ``omega`` of shape (N,) gives (N, N); (n, N) gives (n, N, N) (mind the memory).
        """
        om = np.asarray(omega, dtype=np.float64)
        q = self.posterior(om, belief)
        bs = self._belief_scaled(belief)
        if q.ndim == 1:
            C = np.diag(q) - np.outer(q, q)
            return self._eta.T @ C @ bs.T
        C = np.einsum("nk,kl->nkl", q, np.eye(self.K)) - q[:, :, None] * q[:, None, :]
        return np.einsum("ki,nkl,jl->nij", self._eta, C, bs)

    def expected_impact(self, k: int | None = None) -> np.ndarray:
        """``E[Lambda(omega) | s_k]`` at the equilibrium (N x N); ``k=None`` averages over the prior.

        Exact in the symmetric case (canonical moments by quadrature).
        """
        eq = self.equilibrium
        if k is None:
            C = np.tensordot(self._prior, eq.mean_covariance, axes=1)
        else:
            C = eq.mean_covariance[self._check_k(k)]
        return self._eta.T @ C @ self._belief_scaled(None).T

    def paper_impact(self, k: int | None = None, omega=None) -> np.ndarray:
        """Eqs. (38)/(39) as printed: ``(1 - 1/K) alpha* Cov(eta_i, eta_j | omega) / sqrt(sigma_i sigma_j)``,
        averaged under ``s_k`` (or the prior) when ``omega`` is None, at ``omega`` otherwise.
        The posterior is the equilibrium one."""
        if omega is None:
            eq = self.equilibrium
            C = (np.tensordot(self._prior, eq.mean_covariance, axes=1) if k is None
                 else eq.mean_covariance[self._check_k(k)])
        else:
            q = self.posterior(np.asarray(omega, dtype=np.float64))
            if q.ndim != 1:
                raise ValueError("paper_impact takes one order-flow vector")
            C = np.diag(q) - np.outer(q, q)
        cov = self._eta.T @ C @ self._eta
        scale = (1.0 - 1.0 / self.K) * self.alpha.value / np.sqrt(np.outer(self._sigma, self._sigma))
        return scale * cov

    def cross_impact(self, phi1, phi2, k: int | None = None, omega=None) -> float | np.ndarray:
        """Cross price impact of trading derivative ``phi2`` on the price of ``phi1`` (Cor. 7.5):
        ``sum_ij phi1(x_i) phi2(x_j) Lambda_ij``; expected (under ``s_k`` or the prior) or at
        ``omega``. ``phi`` of shape (N,) gives a number, (N, m) a matrix."""
        f1 = np.asarray(phi1, dtype=np.float64)
        f2 = np.asarray(phi2, dtype=np.float64)
        if f1.shape[0] != self.N or f2.shape[0] != self.N:
            raise ValueError(f"payoffs must have N = {self.N} entries along the first axis")
        lam = self.expected_impact(k) if omega is None else self.realised_impact(omega)
        if lam.ndim != 2:
            raise ValueError("cross_impact takes one order-flow vector")
        out = f1.T @ lam @ f2
        return float(out) if np.ndim(out) == 0 else out

    def __repr__(self) -> str:
        kind = "symmetric" if self.symmetric else "general"
        return f"ADKyleModel(K={self.K}, N={self.N}, {kind})"
