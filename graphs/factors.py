"""csp nodes for the Fama-French factors: factor returns, exposures, decomposition, replication.

The numerics live in :mod:`elecflow.factors`; these nodes own its estimators in ``csp.state``,
feed them ticks and turn their results into :class:`~elecflow.schema.FactorReturn`,
:class:`~elecflow.schema.FactorDecomposition`, :class:`~elecflow.schema.EtfReplication` and
:class:`~elecflow.schema.EtfReplicationWeight` rows. Model, settings and measured figures:
docs/factors.md.

* :func:`universe_stream` reads the factor universe's validated 1 s NBBO parts with csp's
  native Parquet reader (structs built in C++, one row per tick).
* :func:`factor_returns` turns each second's rows into the five factor returns
  (:class:`~elecflow.factors.FactorReturnBuilder`). A second is closed one microsecond of
  engine time after its first row, when every row stamped with that second has arrived (rows
  with equal timestamps tick in successive cycles of the same engine time).
* :func:`factor_exposures` aggregates the factor returns and the instruments' 1 s mids into
  interval returns (:class:`~elecflow.factors.IntervalAggregator`) and, at each interval,
  updates the betas and the decomposition (:class:`~elecflow.factors.FactorModel`) and
  replicates each ETF by the stocks (:func:`~elecflow.factors.min_norm_replication`).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import csp
import numpy as np
from csp import ts
from csp.adapters.parquet import ParquetReader

from elecflow import universe as U
from elecflow.factors import (
    FF_FACTORS,
    FactorModel,
    FactorModelSettings,
    FactorReturnBuilder,
    IntervalAggregator,
    ex_ante_tracking_variance,
    min_norm_replication,
    realized_tracking_variance,
    regime_of,
)
from elecflow.graphs.replay import datetime_to_ns, ns_to_datetime
from elecflow.schema import EtfReplication, EtfReplicationWeight, FactorDecomposition, FactorReturn, Nbbo1s

__all__ = ["universe_stream", "factor_returns", "factor_exposures", "factor_streams", "CLOSE_DELAY"]

# A second's rows all carry its label as their engine time; the second is closed just after.
CLOSE_DELAY = dt.timedelta(microseconds=1)
NAN = math.nan


def universe_stream(files: list[Path]) -> ts[Nbbo1s]:
    """The factor universe's 1 s NBBO rows (canonical parts, time order), one row per tick.

    One row per tick is the cheap form here: measured on the full default day (11.5 M rows),
    a per-row node took 5.3 s against 38 s for the same rows demultiplexed by symbol into a
    300-edge basket (iterating a basket's ticked items costs more per row than a node call).
    """
    if not files:
        return csp.null_ts(Nbbo1s)
    return ParquetReader([str(f) for f in files], time_column="time").subscribe_all(Nbbo1s)


@csp.node(memoize=False)
def factor_returns(universe: ts[Nbbo1s], weights: object, risk_free_rate: float) -> ts[[FactorReturn]]:
    """The five factor returns of each second that had universe rows (a one-element list).

    Rows of tickers outside the weights are ignored.
    """
    with csp.alarms():
        a_close = csp.alarm(bool)
    with csp.state():
        s_builder = FactorReturnBuilder(weights, risk_free_rate)
        s_index = weights.index()
        s_idx = []
        s_mid = []
        s_open = False
    if csp.ticked(universe):
        if not s_open:
            s_open = True
            csp.schedule_alarm(a_close, CLOSE_DELAY, True)
        i = s_index.get(universe.symbol)
        if i is not None:
            s_idx.append(i)
            s_mid.append(universe.bid_price + universe.ask_price)
    if csp.ticked(a_close):
        s_open = False
        label = datetime_to_ns(csp.now() - CLOSE_DELAY)
        idx = np.asarray(s_idx, dtype=np.int64)
        mid = 0.5 * np.asarray(s_mid, dtype=np.float64)
        s_idx.clear()
        s_mid.clear()
        F, coverage = s_builder.step(label, idx, mid)
        return [FactorReturn(time=ns_to_datetime(label), regime=regime_of(label), mkt_rf=float(F[0]),
                             smb=float(F[1]), hml=float(F[2]), rmw=float(F[3]), cma=float(F[4]),
                             n_quotes=int(idx.size), coverage=coverage)]


def _decomposition_rows(now: dt.datetime, symbols, y: np.ndarray, step) -> list[FactorDecomposition]:
    tb = step.total_betas
    with np.errstate(invalid="ignore", divide="ignore"):
        share = step.window_systematic / (step.window_systematic + step.window_idiosyncratic)
    rows = []
    for a, sym in enumerate(symbols):
        rows.append(FactorDecomposition(
            time=now, symbol=sym, regime=step.regime, interval_return=float(y[a]),
            systematic_return=float(step.systematic_return[a]),
            beta_mkt_rf=float(tb[a, 0]), beta_smb=float(tb[a, 1]), beta_hml=float(tb[a, 2]),
            beta_rmw=float(tb[a, 3]), beta_cma=float(tb[a, 4]),
            window_total_var=float(step.window_total[a]), window_systematic_var=float(step.window_systematic[a]),
            window_idiosyncratic_var=float(step.window_idiosyncratic[a]), systematic_share=float(share[a]),
            regime_total_var=float(step.regime_total[a]), regime_systematic_var=float(step.regime_systematic[a]),
            regime_idiosyncratic_var=float(step.regime_idiosyncratic[a]),
            regime_intervals=int(step.regime_intervals[a]),
            baseline_idiosyncratic_var=float(step.baseline_idiosyncratic[a]),
            idio_ratio_vs_baseline=float(step.idio_ratio[a]), warm=bool(step.warm[a])))
    return rows


def _replication_rows(now: dt.datetime, symbols, step, model: FactorModel, stocks: np.ndarray, etfs: np.ndarray,
                      interval_seconds: float) -> tuple[list[EtfReplication], list[EtfReplicationWeight]]:
    """Each warm ETF replicated by the warm stocks from their total betas."""
    warm_stocks = stocks[step.warm[stocks]]
    if warm_stocks.size < len(FF_FACTORS):
        return [], []
    L = step.total_betas[warm_stocks].T  # (K, S)
    annual = math.sqrt(U.SECONDS_PER_TRADING_YEAR / interval_seconds)
    window_n = float(model.window_fill)
    summary, weights = [], []
    for e in etfs:
        if not step.warm[e]:
            continue
        rep = min_norm_replication(L, step.total_betas[e])
        w = rep.weights
        te = math.sqrt(ex_ante_tracking_variance(w, step.idio_var[e], step.idio_var[warm_stocks]))
        rte = math.sqrt(realized_tracking_variance(w, int(e), warm_stocks, model.wcross, window_n))
        summary.append(EtfReplication(
            time=now, etf=symbols[e], regime=step.regime, n_stocks=int(warm_stocks.size),
            weight_sum=float(w.sum()), weight_norm=float(np.sqrt(w @ w)), gross_exposure=float(np.abs(w).sum()),
            exposure_error=rep.exposure_error, condition=rep.condition, method=rep.method,
            tracking_error_bps=te * 1e4, realized_tracking_error_bps=rte * 1e4,
            tracking_error_annual=te * annual, realized_tracking_error_annual=rte * annual))
        weights += [EtfReplicationWeight(time=now, etf=symbols[e], stock=symbols[s], weight=float(wj))
                    for s, wj in zip(warm_stocks, w)]
    return summary, weights


@csp.node(memoize=False)
def factor_exposures(factors: ts[[FactorReturn]], assets: ts[[Nbbo1s]], symbols: object, settings: object,
                     baseline: object) -> csp.Outputs(decomposition=ts[[FactorDecomposition]],
                                                      replication=ts[[EtfReplication]],
                                                      weights=ts[[EtfReplicationWeight]]):
    """Betas, variance decomposition and ETF replicas of ``symbols`` at each interval's end.

    ``assets`` are the instruments' 1 s NBBO rows (lists; rows of other symbols are ignored);
    ``baseline`` the prior days' statistics (:class:`~elecflow.factors.BaselineStats`) or None.
    """
    with csp.state():
        s_symbols = tuple(symbols)
        s_index = {sym: i for i, sym in enumerate(s_symbols)}
        s_model = FactorModel(s_symbols, settings, baseline)
        s_agg = IntervalAggregator(len(s_symbols), len(FF_FACTORS), settings.interval_ns)
        s_stocks = np.array([i for i, s in enumerate(s_symbols) if s in U.INSTRUMENTS
                             and U.INSTRUMENTS[s].kind == "stock"], dtype=np.int64)
        s_etfs = np.array([i for i, s in enumerate(s_symbols) if s in U.INSTRUMENTS
                           and U.INSTRUMENTS[s].kind == "etf"], dtype=np.int64)
    closed = []
    if csp.ticked(assets):
        label, idx, mid = None, [], []
        for r in assets:
            i = s_index.get(r.symbol)
            if i is None:
                continue
            t = datetime_to_ns(r.time)
            if label is not None and t != label:
                closed += s_agg.on_assets(label, np.asarray(idx), np.asarray(mid))
                idx, mid = [], []
            label = t
            idx.append(i)
            mid.append(0.5 * (r.bid_price + r.ask_price))
        if label is not None:
            closed += s_agg.on_assets(label, np.asarray(idx), np.asarray(mid))
    if csp.ticked(factors):
        for f in factors:
            closed += s_agg.on_factors(datetime_to_ns(f.time), np.array([f.mkt_rf, f.smb, f.hml, f.rmw, f.cma]))
    if closed:
        decomposition, replication, weights = [], [], []
        for c in closed:
            step = s_model.step(c.end_ns, c.factor_return, c.asset_return)
            now = ns_to_datetime(c.end_ns)
            decomposition += _decomposition_rows(now, s_symbols, c.asset_return, step)
            rep, w = _replication_rows(now, s_symbols, step, s_model, s_stocks, s_etfs, settings.interval_seconds)
            replication += rep
            weights += w
        csp.output(decomposition=decomposition)
        if replication:
            csp.output(replication=replication, weights=weights)


@csp.node
def _as_lists(x: ts[Nbbo1s]) -> ts[[Nbbo1s]]:
    return [x]


def factor_streams(universe: ts[Nbbo1s], assets, weights, symbols, settings: FactorModelSettings,
                   baseline=None, risk_free_rate: float = 0.0) -> dict:
    """The factor output streams by name (each ticks a list of structs).

    ``assets`` is the instruments' 1 s NBBO, as lists (the computed ``nbbo_1s_sampled``) or
    one row per tick (the replayed vendor file).
    """
    if assets.tstype.typ is Nbbo1s:
        assets = _as_lists(assets)
    returns = factor_returns(universe, weights, risk_free_rate)
    out = factor_exposures(returns, assets, list(symbols), settings, baseline)
    return {"factor_returns": returns, "factor_decomposition": out.decomposition,
            "etf_replication": out.replication, "etf_replication_weights": out.weights}


def replay_factor_streams(factor_inputs, inputs, computed: dict) -> dict:
    """The factor streams of one replay: the universe from its staged parts, the instruments'
    1 s NBBO from the replayed vendor file when it has rows, else the 1 s sample computed from
    the quotes (``computed["nbbo_1s_sampled"]``). ``factor_inputs`` is an
    :class:`elecflow.adapters.factors.FactorInputs`."""
    assets = inputs.nbbo_1s if factor_inputs.has_vendor_nbbo else computed.get("nbbo_1s_sampled")
    if assets is None:
        raise ValueError("the factor streams need the instruments' 1 s NBBO: a vendor nbbo_1s file, or the "
                         "microstructure features (features = true) to sample it from the quotes")
    return factor_streams(universe_stream(factor_inputs.parts), assets, factor_inputs.universe.weights,
                          factor_inputs.symbols, factor_inputs.settings, factor_inputs.baseline,
                          factor_inputs.risk_free_rate)
