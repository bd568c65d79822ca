"""Run configuration: pydantic models whose defaults replay the embedded Election Day.

Precedence: defaults < one TOML file (``--config``) < command-line flags. Invalid values fail
at start with a message naming the field.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from elecflow.factors.settings import FactorConfig
from elecflow.leadership.groups import LeadershipConfig
from elecflow.impact_stream import ImpactConfig
from elecflow.universe import ETFS, STOCKS

ELECTION_DAY = dt.date(2024, 11, 5)
KALSHI_ELECTION_CONTRACTS = ("PRES-2024-DJT", "PRES-2024-KH")
# A paced replay with no --start begins five minutes before the opening bell, so a newcomer
# sees the market open within minutes instead of watching four hours of overnight Kalshi.
PACED_DEFAULT_START = "09:25"


class ReplayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["paced", "sim"] = Field("paced", description="paced: N x real time; sim: as fast as possible")
    speed: float = Field(60.0, gt=0, description="multiple of real time in paced mode")
    date: dt.date = Field(ELECTION_DAY, description="trading date that HH:MM in start/end refer to")
    start: str | None = Field(None, description="window start: HH:MM[:SS] New York time on `date`, or ISO datetime; "
                                                "default: 09:25 when paced, the first event in sim mode")
    end: str | None = Field(None, description="window end (exclusive), same forms as start")
    data: Path | None = Field(None, description="directory of vendor files; None = the embedded synthetic day")
    out: Path = Field(Path("out"), description="output directory")
    dashboard: bool | None = Field(None, description="serve the dashboard; default: on when paced, off in sim")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    exit_when_done: bool = Field(False, description="stop serving the dashboard when the replay ends")
    symbols: list[str] | None = Field(default_factory=lambda: list(STOCKS) + list(ETFS),
                                      description="equities/ETFs to keep; None = every ticker in the files")
    underlyings: list[str] | None = Field(None, description="option underlyings to keep; None = all in the files")
    kalshi_contracts: list[str] | None = Field(default_factory=lambda: list(KALSHI_ELECTION_CONTRACTS))
    size_unit: Literal["shares", "round_lots"] = "shares"
    batch_rows: int = Field(500_000, ge=1_000)
    part_minutes: float = Field(60.0, gt=0, description="engine minutes per output Parquet part")
    clock_seconds: float = Field(1.0, gt=0, description="engine seconds between replay_clock rows")
    progress: bool = True
    features: bool = Field(True, description="compute microstructure bars and the 1 s NBBO sample")
    signing_method: Literal["lee_ready", "tick", "emo"] = Field("lee_ready", description="trade signing rule")
    upmove: bool = Field(True, description="score each bar with the up-move classifier (needs features)")
    options: bool = Field(True, description="smiles and risk-neutral densities of the option chains")
    option_refresh_seconds: float = Field(1.0, gt=0, description="engine seconds between chain refreshes")
    option_curve_seconds: float = Field(60.0, gt=0, description="engine seconds between smile/density curve rows")
    positions: Path | None = Field(None, description="position file whose election delta is hedged with Kalshi "
                                                     "contracts (format: docs/states.md)")
    option_states_seconds: float = Field(60.0, ge=0, description="engine seconds between Trump/Harris state fits "
                                                                  "per chain (0: none)")
    option_rate: float = Field(0.0483, description="risk-free rate (continuous) for the spot-carry fallback and "
                                                   "time value; the forward and discount come from parity")
    option_div_yield: float = Field(0.0, description="dividend yield for the spot-carry fallback")
    kalshi_filter: bool = Field(True, description="denoise the Kalshi election probability")
    kalshi_grid_seconds: float = Field(1.0, gt=0, description="grid of the filtered probability's predictions")
    kalshi_warmup_fills: int = Field(500, ge=20, description="fills used to estimate the filter's noise parameters")
    quote_delay_ms: float = Field(0.0, ge=0, description="trades are signed against the quote in force this "
                                                         "long before them (Lee-Ready's quote delay)")
    leadership: bool = Field(True, description="price discovery per group, lead-lag and the sweep-leadership "
                                               "regression (docs/leadership.md)")
    leadership_settings: LeadershipConfig = Field(default_factory=LeadershipConfig,
                                                  description="groups, windows and cadences of the leadership "
                                                              "streams ([replay.leadership_settings] in TOML)")
    factors: bool = Field(True, description="Fama-French factor returns, betas, systematic/idiosyncratic variance "
                                            "and ETF replication (docs/factors.md); needs a factor universe")
    factor_settings: FactorConfig = Field(default_factory=FactorConfig,
                                          description="universe, baseline days, interval and windows of the factor "
                                                      "streams ([replay.factor_settings] in TOML)")
    impact: bool | None = Field(None, description="cross impact of option order flow: eq. (45), straddle and "
                                                  "portfolio statistics, smile curvature (docs/theory.md); "
                                                  "default: on when the data has option trades")
    impact_settings: ImpactConfig = Field(default_factory=ImpactConfig,
                                          description="underlyings, contracts, period, window and cadence of the "
                                                      "cross-impact streams ([replay.impact_settings] in TOML)")

    @field_validator("start", "end")
    @classmethod
    def _check_time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window_bound(value, ELECTION_DAY)
        return value

    @model_validator(mode="after")
    def _check_window(self) -> "ReplayConfig":
        if self.start and self.end:
            if parse_window_bound(self.end, self.date) <= parse_window_bound(self.start, self.date):
                raise ValueError("end must be after start")
        return self

    @property
    def dashboard_enabled(self) -> bool:
        return self.mode == "paced" if self.dashboard is None else self.dashboard

    def window_utc(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        start_text = self.start or (PACED_DEFAULT_START if self.mode == "paced" else None)
        start = parse_window_bound(start_text, self.date) if start_text else None
        end = parse_window_bound(self.end, self.date) if self.end else None
        return start, end


def parse_window_bound(text: str, date: dt.date) -> dt.datetime:
    """``HH:MM[:SS]`` New York time on ``date`` (``+1`` suffix: the next day), or an ISO datetime
    (naive = New York), to a naive UTC datetime as csp uses."""
    from elecflow.calendar import NEW_YORK

    text = text.strip()
    days = 0
    for suffix in ("+1d", "+1"):  # "06:00+1": the next morning (the results night)
        if text.endswith(suffix):
            text, days = text[: -len(suffix)], 1
            break
    try:
        if "T" in text or "-" in text[:5]:
            value = dt.datetime.fromisoformat(text)
        else:
            value = dt.datetime.combine(date + dt.timedelta(days=days), dt.time.fromisoformat(text))
    except ValueError as exc:
        raise ValueError(f"{text!r} is neither HH:MM[:SS] nor an ISO datetime") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=NEW_YORK)
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
