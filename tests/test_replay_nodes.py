"""Single-node tests of the replay graph, fed with csp.curve ticks."""

from __future__ import annotations

import datetime as dt
import threading
import time

import csp
import pyarrow.parquet as pq
import pytest

from elecflow.adapters.control import ReplayControl
from elecflow.graphs.replay import (
    AtomicParquetSink,
    ReplayInputs,
    pace,
    part_names,
    replay_clock,
)
from elecflow.schema import EquityQuote, EquityTrade, KalshiTrade, Nbbo1s, OptionQuote, ReplayClock

T0 = dt.datetime(2024, 11, 5, 14, 30)


def _q(seconds: float) -> tuple[dt.datetime, EquityQuote]:
    t = T0 + dt.timedelta(seconds=seconds)
    return t, EquityQuote(time=t, symbol="SPY", bid_price=575.0, ask_price=575.01, bid_size=100.0, ask_size=100.0,
                          bid_exchange=1, ask_exchange=2, sequence_number=int(seconds * 10))


def _k(seconds: float) -> tuple[dt.datetime, KalshiTrade]:
    t = T0 + dt.timedelta(seconds=seconds)
    return t, KalshiTrade(time=t, contract="PRES-2024-DJT", price=0.58, count=3, taker_side="", trade_id="")


def _inputs(quotes, kalshi) -> ReplayInputs:
    return ReplayInputs(quotes=csp.curve(EquityQuote, quotes), trades=csp.null_ts(EquityTrade),
                        nbbo_1s=csp.null_ts(Nbbo1s), option_quotes=csp.null_ts(OptionQuote),
                        kalshi_trades=csp.curve(KalshiTrade, kalshi))


def test_replay_clock_counts_on_a_grid_and_at_the_end():
    @csp.graph
    def g():
        clock = replay_clock(_inputs([_q(0.1), _q(0.2), _q(1.5), _q(2.7)], [_k(1.1)]), dt.timedelta(seconds=1), 60.0)
        csp.add_graph_output("clock", clock)

    out = csp.run(g, starttime=T0, endtime=T0 + dt.timedelta(seconds=2.8))["clock"]
    rows = [(t, c.quotes, c.kalshi_trades, c.trades, c.speed, c.state) for t, c in out]
    assert rows == [
        (T0 + dt.timedelta(seconds=1), 2, 0, 0, 60.0, "running"),
        (T0 + dt.timedelta(seconds=2), 3, 1, 0, 60.0, "running"),
        (T0 + dt.timedelta(seconds=2.8), 4, 1, 0, 60.0, "running"),  # the tail after the last grid tick
    ]


def test_part_names_roll_on_engine_time():
    out = csp.run(part_names, "/x", dt.timedelta(minutes=30), starttime=T0,
                  endtime=T0 + dt.timedelta(minutes=70))[0]
    assert out == [(T0, "/x/part-00000.parquet"), (T0 + dt.timedelta(minutes=30), "/x/part-00001.parquet"),
                   (T0 + dt.timedelta(minutes=60), "/x/part-00002.parquet")]


def _run_paced(speed: float, control: ReplayControl | None, seconds: float) -> float:
    ticks = [_q(s) for s in (0.0, seconds / 2, seconds)]

    @csp.graph
    def g():
        inputs = _inputs(ticks, [])
        clock = replay_clock(inputs, dt.timedelta(seconds=1), speed)
        pace(inputs.quotes, inputs.trades, inputs.nbbo_1s, inputs.option_quotes, inputs.kalshi_trades, clock, speed,
             control)

    start = time.monotonic()
    csp.run(g, starttime=T0, endtime=T0 + dt.timedelta(seconds=seconds))
    return time.monotonic() - start


def test_pace_never_runs_ahead_of_n_times_real_time():
    # 4 s of event time at 20x must take at least 0.2 s of wall time (sleep-based lower bound;
    # an upper bound would be a timing assertion on a shared machine, so there is none)
    assert _run_paced(20.0, None, 4.0) >= 0.2 * 0.98


def test_pause_holds_the_engine_and_does_not_race_to_catch_up():
    control = ReplayControl()
    control.pause()
    # timed from the moment the pause starts, not from csp.run: on a loaded machine building
    # the graph can eat into the pause (measured: a run 1 ms short of the bound under load)
    paused_at = time.monotonic()
    threading.Timer(0.5, control.resume).start()
    _run_paced(20.0, control, 4.0)
    elapsed = time.monotonic() - paused_at
    assert elapsed >= 0.5 + 0.2 * 0.98
    assert control.state == "running"


def test_replay_control_states():
    c = ReplayControl()
    assert c.state == "starting"
    c.set_state("running")
    c.pause()
    assert c.state == "paused" and c.paused
    c.resume()
    assert c.state == "running"
    c.pause()
    c.set_state("finished")  # finishing releases a paused engine
    assert c.state == "finished" and not c.paused
    c.pause()
    assert not c.paused  # a finished replay cannot be paused
    with pytest.raises(ValueError):
        c.set_state("exploded")


def test_atomic_sink_moves_complete_parts_into_place(tmp_path):
    sinks = []

    @csp.graph
    def g():
        clock = replay_clock(_inputs([_q(s) for s in range(0, 150, 7)], []), dt.timedelta(seconds=10), 0.0)
        sink = AtomicParquetSink(tmp_path, "replay_clock", dt.timedelta(minutes=1))
        sinks.append(sink)
        sink.publish(clock)

    csp.run(g, starttime=T0, endtime=T0 + dt.timedelta(seconds=150))
    parts = sorted((tmp_path / "replay_clock").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert list((tmp_path / ".inprogress" / "replay_clock").iterdir()) == []
    table = pq.read_table(tmp_path / "replay_clock")
    assert table.num_rows == 15  # grid rows at 10, 20, ..., 150 s; the end-time row coincides with the last
    assert table.column("quotes").to_pylist()[-1] == 22
    assert set(table.schema.names) >= set(ReplayClock.metadata())


def test_a_reused_out_directory_keeps_no_stale_outputs(tmp_path):
    """What an earlier replay wrote (streams its summary lists, the canonical streams, the run's
    files) is removed before a new replay writes; anything else in the directory stays."""
    import json

    from elecflow.graphs.run import clear_previous_outputs

    for name in ("quotes", "replay_clock", "price_discovery", "bars_1m", "my_notes"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "part-00000.parquet").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("mine")
    (tmp_path / "ingest_report.json").write_text("{}")
    outputs = {"quotes": [], "price_discovery": [], "bars_1m": [], "..": [], "/etc": []}
    (tmp_path / "run_summary.json").write_text(json.dumps({"outputs": outputs}))

    removed = clear_previous_outputs(tmp_path)

    assert sorted(removed) == ["bars_1m", "ingest_report.json", "price_discovery", "quotes", "replay_clock",
                               "run_summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "my_notes"]
    # an unreadable summary still clears the fixed names and removes itself; a run killed before
    # its summary is known from the register its sinks append to
    (tmp_path / "trades").mkdir()
    (tmp_path / "run_summary.json").write_text("not json")
    sink = AtomicParquetSink(tmp_path, "lead_lag", dt.timedelta(minutes=1))
    assert sink.final_dir.is_dir()
    assert sorted(clear_previous_outputs(tmp_path)) == ["lead_lag", "run_summary.json", "trades"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".inprogress", "keep.txt", "my_notes"]
