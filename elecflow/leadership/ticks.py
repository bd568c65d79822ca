"""Streaming lead-lag on asynchronous ticks: rolling tick windows, derived-series ticks and
Hayashi-Yoshida curves accumulated per regime.

* :class:`TickWindow` keeps one series' ticks ``(t_ns, value)`` over a moving time window
  (amortised O(1) appends into numpy buffers, equal time stamps keep the last value). Its
  :meth:`~TickWindow.window` for ``[start, end)`` starts with the value *in force* at ``start``
  (the last tick before it, re-stamped ``start``): the path is a step function, so that pseudo
  tick is exact, and consecutive windows then chain without losing the move across their
  boundary.
* :class:`DerivedTicks` gives a linear combination of base series (a NAV, the election
  portfolio) a tick whenever one of its constituents ticks, updated in O(1) per tick and
  re-summed exactly at every :meth:`~DerivedTicks.resync` to stop rounding from accumulating.
* :func:`summarise_curve` applies :func:`elecflow.leadership.lead_lag`'s rules (the lag
  maximising ``|HY|``, ties to the smallest ``|lag|``; Huth-Abergel's ratio; identification
  against the measured null, :func:`~elecflow.leadership.hayashi_yoshida.identify_lead_lag`) to
  any covariance curve - in particular to a **sum** of curves: the Hayashi-Yoshida covariance is
  a sum over pairs of increments, so the curves of disjoint windows add up to the curve of their
  union (up to the pairs that straddle a window boundary at a non-zero lag, a share of about
  ``max lag / window`` of them), and so do the null's moments (:func:`window_null`; windows are
  independent under the null, so their variances add). :class:`CurveSum` keeps such a sum per
  pair and regime: the per-regime lead-lag uses every non-overlapping window lying entirely in
  the regime.

Times in the Hayashi-Yoshida calls are seconds relative to the window start (float64 keeps
nanoseconds there; epoch seconds would keep only ~0.2 us).

Library layer: numpy; no csp, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elecflow.leadership.hayashi_yoshida import (NULL_SHIFT_PAIRS, HYNull, hayashi_yoshida, hayashi_yoshida_null,
                                                 identify_lead_lag)

__all__ = ["TickWindow", "DerivedTicks", "CurveSummary", "CurveSum", "summarise_curve", "window_curve", "window_null"]


class TickWindow:
    """Ticks of one series, oldest first, with the tick in force before the kept span."""

    def __init__(self, capacity: int = 1024):
        self._t = np.empty(max(16, capacity), dtype=np.int64)
        self._v = np.empty(max(16, capacity))
        self._lo = 0  # first live slot (the tick in force before the kept span, once trimmed)
        self._n = 0  # slots used

    def __len__(self) -> int:
        return self._n - self._lo

    @property
    def last_time(self) -> int | None:
        return int(self._t[self._n - 1]) if self._n > self._lo else None

    @property
    def last_value(self) -> float:
        return float(self._v[self._n - 1]) if self._n > self._lo else math.nan

    def append(self, t_ns: int, value: float) -> None:
        """Add a tick; ticks must come in non-decreasing time (an equal time stamp replaces the
        previous value: simultaneous updates collapse to the last one, as HY requires)."""
        if self._n > self._lo:
            last = self._t[self._n - 1]
            if t_ns < last:
                raise ValueError(f"tick at {t_ns} ns is older than the previous one ({last} ns)")
            if t_ns == last:
                self._v[self._n - 1] = value
                return
        if self._n == self._t.size:
            self._compact()
        self._t[self._n] = t_ns
        self._v[self._n] = value
        self._n += 1

    def _compact(self) -> None:
        live = self._n - self._lo
        if live * 2 > self._t.size:  # mostly live: grow
            self._t = np.concatenate((self._t[self._lo:self._n], np.empty(self._t.size, dtype=np.int64)))
            self._v = np.concatenate((self._v[self._lo:self._n], np.empty(self._v.size)))
        else:
            self._t[:live] = self._t[self._lo:self._n]
            self._v[:live] = self._v[self._lo:self._n]
        self._lo, self._n = 0, live

    def trim(self, t_min_ns: int) -> None:
        """Forget ticks before ``t_min_ns``, except the last of them (the value in force)."""
        first_kept = self._lo + int(np.searchsorted(self._t[self._lo:self._n], t_min_ns, side="left"))
        self._lo = max(self._lo, first_kept - 1)

    def window(self, start_ns: int, end_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Ticks in ``[start_ns, end_ns)``, led by the value in force before ``start_ns`` stamped
        ``start_ns - 1`` when an earlier tick is known: ``(times_ns, values)`` copies.

        The 1 ns shift keeps a tick exactly at ``start_ns`` (its increment from the value before
        it belongs to this window, not to the one ending at ``start_ns``); adjacent windows then
        partition the increments, and their HY sums equal the HY of the union whenever both
        series tick at the boundary's last nanosecond."""
        t = self._t[self._lo:self._n]
        v = self._v[self._lo:self._n]
        i0 = int(np.searchsorted(t, start_ns, side="left"))
        i1 = int(np.searchsorted(t, end_ns, side="left"))
        times, values = t[i0:i1], v[i0:i1]
        if i0 > 0:
            times = np.concatenate(([start_ns - 1], times))
            values = np.concatenate(([v[i0 - 1]], values))
        return times.copy(), values.copy()


