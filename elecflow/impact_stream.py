"""Cross impact of option order flow on a stream of quotes and trades (issue 7, Section 8).

:mod:`elecflow.impact` estimates eq. (45), ``dp_t = Lambda omega_t + u_t``, from arrays of
per-period price changes and signed flows. This module builds those arrays from events, as a
replay or a live feed delivers them, and turns a fit into the published statistics. The graph
node (``elecflow.graphs.impact``) only routes ticks and converts results to structs.

Periods
-------
Time is cut into periods of fixed length on the UTC epoch grid, ``(b - P, b]``. For period t:

- ``dp_t[j]`` = the mid of contract j as of the period's end minus its mid as of its start
  (mids forward-filled from the last quote; an event stamped exactly at a boundary belongs to
  the period it ends, the vendor's convention for snapshots taken "as of" a time);
- ``omega_t[j]`` = signed contracts traded in contract j in the period: ``sum(side * size)``
  over its prints, 0 when it did not trade.

A period enters the regression only when every contract of the set has a mid at both ends and
at least one quote or trade of the set arrived in it: outside its session a market makes no
periods of the game (on the synthetic day, the replay's 30 hours hold one 6.5-hour session of
option trading), and a period in which nothing was observed carries no information, only a
row of zeros that would pull the slopes toward the intercept.

Signing: a print with a vendor side (the simulator's ``side``: ``B`` +1, ``S`` -1) keeps it.
Real option prints are unsigned (``side`` 0): they are signed by the quote rule against the
contract's mid in force (above: buy, below: sell), and at the mid by the tick test against
the contract's last print at a different price; a print that neither rule signs adds nothing
to ``omega`` and is counted.

The contract set
----------------
Fixed for the session (column j of Lambda must mean one contract throughout): either an
explicit list of contract codes, or chosen once, at the first period end after the
underlying's first quotes, as the ``n_strikes`` strikes nearest the put-call-parity forward
that have two-sided call *and* put quotes, on the earliest expiry that has that many (else
the expiry with the most). Contracts are ordered by strike, call before put, as
:meth:`elecflow.theory.simulator.OptionMarketModel.election` orders them.

Statistics (:class:`ImpactReport`)
----------------------------------
- Lambda and its standard errors (:class:`elecflow.impact.ImpactEstimate`);
- the within-straddle cross impact ``Lambda_CP + Lambda_PC`` at every strike of the set
  (footnote 34);
- ``CI^(m)`` (footnote 35) for the theory's prescribed portfolios: the corrected
  equilibrium demand of an insider who knows the election outcome, from the option-space
  model of :mod:`elecflow.theory.simulator` with the Trump and Harris states of the seed
  universe (``LognormalStories.election``: the universe's reference price, uniform prior,
  the contracts' time to expiry when the set is chosen, equal noise across contracts). One
  portfolio per story; for K = 2 they are opposite, so their ``CI^(m)`` agree. An
  underlying outside the seed universe has no state model and no portfolio rows;
- ``CI^wing`` (footnote 37) between the puts of the lowest and the calls of the highest
  quarter of the set's strikes;
- the smile curvature ``kappa_t`` at the 25-delta points (footnote 37,
  :func:`elecflow.impact.smile_curvature`): from the option-chain node's smile (its quoted
  out-of-the-money implied vols over the whole chain, parity forward, tau) when the graph
  computes chains, else from the set's own mids (parity forward, Black implied vols).

Library layer: numpy/scipy only (the theory model is imported lazily, once per set).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from elecflow.impact import ImpactEstimate, RollingImpactRegression, smile_curvature
from elecflow.options import black_implied_vol, implied_forward, time_to_expiry

__all__ = [
    "ImpactConfig",
    "SIDE_BUY",
    "SIDE_SELL",
    "SIDE_UNKNOWN",
    "ContractSet",
    "QuoteState",
    "select_contracts",
    "PeriodFlows",
    "CrossImpactMonitor",
    "ImpactReport",
    "SmileView",
    "election_option_model",
    "election_prescribed_weights",
    "kappa_from_mids",
    "contract_labels",
]

SIDE_BUY, SIDE_SELL, SIDE_UNKNOWN = 1, -1, 0
_DEFAULT_NOISE_SD = 20.0        # the simulator's noise-trader sd; only relative noise matters to the weights


# ------------------------------------------------------------------------------ contracts


@dataclass(frozen=True)
class QuoteState:
    """The latest quote of one contract, as contract selection needs it."""

    expiry: dt.date
    strike: float
    is_call: bool
    bid: float
    ask: float

    @property
    def two_sided(self) -> bool:
        # a zero bid far from the money is a real quote; no offer (ask 0) is not a price
        return self.ask > 0.0 and 0.0 <= self.bid <= self.ask

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask) if self.two_sided else math.nan


def contract_labels(strikes: np.ndarray, is_call: np.ndarray) -> tuple[str, ...]:
    """Labels that sort as the contracts do on a chart axis: ``"C 046.50"`` style, puts after
    calls, strikes zero-padded to a common width (so 95 sorts before 100)."""
    width = len(f"{float(np.max(strikes)):.2f}") if len(strikes) else 0
    return tuple(f"{'C' if c else 'P'} {k:0{width}.2f}" for k, c in zip(strikes, is_call))


@dataclass(frozen=True)
class ContractSet:
    """The M contracts of one underlying's regression, in column order."""

    underlying: str
    expiry: dt.date
    contracts: tuple[str, ...]
    strikes: np.ndarray
    is_call: np.ndarray
    labels: tuple[str, ...] = ()
    index: dict = field(default_factory=dict)

    def __post_init__(self):
        k = np.asarray(self.strikes, dtype=np.float64).copy()
        c = np.asarray(self.is_call, dtype=bool).copy()
        if k.ndim != 1 or c.shape != k.shape or len(self.contracts) != k.size or k.size < 2:
            raise ValueError("a contract set needs at least two contracts with one strike and right each")
        if len(set(self.contracts)) != k.size:
            raise ValueError("contracts must be distinct")
        k.setflags(write=False)
        c.setflags(write=False)
        object.__setattr__(self, "strikes", k)
        object.__setattr__(self, "is_call", c)
        object.__setattr__(self, "labels", contract_labels(k, c))
        object.__setattr__(self, "index", {name: j for j, name in enumerate(self.contracts)})

    @property
    def M(self) -> int:
        return len(self.contracts)

    def straddle_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(call_index, put_index, strike)`` of every strike with both a call and a put."""
        calls = {round(k * 1000): j for j, (k, c) in enumerate(zip(self.strikes, self.is_call)) if c}
        puts = {round(k * 1000): j for j, (k, c) in enumerate(zip(self.strikes, self.is_call)) if not c}
        common = sorted(set(calls) & set(puts))
        return (np.array([calls[k] for k in common], dtype=np.int64),
                np.array([puts[k] for k in common], dtype=np.int64), np.array(common, dtype=np.float64) / 1000.0)

    def wings(self, fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
        """Footnote 37's two wings: the puts at the lowest and the calls at the highest
        ``fraction`` of the set's distinct strikes (at least one strike each)."""
        distinct = np.unique(self.strikes)
        n = max(1, int(math.ceil(fraction * distinct.size)))
        if 2 * n > distinct.size:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        low = np.flatnonzero(~self.is_call & (self.strikes <= distinct[n - 1]))
        high = np.flatnonzero(self.is_call & (self.strikes >= distinct[-n]))
        return low, high


