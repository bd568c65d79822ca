"""The original (not canonical) trading game: Bayes' rule, the insider's profit, best responses.

K signals, N markets. Under signal ``s_k`` security ``i`` pays ``eta[k, i]`` in expectation
(for Arrow-Debreu securities ``eta[k]`` is the state distribution; any real payoffs work
here, e.g. the asset values of Kyle's single-asset game). The insider submits orders
``W`` (length N); noise traders add independent ``eps_i ~ N(0, sigma_i^2)``; the market
maker sees ``omega = W + eps``. He believes the insider trades ``belief[:, k]`` under
``s_k`` and has prior ``pi0``, so by Bayes' rule (Theorem 4.1 of the paper)::

    q_k(omega) ∝ pi0_k exp( sum_i belief[i,k] omega_i / sigma_i^2 - 1/2 sum_i belief[i,k]^2 / sigma_i^2 )

and sets zero-profit prices ``P(omega) = eta' q(omega)`` (eq. 3). The insider's expected
profit under ``s_k`` is ``J_k(W) = E[(eta_k - P(W + eps)) . W]`` (eq. 4), and its gradient
follows from ``dq/domega = (diag q - q q') belief' Sigma^{-2}``::

    grad J_k(W) = eta_k - E[P] - Sigma^{-2} belief E[(diag q - q q') eta W].

:func:`insider_profit` averages both over a fixed set of noise draws (common random
numbers: the sample objective is a smooth function of ``W``), and :func:`best_response`
maximises it with BFGS. An equilibrium (Definition 1) is a belief that is its own best
response for every signal; this is how the library's equilibria are verified, in this
game and not in any reduction of it.

Kyle (1985) is the single-market case (N = 1, ``eta[k] = v_k``) with a normal prior on
the value: :func:`kyle_linear_equilibrium` is his closed form and :func:`discretised_kyle`
the Gauss-Hermite discretisation of his prior that puts it inside this finite-signal game.

Library layer: numpy/scipy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

__all__ = [
    "posterior_weights",
    "state_prices",
    "normal_noise",
    "insider_profit",
    "best_response",
    "BestResponse",
    "KyleEquilibrium",
    "kyle_linear_equilibrium",
    "discretised_kyle",
]


def _as_matrix(eta) -> np.ndarray:
    e = np.asarray(eta, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] < 1 or e.shape[1] < 1:
        raise ValueError(f"eta must be a K x N matrix of payoffs (got shape {e.shape})")
    if not np.all(np.isfinite(e)):
        raise ValueError("eta must be finite")
    return e


def _as_sigma(sigma, n: int) -> np.ndarray:
    s = np.asarray(sigma, dtype=np.float64)
    if s.ndim == 0:
        s = np.full(n, float(s))
    if s.shape != (n,):
        raise ValueError(f"sigma must be a scalar or have length {n} (got shape {s.shape})")
    if not (np.all(np.isfinite(s)) and np.all(s > 0.0)):
        raise ValueError("noise intensities sigma must be finite and > 0")
    return s


def _as_prior(prior, k: int) -> np.ndarray:
    if prior is None:
        return np.full(k, 1.0 / k)
    p = np.asarray(prior, dtype=np.float64)
    if p.shape != (k,):
        raise ValueError(f"prior must have length K = {k} (got shape {p.shape})")
    if not (np.all(np.isfinite(p)) and np.all(p > 0.0)):
        raise ValueError("prior probabilities must be finite and > 0")
    if abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(f"prior must sum to 1 (got {p.sum()!r})")
    return p


def _as_belief(belief, n: int, k: int) -> np.ndarray:
    b = np.asarray(belief, dtype=np.float64)
    if b.shape != (n, k):
        raise ValueError(f"belief must be N x K = {n} x {k} (column k = orders under signal k; got {b.shape})")
    if not np.all(np.isfinite(b)):
        raise ValueError("belief must be finite")
    return b


def posterior_weights(omega, belief, sigma, prior=None) -> np.ndarray:
    """The market maker's posterior over signals given order flow (Theorem 4.1).

    Parameters
    ----------
    omega : array_like, shape (N,) or (n, N)
        Order flow, one row per realisation.
    belief : array_like, shape (N, K)
        The market maker's belief: column ``k`` is the insider's order under signal ``k``.
    sigma : float or array_like (N,)
        Noise-trade standard deviations, > 0.
    prior : array_like (K,), optional
        The market maker's prior (uniform when omitted).

    Returns
    -------
    numpy.ndarray
        Shape (K,) or (n, K); rows sum to 1 (computed in log space, so extreme order flow
        gives 0/1 weights, never NaN).
    """
    om = np.asarray(omega, dtype=np.float64)
    single = om.ndim == 1
    om = np.atleast_2d(om)
    n_mk = om.shape[1]
    s = _as_sigma(sigma, n_mk)
    b = np.asarray(belief, dtype=np.float64)
    if b.ndim != 2:
        raise ValueError("belief must be an N x K matrix")
    b = _as_belief(b, n_mk, b.shape[1])
    pi0 = _as_prior(prior, b.shape[1])
    if not np.all(np.isfinite(om)):
        raise ValueError("omega must be finite")
    scaled = b / (s * s)[:, None]
    logits = np.log(pi0)[None, :] + om @ scaled - 0.5 * np.sum(b * scaled, axis=0)[None, :]
    q = special.softmax(logits, axis=1)
    return q[0] if single else q


def state_prices(omega, eta, belief, sigma, prior=None) -> np.ndarray:
    """Zero-profit prices ``P(omega) = eta' q(omega)`` (eq. 3): shape (N,) or (n, N)."""
    e = _as_matrix(eta)
    return posterior_weights(omega, belief, sigma, prior) @ e


