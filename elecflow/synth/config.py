"""Knobs of the synthetic Election Day (pydantic v2; every field has a default).

The defaults generate the whole default day (2024-11-05 00:00 ET to 2024-11-06 06:00 ET)
described in docs/synthetic-day.md. Times are New York wall-clock times.

``day_kind="normal"`` with a ``trading_date`` before 2024-11-05 generates an ordinary
pre-election trading day instead (docs/synthetic-day.md, "Normal days"): the same
universe and microstructure, macro and stock news in place of the election signal,
equities only (04:00-20:00 ET of that date), no Kalshi, no options unless asked for.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from elecflow.synth.probability import ClockSpec
from elecflow.universe import INSTRUMENTS

DEFAULT_SEED = 20241105
DAY = dt.date(2024, 11, 5)
FULL_START_ET = dt.datetime(2024, 11, 5, 0, 0)
FULL_END_ET = dt.datetime(2024, 11, 6, 6, 0)

# ---- normal (pre-election) days
NORMAL_EQUITY_OPEN = dt.time(4, 0)  # a normal day's window: [D 04:00, D 20:00) New York time
NORMAL_EQUITY_CLOSE = dt.time(20, 0)
FIRST_NORMAL_DAY = dt.date(2023, 1, 1)  # the holiday table below covers 2023 and 2024
# NYSE full closures and early-close (13:00) days of 2023-2024 up to the election; early closes
# are refused too, since the generator's sessions always run to 16:00 / 20:00.
NYSE_CLOSED: frozenset[dt.date] = frozenset(dt.date.fromisoformat(d) for d in (
    "2023-01-02", "2023-01-16", "2023-02-20", "2023-04-07", "2023-05-29", "2023-06-19", "2023-07-04",
    "2023-09-04", "2023-11-23", "2023-12-25",
    "2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-06-19", "2024-07-04",
    "2024-09-02",
))
NYSE_EARLY_CLOSE: frozenset[dt.date] = frozenset(dt.date.fromisoformat(d) for d in (
    "2023-07-03", "2023-11-24", "2024-07-03",
))
# Knobs that exist for normal days only: left out of an Election Day's manifest, so the
# default day's files are byte-identical to those written before normal days existed.
NORMAL_DAY_FIELDS = ("day_kind", "trading_date", "macro_vol", "macro_release_jump_sd", "macro_news_per_day",
                     "macro_news_jump_sd", "idio_news_per_day", "idio_news_scale")
# Knobs left out of every manifest while at their defaults: manifests written before they existed
# stay byte-identical, and `elecflow replay` still accepts an embedded day generated before them.
OMITTED_AT_DEFAULT = ("etf_baskets",)


def normal_day_problem(day: dt.date) -> str | None:
    """Why ``day`` cannot be a normal (pre-election) trading day, or None if it can."""
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        return f"expected a date, got {day!r}"
    if day >= DAY:
        return f"a normal day's trading_date must be before the election (2024-11-05), got {day.isoformat()}"
    if day < FIRST_NORMAL_DAY:
        return f"normal days start at {FIRST_NORMAL_DAY.isoformat()} (the holiday table's range), got {day.isoformat()}"
    if day.weekday() >= 5:
        return f"{day.isoformat()} is a {day:%A}, not a trading day"
    if day in NYSE_CLOSED:
        return f"{day.isoformat()} is an NYSE holiday"
    if day in NYSE_EARLY_CLOSE:
        return f"{day.isoformat()} is an NYSE early-close day (13:00), which the generator does not model"
    return None


def normal_trading_days(first: dt.date | str, last: dt.date | str) -> list[dt.date]:
    """Every valid normal-day date in ``[first, last]`` (weekdays, no NYSE holidays or half days)."""
    first, last = _as_date(first), _as_date(last)
    out, d = [], first
    while d <= last:
        if normal_day_problem(d) is None:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip())

_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(\+1d)?\s*$")


def parse_et(value, day: dt.date = DAY) -> dt.datetime:
    """A window bound in New York time -> naive New York datetime.

    Accepts a datetime (aware ones are converted to New York), an ISO string
    (``2024-11-05T09:30``), or ``HH:MM[:SS]`` on ``day`` (2024-11-05 unless a normal day's
    trading date is given) with an optional ``+1d`` suffix for the next day
    (``06:00+1d``). ``24:00`` means midnight at the end of ``day``.
    """
    from elecflow.calendar import NY

    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(NY).replace(tzinfo=None)
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a time like '09:30' or '2024-11-05T09:30', got {value!r}")
    m = _HHMM.match(value)
    if m:
        hh, mm, ss = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        day = day + dt.timedelta(days=1 if m.group(4) else 0)
        if hh == 24 and mm == 0 and ss == 0:
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0))
        return dt.datetime.combine(day, dt.time(hh, mm, ss))
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"{value!r} is neither HH:MM[:SS][+1d] nor an ISO datetime") from exc
    return parse_et(parsed, day)


class SyntheticDayConfig(BaseModel):
    """All knobs of the synthetic day. See docs/synthetic-day.md for the model."""

    model_config = ConfigDict(extra="forbid")

    # ---- run
    seed: int = Field(DEFAULT_SEED, ge=0, description="root seed; every component has its own child stream")
    day_kind: Literal["election", "normal"] = Field(
        "election", description="election: 2024-11-05 with the election signal; normal: a pre-election trading day")
    trading_date: dt.date = Field(DAY, description="2024-11-05 for the election day; a normal day's date "
                                                    "(weekday before 2024-11-05, not an NYSE holiday)")
    start_et: dt.datetime = Field(FULL_START_ET, description="window start, New York time (>= 2024-11-05 00:00; "
                                                             "normal days: >= trading_date 04:00, the default)")
    end_et: dt.datetime = Field(FULL_END_ET, description="window end (exclusive), New York time (<= 2024-11-06 06:00; "
                                                         "normal days: <= trading_date 20:00, the default)")
    # ---- election probability (see elecflow.synth.probability)
    p_start: float = Field(0.58, gt=0.0, lt=1.0, description="true Trump-wins probability at 2024-11-05 00:00 ET")
    info_jump_share: float = Field(ClockSpec.jump_share, ge=0.0, lt=1.0,
                                   description="share of total information variance in news jumps")
    info_terminal_share: float = Field(ClockSpec.terminal_share, gt=0.0, lt=1.0,
                                       description="share of information still unrevealed at 2024-11-06 06:00 ET")
    info_clock_scale_hours: float = Field(ClockSpec.scale_hours, gt=0.0,
                                          description="h in the clock speed eps + (h/(T_R - t + h))^2")
    info_clock_floor: float = Field(ClockSpec.floor, ge=0.0,
                                    description="eps in the clock speed eps + (h/(T_R - t + h))^2")
    # ---- equities
    intensity_scale: float = Field(1.0, gt=0.0, le=50.0, description="scales equity quote and trade arrival rates")
    informed_base: float = Field(0.04, ge=0.0, le=1.0, description="share of informed prints when quotes are on target")
    informed_gap: float = Field(0.3, ge=0.0, le=1.0,
                                description="extra informed share when |efficient - quoted| >= a half-spread")
    iso_prob_informed: float = Field(0.45, ge=0.0, le=1.0, description="P(ISO | informed print)")
    iso_prob_uninformed: float = Field(0.05, ge=0.0, le=1.0, description="P(ISO | uninformed print)")
    etf_baskets: Literal["factor", "constituents"] = Field(
        "factor", description="factor: basket ETFs load on factors beyond their constituents among our stocks "
                              "(ETF minus NAV is a random walk); constituents: every unlevered ETF with "
                              "constituents among our stocks is their basket (weights rescaled to sum to one) "
                              "plus a stationary premium (a control for the ETF-vs-NAV price-discovery groups)")
    # ---- normal days: news in place of the election signal (see elecflow.synth.normal)
    macro_vol: float = Field(0.04, ge=0.0, le=1.0,
                             description="annualised diffusive vol of the common macro news factor")
    macro_release_jump_sd: float = Field(0.003, ge=0.0, le=0.1,
                                         description="sd of the macro log jump at a scheduled release of weight 1")
    macro_news_per_day: float = Field(4.0, ge=0.0, le=200.0,
                                      description="expected unscheduled macro news jumps over 04:00-20:00 ET")
    macro_news_jump_sd: float = Field(0.0015, ge=0.0, le=0.1, description="sd of an unscheduled macro log jump")
    idio_news_per_day: float = Field(1.0, ge=0.0, le=100.0,
                                     description="expected own-news jumps per stock over 04:00-20:00 ET")
    idio_news_scale: float = Field(0.5, ge=0.0, le=5.0,
                                   description="sd of a stock's news jump, in units of its daily idiosyncratic vol")
    # ---- options
    option_underlyings: list[str] = Field(default_factory=lambda: ["SPY", "QQQ", "IWM", "TLT", "DJT", "TSLA"])
    option_expiry: dt.date = Field(dt.date(2024, 11, 15), description="the one expiry quoted (16:00 ET settlement)")
    option_snapshot_seconds: float = Field(60.0, ge=1.0, le=3600.0,
                                           description="snapshot cadence in 09:30-16:00 ET, whole seconds")
    option_strike_range: float = Field(0.25, gt=0.0, le=0.9, description="dense strikes within spot*(1 -/+ range)")
    option_strike_sds: float = Field(4.0, ge=0.0, le=10.0,
                                     description="sparse wing strikes out to the election jump plus this many state sds")
    option_quote_spread_seconds: float = Field(
        0.0, ge=0.0, le=3600.0,
        description="0: the whole chain quoted at each snapshot instant (an interval-snapshot feed); > 0: each "
                    "strike quoted at its own phase in [0, spread) after the instant (asynchronous quotes)")
    risk_free_rate: float = Field(0.0483, ge=-0.05, le=0.5,
                                  description="continuous rate, ~10-day T-bill in early Nov 2024")
    option_states: Literal["election", "identical"] = Field(
        "election", description="election: Trump and Harris states as the loadings say; identical: one state in "
                                "both (a control: the options carry no election information)")
    option_format: Literal["raw", "formatted"] = "raw"
    # ---- Kalshi
    kalshi_expected_trades: float = Field(20_000.0, ge=0.0, le=5e6,
                                          description="expected DJT+KH fills over the full 30 h window")
    kalshi_informed_share: float = Field(0.25, ge=0.0, le=1.0, description="takers who trade the next minute's move")
    kalshi_other_outcomes: float = Field(0.01, ge=0.0, lt=0.2, description="probability of neither DJT nor KH")
    kalshi_format: Literal["daily_report", "rest"] = "daily_report"
    # ---- the broad factor universe (elecflow.synth.factor_universe, docs/factors.md)
    factor_universe_size: int = Field(
        300, ge=0, le=5000, description="stocks in the broad Fama-French universe (their own 1 s NBBO file and the "
                                        "factor weights JSON under factor_universe/); 0: none. Must be 0 or >= 12")
    # ---- the informed option market (elecflow.synth.impact; docs/theory.md, "Simulator and streaming
    # estimator"): signed option trades and quotes from the equilibrium model, election states as signals
    impact_underlyings: list[str] = Field(
        default_factory=lambda: ["XLF"],
        description="underlyings whose options trade in the simulated informed market (Election Day only); "
                    "must not also be in option_underlyings (one quote file per root)")
    impact_period_seconds: float = Field(5.0, ge=0.002, le=3600.0,
                                         description="one play of the one-shot game every this many seconds "
                                                     "(whole milliseconds), 09:30-16:00 ET")
    impact_strikes: int = Field(10, ge=2, le=100, description="strikes of the simulated market (a call and a put each)")
    impact_strike_range: float = Field(0.15, gt=0.0, le=0.5,
                                       description="strikes spread evenly over forward * (1 -/+ range)")
    # ---- defects and output
    defects_per_kind: int = Field(5, ge=0, le=1000, description="injected bad rows per stream and reason")
    write_ground_truth: bool = True
    gzip_level: int = Field(3, ge=1, le=9, description="gzip level of the Polygon CSV files")

    @model_validator(mode="before")
    @classmethod
    def _normal_day_defaults(cls, data):
        """Normal days: window defaults to the trading date's 04:00-20:00, HH:MM bounds refer to
        that date, and no options unless asked for."""
        if not isinstance(data, dict) or data.get("day_kind") != "normal":
            return data
        try:
            day = _as_date(data.get("trading_date"))
        except (TypeError, ValueError):
            return data  # the field validator reports it
        data = dict(data)
        for name, default in (("start_et", NORMAL_EQUITY_OPEN), ("end_et", NORMAL_EQUITY_CLOSE)):
            value = data.get(name)
            if value is None:
                data[name] = dt.datetime.combine(day, default)
            elif isinstance(value, str) and _HHMM.match(value):
                data[name] = parse_et(value, day)
        data.setdefault("option_underlyings", [])
        data.setdefault("impact_underlyings", [])  # the informed market's signals are the election states
        return data

    @field_validator("start_et", "end_et", mode="before")
    @classmethod
    def _parse_bound(cls, value):
        return parse_et(value)

    @field_validator("option_underlyings", "impact_underlyings")
    @classmethod
    def _check_underlyings(cls, value: list[str]) -> list[str]:
        unknown = [u for u in value if u not in INSTRUMENTS]
        if unknown:
            raise ValueError(f"not in the seed universe: {', '.join(unknown)}")
        if len(set(value)) != len(value):
            raise ValueError("duplicate underlyings")
        return value

    @field_validator("option_snapshot_seconds")
    @classmethod
    def _whole_seconds(cls, value: float) -> float:
        if value != int(value):
            raise ValueError("option_snapshot_seconds must be a whole number of seconds")
        return float(value)

    @model_validator(mode="after")
    def _check(self) -> "SyntheticDayConfig":
        if self.day_kind == "election":
            if self.trading_date != DAY:
                raise ValueError(f"an election day's trading_date is 2024-11-05, got {self.trading_date.isoformat()} "
                                 "(use day_kind='normal' for other dates)")
            lo, hi = FULL_START_ET, FULL_END_ET
        else:
            problem = normal_day_problem(self.trading_date)
            if problem:
                raise ValueError(problem)
            lo, hi = self.equity_window_et()
        if not (lo <= self.start_et < self.end_et <= hi):
            raise ValueError(
                f"need {lo.isoformat(timespec='minutes')} <= start_et < end_et <= {hi.isoformat(timespec='minutes')} "
                f"(New York time); got {self.start_et.isoformat()} .. {self.end_et.isoformat()}"
            )
        for name in ("start_et", "end_et"):
            if getattr(self, name).microsecond:
                raise ValueError(f"{name} must be a whole second")
        if self.info_jump_share + self.info_terminal_share >= 1.0:
            raise ValueError("info_jump_share + info_terminal_share must be below 1")
        if self.option_expiry <= self.trading_date:
            raise ValueError(f"option_expiry must be after {self.trading_date.isoformat()}")
        if 0 < self.factor_universe_size < 12:
            raise ValueError("factor_universe_size must be 0 (no universe) or at least 12 (a 2x3 sort needs them)")
        if self.impact_underlyings:
            if self.is_normal:
                raise ValueError("impact_underlyings needs the Election Day: the informed traders' signals are the "
                                 "election states (leave it empty on a normal day)")
            both = sorted(set(self.impact_underlyings) & set(self.option_underlyings))
            if both:
                # the simulated market writes its own ThetaData file per root: a chain of the same
                # underlying would collide with it (same file name, two quotes per contract and time)
                raise ValueError(f"{', '.join(both)}: in both option_underlyings and impact_underlyings; "
                                 "an underlying gets either a synthetic chain or the simulated informed market")
            period_ms = self.impact_period_seconds * 1000.0
            if abs(period_ms - round(period_ms)) > 1e-6:
                raise ValueError("impact_period_seconds must be a whole number of milliseconds")
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def is_normal(self) -> bool:
        return self.day_kind == "normal"

    def equity_window_et(self) -> tuple[dt.datetime, dt.datetime]:
        """[04:00, 20:00) New York time of the trading date."""
        return (dt.datetime.combine(self.trading_date, NORMAL_EQUITY_OPEN),
                dt.datetime.combine(self.trading_date, NORMAL_EQUITY_CLOSE))

    def manifest_dump(self) -> dict:
        """The configuration as written to ``manifest.json`` (``generated_with``).

        An Election Day leaves the normal-day knobs out (its manifest is the one written
        before normal days existed); a normal day lists every knob. Either way the knobs of
        ``OMITTED_AT_DEFAULT`` are left out while at their defaults, and
        ``SyntheticDayConfig(**dump)`` rebuilds the configuration.
        """
        exclude = {name for name in OMITTED_AT_DEFAULT
                   if getattr(self, name) == type(self).model_fields[name].default}
        if self.day_kind == "election":
            exclude |= set(NORMAL_DAY_FIELDS)
        return self.model_dump(mode="json", exclude=exclude)