class DerivedTicks:
    """Ticks of ``sum_j w_j x_j`` over base series ``x_j`` (module docstring).

    The value is defined once every constituent has been seen (NaN before); each
    :meth:`update` of a constituent then appends a tick to :attr:`ticks`.
    """

    def __init__(self, weights: dict[str, float], capacity: int = 1024):
        self.weights = {k: float(w) for k, w in weights.items() if w != 0.0}
        self.current: dict[str, float] = {}
        self.value = math.nan
        self.ticks = TickWindow(capacity)

    def update(self, base: str, t_ns: int, value: float) -> None:
        w = self.weights.get(base)
        if w is None:
            return
        old = self.current.get(base)
        self.current[base] = value
        if math.isnan(self.value):
            if len(self.current) < len(self.weights):
                return
            self.resync()
        else:
            self.value += w * (value - old) if old is not None else w * value
        self.ticks.append(t_ns, self.value)

    def resync(self) -> None:
        """Re-sum the value exactly from the constituents (no accumulated rounding)."""
        if len(self.current) == len(self.weights):
            self.value = math.fsum(self.weights[k] * self.current[k] for k in self.weights)


@dataclass(frozen=True)
class CurveSummary:
    """Argmax lag (positive: x leads y), the correlation there and at lag 0, and the
    Huth-Abergel lead-lag ratio, as :func:`elecflow.leadership.lead_lag` defines them; the
    null sd of the correlation, the peak's p-value, whether it is identified and the interval
    of lags compatible with it (:func:`~elecflow.leadership.hayashi_yoshida.identify_lead_lag`)."""

    best_lag: float
    best_correlation: float
    zero_lag_correlation: float
    lead_lag_ratio: float
    null_sd: float
    p_value: float
    identified: bool
    lag_low: float
    lag_high: float


