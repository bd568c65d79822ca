"""One session calendar: New York <-> UTC conversion and the Election Day sessions.

Internally every timestamp is UTC (integer nanoseconds since the epoch, or a naive
``datetime`` meaning UTC as csp carries it); New York time is for display and for vendor
fields defined in New York time (ThetaData ``ms_of_day``). Election Day 2024 falls after
the end of daylight saving time (2024-11-03), so New York is UTC-5 on both 11-05 and
11-06; the conversion still goes through ``zoneinfo`` so other dates are right too.

Sessions of a trade date ``D`` (New York wall clock):

=================  ===================================  =====================
session            interval (half-open, New York time)   election day in UTC
=================  ===================================  =====================
``PRE_OPEN``       [D 04:00, D 09:30)                    09:00 - 14:30
``REGULAR``        [D 09:30, D 16:00)                    14:30 - 21:00
``AFTER_HOURS``    [D 16:00, D 20:00)                    21:00 - 01:00 (+1)
``RESULTS_NIGHT``  [D 20:00, D+1 06:00)                  01:00 - 11:00 (+1)
``CLOSED``         anything else                         -
=================  ===================================  =====================

``RESULTS_NIGHT`` is the Election-Day name of the overnight window in which only the
prediction market trades; for another date it is the same wall-clock window.

Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum
from zoneinfo import ZoneInfo

import numpy as np

NY = ZoneInfo("America/New_York")
NEW_YORK = NY  # alias used elsewhere in the project
UTC = dt.timezone.utc
ELECTION_DAY = dt.date(2024, 11, 5)
NS_PER_SECOND = 1_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


class Session(IntEnum):
    """Trading session codes (``int8`` values in vectorised results)."""

    CLOSED = 0
    PRE_OPEN = 1
    REGULAR = 2
    AFTER_HOURS = 3
    RESULTS_NIGHT = 4


# (session, start, end, end day offset) in New York wall-clock time.
_SESSION_TABLE: tuple[tuple[Session, dt.time, dt.time, int], ...] = (
    (Session.PRE_OPEN, dt.time(4, 0), dt.time(9, 30), 0),
    (Session.REGULAR, dt.time(9, 30), dt.time(16, 0), 0),
    (Session.AFTER_HOURS, dt.time(16, 0), dt.time(20, 0), 0),
    (Session.RESULTS_NIGHT, dt.time(20, 0), dt.time(6, 0), 1),
)


@dataclass(frozen=True)
class SessionWindow:
    """One session of one trade date as a half-open UTC interval [start_ns, end_ns)."""

    session: Session
    start_ns: int
    end_ns: int

    @property
    def start(self) -> dt.datetime:
        return ns_to_utc(self.start_ns)

    @property
    def end(self) -> dt.datetime:
        return ns_to_utc(self.end_ns)

    def contains(self, t_ns: int) -> bool:
        return self.start_ns <= t_ns < self.end_ns


# --------------------------------------------------------------------------- conversion


def ny_to_utc(date: dt.date, time: dt.time = dt.time(0, 0)) -> dt.datetime:
    """New York wall-clock ``date``/``time`` -> timezone-aware UTC datetime."""
    local = dt.datetime.combine(date, time).replace(tzinfo=NY)
    return local.astimezone(UTC)


def ny_datetime_to_utc(value: dt.datetime) -> dt.datetime:
    """A New York datetime (naive = New York wall clock, or aware) -> aware UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=NY)
    return value.astimezone(UTC)


def utc_to_ny(value: dt.datetime) -> dt.datetime:
    """A UTC datetime (naive = UTC, as csp carries it, or aware) -> aware New York."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(NY)


to_new_york = utc_to_ny  # alias: engine (naive UTC) time -> New York for display


def utc_ns(value: dt.datetime | dt.date, time: dt.time | None = None) -> int:
    """Integer nanoseconds since the epoch.

    ``utc_ns(datetime)``: an aware datetime in any zone, or a naive one meaning UTC.
    ``utc_ns(date, time)``: a New York wall-clock date and time (the form sessions and
    vendor specs are written in), e.g. ``utc_ns(ELECTION_DAY, time(9, 30))``.
    """
    if time is not None or not isinstance(value, dt.datetime):
        if isinstance(value, dt.datetime):
            value = value.date()
        aware = ny_to_utc(value, time or dt.time(0, 0))
    else:
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1_000


def ns_to_utc(ns: int, *, naive: bool = False) -> dt.datetime:
    """Integer ns since the epoch -> UTC datetime (microsecond precision).

    ``naive=True`` gives the naive-UTC form csp uses for engine time.
    """
    ns = int(ns)
    out = _EPOCH + dt.timedelta(microseconds=ns // 1_000)
    return out.replace(tzinfo=None) if naive else out


def ns_to_ny(ns: int) -> dt.datetime:
    """Integer ns since the epoch -> aware New York datetime (microsecond precision)."""
    return ns_to_utc(ns).astimezone(NY)


def ms_of_day_ny(ns: np.ndarray | int, date: dt.date) -> np.ndarray | int:
    """Milliseconds since New York midnight of ``date`` (ThetaData ``ms_of_day``)."""
    midnight = utc_ns(date, dt.time(0, 0))
    if np.isscalar(ns):
        return (int(ns) - midnight) // 1_000_000
    return (np.asarray(ns, dtype=np.int64) - midnight) // 1_000_000


# --------------------------------------------------------------------------- sessions


def sessions(date: dt.date = ELECTION_DAY) -> tuple[SessionWindow, ...]:
    """The four sessions of a trade date, in time order."""
    out = []
    for session, start, end, end_offset in _SESSION_TABLE:
        out.append(
            SessionWindow(
                session,
                utc_ns(date, start),
                utc_ns(date + dt.timedelta(days=end_offset), end),
            )
        )
    return tuple(out)


def session_window(session: Session, date: dt.date = ELECTION_DAY) -> SessionWindow:
    """The UTC interval of one session of ``date``."""
    for window in sessions(date):
        if window.session == session:
            return window
    raise ValueError(f"no window for session {session!r}")


def _to_ns_array(values) -> np.ndarray:
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[ns]").astype(np.int64)
    if arr.dtype == object:
        return np.array([_scalar_ns(v) for v in arr.ravel()], dtype=np.int64).reshape(arr.shape)
    return arr.astype(np.int64)


def _scalar_ns(value) -> int:
    if isinstance(value, dt.datetime):
        return utc_ns(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    return int(value)


def session_of(value, date: dt.date = ELECTION_DAY):
    """Session of a time, or an array of session codes for an array of times.

    ``value`` is a datetime (aware, or naive meaning UTC), an integer of ns since the
    epoch, or an array of either (``int64`` ns or ``datetime64``). Scalars give a
    :class:`Session`; arrays give an ``int8`` array of :class:`Session` values.
    """
    bounds = sessions(date)
    if isinstance(value, (dt.datetime, int, np.integer, np.datetime64)):
        t = _scalar_ns(value)
        for window in bounds:
            if window.contains(t):
                return window.session
        return Session.CLOSED
    t = _to_ns_array(value)
    out = np.zeros(t.shape, dtype=np.int8)
    for window in bounds:
        out[(t >= window.start_ns) & (t < window.end_ns)] = int(window.session)
    return out
