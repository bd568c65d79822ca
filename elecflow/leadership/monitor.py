"""Streaming price discovery for one group: a rolling VECM on the 1-second grid, its shares,
the trace-test rank of each window and per-regime averages.

:class:`GroupMonitor` is what a graph node owns per group. Each grid step hands it the values
of the base series (tickers' log mids, the Kalshi probit) at the step time ``T`` and whether
they are *fresh*; it forms the members' values (:class:`elecflow.leadership.groups.SeriesBook`
weights), moves the :class:`~elecflow.leadership.RollingVECM` window by one row (cointegration
rank ``K - 1``: one common efficient price) and, every ``shares_every`` steps, computes the
price-discovery shares of the window. Windows are labelled with the regime of their last row
(:class:`~elecflow.leadership.regimes.RegimeCalendar`); windows lying entirely in one regime
(*pure*) feed that regime's averages:

* the mean of each share over the regime's pure windows (overlapping windows are averaged as
  they come: a time average of the rolling estimate, not an estimate on the pooled data; for
  groups estimated only when asked, over the estimated windows);
* ``leader_fraction``: the share of those windows in which each member has the largest
  Hasbrouck midpoint - a rank statistic that does not care how wide the bounds are;
* ``coint_fraction``: the share in which Johansen's trace test (5 %, the deterministic case of
  the fit; Osterwald-Lenum tables, up to 11 series) finds the full rank ``K - 1``.

**Gaps.** When a member is stale (no update for ``stale_seconds``: the market is closed, e.g.
equities after 20:00 New York) or not yet known (NaN), the group's window is discarded and the
estimator starts afresh when all members are fresh again, so no window ever spans a gap.

**Cost.** A step is one compiled rolling update (~4 us) plus, when due, the shares with all
``K!`` orderings for ``K <= 6`` in one compiled call (:mod:`elecflow.leadership._small_shares`,
a few us; the reference :func:`~elecflow.leadership.price_discovery_shares` takes ~80 us).
Groups with more markets (the 41-series panel) only push the row each step and solve and
compute the shares when asked (:meth:`GroupMonitor.estimate`), because a 41-market solve costs
~25 ms and the sampled Hasbrouck bounds ~50 ms.

Library layer: numpy; no csp, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from elecflow.leadership._small_shares import MAX_MARKETS, small_shares
from elecflow.leadership.groups import GroupSpec, SeriesBook
from elecflow.leadership.regimes import Regime, RegimeCalendar
from elecflow.leadership.rolling import RollingVECM
from elecflow.leadership.shares import PriceDiscoveryShares, price_discovery_shares
from elecflow.leadership.vecm import TRACE_CRITICAL_VALUES, VECMFit

__all__ = ["GroupMonitor", "WindowEstimate", "RegimeShares", "trace_rank", "SHARE_FIELDS", "EXACT_MAX_MARKETS"]

#: The per-member shares carried through (names of :class:`PriceDiscoveryShares` fields, and
#: ``is_mid`` for the Hasbrouck midpoint).
SHARE_FIELDS = ("is_lower", "is_upper", "is_mid", "mis", "cs", "ils")
#: Groups up to this size get exact Hasbrouck bounds and per-step shares.
EXACT_MAX_MARKETS = MAX_MARKETS


def trace_rank(eigenvalues: np.ndarray, nobs: int, deterministic: str, signif: float = 0.05) -> int:
    """Cointegration rank by Johansen's trace test from a fit's eigenvalues.

    The test of :func:`elecflow.leadership.select_coint_rank` (``LR(r0) = -T sum_{i > r0}
    log(1 - lambda_i)`` upwards from ``r0 = 0``, Osterwald-Lenum critical values), applied to
    the eigenvalues a fit already carries (they do not depend on the rank fitted). Returns -1
    when no table covers the case (more than 11 series).
    """
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, 1.0 - 1e-300)
    n_series = lam.size
    table = TRACE_CRITICAL_VALUES.get(deterministic, {}).get(signif)
    if table is None or n_series > len(table):
        return -1
    log_one_minus = np.log1p(-lam)
    for r0 in range(n_series):
        if -nobs * log_one_minus[r0:].sum() <= table[n_series - r0 - 1]:
            return r0
    return n_series


def _shares_vector(shares: PriceDiscoveryShares) -> np.ndarray:
    """``len(SHARE_FIELDS) x K`` array of one window's shares."""
    return np.vstack([shares.is_lower, shares.is_upper, shares.is_midpoint, shares.mis, shares.cs, shares.ils])


