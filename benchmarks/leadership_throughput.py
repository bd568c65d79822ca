"""The full default day with the leadership streams on, against the same replay without them.

Runs, each in its own subprocess (so peak memory is per run), on the embedded default day:

- ``with_leadership``: ``elecflow replay --mode sim`` as configured by default - every analytics
  layer (signing, bars, 1 s NBBO sample, up-move scores, the Kalshi filter, option chains and
  states) **and** the leadership streams (``price_discovery`` for the 13 default groups,
  ``lead_lag`` of the 40 tickers against Kalshi and within the groups, ``sweep_leadership``),
  plus whatever other streams the default configuration turns on;
- ``without_leadership``: the same with ``leadership = false``: the baseline in the same
  session, so the difference is the leadership streams' own cost on this machine today.

Reports the graph-only and end-to-end multiples of real time of both, the seconds added, the
rows written per leadership stream, and two micro-measures of the per-step cost: the compiled
small-group shares against the reference ``price_discovery_shares`` (three markets), and one
``GroupMonitor.step`` (rolling update + shares + regime averages, three markets, 1,800-row
window). Target (issue 6): the full default day with all groups, lead-lag and factors at
>= 100x real time. Writes JSON (default benchmarks/results/leadership_throughput.json).

    python benchmarks/leadership_throughput.py [--data DIR] [--json PATH] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import machine_info, write_result  # noqa: E402

STREAMS = ("price_discovery", "lead_lag", "sweep_leadership")


def _child(data: str, out: str, leadership: str) -> dict:
    import pyarrow.parquet as pq

    from elecflow.adapters.vendors import discover
    from elecflow.config import ReplayConfig
    from elecflow.graphs.run import run_replay

    config = ReplayConfig(mode="sim", data=Path(data), out=Path(out), dashboard=False, progress=False,
                          leadership=leadership == "on")
    sources, _ = discover(config.data)
    result = run_replay(config, sources, log=lambda *_: None)
    rows = {s: sum(pq.ParquetFile(p).metadata.num_rows for p in result.outputs.get(s, [])) for s in STREAMS}
    return {"events": result.events, "sim_seconds": result.sim_seconds, "wall_seconds": result.wall_seconds,
            "graph_seconds": result.graph_seconds, "reconciles": result.reconciles(), "rows": rows,
            "streams": sorted(result.outputs)}


def _run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"run {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _micro() -> dict:
    import numpy as np

    from elecflow.leadership import RollingVECM, price_discovery_shares
    from elecflow.leadership._small_shares import small_shares
    from elecflow.leadership.groups import GroupSpec, SeriesBook
    from elecflow.leadership.monitor import GroupMonitor
    from elecflow.leadership.regimes import RegimeCalendar
    from elecflow.calendar import ELECTION_DAY, utc_ns
    import datetime as dt

    rng = np.random.default_rng(0)
    n = 6000
    x = np.cumsum(rng.standard_normal(n)) * 0.01
    y = np.log(500 + x[:, None] + 0.005 * rng.standard_normal((n, 3)))
    roll = RollingVECM(3, 1800, 1, 2, "ci")
    fit = None
    for row in y[:1800]:
        fit = roll.update(row)
    reps = 3000
    t0 = time.perf_counter()
    for _ in range(reps):
        price_discovery_shares(fit.alpha, fit.beta, fit.sigma_u)
    reference_us = (time.perf_counter() - t0) / reps * 1e6
    small_shares(fit.alpha, fit.beta, fit.sigma_u)
    t0 = time.perf_counter()
    for _ in range(reps):
        small_shares(fit.alpha, fit.beta, fit.sigma_u)
    small_us = (time.perf_counter() - t0) / reps * 1e6
    spec = GroupSpec(name="g", members=("AAA", "BBB", "CCC"))
    monitor = GroupMonitor(spec, SeriesBook.build(spec.members), 1800, 10 ** 9, RegimeCalendar())
    fresh = np.ones(3, dtype=bool)
    t_start = utc_ns(ELECTION_DAY, dt.time(10, 0))
    for i, row in enumerate(y[:1800]):
        monitor.step(t_start + i * 10 ** 9, row, fresh)
    t0 = time.perf_counter()
    for i, row in enumerate(y[1800:]):
        monitor.step(t_start + (1800 + i) * 10 ** 9, row, fresh)
    step_us = (time.perf_counter() - t0) / (n - 1800) * 1e6
    return {"shares_reference_us": round(reference_us, 2), "shares_compiled_us": round(small_us, 2),
            "shares_speedup": round(reference_us / small_us, 1), "group_monitor_step_us": round(step_us, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="vendor-file directory (default: the embedded synthetic day)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "leadership_throughput.json")
    parser.add_argument("--skip-baseline", action="store_true", help="only the run with the leadership streams")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        payload = _child(*args.child)
        payload["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(payload))
        return

    from elecflow.cli import ensure_embedded_day

    data = args.data or ensure_embedded_day({}, None, quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        on = _run_child(str(data), str(Path(tmp) / "on"), "on")
        off = None if args.skip_baseline else _run_child(str(data), str(Path(tmp) / "off"), "off")

    def summary(r: dict) -> dict:
        return {"graph_seconds": round(r["graph_seconds"], 2), "wall_seconds": round(r["wall_seconds"], 2),
                "graph_only_multiple_of_real_time": round(r["sim_seconds"] / r["graph_seconds"], 1),
                "multiple_of_real_time": round(r["sim_seconds"] / r["wall_seconds"], 1),
                "peak_rss_mb": r["peak_rss_mb"], "reconciles": r["reconciles"], "streams": r["streams"]}

    report = {
        "benchmark": "leadership_throughput",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "data": str(data),
        "sim_hours": round(on["sim_seconds"] / 3600, 3),
        "events": on["events"],
        "with_leadership": {**summary(on), "rows": on["rows"]},
        "micro": _micro(),
    }
    if off is not None:
        report["without_leadership"] = summary(off)
        report["graph_seconds_added_by_leadership"] = round(on["graph_seconds"] - off["graph_seconds"], 2)
    report["targets"] = {">=100x real time, full default day with the leadership streams (end to end)":
                         report["with_leadership"]["multiple_of_real_time"] >= 100}
    write_result(report, args.json)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
