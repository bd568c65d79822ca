"""Price-discovery groups: which series are compared, and how derived series are built.

A *group* is a set of series that should share one efficient price (one common stochastic
trend), so that a VECM with cointegration rank ``K - 1`` and the price-discovery shares of
:func:`elecflow.leadership.price_discovery_shares` make sense. Members are named:

* ``"SPY"`` - a ticker: its log NBBO mid on the 1-second grid (the quote in force just before
  each whole second, carried forward between quotes);
* ``"NAV:SPY"`` - the net asset value implied by the ETF's constituents among our stocks: the
  weighted average of their log mids with the ETF's constituent weights
  (:mod:`elecflow.universe`) rescaled to sum to one. In log units the NAV of a continuously
  rebalanced basket moves by ``sum_j w_j dx_j``; its level is arbitrary (the VECM's inside
  constant absorbs it) and the rescaling only makes its returns comparable to the ETF's (the
  cointegration vector is estimated anyway);
* ``"KALSHI"`` - the probit ``Phi^{-1}(p)`` of the denoised Kalshi Trump-wins probability on the
  grid (the ``kalshi_probability`` stream's grid rows);
* ``"ELECTION"`` - the election-factor portfolio: ``sum_i w_i log mid_i`` with weights that load
  one-for-one on the election probability (``sum_i w_i g_i = 1``, ``g`` the d log S / d p
  loadings) at the least diffusive noise (below).

Every member is a linear combination of *base series* (tickers and ``KALSHI``):
:class:`SeriesBook` resolves names to weight vectors once, so a grid step is one small matrix
product.

**Default groups** (:func:`default_groups`): the S&P 500 trackers SPY/IVV/VOO; GOOGL/GOOG; each
ETF with constituents among our stocks against its NAV (SPY, QQQ, IVV, VUG, VOO, XLF, XLE, DIA,
SMH, XLU); the Kalshi probit against the election portfolio. Each group carries a ``note``
stating when its cointegration assumption holds. :func:`panel_group` is the seed study's
41-series panel (40 tickers and Kalshi), offered with its caveats (``PANEL_NOTE``) and off by
default.

**The election portfolio** (:func:`election_portfolio_weights`). In the universe's factor model
each asset's log return is ``g_i dp + e_i`` with diffusive noise ``e = E diag(sigma) dW`` over
independent shocks (factors and idiosyncratic terms, :func:`elecflow.universe.shock_exposures`).
The portfolio minimising the noise variance ``w' Sigma w`` subject to ``w' g = 1`` is
``w = Sigma^+ g / (g' Sigma^+ g)`` (``Sigma = E diag(sigma^2) E'``; the pseudo-inverse because
basket ETFs make ``Sigma`` singular, and ``g`` lies in its range since every loading comes
through the shocks). Leveraged ETFs are left out (their log returns are ``m`` times the index's
only to first order). These are the universe's **design** values - exact on the synthetic day;
with real data pass estimated weights (``election_weights``), e.g. from regressions of returns
on Kalshi probit changes. On the synthetic design the portfolio's noise is 0.36 (annualised, in
units of p) against p's own moves of about 1 point per 30 minutes in the day: Kalshi and the
portfolio are close to cointegrated only when p moves (pre-open, where the equity noise is
scaled down, and after hours around the poll closings).

Library layer: pydantic models and numpy; no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from elecflow import universe as U
from elecflow.leadership.hayashi_yoshida import NULL_SHIFT_PAIRS
from elecflow.leadership.regimes import DEFAULT_CLOSE_START

__all__ = [
    "KALSHI",
    "ELECTION",
    "NAV_PREFIX",
    "PANEL_NAME",
    "PANEL_NOTE",
    "SWEEP_MEASURES",
    "GroupSpec",
    "LeadershipConfig",
    "SeriesBook",
    "default_groups",
    "panel_group",
    "nav_weights",
    "nav_etfs",
    "election_portfolio_weights",
]

KALSHI = "KALSHI"
ELECTION = "ELECTION"
NAV_PREFIX = "NAV:"
PANEL_NAME = "panel41"

TRACKERS_NOTE = ("three ETFs on one index: one efficient price by arbitrage; designed leader on the "
                 "synthetic day: SPY (quote half-life 0.5 s, IVV 2 s, VOO 2.5 s)")
ALPHABET_NOTE = ("two share classes of one company (GOOG = GOOGL + 1% idiosyncratic vol on the synthetic "
                 "day, nearly one efficient price); designed leader GOOGL (half-life 2.5 s vs 3.5 s)")
NAV_NOTE = ("ETF vs the NAV of its constituents among our stocks ({coverage:.0%} of the basket by weight): "
            "cointegrated only if the rest of the basket is stationary against them. On the default "
            "synthetic day it is not (the ETFs load on factors beyond the listed constituents; the "
            "generator's etf_baskets=\"constituents\" control makes it so): read coint_rank before the shares")
ELECTION_NOTE = ("Kalshi probit vs the election-factor portfolio (unit loading on p, minimum diffusive noise): "
                 "cointegrated only while p's moves dominate the portfolio's noise (pre-open, after hours); "
                 "no equity quotes after 20:00 New York, so no rows on results night")
PANEL_NOTE = ("the seed study's 40 tickers + Kalshi in one VECM with rank 40 (one common trend). Caveats: "
              "the assets load on a dozen factors and their own shocks, i.e. many common trends, so rank 40 "
              "is mis-specified and the shares are not identified (the trace test cannot even be tabulated "
              "beyond 11 series); the Hasbrouck bounds are sampled over random orderings (41! is out of "
              "reach, so they are narrower than the exact ones); estimated every panel_publish_seconds only "
              "(a 41-market solve and the sampled bounds cost ~75 ms). The seed's 'Kalshi leads' came from "
              "this set-up with the DJT stock in Kalshi's place; read it as a descriptive decomposition, not "
              "as price discovery")

#: Leadership measures the sweep regression can use (:mod:`elecflow.leadership.sweep`):
#: the group shares (Hasbrouck midpoint, Lien-Shrestha, Gonzalo-Granger, Putnins) and the
#: Hayashi-Yoshida lead-lag ratio of each ticker against Kalshi.
SWEEP_MEASURES = ("is_mid", "mis", "cs", "ils", "kalshi_llr")


# --------------------------------------------------------------------------- weights


def nav_etfs() -> tuple[str, ...]:
    """ETFs of the universe with constituents among our stocks (those with a NAV series)."""
    return tuple(s for s in U.ETFS if U.INSTRUMENTS[s].constituent_weights)


def nav_weights(etf: str) -> dict[str, float]:
    """Constituent weights of ``etf`` among our stocks, rescaled to sum to one."""
    inst = U.get(etf)
    weights = dict(inst.constituent_weights)
    if not weights:
        raise ValueError(f"{etf} has no constituents among the universe's stocks, so it has no NAV series "
                         f"(ETFs with one: {', '.join(nav_etfs())})")
    total = sum(weights.values())
    return {s: w / total for s, w in weights.items()}


def election_portfolio_weights(symbols=None) -> dict[str, float]:
    """Minimum-noise portfolio with unit election loading under the universe's design.

    ``w = Sigma^+ g / (g' Sigma^+ g)`` over ``symbols`` (default: every unlevered stock and
    ETF), ``Sigma`` the covariance of the design's diffusive log returns, ``g`` the effective
    election loadings (module docstring). Returns ``{symbol: weight}`` with ``sum w g = 1``.
    """
    exposures = U.shock_exposures()
    loadings = U.effective_election_loadings()
    if symbols is None:
        symbols = [s for s in U.SYMBOLS if U.INSTRUMENTS[s].leverage is None]
    symbols = [U.get(s).symbol for s in symbols]
    if not symbols:
        raise ValueError("the election portfolio needs at least one symbol")
    vols = {f.name: f.vol for f in U.FACTORS}
    vols.update({f"idio:{s}": U.INSTRUMENTS[s].idio_vol for s in U.STOCKS})
    shocks = sorted({k for s in symbols for k in exposures[s]})
    e = np.array([[exposures[s].get(k, 0.0) for k in shocks] for s in symbols])
    sigma = (e * np.array([vols[k] ** 2 for k in shocks])) @ e.T
    g = np.array([loadings[s] for s in symbols])
    direction = np.linalg.pinv(sigma, rcond=1e-12, hermitian=True) @ g
    scale = float(direction @ g)
    if not scale > 0.0:
        raise ValueError(f"no portfolio of {symbols} loads on the election probability")
    return {s: float(w) / scale for s, w in zip(symbols, direction)}


# --------------------------------------------------------------------------- configuration


class GroupSpec(BaseModel):
    """One price-discovery group: a name, its members (>= 2 distinct series names, see the
    module docstring) and a note on when its cointegration assumption holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    members: tuple[str, ...]
    note: str = ""

    @field_validator("members")
    @classmethod
    def _check_members(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        if len(members) < 2:
            raise ValueError(f"a group needs at least two members (got {list(members)})")
        if len(set(members)) != len(members):
            raise ValueError(f"members must be distinct (got {list(members)})")
        for m in members:
            _check_member_name(m)
        return tuple(members)


def _check_member_name(name: str) -> None:
    if name in (KALSHI, ELECTION):
        return
    if name.startswith(NAV_PREFIX):
        nav_weights(name[len(NAV_PREFIX):])  # raises with the list of ETFs that have one
        return
    if not name or any(c.isspace() for c in name) or "|" in name or ":" in name:
        raise ValueError(f"{name!r} is not a series name: a ticker, NAV:<ETF>, {KALSHI} or {ELECTION}")


def default_groups() -> list[GroupSpec]:
    """The issue's default groups (module docstring)."""
    groups = [GroupSpec(name="sp500_trackers", members=("SPY", "IVV", "VOO"), note=TRACKERS_NOTE),
              GroupSpec(name="alphabet", members=("GOOGL", "GOOG"), note=ALPHABET_NOTE)]
    for etf in nav_etfs():
        coverage = sum(U.INSTRUMENTS[etf].constituent_weights.values())
        groups.append(GroupSpec(name=f"{etf}_nav", members=(etf, NAV_PREFIX + etf),
                                note=NAV_NOTE.format(coverage=coverage)))
    groups.append(GroupSpec(name="election", members=(KALSHI, ELECTION), note=ELECTION_NOTE))
    return groups


def panel_group() -> GroupSpec:
    """The seed's whole panel: the 40 tickers of the universe and Kalshi (``PANEL_NOTE``)."""
    return GroupSpec(name=PANEL_NAME, members=tuple(U.SYMBOLS) + (KALSHI,), note=PANEL_NOTE)


class LeadershipConfig(BaseModel):
    """Settings of the leadership streams (``price_discovery``, ``lead_lag``,
    ``sweep_leadership``); the defaults run the issue's groups on the synthetic day.

    Why the defaults: a 1,800 s window holds ~1,800 one-second rows, enough for a VECM with a
    handful of markets, and is short enough to follow the day's regimes (it fits the 30-minute
    close exactly). Estimates are published every 10 s: consecutive windows share 99.4 % of
    their rows, so publishing every step would multiply the output ~10x without new
    information, and a browser redraws no faster. The shares are still computed at every step
    for the per-regime averages. Lead-lag windows of 600 s of ticks, every 60 s: the
    Hayashi-Yoshida curve costs O(ticks x lags) per pair and ~55 pairs run at each
    publication; the per-regime curves add up all non-overlapping windows anyway. The Kalshi
    leg is the filter's p: on the default day after hours it identified 37 of 40 lead-lags
    against 32 with the fills themselves (``p_obs``, whose bid-ask bounce cuts the correlations
    from ~0.7 to ~0.15), with half as wide lag intervals, and its delay did not show (the filter
    takes the poll-closing jumps in one fill; docs/leadership.md, "Lead times"). 24 shift pairs
    per window measure the null at 0.7-1.2 times the cost of the 81-lag curve.
    """

    model_config = ConfigDict(extra="forbid")

    groups: list[GroupSpec] = Field(default_factory=default_groups,
                                    description="price-discovery groups (module docstring)")
    panel: bool = Field(False, description="also estimate the seed's 41-series panel (see PANEL_NOTE)")
    panel_publish_seconds: float = Field(60.0, gt=0, description="engine seconds between the panel's estimates "
                                                                 "(a 41-market solve and sampled bounds cost "
                                                                 "~75 ms)")
    window_seconds: int = Field(1800, ge=60, description="rows (grid steps) per rolling VECM window")
    step_seconds: float = Field(1.0, gt=0, description="engine seconds between grid rows (the window moves "
                                                       "one row per step)")
    publish_seconds: float = Field(10.0, gt=0, description="engine seconds between published estimates")
    shares_every_steps: int = Field(1, ge=1, description="compute the shares every this many steps (they "
                                                         "feed the per-regime averages); groups of more "
                                                         "than 6 markets only at publication")
    k_ar_diff: int = Field(1, ge=0, le=10, description="lagged differences of the VECM")
    deterministic: Literal["ci", "co"] = Field("ci", description="constant inside (ci) or outside (co) the "
                                                                 "cointegration relation")
    stale_seconds: float = Field(300.0, gt=0, description="a series without an update for this long is "
                                                          "stale; its groups stop and restart afresh")
    close_start: dt.time = Field(DEFAULT_CLOSE_START, description="New York time at which the close regime "
                                                                  "starts")
    lead_lag_window_seconds: float = Field(600.0, gt=0, description="engine seconds of ticks per lead-lag "
                                                                    "window")
    lead_lag_publish_seconds: float = Field(60.0, gt=0, description="engine seconds between lead-lag estimates")
    lead_lag_max_seconds: float = Field(10.0, gt=0, description="lag grid: -max .. +max")
    lead_lag_resolution_seconds: float = Field(0.25, gt=0, description="lag grid step")
    lead_lag_assets: list[str] | None = Field(None, description="tickers measured against Kalshi; None: every "
                                                                "ticker quoted")
    lead_lag_within_groups: bool = Field(True, description="also every pair of members within each group")
    lead_lag_kalshi: Literal["p_obs", "p"] = Field("p", description="Kalshi series of the lead-lag, on the probit "
                                                                   "scale at each fill: p_obs, the fill itself "
                                                                   "(no filter delay, bid-ask bounce), or p, the "
                                                                   "filter's estimate (smoother; its delay would "
                                                                   "enter every lead time)")
    lead_lag_null_pairs: int = Field(NULL_SHIFT_PAIRS, ge=2, description="pairs of circular shifts measuring "
                                                                         "each window's null (identification)")
    election_weights: dict[str, float] | None = Field(None, description="election portfolio weights; None: "
                                                                        "the universe's design (docstring)")
    sweep_measures: list[Literal["is_mid", "mis", "cs", "ils", "kalshi_llr"]] = Field(
        default_factory=lambda: ["is_mid", "mis", "cs", "kalshi_llr"],
        description="leadership measures regressed on the ISO share")
    sweep_cointegrated_only: bool = Field(True, description="regress only on groups whose window passes the "
                                                            "trace test at full rank (shares of a system "
                                                            "without one common trend mean nothing)")

    @field_validator("groups")
    @classmethod
    def _unique_names(cls, groups: list[GroupSpec]) -> list[GroupSpec]:
        names = [g.name for g in groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"group names must be unique (repeated: {', '.join(dupes)})")
        if PANEL_NAME in names:
            raise ValueError(f"{PANEL_NAME!r} is reserved for the panel (set panel = true)")
        return groups

    @field_validator("election_weights")
    @classmethod
    def _check_weights(cls, weights: dict[str, float] | None) -> dict[str, float] | None:
        if weights is not None:
            if not weights:
                raise ValueError("election_weights is empty")
            for name, w in weights.items():
                _check_member_name(name)
                if name in (KALSHI, ELECTION) or name.startswith(NAV_PREFIX):
                    raise ValueError(f"election_weights must name tickers (got {name!r})")
                if not math.isfinite(w):
                    raise ValueError(f"election weight of {name} is not finite")
        return weights

    @model_validator(mode="after")
    def _check_grid(self) -> "LeadershipConfig":
        if self.publish_seconds < self.step_seconds:
            raise ValueError("publish_seconds must be at least step_seconds")
        ratio = self.panel_publish_seconds / self.publish_seconds
        if abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
            raise ValueError("panel_publish_seconds must be a whole multiple of publish_seconds")
        if self.lead_lag_resolution_seconds > self.lead_lag_max_seconds:
            raise ValueError("lead_lag_resolution_seconds must not exceed lead_lag_max_seconds")
        if self.lead_lag_max_seconds >= self.lead_lag_window_seconds / 2:
            raise ValueError("lead_lag_max_seconds must be below half the lead-lag window")
        if 4 * self.lead_lag_max_seconds + self.lead_lag_resolution_seconds >= self.lead_lag_window_seconds:
            raise ValueError("lead_lag_window_seconds must exceed 4 lead_lag_max_seconds + "
                             "lead_lag_resolution_seconds (the null's circular shifts stay 2 max from either end)")
        ratio = self.lead_lag_window_seconds / self.lead_lag_publish_seconds
        if abs(ratio - round(ratio)) > 1e-9:  # the per-regime sums need windows that tile the day
            raise ValueError("lead_lag_window_seconds must be a whole multiple of lead_lag_publish_seconds")
        return self

    def all_groups(self) -> list[GroupSpec]:
        """The configured groups, plus the panel when ``panel`` is on."""
        return list(self.groups) + ([panel_group()] if self.panel else [])

    def lag_grid(self) -> np.ndarray:
        """The symmetric lag grid of the lead-lag curves, in seconds (0 included)."""
        n = int(math.floor(self.lead_lag_max_seconds / self.lead_lag_resolution_seconds + 1e-9))
        return np.arange(-n, n + 1) * self.lead_lag_resolution_seconds


# --------------------------------------------------------------------------- series book


@dataclass(frozen=True)
class SeriesBook:
    """Members resolved to weights on base series (tickers and ``KALSHI``).

    ``bases`` lists the base series in a fixed order; ``weights[name]`` is the vector of a
    member's weights on them; ``constituents[name]`` the bases it uses. A grid step's member
    values are ``weights @ base_values``.
    """

    bases: tuple[str, ...]
    weights: dict[str, np.ndarray]
    constituents: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, members, election_weights: dict[str, float] | None = None) -> "SeriesBook":
        """Resolve member names; ``election_weights`` overrides the design portfolio."""
        combos: dict[str, dict[str, float]] = {}
        for name in members:
            if name in combos:
                continue
            if name == ELECTION:
                w = election_weights if election_weights is not None else election_portfolio_weights()
                combos[name] = {s: float(v) for s, v in w.items() if v != 0.0}
            elif name.startswith(NAV_PREFIX):
                combos[name] = nav_weights(name[len(NAV_PREFIX):])
            else:
                _check_member_name(name)
                combos[name] = {name: 1.0}
        bases = tuple(sorted({b for combo in combos.values() for b in combo}))
        index = {b: i for i, b in enumerate(bases)}
        weights = {}
        for name, combo in combos.items():
            vec = np.zeros(len(bases))
            for b, w in combo.items():
                vec[index[b]] = w
            weights[name] = vec
        return cls(bases, weights, {n: tuple(sorted(c)) for n, c in combos.items()})

    def matrix(self, members) -> np.ndarray:
        """``len(members) x len(bases)`` weights, one row per member."""
        return np.vstack([self.weights[m] for m in members])

    def is_derived(self, name: str) -> bool:
        return self.constituents[name] != (name,)
