"""csp node for option chains: per-underlying smiles and risk-neutral densities.

Each underlying's chain is an :class:`elecflow.chain.ChainSmile` owned in ``csp.state``; the
node feeds it quotes and refreshes it on an engine-time cadence.
"""

from __future__ import annotations

import datetime as dt
import math

import csp
import numpy as np
from csp import ts

from elecflow.chain import ChainSmile
from elecflow.graphs.replay import datetime_to_ns, next_grid_time
from elecflow.schema import EquityQuote, OptionQuote, RndCurvePoint, RndSummary, SmilePoint

QUANTILE_FIELDS = (("q01", 0.01), ("q05", 0.05), ("q25", 0.25), ("q50", 0.5), ("q75", 0.75), ("q95", 0.95),
                   ("q99", 0.99))


def summary_row(now: dt.datetime, snap) -> RndSummary:
    """A chain snapshot as an ``rnd_summary`` struct."""
    quantiles = dict(zip(np.round(snap.quantile_levels, 6), snap.quantiles)) if snap.quantiles.size else {}
    rnd = snap.rnd
    diag = rnd.diagnostics if rnd is not None else None
    counters = snap.gp_counters
    return RndSummary(
        time=now, underlying=snap.underlying, expiry=snap.expiry, tau=snap.tau, forward=snap.forward,
        discount=snap.discount, forward_method=snap.forward_method, atm_iv=snap.atm_iv, mean=snap.mean,
        sd=snap.sd, skew=snap.skew, kurtosis=snap.kurtosis, log_mean=snap.log_mean, log_sd=snap.log_sd,
        log_skew=snap.log_skew, log_kurtosis=snap.log_kurtosis,
        **{name: float(quantiles.get(level, math.nan)) for name, level in QUANTILE_FIELDS},
        n_quotes_used=snap.n_quotes_used, n_excluded=int(sum(snap.reason_counts.get(r, 0)
                                                             for r in snap.reason_counts if r != "ok")),
        mass_error=rnd.mass_error if rnd is not None else math.nan,
        n_arbitrage_violations=(diag.n_increasing + diag.n_slope_below_bound + diag.n_nonconvex) if diag else 0,
        repair_max_abs=diag.repair_max_abs if diag else 0.0,
        gp_incremental=int(counters.get("gp_incremental", 0)), gp_full_fits=int(counters.get("gp_fits", 0)),
        density_error=snap.density_error)


def smile_rows(now: dt.datetime, snap) -> list[SmilePoint]:
    f = snap.forward
    rows = [SmilePoint(time=now, underlying=snap.underlying, kind="quote", k=float(k), strike=float(s), iv=float(v),
                       iv_sd=float(sd))
            for k, s, v, sd in zip(snap.quoted_k, snap.quoted_strike, snap.quoted_iv, snap.quoted_iv_sd)]
    rows += [SmilePoint(time=now, underlying=snap.underlying, kind="fit", k=float(k), strike=float(f * math.exp(k)),
                        iv=float(m), iv_sd=float(sd))
             for k, m, sd in zip(snap.smile_k, snap.smile_mean, snap.smile_sd)]
    return rows


def curve_rows(now: dt.datetime, snap) -> list[RndCurvePoint]:
    rnd = snap.rnd
    if rnd is None:
        return []
    return [RndCurvePoint(time=now, underlying=snap.underlying, strike=float(k), density=float(q), cdf=float(c))
            for k, q, c in zip(rnd.strikes, rnd.density, rnd.cdf)]


@csp.node
def option_chains(quotes: ts[OptionQuote], spots: ts[EquityQuote], refresh: dt.timedelta, curve_every: dt.timedelta,
                  rate: float, div_yield: float) -> csp.Outputs(summary=ts[[RndSummary]], smile=ts[[SmilePoint]],
                                                                curve=ts[[RndCurvePoint]]):
    """Feed every option quote to its underlying's chain; on each refresh tick, refresh the
    chains that received quotes since the last one (a chain with no new quote is skipped:
    only tau moved) and publish their summaries; smiles and density curves every
    ``curve_every``. ``spots`` (the equity NBBO) gives the underlying's mid for the
    spot-carry forward when put-call parity has too few pairs."""
    with csp.alarms():
        tick = csp.alarm(bool)
    with csp.state():
        s_chains = {}
        s_dirty = set()
        s_last_curve = {}
        s_spot = {}
    with csp.start():
        csp.schedule_alarm(tick, next_grid_time(csp.now(), refresh), True)
    if csp.ticked(spots):
        e = spots
        if e.bid_price > 0 and e.ask_price >= e.bid_price:
            s_spot[e.symbol] = 0.5 * (e.bid_price + e.ask_price)
    if csp.ticked(quotes):
        q = quotes
        key = (q.underlying, q.expiry)
        chain = s_chains.get(key)
        if chain is None:
            chain = s_chains[key] = ChainSmile(q.underlying, q.expiry, rate, div_yield)
        chain.on_quote(datetime_to_ns(q.time), q.contract, q.strike, q.right == "C", q.bid, q.ask, q.bid_size,
                       q.ask_size, spot=s_spot.get(q.underlying))
        s_dirty.add(key)
    if csp.ticked(tick):
        csp.schedule_alarm(tick, refresh, True)
        now = csp.now()
        now_ns = datetime_to_ns(now)
        summaries, smiles, curves = [], [], []
        for key in sorted(s_dirty):
            snap = s_chains[key].refresh(now_ns, spot=s_spot.get(key[0]))
            summaries.append(summary_row(now, snap))
            last = s_last_curve.get(key)
            if last is None or now - last >= curve_every:
                s_last_curve[key] = now
                smiles += smile_rows(now, snap)
                curves += curve_rows(now, snap)
        s_dirty.clear()
        if summaries:
            csp.output(summary=summaries)
        if smiles:
            csp.output(smile=smiles)
        if curves:
            csp.output(curve=curves)


def option_streams(quotes: ts[OptionQuote], spots: ts[EquityQuote], refresh_seconds: float = 1.0,
                   curve_seconds: float = 60.0, rate: float = 0.0483, div_yield: float = 0.0) -> dict:
    """The option-chain output streams by name (each ticks a list of structs)."""
    out = option_chains(quotes, spots, dt.timedelta(seconds=refresh_seconds), dt.timedelta(seconds=curve_seconds),
                        rate, div_yield)
    return {"rnd_summary": out.summary, "smile": out.smile, "rnd_curve": out.curve}
