"""Knobs of the synthetic Election Day (pydantic v2; every field has a default).

The defaults generate the whole default day (2024-11-05 00:00 ET to 2024-11-06 06:00 ET)
described in docs/synthetic-day.md. Times are New York wall-clock times.
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

_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(\+1d)?\s*$")


def parse_et(value) -> dt.datetime:
    """A window bound in New York time -> naive New York datetime.

    Accepts a datetime (aware ones are converted to New York), an ISO string
    (``2024-11-05T09:30``), or ``HH:MM[:SS]`` on 2024-11-05 with an optional ``+1d``
    suffix for 2024-11-06 (``06:00+1d``). ``24:00`` means midnight at the end of 11-05.
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
        day = DAY + dt.timedelta(days=1 if m.group(4) else 0)
        if hh == 24 and mm == 0 and ss == 0:
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0))
        return dt.datetime.combine(day, dt.time(hh, mm, ss))
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"{value!r} is neither HH:MM[:SS][+1d] nor an ISO datetime") from exc
    return parse_et(parsed)


class SyntheticDayConfig(BaseModel):
    """All knobs of the synthetic day. See docs/synthetic-day.md for the model."""

    model_config = ConfigDict(extra="forbid")

    # ---- run
    seed: int = Field(DEFAULT_SEED, ge=0, description="root seed; every component has its own child stream")
    start_et: dt.datetime = Field(FULL_START_ET, description="window start, New York time (>= 2024-11-05 00:00)")
    end_et: dt.datetime = Field(FULL_END_ET, description="window end (exclusive), New York time (<= 2024-11-06 06:00)")
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
    # ---- options
    option_underlyings: list[str] = Field(default_factory=lambda: ["SPY", "QQQ", "IWM", "TLT", "DJT", "TSLA"])
    option_expiry: dt.date = Field(dt.date(2024, 11, 15), description="the one expiry quoted (16:00 ET settlement)")
    option_snapshot_seconds: float = Field(60.0, ge=1.0, le=3600.0,
                                           description="snapshot cadence in 09:30-16:00 ET, whole seconds")
    option_strike_range: float = Field(0.25, gt=0.0, le=0.9, description="strikes within spot*(1 -/+ range)")
    risk_free_rate: float = Field(0.0483, ge=-0.05, le=0.5,
                                  description="continuous rate, ~10-day T-bill in early Nov 2024")
    option_format: Literal["raw", "formatted"] = "raw"
    # ---- Kalshi
    kalshi_expected_trades: float = Field(20_000.0, ge=0.0, le=5e6,
                                          description="expected DJT+KH fills over the full 30 h window")
    kalshi_informed_share: float = Field(0.25, ge=0.0, le=1.0, description="takers who trade the next minute's move")
    kalshi_other_outcomes: float = Field(0.01, ge=0.0, lt=0.2, description="probability of neither DJT nor KH")
    kalshi_format: Literal["daily_report", "rest"] = "daily_report"
    # ---- defects and output
    defects_per_kind: int = Field(5, ge=0, le=1000, description="injected bad rows per stream and reason")
    write_ground_truth: bool = True
    gzip_level: int = Field(3, ge=1, le=9, description="gzip level of the Polygon CSV files")

    @field_validator("start_et", "end_et", mode="before")
    @classmethod
    def _parse_bound(cls, value):
        return parse_et(value)

    @field_validator("option_underlyings")
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
        if not (FULL_START_ET <= self.start_et < self.end_et <= FULL_END_ET):
            raise ValueError(
                "need 2024-11-05T00:00 <= start_et < end_et <= 2024-11-06T06:00 (New York time); "
                f"got {self.start_et.isoformat()} .. {self.end_et.isoformat()}"
            )
        for name in ("start_et", "end_et"):
            if getattr(self, name).microsecond:
                raise ValueError(f"{name} must be a whole second")
        if self.info_jump_share + self.info_terminal_share >= 1.0:
            raise ValueError("info_jump_share + info_terminal_share must be below 1")
        if self.option_expiry <= DAY:
            raise ValueError("option_expiry must be after 2024-11-05")
        return self
