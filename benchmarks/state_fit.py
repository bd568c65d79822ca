"""Two-state fit time per underlying per refresh: warm-started against cold (issue: states).

For each underlying (SPY QQQ IWM TLT DJT TSLA) a sequence of one-minute chain snapshots is
fitted in mode A (weight fixed to the true q; ``A``: the side given by the label, as in the
graph once labelled; ``A0``: no label yet, both sides fitted every time) and mode B (weight
free):

- ``warm``: one :class:`~elecflow.states.StateFitter` over the sequence, each fit started
  from the previous minute's solution (the first, cold fit of the sequence is not timed);
- ``cold``: :func:`~elecflow.states.fit_states` from scratch on every snapshot (multi-start
  grid) - the baseline measured in the same run; ``speedup = cold / warm``.

Times are per fit (one underlying, one refresh), median and 90th percentile over the
sequence, then the median over ``--repeats`` passes. Target: warm < 5 ms.

Sources of the snapshots:

- ``simulated``: the synthetic generator (``generate_option_chain``, synchronous snapshots)
  over ``--minutes`` minutes from 2024-11-05 15:30 UTC with a random-walk spot and Trump
  probability (seeded);
- ``day``: the synthetic day (``--day DIR``, default
  ``replay_data/synthetic-2024-11-05-seed20241105``, benchmarked as well when it exists;
  ``--day ''`` skips it): its ThetaData-format files (``DIR/thetadata``) for every
  ``--every``-th minute of the regular session (the last quote per contract in the minute).
  That feed is staggered: each strike's call and put are quoted at their own instant in the
  minute, priced at that instant. The fit sees market observables only: the forward from
  put-call parity (``implied_forward``, as ChainSmile) and per-strike forwards
  (``parity_forwards``) as ``quote_forward``; the Kalshi probability in mode A is the
  truth's ``q``. Truth: ``DIR/ground_truth/options_truth.parquet`` (pandas needed).

Also reports the accuracy against the truth: state means as ``|m_fit / F_fit - m_true /
F_true|`` in % (relative to each side's own forward, since the quotes of a minute are spread
over it while the truth is stamped at its start; ~ % of spot), state vols relative, mode B
weight. Writes JSON (default benchmarks/results/state_fit.json).

    python benchmarks/state_fit.py [--json PATH] [--minutes 60] [--repeats 3] [--day DIR] [--every 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time
from pathlib import Path

import numpy as np

from elecflow import universe as U
from elecflow.options import expiry_close_ns, implied_forward, microprice, microprice_var
from elecflow.states import StateFitter, fit_states, parity_forwards
from elecflow.synth import options as so
from _results import machine_info, write_result

HERE = Path(__file__).resolve().parent
DEFAULT_DAY = HERE.parent / "replay_data" / "synthetic-2024-11-05-seed20241105"
SYMBOLS = ("SPY", "QQQ", "IWM", "TLT", "DJT", "TSLA")
START_NS = 1_730_820_600_000_000_000  # 2024-11-05 15:30 UTC
EXPIRY = dt.date(2024, 11, 15)
RATE = 0.0483
MINUTES_PER_YEAR = 252 * 390


def simulated_snapshots(symbol: str, minutes: int, seed: int) -> list[dict]:
    """One generated chain per minute: OTM microprices with bid > 0 and the truth."""
    rng = np.random.default_rng(seed)
    inst = U.get(symbol)
    snaps = START_NS + 60_000_000_000 * np.arange(minutes)
    spot = inst.ref_price * np.exp(np.cumsum(U.annual_vol(symbol) / math.sqrt(MINUTES_PER_YEAR)
                                             * rng.standard_normal(minutes)))
    q = np.clip(0.58 + np.cumsum(0.003 * rng.standard_normal(minutes)), 0.05, 0.95)
    ch = so.generate_option_chain(symbol, snaps, spot, q, RATE, expiry_close_ns(EXPIRY), 0.25, rng, 4.0)
    K = ch.strike_milli / 1000.0
    out = []
    for i in range(minutes):
        rows = ch.time_ns == snaps[i]
        out.append(_snapshot(K[rows], ch.is_call[rows], ch.bid[rows] / so.PX, ch.ask[rows] / so.PX,
                             ch.bid_size[rows], ch.ask_size[rows], float(ch.forward[i]),
                             math.exp(-RATE * ch.T[i]), float(ch.T[i]), float(ch.spot[i]), float(q[i]),
                             float(ch.m_trump[i]), float(ch.m_harris[i]), ch.sigma_trump, ch.sigma_harris))
    return out


def day_snapshots(day: Path, symbol: str, every: int) -> list[dict]:
    """Every ``every``-th minute of the day's file for ``symbol`` with options_truth's truth."""
    import pandas as pd

    truth = pd.read_parquet(day / "ground_truth" / "options_truth.parquet")
    truth = truth[truth.underlying == symbol].set_index("time")
    q = pd.read_csv(day / "thetadata" / f"{U.get(symbol).option_root}_{EXPIRY:%Y%m%d}_20241105.csv")
    q["minute"] = q.ms_of_day // 60_000
    out = []
    for minute in sorted(q.minute.unique())[::every]:
        snap = q[q.minute == minute].drop_duplicates(["strike", "right"], keep="last")
        t = (pd.Timestamp("2024-11-05", tz="America/New_York") + pd.Timedelta(minutes=int(minute))).tz_convert("UTC")
        if t not in truth.index:
            continue
        r = truth.loc[t]
        K, is_call = snap.strike.to_numpy() / 1000.0, (snap.right == "C").to_numpy()
        bid, ask, qb, qa = (snap[c].to_numpy(dtype=float) for c in ("bid", "ask", "bid_size", "ask_size"))
        DF = float(r["discount_factor"])
        with np.errstate(all="ignore"):
            mp = microprice(bid, ask, qb, qa)
        valid = (bid > 0) & (ask >= bid) & np.isfinite(mp)
        calls = {k: m for k, m, c, v in zip(K, mp, is_call, valid) if c and v}
        puts = {k: m for k, m, c, v in zip(K, mp, is_call, valid) if not c and v}
        both = np.array(sorted(set(calls) & set(puts)))
        c_mid = np.array([calls[k] for k in both])
        p_mid = np.array([puts[k] for k in both])
        F = implied_forward(both, c_mid, p_mid).forward
        f_strike = dict(zip(both, parity_forwards(both, c_mid, p_mid, DF, F)))
        s = _snapshot(K, is_call, bid, ask, qb, qa, F, DF, float(r["T"]), float(r["spot"]), float(r["q"]),
                      float(r["mean_trump"]), float(r["mean_harris"]), float(r["sigma_trump"]),
                      float(r["sigma_harris"]))
        s["quote_forward"] = np.array([f_strike.get(k, F) for k in s["args"][0]])
        s["truth_forward"] = float(r["forward"])
        out.append(s)
    return out


def _snapshot(K, is_call, bid, ask, bid_size, ask_size, F, DF, tau, spot, q, m_t, m_h, s_t, s_h) -> dict:
    ok = (bid > 0) & (ask >= bid) & (is_call == (K >= F))
    with np.errstate(all="ignore"):
        mp = microprice(bid, ask, bid_size, ask_size)
        sd = np.sqrt(microprice_var(bid, ask, bid_size, ask_size))
    return {"args": (K[ok], mp[ok], sd[ok], is_call[ok], F, DF, tau), "spot": spot, "q": q,
            "truth": (m_t, m_h, s_t, s_h), "truth_forward": F, "quote_forward": None}


def _errors(fit, snap, gamma) -> dict | None:
    t = fit.trump_index
    if not fit.identified or t is None:
        return None
    m_t, m_h, s_t, s_h = snap["truth"]
    F_fit, F_true = fit.forward, snap["truth_forward"]
    return {"mean_trump_pct": 100 * abs(fit.mean[t] / F_fit - m_t / F_true),
            "mean_harris_pct": 100 * abs(fit.mean[1 - t] / F_fit - m_h / F_true),
            "vol_trump_rel_pct": 100 * abs(fit.annual_vol[t] / s_t - 1),
            "vol_harris_rel_pct": 100 * abs(fit.annual_vol[1 - t] / s_h - 1),
            "weight_abs": abs(fit.trump_probability - snap["q"])}


def run_sequence(snaps: list[dict], gamma: float, mode: str) -> dict:
    trump_upper = gamma > 0

    def kw(s):
        out = {"spot": s["spot"], "quote_forward": s["quote_forward"]}
        if mode == "A":  # the steady state in the graph: the co-movement label fixes the side
            return {**out, "weight": s["q"], "trump_is_upper": trump_upper}
        if mode == "A0":  # before a label: both sides fitted every time (side_lr)
            return {**out, "weight": s["q"]}
        return {**out, "trump_is_upper": trump_upper, "kalshi_probability": s["q"]}

    fitter = StateFitter()
    warm_t, cold_t, warm_nfev, cold_nfev, errs = [], [], [], [], []
    n_ident = n_warm_accepted = 0
    for i, s in enumerate(snaps):
        t0 = time.perf_counter()
        fw = fitter.fit(*s["args"], **kw(s))
        tw = time.perf_counter() - t0
        t0 = time.perf_counter()
        fc = fit_states(*s["args"], **kw(s))
        tc = time.perf_counter() - t0
        cold_t.append(tc)
        cold_nfev.append(fc.nfev)
        if i > 0:
            warm_t.append(tw)
            warm_nfev.append(fw.nfev)
            n_warm_accepted += int(fw.warm_started)
        n_ident += int(fw.identified)
        e = _errors(fw, s, gamma)
        if e is not None:
            errs.append(e)
    acc = {k: float(np.max([e[k] for e in errs])) for k in errs[0]} if errs else {}
    acc_med = {k: float(np.median([e[k] for e in errs])) for k in errs[0]} if errs else {}
    return {"warm_median_s": float(np.median(warm_t)), "warm_p90_s": float(np.quantile(warm_t, 0.9)),
            "cold_median_s": float(np.median(cold_t)), "cold_p90_s": float(np.quantile(cold_t, 0.9)),
            "warm_nfev_median": float(np.median(warm_nfev)), "cold_nfev_median": float(np.median(cold_nfev)),
            "warm_accepted": n_warm_accepted, "n_fits": len(snaps), "n_identified": n_ident,
            "n_points_median": float(np.median([s["args"][0].size for s in snaps])),
            "max_error": acc, "median_error": acc_med}


def run_source(name: str, symbols, make_snaps, repeats: int, gammas) -> list[dict]:
    rows = []
    for sym in symbols:
        snaps = make_snaps(sym)
        if not snaps:
            print(f"[{name}] {sym}: no snapshots")
            continue
        for mode in ("A", "A0", "B"):
            passes = [run_sequence(snaps, gammas[sym], mode) for _ in range(max(repeats, 1))]
            r = dict(passes[0])
            for key in ("warm_median_s", "warm_p90_s", "cold_median_s", "cold_p90_s"):
                r[key] = float(np.median([p[key] for p in passes]))
            r.update(source=name, symbol=sym, mode=mode, speedup_warm_vs_cold=r["cold_median_s"] / r["warm_median_s"])
            rows.append(r)
            e = r["max_error"]
            print(f"[{name}] {sym:4s} {mode} n={r['n_points_median']:4.0f} warm {r['warm_median_s'] * 1e3:5.2f} ms "
                  f"(p90 {r['warm_p90_s'] * 1e3:5.2f}) cold {r['cold_median_s'] * 1e3:5.2f} ms "
                  f"x{r['speedup_warm_vs_cold']:4.1f} | identified {r['n_identified']}/{r['n_fits']} | max err "
                  f"mean {max(e.get('mean_trump_pct', math.nan), e.get('mean_harris_pct', math.nan)):.3f}% "
                  f"vol {max(e.get('vol_trump_rel_pct', math.nan), e.get('vol_harris_rel_pct', math.nan)):.2f}% "
                  f"w {e.get('weight_abs', math.nan):.4f}")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(HERE / "results" / "state_fit.json"))
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20241105)
    ap.add_argument("--day", default=str(DEFAULT_DAY),
                    help="synthetic day directory, also benchmarked when it exists ('' to skip)")
    ap.add_argument("--every", type=int, default=5, help="day: every n-th minute")
    ap.add_argument("--symbols", default=",".join(SYMBOLS))
    args = ap.parse_args(argv)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    gammas = U.effective_election_loadings()

    # compile the numba kernels (implied vols) outside the timings
    warm_snaps = simulated_snapshots("SPY", 2, 0)
    fit_states(*warm_snaps[0]["args"], weight=0.58)

    def simulated(sym):
        return simulated_snapshots(sym, args.minutes, args.seed + U.symbol_index(sym))

    rows = run_source("simulated", symbols, simulated, args.repeats, gammas)
    day = Path(args.day) if args.day else None
    have_day = day is not None and (day / "ground_truth" / "options_truth.parquet").exists()
    if have_day:
        rows += run_source("day", symbols, lambda s: day_snapshots(day, s, args.every), args.repeats, gammas)
    worst_warm = max(r["warm_median_s"] for r in rows)
    out = {
        "benchmark": "state_fit",
        "units": "seconds per fit (one underlying, one refresh); median over the sequence, median of repeats",
        "sources": {"simulated": f"{args.minutes} synchronous one-minute generator snapshots, seed {args.seed}",
                    "day": f"{day} every {args.every} min (staggered feed, parity forwards)" if have_day else None},
        "accuracy": "max_error / median_error over the identified fits; mean_*_pct = |m/F - m_true/F_true| in %",
        "target": "warm-started fit < 5 ms per underlying per refresh",
        "target_met": bool(worst_warm < 5e-3),
        "baseline": "cold multi-start fit of the same snapshot in the same run (speedup = cold / warm)",
        **machine_info(),
        "results": rows,
    }
    write_result(out, args.json)
    print(f"target met: {out['target_met']} (worst warm median {worst_warm * 1e3:.2f} ms); wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
