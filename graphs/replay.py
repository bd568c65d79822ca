"""The replay graph: staged canonical streams -> csp structs -> sinks.

Engine time is always event time: the graph runs in csp simulation mode, and a pacing node
(:func:`pace`) sleeps so that event time advances at N times wall time when a speed is set.
Timers, alarms and time windows therefore behave exactly as in a backtest at any speed.

Sources are plain ``ts[Struct]`` edges (``ReplayInputs``): a live push adapter producing the
same structs can be put in their place without touching the nodes downstream.
"""

from __future__ import annotations

import datetime as dt
import os
import time as _time
from dataclasses import dataclass
from pathlib import Path

import csp
from csp import ts
from csp.adapters.parquet import ParquetReader, ParquetWriter

from elecflow.adapters.control import ReplayControl
from elecflow.adapters.ingest import merged_tables
from elecflow.schema import EquityQuote, EquityTrade, KalshiTrade, Nbbo1s, OptionQuote, ReplayClock

STREAM_TYPES = {
    "quotes": EquityQuote,
    "trades": EquityTrade,
    "nbbo_1s": Nbbo1s,
    "option_quotes": OptionQuote,
    "kalshi_trades": KalshiTrade,
}

EPOCH = dt.datetime(1970, 1, 1)


def ns_to_datetime(ns: int) -> dt.datetime:
    """Epoch ns -> naive UTC datetime as csp uses (microsecond resolution)."""
    return EPOCH + dt.timedelta(microseconds=ns // 1000)


def datetime_to_ns(t: dt.datetime) -> int:
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    delta = t - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


@dataclass
class ReplayInputs:
    """The canonical event edges every downstream node consumes."""

    quotes: ts[EquityQuote]
    trades: ts[EquityTrade]
    nbbo_1s: ts[Nbbo1s]
    option_quotes: ts[OptionQuote]
    kalshi_trades: ts[KalshiTrade]


def staged_stream(paths: list[Path], typ: type, batch_rows: int = 200_000):
    """A ``ts[typ]`` read from staged partitions in time order (C++ struct building)."""
    if not paths:
        return csp.null_ts(typ)
    paths = [Path(p) for p in paths]

    def tables(starttime, endtime):
        # csp asks for [starttime, endtime]; rows outside were skipped at ingest already,
        # and csp drops anything before starttime itself
        return merged_tables(paths, batch_rows=batch_rows)

    reader = ParquetReader(tables, time_column="time", read_from_memory_tables=True)
    return reader.subscribe_all(typ)


def staged_inputs(partitions: dict[str, list[Path]]) -> ReplayInputs:
    return ReplayInputs(**{name: staged_stream(partitions.get(name, []), typ) for name, typ in STREAM_TYPES.items()})


@csp.node
def replay_clock(quotes: ts[EquityQuote], trades: ts[EquityTrade], nbbo_1s: ts[Nbbo1s],
                 option_quotes: ts[OptionQuote], kalshi_trades: ts[KalshiTrade], interval: dt.timedelta,
                 speed: float) -> ts[ReplayClock]:
    """Cumulative event counts, sampled on an engine-time grid (deterministic output)."""
    with csp.alarms():
        tick = csp.alarm(bool)
    with csp.state():
        s_counts = [0, 0, 0, 0, 0]
    with csp.start():
        csp.schedule_alarm(tick, interval, True)
    with csp.stop():
        pass
    if csp.ticked(quotes):
        s_counts[0] += 1
    if csp.ticked(trades):
        s_counts[1] += 1
    if csp.ticked(nbbo_1s):
        s_counts[2] += 1
    if csp.ticked(option_quotes):
        s_counts[3] += 1
    if csp.ticked(kalshi_trades):
        s_counts[4] += 1
    if csp.ticked(tick):
        csp.schedule_alarm(tick, interval, True)
        return ReplayClock(time=csp.now(), state="running", speed=speed, quotes=s_counts[0], trades=s_counts[1],
                           nbbo_1s=s_counts[2], option_quotes=s_counts[3], kalshi_trades=s_counts[4])


@csp.node
def pace(quotes: ts[EquityQuote], trades: ts[EquityTrade], nbbo_1s: ts[Nbbo1s], option_quotes: ts[OptionQuote],
         kalshi_trades: ts[KalshiTrade], clock: ts[ReplayClock], speed: float, control: object):
    """Hold the engine so that event time advances ``speed`` times faster than wall time.

    Sleeps until ``wall_start + (now - sim_start) / speed``; time spent paused (see
    :class:`ReplayControl`) moves ``wall_start`` forward so the replay resumes where it
    stopped instead of racing to catch up.
    """
    with csp.state():
        s_wall_start = 0.0
        s_sim_start = None
    with csp.start():
        s_wall_start = _time.monotonic()
        s_sim_start = csp.now()
        if control is not None:
            control.set_state("running")
    if control is not None:
        s_wall_start += control.wait_while_paused()
    target = s_wall_start + (csp.now() - s_sim_start).total_seconds() / speed
    delay = target - _time.monotonic()
    if delay > 0:
        _time.sleep(delay)


@csp.node
def progress_bar(clock: ts[ReplayClock], bar: object, start_ns: int, wall_seconds: float):
    """Update a tqdm bar with simulated time (New York) and events per second."""
    with csp.state():
        s_last_wall = 0.0
        s_last_events = 0
        s_wall0 = 0.0
    with csp.start():
        s_wall0 = _time.monotonic()
        s_last_wall = s_wall0
    now = _time.monotonic()
    if now - s_last_wall >= wall_seconds:
        c = clock
        events = c.quotes + c.trades + c.nbbo_1s + c.option_quotes + c.kalshi_trades
        rate = (events - s_last_events) / (now - s_last_wall)
        elapsed_sim = (datetime_to_ns(c.time) - start_ns) / 1e9
        bar.n = min(int(elapsed_sim), bar.total) if bar.total else int(elapsed_sim)
        bar.set_postfix_str(
            f"{_ny(c.time)} ET  {events:,} events  {rate:,.0f} ev/s  {elapsed_sim / max(now - s_wall0, 1e-9):,.0f}x",
            refresh=False)
        bar.refresh()
        s_last_wall, s_last_events = now, events


def _ny(t: dt.datetime) -> str:
    from elecflow.calendar import to_new_york

    return to_new_york(t).strftime("%m-%d %H:%M:%S")


class AtomicParquetSink:
    """csp ParquetWriter wrapper: parts are written under ``<out>/.inprogress`` and renamed
    into ``<out>/<stream>/`` only when closed, so a killed run leaves only complete files.

    A new part starts every ``part_every`` of engine time, bounding what a crash can lose.
    """

    def __init__(self, out_dir: Path, stream: str, part_every: dt.timedelta):
        self.out_dir = Path(out_dir)
        self.stream = stream
        self.part_every = part_every
        self.final_dir = self.out_dir / stream
        self.tmp_dir = self.out_dir / ".inprogress" / stream
        self.final_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.parts: list[Path] = []

    def _visit(self, path: str) -> None:
        src = Path(path)
        dst = self.final_dir / src.name
        os.replace(src, dst)
        self.parts.append(dst)

    def publish(self, x) -> None:
        names = part_names(str(self.tmp_dir), self.part_every)
        writer = ParquetWriter(file_name=None, timestamp_column_name=None, filename_provider=names,
                               file_visitor=self._visit)
        writer.publish_struct(x)


@csp.node
def part_names(directory: str, every: dt.timedelta) -> ts[str]:
    """File names ``part-00000.parquet``, ``part-00001.parquet``... one per ``every``."""
    with csp.alarms():
        roll = csp.alarm(bool)
    with csp.state():
        s_index = 0
    with csp.start():
        csp.schedule_alarm(roll, dt.timedelta(0), True)
    if csp.ticked(roll):
        csp.schedule_alarm(roll, every, True)
        name = os.path.join(directory, f"part-{s_index:05d}.parquet")
        s_index += 1
        return name


def replay_graph(inputs: ReplayInputs, speed: float, control: ReplayControl | None, out_dir: str | None,
                 sinks: list, dashboard, progress, start_ns: int, clock_interval: dt.timedelta,
                 part_every: dt.timedelta) -> ts[ReplayClock]:
    """Wire one replay (call inside a csp graph): counters and clock, optional pacing, Parquet
    sinks (appended to ``sinks``), dashboard, progress bar. Returns the clock edge."""
    clock = replay_clock(inputs.quotes, inputs.trades, inputs.nbbo_1s, inputs.option_quotes, inputs.kalshi_trades,
                         clock_interval, speed)
    if speed > 0:
        pace(inputs.quotes, inputs.trades, inputs.nbbo_1s, inputs.option_quotes, inputs.kalshi_trades, clock, speed,
             control)
    if out_dir:
        for name in list(STREAM_TYPES) + ["replay_clock"]:
            edge = clock if name == "replay_clock" else getattr(inputs, name)
            sink = AtomicParquetSink(Path(out_dir), name, part_every)
            sinks.append(sink)
            sink.publish(edge)
    if dashboard is not None:
        from elecflow.graphs.dashboard import dashboard_graph

        dashboard_graph(dashboard, inputs.quotes, inputs.trades, inputs.kalshi_trades, clock)
    if progress is not None:
        progress_bar(clock, progress, start_ns, 0.25)
    return clock