def summarise_curve(lags: np.ndarray, covariance: np.ndarray, realised_var_x: float,
                    realised_var_y: float, null: HYNull | None = None) -> CurveSummary:
    """:func:`elecflow.leadership.lead_lag`'s summary of a covariance curve (e.g. a sum of
    per-window curves with the sums of the realised variances and of the null moments; without
    ``null`` nothing is identified)."""
    lags = np.asarray(lags, dtype=np.float64)
    cov = np.asarray(covariance, dtype=np.float64)
    scale = math.sqrt(realised_var_x * realised_var_y)
    corr = cov / scale if scale > 0.0 else np.full_like(cov, np.nan)
    magnitude = np.abs(cov)
    candidates = np.flatnonzero(magnitude == magnitude.max())
    best = int(candidates[np.argmin(np.abs(lags[candidates]))])
    positive, negative = lags > 0.0, lags < 0.0
    if not positive.any() or not negative.any():
        ratio = math.nan
    else:
        num = float(np.sum(corr[positive] ** 2))
        den = float(np.sum(corr[negative] ** 2))
        ratio = num / den if den > 0.0 else (math.inf if num > 0.0 else math.nan)
    zero = np.flatnonzero(lags == 0.0)
    ident = identify_lead_lag(lags, corr, best, null, realised_var_x, realised_var_y)
    return CurveSummary(float(lags[best]), float(corr[best]), float(corr[zero[0]]) if zero.size else math.nan, ratio,
                        ident.null_sd, ident.p_value, ident.identified, ident.lag_low, ident.lag_high)


def _window_seconds(x: TickWindow, y: TickWindow, start_ns: int, end_ns: int, min_ticks: int):
    """Both series' ticks over ``[start_ns, end_ns)`` in seconds from ``start_ns``, or ``None``
    when either has fewer than ``min_ticks``."""
    tx, vx = x.window(start_ns, end_ns)
    ty, vy = y.window(start_ns, end_ns)
    if tx.size < min_ticks or ty.size < min_ticks:
        return None
    return (tx - start_ns) * 1e-9, vx, (ty - start_ns) * 1e-9, vy


def window_curve(x: TickWindow, y: TickWindow, start_ns: int, end_ns: int, lags: np.ndarray,
                 min_ticks: int = 3):
    """The Hayashi-Yoshida curve of ``x`` and ``y`` over ``[start_ns, end_ns)``:
    ``(covariance, realised_var_x, realised_var_y, n_x, n_y)``, or ``None`` when either side
    has fewer than ``min_ticks`` ticks or did not move."""
    ticks = _window_seconds(x, y, start_ns, end_ns, min_ticks)
    if ticks is None:
        return None
    hy = hayashi_yoshida(*ticks, lags)
    if not (hy.realised_var_x > 0.0 and hy.realised_var_y > 0.0):
        return None
    return hy.covariance, hy.realised_var_x, hy.realised_var_y, int(ticks[0].size), int(ticks[2].size)


def window_null(x: TickWindow, y: TickWindow, start_ns: int, end_ns: int, lags: np.ndarray,
                pairs: int = NULL_SHIFT_PAIRS, min_ticks: int = 3) -> HYNull | None:
    """The null moments of :func:`window_curve`'s curve on the same ticks
    (:func:`~elecflow.leadership.hayashi_yoshida.hayashi_yoshida_null`), or ``None`` when the
    ticks are too few or span too little time for shifts beyond the lag grid."""
    ticks = _window_seconds(x, y, start_ns, end_ns, min_ticks)
    return None if ticks is None else hayashi_yoshida_null(*ticks, lags, pairs)


class CurveSum:
    """A running sum of Hayashi-Yoshida curves and of their null moments (one pair, one
    regime). A window added without a null leaves the sum without one."""

    def __init__(self, n_lags: int):
        self.covariance = np.zeros(n_lags)
        self.var_x = 0.0
        self.var_y = 0.0
        self.n_x = 0
        self.n_y = 0
        self.windows = 0
        self.null: HYNull | None = HYNull(0.0, 0.0, 0)

    def add(self, covariance: np.ndarray, var_x: float, var_y: float, n_x: int, n_y: int,
            null: HYNull | None = None) -> None:
        self.covariance += covariance
        self.var_x += var_x
        self.var_y += var_y
        self.n_x += n_x
        self.n_y += n_y
        self.windows += 1
        self.null = None if self.null is None or null is None else self.null + null

    def summary(self, lags: np.ndarray) -> CurveSummary:
        return summarise_curve(lags, self.covariance, self.var_x, self.var_y, self.null)