def _ordered(underlying, expiry, rows) -> ContractSet:
    """A set from ``(contract, strike, is_call)`` rows, ordered by strike, call before put."""
    rows = sorted(rows, key=lambda r: (r[1], not r[2]))
    return ContractSet(underlying, expiry, tuple(r[0] for r in rows), np.array([r[1] for r in rows]),
                       np.array([r[2] for r in rows], dtype=bool))


def select_contracts(underlying: str, book: dict[str, QuoteState], n_strikes: int,
                     contracts: tuple[str, ...] | None = None) -> ContractSet | None:
    """The regression's contract set from the latest quotes of an underlying (module docstring).

    ``book`` maps contract codes to their latest :class:`QuoteState`. With ``contracts`` the
    set is exactly those (None until every one has been quoted; they must share an expiry).
    Returns None while no expiry has at least two strikes quoted on both sides.
    """
    if contracts:
        if any(c not in book for c in contracts):
            return None
        expiries = {book[c].expiry for c in contracts}
        if len(expiries) != 1:
            raise ValueError(f"{underlying}: the configured impact contracts span several expiries "
                             f"({', '.join(sorted(e.isoformat() for e in expiries))})")
        return _ordered(underlying, expiries.pop(), [(c, book[c].strike, book[c].is_call) for c in contracts])
    if int(n_strikes) != n_strikes or n_strikes < 1:
        raise ValueError(f"n_strikes must be an integer >= 1 (got {n_strikes!r})")
    # per expiry and strike: the two-sided call and put
    pairs: dict[dt.date, dict[float, dict[bool, tuple[str, float]]]] = {}
    for name, q in book.items():
        if q.two_sided:
            pairs.setdefault(q.expiry, {}).setdefault(q.strike, {})[q.is_call] = (name, q.mid)
    full = {e: {k: v for k, v in by_k.items() if len(v) == 2} for e, by_k in pairs.items()}
    usable = {e: v for e, v in full.items() if len(v) >= 2}
    if not usable:
        return None
    enough = sorted(e for e, v in usable.items() if len(v) >= n_strikes)
    expiry = enough[0] if enough else max(sorted(usable), key=lambda e: len(usable[e]))
    by_k = usable[expiry]
    K = np.array(sorted(by_k))
    C = np.array([by_k[k][True][1] for k in K])
    P = np.array([by_k[k][False][1] for k in K])
    fit = implied_forward(K, C, P)
    forward = fit.forward if math.isfinite(fit.forward) else float(K[np.argmin(np.abs(C - P))])
    chosen = np.sort(K[np.argsort(np.abs(K - forward), kind="stable")[:int(n_strikes)]])
    rows = [(by_k[k][right][0], float(k), right) for k in chosen for right in (True, False)]
    return _ordered(underlying, expiry, rows)


