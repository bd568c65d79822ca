"""Equilibria of the general Arrow-Debreu/Kyle game, in closed form when it exists and numerically.

The reduction
-------------
Take K signals with state distributions ``eta`` (K x N), noise ``sigma`` (N) and prior
``pi0``, and look for equilibria in which the insider's orders under ``s_k`` are
``W_k = Sigma^2 eta' c_k`` for coefficient vectors ``c_k`` (``Sigma = diag(sigma)``). Then
the market maker's statistic ``belief' Sigma^{-2} omega`` is ``c' z`` with ``z = eta omega``
(the order flow priced at each signal's distribution), and an order ``W`` matters to
anybody only through its exposure ``y = eta W`` (what it pays under each signal)::

    z = y + n,   n ~ N(0, G),   G = eta Sigma^2 eta',
    q_l ∝ pi0_l exp(c_l' z - c_l' G c_l / 2),      profit under s_k = (e_k - E q)' y.

(Orders orthogonal to every ``eta_k`` pay nothing and, against such a belief, move no
price, so nothing is lost by the restriction.) Note that the noise covariance of this
exposure game is ``eta Sigma^2 eta'``, with ``Sigma^2`` and not the ``Sigma^{-2}`` of the
paper's information matrix ``L^2``: the insider hides in noisy markets.

The paper's canonical game (i.i.d. unit noise, pseudo-security k paying ``e_k``) is this
game exactly when, on the centred directions ``1^perp``, the noise is isotropic::

    Q G Q = g Q  for a scalar g > 0,   Q = I - 11'/K                           (*)

i.e. the centred distributions ``eta_k - mean(eta)`` form a regular simplex in the
``Sigma^2``-weighted metric. K = 2 always satisfies (*). Under (*) and a uniform prior::

    W*_k = (alpha*(K) / sqrt(g)) Sigma^2 eta' Q e_k,                           (**)

the posterior has Prop. 7.7's law and ``I(K)`` is the efficiency (this is an equilibrium,
the symmetric one; uniqueness is not shown). The paper's eq. (37),
``W*_k = alpha* eta' L^{-1} Q e_k`` with ``L^2 = eta Sigma^{-2} eta'``, equals (**) iff
``Sigma^2 eta' Q / sqrt(g) = eta' L^{-1} Q``. With constant ``sigma`` this means
``eta eta' = a I + b 11'``; with varying ``sigma`` it can also hold, e.g. disjoint supports
with ``sigma`` constant on each support and ``sigma_k |eta_k|`` equal. Otherwise (37) is
generally not an equilibrium: in the tested cases the belief (37) leaves the insider a
portfolio that moves no price but earns ("zero price impact, non-zero payoff", the
situation Theorem 5.4 rules out); where there is no such portfolio the first-order
condition fails, and profit can still be unbounded by pushing the posterior onto one
story. What fails in the paper is Theorem 6.2's isomorphism, the second sentence of
Theorem 6.5 and Corollary 6.3 (the canonical-game statement of Theorem 6.5 is fine): with
``sigma = 1`` (constant ``sigma`` up to a factor ``sigma^2``) the step from (A.10) to (27)
replaces ``L^2 d`` by ``d_hat = L d`` in the payoff, which is only valid for ``L``
proportional to the identity on ``1^perp``; with unequal ``sigma`` (A.10) is already wrong
(the payoff is weighted by ``eta eta'``, not ``eta Sigma^{-2} eta'``; Appendix A.5 assumes
constant ``sigma``).

Without (*) (generic distributions with K >= 3) or with a non-uniform prior the equilibrium
is not symmetric; :func:`solve_equilibrium` finds it numerically. Whitening the noise,
``G = H H'``, with ``c_l = V Lambda^{-1/2} b_l`` the game becomes: type k earns
``(h_k - sum_l E[q_l] h_l)' u`` for a trade ``u`` in R^r (``h_k`` the rows of ``H``),
``q ∝ pi0 exp(B'(u + xi) - |b|^2/2)`` with ``xi ~ N(0, I_r)``, and the first-order
conditions are::

    F_k(B) = H'(e_k - E q) - B E[(diag q - q q')] H b_k = 0,   q evaluated at u = b_k,

``K r`` equations in the ``K r`` entries of ``B`` (one direction, adding a common ``w`` with
``H w`` constant, is a symmetry: it changes no posterior and no net profit; we pin it).
The expectations use a fixed scrambled Sobol' sample (common random numbers) and the
system is solved by scipy's least squares from the symmetric guess; at runtime only the
first-order residual (<= 1e-7) is checked. The paper's Lemma A.1 (global concavity of the
insider's objective) is false as stated: for K = 2 the canonical objective
``J(x) = x E[p_2(x)]`` (exposure ``x Q e_1`` against the belief ``alpha* Q``) is convex
near ``x = -3.7``. Its maximum is still at ``x = alpha*``,
so that ``alpha* Q`` is a best response rests on numerical checks, as does every result
here: brute-force best responses in the original game
(``elecflow.theory.game.best_response``), run in the tests on the test cases.

Library layer: numpy/scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from elecflow.theory.canonical import canonical_moments, equilibrium_alpha, information_efficiency

__all__ = ["Equilibrium", "noise_gram", "simplex_scale", "symmetric_equilibrium", "solve_equilibrium"]


@dataclass(frozen=True)
class Equilibrium:
    """An equilibrium of the original game in the class ``W*_k = Sigma^2 eta' c_k``.

    Attributes
    ----------
    coefficients : (K, K)
        Column k is ``c_k``.
    demand : (N, K)
        Column k is the insider's orders ``W*(. | s_k)``.
    closed_form : bool
        True for the symmetric solution (**), False for the numerical one.
    alpha : float
        ``alpha*(K)`` of the canonical game (closed form), NaN otherwise.
    mean_posterior : (K, K)
        Row k is ``E[q | s_k]`` (so ``efficiency = diag``).
    mean_covariance : (K, K, K)
        ``[k]`` is ``E[diag q - q q' | s_k]``, the mean posterior covariance operator.
    efficiency, efficiency_error : (K,)
        ``I_k = E[q_k | s_k]`` and its error estimate.
    residual : float
        Largest first-order-condition residual relative to the payoff scale (closed form:
        the error estimate of ``alpha*(K)``).
    method : str
    """

    coefficients: np.ndarray
    demand: np.ndarray
    closed_form: bool
    alpha: float
    mean_posterior: np.ndarray
    mean_covariance: np.ndarray
    efficiency: np.ndarray
    efficiency_error: np.ndarray
    residual: float
    method: str


def noise_gram(eta: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``G = eta Sigma^2 eta'``: the covariance of the noise in ``z = eta omega``."""
    return (eta * (sigma * sigma)[None, :]) @ eta.T


def simplex_scale(G: np.ndarray) -> tuple[float, float]:
    """``(g, defect)`` for ``Q G Q ≈ g Q``: ``g = tr(QGQ)/(K-1)`` and the relative Frobenius
    distance ``|QGQ - gQ| / |QGQ|`` (0 when condition (*) holds exactly)."""
    K = G.shape[0]
    Q = np.eye(K) - 1.0 / K
    qgq = Q @ G @ Q
    g = float(np.trace(qgq)) / (K - 1)
    norm = float(np.linalg.norm(qgq))
    defect = float(np.linalg.norm(qgq - g * Q)) / norm if norm > 0 else math.inf
    return g, defect


def symmetric_equilibrium(eta: np.ndarray, sigma: np.ndarray) -> Equilibrium:
    """The closed form (**) under condition (*) and a uniform prior (not checked here)."""
    K = eta.shape[0]
    g, _ = simplex_scale(noise_gram(eta, sigma))
    a = equilibrium_alpha(K)
    Q = np.eye(K) - 1.0 / K
    C = (a.value / math.sqrt(g)) * Q
    W = (sigma * sigma)[:, None] * (eta.T @ C)
    m = canonical_moments(a.value, K)
    eff = information_efficiency(K)
    mean_post = np.stack([m.mean(k) for k in range(K)])
    mean_cov = np.stack([m.covariance_mean(k) for k in range(K)])
    return Equilibrium(C, W, True, a.value, mean_post, mean_cov, np.full(K, eff.value),
                       np.full(K, eff.abs_error + m.abs_error), a.abs_error,
                       "closed form: alpha*(K)/sqrt(g) Sigma^2 eta' Q")


class _ExposureGame:
    """The whitened exposure game of the module docstring, with a fixed normal sample."""

    def __init__(self, G: np.ndarray, prior: np.ndarray, samples: int, seed: int):
        lam, V = np.linalg.eigh(G)
        keep = lam > lam.max() * 1e-12
        self.V, self.lam = V[:, keep], lam[keep]
        self.H = self.V * np.sqrt(self.lam)[None, :]          # K x r, H H' = G
        self.K, self.r = self.H.shape
        self.log_prior = np.log(prior)
        u = stats.qmc.Sobol(self.r, scramble=True, seed=seed).random(samples)
        self.xi = stats.norm.ppf(u)
        w0, *_ = np.linalg.lstsq(self.H, np.ones(self.K), rcond=None)
        # the gauge direction exists when constant exposure is attainable (always for distributions)
        self.gauge = w0 if np.allclose(self.H @ w0, 1.0, atol=1e-8) else None
        self.scale = float(np.max(np.abs(self.H)))

    def posterior(self, B: np.ndarray, k: int) -> np.ndarray:
        logits = self.log_prior + (B[:, k][None, :] + self.xi) @ B - 0.5 * np.sum(B * B, axis=0)
        return special.softmax(logits, axis=1)

    def foc(self, B: np.ndarray) -> np.ndarray:
        out = np.empty((self.K, self.r))
        eye = np.eye(self.K)
        for k in range(self.K):
            q = self.posterior(B, k)
            y = self.H @ B[:, k]
            cov_y = np.mean(q * (y[None, :] - (q @ y)[:, None]), axis=0)
            out[k] = self.H.T @ (eye[k] - q.mean(axis=0)) - B @ cov_y
        return out.ravel()

    def coefficients(self, B: np.ndarray) -> np.ndarray:
        return self.V @ (B / np.sqrt(self.lam)[:, None])


def _solve_once(eta, sigma, prior, samples, seed, tol):
    K = eta.shape[0]
    G = noise_gram(eta, sigma)
    game = _ExposureGame(G, prior, samples, seed)
    g, _ = simplex_scale(G)
    a = equilibrium_alpha(K).value
    Q = np.eye(K) - 1.0 / K
    B0 = game.H.T @ ((a / math.sqrt(g)) * Q)                     # the symmetric candidate

    def equations(x):
        B = x.reshape(game.r, K)
        f = game.foc(B) / game.scale
        if game.gauge is None:
            return f
        return np.concatenate([f, [game.gauge @ B.sum(axis=1)]])

    res = optimize.least_squares(equations, B0.ravel(), xtol=1e-14, ftol=1e-14, gtol=1e-14, max_nfev=200 * K * game.r)
    B = res.x.reshape(game.r, K)
    residual = float(np.max(np.abs(game.foc(B)))) / game.scale
    if not residual <= tol:
        raise RuntimeError(f"no equilibrium found: first-order residual {residual:.2e} > {tol:.0e} ({res.message})")
    mean_post = np.empty((K, K))
    mean_cov = np.empty((K, K, K))
    for k in range(K):
        q = game.posterior(B, k)
        mean_post[k] = q.mean(axis=0)
        mean_cov[k] = np.diag(mean_post[k]) - q.T @ q / q.shape[0]
    return game.coefficients(B), mean_post, mean_cov, residual


def solve_equilibrium(eta: np.ndarray, sigma: np.ndarray, prior: np.ndarray, samples: int = 2**13,
                      seed: int = 0, tol: float = 1e-7) -> Equilibrium:
    """Numerical equilibrium of the exposure game (any distributions, noise and prior).

    The system is solved twice, on two independently scrambled Sobol' samples of
    ``samples`` points; the returned solution is the first, and the error estimate of the
    efficiencies is three times the difference between the two (their spread is about
    1e-4 or less with the default sample for K <= 5).

    Parameters
    ----------
    eta : (K, N), sigma : (N,), prior : (K,)
        Validated model inputs.
    samples : int
        Size of each scrambled Sobol' normal sample (a power of 2).
    seed : int
        Scrambling seed of the first sample (the second uses ``seed + 1``).
    tol : float
        Largest accepted first-order-condition residual relative to the payoff scale.

    Raises
    ------
    RuntimeError
        If the solver stops with a larger residual.
    """
    C, mean_post, mean_cov, residual = _solve_once(eta, sigma, prior, samples, seed, tol)
    _, check_post, _, residual2 = _solve_once(eta, sigma, prior, samples, seed + 1, tol)
    eff = np.diag(mean_post).copy()
    eff_err = 3.0 * np.abs(eff - np.diag(check_post)) + 1e-12
    W = (sigma * sigma)[:, None] * (eta.T @ C)
    return Equilibrium(C, W, False, math.nan, mean_post, mean_cov, eff, eff_err, max(residual, residual2),
                       f"numerical: exposure-game first-order conditions, 2 x {samples} Sobol' points")
