"""Lead-lag without cointegration: the Hayashi-Yoshida estimator on asynchronous ticks.

Hayashi & Yoshida (2005): with ``x`` observed at ``t_0 < ... < t_n`` and ``y`` at
``s_0 < ... < s_m``, increments ``dx_i = x(t_i) - x(t_{i-1})`` on ``I_i = (t_{i-1}, t_i]`` and
``dy_j`` on ``J_j = (s_{j-1}, s_j]``, the covariance of the two (log-)price paths is::

    HY = sum_i sum_j dx_i dy_j 1{I_i and J_j overlap}

- no synchronisation, no previous-tick interpolation; on a common grid it is the realised
covariance ``sum_i dx_i dy_i``. Lead-lag (Hoffmann, Rosenbaum & Yoshida 2013): shift ``y``'s
clock by ``lag``, i.e. use the intervals ``J_j - lag = (s_{j-1} - lag, s_j - lag]``::

    HY(lag) = sum_i sum_j dx_i dy_j 1{I_i overlaps J_j - lag}

If ``y`` follows ``x`` with a delay ``d`` (``y(t) = x(t - d) + noise``) then ``HY(lag)`` peaks at
``lag = d``: **a positive lag means x leads y**. The estimated lead-lag is the grid lag
maximising ``|HY(lag)|``. The correlation is ``HY(lag) / sqrt(sum dx^2 sum dy^2)`` (full-sample
realised variances). Huth & Abergel (2014) summarise the asymmetry by the lead-lag ratio::

    LLR = sum_{lag > 0} rho(lag)^2 / sum_{lag < 0} rho(lag)^2     (over the grid; > 1: x leads)

Computation. For a fixed lag the ``J_j`` overlapping ``I_i`` form a contiguous run
``lo(i)..hi(i)`` that moves monotonically with ``i``, and ``sum_{j=lo..hi} dy_j =
y(s_hi) - y(s_{lo-1})`` telescopes: a two-pointer merge gives ``HY(lag)`` in ``O(n + m)``
(numba), not ``O(n m)``. Intervals are half-open, so a common endpoint is not an overlap; time
stamps must be strictly increasing (aggregate simultaneous ticks first, e.g. keep the last
price per time stamp). Any time unit works (seconds, nanoseconds as float); lags use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

__all__ = ["HayashiYoshida", "LeadLag", "hayashi_yoshida", "lead_lag"]


@nb.njit(cache=True)
def _hy_lags(t_x, x, t_y, y, lags, out):  # pragma: no cover - numba
    n = t_x.shape[0]
    m = t_y.shape[0]
    for li in range(lags.shape[0]):
        lag = lags[li]
        total = 0.0
        lo = 1  # first j (1..m-1) with s_j - lag > t_{i-1}
        hi = 0  # number of q in 0..m-2 with s_q - lag < t_i (= last overlapping j)
        for i in range(1, n):
            left = t_x[i - 1]
            right = t_x[i]
            while lo < m and t_y[lo] - lag <= left:
                lo += 1
            while hi < m - 1 and t_y[hi] - lag < right:
                hi += 1
            if hi >= lo:
                total += (x[i] - x[i - 1]) * (y[hi] - y[lo - 1])
        out[li] = total


def _check_series(t, v, name: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if t.ndim != 1 or v.ndim != 1 or t.shape != v.shape:
        raise ValueError(f"t_{name} and {name} must be 1-d of the same length (got "
                         f"{t.shape} and {v.shape})")
    if t.size < 2:
        raise ValueError(f"{name} needs at least two observations (got {t.size})")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
        raise ValueError(f"t_{name} and {name} must be finite (no NaN)")
    if np.any(np.diff(t) <= 0.0):
        raise ValueError(f"t_{name} must be strictly increasing; aggregate ticks with equal "
                         "time stamps first (e.g. the last price per time stamp)")
    return np.ascontiguousarray(t), np.ascontiguousarray(v)


@dataclass(frozen=True, eq=False)
class HayashiYoshida:
    """``covariance[i]`` and ``correlation[i]`` at ``lags[i]`` (positive: x leads y)."""

    lags: np.ndarray
    covariance: np.ndarray
    correlation: np.ndarray
    realised_var_x: float
    realised_var_y: float


def hayashi_yoshida(t_x, x, t_y, y, lags=(0.0,)) -> HayashiYoshida:
    """Hayashi-Yoshida covariance and correlation of ``x`` and ``y`` shifted by each lag.

    ``x``/``y`` are the observed (log-)prices at the strictly increasing times
    ``t_x``/``t_y``; ``lags`` is any sequence in the same time unit.
    """
    t_x, x = _check_series(t_x, x, "x")
    t_y, y = _check_series(t_y, y, "y")
    grid = np.atleast_1d(np.asarray(lags, dtype=np.float64))
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ValueError("lags must be a non-empty 1-d sequence of finite numbers")
    cov = np.empty(grid.size)
    _hy_lags(t_x, x, t_y, y, np.ascontiguousarray(grid), cov)
    var_x = float(np.sum(np.diff(x) ** 2))
    var_y = float(np.sum(np.diff(y) ** 2))
    scale = np.sqrt(var_x * var_y)
    corr = cov / scale if scale > 0.0 else np.full_like(cov, np.nan)
    return HayashiYoshida(lags=grid, covariance=cov, correlation=corr, realised_var_x=var_x,
                          realised_var_y=var_y)


@dataclass(frozen=True, eq=False)
class LeadLag:
    """The HY curve, the lag maximising ``|HY|`` and the lead-lag ratio (x leads if > 1)."""

    curve: HayashiYoshida
    best_lag: float
    best_correlation: float
    lead_lag_ratio: float


def lead_lag(t_x, x, t_y, y, lags) -> LeadLag:
    """Lead-lag of ``y`` relative to ``x`` on a lag grid (Hoffmann-Rosenbaum-Yoshida argmax,
    Huth-Abergel ratio). ``best_lag > 0``: x leads y by that much.

    Ties in ``|HY|`` go to the smallest ``|lag|``. The ratio sums over the grid's positive
    and negative lags (use a symmetric grid); it is ``inf`` when the negative side is all
    zero and ``nan`` when the grid lacks one side.
    """
    curve = hayashi_yoshida(t_x, x, t_y, y, lags)
    grid = curve.lags
    magnitude = np.abs(curve.covariance)
    candidates = np.flatnonzero(magnitude == magnitude.max())
    best = int(candidates[np.argmin(np.abs(grid[candidates]))])
    positive = grid > 0.0
    negative = grid < 0.0
    if not positive.any() or not negative.any():
        ratio = float("nan")
    else:
        num = float(np.sum(curve.correlation[positive] ** 2))
        den = float(np.sum(curve.correlation[negative] ** 2))
        ratio = num / den if den > 0.0 else (float("inf") if num > 0.0 else float("nan"))
    return LeadLag(curve=curve, best_lag=float(grid[best]),
                   best_correlation=float(curve.correlation[best]), lead_lag_ratio=ratio)
