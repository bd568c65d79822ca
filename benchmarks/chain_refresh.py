"""Chain refresh latency of ``ChainSmile`` on the synthetic day (issue 4): quotes of one
underlying to forward, implied vols, GP sync, a smile on 101 points and the density with
its moments and quantiles on a 400-point grid, per 1 s refresh.

Two feeds of the same day (09:55-10:05 ET, seed 20241105), generated into a temporary
directory and read through the vendor readers:

- ``snapshot``: the default feed, every contract re-quoted at each minute (a refresh with
  new quotes is a bulk refit, the other refreshes of the minute are skipped by the node);
- ``asynchronous``: ``option_quote_spread_seconds=60``, each strike re-quoted at its own
  second of the minute (a refresh sees a few changed contracts: rank-one GP updates).

Each option quote is given the underlying's latest equity NBBO mid, as the graph does.
Reported per underlying and feed: refreshes with new quotes, median / p90 / max wall time
per refresh, the same without the density (``density=False``, the baseline measured in the
same run: what the density step costs), GP operation counters, and the density's L1
distance to the true mixture at 10:00. Writes JSON (default
benchmarks/results/chain_refresh.json).

    python benchmarks/chain_refresh.py [--json PATH] [--underlyings SPY,QQQ,DJT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _results import machine_info, write_result
from elecflow.adapters.synthetic import write_synthetic_day
from elecflow.adapters.vendors import discover, read_canonical
from elecflow.calendar import utc_ns
from elecflow.chain import ChainSmile
from elecflow.rnd import l1_distance
from elecflow.synth.config import SyntheticDayConfig
from elecflow.synth.options import mixture_density

HERE = Path(__file__).resolve().parent
EXPIRY = dt.date(2024, 11, 15)
RATE = 0.0483
T_1000 = utc_ns(dt.date(2024, 11, 5), dt.time(10, 0))


def load(day: Path, underlyings: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sources, _ = discover(day)
    opt, eq = [], []
    for src in sources:
        if src.stream not in ("option_quotes", "quotes"):
            continue
        for b in read_canonical(src):
            ok = b.codes == 0
            frame = pd.DataFrame({k: v[ok] for k, v in b.columns.items()})
            (opt if src.stream == "option_quotes" else eq).append(frame)
    opt = pd.concat(opt, ignore_index=True)
    eq = pd.concat(eq, ignore_index=True)
    return (opt[opt.underlying.isin(underlyings)].sort_values("time", kind="stable"),
            eq[eq.symbol.isin(underlyings)].sort_values("time", kind="stable"))


def run(opt: pd.DataFrame, eq: pd.DataFrame, underlying: str, density: bool):
    q = opt[opt.underlying == underlying]
    e = eq[eq.symbol == underlying]
    e_t = e.time.to_numpy(np.int64)
    e_mid = 0.5 * (e.bid_price.to_numpy() + e.ask_price.to_numpy())
    recs = list(zip(q.time.to_numpy(np.int64), q.contract, q.strike, q.right, q.bid, q.ask, q.bid_size,
                    q.ask_size))
    cs = ChainSmile(underlying, EXPIRY, RATE, density=density)
    t = int(recs[0][0]) // 10**9 * 10**9
    end = int(recs[-1][0])
    i, times, at_1000 = 0, [], None
    while t <= end:
        fed = False
        while i < len(recs) and recs[i][0] <= t:
            r = recs[i]
            j = np.searchsorted(e_t, r[0], side="right") - 1
            cs.on_quote(int(r[0]), r[1], float(r[2]), r[3] == "C", r[4], r[5], r[6], r[7],
                        spot=float(e_mid[j]) if j >= 0 else None)
            i += 1
            fed = True
        if fed:  # the graph node refreshes a chain only when it received quotes
            j = np.searchsorted(e_t, t, side="right") - 1
            t0 = time.perf_counter()
            snap = cs.refresh(t, spot=float(e_mid[j]) if j >= 0 else None)
            times.append(time.perf_counter() - t0)
            if t <= T_1000 + 10**9:
                at_1000 = snap
        t += 10**9
    return np.array(times[1:]), cs.gp_counters(), at_1000  # first refresh: numba warm-up


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=str(HERE / "results" / "chain_refresh.json"))
    ap.add_argument("--underlyings", default="SPY,QQQ,DJT")
    args = ap.parse_args()
    underlyings = args.underlyings.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for feed, spread in (("snapshot", 0.0), ("asynchronous", 60.0)):
            day = Path(tmp) / feed
            cfg = SyntheticDayConfig(start_et="09:55", end_et="10:05", option_underlyings=underlyings,
                                     option_quote_spread_seconds=spread)
            write_synthetic_day(cfg, day, progress=False)
            opt, eq = load(day, underlyings)
            truth = pd.read_parquet(day / "ground_truth" / "options_truth.parquet")
            for sym in underlyings:
                full, counters, snap = run(opt, eq, sym, density=True)
                bare, _, _ = run(opt, eq, sym, density=False)
                tr = truth[truth.underlying == sym]
                row_t = tr.iloc[int(np.argmin(np.abs(tr.time.astype("int64").to_numpy() - T_1000)))]
                pdf = lambda s, r=row_t: mixture_density(s, r["T"], r.q, r.mean_trump, r.sigma_trump,  # noqa: E731
                                                         r.mean_harris, r.sigma_harris)
                l1 = l1_distance(snap.rnd, pdf) if snap is not None and snap.rnd is not None else None
                row = {
                    "feed": feed, "underlying": sym, "refreshes": int(full.size),
                    "median_ms": float(np.median(full) * 1e3), "p90_ms": float(np.percentile(full, 90) * 1e3),
                    "max_ms": float(full.max() * 1e3),
                    "median_ms_without_density": float(np.median(bare) * 1e3),
                    "density_share_of_median": float(1 - np.median(bare) / np.median(full)),
                    "l1_vs_truth_at_1000": l1,
                    "counters": {k: counters[k] for k in ("updates", "inserts", "removes", "full_fits", "bulk_fits",
                                                          "hyper_optimisations", "priced")},
                }
                rows.append(row)
                print(f"{feed:13s} {sym:5s} refreshes {row['refreshes']:4d}  median {row['median_ms']:6.2f} ms  "
                      f"p90 {row['p90_ms']:6.2f}  max {row['max_ms']:7.1f}  no-density "
                      f"{row['median_ms_without_density']:5.2f} ms  L1@10:00 {l1 if l1 is None else round(l1, 4)}")
    out = {
        "benchmark": "chain_refresh",
        "units": "milliseconds of wall time per ChainSmile.refresh (refreshes that received quotes)",
        "window": "2024-11-05 09:55-10:05 ET, seed 20241105",
        "baseline": "the same refreshes with density=False, same run",
        **machine_info(),
        "results": rows,
    }
    write_result(out, args.json)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
