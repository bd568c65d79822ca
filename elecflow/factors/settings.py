"""Settings of the factor streams (``[replay.factor_settings]`` in TOML; docs/factors.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from elecflow.factors.model import FactorModelSettings

__all__ = ["FactorConfig"]


class FactorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    universe: Path | None = Field(None, description="folder of the factor universe's 1 s NBBO files and factor "
                                                    "weights JSON; default <data>/factor_universe")
    baseline: Path | None = Field(None, description="folder of prior normal days, one YYYY-MM-DD subfolder each "
                                                    "(vendor files + factor_universe/); default for a synthetic "
                                                    "day: <data>/../normal-days-seed<seed>")
    baseline_days: int = Field(5, ge=0, le=60, description="trading days before the replay date used for the "
                                                           "prior betas and the idiosyncratic-variance baseline")
    generate_baseline: bool = Field(False, description="synthetic data: generate missing baseline days (about "
                                                       "8 s each, once; the CLI turns this on for the embedded day)")
    interval_seconds: float = Field(60.0, ge=1, le=3600, description="interval of the betas and decomposition")
    dimson_lags: int = Field(1, ge=0, le=10, description="lagged factor returns in the beta regression")
    window_intervals: int = Field(30, ge=2, le=10_000, description="rolling decomposition window, in intervals")
    beta_halflife_hours: float = Field(6.5, gt=0, le=10_000, description="half-life of the betas' forgetting")
    prior_weight: float = Field(1.0, ge=0, le=100, description="weight of the baseline days' statistics "
                                                               "(1: as observed)")
    min_intervals: float = Field(20.0, ge=1, le=100_000, description="effective intervals (prior included) "
                                                                      "before an instrument's betas are used")
    risk_free_rate: float = Field(0.0483, ge=-0.05, le=0.5, description="continuous rate of MKT-RF's risk-free leg")

    @field_validator("interval_seconds")
    @classmethod
    def _whole_seconds(cls, value: float) -> float:
        if value != int(value):
            raise ValueError("interval_seconds must be a whole number of seconds")
        return float(value)

    def model_settings(self) -> FactorModelSettings:
        return FactorModelSettings(interval_seconds=self.interval_seconds, dimson_lags=self.dimson_lags,
                                   beta_halflife_hours=self.beta_halflife_hours,
                                   window_intervals=self.window_intervals, prior_weight=self.prior_weight,
                                   min_intervals=self.min_intervals)