# ------------------------------------------------------------------------------ periods


class PeriodFlows:
    """Per-period mid changes and signed flows of one contract set (module docstring).

    Feed :meth:`quote` and :meth:`trade` in event order and call :meth:`close` at every
    period end; it returns ``(dp, omega)`` for a period that enters the regression, else
    None. Counters say why periods or prints were left out.
    """

    def __init__(self, n_contracts: int):
        M = int(n_contracts)
        self.mid = np.full(M, np.nan)          # as of now (forward-filled)
        self._start = np.full(M, np.nan)       # as of the current period's start
        self._flow = np.zeros(M)
        self._last_price = np.full(M, np.nan)  # last print per contract (tick test)
        self._last_tick = np.zeros(M, dtype=np.int64)  # sign of its last price change
        self._events = 0
        self.periods_used = 0
        self.periods_quiet = 0                 # nothing arrived: outside the session
        self.periods_unquoted = 0              # some contract had no mid yet
        self.trades = 0
        self.trades_vendor_signed = 0
        self.trades_quote_rule = 0
        self.trades_tick_rule = 0
        self.trades_unsigned = 0

    def start(self) -> None:
        """Take the current mids as the start of the first period (when the set is chosen)."""
        self._start = self.mid.copy()
        self._flow[:] = 0.0
        self._events = 0

    def quote(self, j: int, bid: float, ask: float) -> None:
        self._events += 1
        if ask > 0.0 and 0.0 <= bid <= ask:      # a quote without an offer leaves the last mid
            self.mid[j] = 0.5 * (bid + ask)

    def trade(self, j: int, price: float, size: float, side: int) -> int:
        """Add a print; returns the sign it was given (0: unsigned, left out of the flow)."""
        self._events += 1
        self.trades += 1
        last = self._last_price[j]
        if math.isfinite(last) and price != last:
            self._last_tick[j] = 1 if price > last else -1
        self._last_price[j] = price
        if side == SIDE_BUY or side == SIDE_SELL:
            sign = side
            self.trades_vendor_signed += 1
        else:
            m = self.mid[j]
            if math.isfinite(m) and price != m:
                sign = 1 if price > m else -1
                self.trades_quote_rule += 1
            elif self._last_tick[j] != 0:
                sign = int(self._last_tick[j])
                self.trades_tick_rule += 1
            else:
                self.trades_unsigned += 1
                return 0
        self._flow[j] += sign * size
        return sign

    def close(self) -> tuple[np.ndarray, np.ndarray] | None:
        """End the period: its ``(dp, omega)`` if it enters the regression, else None."""
        out = None
        if self._events == 0:
            self.periods_quiet += 1
        elif not (np.all(np.isfinite(self._start)) and np.all(np.isfinite(self.mid))):
            self.periods_unquoted += 1
        else:
            out = (self.mid - self._start, self._flow.copy())
            self.periods_used += 1
        self._start = self.mid.copy()
        self._flow[:] = 0.0
        self._events = 0
        return out

    def counters(self) -> dict[str, int]:
        return {"periods_used": self.periods_used, "periods_quiet": self.periods_quiet,
                "periods_unquoted": self.periods_unquoted, "trades": self.trades,
                "trades_vendor_signed": self.trades_vendor_signed, "trades_quote_rule": self.trades_quote_rule,
                "trades_tick_rule": self.trades_tick_rule, "trades_unsigned": self.trades_unsigned}