@dataclass
class WindowEstimate:
    """A group's estimate on the window ending at ``t_ns`` (the latest grid step).

    ``shares`` is ``len(SHARE_FIELDS) x K`` (rows in :data:`SHARE_FIELDS` order), NaN when the
    window could not be estimated (``error`` says why). ``coint_rank`` is the trace-test rank
    (-1 when unknown), ``regime`` and ``regime_fraction`` label the window.
    """

    t_ns: int
    rows: int  # grid rows in the window (== window once full)
    nobs: int  # VECM equations
    regime: Regime
    regime_fraction: float
    shares: np.ndarray
    coint_rank: int
    n_orderings: int
    exact: bool
    error: str

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class RegimeShares:
    """Averages over one regime's pure windows (module docstring)."""

    regime: Regime
    windows: int = 0  # pure windows with shares
    sums: np.ndarray | None = None  # len(SHARE_FIELDS) x K
    leader_counts: np.ndarray | None = None  # K
    cointegrated: int = 0  # windows whose trace rank was K - 1
    rank_tested: int = 0  # windows with a trace-test table
    last_t_ns: int = 0

    def add(self, t_ns: int, shares: np.ndarray, coint_rank: int, n_series: int) -> None:
        if self.sums is None:
            self.sums = np.zeros_like(shares)
            self.leader_counts = np.zeros(n_series)
        self.sums += shares
        mid = shares[SHARE_FIELDS.index("is_mid")]
        self.leader_counts[int(np.argmax(mid))] += 1.0
        if coint_rank >= 0:
            self.rank_tested += 1
            self.cointegrated += coint_rank == n_series - 1
        self.windows += 1
        self.last_t_ns = t_ns

    @property
    def means(self) -> np.ndarray:
        return self.sums / self.windows

    @property
    def leader_fraction(self) -> np.ndarray:
        return self.leader_counts / self.windows

    @property
    def coint_fraction(self) -> float:
        return self.cointegrated / self.rank_tested if self.rank_tested else math.nan


