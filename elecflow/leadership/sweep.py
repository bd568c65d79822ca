"""Do sweeps predict leadership? ISO shares over windows and the per-window regression.

The seed study asked whether intermarket sweep orders (ISO, Polygon condition 14) come from
the markets that lead price discovery, and never answered it. Here, for every published
window ``w``, the cross-section of assets ``i``::

    leadership_{i,w} = a_{g(i),w} + b_w iso_{i,w} + e_{i,w}

* ``iso_{i,w}``: the share of the asset's traded volume (shares of prints that count in
  volume, :func:`elecflow.microstructure.counts_in_bars`) that was ISO within the window
  (:class:`IsoShareWindow`). A derived member (a NAV, the election portfolio) takes the
  ``|w|``-weighted average of its constituents' ISO shares; Kalshi has none, so groups with
  Kalshi stay out.
* ``leadership_{i,w}``: a group share of the member (``is_mid``, ``mis``, ``cs``, ``ils``) with
  a fixed effect ``a_g`` per group (shares sum to one within a group, so only the deviations
  from the group's mean are comparable); or ``kalshi_llr``: ``-log`` of the Hayashi-Yoshida
  lead-lag ratio of Kalshi over the asset (positive: the asset leads Kalshi) with one common
  intercept (every asset measured against the same reference).

:func:`cross_section_slope` gives ``b_w`` by OLS on the within-group-demeaned data with a
cluster-robust standard error by group (CR1: ``G/(G-1) (n-1)/(n-k)``): members of a group are
not independent (in a two-market group the demeaned observations are mirror images), so the
clusters are the independent units; with one member per cluster this is White's HC1.

Across windows (:class:`FamaMacBeth`): the mean of the per-window slopes of a regime's pure
windows, with a Newey-West (Bartlett) standard error of that mean whose bandwidth covers the
windows' overlap - windows of ``W`` seconds published every ``c`` seconds share data up to
``L = ceil(W / c) - 1`` publications apart, so their slopes are autocorrelated up to lag ``L``
(Fama-MacBeth with HAC errors; with non-overlapping windows ``L = 0`` and this is the plain
Fama-MacBeth error).

Library layer: numpy; no csp, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["IsoShareWindow", "CrossSectionFit", "cross_section_slope", "newey_west_mean", "FamaMacBeth"]


class IsoShareWindow:
    """Per-symbol ISO and total volume in step buckets, summed over any recent window.

    Buckets are ``[k step, (k + 1) step)`` on the epoch grid; a trade goes to the bucket of its
    own time stamp, so the order in which trades and window queries arrive within one engine
    instant does not matter. ``capacity_ns`` bounds the longest window that can be asked for.
    """

    def __init__(self, step_ns: int, capacity_ns: int):
        if step_ns <= 0 or capacity_ns < step_ns:
            raise ValueError("step_ns must be positive and capacity_ns at least one step")
        self.step_ns = int(step_ns)
        self.n_buckets = int(math.ceil(capacity_ns / step_ns)) + 2
        self.symbols: dict[str, int] = {}
        self._iso = np.zeros((self.n_buckets, 8))
        self._vol = np.zeros((self.n_buckets, 8))
        self._bucket_of_slot = np.full(self.n_buckets, -1, dtype=np.int64)

    def _column(self, symbol: str) -> int:
        col = self.symbols.get(symbol)
        if col is None:
            col = len(self.symbols)
            self.symbols[symbol] = col
            if col == self._iso.shape[1]:
                pad = np.zeros((self.n_buckets, col))
                self._iso = np.hstack((self._iso, pad))
                self._vol = np.hstack((self._vol, pad))
        return col

    def add(self, symbol: str, t_ns: int, size: float, is_iso: bool) -> None:
        """One counted trade of ``size`` shares."""
        bucket = t_ns // self.step_ns
        slot = bucket % self.n_buckets
        if self._bucket_of_slot[slot] != bucket:
            if self._bucket_of_slot[slot] > bucket:
                raise ValueError(f"trade at {t_ns} ns is older than the window kept ({self.n_buckets} buckets)")
            self._iso[slot] = 0.0
            self._vol[slot] = 0.0
            self._bucket_of_slot[slot] = bucket
        col = self._column(symbol)
        self._vol[slot, col] += size
        if is_iso:
            self._iso[slot, col] += size

    def shares(self, start_ns: int, end_ns: int) -> dict[str, float]:
        """ISO volume / volume per symbol over the buckets inside ``[start_ns, end_ns)`` (both on
        the bucket grid); NaN for a symbol without volume there."""
        first, last = start_ns // self.step_ns, end_ns // self.step_ns  # buckets first .. last - 1
        if last - first > self.n_buckets - 1:
            raise ValueError("the window is longer than the capacity")
        live = (self._bucket_of_slot >= first) & (self._bucket_of_slot < last)
        iso = self._iso[live].sum(axis=0)
        vol = self._vol[live].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(vol > 0.0, iso / vol, np.nan)
        return {s: float(share[c]) for s, c in self.symbols.items()}


@dataclass(frozen=True)
class CrossSectionFit:
    """One window's regression (module docstring). NaN slope/se with ``error`` set when the
    cross-section cannot identify a slope."""

    slope: float
    se: float
    n_obs: int
    n_groups: int
    r2: float  # within R^2
    error: str

    @property
    def t_stat(self) -> float:
        return self.slope / self.se if self.se > 0.0 else math.nan


def cross_section_slope(y, x, groups=None, min_obs: int = 3) -> CrossSectionFit:
    """OLS slope of ``y`` on ``x`` with group fixed effects (``groups`` labels; ``None``: one
    common intercept, every observation its own cluster) and a CR1 cluster-robust standard
    error by group. Non-finite observations are dropped."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError(f"y and x must be 1-d of one length (got {y.shape} and {x.shape})")
    if groups is None:
        labels = np.zeros(y.size, dtype=np.int64)
    else:
        labels = np.unique(np.asarray(groups), return_inverse=True)[1]
    keep = np.isfinite(y) & np.isfinite(x)
    y, x, labels = y[keep], x[keep], labels[keep]
    n = y.size
    if n < min_obs:
        return CrossSectionFit(math.nan, math.nan, n, 0, math.nan, f"only {n} observations")
    n_groups = int(np.unique(labels).size)
    # within transformation: subtract each group's mean (the fixed effects, or the intercept)
    counts = np.bincount(labels)
    with np.errstate(invalid="ignore"):
        ybar = np.bincount(labels, y) / np.maximum(counts, 1)
        xbar = np.bincount(labels, x) / np.maximum(counts, 1)
    yd, xd = y - ybar[labels], x - xbar[labels]
    sxx = float(xd @ xd)
    k = n_groups + 1  # fixed effects + slope
    if n - k < 1 or not sxx > 1e-300:
        return CrossSectionFit(math.nan, math.nan, n, n_groups, math.nan,
                               "no variation of x within groups" if n - k >= 1 else
                               f"{n} observations cannot identify {k} parameters")
    slope = float(xd @ yd) / sxx
    resid = yd - slope * xd
    syy = float(yd @ yd)
    r2 = 1.0 - float(resid @ resid) / syy if syy > 0.0 else math.nan
    if groups is None:  # every observation its own cluster: HC1
        meat = float(np.sum((xd * resid) ** 2))
        clusters = n
        correction = n / (n - k)
    else:
        score = np.bincount(labels, xd * resid)
        meat = float(score @ score)
        clusters = n_groups
        correction = clusters / (clusters - 1) * (n - 1) / (n - k) if clusters > 1 else math.nan
    if clusters < 2:
        return CrossSectionFit(slope, math.nan, n, n_groups, r2, "one cluster: no standard error")
    se = math.sqrt(correction * meat) / sxx
    return CrossSectionFit(slope, se, n, n_groups, r2, "")