# ------------------------------------------------------------------------------ theory


def election_option_model(underlying: str, strikes, is_call, tau: float, *, q: float = 0.5,
                          sigma=_DEFAULT_NOISE_SD, spot: float | None = None):
    """The option-space equilibrium model of an underlying's contracts with its Trump and
    Harris states as the two stories (:class:`elecflow.theory.simulator.OptionMarketModel`
    built as its ``election`` constructor builds it, on the given contracts). The synthetic
    day's generator and the graph both build it here, so their prescribed weights agree."""
    from elecflow.theory.simulator import LognormalStories, OptionMarketModel

    stories = LognormalStories.election(underlying, tau, q=q, spot=spot)
    return OptionMarketModel(stories, np.asarray(strikes, dtype=np.float64), np.asarray(is_call, dtype=bool), sigma,
                             [q, 1.0 - q])


def election_prescribed_weights(underlying: str, strikes, is_call, tau: float) -> dict[str, np.ndarray]:
    """The theory's leg weights per story (``OptionMarketModel.prescribed_weights``): the
    equilibrium demand of an insider who knows the outcome, scaled to ``sum |w| = 1``.

    Raises ``KeyError`` for an underlying outside the seed universe (no state model)."""
    model = election_option_model(underlying, strikes, is_call, tau)
    return {name: model.prescribed_weights(k) for k, name in enumerate(model.stories.names)}


# ------------------------------------------------------------------------------ curvature


@dataclass(frozen=True)
class SmileView:
    """A chain's smile as the option-chain node publishes it: out-of-the-money quoted implied
    vols by strike, with the chain's forward and time to expiry."""

    strikes: np.ndarray
    iv: np.ndarray
    forward: float
    tau: float
    time_ns: int