@dataclass
class GroupMonitor:
    """Rolling VECM, shares and regime averages of one group (module docstring).

    Parameters: the group ``spec``; the ``book`` resolving its members; ``window`` rows per
    window; ``step_ns`` the grid step; ``k_ar_diff`` and ``deterministic`` of the VECM;
    ``shares_every`` steps between share computations; the regime ``calendar``.
    """

    spec: GroupSpec
    book: SeriesBook
    window: int
    step_ns: int
    calendar: RegimeCalendar
    k_ar_diff: int = 1
    deterministic: str = "ci"
    shares_every: int = 1
    regimes: dict[Regime, RegimeShares] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.members = tuple(self.spec.members)
        self.n_series = len(self.members)
        weights = self.book.matrix(self.members)
        self._member_bases = [np.flatnonzero(row != 0.0) for row in weights]
        # only the group's own bases enter its row: a base it does not use may be NaN (never
        # quoted, Kalshi without its filter) and 0 x NaN would void every row of the group
        self._used_bases = np.flatnonzero(np.any(weights != 0.0, axis=0))
        self._weights = np.ascontiguousarray(weights[:, self._used_bases])
        self.per_step = self.n_series <= EXACT_MAX_MARKETS
        self.roll = RollingVECM(self.n_series, self.window, self.k_ar_diff, self.n_series - 1, self.deterministic)
        self._rows = 0  # rows since the last reset
        self._steps = 0
        self._last: WindowEstimate | None = None  # the latest per-step estimate
        self._last_t_ns = 0
        self.resets = 0

    # ------------------------------------------------------------------ stepping

    def members_fresh(self, fresh: np.ndarray) -> bool:
        """Whether every member has a fresh base: a ticker must be fresh itself, a derived
        series needs at least one fresh constituent (a quiet constituent's price is unchanged,
        not wrong; all of them quiet means its market is closed)."""
        return all(bool(fresh[idx].any()) for idx in self._member_bases)

    def step(self, t_ns: int, base_values: np.ndarray, fresh: np.ndarray) -> WindowEstimate | None:
        """One grid row at ``t_ns``: ``base_values`` and ``fresh`` are indexed like
        ``book.bases``. Returns the window's estimate when shares were computed at this step."""
        self._last_t_ns = t_ns
        row = self._weights @ base_values[self._used_bases]
        if not (np.all(np.isfinite(row)) and self.members_fresh(fresh)):
            if self._rows:
                self.roll.reset()
                self._rows = 0
                self._last = None
                self.resets += 1
            return None
        self._rows += 1
        self._steps += 1
        due = self._steps % self.shares_every == 0
        if not (self.per_step and due):
            self.roll.push(row)
            return None
        fit = self.roll.update(row)
        if fit is None and not self.roll.ready:
            return None
        estimate = self._estimate(t_ns, fit, self.roll.last_error)
        self._last = estimate
        if estimate.ok and estimate.regime_fraction == 1.0:
            self.regimes.setdefault(estimate.regime, RegimeShares(estimate.regime)).add(
                t_ns, estimate.shares, estimate.coint_rank, self.n_series)
        return estimate

    def estimate(self) -> WindowEstimate | None:
        """The estimate of the current window (``None`` before it is full): the one computed at
        the latest step when there is one, else solved now."""
        if not self.roll.ready or self._rows == 0:
            return None
        if self._last is not None and self._last.t_ns == self._last_t_ns:
            return self._last
        try:
            fit, error = self.roll.fit(), ""
        except ValueError as exc:
            fit, error = None, str(exc)
        estimate = self._estimate(self._last_t_ns, fit, error)
        self._last = estimate
        if not self.per_step and estimate.ok and estimate.regime_fraction == 1.0:
            # large groups are only estimated when asked: their regime averages run over those windows
            self.regimes.setdefault(estimate.regime, RegimeShares(estimate.regime)).add(
                estimate.t_ns, estimate.shares, estimate.coint_rank, self.n_series)
        return estimate

    def _estimate(self, t_ns: int, fit: VECMFit | None, error: str | None) -> WindowEstimate:
        rows = min(self._rows, self.window)
        start_ns = t_ns - rows * self.step_ns
        regime = self.calendar.interval_regime(t_ns)
        fraction = self.calendar.fraction(start_ns, t_ns)
        nan = np.full((len(SHARE_FIELDS), self.n_series), np.nan)
        if fit is None:
            return WindowEstimate(t_ns, rows, self.roll.nobs, regime, fraction, nan, -1, 0, False,
                                  error or "the window could not be estimated")
        rank = trace_rank(fit.eigenvalues, fit.nobs, fit.deterministic)
        try:
            if self.per_step:  # the compiled small-group path (equal to the reference, tested)
                values = small_shares(fit.alpha, fit.beta, fit.sigma_u)
                n_orderings, exact = math.factorial(self.n_series), True
            else:
                shares = price_discovery_shares(fit.alpha, fit.beta, fit.sigma_u, exact_max_markets=EXACT_MAX_MARKETS)
                values, n_orderings, exact = _shares_vector(shares), shares.n_orderings, shares.exact
        except ValueError as exc:
            return WindowEstimate(t_ns, rows, fit.nobs, regime, fraction, nan, rank, 0, False, str(exc))
        return WindowEstimate(t_ns, rows, fit.nobs, regime, fraction, values, rank, n_orderings, exact, "")

    def regime_summary(self, regime: Regime) -> RegimeShares | None:
        """The averages over ``regime``'s pure windows so far (``None`` if there are none)."""
        summary = self.regimes.get(regime)
        return summary if summary is not None and summary.windows else None
