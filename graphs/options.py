"""csp node for option chains: per-underlying smiles and risk-neutral densities.

Each underlying's chain is an :class:`elecflow.chain.ChainSmile` owned in ``csp.state``; the
node feeds it quotes and refreshes it on an engine-time cadence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import csp
import numpy as np
from csp import ts

from elecflow.chain import ChainSmile
from elecflow.graphs.replay import datetime_to_ns, next_grid_time
from elecflow.hedge import ElectionStates, election_exposure
from elecflow.schema import (ElectionHedge, ElectionState, EquityQuote, KalshiProbability, OptionQuote,
                             RndCurvePoint, RndSummary, SmilePoint)
from elecflow.implied_probability import ImpliedProbabilityFilter
from elecflow.states import SideEvidence, StateFit, StateFitter, StateLabeller, apply_label

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


def fit_election_states(snap, fitter: StateFitter, labeller: StateLabeller, p: float | None,
                        spot: float | None, implied: ImpliedProbabilityFilter | None = None,
                        t_min: float | None = None, side: SideEvidence | None = None) -> list[StateFit]:
    """The two-state fits of one chain snapshot: mode A (Trump weight = the Kalshi
    probability ``p``, when known) and mode B (weight free, labelled by ``labeller``). Each
    quote is priced on its own forward (``quoted_k`` is its log-moneyness against it).
    ``implied`` (with ``t_min``, the refresh time in minutes) filters mode B's upper weight
    when identified; the mode B fit then carries the filtered Trump probability. ``side``
    accumulates mode A's side evidence while there is no label."""
    if snap.n_quotes_used < 1 or not math.isfinite(snap.forward):
        return []
    K = snap.quoted_strike
    args = (K, snap.quoted_iv, snap.quoted_iv_sd, snap.quoted_is_call, snap.forward, snap.discount, snap.tau)
    kw = dict(quote_forward=K / np.exp(snap.quoted_k), spot=spot)
    fits = []
    if p is not None and 0.0 < p < 1.0:
        # mode A's side is the co-movement label's; without one both sides are fitted and a
        # chain whose mirrored solution (the fixed weight on the other component) fits as
        # well is reported as not identified. Continuity alone would keep whichever side the
        # first cold start found: on the 40-name day that was the wrong one for SMCI, SMH,
        # SOXL (all day) and GOOG, CEG, META (for hours), 5-30 % errors in the state means.
        fixed = apply_label(fitter.fit_smile(*args, weight=p, trump_is_upper=labeller.trump_is_upper, **kw), None, p)
        fits.append(side.update(fixed) if side is not None else fixed)
    free = fitter.fit_smile(*args, **kw)
    usable = free.success and free.identified
    if p is not None:
        labeller.update(snap.forward, p, float(free.weight[0]) if usable else None)
    free = apply_label(free, labeller.trump_is_upper, p)
    if implied is not None and t_min is not None:
        if usable and math.isfinite(free.weight_se) and free.weight_se > 0:
            w, sd = implied.update(t_min, float(free.weight[0]), free.weight_se)
        else:
            w, sd = implied.predict(t_min)
        free = with_filtered_probability(free, w, sd)
    fits.append(free)
    return fits


def with_filtered_probability(fit: StateFit, weight_upper: float, sd: float) -> StateFit:
    """The mode B fit with the filtered upper weight turned into the Trump probability (by
    the fit's label; NaN while undetermined)."""
    t = fit.trump_index
    p = math.nan if t is None else (weight_upper if t == 0 else 1.0 - weight_upper)
    return dataclasses.replace(fit, trump_probability_filtered=p,
                               trump_probability_filtered_se=math.nan if t is None else sd)


def state_row(now: dt.datetime, underlying: str, fit: StateFit, spot: float | None) -> ElectionState:
    t, h = fit.state("trump"), fit.state("harris")
    return ElectionState(
        time=now, underlying=underlying, mode=fit.mode, success=bool(fit.success), message=fit.message,
        identified=bool(fit.identified), identification_reason=fit.identification_reason, label=fit.label,
        kalshi_probability=fit.kalshi_probability, trump_probability=fit.trump_probability,
        trump_probability_se=fit.trump_probability_se, probability_gap=fit.probability_gap,
        spot=float(spot) if spot is not None else math.nan, forward=fit.forward, discount=fit.discount, tau=fit.tau,
        trump_mean=t["mean"], trump_expected_return=t["expected_return"],
        trump_expected_return_se=t["expected_return_se"], trump_vol=t["annual_vol"], trump_vol_se=t["annual_vol_se"],
        harris_mean=h["mean"], harris_expected_return=h["expected_return"],
        harris_expected_return_se=h["expected_return_se"], harris_vol=h["annual_vol"],
        harris_vol_se=h["annual_vol_se"], separation=fit.separation, separation_z=fit.separation_z,
        side_lr=fit.side_lr, weight_upper=float(fit.weight[0]), weight_upper_se=fit.weight_se,
        trump_probability_filtered=fit.trump_probability_filtered,
        trump_probability_filtered_se=fit.trump_probability_filtered_se, rmse_price=fit.rmse_price, rmse_vol_points=fit.rmse_vol_points, n_points=int(fit.n_points),
        warm_started=bool(fit.warm_started), fit_ms=1e3 * fit.elapsed_s)