def kappa_from_mids(strikes, is_call, mids, expiry: dt.date, now_ns: int, delta: float = 0.25) -> float:
    """``kappa_t`` from the set's own mids: parity forward and discount (Huber fit over the
    pairs), Black implied vols of the out-of-the-money contracts, footnote 37's curvature.
    NaN when parity cannot be fitted or the 25-delta points lie outside the strikes."""
    K = np.asarray(strikes, dtype=np.float64)
    c = np.asarray(is_call, dtype=bool)
    m = np.asarray(mids, dtype=np.float64)
    tau = time_to_expiry(now_ns, expiry)
    if not tau > 0:
        return math.nan
    calls = {k: v for k, v, ci in zip(K, m, c) if ci}
    puts = {k: v for k, v, ci in zip(K, m, c) if not ci}
    common = sorted(set(calls) & set(puts))
    fit = implied_forward(np.array(common), np.array([calls[k] for k in common]), np.array([puts[k] for k in common]))
    if fit.method != "parity_huber":
        return math.nan
    otm = np.where(c, K >= fit.forward, K < fit.forward) & np.isfinite(m) & (m > 0)
    if otm.sum() < 3:
        return math.nan
    iv = black_implied_vol(m[otm], fit.forward, K[otm], tau, c[otm], fit.discount)
    return smile_curvature(K[otm], np.asarray(iv, dtype=np.float64), fit.forward, tau, delta=delta)


# ------------------------------------------------------------------------------ monitor


@dataclass(frozen=True)
class ImpactReport:
    """One publication of an underlying's cross impact (module docstring)."""

    contracts: ContractSet
    estimate: ImpactEstimate
    straddle_strikes: np.ndarray
    straddle: np.ndarray
    straddle_se: np.ndarray
    portfolios: dict            # story -> (CI^(m), se); empty without a state model
    wing: tuple[float, float]   # (CI^wing, se); NaN without two wings
    wing_low: np.ndarray
    wing_high: np.ndarray
    kappa: float
    kappa_source: str           # "chain_smile", "quotes" or "none"
    kappa_delta: float
    counters: dict
    weights_note: str           # why there are no portfolio rows ("" when there are)

    @property
    def r_squared_mean(self) -> float:
        r2 = self.estimate.r_squared
        return float(np.nanmean(r2)) if np.any(np.isfinite(r2)) else math.nan


