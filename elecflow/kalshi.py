"""Denoised election probability from Kalshi fills (library layer: numpy/scipy/numba, no I/O).

Two building blocks (model, estimator and measured accuracy in ``docs/kalshi-filter.md``):

* :func:`local_level_filter` - the linear Gaussian local-level Kalman filter over
  irregular gaps (random walk state, variance per unit time), the textbook special case.
* :class:`KalshiProbabilityFilter` - the election-probability denoiser. Latent state
  ``x = Phi^{-1}(p)`` (probit of the Trump-wins probability), a random walk in an
  *information clock* ``kappa(t)``: ``Var(x_t - x_s) = int_s^t q dkappa`` with the clock's
  shape fixed by design (:class:`InformationClock`) and its scale ``q`` estimated; as in
  the UCBM construction, ``q`` grows as information is revealed (``dq/dkappa = q^2``
  between fills, and by ``1 + jump^2`` at a news jump). News jumps enter as a
  two-component Gaussian mixture collapsed after each fill. Observations: a DJT fill
  measures ``Phi(x) + b_DJT`` (``b_DJT = 0``, the anchor) and a KH fill ``1 - price``
  measures ``Phi(x) + b_KH`` (``b_KH`` ~ P(neither candidate) + fees), with noise
  ``tick^2/12 + s_c^2`` (cent rounding + bid-ask bounce). The nonlinear measurement is
  linearised around the prediction (extended Kalman filter); within ``edge_zone`` of the
  last quotable mids (2c / 98c) the measurement saturates and the update is by
  Gauss-Hermite quadrature instead. ``q``, ``s_DJT``, ``s_KH``, ``b_KH`` are estimated by
  maximum likelihood (prediction-error decomposition) on a warm-up window
  (:func:`fit_kalshi_filter`); afterwards ``q`` is corrected online by recursive maximum
  likelihood (exact sensitivity recursion of the scalar filter, Gauss-Newton steps
  scaled by the expected Fisher information).

Incremental and batch share one implementation: :meth:`KalshiProbabilityFilter.update`
calls the numba kernel for one fill, :meth:`KalshiProbabilityFilter.update_many` and
:func:`filter_kalshi_fills` run the same kernel in a compiled loop; results are identical
bit for bit (tested).

Times are UTC nanoseconds (``int``/``int64``); prices are dollars (``KalshiTrade.price``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numba as nb
import numpy as np
from scipy import optimize

from elecflow.calendar import ny_datetime_to_utc, utc_ns

__all__ = [
    "CONTRACT_INDEX",
    "REGIMES",
    "FilterOutput",
    "FilterOutputs",
    "InformationClock",
    "KalshiFilterParams",
    "KalshiFit",
    "KalshiProbabilityFilter",
    "MIN_FILLS_PER_CONTRACT",
    "filter_kalshi_fills",
    "fit_kalshi_filter",
    "local_level_filter",
    "regime_of",
]

NS_PER_HOUR = 3_600_000_000_000
SQRT2 = math.sqrt(2.0)
LOG_2PI = math.log(2.0 * math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

#: Contract name -> role: 0 = the YES-Trump contract (price measures p), 1 = the Harris
#: contract (``1 - price`` measures p).
CONTRACT_INDEX: dict[str, int] = {"PRES-2024-DJT": 0, "PRES-2024-KH": 1}
#: Regime codes (index) and names, by the standardised innovation |z|.
REGIMES: tuple[str, ...] = ("calm", "moving", "shock")
DEFAULT_RESOLUTION_NS = utc_ns(ny_datetime_to_utc(dt.datetime(2024, 11, 6, 6, 0)))


# ======================================================================================
# 1. Linear Gaussian local level
# ======================================================================================


@nb.njit(cache=True)
def _local_level_loop(y, r, qv, gap, x0, p0, means, variances):  # pragma: no cover - numba
    m = x0
    p = p0
    for k in range(y.size):
        p = p + qv[k] * gap[k]
        yk = y[k]
        if not math.isnan(yk):
            s = p + r[k]
            gain = p / s
            m = m + gain * (yk - m)
            p = p * r[k] / s  # = (1 - K) P, never negative
        means[k] = m
        variances[k] = p


def local_level_filter(y, obs_var, state_var, x0: float, p0: float, dt=None) -> tuple[np.ndarray, np.ndarray]:
    """Filtered means and variances of the local-level (random walk + noise) model.

    ``x_k = x_{k-1} + w_k``, ``w_k ~ N(0, state_var_k * dt_k)``; ``y_k = x_k + e_k``,
    ``e_k ~ N(0, obs_var_k)``. ``(x0, p0)`` is the prior mean and variance of the state at
    the time origin; ``dt[k]`` is the time elapsed since the previous observation (for
    ``k = 0``: since the origin of the prior), so the prior of ``x_0`` is
    ``N(x0, p0 + state_var_0 * dt_0)``. Without ``dt`` the model is per step:
    ``dt = (0, 1, 1, ...)`` (``(x0, p0)`` is the prior of the first state, as in
    statsmodels). ``obs_var`` and ``state_var`` are scalars or arrays of ``len(y)``. A NaN
    ``y`` is missing: the step predicts only. Returns ``(means, variances)`` of
    ``x_k | y_0..y_k``.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError("y must be one-dimensional")
    n = y.size
    r = np.broadcast_to(np.asarray(obs_var, dtype=np.float64), (n,)).copy()
    qv = np.broadcast_to(np.asarray(state_var, dtype=np.float64), (n,)).copy()
    if dt is None:
        gap = np.ones(n)
        if n:
            gap[0] = 0.0
    else:
        gap = np.broadcast_to(np.asarray(dt, dtype=np.float64), (n,)).copy()
    if not (np.isfinite(x0) and np.isfinite(p0) and p0 >= 0):
        raise ValueError("x0 must be finite and p0 finite and >= 0")
    if np.any(~np.isfinite(r)) or np.any(r < 0):
        raise ValueError("obs_var must be finite and >= 0")
    if np.any(~np.isfinite(qv)) or np.any(qv < 0):
        raise ValueError("state_var must be finite and >= 0")
    if np.any(~np.isfinite(gap)) or np.any(gap < 0):
        raise ValueError("dt must be finite and >= 0")
    means = np.empty(n)
    variances = np.empty(n)
    _local_level_loop(y, r, qv, gap, float(x0), float(p0), means, variances)
    return means, variances


# ======================================================================================
# 2. Information clock
# ======================================================================================