def newey_west_mean(values, lags: int) -> tuple[float, float]:
    """Mean of a series and the Newey-West (Bartlett kernel, ``lags`` lags) standard error of
    that mean: ``sqrt((g_0 + 2 sum_{l=1..L} (1 - l/(L+1)) g_l) / n)``, ``g_l`` the
    autocovariances with divisor ``n``. ``lags`` is capped at ``n - 1``."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if n == 0:
        return math.nan, math.nan
    mean = float(v.mean())
    if n == 1:
        return mean, math.nan
    d = v - mean
    lags = max(0, min(int(lags), n - 1))
    lrv = float(d @ d) / n
    for lag in range(1, lags + 1):
        lrv += 2.0 * (1.0 - lag / (lags + 1.0)) * float(d[lag:] @ d[:-lag]) / n
    return mean, math.sqrt(max(lrv, 0.0) / n)


class FamaMacBeth:
    """Per-window slopes of one regime and measure; their mean with a Newey-West error.

    Equal to :func:`newey_west_mean` on the slopes added so far, but incremental: a result is
    asked for after every window, and the lag sums ``P_l = sum_t v_t v_{t-l}`` are kept up to
    date in O(L) per slope, so a result costs O(n + L) instead of O(n L). The autocovariances
    follow from ``P_l``, the running mean and prefix/suffix sums:
    ``sum_{t >= l} (v_t - m)(v_{t-l} - m) = P_l - m (sum_{t >= l} v_t + sum_{t < n-l} v_t) + (n-l) m^2``.
    """

    def __init__(self, lags: int):
        self.lags = max(0, int(lags))
        self._values = np.empty(256)
        self._n = 0
        self._lag_sums = np.zeros(self.lags + 1)  # P_0 .. P_L

    @property
    def slopes(self) -> np.ndarray:
        return self._values[:self._n].copy()

    def add(self, slope: float) -> None:
        if not math.isfinite(slope):
            return
        if self._n == self._values.size:
            self._values = np.concatenate((self._values, np.empty(self._values.size)))
        self._values[self._n] = slope
        self._n += 1
        # P_l += v_n v_{n-l} for the lags the new value reaches
        reach = min(self.lags, self._n - 1)
        self._lag_sums[:reach + 1] += slope * self._values[self._n - 1 - np.arange(reach + 1)]

    def result(self) -> tuple[float, float, int]:
        """``(mean slope, Newey-West standard error, windows)``."""
        n = self._n
        if n == 0:
            return math.nan, math.nan, 0
        v = self._values[:n]
        mean = float(v.mean())
        if n == 1:
            return mean, math.nan, 1
        lags = min(self.lags, n - 1)
        prefix = np.concatenate(([0.0], np.cumsum(v)))  # prefix[i] = sum of the first i values
        total = prefix[-1]
        l_idx = np.arange(lags + 1)
        tail = total - prefix[l_idx]  # sum_{t >= l} v_t
        head = prefix[n - l_idx]  # sum_{t < n - l} v_t
        gamma = (self._lag_sums[:lags + 1] - mean * (tail + head) + (n - l_idx) * mean * mean) / n
        weights = np.concatenate(([1.0], 2.0 * (1.0 - l_idx[1:] / (lags + 1.0))))
        lrv = float(weights @ gamma)
        return mean, math.sqrt(max(lrv, 0.0) / n), n