class CrossImpactMonitor:
    """Eq. (45) on one underlying's stream of option quotes and trades.

    Parameters
    ----------
    underlying : str
    n_strikes : int
        Strikes in the automatically chosen set (M = 2 n_strikes contracts).
    window : int or None
        Periods in the rolling regression (None: expanding).
    shrinkage : "gcv", "lw" or float
        As :class:`elecflow.impact.RollingImpactRegression`.
    contracts : tuple of str, optional
        An explicit contract set instead of the automatic choice.
    kappa_delta, wing_fraction : float
        Footnote 37's delta (0.25) and the share of strikes in each wing.
    min_periods : int
        No report before the window holds this many periods.

    Feed :meth:`on_quote` / :meth:`on_trade`, call :meth:`close_period` at every period end
    and :meth:`report` when a publication is due.
    """

    def __init__(self, underlying: str, *, n_strikes: int = 10, window: int | None = 4680, shrinkage="gcv",
                 contracts: tuple[str, ...] | None = None, kappa_delta: float = 0.25, wing_fraction: float = 0.25,
                 min_periods: int = 0):
        if not 0.0 < kappa_delta < 0.5:
            raise ValueError(f"kappa_delta must be in (0, 0.5) (got {kappa_delta!r})")
        if not 0.0 < wing_fraction <= 0.5:
            raise ValueError(f"wing_fraction must be in (0, 0.5] (got {wing_fraction!r})")
        self.underlying = underlying
        self.n_strikes = int(n_strikes)
        self.window = window
        self.shrinkage = shrinkage
        self.explicit = tuple(contracts) if contracts else None
        self.kappa_delta = float(kappa_delta)
        self.wing_fraction = float(wing_fraction)
        self.min_periods = int(min_periods)
        self._book: dict[str, QuoteState] = {}
        self.contracts: ContractSet | None = None
        self.flows: PeriodFlows | None = None
        self.regression: RollingImpactRegression | None = None
        self._weights: dict[str, np.ndarray] = {}
        self._weights_note = ""
        self._published_updates = -1
        self.trades_before_selection = 0
        self.trades_outside_set = 0

    # ----------------------------------------------------------------------- events

    def on_quote(self, contract: str, expiry: dt.date, strike: float, is_call: bool, bid: float, ask: float) -> None:
        if self.contracts is None:
            self._book[contract] = QuoteState(expiry, strike, is_call, bid, ask)
            return
        j = self.contracts.index.get(contract)
        if j is not None:
            self.flows.quote(j, bid, ask)

    def on_trade(self, contract: str, price: float, size: float, side: int) -> None:
        if self.contracts is None:
            self.trades_before_selection += 1
            return
        j = self.contracts.index.get(contract)
        if j is None:
            self.trades_outside_set += 1
            return
        self.flows.trade(j, price, size, side)

    def close_period(self, now_ns: int) -> bool:
        """End the period at ``now_ns``; True when a period entered the regression."""
        if self.contracts is None:
            chosen = select_contracts(self.underlying, self._book, self.n_strikes, self.explicit)
            if chosen is None:
                return False
            self._choose(chosen, now_ns)
            return False
        period = self.flows.close()
        if period is None:
            return False
        self.regression.update(*period)
        return True

    def _choose(self, chosen: ContractSet, now_ns: int) -> None:
        self.contracts = chosen
        self.flows = PeriodFlows(chosen.M)
        for name, j in chosen.index.items():
            q = self._book[name]
            self.flows.quote(j, q.bid, q.ask)
        self.flows.start()
        self._book = {}
        self.regression = RollingImpactRegression(chosen.M, self.window, shrinkage=self.shrinkage)
        tau = time_to_expiry(now_ns, chosen.expiry)
        try:
            self._weights = election_prescribed_weights(self.underlying, chosen.strikes, chosen.is_call, tau)
        except KeyError:
            self._weights, self._weights_note = {}, "no election-state model for this underlying"
        except ValueError as exc:   # e.g. expired contracts, degenerate payoffs
            self._weights, self._weights_note = {}, f"no prescribed portfolio: {exc}"

    # ----------------------------------------------------------------------- results

    @property
    def ready_to_publish(self) -> bool:
        """A set is chosen, the window holds ``min_periods`` and periods entered it since the
        last report (no repeated rows)."""
        return (self.regression is not None and self.regression.updates > 0
                and self.regression.n >= self.min_periods and self.regression.updates != self._published_updates)

    def prescribed_weights(self) -> dict[str, np.ndarray]:
        return dict(self._weights)

    def report(self, now_ns: int, smile: SmileView | None = None) -> ImpactReport | None:
        """The current fit and its statistics (None before the set is chosen)."""
        if self.contracts is None:
            return None
        self._published_updates = self.regression.updates
        cs = self.contracts
        e = self.regression.estimate()
        c, p, k = cs.straddle_pairs()
        if c.size:
            val, se = e.straddle(c, p)
        else:
            val = se = np.empty(0)
        portfolios = {}
        for name, w in self._weights.items():
            ci, ci_se = e.portfolio(w)
            portfolios[name] = (float(ci), float(ci_se))
        low, high = cs.wings(self.wing_fraction)
        wing = e.wing(low, high) if low.size and high.size else (math.nan, math.nan)
        kappa, source = math.nan, "none"
        if smile is not None:
            source = "chain_smile"
            if smile.forward > 0 and smile.tau > 0 and smile.strikes.size >= 3:
                try:
                    kappa = smile_curvature(smile.strikes, smile.iv, smile.forward, smile.tau, delta=self.kappa_delta)
                except ValueError:  # a smile with repeated strikes (two expiries mixed): not one smile
                    kappa = math.nan
        if not math.isfinite(kappa):
            kq = kappa_from_mids(cs.strikes, cs.is_call, self.flows.mid, cs.expiry, now_ns, self.kappa_delta)
            if math.isfinite(kq) or smile is None:
                kappa, source = kq, "quotes"
        counters = {**self.flows.counters(), "trades_before_selection": self.trades_before_selection,
                    "trades_outside_set": self.trades_outside_set}
        return ImpactReport(cs, e, k, np.asarray(val, dtype=np.float64), np.asarray(se, dtype=np.float64),
                            portfolios, (float(wing[0]), float(wing[1])), low, high, float(kappa), source,
                            self.kappa_delta, counters, self._weights_note)