@dataclass(frozen=True)
class InformationClock:
    """Deterministic information clock ``kappa(t)`` of the probit random walk.

    Speed per hour ``kappa'(t) = floor + (h / (T_R - t + h))^2`` (``h = scale_hours``,
    ``T_R = resolution_ns``): flat far from resolution, rising hyperbolically over the last
    hours, and ~1 at ``T_R`` (after ``T_R`` the speed stays at its value at ``T_R``). This is
    the diffusive speed *shape* of the UCBM construction (docs/synthetic-day.md); its scale
    is not part of the clock: the filter's ``q`` (probit variance per clock unit) is
    estimated. ``scale_hours = inf`` gives calendar time (speed ``1 + floor`` per hour).
    """

    resolution_ns: int = DEFAULT_RESOLUTION_NS
    scale_hours: float = 1.0
    floor: float = 5e-4

    def __post_init__(self):
        if not (self.scale_hours > 0):
            raise ValueError("scale_hours must be > 0 (inf for calendar time)")
        if not (self.floor >= 0 and math.isfinite(self.floor)):
            raise ValueError("floor must be finite and >= 0")

    def as_array(self) -> np.ndarray:
        return np.array([float(self.resolution_ns), self.scale_hours, self.floor])

    def increment(self, t0_ns, t1_ns) -> np.ndarray:
        """``kappa(t1) - kappa(t0)`` (vectorised; ``t1 >= t0``)."""
        t0 = np.atleast_1d(np.asarray(t0_ns, dtype=np.int64))
        t1 = np.atleast_1d(np.asarray(t1_ns, dtype=np.int64))
        t0, t1 = np.broadcast_arrays(t0, t1)
        c = self.as_array()
        return np.array([_clock_increment(c, int(a), int(b)) for a, b in zip(t0, t1)])

    def speed(self, t_ns) -> np.ndarray:
        """``kappa'(t)`` per hour."""
        u = np.maximum((self.resolution_ns - np.asarray(t_ns, dtype=np.int64)) / NS_PER_HOUR, 0.0)
        if math.isinf(self.scale_hours):
            return np.full(np.shape(u), 1.0 + self.floor)
        h = self.scale_hours
        return self.floor + (h / (u + h)) ** 2


@nb.njit(cache=True)
def _clock_increment(clk, t0_ns, t1_ns):  # pragma: no cover - numba
    """kappa(t1) - kappa(t0) in clock units (hours at unit speed), closed form."""
    if t1_ns <= t0_ns:
        return 0.0
    tr = clk[0]
    h = clk[1]
    eps = clk[2]
    dt_h = (t1_ns - t0_ns) / 3.6e12
    if math.isinf(h):
        return (1.0 + eps) * dt_h
    u0 = (tr - float(t0_ns)) / 3.6e12  # hours to resolution
    u1 = (tr - float(t1_ns)) / 3.6e12
    out = eps * dt_h
    if u1 >= 0.0:  # both before resolution: h^2 (1/(u1+h) - 1/(u0+h))
        out += h * h * (u0 - u1) / ((u0 + h) * (u1 + h))
    elif u0 <= 0.0:  # both after: constant speed 1
        out += dt_h
    else:  # straddles resolution
        out += h * h * u0 / ((u0 + h) * h) + (-u1)
    return out


# ======================================================================================
# 3. Numerics shared by the kernel: Phi, phi, Phi^{-1}
# ======================================================================================


@nb.njit(cache=True)
def _ncdf(x):  # pragma: no cover - numba
    return 0.5 * math.erfc(-x / SQRT2)


@nb.njit(cache=True)
def _npdf(x):  # pragma: no cover - numba
    return INV_SQRT_2PI * math.exp(-0.5 * x * x)


