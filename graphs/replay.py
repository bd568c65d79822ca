"""The replay graph: canonical event files -> csp structs -> clock, pacing, sinks, dashboard.

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
from csp.adapters.parquet import ParquetOutputConfig, ParquetReader, ParquetWriter

from elecflow.adapters.control import ReplayControl
from elecflow.calendar import to_new_york
from elecflow.schema import EquityQuote, EquityTrade, KalshiTrade, Nbbo1s, OptionQuote, OptionTrade, ReplayClock

STREAM_TYPES = {
    "quotes": EquityQuote,
    "trades": EquityTrade,
    "nbbo_1s": Nbbo1s,
    "option_quotes": OptionQuote,
    "kalshi_trades": KalshiTrade,
    "option_trades": OptionTrade,
}

EPOCH = dt.datetime(1970, 1, 1)


def ns_to_datetime(ns: int) -> dt.datetime:
    """Epoch ns -> naive UTC datetime as csp uses (microsecond resolution)."""
    return EPOCH + dt.timedelta(microseconds=ns // 1000)


def next_grid_time(now: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """The first multiple of ``step`` (on the UTC epoch grid) strictly after ``now``: where a
    node's engine-time cadence (1 s, 1 min...) starts, so its ticks land on whole seconds or
    minutes whatever the replay's start time."""
    step_ns = int(step.total_seconds() * 1e9)
    return ns_to_datetime((datetime_to_ns(now) // step_ns + 1) * step_ns)


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
    # optional, so inputs built before option trades existed (tests, live adapters) stay valid:
    # None is an edge that never ticks
    option_trades: ts[OptionTrade] = None


def canonical_stream(files: list[Path], typ: type):
    """A ``ts[typ]`` read from time-ordered canonical Parquet files by csp's native reader.

    csp builds the structs in C++ with no Python per event. (Its in-memory-table mode was
    measured to retain memory in proportion to the rows read, so we hand it files.)
    """
    if not files:
        return csp.null_ts(typ)
    reader = ParquetReader([str(f) for f in files], time_column="time")
    return reader.subscribe_all(typ)


def canonical_inputs(files: dict[str, list[Path]]) -> ReplayInputs:
    """The replay's source edges from the canonical event files of each stream."""
    return ReplayInputs(**{name: canonical_stream(files.get(name, []), typ) for name, typ in STREAM_TYPES.items()})


@csp.node
def _clock_row(tick: ts[bool], quotes: ts[int], trades: ts[int], nbbo_1s: ts[int], option_quotes: ts[int],
               kalshi_trades: ts[int], option_trades: ts[int], speed: float) -> ts[ReplayClock]:
    with csp.alarms():
        final = csp.alarm(bool)  # one last row at the end time, so the tail after the grid counts
    with csp.start():
        csp.schedule_alarm(final, csp.engine_end_time(), True)
    if csp.ticked(tick) or csp.ticked(final):
        return ReplayClock(time=csp.now(), state="running", speed=speed,
                           quotes=quotes if csp.valid(quotes) else 0,
                           trades=trades if csp.valid(trades) else 0,
                           nbbo_1s=nbbo_1s if csp.valid(nbbo_1s) else 0,
                           option_quotes=option_quotes if csp.valid(option_quotes) else 0,
                           kalshi_trades=kalshi_trades if csp.valid(kalshi_trades) else 0,
                           option_trades=option_trades if csp.valid(option_trades) else 0)


def replay_clock(inputs: "ReplayInputs", interval: dt.timedelta, speed: float) -> ts[ReplayClock]:
    """Cumulative event counts per stream, sampled on an engine-time grid (deterministic).

    Counting runs in csp's C++ ``count`` node; Python only builds one struct per interval.
    """
    tick = csp.timer(interval, True)
    counts = {name: csp.count(_edge(inputs, name)) for name in STREAM_TYPES}
    return _clock_row(tick, **counts, speed=speed)


def _edge(inputs: "ReplayInputs", name: str):
    """A stream of the inputs; an optional one left as None is an edge that never ticks."""
    edge = getattr(inputs, name)
    return csp.null_ts(STREAM_TYPES[name]) if edge is None else edge


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
        events = c.quotes + c.trades + c.nbbo_1s + c.option_quotes + c.kalshi_trades + getattr(c, "option_trades", 0)
        rate = (events - s_last_events) / (now - s_last_wall)
        elapsed_sim = (datetime_to_ns(c.time) - start_ns) / 1e9
        bar.n = min(int(elapsed_sim), bar.total) if bar.total else int(elapsed_sim)
        bar.set_description_str(
            f"replay {to_new_york(c.time):%m-%d %H:%M:%S} ET | {events:,} events | {rate:,.0f} ev/s | "
            f"{elapsed_sim / max(now - s_wall0, 1e-9):,.0f}x real time", refresh=False)
        bar.refresh()
        s_last_wall, s_last_events = now, events


STREAM_REGISTER = ".streams"  # in an output directory: one stream name per line


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
        # the directory's register of stream directories written into it, kept even when the run
        # is killed before its summary: the next replay into it clears them (graphs/run.py)
        with open(self.out_dir / STREAM_REGISTER, "a") as register:
            register.write(stream + "\n")

    def _visit(self, path: str) -> None:
        src = Path(path)
        dst = self.final_dir / src.name
        os.replace(src, dst)
        self.parts.append(dst)

    def publish(self, x) -> None:
        names = part_names(str(self.tmp_dir), self.part_every)
        # snappy without dictionary pages: measured 15-20% faster to write than csp's default
        # (dictionary on) for these high-cardinality numeric columns, files ~10% larger
        config = ParquetOutputConfig(compression="snappy", write_dictionary=False)
        writer = ParquetWriter(file_name=None, timestamp_column_name=None, config=config, filename_provider=names,
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
    clock = replay_clock(inputs, clock_interval, speed)
    if speed > 0:
        # option trades reach the pacer through the clock (a row every engine second): at most
        # one engine second early, and the pacer's signature stays the one live feeds use
        pace(inputs.quotes, inputs.trades, inputs.nbbo_1s, inputs.option_quotes, inputs.kalshi_trades, clock, speed,
             control)
    if out_dir:
        # the replayed events themselves are already on disk (they are the graph's input files);
        # computed streams are written from the graph
        sink = AtomicParquetSink(Path(out_dir), "replay_clock", part_every)
        sinks.append(sink)
        sink.publish(clock)
    if dashboard is not None:
        from elecflow.graphs.dashboard import dashboard_graph

        dashboard_graph(dashboard, inputs.quotes, inputs.trades, inputs.kalshi_trades, clock)
    if progress is not None:
        progress_bar(clock, progress, start_ns, 0.25)
    return clock