def normal_noise(sigma, n: int = 2**14, seed: int = 0) -> np.ndarray:
    """``n`` noise vectors ``eps ~ N(0, diag(sigma^2))`` from a scrambled Sobol' sequence.

    Quasi-random normals make the sample-average profit of :func:`insider_profit` a smooth,
    low-variance function of the orders (common random numbers across the optimiser's
    evaluations); ``n`` should be a power of 2.
    """
    s = np.asarray(sigma, dtype=np.float64)
    if s.ndim != 1 or s.size < 1 or not (np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError("sigma must be a 1-d array of finite values > 0")
    if n < 2:
        raise ValueError("n must be >= 2")
    u = stats.qmc.Sobol(s.size, scramble=True, seed=seed).random(int(n))
    return stats.norm.ppf(u) * s[None, :]


def insider_profit(W, k: int, eta, sigma, belief, prior=None, noise=None) -> tuple[float, np.ndarray]:
    """The insider's expected profit ``J_k(W)`` under signal ``k`` and its gradient.

    The expectation is the average over the rows of ``noise`` (default
    ``normal_noise(sigma)``); pass the same ``noise`` to compare orders with common random
    numbers.

    Returns
    -------
    (float, numpy.ndarray)
        ``J_k(W)`` and ``dJ_k/dW`` (length N).
    """
    e = _as_matrix(eta)
    n_sig, n_mk = e.shape
    if not 0 <= k < n_sig:
        raise ValueError(f"k must be in [0, {n_sig}) (got {k})")
    s = _as_sigma(sigma, n_mk)
    b = _as_belief(belief, n_mk, n_sig)
    w = np.asarray(W, dtype=np.float64)
    if w.shape != (n_mk,) or not np.all(np.isfinite(w)):
        raise ValueError(f"W must be a finite vector of length N = {n_mk}")
    eps = normal_noise(s) if noise is None else np.asarray(noise, dtype=np.float64)
    if eps.ndim != 2 or eps.shape[1] != n_mk:
        raise ValueError(f"noise must be an n x N array (N = {n_mk})")
    q = posterior_weights(w[None, :] + eps, b, s, prior)
    price = q @ e
    profit = float(np.mean((e[k][None, :] - price) @ w))
    y = e @ w                                              # the order's payoff under each signal
    cov_y = q * (y[None, :] - (q @ y)[:, None])            # (diag q - q q') y, per draw
    grad = e[k] - price.mean(axis=0) - (b @ cov_y.mean(axis=0)) / (s * s)
    return profit, grad


@dataclass(frozen=True)
class BestResponse:
    """Result of :func:`best_response`: the maximising orders, the profit and gradient there."""

    orders: np.ndarray
    profit: float
    gradient: np.ndarray
    converged: bool
    message: str


class _Diverged(Exception):
    def __init__(self, w):
        self.w = w


def best_response(k: int, eta, sigma, belief, prior=None, noise=None, x0=None, gtol: float = 1e-10,
                  max_iter: int = 1000, max_norm: float = 1e6) -> BestResponse:
    """Brute-force best response of the insider with signal ``k`` to the market maker's belief.

    Maximises the sample-average profit of :func:`insider_profit` over all N orders with
    BFGS from ``x0`` (default: no trade). With common random numbers the maximiser differs
    from the exact one by Monte Carlo error only. If the belief leaves an arbitrage (a
    portfolio that moves no price but earns), the profit is unbounded: the search stops
    once the orders exceed ``max_norm`` and returns that point with ``converged=False``.
    """
    e = _as_matrix(eta)
    s = _as_sigma(sigma, e.shape[1])
    eps = normal_noise(s) if noise is None else np.asarray(noise, dtype=np.float64)
    start = np.zeros(e.shape[1]) if x0 is None else np.asarray(x0, dtype=np.float64)

    def negative(w):
        if not np.all(np.isfinite(w)) or np.linalg.norm(w) > max_norm:
            raise _Diverged(w)
        j, g = insider_profit(w, k, e, s, belief, prior, eps)
        return -j, -g

    try:
        res = optimize.minimize(negative, start, jac=True, method="BFGS",
                                options={"gtol": gtol, "maxiter": max_iter})
    except _Diverged as stop:
        w = stop.w if np.all(np.isfinite(stop.w)) else start
        w = w * min(1.0, max_norm / max(np.linalg.norm(w), 1e-300))
        profit, grad = insider_profit(w, k, e, s, belief, prior, eps)
        return BestResponse(w, profit, grad, False, f"profit unbounded: orders exceeded max_norm = {max_norm:g}")
    profit, grad = insider_profit(res.x, k, e, s, belief, prior, eps)
    return BestResponse(res.x, profit, grad, bool(res.success), str(res.message))


# ---------------------------------------------------------------------------------- Kyle


@dataclass(frozen=True)
class KyleEquilibrium:
    """Kyle's (1985) linear equilibrium: orders ``beta (v - v0)``, price ``v0 + lam omega``.

    ``revealed_fraction`` = Var(P) / Var(v) = 1/2: half of the prior variance is in the price.
    """

    beta: float
    lam: float
    revealed_fraction: float


def kyle_linear_equilibrium(sigma_v: float, sigma_eps: float) -> KyleEquilibrium:
    """``beta = sigma_eps / sigma_v``, ``lambda = sigma_v / (2 sigma_eps)`` (eq. 6 of the paper)."""
    if not (math.isfinite(sigma_v) and math.isfinite(sigma_eps) and sigma_v > 0 and sigma_eps > 0):
        raise ValueError("sigma_v and sigma_eps must be finite and > 0")
    beta = sigma_eps / sigma_v
    lam = sigma_v / (2.0 * sigma_eps)
    # Var(P) = lam^2 (beta^2 sigma_v^2 + sigma_eps^2) = sigma_v^2 / 2
    return KyleEquilibrium(beta, lam, lam * lam * (beta * beta * sigma_v**2 + sigma_eps**2) / sigma_v**2)


def discretised_kyle(v0: float, sigma_v: float, K: int) -> tuple[np.ndarray, np.ndarray]:
    """A K-signal discretisation of the normal prior ``N(v0, sigma_v^2)`` (Remark 3.2).

    Returns ``(values, prior)``: the Gauss-Hermite nodes and weights, which match the first
    2K - 1 moments of the normal exactly. Use ``values[:, None]`` as a one-market ``eta``.
    """
    if K < 2:
        raise ValueError("K must be >= 2")
    if not (math.isfinite(v0) and math.isfinite(sigma_v) and sigma_v > 0):
        raise ValueError("v0 must be finite and sigma_v finite and > 0")
    x, w = np.polynomial.hermite_e.hermegauss(int(K))
    return v0 + sigma_v * x, w / w.sum()
