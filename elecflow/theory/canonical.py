"""The canonical game of "Arrow-Debreu Meets Kyle": the constant alpha*(K) and the efficiency I(K).

In the canonical game the insider has one of K signals, trades K pseudo-securities (the k-th
pays 1 under signal k) against i.i.d. N(0, 1) noise, and the market maker believes that
under signal k he buys ``alpha Q e_k`` with ``Q = I - 11'/K`` (long ``alpha (1 - 1/K)`` of
his own security, short ``alpha/K`` of each other one). Feeding that belief through Bayes'
rule, the market maker's posterior under signal 1 has the logistic-normal law (Lemma A.2,
Prop. 7.7 of the paper)::

    p = softmax(alpha^2 e_1 + Z),   Z ~ N(0, alpha^2 Q),

and ``alpha Q`` is an equilibrium when the insider's first-order condition holds, i.e. when::

    Phi(alpha) = E[(1 - alpha^2 p_1)(1 - p_1)] = 1 - (1 + alpha^2) E[p_1] + alpha^2 E[p_1^2] = 0

(Appendix A.6 with its lost square restored). ``alpha*(K)`` is that root and the information
efficiency of prices is ``I(K) = E[p_1]`` at ``alpha*`` (eq. 43).

How we evaluate the moments
---------------------------
``Z ~ N(0, alpha^2 Q)`` is ``alpha (G - mean(G))`` for i.i.d. standard normals ``G``, and a
softmax ignores a common shift, so ``p = softmax(alpha^2 e_1 + alpha G)``: with
``A = exp(alpha^2 + alpha G_1)`` and the K-1 i.i.d. lognormals ``Y_l = exp(alpha G_l)``,
``p_1 = A / (A + sum_l Y_l)``. Writing ``1/x = int_0^inf e^{-tx} dt`` (and ``1/x^2`` with an
extra ``t``) turns every moment into a one-dimensional integral of products of the lognormal
Laplace transform ``L(s) = E exp(-s e^{alpha G})``, because the sum of independent terms
factorises under ``e^{-t(...)}`` and ``E[Y^j e^{-sY}] = e^{j^2 alpha^2/2} L(s e^{j alpha^2})``::

    E[p_1]     = int e^{3a^2/2} L(t e^{2a^2}) L(t)^{K-1} dt
    E[p_1^2]   = int t e^{4a^2} L(t e^{3a^2}) L(t)^{K-1} dt
    E[p_1 p_2] = int t e^{2a^2} L(t e^{2a^2}) L(t e^{a^2}) L(t)^{K-2} dt   (= E[p_2^2])
    E[p_2]     = int e^{a^2/2} L(t e^{a^2})^2 L(t)^{K-2} dt
    E[p_2 p_3] = int t e^{a^2} L(t e^{a^2})^3 L(t)^{K-3} dt

(``a = alpha``, ``p_2, p_3`` two of the false signals). ``L`` is a Gaussian integral of the
entire function ``exp(-e^x)``, and after ``t = e^u`` every integrand is analytic in a strip
of half-width pi/2 around the real axis with Gaussian or exponential decay, so the plain
trapezoidal rule on uniform grids (in ``u`` and in the normal variable of ``L``) converges
geometrically: the default steps give about 1e-13, and the whole ``Phi`` costs a few
milliseconds for any K (the K-1 lognormals enter only through the power ``L^{K-1}``, so no
Monte Carlo and no Fenton-Wilkinson approximation is needed). The error estimate is the
difference to a run with halved steps and a wider range, plus a rounding allowance; the
identities ``E[p_1] + (K-1) E[p_2] = 1`` and ``E[p_1^2] + (K-1) E[p_1 p_2] = E[p_1]`` are
checked in the tests. Randomised quasi-Monte Carlo (:func:`phi_monte_carlo`) is an
independent check, and for K = 2 the law of the log-odds ``N(alpha^2, 2 alpha^2)`` gives a
one-dimensional quadrature (:func:`binary_phi`) and, through Stein's lemma and the
likelihood-ratio symmetry ``E[g(-Z)] = E[e^{-Z} g(Z)]``, the closed form
``Phi(alpha) = (1 - E[p_1]) (1 - alpha^2 / 2)``: ``alpha*(2) = sqrt(2)`` exactly.

Library layer: numpy/scipy only, no I/O. Results are cached per (alpha, K).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import integrate, optimize, special, stats

__all__ = [
    "Estimate",
    "CanonicalMoments",
    "canonical_moments",
    "phi",
    "equilibrium_alpha",
    "information_efficiency",
    "binary_phi",
    "binary_information_efficiency",
    "phi_monte_carlo",
    "sample_canonical_posterior",
    "ALPHA_MAX",
]

ALPHA_MAX = 8.0  # e^{6 alpha^2} stays far inside float64 up to here; alpha*(10^6) is about 4
_EPS = np.finfo(np.float64).eps
_G_MAX = 9.0  # g beyond 9 carries less than 1e-18 of the normal mass


@dataclass(frozen=True)
class Estimate:
    """A number with its error estimate.

    ``abs_error`` is an estimated bound on ``|value - exact|``: for the quadratures the
    difference between two refinement levels plus a rounding allowance (and, for roots, the
    root-finder's tolerance and the propagated error of ``Phi``); for Monte Carlo three
    standard errors, with the standard error itself in ``stderr``. ``float(estimate)`` is
    ``value``.
    """

    value: float
    abs_error: float
    method: str
    stderr: float | None = None

    def __float__(self) -> float:
        return self.value

    def __format__(self, spec: str) -> str:
        return f"{format(self.value, spec)} +/- {self.abs_error:.1e}"


@dataclass(frozen=True)
class CanonicalMoments:
    """Moments of the posterior ``p`` under signal 1 in the canonical game at one ``alpha``.

    ``p1 = E[p_1]``, ``p11 = E[p_1^2]``, ``p12 = E[p_1 p_l]``, ``p2 = E[p_l]``,
    ``p22 = E[p_l^2]`` and ``p23 = E[p_l p_m]`` for false signals ``l != m`` (NaN when
    K = 2). ``abs_error`` bounds the error of every entry.
    """

    alpha: float
    K: int
    p1: float
    p11: float
    p12: float
    p2: float
    p22: float
    p23: float
    abs_error: float

    def mean(self, k: int = 0) -> np.ndarray:
        """``E[p]`` under the true signal ``k`` (length K)."""
        out = np.full(self.K, self.p2)
        out[k] = self.p1
        return out

    def second_moment(self, k: int = 0) -> np.ndarray:
        """``E[p p']`` under the true signal ``k`` (K x K)."""
        m = np.full((self.K, self.K), self.p23 if self.K > 2 else 0.0)
        np.fill_diagonal(m, self.p22)
        m[k, :] = m[:, k] = self.p12
        m[k, k] = self.p11
        return m

    def covariance_mean(self, k: int = 0) -> np.ndarray:
        """``E[diag(p) - p p']`` under the true signal ``k``: the mean posterior covariance
        operator that drives price impact."""
        return np.diag(self.mean(k)) - self.second_moment(k)


def _check_K(K) -> int:
    if isinstance(K, bool) or not isinstance(K, numbers.Integral):
        raise ValueError(f"K must be an integer number of signals (got {K!r})")
    if K < 2:
        raise ValueError(f"K must be >= 2 (got {K})")
    return int(K)


def _check_alpha(alpha) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a real number (got {alpha!r})") from None
    if not math.isfinite(a) or a < 0.0 or a > ALPHA_MAX:
        raise ValueError(f"alpha must be in [0, {ALPHA_MAX}] (got {alpha!r})")
    return a


def _laplace(log_s: np.ndarray, a: float, hg: float, pad: float = 0.0) -> np.ndarray:
    """``L(s) = E exp(-s e^{a G})`` at ``s = exp(log_s)``, trapezoidal rule in ``g``.

    For large ``s`` the integrand ``phi(g) exp(-s e^{ag})`` sits near
    ``g* = -log(s)/a``, and the moments multiply ``L`` by factors up to ``e^{4 a^2}``, so
    ``L`` is needed to full *relative* accuracy deep in its tail: the grid reaches down
    to where ``phi`` has fallen by ~e^-45 below its value at the lowest ``g*``. (Above, a
    relative error of ``L ~ 1`` is what matters, and ``|g| <= 9`` suffices.)
    """
    top = max(float(np.max(log_s)) / a, 0.0)
    # below g = -38 the normal density underflows to 0 in float64: nothing left to integrate
    g_lo = -min(math.sqrt(top * top + 90.0), 38.0) - pad
    g = np.arange(g_lo, _G_MAX + pad + 0.5 * hg, hg)
    w = np.exp(-0.5 * g * g)
    # the exact weights sum to 1 up to ~1e-30; rounding leaves ~1e-14, which L^{K-1} would
    # multiply by K (1e-11 at K = 1000), so normalise
    w /= math.fsum(w)
    x = log_s[:, None] + a * g[None, :]
    # exp(-e^x) underflows to exactly 0 for x > ~6.6; the clip only avoids overflow warnings
    return np.exp(-np.exp(np.minimum(x, 700.0))) @ w


def _moments_raw(a: float, K: int, level: int) -> tuple[float, ...]:
    """(p1, p11, p12, p2, p23) by the trapezoidal rule; ``level`` 0 = default, 1 = refined."""
    a2 = a * a
    # u = log t. Below u_lo every integrand is ~ e^{u + 1.5 a^2} or smaller (all L ~ 1);
    # above u_hi the Gaussian tail of L(e^u) ~ Phi(-u/a) has killed it. Steps: the integrands
    # are analytic in |Im u| < pi/2 (L's integrand in |Im g| < pi/(2a)), and the trapezoidal
    # error is ~exp(-2 pi d / h) for a strip of half-width d inside those; the integrands
    # decay ever more slowly along the strip's edge as d nears pi/2, so count on d ~ pi/4:
    # h <= 0.1 in u and <= 0.25/a in g (0.25 in a g) give ~1e-20 (h = 0.2 gave 1e-11).
    target = 0.1 / (1 + level)
    pad = 2.0 * level                           # the refined level also widens the g range
    u_lo = -(40.0 + 2.0 * a2) - 10.0 * level
    u_hi = a2 + 10.0 * a + 5.0 + 5.0 * level
    if a2 >= 0.5 * target:
        # a step that divides alpha^2 makes L(t e^{j a^2}) = L0 shifted by j m grid points:
        # one transform on an extended grid instead of four
        m = math.ceil(a2 / target)
        hu = a2 / m
        n = int(math.ceil((u_hi - u_lo) / hu))
        u_ext = u_lo + hu * np.arange(n + 3 * m)
        L_ext = _laplace(u_ext, a, min(0.1, 0.25 / a) / (1 + level), pad)
        L0, L1, L2, L3 = (L_ext[j * m:j * m + n] for j in range(4))
        u = u_ext[:n]
    else:
        hu = target
        hg = min(0.1, 0.25 / a) / (1 + level)
        u = np.arange(u_lo, u_hi, hu)
        L0, L1, L2, L3 = (_laplace(u + j * a2, a, hg, pad) for j in range(4))
    b1 = L0 ** (K - 1)
    b2 = L0 ** (K - 2)
    e1 = np.exp(u + 1.5 * a2)                   # t e^{3a^2/2} dt/du
    p1 = hu * float(np.sum(e1 * L2 * b1))
    p11 = hu * float(np.sum(np.exp(2.0 * u + 4.0 * a2) * L3 * b1))
    p12 = hu * float(np.sum(np.exp(2.0 * u + 2.0 * a2) * L2 * L1 * b2))
    p2 = hu * float(np.sum(np.exp(u + 0.5 * a2) * L1 * L1 * b2))
    p23 = hu * float(np.sum(np.exp(2.0 * u + a2) * L1 ** 3 * L0 ** (K - 3))) if K > 2 else math.nan
    return p1, p11, p12, p2, p23


@lru_cache(maxsize=4096)
def _moments_cached(a: float, K: int, refine: bool) -> CanonicalMoments:
    if a == 0.0:  # no trading: the posterior is the prior
        inv = 1.0 / K
        return CanonicalMoments(0.0, K, inv, inv * inv, inv * inv, inv, inv * inv,
                                inv * inv if K > 2 else math.nan, 0.0)
    m0 = _moments_raw(a, K, 0)
    if refine:
        m1 = _moments_raw(a, K, 1)
        diff = max(abs(x - y) for x, y in zip(m0, m1) if not math.isnan(x))
    else:
        m1, diff = m0, 0.0
    err = diff + 256.0 * _EPS
    return CanonicalMoments(a, K, m1[0], m1[1], m1[2], m1[3], m1[2], m1[4], err)


def canonical_moments(alpha: float, K: int) -> CanonicalMoments:
    """Posterior moments in the canonical game under the belief ``alpha Q`` (signal 1 true).

    Two refinement levels are computed; the refined values are returned with their
    difference (plus rounding) as ``abs_error``.

    Raises
    ------
    ValueError
        If ``K`` is not an integer >= 2 or ``alpha`` is outside ``[0, ALPHA_MAX]``.
    """
    return _moments_cached(_check_alpha(alpha), _check_K(K), True)


def _phi_value(a: float, K: int, refine: bool = False) -> float:
    m = _moments_cached(a, K, refine)
    return 1.0 - (1.0 + a * a) * m.p1 + a * a * m.p11


def phi(alpha: float, K: int) -> Estimate:
    """The equilibrium function ``Phi(alpha) = E[(1 - alpha^2 p_1)(1 - p_1)]``.

    ``Phi(0) = 1 - 1/K > 0``, and ``Phi`` crosses zero once, at ``alpha*(K)``.
    """
    a, K = _check_alpha(alpha), _check_K(K)
    m = _moments_cached(a, K, True)
    value = 1.0 - (1.0 + a * a) * m.p1 + a * a * m.p11
    err = (1.0 + 2.0 * a * a) * m.abs_error
    return Estimate(float(value), float(err), "trapezoidal quadrature of the lognormal Laplace transform")


@lru_cache(maxsize=1024)
def _alpha_cached(K: int) -> Estimate:
    f = lambda a: _phi_value(a, K)  # noqa: E731
    lo, hi = 0.05, 2.0
    while f(hi) > 0.0:  # Phi < 0 beyond alpha*, which grows like sqrt(2 log K)
        lo, hi = hi, hi + 1.0
        if hi > ALPHA_MAX:
            raise ValueError(f"alpha*(K) for K = {K} exceeds ALPHA_MAX = {ALPHA_MAX}")
    xtol = 1e-13
    root = optimize.brentq(f, lo, hi, xtol=xtol, rtol=4 * _EPS, maxiter=200)
    # error: the refined Phi at the root (quadrature error of the default level) over Phi'
    h = 1e-5
    slope = (f(root + h) - f(root - h)) / (2 * h)
    resid = abs(_phi_value(root, K, refine=True))
    err = (resid + (1.0 + 2.0 * root * root) * 256.0 * _EPS) / abs(slope) + xtol
    return Estimate(float(root), float(err), "Brent root of Phi by Laplace-transform quadrature")


def equilibrium_alpha(K: int) -> Estimate:
    """``alpha*(K)``: the scale of informed trading in the canonical game (root of ``Phi``).

    Returns an :class:`Estimate` (``float()`` gives the value). Cached per K.

    Raises
    ------
    ValueError
        If ``K`` is not an integer >= 2.
    """
    return _alpha_cached(_check_K(K))


@lru_cache(maxsize=1024)
def _efficiency_cached(K: int) -> Estimate:
    a = _alpha_cached(K)
    m = _moments_cached(a.value, K, True)
    h = 1e-5
    slope = (_moments_cached(a.value + h, K, False).p1 - _moments_cached(a.value - h, K, False).p1) / (2 * h)
    err = m.abs_error + abs(slope) * a.abs_error
    return Estimate(float(m.p1), float(err), "E[p_1] at alpha*(K) by Laplace-transform quadrature")


def information_efficiency(K: int) -> Estimate:
    """``I(K) = E[p_1]`` at ``alpha*(K)``: the mean posterior weight on the true signal (eq. 43).

    ``1/K`` is no learning, 1 full revelation. Cached per K.
    """
    return _efficiency_cached(_check_K(K))


# ------------------------------------------------------------------------- K = 2 reference


def _binary_expect(f, alpha: float) -> float:
    """``E f(Z)`` for ``Z ~ N(alpha^2, 2 alpha^2)`` by adaptive quadrature (tight tolerances)."""
    m, s = alpha * alpha, math.sqrt(2.0) * alpha
    val, _ = integrate.quad(lambda x: f(m + s * x) * math.exp(-0.5 * x * x), -40.0, 40.0,
                            epsabs=1e-14, epsrel=1e-13, limit=400, points=[0.0])
    return val / math.sqrt(2.0 * math.pi)


def binary_phi(alpha: float) -> float:
    """``Phi`` for K = 2 from the log-odds law ``N(alpha^2, 2 alpha^2)`` (eq. 35 corrected):
    ``1 - E[p_1] - alpha^2 E[p_1 p_2]`` by one-dimensional adaptive quadrature.

    Equals ``(1 - E[p_1]) (1 - alpha^2 / 2)``, so its root is ``sqrt(2)``.
    """
    a = _check_alpha(alpha)
    if a == 0.0:
        return 0.5
    e1 = _binary_expect(special.expit, a)
    e12 = _binary_expect(lambda z: special.expit(z) * special.expit(-z), a)
    return 1.0 - e1 - a * a * e12


def binary_information_efficiency() -> float:
    """``I(2) = E[logistic(Z)]``, ``Z ~ N(2, 4)`` (``alpha*(2) = sqrt(2)``), by quadrature."""
    return _binary_expect(special.expit, math.sqrt(2.0))


# ------------------------------------------------------------------------ Monte Carlo check


def sample_canonical_posterior(alpha: float, K: int, n: int, rng: np.random.Generator, k: int = 0) -> np.ndarray:
    """``n`` draws of the posterior ``softmax(alpha^2 e_k + Z)``, ``Z ~ N(0, alpha^2 Q)`` (n x K)."""
    a, K = _check_alpha(alpha), _check_K(K)
    if not 0 <= k < K:
        raise ValueError(f"k must be in [0, {K}) (got {k})")
    logits = a * rng.standard_normal((int(n), K))
    logits[:, k] += a * a
    return special.softmax(logits, axis=1)


def phi_monte_carlo(alpha: float, K: int, n: int = 2**14, replicates: int = 16, seed: int = 0) -> Estimate:
    """``Phi(alpha)`` by randomised quasi-Monte Carlo: ``replicates`` independently scrambled
    Sobol' sets of ``n`` points in K dimensions; the standard error is that of the
    replicate means. An independent check of :func:`phi` (no shared code path)."""
    a, K = _check_alpha(alpha), _check_K(K)
    if n < 2 or replicates < 2:
        raise ValueError("need n >= 2 points and replicates >= 2")
    means = []
    for r in range(replicates):
        u = stats.qmc.Sobol(K, scramble=True, seed=seed * 7919 + r).random(n)
        g = stats.norm.ppf(u)
        logits = a * g
        logits[:, 0] += a * a
        p1 = special.softmax(logits, axis=1)[:, 0]
        means.append(float(np.mean((1.0 - a * a * p1) * (1.0 - p1))))
    mean = float(np.mean(means))
    se = float(np.std(means, ddof=1) / math.sqrt(replicates))
    return Estimate(mean, 3.0 * se, f"randomised QMC ({replicates} x {n} Sobol' points)", stderr=se)
