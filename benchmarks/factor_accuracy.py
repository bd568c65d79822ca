"""Fama-French factors on the full default day against the generator's truth (docs/factors.md).

On the embedded synthetic Election Day (generated if missing) and its ``--baseline-days``
prior normal days (generated into ``replay_data/normal-days-seed<seed>/`` if missing), with
the replay's default factor settings, measures:

- ``factor_correlation``: the factor returns (weights x the universe's 1 s NBBO mid returns)
  against the latent true factor returns, per regime, at 1 s (the row labelled ``T`` against
  the truth's step ending at ``T - 1 s``: the row shows quotes made at the efficient price of
  the second's start) and at the 60 s intervals;
- ``betas``: the prior betas (baseline days) and the end-of-day betas (prior updated through
  the day) against the generator's population betas on the vendor portfolios, with the
  regression's standard errors (z-scores), and against the latent-factor betas;
- ``idio_ratio``: the election-day / baseline ratio of idiosyncratic variance per instrument
  and regime as the replay computes it (prior betas, observed quotes), and the same ratio
  from the truth (efficient prices, latent factors, true betas) -- the generator's design;
- ``replication``: each ETF's minimum-norm replica at the day's end (tracking errors);
- ``timing``: the batch day computation and the baseline statistics.

The numbers come from the vectorised path (:func:`elecflow.adapters.factors.day_factor_data`
and the streaming :class:`~elecflow.factors.FactorModel` stepped over its intervals), which
``tests/test_factors.py`` checks equal to the replay graph's streams. Writes JSON (default
benchmarks/results/factor_accuracy.json).

    python benchmarks/factor_accuracy.py [--data DIR] [--baseline-days 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from _results import machine_info, write_result
from elecflow import universe as U
from elecflow.adapters.factors import (
    baseline_stats,
    day_factor_data,
    default_baseline_root,
    ensure_synthetic_baseline,
    find_baseline_days,
)
from elecflow.factors import FF_FACTORS, FactorModel, ex_ante_tracking_variance, min_norm_replication, regime_of
from elecflow.factors.baseline import total_beta_standard_errors
from elecflow.factors.settings import FactorConfig

HERE = Path(__file__).resolve().parent
S = 1_000_000_000
REGIMES = ("pre_open", "regular", "close", "after_hours")
SHOW = ("DJT", "MSTR", "TSLA", "PLTR", "JPM", "KRE", "XLF", "SPY", "QQQ", "IWM", "TLT", "NVDA", "SHW")


def _truth_factors(day: Path) -> tuple[np.ndarray, np.ndarray]:
    t = pq.read_table(day / "ground_truth/ff_factors.parquet").to_pandas()
    wide = t.pivot(index="time", columns="factor", values="true_return")[list(FF_FACTORS)]
    return np.asarray(wide.index.view("int64")), wide.to_numpy()


def _correlations(day: Path, data) -> dict:
    t_true, T = _truth_factors(day)
    pos = np.searchsorted(t_true, data.labels - S)
    ok = (pos < t_true.size) & (t_true[np.minimum(pos, t_true.size - 1)] == data.labels - S)
    reg1 = np.array([regime_of(int(x)) for x in data.labels])
    cum = np.vstack([np.zeros(5), np.cumsum(T, axis=0)])
    lo = np.searchsorted(t_true, data.ends - 61 * S, side="right")
    hi = np.searchsorted(t_true, data.ends - S, side="right")
    T60 = cum[hi] - cum[lo]
    out = {}
    for r in REGIMES:
        s1 = ok & (reg1 == r)
        s60 = (data.regimes == r) & (np.arange(data.ends.size) > 0)
        out[r] = {
            "seconds": int(s1.sum()), "intervals": int(s60.sum()),
            "corr_1s": {f: round(float(np.corrcoef(data.factor_returns[s1, k], T[pos[s1], k])[0, 1]), 4)
                        for k, f in enumerate(FF_FACTORS)},
            "corr_60s": {f: round(float(np.corrcoef(data.interval_factor_returns[s60, k], T60[s60, k])[0, 1]), 4)
                         for k, f in enumerate(FF_FACTORS)},
        }
    return out


def _truth_interval_idio(day: Path, betas: np.ndarray) -> dict[str, np.ndarray]:
    """Per regime, the mean squared idiosyncratic return per 60 s interval from the truth:
    efficient log returns minus the true betas times the latent factor returns."""
    ep = pq.read_table(day / "ground_truth/efficient_prices.parquet", columns=["time", "symbol", "log_efficient_price"])
    wide = ep.to_pandas().pivot(index="time", columns="symbol", values="log_efficient_price")[list(U.SYMBOLS)]
    tx = np.asarray(wide.index.view("int64"))
    X = wide.to_numpy()
    t_true, T = _truth_factors(day)
    cum = np.vstack([np.zeros(5), np.cumsum(T, axis=0)])
    ends = np.arange((tx[0] // (60 * S) + 1) * 60 * S, tx[-1] + S, 60 * S)  # interval ends b; truth at b - 1 s
    a = np.searchsorted(tx, ends - 61 * S)
    b = np.searchsorted(tx, ends - S)
    ok = (a < tx.size) & (b < tx.size) & (tx[np.minimum(a, tx.size - 1)] == ends - 61 * S) \
        & (tx[np.minimum(b, tx.size - 1)] == ends - S)
    ends, a, b = ends[ok], a[ok], b[ok]
    R = X[b] - X[a]
    lo = np.searchsorted(t_true, ends - 61 * S, side="right")
    hi = np.searchsorted(t_true, ends - S, side="right")
    E = R - (cum[hi] - cum[lo]) @ betas.T
    regimes = np.array([regime_of(int(e)) for e in ends])
    return {r: np.mean(E[regimes == r] ** 2, axis=0) for r in REGIMES if (regimes == r).any()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="synthetic Election Day (default: the embedded day)")
    parser.add_argument("--baseline-days", type=int, default=5)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "factor_accuracy.json")
    args = parser.parse_args()
    from elecflow.cli import ensure_embedded_day

    data = args.data or ensure_embedded_day({}, None, quiet=True)
    fc = FactorConfig(baseline_days=args.baseline_days)
    settings = fc.model_settings()
    t0 = time.perf_counter()
    days = ensure_synthetic_baseline(data, dt.date(2024, 11, 5), args.baseline_days, progress=False)
    t_generate = time.perf_counter() - t0
    assert days == find_baseline_days(default_baseline_root(data), dt.date(2024, 11, 5), args.baseline_days)
    t0 = time.perf_counter()
    base = baseline_stats(days, U.SYMBOLS, settings, fc.risk_free_rate, log=lambda *_: None)
    t_baseline = time.perf_counter() - t0
    t0 = time.perf_counter()
    data_day = day_factor_data(data, U.SYMBOLS, settings, fc.risk_free_rate)
    t_day = time.perf_counter() - t0

    # the replay's model, stepped over the day's intervals
    model = FactorModel(U.SYMBOLS, settings, base)
    t0 = time.perf_counter()
    steps = [model.step(int(e), f, y, r) for e, f, y, r in zip(data_day.ends, data_day.interval_factor_returns,
                                                                data_day.interval_returns, data_day.regimes)]
    t_model = time.perf_counter() - t0

    truth = json.loads((data / "ground_truth/ff_model.json").read_text())
    true_p = np.array([[truth["instrument_portfolio_betas"][s][f] for f in FF_FACTORS] for s in U.SYMBOLS])
    true_f = np.array([[truth["instrument_betas"][s][f] for f in FF_FACTORS] for s in U.SYMBOLS])
    prior = base.prior_betas()
    prior_total = prior.reshape(len(U.SYMBOLS), -1, 5).sum(axis=1)
    se = total_beta_standard_errors(base.pooled(), prior, 5)
    end_total = steps[-1].total_betas

    def beta_report(est: np.ndarray, with_z: bool) -> dict:
        err = est - true_p
        out = {"mean_abs_error": {f: round(float(np.mean(np.abs(err[:, k]))), 4) for k, f in enumerate(FF_FACTORS)},
               "max_abs_error": {f: round(float(np.max(np.abs(err[:, k]))), 4) for k, f in enumerate(FF_FACTORS)},
               "worst": {f: U.SYMBOLS[int(np.argmax(np.abs(err[:, k])))] for k, f in enumerate(FF_FACTORS)},
               "mean_abs_error_vs_latent_betas": round(float(np.mean(np.abs(est - true_f))), 4)}
        if with_z:
            z = err / se
            out["max_abs_z"] = round(float(np.nanmax(np.abs(z))), 2)
            out["share_abs_z_below_2"] = round(float(np.mean(np.abs(z) < 2)), 3)
            out["share_abs_z_below_3"] = round(float(np.mean(np.abs(z) < 3)), 3)
        return out

    # idiosyncratic-variance ratios: the replay's (prior betas, quotes) and the truth's (design)
    summary = model.regime_summary()
    truth_betas = np.array(true_f)
    truth_day = _truth_interval_idio(data, truth_betas)
    truth_base: dict[str, list] = {}
    for d in days:
        for r, v in _truth_interval_idio(d, truth_betas).items():
            truth_base.setdefault(r, []).append(v)
    ratios = {}
    kinds = np.array([U.INSTRUMENTS[s].kind for s in U.SYMBOLS])
    for r in REGIMES:
        est = summary[r]["idio_ratio"]
        des = truth_day[r] / np.mean(truth_base[r], axis=0)
        ratios[r] = {
            "median_stocks": round(float(np.nanmedian(est[kinds == "stock"])), 3),
            "median_etfs": round(float(np.nanmedian(est[kinds == "etf"])), 3),
            "design_median_stocks": round(float(np.nanmedian(des[kinds == "stock"])), 3),
            "design_median_etfs": round(float(np.nanmedian(des[kinds == "etf"])), 3),
            "pooled": round(float(np.nansum(summary[r]["idiosyncratic_prior_betas"])
                                  / np.nansum(summary[r]["baseline_idiosyncratic"])), 3),
            "rank_correlation_with_design": round(float(np.corrcoef(np.argsort(np.argsort(est)),
                                                                    np.argsort(np.argsort(des)))[0, 1]), 3),
            "instruments": {s: {"estimated": round(float(est[U.SYMBOLS.index(s)]), 2),
                                "design": round(float(des[U.SYMBOLS.index(s)]), 2)} for s in SHOW},
        }

    # the ETF replicas at the day's end
    stocks = np.array([i for i, s in enumerate(U.SYMBOLS) if U.INSTRUMENTS[s].kind == "stock"])
    L = end_total[stocks].T
    annual = np.sqrt(U.SECONDS_PER_TRADING_YEAR / settings.interval_seconds)
    replication = {}
    for e in (i for i, s in enumerate(U.SYMBOLS) if U.INSTRUMENTS[s].kind == "etf"):
        rep = min_norm_replication(L, end_total[e])
        te = np.sqrt(ex_ante_tracking_variance(rep.weights, steps[-1].idio_var[e], steps[-1].idio_var[stocks]))
        replication[U.SYMBOLS[e]] = {"tracking_error_annual": round(float(te * annual), 4),
                                     "weight_sum": round(float(rep.weights.sum()), 3),
                                     "weight_norm": round(float(np.linalg.norm(rep.weights)), 3),
                                     "condition": round(rep.condition, 1)}

    report = {
        "benchmark": "factor_accuracy",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "data": str(data), "baseline_days": [d.name for d in days],
        "settings": fc.model_dump(mode="json"),
        "universe_stocks": int(truth["universe_size"]),
        "factor_correlation": _correlations(data, data_day),
        "betas": {"prior": beta_report(prior_total, True), "end_of_day": beta_report(end_total, False)},
        "idio_ratio": ratios,
        "replication": replication,
        "timing_seconds": {"baseline_days_generate_or_reuse": round(t_generate, 2),
                           "baseline_stats": round(t_baseline, 2), "day_batch": round(t_day, 2),
                           "model_steps": round(t_model, 3), "intervals": int(data_day.ends.size)},
    }
    write_result(report, args.json)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
