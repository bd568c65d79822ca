"""Run a replay end to end: discover -> validate and stage -> csp graph -> outputs.

``run_replay`` is what ``elecflow replay`` calls; tests and notebooks call it directly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import csp
import pyarrow.parquet as pq
from tqdm import tqdm

from elecflow.adapters.control import ReplayControl
from elecflow.adapters.ingest import IngestFilter, IngestReport, ingest, write_canonical_events, write_report
from elecflow.adapters.vendors import SourceFile, VendorFileError, discover
from elecflow.config import ReplayConfig
from elecflow.graphs.dashboard import (publish_bars, publish_election_states, publish_kalshi_filter,
                                      publish_option_chains, publish_upmove)
from elecflow.graphs.kalshi import kalshi_probability
from elecflow.graphs.dashboard import publish_leadership
from elecflow.graphs.leadership import leadership_streams
from elecflow.adapters.factors import prepare_factor_inputs, summarize_factor_outputs
from elecflow.graphs.dashboard import publish_factors
from elecflow.graphs.factors import replay_factor_streams
from elecflow.graphs.options import election_hedge, option_streams
from elecflow.graphs.dashboard import publish_impact
from elecflow.graphs.impact import impact_streams, underlyings_with_trades
from elecflow.hedge import read_positions
from elecflow.graphs.upmove import upmove_streams
from elecflow.graphs.microstructure import microstructure_streams
from elecflow.graphs.replay import (
    STREAM_REGISTER,
    STREAM_TYPES,
    AtomicParquetSink,
    datetime_to_ns,
    ns_to_datetime,
    canonical_inputs,
    replay_graph,
)


@dataclass
class ReplayResult:
    out_dir: Path
    ingest: IngestReport
    replayed: dict[str, int]  # events the graph saw per stream (its replay_clock's final counts)
    wall_seconds: float
    ingest_seconds: float  # validating and staging the vendor files
    prepare_seconds: float  # ingest + merging into time-ordered canonical event files
    graph_seconds: float  # the csp run
    start: dt.datetime
    end: dt.datetime
    outputs: dict[str, list[Path]] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)  # rows in the canonical event outputs

    @property
    def events(self) -> int:
        return sum(self.replayed.values())

    @property
    def sim_seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def reconciles(self) -> bool:
        totals = self.ingest.totals()
        return self.ingest.reconciles and all(
            self.replayed.get(s, 0) == t["accepted"] == self.written.get(s, 0) for s, t in totals.items())

    def summary(self) -> dict:
        return {
            "window_utc": [self.start.isoformat(), self.end.isoformat()],
            "replayed": self.replayed,
            "events": self.events,
            "wall_seconds": round(self.wall_seconds, 3),
            "ingest_seconds": round(self.ingest_seconds, 3),
            "prepare_seconds": round(self.prepare_seconds, 3),
            "graph_seconds": round(self.graph_seconds, 3),
            "multiple_of_real_time": round(self.sim_seconds / self.graph_seconds, 1) if self.graph_seconds else None,
            "reconciles": self.reconciles(),
            "ingest": self.ingest.as_dict(),
            "outputs": {k: [str(p) for p in v] for k, v in self.outputs.items()},
        }


def resolve_sources(config: ReplayConfig, log=print) -> list[SourceFile]:
    if config.data is None:
        raise VendorFileError("no data directory given")
    sources, unknown = discover(config.data)
    for path in unknown:
        log(f"  ignored (not a known vendor format): {path}")
    if not sources:
        raise VendorFileError(f"{config.data}: no vendor files found (see docs/data-formats.md for what is read)")
    return sources


# files a replay writes next to its stream directories (replaced or absent after a run)
RUN_FILES = ("run_summary.json", "ingest_report.json", "factor_summary.json", "quarantine.parquet")


def clear_previous_outputs(out_dir: Path) -> list[str]:
    """Remove what an earlier replay wrote into ``out_dir``, so a reused ``--out`` never mixes
    its parts with this run's: the canonical event streams, the clock, every stream directory
    that the previous run's ``run_summary.json`` or the directory's stream register lists
    (computed streams this run may not produce, e.g. with a layer switched off) and the run's
    files. Only names a replay writes are touched; anything else in ``out_dir`` stays (the
    factor universe's staging directory is cleared by its own stage: it shares its name with
    the data directory's universe). Returns the names removed."""
    previous: list = list(STREAM_TYPES) + ["replay_clock"]
    summary = out_dir / "run_summary.json"
    if summary.exists():
        try:
            previous += list(json.loads(summary.read_text()).get("outputs", {}))
        except (OSError, ValueError, AttributeError, TypeError):
            pass  # an unreadable summary lists nothing; the register and the fixed names still count
    register = out_dir / STREAM_REGISTER
    if register.exists():  # also lists the streams of a run killed before its summary
        previous += register.read_text().split()
        register.unlink()
    # a stream name is one path component (never "..", never absolute)
    names = {n for n in previous if isinstance(n, str) and n and Path(n).name == n and n not in (".", "..")}
    removed = []
    for name in sorted(names):
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(name)
    for name in RUN_FILES:
        if (out_dir / name).is_file():
            (out_dir / name).unlink()
            removed.append(name)
    return removed


def run_replay(config: ReplayConfig, sources: list[SourceFile], dashboard=None, control: ReplayControl | None = None,
               log=print) -> ReplayResult:
    """Validate and stage ``sources``, replay them through one csp graph, write outputs."""
    t0 = time.perf_counter()
    out_dir = Path(config.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    inprogress = out_dir / ".inprogress"
    if inprogress.exists():  # leftovers of a killed run: never complete files
        shutil.rmtree(inprogress)
    clear_previous_outputs(out_dir)
    start_utc, end_utc = config.window_utc()
    filt = IngestFilter(
        symbols=frozenset(config.symbols) if config.symbols is not None else None,
        underlyings=frozenset(config.underlyings) if config.underlyings is not None else None,
        kalshi_contracts=frozenset(config.kalshi_contracts) if config.kalshi_contracts is not None else None,
        start_ns=datetime_to_ns(start_utc) if start_utc else None,
        end_ns=datetime_to_ns(end_utc) if end_utc else None,
        size_multiplier=100.0 if config.size_unit == "round_lots" else 1.0,
    )
    total_bytes = sum(s.path.stat().st_size for s in sources)
    log(f"validating {len(sources)} vendor files ({total_bytes / 1e6:,.0f} MB)")
    bar = tqdm(total=len(sources), unit="file", desc="validate", disable=not config.progress, file=sys.stderr)
    report = ingest(_with_progress(sources, bar), out_dir / ".staging", out_dir / "quarantine.parquet", filt,
                    batch_rows=config.batch_rows)
    bar.close()
    ingest_seconds = time.perf_counter() - t0
    if report.first_time_ns is None:
        window = " to ".join(str(b) + " UTC" if b else "open" for b in (start_utc, end_utc))
        raise VendorFileError(f"no valid rows left to replay in the window {window} "
                              f"(HH:MM times are New York time on {config.date}; see --date)")
    start = start_utc or ns_to_datetime(report.first_time_ns)
    end = end_utc or ns_to_datetime(report.last_time_ns) + dt.timedelta(microseconds=1)

    speed = config.speed if config.mode == "paced" else 0.0
    control = control or ReplayControl()
    progress = None
    if config.progress:
        progress = tqdm(total=int((end - start).total_seconds()), unit="sim s", desc="replay", file=sys.stderr,
                        bar_format="{desc} {percentage:3.0f}%|{bar:20}|")
    # The accepted events, merged into time order, are both an output (the validated canonical
    # events, one Parquet part per hour) and the graph's input files.
    part_ns = int(config.part_minutes * 60 * 1e9)
    events = write_canonical_events(report.partitions, out_dir, part_ns)
    shutil.rmtree(out_dir / ".staging", ignore_errors=True)
    factor_inputs = None  # Fama-French factors: the universe staged, the baseline loaded (docs/factors.md)
    if config.factors:
        factor_inputs = prepare_factor_inputs(config, out_dir, datetime_to_ns(start), datetime_to_ns(end), part_ns,
                                              events.get("nbbo_1s", []), log=log)
    # cross impact of option order flow (graphs/impact.py): on by default when option trades were replayed
    impact_underlyings = resolve_impact_underlyings(config, events.get("option_trades", []), log)
    prepare_seconds = time.perf_counter() - t0
    sinks: list = []

    part_every = dt.timedelta(minutes=config.part_minutes)
    positions = read_positions(config.positions) if config.positions is not None else None

    @csp.graph
    def graph():
        inputs = canonical_inputs(events)
        replay_graph(inputs, speed, control, str(out_dir), sinks, dashboard, progress, datetime_to_ns(start),
                     dt.timedelta(seconds=config.clock_seconds), part_every)
        computed = {}
        if config.features:
            computed.update(microstructure_streams(inputs.quotes, inputs.trades, config.signing_method,
                                                   int(config.quote_delay_ms * 1e6)))
            if config.upmove:
                computed.update(upmove_streams(computed["bars_1m"]))
        if config.kalshi_filter:
            computed["kalshi_probability"] = kalshi_probability(
                inputs.kalshi_trades, dt.timedelta(seconds=config.kalshi_grid_seconds), config.kalshi_warmup_fills)
        if config.options:
            computed.update(option_streams(inputs.option_quotes, inputs.quotes, config.option_refresh_seconds,
                                           config.option_curve_seconds, config.option_rate, config.option_div_yield,
                                           kalshi=computed.get("kalshi_probability"),
                                           states_seconds=config.option_states_seconds))
        if config.leadership:  # price discovery, lead-lag, sweeps (graphs/leadership.py)
            computed.update(leadership_streams(inputs.quotes, inputs.trades, config.leadership_settings, config.date,
                                               nbbo=computed.get("nbbo_1s_sampled"),
                                               kalshi=computed.get("kalshi_probability")))
            if dashboard is not None:
                publish_leadership(dashboard, computed["price_discovery"], computed["lead_lag"],
                                   computed["sweep_leadership"],
                                   {g.name: g.note for g in config.leadership_settings.all_groups()})
        if factor_inputs is not None:  # factor returns, betas, decomposition, ETF replicas (graphs/factors.py)
            computed.update(replay_factor_streams(factor_inputs, inputs, computed))
            if dashboard is not None:
                publish_factors(dashboard, computed["factor_returns"], computed["factor_decomposition"],
                                computed["etf_replication"])
        if impact_underlyings:  # eq. (45), straddle/portfolio/wing cross impact, kappa (graphs/impact.py)
            computed.update(impact_streams(inputs.option_quotes, inputs.option_trades, impact_underlyings,
                                           config.impact_settings, smile=computed.get("smile"),
                                           summary=computed.get("rnd_summary")))
            if dashboard is not None:
                publish_impact(dashboard, computed["cross_impact"], computed["impact_stats"])
        for name, edge in computed.items():
            sink = AtomicParquetSink(out_dir, name, part_every)
            sinks.append(sink)
            sink.publish(csp.unroll(edge))
        if dashboard is not None and "bars_1m" in computed:
            publish_bars(dashboard, computed["bars_1m"])
        if dashboard is not None and "rnd_summary" in computed:
            publish_option_chains(dashboard, computed["rnd_summary"], computed["smile"], computed["rnd_curve"])
        if dashboard is not None and "upmove_1m" in computed:
            publish_upmove(dashboard, computed["upmove_1m"])
        if dashboard is not None and "kalshi_probability" in computed:
            publish_kalshi_filter(dashboard, computed["kalshi_probability"])
        if positions is not None and "election_states" in computed:
            computed["election_hedge"] = election_hedge(computed["election_states"], positions)
            sink = AtomicParquetSink(out_dir, "election_hedge", part_every)
            sinks.append(sink)
            sink.publish(csp.unroll(computed["election_hedge"]))
        if dashboard is not None and "election_states" in computed:
            publish_election_states(dashboard, computed["election_states"], computed.get("election_hedge"))

    g0 = time.perf_counter()
    control.set_state("running")
    try:
        csp.run(graph, starttime=start, endtime=end, realtime=False)
    except BaseException:
        control.set_state("failed")
        raise
    else:
        if progress is not None:
            progress.n = progress.total
            progress.refresh()
    finally:
        if progress is not None:
            progress.close()
    graph_seconds = time.perf_counter() - g0
    control.set_state("finished")
    shutil.rmtree(inprogress, ignore_errors=True)
    outputs = dict(events)
    outputs.update({s.stream: sorted(s.parts) for s in sinks})
    replayed = _count_rows(outputs)
    clock_rows = pq.read_table(outputs["replay_clock"], columns=list(STREAM_TYPES)) if outputs.get("replay_clock") \
        else None
    seen = {name: int(clock_rows.column(name)[-1].as_py()) if clock_rows is not None and clock_rows.num_rows else 0
            for name in STREAM_TYPES}
    result = ReplayResult(out_dir, report, seen, time.perf_counter() - t0, ingest_seconds, prepare_seconds,
                          graph_seconds, start, end, outputs, written={k: replayed.get(k, 0) for k in STREAM_TYPES})
    write_report(report, out_dir / "ingest_report.json")
    if factor_inputs is not None:  # the last per-regime figures, e.g. the idiosyncratic-variance ratios
        _write_json(out_dir / "factor_summary.json", {**summarize_factor_outputs(out_dir),
                                                      "inputs": factor_inputs.describe()})
    _write_json(out_dir / "run_summary.json", result.summary())
    return result


def resolve_impact_underlyings(config: ReplayConfig, trade_parts: list[Path], log=print) -> list[str]:
    """The underlyings of the cross-impact streams: the configured ones, else every underlying
    with option trades; none when ``impact`` is off, or on by default but no trade was read."""
    if config.impact is False:
        return []
    listed = config.impact_settings.underlyings
    traded = underlyings_with_trades(trade_parts)
    names = list(listed) if listed is not None else traded
    if config.impact and not traded:
        log("  cross impact: no option trades in the data, nothing to estimate")
    missing = [u for u in names if u not in traded]
    if missing and listed is not None:
        log(f"  cross impact: no option trades for {', '.join(missing)} (their flow is zero)")
    return names


def _with_progress(sources, bar):
    for s in sources:
        bar.set_postfix_str(s.path.name, refresh=True)
        yield s
        bar.update(1)


def _count_rows(outputs: dict[str, list[Path]]) -> dict[str, int]:
    return {name: sum(pq.ParquetFile(p).metadata.num_rows for p in parts) for name, parts in outputs.items()}


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def format_counts(result: ReplayResult) -> str:
    """The reconciliation table printed at the end of a run."""
    lines = [f"{'stream':<14}{'read':>12}{'accepted':>12}{'rejected':>10}{'skipped':>10}{'replayed':>12}  reasons"]
    for stream, t in sorted(result.ingest.totals().items()):
        rejected = sum(t["rejected"].values())
        skipped = sum(t["skipped"].values())
        reasons = ", ".join(f"{k}={v}" for k, v in sorted({**t["rejected"], **t["skipped"]}.items()))
        lines.append(f"{stream:<14}{t['read']:>12,}{t['accepted']:>12,}{rejected:>10,}{skipped:>10,}"
                     f"{result.replayed.get(stream, 0):>12,}  {reasons}")
    lines.append("counts reconcile: read = accepted + rejected + skipped, replayed = accepted"
                 if result.reconciles() else "COUNTS DO NOT RECONCILE (see ingest_report.json)")
    return "\n".join(lines)