# ------------------------------------------------------------------------------ settings


class ImpactConfig(BaseModel):
    """Settings of the cross-impact streams (``cross_impact``, ``impact_stats``;
    ``[replay.impact_settings]`` in TOML). The defaults run the synthetic day's XLF market.

    Why the defaults: the period must be the market's: on the synthetic day one play of the
    game every 5 s (``SyntheticDayConfig.impact_period_seconds``). A period that cuts a play in
    two splits its flow from its price change; one that merges two adds the flows of two
    independent plays. The window, 4,680 periods, is one regular session at 5 s: the error
    of eq. (45) falls like ``n^{-1/2}`` and the story is fixed for the session
    (docs/theory.md, "Convergence"). Estimates are published once a minute: a window moves
    by 12 of 4,680 periods between publications, so publishing every period would repeat
    itself, and an estimate costs about 0.5 ms at M = 20.
    """

    model_config = ConfigDict(extra="forbid")

    underlyings: list[str] | None = Field(None, description="underlyings to estimate; None: every underlying "
                                                            "with option trades in the data")
    strikes: int = Field(10, ge=1, le=100, description="strikes nearest the parity forward in the contract set "
                                                       "(a call and a put each)")
    contracts: dict[str, list[str]] = Field(default_factory=dict,
                                            description="an explicit contract set per underlying (OCC codes), "
                                                        "instead of the nearest strikes")
    period_seconds: float = Field(5.0, gt=0, le=3600, description="length of a period of eq. (45): the "
                                                                  "market's (the synthetic day's: 5 s)")
    window_periods: int = Field(4680, ge=0, description="periods in the rolling regression; 0: expanding")
    publish_seconds: float = Field(60.0, gt=0, description="engine seconds between publications (a multiple "
                                                           "of the period)")
    shrinkage: Literal["gcv", "lw"] | float = Field("gcv", description="intensity of the shrinkage toward the "
                                                                       "diagonal flow covariance (0: OLS)")
    kappa_delta: float = Field(0.25, gt=0.0, lt=0.5, description="delta of footnote 37's smile curvature")
    min_periods: int = Field(120, ge=0, description="no publication before the window holds this many periods "
                                                    "(a first estimate from a dozen periods of 20 contracts is "
                                                    "noise, and would set a chart's scale)")

    @field_validator("shrinkage")
    @classmethod
    def _check_shrinkage(cls, value):
        if isinstance(value, float) and not 0.0 <= value <= 1.0:
            raise ValueError("a fixed shrinkage must be in [0, 1]")
        return value

    @model_validator(mode="after")
    def _check_cadence(self) -> "ImpactConfig":
        period_us = self.period_seconds * 1e6
        if abs(period_us - round(period_us)) > 1e-6:
            raise ValueError("period_seconds must be a whole number of microseconds (csp's clock)")
        ratio = self.publish_seconds / self.period_seconds
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError("publish_seconds must be a whole multiple of period_seconds (publications fall on "
                             "period ends)")
        for u, names in self.contracts.items():
            if len(names) < 2 or len(set(names)) != len(names):
                raise ValueError(f"contracts[{u!r}]: need at least two distinct contract codes")
        return self

    @property
    def window(self) -> int | None:
        return self.window_periods or None

