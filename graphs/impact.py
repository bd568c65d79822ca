"""csp node for the cross impact of option order flow (issue 7; eq. (45) and Section 8's
statistics, docs/theory.md "Simulator and streaming estimator").

One :class:`elecflow.impact_stream.CrossImpactMonitor` per configured underlying is owned in
``csp.state``: option quotes and trades are routed to it as they arrive; at every period end
(an engine-time alarm on the epoch grid of the period) it closes the period, and at every
publication (a multiple of the period) the monitors that received periods since their last
publication publish the matrix (``cross_impact``) and its statistics (``impact_stats``).

Event order at a boundary: the alarm fires one microsecond after the boundary, so every event
stamped exactly at it (a snapshot "as of" the boundary, a whole chain of them in one
timestamp) belongs to the period it ends, whatever order csp gives an alarm and several ticks
of one timestamp.

The estimates run with BLAS limited to one thread: on this shared two-core machine the
multithreaded solve of an M = 50 estimate took 24 ms with the other core busy against 0.8 ms
on one thread (``threadpoolctl``; numpy's BLAS reads its thread count from the environment
only when it loads, long before a graph starts, so environment variables cannot do this).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from pathlib import Path

import csp
import numpy as np
import pyarrow.parquet as pq
from csp import ts

from elecflow.graphs.replay import datetime_to_ns, next_grid_time
from elecflow.impact_stream import CrossImpactMonitor, ImpactConfig, ImpactReport, SmileView
from elecflow.schema import CrossImpact, ImpactStat, OptionQuote, OptionTrade, RndSummary, SmilePoint

__all__ = ["cross_impact_node", "impact_streams", "matrix_rows", "stat_rows", "underlyings_with_trades",
           "blas_single_thread"]

log = logging.getLogger(__name__)

# the period-end alarm runs this long after the boundary (module docstring)
AFTER_BOUNDARY = dt.timedelta(microseconds=1)


def blas_single_thread():
    """A factory of contexts that limit BLAS to one thread (a no-op, logged once, without
    threadpoolctl)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        log.warning("threadpoolctl is not installed: cross-impact estimates use the default BLAS threads")
        return contextlib.nullcontext
    controller = ThreadpoolController()
    return lambda: controller.limit(limits=1, user_api="blas")


def underlyings_with_trades(parts: list[Path]) -> list[str]:
    """The underlyings that have option trades in the canonical ``option_trades`` parts."""
    names: set[str] = set()
    for path in parts:
        column = pq.read_table(path, columns=["underlying"]).column("underlying")
        names.update(v for v in column.unique().to_pylist() if v)
    return sorted(names)


def matrix_rows(time: dt.datetime, r: ImpactReport) -> list[CrossImpact]:
    """The estimated matrix as long-form rows (i = price, j = order flow)."""
    cs, e = r.contracts, r.estimate
    out = []
    for i in range(cs.M):
        for j in range(cs.M):
            out.append(CrossImpact(
                time=time, underlying=cs.underlying, expiry=cs.expiry, i=i, j=j, contract_i=cs.contracts[i],
                contract_j=cs.contracts[j], label_i=cs.labels[i], label_j=cs.labels[j],
                strike_i=float(cs.strikes[i]), right_i="C" if cs.is_call[i] else "P", strike_j=float(cs.strikes[j]),
                right_j="C" if cs.is_call[j] else "P", impact=float(e.impact[i, j]), se=float(e.stderr[i, j]),
                n=int(e.n)))
    return out


def stat_rows(time: dt.datetime, r: ImpactReport) -> list[ImpactStat]:
    """The statistics as long-form rows (see :class:`elecflow.schema.ImpactStat`)."""
    cs, e = r.contracts, r.estimate
    common = dict(time=time, underlying=cs.underlying, expiry=cs.expiry, n=int(e.n),
                  periods=int(r.counters["periods_used"]), shrinkage=float(e.shrinkage), dof=float(e.dof))
    out = [ImpactStat(statistic="straddle", label=f"{k:g}", strike=float(k), value=float(v), se=float(s), source="",
                      **common)
           for k, v, s in zip(r.straddle_strikes, r.straddle, r.straddle_se)]
    out += [ImpactStat(statistic="portfolio", label=name, strike=math.nan, value=v, se=s,
                       source="election states of the seed universe", **common)
            for name, (v, s) in r.portfolios.items()]
    if r.wing_low.size and r.wing_high.size:
        low = f"P {cs.strikes[r.wing_low].min():g}-{cs.strikes[r.wing_low].max():g}"
        high = f"C {cs.strikes[r.wing_high].min():g}-{cs.strikes[r.wing_high].max():g}"
        out.append(ImpactStat(statistic="wing", label=f"{low} | {high}", strike=math.nan, value=r.wing[0],
                              se=r.wing[1], source="", **common))
    out.append(ImpactStat(statistic="kappa", label=f"delta {r.kappa_delta:g}", strike=math.nan,
                          value=r.kappa, se=math.nan, source=r.kappa_source, **common))
    out.append(ImpactStat(statistic="r_squared", label="mean", strike=math.nan, value=r.r_squared_mean, se=math.nan,
                          source="", **common))
    return out