@csp.node
def option_chains(quotes: ts[OptionQuote], spots: ts[EquityQuote], kalshi: ts[[KalshiProbability]],
                  refresh: dt.timedelta, curve_every: dt.timedelta, states_every: dt.timedelta, rate: float,
                  div_yield: float) -> csp.Outputs(summary=ts[[RndSummary]], smile=ts[[SmilePoint]],
                                                   curve=ts[[RndCurvePoint]], states=ts[[ElectionState]]):
    """Feed every option quote to its underlying's chain; on each refresh tick, refresh the
    chains that received quotes since the last one (a chain with no new quote is skipped:
    only tau moved) and publish their summaries; smiles and density curves every
    ``curve_every``. ``spots`` (the equity NBBO) gives the underlying's mid for the
    spot-carry forward when put-call parity has too few pairs. ``kalshi`` (the denoised
    probability) conditions the two-state fits, every ``states_every`` per chain (zero:
    no state fits): docs/states.md."""
    with csp.alarms():
        tick = csp.alarm(bool)
    with csp.state():
        s_chains = {}
        s_dirty = set()
        s_last_curve = {}
        s_last_states = {}
        s_spot = {}
        s_fitters = {}
        s_labellers = {}
        s_implied = {}
        s_side = {}
        s_p = [None]
    with csp.start():
        csp.schedule_alarm(tick, next_grid_time(csp.now(), refresh), True)
    if csp.ticked(kalshi) and kalshi:
        s_p[0] = float(kalshi[-1].p)
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
        summaries, smiles, curves, states = [], [], [], []
        for key in sorted(s_dirty):
            spot = s_spot.get(key[0])
            snap = s_chains[key].refresh(now_ns, spot=spot)
            summaries.append(summary_row(now, snap))
            if states_every > dt.timedelta(0):
                last = s_last_states.get(key)
                if last is None or now - last >= states_every:
                    s_last_states[key] = now
                    labeller = s_labellers.setdefault(key, StateLabeller())
                    fitter = s_fitters.setdefault(key, StateFitter(key[0]))
                    implied = s_implied.setdefault(key, ImpliedProbabilityFilter())
                    side = s_side.setdefault(key, SideEvidence())
                    fits = fit_election_states(snap, fitter, labeller, s_p[0], spot, implied, now_ns / 60e9, side)
                    states += [state_row(now, key[0], f, spot) for f in fits]
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
        if states:
            csp.output(states=states)


def option_streams(quotes: ts[OptionQuote], spots: ts[EquityQuote], refresh_seconds: float = 1.0,
                   curve_seconds: float = 60.0, rate: float = 0.0483, div_yield: float = 0.0,
                   kalshi: ts[[KalshiProbability]] | None = None, states_seconds: float = 60.0) -> dict:
    """The option-chain output streams by name (each ticks a list of structs);
    ``election_states`` when ``states_seconds`` > 0."""
    if kalshi is None:
        kalshi = csp.null_ts([KalshiProbability])
    out = option_chains(quotes, spots, kalshi, dt.timedelta(seconds=refresh_seconds),
                        dt.timedelta(seconds=curve_seconds), dt.timedelta(seconds=states_seconds), rate, div_yield)
    streams = {"rnd_summary": out.summary, "smile": out.smile, "rnd_curve": out.curve}
    if states_seconds > 0:
        streams["election_states"] = out.states
    return streams


def states_for_hedge(r: ElectionState) -> ElectionStates | None:
    """A mode A row as the hedge's state densities (None unless identified with finite states)."""
    if r.mode != "A" or not (r.success and r.identified) or not (0.0 <= r.kalshi_probability <= 1.0):
        return None
    root_tau = math.sqrt(r.tau) if r.tau > 0 else math.nan
    try:
        return ElectionStates(underlying=r.underlying, probability=r.kalshi_probability, mean_trump=r.trump_mean,
                              sdlog_trump=r.trump_vol * root_tau, mean_harris=r.harris_mean,
                              sdlog_harris=r.harris_vol * root_tau, discount=r.discount, tau=r.tau,
                              spot_per_forward=r.spot / r.forward if r.spot > 0 and r.forward > 0 else None)
    except ValueError:
        return None


def hedge_rows(now: dt.datetime, positions: list, states: dict) -> list[ElectionHedge]:
    """The book's election delta per underlying and in total, once every underlying of the
    book has states; until then one TOTAL row saying which are missing."""
    needed = sorted({p.underlying for p in positions if p.kind != "kalshi"})
    missing = [u for u in needed if u not in states]
    if missing:
        return [ElectionHedge(time=now, underlying="TOTAL", election_delta=math.nan, kalshi_contracts=math.nan,
                              market_value=math.nan, status="waiting for states of " + ", ".join(missing))]
    try:
        report = election_exposure(positions, states)
    except ValueError as exc:
        return [ElectionHedge(time=now, underlying="TOTAL", election_delta=math.nan, kalshi_contracts=math.nan,
                              market_value=math.nan, status=str(exc))]
    rows = [ElectionHedge(time=now, underlying=u, election_delta=d, kalshi_contracts=-d, market_value=math.nan,
                          status="ok") for u, d in sorted(report.by_underlying.items())]
    rows.append(ElectionHedge(time=now, underlying="TOTAL", election_delta=report.total_delta,
                              kalshi_contracts=report.kalshi_contracts, market_value=report.market_value,
                              status="ok"))
    return rows


@csp.node
def election_hedge(states: ts[[ElectionState]], positions: object) -> ts[[ElectionHedge]]:
    """Re-value the book's election delta whenever states are re-fitted (latest mode A
    states per underlying; docs/states.md)."""
    with csp.state():
        s_states = {}
    for r in states:
        st = states_for_hedge(r)
        if st is not None:
            s_states[r.underlying] = st
    return hedge_rows(csp.now(), positions, s_states)