@nb.njit(cache=True)
def _ndtri(p):  # pragma: no cover - numba
    """Phi^{-1}(p): Acklam's rational approximation, then two Halley steps (~1e-15)."""
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    a0, a1, a2, a3, a4, a5 = -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, \
        1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00
    b0, b1, b2, b3, b4 = -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, \
        6.680131188771972e+01, -1.328068155288572e+01
    c0, c1, c2, c3, c4, c5 = -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, \
        -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00
    d0, d1, d2, d3 = 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00
    plow = 0.02425
    if p < plow:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1.0)
    elif p <= 1.0 - plow:
        q = p - 0.5
        r = q * q
        x = (((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q / \
            (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1.0)
    else:
        q = math.sqrt(-2.0 * math.log(1.0 - p))
        x = -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1.0)
    for _ in range(2):  # Halley refinement against erfc
        if p < 0.5:
            e = _ncdf(x) - p
        else:
            e = (1.0 - p) - _ncdf(-x)
        u = e / _npdf(x)
        x = x - u / (1.0 + 0.5 * x * u)
    return x


# ======================================================================================
# 4. The EKF kernel (one fill), the prediction, and the compiled loops
# ======================================================================================

# parameter vector layout (float64)
P_Q, P_R0, P_R1, P_B0, P_B1, P_JRATE, P_JVAR, P_ZONE_LO, P_ZONE_HI, P_MID_LO, P_MID_HI, \
    P_GAIN, P_LOGQ_MIN, P_LOGQ_MAX, P_P0, P_GROWTH = range(16)
N_PARAMS = 16
# filter state layout (float64): probit mean and variance; log q; the sensitivities of the
# mean, the variance and log q to theta0 = log q at the start (recursive ML); the running
# Fisher information and its bias-correction factor
S_M, S_P, S_LOGQ, S_DM, S_DP, S_DLOGQ, S_INFO, S_DECAY = range(8)
N_STATE = 8
# int state: last update time (ns), number of fills seen
I_T, I_N = range(2)
# output layout (float64)
O_Y, O_P, O_SD, O_Z, O_LL, O_JUMP, O_M, O_VAR, O_Q, O_EDGE, O_SCORE = range(11)
N_OUT = 11


@nb.njit(cache=True)
def _init_state(st, sti, logq):  # pragma: no cover - numba
    for j in range(N_STATE):
        st[j] = 0.0
    st[S_LOGQ] = logq
    st[S_DLOGQ] = 1.0
    st[S_DECAY] = 1.0
    sti[I_T] = 0
    sti[I_N] = 0


@nb.njit(cache=True)
def _diffusion(prm, logq, dlogq, dk):  # pragma: no cover - numba
    """State variance accrued over a clock increment ``dk`` and the new log q.

    Without growth: ``q dk`` and ``q`` unchanged. With UCBM growth ``dq/dkappa = q^2``:
    ``q(kappa) = q0 / (1 - q0 kappa)``, accrued variance ``int q dkappa = -log(1 - q0 dk)``
    = ``log(q1/q0)``, with q capped at ``exp(P_LOGQ_MAX)`` (constant beyond). Returns
    ``(var_inc, d var_inc/d theta0, logq1, d logq1/d theta0)``.
    """
    q = math.exp(logq)
    if prm[P_GROWTH] == 0.0 or dk <= 0.0:
        return q * dk, q * dk * dlogq, logq, dlogq
    qmax = math.exp(prm[P_LOGQ_MAX])
    kstar = 1.0 / q - 1.0 / qmax  # clock time until q reaches the cap
    if dk < kstar:
        x = q * dk
        l1 = -math.log1p(-x)
        d1 = dlogq / (1.0 - x)
        return l1, d1 - dlogq, logq + l1, d1
    return math.log(qmax / q) + qmax * (dk - kstar), dlogq * (qmax / q - 1.0), prm[P_LOGQ_MAX], 0.0


@nb.njit(cache=True)
def _gauss_branch(m, pb, dm, dpb, h0, hh, nu, r):  # pragma: no cover - numba
    """EKF update of one branch. Returns (m, P, logN, dm, dP, dlogN)."""
    s = hh * hh * pb + r
    k = pb * hh / s
    m1 = m + k * nu
    p1 = pb * r / s
    logn = -0.5 * (LOG_2PI + math.log(s) + nu * nu / s)
    # sensitivities w.r.t. theta0 (h0, hh, nu depend on m through the linearisation point)
    dh0 = hh * dm
    dhh = -m * hh * dm
    ds = 2.0 * hh * dhh * pb + hh * hh * dpb
    dnu = -dh0
    dk = (dpb * hh + pb * dhh) / s - k * ds / s
    dm1 = dm + dk * nu + k * dnu
    dp1 = r * dpb / s - p1 * ds / s
    dlogn = -0.5 * (ds / s + 2.0 * nu * dnu / s - nu * nu * ds / (s * s))
    return m1, p1, logn, dm1, dp1, dlogn


_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(48)
_GH_X = _GH_NODES * SQRT2  # standard-normal nodes
_GH_W = _GH_WEIGHTS / math.sqrt(math.pi)  # weights summing to 1


@nb.njit(cache=True)
def _quad_branch(m, pb, dm, dpb, y, b, r, mid_lo, mid_hi):  # pragma: no cover - numba
    """Moment-matching update by Gauss-Hermite quadrature for the saturating measurement.

    ``y = clip(Phi(x) + b, mid_lo, mid_hi) + e``: near the price bounds the quotable mid
    saturates, and a linearisation would be wrong (or stuck at a zero slope). The posterior
    mean and variance of ``x`` and the predictive density of ``y`` are quadrature sums over
    the prior ``N(m, pb)``; their derivatives follow exactly by differentiating the sums.
    Returns (m, P, logZ, dm, dP, dlogZ, E[h], Var[h]).
    """
    s = math.sqrt(pb)
    ds = dpb / (2.0 * s)
    zsum = 0.0
    m1 = 0.0
    m2 = 0.0
    dz = 0.0
    dm1 = 0.0
    dm2 = 0.0
    eh = 0.0
    eh2 = 0.0
    # log-likelihoods relative to their maximum over the nodes, to avoid underflow
    lmax = -1e300
    for i in range(_GH_X.size):
        xi = m + s * _GH_X[i]
        hi_ = _ncdf(xi) + b
        if hi_ < mid_lo:
            hi_ = mid_lo
        elif hi_ > mid_hi:
            hi_ = mid_hi
        li = -0.5 * (y - hi_) * (y - hi_) / r
        if li > lmax:
            lmax = li
    for i in range(_GH_X.size):
        xi = m + s * _GH_X[i]
        raw = _ncdf(xi) + b
        if raw < mid_lo:
            hi_ = mid_lo
            slope = 0.0
        elif raw > mid_hi:
            hi_ = mid_hi
            slope = 0.0
        else:
            hi_ = raw
            slope = _npdf(xi)
        w = _GH_W[i]
        eh += w * hi_
        eh2 += w * hi_ * hi_
        li = w * math.exp(-0.5 * (y - hi_) * (y - hi_) / r - lmax)
        dli = li * (y - hi_) * slope / r  # d li / d xi
        dxi = dm + _GH_X[i] * ds
        zsum += li
        m1 += li * xi
        m2 += li * xi * xi
        dz += dli * dxi
        dm1 += (dli * xi + li) * dxi
        dm2 += (dli * xi * xi + 2.0 * li * xi) * dxi
    mean = m1 / zsum
    var = m2 / zsum - mean * mean
    if var < 1e-12 * pb:
        var = 1e-12 * pb
    dmean = dm1 / zsum - mean * dz / zsum
    dvar = dm2 / zsum - m2 * dz / (zsum * zsum) - 2.0 * mean * dmean
    logz = math.log(zsum) + lmax - 0.5 * (LOG_2PI + math.log(r))
    return mean, var, logz, dmean, dvar, dz / zsum, eh, eh2 - eh * eh


@nb.njit(cache=True)
def _step(st, sti, prm, clk, t_ns, contract, price, out):  # pragma: no cover - numba
    """Process one fill: predict to ``t_ns``, update, collapse the jump mixture, adapt q."""
    y = price if contract == 0 else 1.0 - price
    b = prm[P_B0] if contract == 0 else prm[P_B1]
    r = prm[P_R0] if contract == 0 else prm[P_R1]
    mid_lo = prm[P_MID_LO]
    mid_hi = prm[P_MID_HI]
    # near a price bound the measurement saturates: quadrature instead of linearisation
    edge = y <= prm[P_ZONE_LO] or y >= prm[P_ZONE_HI]
    out[O_Y] = y
    out[O_EDGE] = 1.0 if edge else 0.0
    if sti[I_N] == 0:
        # first fill: the state starts at the fill's implied probit with a variance of a few
        # observation variances (mapped to probit); it contributes no likelihood.
        pe = min(max(y, mid_lo), mid_hi) - b
        pe = min(max(pe, 1e-4), 1.0 - 1e-4)
        m = _ndtri(pe)
        dens = _npdf(m)
        pinit = prm[P_P0]
        if not (pinit > 0.0):
            pinit = 4.0 * r / (dens * dens)
        st[S_M] = m
        st[S_P] = pinit
        st[S_DM] = 0.0
        st[S_DP] = 0.0
        sti[I_T] = t_ns
        sti[I_N] = 1
        out[O_P] = _ncdf(m)
        out[O_SD] = dens * math.sqrt(pinit)
        out[O_Z] = 0.0
        out[O_LL] = 0.0
        out[O_JUMP] = 0.0
        out[O_M] = m
        out[O_VAR] = pinit
        out[O_Q] = math.exp(st[S_LOGQ])
        out[O_SCORE] = 0.0
        return
    t_prev = sti[I_T]
    if t_ns < t_prev:
        t_ns = t_prev
    # ---- predict: diffusion over the information clock (+ jump branch)
    dk = _clock_increment(clk, t_prev, t_ns)
    vinc, dvinc, logq, dlogq = _diffusion(prm, st[S_LOGQ], st[S_DLOGQ], dk)
    m = st[S_M]
    dm = st[S_DM]
    pd = st[S_P] + vinc
    dpd = st[S_DP] + dvinc
    pi = 1.0 - math.exp(-prm[P_JRATE] * (t_ns - t_prev) / 3.6e12)
    pj = pd + prm[P_JVAR]
    hh = _npdf(m)
    h0 = _ncdf(m) + b
    nu = y - h0
    s0 = hh * hh * pd + r
    # ---- update each branch
    hold = False
    if edge:
        m0, p0, l0, dm0, dp0, dl0, eh, vh = _quad_branch(m, pd, dm, dpd, y, b, r, mid_lo, mid_hi)
        z = (y - eh) / math.sqrt(vh + r)
        # saturated mode: when the prediction itself sits beyond the bound (the quotable mid
        # is pinned) and the fill agrees with it, the fill only repeats "p is at or beyond
        # the bound". Applying it to a Gaussian would truncate the same side again and again
        # (assumed-density bias: the mean creeps outward while the variance collapses), so
        # it enters the likelihood but the state is left to diffuse.
        if y >= prm[P_ZONE_HI]:
            xb = _ndtri(min(mid_hi - b, 1.0))
            psat = _ncdf((m - xb) / math.sqrt(pd))
        else:
            xb = _ndtri(max(mid_lo - b, 0.0))
            psat = _ncdf((xb - m) / math.sqrt(pd))
        if psat >= 0.5 and abs(z) < 2.0:
            hold = True
            m0, p0, dm0, dp0 = m, pd, dm, dpd
            m1, p1, l1, dm1, dp1, dl1 = m0, p0, l0, dm0, dp0, dl0
            out[O_EDGE] = 2.0
        elif pi > 0.0:
            m1, p1, l1, dm1, dp1, dl1, _, _ = _quad_branch(m, pj, dm, dpd, y, b, r, mid_lo, mid_hi)
        else:
            m1, p1, l1, dm1, dp1, dl1 = m0, p0, l0, dm0, dp0, dl0
        fisher = 0.0
    else:
        m0, p0, l0, dm0, dp0, dl0 = _gauss_branch(m, pd, dm, dpd, h0, hh, nu, r)
        if pi > 0.0:
            m1, p1, l1, dm1, dp1, dl1 = _gauss_branch(m, pj, dm, dpd, h0, hh, nu, r)
        else:
            m1, p1, l1, dm1, dp1, dl1 = m0, p0, l0, dm0, dp0, dl0
        z = nu / math.sqrt(s0)
        # expected Fisher information of this fill about theta0 (no-jump branch), the
        # information of N(h, S): 1/2 (dS/S)^2 + (dh)^2 / S. It does not depend on the
        # innovation, so the recursive step is not biased by the skew of nu^2.
        dh = hh * dm
        ds_ = 2.0 * hh * (-m * hh * dm) * pd + hh * hh * dpd
        fisher = 0.5 * (ds_ / s0) * (ds_ / s0) + dh * dh / s0
    # ---- two-component mixture (no jump / jump) -> one Gaussian (moment matching)
    if pi > 0.0 and not hold:
        a0 = math.log1p(-pi) + l0
        a1 = math.log(pi) + l1
        amax = a0 if a0 > a1 else a1
        e0 = math.exp(a0 - amax)
        e1 = math.exp(a1 - amax)
        ll = amax + math.log(e0 + e1)
        w0 = e0 / (e0 + e1)
        w1 = e1 / (e0 + e1)
        dll = w0 * dl0 + w1 * dl1
        dw0 = w0 * (dl0 - dll)
        dw1 = w1 * (dl1 - dll)
        mn = w0 * m0 + w1 * m1
        dmn = dw0 * m0 + w0 * dm0 + dw1 * m1 + w1 * dm1
        g0 = m0 - mn
        g1 = m1 - mn
        pn = w0 * (p0 + g0 * g0) + w1 * (p1 + g1 * g1)
        dpn = dw0 * (p0 + g0 * g0) + w0 * (dp0 + 2.0 * g0 * (dm0 - dmn)) \
            + dw1 * (p1 + g1 * g1) + w1 * (dp1 + 2.0 * g1 * (dm1 - dmn))
        if prm[P_GROWTH] != 0.0:
            # UCBM: a news jump reveals information, so the remaining variance R drops and
            # q = c/R rises by R/(R - J) = 1 + E[jump^2]; the jump's size estimates it
            dx = m1 - m
            lj = math.log1p(dx * dx)
            logq += w1 * lj
            dlogq += dw1 * lj + w1 * 2.0 * dx / (1.0 + dx * dx) * (dm1 - dm)
    else:
        ll = l0
        w1 = 0.0
        dll = dl0
        mn = m0
        dmn = dm0
        pn = p0
        dpn = dp0
    # ---- recursive maximum likelihood for theta0 (Gauss-Newton step, expected information)
    gain = prm[P_GAIN]
    if gain > 0.0 and not edge:
        decay = st[S_DECAY] * (1.0 - gain)
        info = (1.0 - gain) * st[S_INFO] + gain * fisher
        st[S_DECAY] = decay
        st[S_INFO] = info
        info_hat = info / (1.0 - decay)  # bias-corrected running mean
        if info_hat > 0.0:
            step = gain * dll / info_hat * dlogq
            if step > 0.1:
                step = 0.1
            elif step < -0.1:
                step = -0.1
            logq += step
    if logq >= prm[P_LOGQ_MAX]:
        logq = prm[P_LOGQ_MAX]
        dlogq = 0.0
    elif logq < prm[P_LOGQ_MIN]:
        logq = prm[P_LOGQ_MIN]
        dlogq = 0.0
    st[S_M] = mn
    st[S_P] = pn
    st[S_DM] = dmn
    st[S_DP] = dpn
    st[S_LOGQ] = logq
    st[S_DLOGQ] = dlogq
    sti[I_T] = t_ns
    sti[I_N] += 1
    dens = _npdf(mn)
    out[O_P] = _ncdf(mn)
    out[O_SD] = dens * math.sqrt(pn)
    out[O_Z] = z
    out[O_LL] = ll
    out[O_JUMP] = w1
    out[O_M] = mn
    out[O_VAR] = pn
    out[O_Q] = math.exp(logq)
    out[O_SCORE] = dll


@nb.njit(cache=True)
def _predict(st, sti, prm, clk, t_ns):  # pragma: no cover - numba
    """Predictive (p, sd, probit mean, probit variance) at ``t_ns`` without updating."""
    if sti[I_N] == 0:
        return np.nan, np.nan, np.nan, np.nan
    t_prev = sti[I_T]
    m = st[S_M]
    if t_ns <= t_prev:
        var = st[S_P]
    else:
        dk = _clock_increment(clk, t_prev, t_ns)
        vinc, _, _, _ = _diffusion(prm, st[S_LOGQ], st[S_DLOGQ], dk)
        pi = 1.0 - math.exp(-prm[P_JRATE] * (t_ns - t_prev) / 3.6e12)
        var = st[S_P] + vinc + pi * prm[P_JVAR]
    return _ncdf(m), _npdf(m) * math.sqrt(var), m, var


@nb.njit(cache=True)
def _run(st, sti, prm, clk, t_ns, contract, price, grid_ns, out, grid_out):  # pragma: no cover - numba
    """Fills in time order; grid predictions at each grid time use the fills strictly before it."""
    n = t_ns.size
    g = 0
    ng = grid_ns.size
    row = np.empty(N_OUT)
    for i in range(n):
        while g < ng and grid_ns[g] <= t_ns[i]:
            p, sd, m, v = _predict(st, sti, prm, clk, grid_ns[g])
            grid_out[g, 0] = p
            grid_out[g, 1] = sd
            grid_out[g, 2] = m
            grid_out[g, 3] = v
            g += 1
        _step(st, sti, prm, clk, t_ns[i], contract[i], price[i], row)
        for j in range(N_OUT):
            out[i, j] = row[j]
    return g


@nb.njit(cache=True)
def _loglik(st, sti, prm, clk, t_ns, contract, price):  # pragma: no cover - numba
    row = np.empty(N_OUT)
    total = 0.0
    for i in range(t_ns.size):
        _step(st, sti, prm, clk, t_ns[i], contract[i], price[i], row)
        total += row[O_LL]
    return total


# ======================================================================================
# 5. Parameters, outputs, estimation
# ======================================================================================


@dataclass(frozen=True)
class KalshiFilterParams:
    """Parameters of the denoiser.

    Estimated (:func:`fit_kalshi_filter`): ``q`` (probit variance per information-clock
    unit), ``bounce_var`` (per contract, dollars^2, on top of the rounding variance
    ``tick^2/12``) and ``bias[1]`` (KH: ``E[1 - KH price] - p``). ``bias[0]`` (DJT) is the
    anchor, 0 by convention (only the difference of the two biases is identified).
    Design (fixed): the news-jump prior ``jump_rate`` per hour with probit sd ``jump_sd``;
    the tick; ``mid_bounds``, the last quotable mids (with a 1c tick and a 1c half-spread,
    fills lie in 1c..99c, so mids in 2c..98c): the measurement is
    ``clip(Phi(x) + b, *mid_bounds)``, and fills within ``edge_zone`` of those bounds are
    updated by quadrature; ``ucbm_growth`` (q grows as information is revealed).
    ``adapt_gain`` is the online recursive-ML gain for ``log q`` (0 = no online
    correction; memory ~ 1/gain fills), within ``q_bounds``. ``q`` is the value at the
    first fill; with ``ucbm_growth`` it then evolves.
    """

    q: float = 0.5
    bounce_var: tuple[float, float] = (1e-4, 1e-4)
    bias: tuple[float, float] = (0.0, 0.0)
    jump_rate: float = 1.0
    jump_sd: float = 0.25
    tick: float = 0.01
    mid_bounds: tuple[float, float] = (0.02, 0.98)
    edge_zone: float = 0.03
    adapt_gain: float = 0.001
    q_bounds: tuple[float, float] = (1e-4, 100.0)
    init_var: float = 0.0  # probit variance of the first fill's state; 0 = 4 obs variances
    ucbm_growth: bool = True  # q grows as information is revealed (dq/dkappa = q^2, news jumps)

    def __post_init__(self):
        if not (self.q > 0 and math.isfinite(self.q)):
            raise ValueError("q must be finite and > 0")
        if len(self.bounce_var) != 2 or any(not (v >= 0 and math.isfinite(v)) for v in self.bounce_var):
            raise ValueError("bounce_var must be two finite values >= 0")
        if len(self.bias) != 2 or any(not math.isfinite(b) or abs(b) >= 0.5 for b in self.bias):
            raise ValueError("bias must be two finite values in (-0.5, 0.5)")
        if not (self.jump_rate >= 0 and self.jump_sd >= 0):
            raise ValueError("jump_rate and jump_sd must be >= 0")
        if not (self.tick > 0 and 0 < self.mid_bounds[0] < 0.5 < self.mid_bounds[1] < 1 and self.edge_zone >= 0):
            raise ValueError("need tick > 0, 0 < mid_bounds[0] < 0.5 < mid_bounds[1] < 1 and edge_zone >= 0")
        if not (0 <= self.adapt_gain < 1):
            raise ValueError("adapt_gain must be in [0, 1)")
        if not (0 < self.q_bounds[0] <= self.q <= self.q_bounds[1]):
            raise ValueError("q must lie within q_bounds")

    @property
    def obs_var(self) -> tuple[float, float]:
        """Observation noise variance per contract: ``tick^2 / 12 + bounce_var``."""
        base = self.tick * self.tick / 12.0
        return (base + self.bounce_var[0], base + self.bounce_var[1])

    def as_array(self) -> np.ndarray:
        a = np.zeros(N_PARAMS)
        a[P_Q] = self.q
        a[P_R0], a[P_R1] = self.obs_var
        a[P_B0], a[P_B1] = self.bias
        a[P_JRATE] = self.jump_rate
        a[P_JVAR] = self.jump_sd ** 2
        a[P_MID_LO], a[P_MID_HI] = self.mid_bounds
        a[P_ZONE_LO], a[P_ZONE_HI] = self.mid_bounds[0] + self.edge_zone, self.mid_bounds[1] - self.edge_zone
        a[P_GAIN] = self.adapt_gain
        a[P_LOGQ_MIN], a[P_LOGQ_MAX] = math.log(self.q_bounds[0]), math.log(self.q_bounds[1])
        a[P_P0] = self.init_var
        a[P_GROWTH] = 1.0 if self.ucbm_growth else 0.0
        return a


class FilterOutput(NamedTuple):
    """One fill's result."""

    time_ns: int
    contract: int  # 0 = DJT, 1 = KH
    price: float  # the fill's own price, dollars
    p_obs: float  # the fill read as Trump-wins probability (price, or 1 - price for KH)
    p: float  # filtered probability Phi(m)
    sd: float  # its standard deviation, delta method phi(m) sqrt(P)
    z: float  # standardised innovation under the no-jump prediction
    regime: str  # "calm" |z| < 2, "moving" 2 <= |z| < 4, "shock" |z| >= 4
    jump_prob: float  # posterior probability that a news jump happened since the last fill
    loglik: float  # log predictive density of this fill
    q: float  # the state scale in force after this fill
    edge: int  # 0 interior (EKF), 1 near a price bound (quadrature), 2 saturated (likelihood only)
    warm: bool  # parameters fitted (False during the warm-up, on provisional parameters)


def regime_of(z, thresholds: tuple[float, float] = (2.0, 4.0)):
    """Regime code(s) by |z|: 0 calm, 1 moving, 2 shock (names in :data:`REGIMES`)."""
    a = np.abs(np.asarray(z, dtype=np.float64))
    code = (a >= thresholds[0]).astype(np.int8) + (a >= thresholds[1]).astype(np.int8)
    return code if code.ndim else int(code)


@dataclass
class KalshiFit:
    """Result of :func:`fit_kalshi_filter`."""

    params: KalshiFilterParams
    loglik: float
    n_obs: int
    converged: bool
    message: str
    estimates: dict[str, float] = field(default_factory=dict)  # natural scale
    stderr: dict[str, float] = field(default_factory=dict)  # from the numerical Hessian (delta method)

    def summary(self) -> str:
        rows = [f"{k:>12s} = {v: .6g}  (se {self.stderr.get(k, float('nan')):.2g})" for k, v in self.estimates.items()]
        return "\n".join([f"loglik {self.loglik:.3f} over {self.n_obs} fills, converged={self.converged}", *rows])


def _as_arrays(t_ns, contract, price):
    t = np.ascontiguousarray(np.asarray(t_ns, dtype=np.int64))
    c = np.asarray(contract)
    if c.dtype.kind in "OUS":
        try:
            c = np.array([CONTRACT_INDEX[str(x)] for x in c], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"unknown contract {exc.args[0]!r}; expected one of {sorted(CONTRACT_INDEX)}") from None
    c = np.ascontiguousarray(c.astype(np.int64))
    px = np.ascontiguousarray(np.asarray(price, dtype=np.float64))
    if not (t.ndim == c.ndim == px.ndim == 1 and t.size == c.size == px.size):
        raise ValueError("time, contract and price must be 1-d arrays of equal length")
    if t.size and np.any(np.diff(t) < 0):
        raise ValueError("fills must be in time order")
    if np.any((c != 0) & (c != 1)):
        raise ValueError("contract codes must be 0 (DJT) or 1 (KH)")
    if np.any(~np.isfinite(px)) or np.any((px <= 0) | (px >= 1)):
        raise ValueError("prices must be dollars strictly between 0 and 1")
    return t, c, px


MIN_FILLS_PER_CONTRACT = 10
FIT_NAMES = ("q", "bounce_var_djt", "bounce_var_kh", "bias_kh")


def _theta_to_params(theta, base: KalshiFilterParams) -> KalshiFilterParams:
    lq, lb0, lb1, b1 = theta
    return replace(base, q=float(np.clip(math.exp(lq), *base.q_bounds)),
                   bounce_var=(math.exp(lb0), math.exp(lb1)), bias=(base.bias[0], float(b1)), adapt_gain=0.0)


def _neg_loglik(theta, base, clk, t, c, px):
    try:
        prm = _theta_to_params(theta, base).as_array()
    except ValueError:
        return 1e12
    st = np.zeros(N_STATE)
    sti = np.zeros(2, dtype=np.int64)
    _init_state(st, sti, math.log(prm[P_Q]))
    val = -_loglik(st, sti, prm, clk, t, c, px)
    return val if math.isfinite(val) else 1e12


def fit_kalshi_filter(t_ns, contract, price, *, clock: InformationClock | None = None,
                      base: KalshiFilterParams | None = None) -> KalshiFit:
    """Maximum likelihood of ``(q, bounce_var_DJT, bounce_var_KH, bias_KH)`` on a window of fills.

    The likelihood is the prediction-error decomposition of the EKF (the mixture's
    predictive density of each fill given the earlier ones; the first fill initialises the
    state and is conditioned on). ``q`` is held fixed within the window (``adapt_gain`` is
    ignored). Design parameters (jump prior, tick, price bounds, growth) come from ``base``.
    Optimiser: a coarse grid over ``log q`` (the only weakly identified parameter), then
    L-BFGS-B over ``(log q, log bounce_DJT, log bounce_KH, bias_KH)``; standard errors from
    a central-difference Hessian of the log-likelihood, mapped to the natural scale.
    """
    base = base or KalshiFilterParams()
    clock = clock or InformationClock()
    t, c, px = _as_arrays(t_ns, contract, price)
    if t.size < 20:
        raise ValueError("need at least 20 fills to estimate the filter's parameters")
    if min(np.count_nonzero(c == 0), np.count_nonzero(c == 1)) < MIN_FILLS_PER_CONTRACT:
        raise ValueError(f"need at least {MIN_FILLS_PER_CONTRACT} fills of each contract to estimate the filter's "
                         "parameters")
    clk = clock.as_array()
    # starting values: bounce from the tick-to-tick price changes, bias from the level gap
    y = np.where(c == 0, px, 1.0 - px)
    start_b = []
    for k in (0, 1):
        yk = y[c == k]
        d2 = 0.5 * np.mean(np.diff(yk) ** 2) if yk.size > 1 else 1e-4
        start_b.append(math.log(max(d2 - base.tick ** 2 / 12.0, 1e-6)))
    bias0 = float(np.median(y[c == 1]) - np.median(y[c == 0])) if t.size else 0.0
    lo_q, hi_q = math.log(base.q_bounds[0]), math.log(base.q_bounds[1])
    bounds = [(lo_q, hi_q), (math.log(1e-8), math.log(0.05)), (math.log(1e-8), math.log(0.05)), (-0.2, 0.2)]
    args = (base, clk, t, c, px)
    # profile over a coarse grid of log q (q is the weakly identified parameter and a large
    # q, where the filter just follows the fills, is a poor local optimum), then polish all
    best = None
    for g in np.linspace(max(lo_q, math.log(1e-2)), min(hi_q, math.log(30.0)), 7):
        sub = optimize.minimize(lambda th, g=g: _neg_loglik((g, *th), *args), np.array([start_b[0], start_b[1], bias0]),
                                method="L-BFGS-B", bounds=bounds[1:], options={"maxiter": 200})
        if best is None or sub.fun < best[0]:
            best = (sub.fun, np.array([g, *sub.x]))
    res = optimize.minimize(_neg_loglik, best[1], args=args, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 500})
    if res.fun > best[0]:  # keep the better of the profile point and the polish
        res.x, res.fun = best[1], best[0]
    theta = res.x
    params = replace(_theta_to_params(theta, base), adapt_gain=base.adapt_gain)
    # standard errors: Hessian of -loglik in theta, delta method to the natural scale
    hess = _num_hessian(lambda th: _neg_loglik(th, base, clk, t, c, px), theta)
    try:
        cov = np.linalg.inv(hess)
        se_theta = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    except np.linalg.LinAlgError:
        se_theta = np.full(4, np.nan)
    natural = np.array([math.exp(theta[0]), math.exp(theta[1]), math.exp(theta[2]), theta[3]])
    jac = np.array([natural[0], natural[1], natural[2], 1.0])
    estimates = dict(zip(FIT_NAMES, map(float, natural)))
    stderr = dict(zip(FIT_NAMES, map(float, jac * se_theta)))
    return KalshiFit(params=params, loglik=float(-res.fun), n_obs=int(t.size), converged=bool(res.success),
                     message=str(res.message), estimates=estimates, stderr=stderr)


def _num_hessian(f, x, rel: float = 1e-4) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    h = rel * np.maximum(np.abs(x), 1.0)
    hess = np.empty((n, n))
    f0 = f(x)
    for i in range(n):
        for j in range(i, n):
            if i == j:
                e = np.zeros(n)
                e[i] = h[i]
                hess[i, i] = (f(x + e) - 2.0 * f0 + f(x - e)) / (h[i] * h[i])
            else:
                ei = np.zeros(n)
                ej = np.zeros(n)
                ei[i], ej[j] = h[i], h[j]
                hess[i, j] = hess[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                    4.0 * h[i] * h[j])
    return hess


# ======================================================================================
# 6. The incremental filter and its batch form
# ======================================================================================


@dataclass
class FilterOutputs:
    """Per-fill results of a batch (arrays of equal length; see :class:`FilterOutput`)."""

    time_ns: np.ndarray
    contract: np.ndarray
    price: np.ndarray
    p_obs: np.ndarray
    p: np.ndarray
    sd: np.ndarray
    z: np.ndarray
    regime: np.ndarray  # int8 codes into REGIMES
    jump_prob: np.ndarray
    loglik: np.ndarray
    q: np.ndarray
    edge: np.ndarray  # int8: 0 interior (EKF), 1 near a bound (quadrature), 2 saturated
    warm: np.ndarray
    probit_mean: np.ndarray
    probit_var: np.ndarray

    def __len__(self) -> int:
        return int(self.time_ns.size)


class KalshiProbabilityFilter:
    """Incremental election-probability filter over DJT and KH fills.

    ``params=None`` (default) estimates the parameters: the first ``warmup_fills`` fills
    (more if either contract has fewer than ``MIN_FILLS_PER_CONTRACT`` of them) are
    filtered with ``provisional`` design parameters (outputs flagged ``warm=False``), then
    :func:`fit_kalshi_filter` runs on them (once, ~0.5-1 s), the state is rebuilt by
    re-filtering them with the estimates, and the filter continues (``q`` then adapts
    online by recursive ML when ``adapt_gain > 0``). With ``params`` given, no fitting.

    ``update(t_ns, contract, price, count)`` returns a :class:`FilterOutput`;
    ``predict(t_ns)`` returns ``(p, sd)`` at ``t_ns`` from the fills so far, without
    changing the state (NaN before the first fill; for ``t_ns`` at or before the last fill,
    the filtered value after it). ``update_many`` is the same computation over arrays, with
    grid predictions interleaved (identical results). ``count`` is accepted and ignored:
    fill size carries no information about the price error in this model (see
    docs/kalshi-filter.md).
    """

    def __init__(self, params: KalshiFilterParams | None = None, *, clock: InformationClock | None = None,
                 warmup_fills: int = 500, provisional: KalshiFilterParams | None = None,
                 regime_thresholds: tuple[float, float] = (2.0, 4.0)):
        self.clock = clock or InformationClock()
        self._clk = self.clock.as_array()
        if params is None and warmup_fills < 20:
            raise ValueError("warmup_fills must be >= 20 when the parameters are estimated")
        self.warmup_fills = int(warmup_fills)
        self.regime_thresholds = (float(regime_thresholds[0]), float(regime_thresholds[1]))
        self.fit: KalshiFit | None = None
        self._fitting = params is None
        self._provisional = provisional or KalshiFilterParams()
        self._set_params(params if params is not None else self._provisional)
        self._st = np.zeros(N_STATE)
        self._sti = np.zeros(2, dtype=np.int64)
        _init_state(self._st, self._sti, math.log(self.params.q))
        self._row = np.empty(N_OUT)
        self._buf_t: list[int] = []
        self._buf_c: list[int] = []
        self._buf_p: list[float] = []
        self._nbuf_kh = 0

    # ---------------------------------------------------------------- state and params
    def _set_params(self, params: KalshiFilterParams) -> None:
        self.params = params
        self._prm = params.as_array()

    @property
    def warm(self) -> bool:
        """True once the parameters are final (given, or fitted after the warm-up)."""
        return not self._fitting

    @property
    def n_updates(self) -> int:
        return int(self._sti[I_N])

    @property
    def q(self) -> float:
        """The state scale currently in force (changes online when ``adapt_gain > 0``)."""
        return math.exp(self._st[S_LOGQ])

    @property
    def state(self) -> tuple[float, float]:
        """Probit posterior ``(mean, variance)`` after the last fill."""
        return float(self._st[S_M]), float(self._st[S_P])

    def _contract(self, contract) -> int:
        if isinstance(contract, (int, np.integer)):
            k = int(contract)
            if k not in (0, 1):
                raise ValueError("contract code must be 0 (DJT) or 1 (KH)")
            return k
        try:
            return CONTRACT_INDEX[str(contract)]
        except KeyError:
            raise ValueError(f"unknown contract {contract!r}; expected one of {sorted(CONTRACT_INDEX)}") from None

    def _warmup_ready(self) -> bool:
        # enough fills, and enough of each contract for its noise and bias (else keep going)
        n = len(self._buf_t)
        return n >= self.warmup_fills and min(self._nbuf_kh, n - self._nbuf_kh) >= MIN_FILLS_PER_CONTRACT

    def _finish_warmup(self) -> None:
        t, c, px = (np.array(self._buf_t, dtype=np.int64), np.array(self._buf_c, dtype=np.int64),
                    np.array(self._buf_p, dtype=np.float64))
        self.fit = fit_kalshi_filter(t, c, px, clock=self.clock, base=self._provisional)
        self._set_params(self.fit.params)
        _init_state(self._st, self._sti, math.log(self.params.q))
        out = np.empty((t.size, N_OUT))
        _run(self._st, self._sti, self._prm, self._clk, t, c, px, np.empty(0, dtype=np.int64), out,
             np.empty((0, 4)))
        self._fitting = False
        self._buf_t, self._buf_c, self._buf_p, self._nbuf_kh = [], [], [], 0

    # ---------------------------------------------------------------- streaming
    def update(self, t_ns: int, contract, price: float, count: int = 1) -> FilterOutput:
        """Process one fill (UTC ns, contract name or code, price in dollars)."""
        k = self._contract(contract)
        t_ns = int(t_ns)
        price = float(price)
        if not (0.0 < price < 1.0):
            raise ValueError(f"price must be dollars strictly between 0 and 1, got {price}")
        if self._sti[I_N] and t_ns < self._sti[I_T]:
            raise ValueError("fills must arrive in time order")
        warm = not self._fitting
        _step(self._st, self._sti, self._prm, self._clk, t_ns, k, price, self._row)
        y, p, sd, z, ll, jump, _, _, q, edge, _ = self._row.tolist()
        az = abs(z)
        regime = REGIMES[(az >= self.regime_thresholds[0]) + (az >= self.regime_thresholds[1])]
        out = FilterOutput(t_ns, k, price, y, p, sd, z, regime, jump, ll, q, int(edge), warm)
        if self._fitting:
            self._buf_t.append(t_ns)
            self._buf_c.append(k)
            self._buf_p.append(price)
            self._nbuf_kh += k
            if self._warmup_ready():
                self._finish_warmup()
        return out

    def predict(self, t_ns: int) -> tuple[float, float]:
        """``(p, sd)`` at ``t_ns`` given the fills so far (NaN before the first fill)."""
        p, sd, _, _ = _predict(self._st, self._sti, self._prm, self._clk, int(t_ns))
        return float(p), float(sd)

    def predict_probit(self, t_ns: int) -> tuple[float, float]:
        """Predictive probit ``(mean, variance)`` at ``t_ns`` (mixture moments)."""
        _, _, m, v = _predict(self._st, self._sti, self._prm, self._clk, int(t_ns))
        return float(m), float(v)

    # ---------------------------------------------------------------- batch
    def update_many(self, t_ns, contract, price, count=None, grid_ns=None):
        """Process arrays of fills in time order; optionally predict on ``grid_ns``.

        Returns :class:`FilterOutputs`, and with ``grid_ns`` also an ``(n_grid, 4)`` array
        of ``(p, sd, probit mean, probit variance)``: each grid time's prediction from the
        fills strictly before it (and those of earlier calls). Grid times must be sorted
        and not earlier than the last fill already processed.
        """
        t, c, px = _as_arrays(t_ns, contract, price)
        if self._sti[I_N] and t.size and t[0] < self._sti[I_T]:
            raise ValueError("fills must arrive in time order")
        grid = np.ascontiguousarray(np.asarray([] if grid_ns is None else grid_ns, dtype=np.int64))
        if grid.size and np.any(np.diff(grid) < 0):
            raise ValueError("grid times must be sorted")
        n = t.size
        out = np.empty((n, N_OUT))
        warm = np.ones(n, dtype=bool)
        grid_out = np.full((grid.size, 4), np.nan)
        i = 0
        g = 0
        while i < n:
            if self._fitting:
                j = min(n, i + max(1, self.warmup_fills - len(self._buf_t)))
                warm[i:j] = False
            else:
                j = n
            # grid points up to (and including) t[j-1] are consumed by this chunk's loop
            g_end = g + int(np.searchsorted(grid[g:], t[j - 1], side="right"))
            g += _run(self._st, self._sti, self._prm, self._clk, t[i:j], c[i:j], px[i:j], grid[g:g_end],
                      out[i:j], grid_out[g:g_end])
            if self._fitting:
                self._buf_t.extend(t[i:j].tolist())
                self._buf_c.extend(c[i:j].tolist())
                self._buf_p.extend(px[i:j].tolist())
                self._nbuf_kh += int(np.count_nonzero(c[i:j]))
                if self._warmup_ready():
                    self._finish_warmup()
            i = j
        for k in range(g, grid.size):  # grid times after the last fill
            grid_out[k] = _predict(self._st, self._sti, self._prm, self._clk, grid[k])
        res = FilterOutputs(
            time_ns=t, contract=c, price=px, p_obs=out[:, O_Y].copy(), p=out[:, O_P].copy(), sd=out[:, O_SD].copy(),
            z=out[:, O_Z].copy(), regime=regime_of(out[:, O_Z], self.regime_thresholds),
            jump_prob=out[:, O_JUMP].copy(), loglik=out[:, O_LL].copy(), q=out[:, O_Q].copy(),
            edge=out[:, O_EDGE].astype(np.int8), warm=warm, probit_mean=out[:, O_M].copy(),
            probit_var=out[:, O_VAR].copy())
        if grid_ns is None:
            return res
        return res, grid_out


def filter_kalshi_fills(t_ns, contract, price, count=None, *, params: KalshiFilterParams | None = None,
                        clock: InformationClock | None = None, warmup_fills: int = 500, grid_ns=None):
    """Batch form of :class:`KalshiProbabilityFilter` (same kernel; identical results).

    Returns ``(outputs, grid, filter)``: the per-fill :class:`FilterOutputs`, the grid
    predictions (``(n_grid, 4)``: p, sd, probit mean, probit variance; empty without
    ``grid_ns``) and the filter object (its ``fit`` holds the warm-up estimates).
    """
    f = KalshiProbabilityFilter(params, clock=clock, warmup_fills=warmup_fills)
    res, grid = f.update_many(t_ns, contract, price, count, grid_ns=np.asarray([] if grid_ns is None else grid_ns))
    return res, grid, f