def _smile_views(smile: list, summary: list | None) -> dict[str, tuple[dt.date, SmileView]]:
    """Per underlying: the quoted out-of-the-money points of one chain refresh with that
    refresh's forward and tau. An underlying with several expiries refreshed at once is left
    out (its points cannot be told apart: smile rows carry no expiry)."""
    rows: dict[str, list] = {}
    for r in summary or []:
        rows.setdefault(r.underlying, []).append(r)
    points: dict[str, list] = {}
    for p in smile:
        if p.kind == "quote" and math.isfinite(p.iv):
            points.setdefault(p.underlying, []).append((p.strike, p.iv))
    out = {}
    for u, pts in points.items():
        summaries = rows.get(u, [])
        if len(summaries) != 1:
            continue
        s = summaries[0]
        k = np.array([x[0] for x in pts])
        v = np.array([x[1] for x in pts])
        out[u] = (s.expiry, SmileView(k, v, float(s.forward), float(s.tau), datetime_to_ns(s.time)))
    return out


@csp.node(memoize=False)  # the settings model is not hashable; one node per graph anyway
def cross_impact_node(quotes: ts[OptionQuote], trades: ts[OptionTrade], smile: ts[[SmilePoint]],
                      summary: ts[[RndSummary]], underlyings: object, settings: object
                      ) -> csp.Outputs(matrix=ts[[CrossImpact]], stats=ts[[ImpactStat]]):
    """Route option quotes and trades of ``underlyings`` to their monitors; close a period at
    every period end and publish every ``settings.publish_seconds`` (module docstring).
    ``smile``/``summary`` (the option-chain node's) give kappa from the chain's smile."""
    with csp.alarms():
        a_close = csp.alarm(bool)
    with csp.state():
        s_monitors = {}
        s_smiles = {}
        s_boundary = None
        s_period = dt.timedelta(0)
        s_publish_ns = 0
        s_limit = None
    with csp.start():
        cfg = settings
        s_period = dt.timedelta(seconds=cfg.period_seconds)
        s_publish_ns = int(round(cfg.publish_seconds * 1e9))
        s_monitors = {u: CrossImpactMonitor(u, n_strikes=cfg.strikes, window=cfg.window, shrinkage=cfg.shrinkage,
                                            contracts=tuple(cfg.contracts.get(u, ())) or None,
                                            kappa_delta=cfg.kappa_delta, min_periods=cfg.min_periods)
                      for u in underlyings}
        s_limit = blas_single_thread()
        # the first boundary at or after the start: a replay that starts on a snapshot closes the
        # (empty) period ending there, so the set is chosen from it and its first period counts
        s_boundary = next_grid_time(csp.now() - AFTER_BOUNDARY, s_period)
        csp.schedule_alarm(a_close, s_boundary + AFTER_BOUNDARY, True)
    if csp.ticked(smile):
        s_smiles.update(_smile_views(smile, summary if csp.ticked(summary) else None))
    if csp.ticked(quotes):
        q = quotes
        m = s_monitors.get(q.underlying)
        if m is not None:
            m.on_quote(q.contract, q.expiry, q.strike, q.right == "C", q.bid, q.ask)
    if csp.ticked(trades):
        t = trades
        m = s_monitors.get(t.underlying)
        if m is not None:
            m.on_trade(t.contract, t.price, t.size, t.side)
    if csp.ticked(a_close):
        boundary = s_boundary
        s_boundary = boundary + s_period
        csp.schedule_alarm(a_close, s_boundary + AFTER_BOUNDARY, True)
        b_ns = datetime_to_ns(boundary)
        matrix, stats = [], []
        with s_limit():
            for m in s_monitors.values():
                m.close_period(b_ns)
            if b_ns % s_publish_ns == 0:
                for u, m in s_monitors.items():
                    if not m.ready_to_publish:
                        continue
                    view = s_smiles.get(u)
                    chain = view[1] if view is not None and view[0] == m.contracts.expiry else None
                    r = m.report(b_ns, chain)
                    matrix += matrix_rows(boundary, r)
                    stats += stat_rows(boundary, r)
        if matrix:
            csp.output(matrix=matrix)
        if stats:
            csp.output(stats=stats)


def impact_streams(option_quotes: ts[OptionQuote], option_trades: ts[OptionTrade], underlyings: list[str],
                   settings: ImpactConfig, smile: ts[[SmilePoint]] | None = None,
                   summary: ts[[RndSummary]] | None = None) -> dict:
    """The cross-impact output streams by name (each ticks a list of structs). ``smile`` and
    ``summary`` are the option-chain node's streams (kappa from the chain's smile); without
    them kappa comes from the contract set's own quotes."""
    if smile is None or summary is None:
        smile, summary = csp.null_ts([SmilePoint]), csp.null_ts([RndSummary])
    out = cross_impact_node(option_quotes, option_trades, smile, summary, tuple(underlyings), settings)
    return {"cross_impact": out.matrix, "impact_stats": out.stats}
