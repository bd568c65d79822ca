"""Trading regimes of the leadership analysis: the session calendar with the close split off.

Price discovery behaves differently when the books are thin (pre-open, after hours), in the
continuous session, in the run-up to the closing auction and on results night (when only
the prediction market trades), so every leadership measure is reported per regime. The
regimes refine :mod:`elecflow.calendar`'s sessions (one calendar for the whole project) by
cutting the last half hour off the regular session. In New York time, for trade date ``D``:

==================  ==============================  ==========================================
regime              interval (half-open, New York)  why
==================  ==============================  ==========================================
``pre_open``        [D 04:00, D 09:30)              extended hours, thin books, wide spreads
``regular``         [D 09:30, D 15:30)              the continuous session
``close``           [D 15:30, D 16:00)              the last half hour: closing-auction orders
                                                    and imbalance news (MOC cut-off 15:50),
                                                    leveraged-ETF rebalancing flows; one
                                                    default 1,800 s window fits in it exactly
``after_hours``     [D 16:00, D 20:00)              extended hours; on Election Day the first
                                                    poll closings (19:00, 19:30) fall here
``results_night``   [D 20:00, D+1 06:00)            only Kalshi trades (no equity quotes)
``closed``          anything else                   e.g. 00:00-04:00 on D (Kalshi only)
==================  ==============================  ==========================================

The close's start is a parameter (``close_start``, default 15:30).

**Which regime a sample belongs to.** A row of the 1-second grid stamped ``T`` summarises the
interval ``[T - step, T)`` (the 1 s NBBO's right-endpoint convention: the last quote *before*
``T``), so its regime is that of ``T - 1 ns``: the row stamped 09:30:00 is the last pre-open
second. A window of rows (or of ticks) ``[start, end)`` is labelled with the regime of its
last instant, and :meth:`RegimeCalendar.fraction` says how much of it lies in that regime;
aggregates per regime use only *pure* windows (fraction 1), so a regime's figures are never
contaminated by the neighbouring regime.

Pure functions and a small frozen class; no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from elecflow.calendar import ELECTION_DAY, Session, sessions, utc_ns

__all__ = ["Regime", "REGIME_NAMES", "DEFAULT_CLOSE_START", "RegimeCalendar", "regime_name"]


class Regime(IntEnum):
    """Regime codes (``int8`` in vectorised results); names in :data:`REGIME_NAMES`."""

    CLOSED = 0
    PRE_OPEN = 1
    REGULAR = 2
    CLOSE = 3
    AFTER_HOURS = 4
    RESULTS_NIGHT = 5


REGIME_NAMES: tuple[str, ...] = ("closed", "pre_open", "regular", "close", "after_hours", "results_night")
DEFAULT_CLOSE_START = dt.time(15, 30)

_FROM_SESSION = {Session.PRE_OPEN: Regime.PRE_OPEN, Session.REGULAR: Regime.REGULAR,
                 Session.AFTER_HOURS: Regime.AFTER_HOURS, Session.RESULTS_NIGHT: Regime.RESULTS_NIGHT}


def regime_name(code: int) -> str:
    """``"regular"`` for ``Regime.REGULAR`` etc."""
    return REGIME_NAMES[int(code)]


@dataclass(frozen=True)
class RegimeCalendar:
    """The regimes of one trade date as half-open UTC intervals (integer ns).

    ``regime_of(t)`` classifies an instant, ``interval_regime(T)`` a grid row stamped ``T``
    (the instant ``T - 1 ns``), ``fraction(start, end)`` the share of ``[start, end)`` that lies
    in the regime of its last instant.
    """

    date: dt.date = ELECTION_DAY
    close_start: dt.time = DEFAULT_CLOSE_START
    # (start_ns, end_ns, regime), contiguous and sorted; CLOSED fills the gaps
    intervals: tuple[tuple[int, int, Regime], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        close_ns = utc_ns(self.date, self.close_start)
        spans: list[tuple[int, int, Regime]] = []
        for window in sessions(self.date):
            regime = _FROM_SESSION[window.session]
            if regime is Regime.REGULAR:
                if not window.start_ns < close_ns < window.end_ns:
                    raise ValueError(f"close_start {self.close_start} must lie inside the regular session "
                                     "(09:30-16:00 New York)")
                spans += [(window.start_ns, close_ns, Regime.REGULAR), (close_ns, window.end_ns, Regime.CLOSE)]
            else:
                spans.append((window.start_ns, window.end_ns, regime))
        spans.sort()
        for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
            if end != start:  # pragma: no cover - the session table is contiguous
                raise ValueError("the session table has a gap")
        object.__setattr__(self, "intervals", tuple(spans))

    def regime_of(self, t_ns: int) -> Regime:
        """The regime of the instant ``t_ns`` (ns since the epoch, UTC)."""
        for start, end, regime in self.intervals:
            if start <= t_ns < end:
                return regime
        return Regime.CLOSED

    def regimes(self, t_ns) -> np.ndarray:
        """Vectorised :meth:`regime_of`: ``int8`` codes for an array of instants."""
        t = np.asarray(t_ns, dtype=np.int64)
        out = np.full(t.shape, int(Regime.CLOSED), dtype=np.int8)
        for start, end, regime in self.intervals:
            out[(t >= start) & (t < end)] = int(regime)
        return out

    def interval_regime(self, end_ns: int) -> Regime:
        """The regime of a grid row stamped ``end_ns`` (it summarises the time before it)."""
        return self.regime_of(end_ns - 1)

    def span(self, t_ns: int) -> tuple[int, int]:
        """The ``[start, end)`` of the regime interval containing ``t_ns`` (the CLOSED gaps
        before the first and after the last session are unbounded: +-2**62)."""
        first, last = self.intervals[0][0], self.intervals[-1][1]
        if t_ns < first:
            return -(2 ** 62), first
        if t_ns >= last:
            return last, 2 ** 62
        for start, end, _ in self.intervals:
            if start <= t_ns < end:
                return start, end
        raise AssertionError("unreachable: the intervals are contiguous")  # pragma: no cover

    def fraction(self, start_ns: int, end_ns: int) -> float:
        """Share of ``[start_ns, end_ns)`` inside the regime of its last instant ``end_ns - 1``."""
        if end_ns <= start_ns:
            raise ValueError(f"empty window: start {start_ns} >= end {end_ns}")
        lo, _ = self.span(end_ns - 1)
        return (end_ns - max(lo, start_ns)) / (end_ns - start_ns)
