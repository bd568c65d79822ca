"""Replay throughput of the full default synthetic day in simulation mode.

Measures, each in its own subprocess (so peak memory is per run):
- ``elecflow``: the whole replay as ``elecflow replay --mode sim`` runs it: validating and
  staging the vendor files (ingest), merging them into time-ordered canonical event files
  (prepare), and the csp graph with its analytics layers (trade signing, 1-minute bars, the
  1 s NBBO sample, up-move scores, the Kalshi filter, option smiles and densities) and
  Parquet sinks;
- ``spine``: the same replay without the analytics layers (replay clock and sinks only);
- ``bare``: the same canonical event files through a bare csp graph: csp's Parquet reader
  and one pass-through Python node per stream. This is the floor our graph cannot beat.
- ``memory``: peak RSS of the same replay on a day generated with 2.5x the quote and trade
  intensity, to show that memory does not grow with the size of the input.

Targets: >= 500x real time for the spine on the full default day and within 2x of the bare
graph's time (issue 2); >= 300x real time with the analytics layers (issue 3) and >= 100x with
every option chain (issue 4); >= 100x with all groups, lead-lag and factors (issue 6; the
factors' baseline days and statistics are made before the timed runs, ``factors`` times the
factor streams alone). Both the graph-only and the end-to-end ratios are reported: the bare
graph reads already-validated canonical files, so only the graph-only ratio compares like
with like. Writes JSON (default benchmarks/results/replay_throughput.json).

    python benchmarks/replay_throughput.py [--data DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _child_elecflow(data: str, out: str, layers: str = "all") -> dict:
    from elecflow.adapters.vendors import discover
    from elecflow.config import ReplayConfig
    from elecflow.graphs.run import run_replay

    # "spine": the replay alone (issue 2); "all": with the analytics layers (signing, bars,
    # 1 s NBBO sample, up-move scores, Kalshi filter, option chains, leadership groups and
    # lead-lag, Fama-French factors), the default of `elecflow replay`; "factors": the spine
    # plus the factor streams alone (issue 6)
    off = {"features": False, "upmove": False, "kalshi_filter": False, "options": False, "leadership": False,
           "factors": False}
    extra = {"all": {}, "spine": off, "factors": {**off, "factors": True}}[layers]
    config = ReplayConfig(mode="sim", data=Path(data), out=Path(out), dashboard=False, progress=False, **extra)
    sources, _ = discover(config.data)
    result = run_replay(config, sources, log=lambda *_: None)
    return {"events": result.events, "sim_seconds": result.sim_seconds, "wall_seconds": result.wall_seconds,
            "ingest_seconds": result.ingest_seconds, "prepare_seconds": result.prepare_seconds,
            "graph_seconds": result.graph_seconds, "reconciles": result.reconciles(), "replayed": result.replayed,
            "input_bytes": sum(s.path.stat().st_size for s in sources)}


def _prepare_factor_baseline(data: Path) -> dict:
    """The factor streams' baseline days (generated once, like the embedded day) and their cached
    statistics, made before the timed runs: a replay then only loads them."""
    import datetime as dt

    from elecflow import universe as U
    from elecflow.adapters.factors import baseline_stats, ensure_synthetic_baseline
    from elecflow.factors.settings import FactorConfig

    fc = FactorConfig()
    t0 = time.perf_counter()
    days = ensure_synthetic_baseline(Path(data), dt.date(2024, 11, 5), fc.baseline_days, progress=False)
    t1 = time.perf_counter()
    baseline_stats(days, U.SYMBOLS, fc.model_settings(), fc.risk_free_rate, log=lambda *_: None)
    return {"days": [d.name for d in days], "generate_or_reuse_seconds": round(t1 - t0, 2),
            "stats_seconds_untimed_runs_reuse_them": round(time.perf_counter() - t1, 2)}


def _child_bare(out: str) -> dict:
    import datetime as dt

    import csp
    import pyarrow.parquet as pq
    from csp import ts
    from csp.adapters.parquet import ParquetReader

    from elecflow.graphs.replay import STREAM_TYPES

    @csp.node
    def passthrough(x: ts["T"]) -> ts["T"]:
        return x

    files = {name: sorted((Path(out) / name).glob("part-*.parquet")) for name in STREAM_TYPES}
    bounds = [pq.read_table(p, columns=["time"]).column("time") for ps in files.values() for p in ps]
    start = min(b[0].as_py() for b in bounds if len(b)).replace(tzinfo=None)
    end = max(b[-1].as_py() for b in bounds if len(b)).replace(tzinfo=None) + dt.timedelta(microseconds=1)
    counts = {}

    @csp.graph
    def bare():
        for name, typ in STREAM_TYPES.items():
            if files[name]:
                reader = ParquetReader([str(p) for p in files[name]], time_column="time")
                csp.add_graph_output(name, csp.count(passthrough(reader.subscribe_all(typ))), tick_count=1)

    t0 = time.perf_counter()
    result = csp.run(bare, starttime=start, endtime=end, realtime=False)
    seconds = time.perf_counter() - t0
    counts = {k: v[-1][1] for k, v in result.items()}
    return {"events": sum(counts.values()), "graph_seconds": seconds, "replayed": counts,
            "sim_seconds": (end - start).total_seconds()}


def _run_child(kind: str, *args: str) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="vendor-file directory (default: the embedded synthetic day)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "replay_throughput.json")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 2.5x dense-day memory run")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        payload = _child_elecflow(*rest) if kind == "elecflow" else _child_bare(*rest)
        payload["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(payload))
        return

    from elecflow.cli import ensure_embedded_day

    data = args.data or ensure_embedded_day({}, None, quiet=True)
    baseline = _prepare_factor_baseline(data)
    with tempfile.TemporaryDirectory() as tmp:
        full = _run_child("elecflow", str(data), str(Path(tmp) / "full"), "all")
        factors = _run_child("elecflow", str(data), str(Path(tmp) / "factors"), "factors")
        ours = _run_child("elecflow", str(data), tmp, "spine")
        bare = _run_child("bare", tmp)
    big = None
    if not args.skip_memory:
        with tempfile.TemporaryDirectory() as tmp:
            # generated in a separate process: a child forked from a parent that had just
            # generated data would report the parent's memory as its own peak (ru_maxrss
            # counts the pages of the forked image before exec)
            subprocess.run([sys.executable, "-m", "elecflow.cli", "generate", "--quiet", "--intensity", "2.5",
                            "--out", str(Path(tmp) / "data")], check=True, capture_output=True)
            big = _run_child("elecflow", str(Path(tmp) / "data"), str(Path(tmp) / "out"), "spine")
    if ours["replayed"] != bare["replayed"]:
        raise RuntimeError(f"bare graph saw different events: {bare['replayed']} vs {ours['replayed']}")
    report = {
        "benchmark": "replay_throughput",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                    "platform": platform.platform()},
        "data": str(data),
        "sim_hours": round(ours["sim_seconds"] / 3600, 3),
        "events": ours["events"],
        "input_mb": round(ours["input_bytes"] / 1e6, 1),
        "elecflow": {
            **{k: ours[k] for k in ("wall_seconds", "ingest_seconds", "prepare_seconds", "graph_seconds",
                                    "peak_rss_mb", "reconciles")},
            "events_per_second": round(ours["events"] / ours["wall_seconds"]),
            "multiple_of_real_time": round(ours["sim_seconds"] / ours["wall_seconds"], 1),
            "graph_only_multiple_of_real_time": round(ours["sim_seconds"] / ours["graph_seconds"], 1),
        },
        "elecflow_with_analytics": {
            **{k: full[k] for k in ("wall_seconds", "ingest_seconds", "prepare_seconds", "graph_seconds",
                                    "peak_rss_mb", "reconciles")},
            "events_per_second": round(full["events"] / full["wall_seconds"]),
            "multiple_of_real_time": round(full["sim_seconds"] / full["wall_seconds"], 1),
            "graph_only_multiple_of_real_time": round(full["sim_seconds"] / full["graph_seconds"], 1),
            "graph_seconds_added_by_analytics": round(full["graph_seconds"] - ours["graph_seconds"], 3),
        },
        "bare_csp_graph": {
            "graph_seconds": bare["graph_seconds"], "peak_rss_mb": bare["peak_rss_mb"],
            "events_per_second": round(bare["events"] / bare["graph_seconds"]),
            "multiple_of_real_time": round(bare["sim_seconds"] / bare["graph_seconds"], 1),
        },
        "ratio_to_bare": {
            "end_to_end": round(ours["wall_seconds"] / bare["graph_seconds"], 2),
            "graph_only": round(ours["graph_seconds"] / bare["graph_seconds"], 2),
        },
    }
    if big is not None:
        report["memory"] = {
            "default_day": {"events": ours["events"], "input_mb": report["input_mb"],
                            "peak_rss_mb": round(ours["peak_rss_mb"])},
            "dense_day_2.5x": {"events": big["events"], "input_mb": round(big["input_bytes"] / 1e6, 1),
                               "peak_rss_mb": round(big["peak_rss_mb"])},
            "peak_rss_growth": round(big["peak_rss_mb"] / ours["peak_rss_mb"], 2),
            "event_growth": round(big["events"] / ours["events"], 2),
        }
    report["elecflow_factors_only"] = {
        **{k: factors[k] for k in ("wall_seconds", "ingest_seconds", "prepare_seconds", "graph_seconds",
                                   "peak_rss_mb", "reconciles")},
        "multiple_of_real_time": round(factors["sim_seconds"] / factors["wall_seconds"], 1),
        "graph_only_multiple_of_real_time": round(factors["sim_seconds"] / factors["graph_seconds"], 1),
        "graph_seconds_added_by_factors": round(factors["graph_seconds"] - ours["graph_seconds"], 3),
        "prepare_seconds_added_by_factors": round(factors["prepare_seconds"] - ours["prepare_seconds"], 3),
        "baseline": baseline,
    }
    report["targets"] = {
        ">=100x real time (all groups, lead-lag and factors, end to end)":
            report["elecflow_with_analytics"]["multiple_of_real_time"] >= 100,
        ">=500x real time (spine, end to end)": report["elecflow"]["multiple_of_real_time"] >= 500,
        ">=300x real time (with analytics, end to end)":
            report["elecflow_with_analytics"]["multiple_of_real_time"] >= 300,
        "within 2x of bare graph (graph only)": report["ratio_to_bare"]["graph_only"] <= 2.0,
        "within 2x of bare graph (end to end, incl. validating raw CSV)": report["ratio_to_bare"]["end_to_end"] <= 2.0,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
