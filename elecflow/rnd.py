"""Risk-neutral density of ``S_T`` from an implied-volatility smile (Breeden-Litzenberger).

Pure numerics (numpy / scipy), independent of how the smile was fitted. Input: implied vol
as a function of log-moneyness ``k = log(K / F)`` (a callable, or node arrays that are
interpolated by a cubic spline), the forward ``F``, the discount factor ``DF`` and the time
to expiry ``tau`` (years). See docs/rnd.md for the method and its measured accuracy.

Body (the trusted range ``[k_min, k_max]``): Black-76 call prices on a *uniform strike grid*
``K_i = K_0 + i h`` (plus one ghost point on each side, priced off the extended smile), the
density by the central second difference ``q_i = (C_{i+1} - 2 C_i + C_{i-1}) / (h^2 DF)``
and the CDF by ``1 + (C_{i+1} - C_{i-1}) / (2 h DF)``. The discrete second differences
telescope, so ``sum_i h q_i`` equals exactly the difference of the two edge slopes: the mass
of the body is an exact function of the call curve, not of a quadrature.

Tails (outside the trusted range): the smile is continued in total variance
``w(k) = sigma(k)^2 tau`` by a straight line in ``k`` (``tails="linear"``: value and slope
matched at the edge, slopes kept inside Lee's moment bounds) or flat in IV
(``tails="flat"``); default ``tails="lognormal"``: matched scaled lognormal pieces. The tail
masses are computed, never implied by a renormalisation; ``mass_error = mass_grid + tails - 1``
is a diagnostic. Tail moments are closed form (lognormal partial moments) for the lognormal
and flat-IV tails and a fixed composite Gauss-Legendre rule for a sloped linear wing; tail
quantiles invert the lognormal CDF by ``ndtri``. A refresh at 400 points costs ~0.5 ms
(benchmarks/rnd_refresh.py); the previous adaptive quadrature is kept as
``_tails_by_quadrature`` / ``_density_from_smile_reference`` for tests and benchmarks.

No-arbitrage: the call curve on the grid must be decreasing (slopes in [-DF, 0]) and convex
(density >= 0) with ``C >= DF (F - K)^+``. Violations are counted and sized; when present
(``repair="auto"``) the curve is replaced by its least-squares projection onto that convex
set, solved exactly as a least-distance problem through NNLS (Lawson & Hanson, ch. 23).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.integrate import quad, quad_vec
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq, nnls
from scipy.special import log_ndtr, ndtr, ndtri

__all__ = [
    "ArbitrageDiagnostics",
    "RiskNeutralDensity",
    "black76_call",
    "density_from_smile",
    "l1_distance",
    "lee_slope_bound",
    "project_call_curve",
    "QUANTILE_LEVELS",
]

QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.50, 0.75, 0.95, 0.99)
_SQRT2PI = np.sqrt(2.0 * np.pi)
# binomial coefficients C(j, i), j, i = 0..4 (expansions of the centred tail moments)
_BINOM = np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 2, 1, 0, 0], [1, 3, 3, 1, 0], [1, 4, 6, 4, 1]], dtype=np.float64)
_POW = np.arange(5, dtype=np.float64)
# fixed composite Gauss-Legendre rule for a linear-total-variance wing (b != 0): 16 nodes per
# panel; panels [0, 1/4, 1/2, 1, 2, 4, ...] edge total vols from the edge, out to 4096 in k
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_WING_REACH = 4096.0


# --------------------------------------------------------------------------- helpers


def black76_call(F, K, tau, sigma, df):
    """Black-76 call price (broadcasting); intrinsic value where ``sigma * sqrt(tau) == 0``."""
    F, K, sigma = (np.asarray(a, dtype=np.float64) for a in (F, K, sigma))
    sd = sigma * np.sqrt(tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(F / K) + 0.5 * sd * sd) / sd
        d2 = d1 - sd
        c = df * (F * ndtr(d1) - K * ndtr(d2))
    return np.where(sd > 0, c, df * np.maximum(F - K, 0.0))


def lee_slope_bound(p: float) -> float:
    """Lee's (2004) wing slope of total variance for a finite moment of order ``p``.

    Right wing: ``E[S^(1+p)] < inf`` iff slope < ``2 - 4 (sqrt(p^2 + p) - p)``; left wing the
    same with ``E[S^-p]``. ``p -> 0`` gives Lee's universal bound 2.
    """
    return 2.0 - 4.0 * (np.sqrt(p * p + p) - p)


def _norm_pdf(x):
    return np.exp(-0.5 * x * x) / _SQRT2PI


@dataclass(frozen=True)
class _Wing:
    """Total variance ``w(k) = w_e + b (k - k_e)`` beyond the edge ``k_e``."""

    k_e: float
    w_e: float
    b: float

    def w(self, k):
        return self.w_e + self.b * (np.asarray(k, dtype=np.float64) - self.k_e)

    def iv(self, k, tau):
        return np.sqrt(np.maximum(self.w(k), 0.0) / tau)

    def logpdf_density(self, k):
        """Density of ``x = log(S_T / F)`` (Gatheral's formula, ``w'' = 0``)."""
        k = np.asarray(k, dtype=np.float64)
        w = self.w(k)
        sw = np.sqrt(w)
        d2 = -k / sw - 0.5 * sw
        g = (1.0 - k * self.b / (2.0 * w)) ** 2 - 0.25 * self.b**2 * (1.0 / w + 0.25)
        return g * _norm_pdf(d2) / sw

    def cdf(self, k):
        """``P(log(S_T/F) < k) = 1 + C'(K) / DF``."""
        k = np.asarray(k, dtype=np.float64)
        w = self.w(k)
        sw = np.sqrt(w)
        d2 = -k / sw - 0.5 * sw
        return ndtr(-d2) + _norm_pdf(d2) * self.b / (2.0 * sw)


@dataclass(frozen=True)
class _GaussTail:
    """Tail ``A phi((x - mu)/s) / s`` of the density of ``x = log(S_T/F)`` beyond ``k_e`` (a
    scaled lognormal in ``S``), matched to the smile's tail mass and density at ``k_e``."""

    side: int  # -1 left, +1 right
    k_e: float
    A: float
    mu: float
    s: float
    b: float = float("nan")  # no total-variance wing

    @property
    def w_e(self) -> float:
        return self.s * self.s

    def logpdf_density(self, k):
        z = (np.asarray(k, dtype=np.float64) - self.mu) / self.s
        return self.A * _norm_pdf(z) / self.s

    def cdf(self, k):
        z = (np.asarray(k, dtype=np.float64) - self.mu) / self.s
        return self.A * ndtr(z) if self.side < 0 else 1.0 - self.A * ndtr(-z)

    @classmethod
    def matched(cls, side, k_e, mass, dens, s):
        """Solve ``phi(u) / Phi(u) = dens s / mass`` (decreasing in u), then
        ``mu = k_e -/+ s u`` and ``A = mass / Phi(u)``."""
        target = np.log(dens * s / mass)
        f = lambda u: -0.5 * u * u - 0.5 * np.log(2 * np.pi) - log_ndtr(u) - target  # noqa: E731
        # phi(u)/Phi(u) ~ -u for u << 0: beyond u = -30 the edge density is ~30x what the
        # tail mass can carry in one edge sd, i.e. the smile's edge is not a tail (a
        # wiggling smile): no lognormal matches, the caller falls back to a flat wing
        if f(-30.0) < 0.0 or f(60.0) > 0.0:
            raise ValueError(f"no lognormal tail matches mass {mass:.3g} and density {dens:.3g} at k={k_e:.4g}")
        u = brentq(f, -30.0, 60.0, xtol=1e-13)
        mu = k_e - s * u if side < 0 else k_e + s * u
        return cls(side, float(k_e), float(mass / ndtr(u)), float(mu), float(s))


def _smile_edge(smile, k, dk, tau):
    """The smile's CDF and log-space density at ``k`` (central differences of ``w``)."""
    w0, wm, wp = (smile(np.array([k, k - dk, k + dk])) ** 2 * tau).tolist()
    w1 = (wp - wm) / (2 * dk)
    w2 = (wp - 2 * w0 + wm) / (dk * dk)
    sw = np.sqrt(w0)
    d2 = -k / sw - 0.5 * sw
    cdf = float(ndtr(-d2) + _norm_pdf(d2) * w1 / (2 * sw))
    g = (1.0 - k * w1 / (2 * w0)) ** 2 - 0.25 * w1 * w1 * (1 / w0 + 0.25) + 0.5 * w2
    return cdf, float(g * _norm_pdf(d2) / sw), w0


# --------------------------------------------------------------------------- results


@dataclass
class ArbitrageDiagnostics:
    """No-arbitrage checks of the call curve on the grid (before any repair).

    Sizes are in natural units: slopes of the call curve divided by DF (so a CDF), density
    in 1/price, ``negative_mass`` = integral of the negative part of the density.
    """

    n_points: int
    n_increasing: int  # slopes > 0 (call curve not decreasing; CDF > 1)
    max_increase: float  # largest slope / DF above 0
    n_slope_below_bound: int  # slopes < -DF (CDF < 0)
    max_below_bound: float
    n_nonconvex: int  # negative second differences = negative density points
    min_density: float  # most negative density (0 if none)
    negative_mass: float
    n_below_intrinsic: int  # C < DF (F - K)^+
    n_tail_negative: int  # wing density < 0 on the tail quadrature grids
    edge_cdf_jump: float = 0.0  # |smile CDF - tail CDF| summed over both edges: mass the
    # tails put into (or take from) the edge cells because the tail does not continue C'
    tail_fallback: int = 0  # sides where the lognormal tail could not be matched (flat IV used)
    repaired: bool = False
    repair_max_abs: float = 0.0  # max |C_repaired - C| (price units)
    repair_rms: float = 0.0
    repair_rel_l2: float = 0.0  # ||dC|| / ||C||
    repair_iterations: int = 0

    @property
    def arbitrage_free(self) -> bool:
        return (self.n_increasing + self.n_slope_below_bound + self.n_nonconvex + self.n_below_intrinsic) == 0


@dataclass
class RiskNeutralDensity:
    """Density of ``S_T`` with its summary, mass accounting and diagnostics.

    ``strikes``/``density``/``cdf`` are on the uniform body grid; the tails are described by
    their wings (total-variance lines) and masses. ``kurtosis`` is Pearson's (3 for a
    normal). Log-return moments are those of ``log(S_T / F)``.
    """

    forward: float
    discount: float
    tau: float
    atm_iv: float
    k_min: float
    k_max: float
    tails: str
    strikes: np.ndarray
    h: float
    iv: np.ndarray
    call_raw: np.ndarray  # with the two ghost points: length n + 2
    call: np.ndarray  # after repair (== call_raw if none)
    density: np.ndarray
    cdf: np.ndarray
    mass_grid: float
    mass_left_tail: float
    mass_right_tail: float
    mass_error: float  # mass_grid + tails - 1
    left_wing_slope: float
    right_wing_slope: float
    mean: float
    sd: float
    skew: float
    kurtosis: float
    log_mean: float
    log_sd: float
    log_skew: float
    log_kurtosis: float
    quantile_levels: np.ndarray
    quantiles: np.ndarray
    diagnostics: ArbitrageDiagnostics
    _left: _Wing = field(repr=False, default=None)
    _right: _Wing = field(repr=False, default=None)

    @property
    def mean_error_vs_forward(self) -> float:
        """``mean / F - 1``: the martingale check."""
        return self.mean / self.forward - 1.0

    def quantile(self, level: float) -> float:
        return _quantile(self, level)

    def pdf(self, s) -> np.ndarray:
        """Density at prices ``s``: piecewise constant on the body cells, the wings outside."""
        s = np.asarray(s, dtype=np.float64)
        lo, hi = self.strikes[0] - 0.5 * self.h, self.strikes[-1] + 0.5 * self.h
        out = np.zeros_like(s)
        body = (s >= lo) & (s < hi)
        idx = np.clip(((s[body] - lo) / self.h).astype(np.int64), 0, self.strikes.size - 1)
        out[body] = self.density[idx]
        for wing, sel in ((self._left, (s > 0) & (s < lo)), (self._right, s >= hi)):
            k = np.log(s[sel] / self.forward)
            out[sel] = wing.logpdf_density(k) / s[sel]
        return out


# --------------------------------------------------------------------------- repair


def project_call_curve(call, strikes, forward, discount, tol=1e-12):
    """Least-squares projection of call prices on a uniform strike grid onto the
    arbitrage-free set: convex, slopes in ``[-DF, 0]``, ``C_0 >= DF (F - K_0)^+``,
    ``C_0 <= DF F``, ``C_last >= 0``.

    Solved exactly as the least-distance problem ``min ||x||`` s.t. ``G x >= g - G C`` via
    NNLS (Lawson & Hanson 1974, ch. 23); the work is proportional to the number of active
    constraints, so a nearly convex curve is repaired in a few NNLS steps. Works in units of
    ``DF F`` for conditioning. Returns ``(repaired_call, n_iterations)``.
    """
    call = np.asarray(call, dtype=np.float64)
    strikes = np.asarray(strikes, dtype=np.float64)
    n = call.size
    scale = discount * forward
    c = call / scale
    h = (strikes[1] - strikes[0]) / forward
    k0 = strikes[0] / forward
    # constraint residuals g - G c, in O(n) (the dense G is only built when a repair is due)
    hvec = np.concatenate([-np.diff(c, 2), [-1.0 - (c[1] - c[0]) / h, (c[-1] - c[-2]) / h,
                                            max(1.0 - k0, 0.0) - c[0], c[0] - 1.0, -c[-1]]])
    if np.all(hvec <= tol):
        return call.copy(), 0
    rows, rhs = [], []
    # convexity: c_{i-1} - 2 c_i + c_{i+1} >= 0
    G2 = np.zeros((n - 2, n))
    i = np.arange(n - 2)
    G2[i, i], G2[i, i + 1], G2[i, i + 2] = 1.0, -2.0, 1.0
    rows.append(G2)
    rhs.append(np.zeros(n - 2))
    e = np.zeros((5, n))
    e[0, 0], e[0, 1] = -1.0 / h, 1.0 / h  # first slope >= -1
    e[1, -2], e[1, -1] = 1.0 / h, -1.0 / h  # -(last slope) >= 0
    e[2, 0] = 1.0  # c_0 >= (1 - k0)^+
    e[3, 0] = -1.0  # -c_0 >= -1
    e[4, -1] = 1.0  # c_last >= 0
    rows.append(e)
    rhs.append(np.array([-1.0, 0.0, max(1.0 - k0, 0.0), -1.0, 0.0]))
    G = np.vstack(rows)
    g = np.concatenate(rhs)
    hvec = g - G @ c  # constraints on the correction x: G x >= hvec
    E = np.vstack([G.T, hvec[None, :]])
    f = np.zeros(n + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * E.shape[1])
    r = E @ u - f
    if abs(r[-1]) < 1e-300:
        raise ValueError("arbitrage-free projection infeasible")
    x = -r[:n] / r[-1]
    return (c + x) * scale, int(np.count_nonzero(u))


def _diagnose(call, strikes, forward, discount, h, tol):
    n = call.size
    slopes = np.diff(call) / (h * discount)
    d2 = np.diff(call, 2) / (h * h * discount)
    ftol = tol * forward / h  # rounding level of a price difference, per unit strike
    dtol = tol * forward / (h * h)
    inc = slopes > ftol
    below = slopes < -1.0 - ftol
    ncv = d2 < -dtol
    intrinsic = discount * np.maximum(forward - strikes, 0.0)
    bi = call < intrinsic - tol * discount * forward
    return ArbitrageDiagnostics(
        n_points=n,
        n_increasing=int(inc.sum()),
        max_increase=float(slopes[inc].max()) if inc.any() else 0.0,
        n_slope_below_bound=int(below.sum()),
        max_below_bound=float((-1.0 - slopes[below]).max()) if below.any() else 0.0,
        n_nonconvex=int(ncv.sum()),
        min_density=float(d2[ncv].min()) if ncv.any() else 0.0,
        negative_mass=float(-h * d2[ncv].sum()),
        n_below_intrinsic=int(bi.sum()),
        n_tail_negative=0,
    )


# --------------------------------------------------------------------------- main


def _smile_callable(iv_of_k) -> Callable[[np.ndarray], np.ndarray]:
    if callable(iv_of_k):
        def smile(k):
            # the result takes the shape of k: callers may pass scalars, and a smile that
            # always returns 1-d arrays (a GP's predict) must still give a scalar back
            k = np.asarray(k, dtype=np.float64)
            v = np.asarray(iv_of_k(k), dtype=np.float64)
            return v.reshape(k.shape) if v.size == k.size else np.broadcast_to(v, k.shape).copy()

        return smile
    k_nodes, iv_nodes = (np.asarray(a, dtype=np.float64) for a in iv_of_k)
    order = np.argsort(k_nodes)
    spline = CubicSpline(k_nodes[order], iv_nodes[order])
    return lambda k: spline(np.asarray(k, dtype=np.float64))


def _make_wing(smile, k_e, dk, tau, side, tails, moment_order):
    w = lambda k: smile(np.asarray(k)) ** 2 * tau  # noqa: E731
    w_e = float(w(k_e))
    if not np.isfinite(w_e) or w_e <= 0:
        raise ValueError(f"implied vol at the {side} edge k={k_e:.4g} is not positive/finite")
    if tails == "flat":
        return _Wing(k_e, w_e, 0.0)
    s = -1.0 if side == "left" else 1.0
    # one-sided, second-order slope from inside the trusted range
    b = s * (3.0 * w_e - 4.0 * float(w(k_e - s * dk)) + float(w(k_e - 2 * s * dk))) / (2.0 * dk)
    if side == "right":
        b = float(np.clip(b, 0.0, lee_slope_bound(moment_order)))
    else:
        b = float(np.clip(b, -lee_slope_bound(0.0) * 0.999, 0.0))
    return _Wing(k_e, w_e, b)


def _tails_by_quadrature(wing, lo, hi, center, log_center, forward):
    """Reference (the previous implementation): integrals over the wing of
    ``[1, s^j centred, x^j centred]``, j = 1..4 (x = log S/F), by adaptive quadrature
    (``quad_vec``, epsrel 1e-11). Kept for tests and benchmarks/rnd_refresh.py."""

    def f(k):
        with np.errstate(all="ignore"):
            p = float(wing.logpdf_density(k))
            if not np.isfinite(p) or p == 0.0:
                return np.zeros(9)
            ds = forward * np.exp(k) - center
            dx = k - log_center
            v = p * np.array([1.0, ds, ds**2, ds**3, ds**4, dx, dx**2, dx**3, dx**4])
        return np.where(np.isfinite(v), v, 0.0)

    val, _ = quad_vec(f, lo, hi, epsabs=1e-14, epsrel=1e-11, limit=400)
    return val


def _gauss_form(wing):
    """``(A, mu, s)`` when the wing's log-density is ``A phi((x - mu)/s)/s`` (the matched
    lognormal tail, and the flat-IV wing: ``A = 1, mu = -w/2, s = sqrt w``), else None."""
    if isinstance(wing, _GaussTail):
        return wing.A, wing.mu, wing.s
    if wing.b == 0.0:
        return 1.0, -0.5 * wing.w_e, float(np.sqrt(wing.w_e))
    return None


_TRI_EXP = np.maximum(_POW[:, None] - _POW[None, :], 0.0)
_TRI_MASK = _POW[:, None] >= _POW[None, :]


def _tri_powers(c):
    """``c^(j - i)`` for ``i <= j`` (0 above the diagonal), j, i = 0..4."""
    return np.where(_TRI_MASK, float(c) ** _TRI_EXP, 0.0)


def _gauss_tail_moments(A, mu, s, side, edge, forward, center, log_center):
    """Closed-form ``[1, (S-c)^j, (x-lc)^j]`` integrals (j = 1..4) of ``A phi((x-mu)/s)/s``
    over ``x < edge`` (side < 0) or ``x > edge`` (side > 0).

    ``S^m``: ``E[e^{m x} 1{x < a}] = A e^{m mu + m^2 s^2/2} Phi((a - mu)/s - m s)`` (the
    lognormal partial moments), then binomial expansion of ``(F e^x - c)^j``. ``x^j``: the
    truncated standard-normal partial moments ``M_j = (j-1) M_{j-2} -/+ z0^{j-1} phi(z0)``,
    then binomial expansion of ``(mu - lc + s z)^j``."""
    z0 = (edge - mu) / s
    m = _POW
    arg = z0 - m * s if side < 0 else m * s - z0
    with np.errstate(over="ignore", under="ignore"):
        es = A * np.exp(m * mu + 0.5 * (m * s) ** 2 + log_ndtr(arg))  # E[e^{m x} 1{tail}]
    es = np.where(np.isfinite(es), es, 0.0)
    # (F e^x - c)^j = sum_i C(j,i) F^i e^{i x} (-c)^{j-i}
    fi = forward**m
    ms = (_BINOM * _tri_powers(-center)) @ (fi * es)
    # standard-normal partial moments over the tail
    ph = float(np.exp(-0.5 * z0 * z0) / _SQRT2PI)
    sg = -1.0 if side < 0 else 1.0
    M = np.empty(5)
    M[0] = ndtr(z0) if side < 0 else ndtr(-z0)
    M[1] = sg * ph
    for j in (2, 3, 4):
        M[j] = (j - 1) * M[j - 2] + sg * z0 ** (j - 1) * ph
    a = mu - log_center
    mx = A * ((_BINOM * _tri_powers(a)) @ (s**m * M))
    return np.concatenate([ms, mx[1:]])


def _wing_quadrature_moments(wing, side, edge, forward, center, log_center):
    """Linear-total-variance wing (``b != 0``): fixed composite Gauss-Legendre rule (16
    nodes per panel), panels doubling in width from a quarter of ``min(sqrt(w_e), w_e/|b|)``
    out to ``_WING_REACH`` in k (all vectorised: one density evaluation per node)."""
    # length scale near the edge: the edge total vol, or the distance over which w doubles
    se = min(float(np.sqrt(wing.w_e)), wing.w_e / abs(wing.b))
    n_pan = int(np.ceil(np.log2(_WING_REACH / se))) + 3
    br = np.concatenate([[0.0], se * np.exp2(np.arange(n_pan) - 2.0)])
    half, mid = 0.5 * np.diff(br), 0.5 * (br[1:] + br[:-1])
    d = (mid[:, None] + half[:, None] * _GL_X).ravel()
    wt = (half[:, None] * _GL_W).ravel()
    k = edge + side * d
    with np.errstate(all="ignore"):
        p = wing.logpdf_density(k) * wt
        ds = forward * np.exp(k) - center
        dx = k - log_center
        v = p * np.stack([np.ones_like(k), ds, ds * ds, ds**3, ds**4, dx, dx * dx, dx**3, dx**4])
    v = np.where(np.isfinite(v) & np.isfinite(p), v, 0.0)
    return v.sum(axis=1)


def _tail_moments(wing, side, edge, forward, center, log_center):
    g = _gauss_form(wing)
    if g is not None:
        return _gauss_tail_moments(*g, side, edge, forward, center, log_center)
    return _wing_quadrature_moments(wing, side, edge, forward, center, log_center)


def _moments(body_k, body_w, left, right, k_lo, k_hi, forward, center, log_center, reference=False):
    s = forward * np.exp(body_k)
    ds, dx = s - center, body_k - log_center
    ds2, dx2 = ds * ds, dx * dx
    m = body_w @ np.stack([np.ones_like(ds), ds, ds2, ds2 * ds, ds2 * ds2, dx, dx2, dx2 * dx, dx2 * dx2], axis=1)
    if reference:
        m = m + _tails_by_quadrature(left, -np.inf, k_lo, center, log_center, forward)
        return m + _tails_by_quadrature(right, k_hi, np.inf, center, log_center, forward)
    m = m + _tail_moments(left, -1, k_lo, forward, center, log_center)
    return m + _tail_moments(right, 1, k_hi, forward, center, log_center)


def _body_cum(r: RiskNeutralDensity) -> np.ndarray:
    """CDF at the body's cell edges (left tail mass + cumulated cell masses, made monotone)."""
    cum = r.mass_left_tail + np.concatenate([[0.0], np.cumsum(r.density * r.h)])
    return np.maximum.accumulate(cum)


def _quantile(r: RiskNeutralDensity, level: float, cum=None, reference: bool = False) -> float:
    F = r.forward
    lo_edge = r.strikes[0] - 0.5 * r.h
    if cum is None:
        cum = _body_cum(r)
    if level < cum[0]:
        g = None if reference else _gauss_form(r._left)
        if g is not None:  # A Phi((k - mu)/s) = level
            A, mu, s = g
            return float(F * np.exp(mu + s * ndtri(level / A)))
        k_e = np.log(lo_edge / F)
        f = lambda k: r._left.cdf(k) - level  # noqa: E731
        a = k_e - 1.0
        while f(a) > 0:
            a -= 1.0
        return float(F * np.exp(brentq(f, a, k_e, xtol=1e-14)))
    if level > cum[-1]:
        k_e = np.log((r.strikes[-1] + 0.5 * r.h) / F)
        target = level - cum[-1] + r._right.cdf(k_e)  # continue the CDF with the wing's shape
        g = None if reference else _gauss_form(r._right)
        if g is not None:  # 1 - A Phi(-(k - mu)/s) = target
            A, mu, s = g
            return float(F * np.exp(mu - s * ndtri((1.0 - target) / A)))
        f = lambda k: r._right.cdf(k) - target  # noqa: E731
        b = k_e + 1.0
        while f(b) < 0 and b < k_e + 50:
            b += 1.0
        return float(F * np.exp(brentq(f, k_e, b, xtol=1e-14)))
    edges = lo_edge + r.h * np.arange(cum.size)
    j = int(np.clip(np.searchsorted(cum, level, side="right") - 1, 0, cum.size - 2))
    dc = cum[j + 1] - cum[j]
    t = 0.0 if dc <= 0 else (level - cum[j]) / dc
    return float(edges[j] + t * r.h)


def density_from_smile(
    iv_of_k,
    forward: float,
    discount: float,
    tau: float,
    k_min: float,
    k_max: float,
    n_grid: int = 400,
    tails: str = "lognormal",
    repair: str = "auto",
    moment_order: float = 4.0,
    quantile_levels: Sequence[float] = QUANTILE_LEVELS,
    tol: float = 1e-12,
) -> RiskNeutralDensity:
    """Risk-neutral density of ``S_T`` from a smile trusted on ``[k_min, k_max]``.

    Parameters
    ----------
    iv_of_k : callable ``k -> sigma`` (vectorised over numpy arrays), or a pair
        ``(k_nodes, iv_nodes)`` interpolated by a cubic spline. ``k = log(K / F)``.
    forward, discount, tau : ``F``, ``DF = e^{-r tau}``, years to expiry.
    k_min, k_max : the range where the smile is trusted (the quoted strikes); the uniform
        strike grid spans ``F e^{k_min} .. F e^{k_max}`` with ``n_grid`` points.
    tails : ``"lognormal"`` (default: beyond each edge a scaled lognormal piece
        ``A phi((x - mu)/s)/s`` in ``x = log(S/F)``, width ``s`` = the edge's total vol, with
        ``A, mu`` solved so that the tail mass and the density at the edge equal the smile's
        own, from ``w, w', w''`` at the edge: C and C' continue across the edge, all moments
        finite), ``"linear"`` (total variance linear in ``k`` beyond the edges, slope matched at
        the edge and clipped to ``[0, lee_slope_bound(moment_order)]`` on the right and to
        ``(-2, 0]`` on the left) or ``"flat"`` (flat IV beyond the edges).
    repair : ``"auto"`` (project onto the arbitrage-free set when a violation is found),
        ``"never"`` or ``"always"``.
    moment_order : Lee bound used on the right wing: ``E[S^(1+p)]`` finite for
        ``p < moment_order``, so the reported kurtosis of ``S_T`` exists.
    tol : relative tolerance (in units of ``DF F``) below which a violation is rounding.
    """
    return _density_from_smile(iv_of_k, forward, discount, tau, k_min, k_max, n_grid, tails, repair,
                               moment_order, quantile_levels, tol, reference=False)


def _density_from_smile_reference(iv_of_k, forward, discount, tau, k_min, k_max, n_grid=400, tails="lognormal",
                                  repair="auto", moment_order=4.0, quantile_levels=QUANTILE_LEVELS, tol=1e-12):
    """The previous implementation (tail moments by ``_tails_by_quadrature``, tail quantiles
    by ``brentq``): the reference for tests and benchmarks/rnd_refresh.py."""
    return _density_from_smile(iv_of_k, forward, discount, tau, k_min, k_max, n_grid, tails, repair,
                               moment_order, quantile_levels, tol, reference=True)




def _density_from_smile(iv_of_k, forward, discount, tau, k_min, k_max, n_grid, tails, repair, moment_order,
                        quantile_levels, tol, reference):
    if tails not in ("lognormal", "linear", "flat"):
        raise ValueError(f"tails must be 'lognormal', 'linear' or 'flat', got {tails!r}")
    if repair not in ("auto", "never", "always"):
        raise ValueError(f"repair must be 'auto', 'never' or 'always', got {repair!r}")
    if not (forward > 0 and discount > 0 and tau > 0 and k_max > k_min and n_grid >= 5):
        raise ValueError("need forward, discount, tau > 0, k_max > k_min and n_grid >= 5")
    F, DF = float(forward), float(discount)
    smile = _smile_callable(iv_of_k)

    K = np.linspace(F * np.exp(k_min), F * np.exp(k_max), n_grid)
    h = K[1] - K[0]
    if K[0] - h <= 0:
        raise ValueError("grid too coarse for k_min: the left ghost strike is not positive")
    Kx = np.concatenate([[K[0] - h], K, [K[-1] + h]])  # with ghost points
    kx = np.log(Kx / F)
    dk_edge_l = np.log(K[1] / K[0])
    dk_edge_r = np.log(K[-1] / K[-2])
    k_lo = float(np.log((K[0] - 0.5 * h) / F))
    k_hi = float(np.log((K[-1] + 0.5 * h) / F))
    cdf_lo, dens_lo, w_lo = _smile_edge(smile, k_lo, dk_edge_l, tau)
    cdf_hi, dens_hi, w_hi = _smile_edge(smile, k_hi, dk_edge_r, tau)
    fallback = 0
    if tails == "lognormal":
        wings = []
        for side, k_e, mass, dens, w_e in ((-1, k_lo, cdf_lo, dens_lo, w_lo), (1, k_hi, 1 - cdf_hi, dens_hi, w_hi)):
            tail = None
            if mass > 0 and dens > 0 and np.isfinite(mass * dens):
                try:
                    tail = _GaussTail.matched(side, k_e, mass, dens, np.sqrt(w_e))
                except ValueError:
                    tail = None
            if tail is not None:
                wings.append(tail)
            else:
                fallback += 1
                k_edge = float(np.log((K[0] if side < 0 else K[-1]) / F))
                wings.append(_make_wing(smile, k_edge, dk_edge_l, tau, "left" if side < 0 else "right", "flat",
                                        moment_order))
        left, right = wings
    else:
        left = _make_wing(smile, float(np.log(K[0] / F)), dk_edge_l, tau, "left", tails, moment_order)
        right = _make_wing(smile, float(np.log(K[-1] / F)), dk_edge_r, tau, "right", tails, moment_order)

    iv_x = np.empty_like(kx)
    iv_x[1:-1] = smile(kx[1:-1])
    iv_x[0] = left.iv(kx[0], tau) if isinstance(left, _Wing) else smile(kx[:1])[0]
    iv_x[-1] = right.iv(kx[-1], tau) if isinstance(right, _Wing) else smile(kx[-1:])[0]
    if not np.all(np.isfinite(iv_x)) or np.any(iv_x <= 0):
        raise ValueError("the smile returned non-positive or non-finite vols on the grid")
    call_raw = black76_call(F, Kx, tau, iv_x, DF)

    diag = _diagnose(call_raw, Kx, F, DF, h, tol)
    call = call_raw
    if repair == "always" or (repair == "auto" and not diag.arbitrage_free):
        call, iters = project_call_curve(call_raw, Kx, F, DF)
        d = call - call_raw
        diag.repaired = True
        diag.repair_max_abs = float(np.abs(d).max())
        diag.repair_rms = float(np.sqrt(np.mean(d * d)))
        diag.repair_rel_l2 = float(np.linalg.norm(d) / np.linalg.norm(call_raw))
        diag.repair_iterations = iters

    density = np.diff(call, 2) / (h * h * DF)
    cdf = 1.0 + (call[2:] - call[:-2]) / (2.0 * h * DF)
    mass_grid = float(h * density.sum())
    diag.tail_fallback = fallback
    diag.edge_cdf_jump = float(abs(cdf_lo - left.cdf(k_lo)) + abs(cdf_hi - right.cdf(k_hi)))
    mass_left = float(left.cdf(k_lo))
    mass_right = float(1.0 - right.cdf(k_hi))
    mass_error = mass_grid + mass_left + mass_right - 1.0

    # wing density sign check on a grid out to 12 edge standard deviations
    for wing, a, b in ((left, k_lo - 12 * np.sqrt(left.w_e), k_lo), (right, k_hi, k_hi + 12 * np.sqrt(right.w_e))):
        pk = wing.logpdf_density(np.linspace(a, b, 400))
        diag.n_tail_negative += int(np.sum(pk < -1e-14))

    body_k = np.log(K / F)
    body_w = h * density
    m0 = _moments(body_k, body_w, left, right, k_lo, k_hi, F, 0.0, 0.0, reference)
    mean, log_mean = m0[1] / m0[0], m0[5] / m0[0]
    m = _moments(body_k, body_w, left, right, k_lo, k_hi, F, mean, log_mean, reference)
    tot = m[0]
    var, lvar = m[2] / tot, m[6] / tot
    sd, lsd = np.sqrt(var), np.sqrt(lvar)
    # mean/sd are normalised by the computed total mass (1 + mass_error): with a sound
    # smile the difference is O(mass_error), which is reported, not hidden.
    atm = float(smile(np.array([0.0]))[0]) if k_min <= 0.0 <= k_max else float(
        (left if k_min > 0 else right).iv(0.0, tau))

    r = RiskNeutralDensity(
        forward=F, discount=DF, tau=float(tau), atm_iv=atm, k_min=float(k_min), k_max=float(k_max), tails=tails,
        strikes=K, h=float(h), iv=iv_x[1:-1].copy(), call_raw=call_raw, call=call, density=density, cdf=cdf,
        mass_grid=mass_grid, mass_left_tail=mass_left, mass_right_tail=mass_right, mass_error=float(mass_error),
        left_wing_slope=float(left.b), right_wing_slope=float(right.b),
        mean=float(mean), sd=float(sd), skew=float(m[3] / tot / sd**3), kurtosis=float(m[4] / tot / var**2),
        log_mean=float(log_mean), log_sd=float(lsd), log_skew=float(m[7] / tot / lsd**3),
        log_kurtosis=float(m[8] / tot / lvar**2),
        quantile_levels=np.asarray(quantile_levels, dtype=np.float64), quantiles=np.empty(0),
        diagnostics=diag, _left=left, _right=right,
    )
    cum = _body_cum(r)
    r.quantiles = np.array([_quantile(r, a, cum, reference) for a in r.quantile_levels])
    return r


def l1_distance(r: RiskNeutralDensity, pdf: Callable[[np.ndarray], np.ndarray]) -> float:
    """``integral |q - p| dS`` over the whole line: body cells by the midpoint rule (true
    density at the grid strikes), tails by adaptive quadrature against the wings."""
    K, h, F = r.strikes, r.h, r.forward
    body = h * float(np.abs(r.density - pdf(K)).sum())
    k_lo = np.log((K[0] - 0.5 * h) / F)
    k_hi = np.log((K[-1] + 0.5 * h) / F)

    def g(k, wing):
        with np.errstate(all="ignore"):
            s = F * np.exp(k)
            v = abs(float(wing.logpdf_density(k)) - float(pdf(np.array([s]))[0]) * s)
        return v if np.isfinite(v) else 0.0

    tl, _ = quad(g, -np.inf, k_lo, args=(r._left,), limit=400, epsabs=1e-10)
    tr, _ = quad(g, k_hi, np.inf, args=(r._right,), limit=400, epsabs=1e-10)
    return body + tl + tr
