"""The dashboard nodes (csp side), and the page in a real headless Chromium.

The node tests feed ``publish_latest``/``publish_recent`` with ``csp.curve`` ticks and a
recording fake server. The browser test (marked ``browser``) loads the page from a live
DashboardServer while a realtime csp graph publishes, with Chromium cut off from every
host but 127.0.0.1; it skips when no Chromium is installed, unless
``ELECFLOW_REQUIRE_BROWSER=1``, in which case it fails.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from typing import Any

import csp
import pytest

from elecflow.adapters.control import ReplayControl
from elecflow.adapters.dashboard import DashboardServer
from elecflow.graphs import dashboard as gd
from elecflow.graphs.dashboard import (
    CLOCK_TABLE,
    KALSHI_TABLE,
    QUOTES_TABLE,
    TRADES_TABLE,
    clock_row,
    create_default_tables,
    dashboard_graph,
    epoch_ms,
    kalshi_row,
    publish_latest,
    publish_recent,
    quote_row,
    trade_row,
)
from elecflow.schema import EquityQuote, EquityTrade, KalshiTrade, ReplayClock

T0 = dt.datetime(2024, 11, 6, 1, 0)  # UTC; 2024-11-05 20:00 in New York (EST)
T0_MS = 1_730_854_800_000


class RecordingServer:
    """Fake DashboardServer: records every update call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []

    def update(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.calls.append((table, list(rows)))

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [row for name, rows in self.calls if name == table for row in rows]


def quote(seconds: float, symbol: str, bid: float, ask: float = math.nan, seq: int = 0) -> EquityQuote:
    ask = bid + 0.02 if math.isnan(ask) else ask
    return EquityQuote(
        time=T0 + dt.timedelta(seconds=seconds), symbol=symbol, bid_price=bid, ask_price=ask,
        bid_size=100.0, ask_size=200.0, bid_exchange=4, ask_exchange=11, sequence_number=seq,
    )


def ticks(structs: list[Any], spacing: dt.timedelta = dt.timedelta(hours=1)) -> list[tuple[dt.datetime, Any]]:
    """Curve ticks spaced by ``spacing`` of ENGINE time (an hour by default: engine time
    must not matter to the wall-clock throttle)."""
    return [(T0 + i * spacing, s) for i, s in enumerate(structs)]


class FakeClock:
    """Scripted ``time.monotonic``: returns the given readings in order, then the last."""

    def __init__(self, readings: list[float]) -> None:
        self.readings = list(readings)
        self.calls = 0

    def monotonic(self) -> float:
        self.calls += 1
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


def run_sim(node, *args, n_ticks: int) -> None:
    csp.run(node, *args, starttime=T0, endtime=T0 + (n_ticks + 1) * dt.timedelta(hours=1))


# --------------------------------------------------------------------------------------
# Row conversion
# --------------------------------------------------------------------------------------


def test_rows_convert_times_to_epoch_ms_and_derive_mid_and_spread() -> None:
    assert epoch_ms(T0) == T0_MS
    assert epoch_ms(T0.replace(tzinfo=dt.timezone.utc)) == T0_MS
    ny = dt.timezone(dt.timedelta(hours=-5))
    assert epoch_ms(dt.datetime(2024, 11, 5, 20, 0, 0, 123_000, tzinfo=ny)) == T0_MS + 123
    assert epoch_ms(None) is None

    row = quote_row(quote(0.5, "SPY", 100.0, 100.02))
    assert row["time"] == T0_MS + 500 and row["symbol"] == "SPY"
    assert row["mid"] == pytest.approx(100.01)
    assert row["spread_bps"] == pytest.approx(0.02 / 100.01 * 1e4)
    one_sided = quote_row(quote(0, "SPY", 0.0, 100.02))
    assert one_sided["mid"] is None and one_sided["spread_bps"] is None
    assert quote_row(quote(0, "SPY", math.nan, 1.0))["bid"] is None  # JSON has no NaN
    assert quote_row(EquityQuote(symbol="X"))["bid"] is None  # unset fields become null

    trade = EquityTrade(time=T0, symbol="SPY", price=576.0, size=100.0, exchange=4,
                        condition_mask=1 << 14, is_iso=True, correction=0, sequence_number=9,
                        trade_id="abc")
    assert trade_row(trade) == {
        "time": T0_MS, "symbol": "SPY", "price": 576.0, "size": 100.0, "exchange": 4,
        "is_iso": True, "condition_mask": 1 << 14, "correction": 0, "trade_id": "abc",
    }
    fill = KalshiTrade(time=T0, contract="PRES-2024-DJT", price=0.58, count=10, taker_side="yes", trade_id="")
    assert kalshi_row(fill) == {"time": T0_MS, "contract": "PRES-2024-DJT", "price": 0.58,
                                "count": 10, "taker_side": "yes", "trade_id": ""}
    clock = ReplayClock(time=T0, state="running", speed=20.0, quotes=1, trades=2, nbbo_1s=3,
                        option_quotes=4, kalshi_trades=5)
    # option_trades (the clock's sixth stream) was not set on this struct: null
    assert clock_row(clock) == {"key": "replay", "time": T0_MS, "state": "running", "speed": 20.0,
                                "quotes": 1, "trades": 2, "nbbo_1s": 3, "option_quotes": 4,
                                "kalshi_trades": 5, "option_trades": None}


# --------------------------------------------------------------------------------------
# Throttled nodes
# --------------------------------------------------------------------------------------


def test_publish_latest_keeps_the_newest_struct_per_key_and_converts_only_at_flush() -> None:
    server = RecordingServer()
    converted: list[str] = []

    def to_row(q: EquityQuote) -> dict[str, Any]:
        converted.append(q.symbol)
        return quote_row(q)

    structs = [quote(0, "A", 1.0, seq=1), quote(1, "B", 2.0, seq=2), quote(2, "A", 3.0, seq=3),
               quote(3, "C", 4.0, seq=4), quote(4, "B", 5.0, seq=5)]
    run_sim(publish_latest, server, QUOTES_TABLE, csp.curve(EquityQuote, ticks(structs)),
            "symbol", to_row, 3600.0, n_ticks=len(structs))
    # Throttle never reached: one flush, at stop, with the newest quote per symbol.
    assert [name for name, _ in server.calls] == [QUOTES_TABLE]
    rows = server.calls[0][1]
    assert {r["symbol"]: r["bid"] for r in rows} == {"A": 3.0, "B": 5.0, "C": 4.0}
    assert sorted(converted) == ["A", "B", "C"]  # no conversion for the superseded ticks


def test_publish_latest_throttles_on_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Readings: start, then one per tick. Engine ticks are an hour apart, which must not
    # cause flushes; the wall clock passes 0.25 s at the 3rd and 6th tick.
    clock = FakeClock([0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.61])
    monkeypatch.setattr(gd.time, "monotonic", clock.monotonic)
    server = RecordingServer()
    structs = [quote(0, "A", 1.0), quote(1, "B", 2.0), quote(2, "A", 3.0),
               quote(3, "A", 4.0), quote(4, "C", 5.0), quote(5, "C", 6.0), quote(6, "B", 7.0)]
    run_sim(publish_latest, server, QUOTES_TABLE, csp.curve(EquityQuote, ticks(structs)),
            "symbol", quote_row, 0.25, n_ticks=len(structs))
    got = [sorted((r["symbol"], r["bid"]) for r in rows) for _, rows in server.calls]
    assert got == [
        [("A", 3.0), ("B", 2.0)],  # tick 3 at 0.3 s
        [("A", 4.0), ("C", 6.0)],  # tick 6 at 0.6 s
        [("B", 7.0)],  # final flush at stop
    ]


def test_publish_latest_with_zero_throttle_sends_every_tick() -> None:
    server = RecordingServer()
    structs = [quote(0, "A", 1.0), quote(1, "A", 2.0), quote(2, "B", 3.0)]
    run_sim(publish_latest, server, QUOTES_TABLE, csp.curve(EquityQuote, ticks(structs)),
            "symbol", quote_row, 0.0, n_ticks=3)
    assert [[r["bid"] for r in rows] for _, rows in server.calls] == [[1.0], [2.0], [3.0]]


def test_publish_recent_keeps_a_bounded_window_of_the_newest_rows() -> None:
    server = RecordingServer()
    fills = [KalshiTrade(time=T0 + dt.timedelta(seconds=i), contract="C", price=0.5 + i / 100,
                         count=i, taker_side="yes", trade_id=str(i)) for i in range(5)]
    run_sim(publish_recent, server, KALSHI_TABLE, csp.curve(KalshiTrade, ticks(fills)),
            kalshi_row, 3600.0, 3, n_ticks=5)
    assert [[r["trade_id"] for r in rows] for _, rows in server.calls] == [["2", "3", "4"]]


def test_publish_recent_throttles_on_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock([10.0, 10.1, 10.3, 10.31, 10.4, 10.7])
    monkeypatch.setattr(gd.time, "monotonic", clock.monotonic)
    server = RecordingServer()
    fills = [KalshiTrade(time=T0, contract="C", price=0.5, count=i, taker_side="", trade_id=str(i))
             for i in range(5)]
    run_sim(publish_recent, server, KALSHI_TABLE, csp.curve(KalshiTrade, ticks(fills)),
            kalshi_row, 0.25, 100, n_ticks=5)
    assert [[r["trade_id"] for r in rows] for _, rows in server.calls] == [["0", "1"], ["2", "3", "4"]]


def test_realtime_idle_flush_publishes_the_tail_of_a_burst_before_stop() -> None:
    """In realtime mode a one-shot alarm flushes what the last tick left, so a quiet live
    feed still shows its newest rows without waiting for the next tick or the end."""
    server = RecordingServer()
    stamps: list[float] = []

    def to_row(q: EquityQuote) -> dict[str, Any]:
        stamps.append(time.monotonic())
        return quote_row(q)

    burst = [(dt.timedelta(milliseconds=ms), quote(0, s, b)) for ms, s, b in
             [(0, "A", 1.0), (20, "B", 2.0), (40, "A", 3.0)]]
    start = time.monotonic()
    csp.run(publish_latest, server, QUOTES_TABLE, csp.curve(EquityQuote, burst), "symbol", to_row,
            0.2, starttime=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
            endtime=dt.timedelta(seconds=1.0), realtime=True)
    assert len(server.calls) == 1
    assert sorted((r["symbol"], r["bid"]) for r in server.calls[0][1]) == [("A", 3.0), ("B", 2.0)]
    assert stamps[0] - start < 0.6  # flushed by the alarm near 0.2 s, not at stop (1.0 s)


def test_dashboard_graph_fills_the_default_tables() -> None:
    server = DashboardServer(port=0)  # not started: tables only
    create_default_tables(server)
    quotes = [quote(i, s, b) for i, (s, b) in enumerate([("SPY", 576.0), ("QQQ", 492.0), ("SPY", 576.5)])]
    trades = [EquityTrade(time=T0 + dt.timedelta(seconds=i), symbol="SPY", price=576.0 + i, size=100.0,
                          exchange=4, condition_mask=0, is_iso=False, correction=0,
                          sequence_number=i, trade_id=f"T{i}") for i in range(3)]
    fills = [KalshiTrade(time=T0, contract="PRES-2024-DJT", price=0.6, count=1, taker_side="yes", trade_id="k")]
    clocks = [ReplayClock(time=T0 + dt.timedelta(seconds=i), state="running", speed=20.0, quotes=i,
                          trades=i, nbbo_1s=0, option_quotes=0, kalshi_trades=0) for i in range(3)]
    csp.run(dashboard_graph, server, csp.curve(EquityQuote, ticks(quotes, dt.timedelta(seconds=1))),
            csp.curve(EquityTrade, ticks(trades, dt.timedelta(seconds=1))),
            csp.curve(KalshiTrade, ticks(fills)), csp.curve(ReplayClock, ticks(clocks, dt.timedelta(seconds=1))),
            starttime=T0, endtime=dt.timedelta(seconds=10))
    by_symbol = {r["symbol"]: r for r in server.snapshot(QUOTES_TABLE)}
    assert by_symbol["SPY"]["bid"] == 576.5 and by_symbol["QQQ"]["bid"] == 492.0
    assert by_symbol["SPY"]["time"] == T0_MS + 2000  # datetime column, epoch ms round trip
    assert [r["trade_id"] for r in server.snapshot(TRADES_TABLE)] == ["T0", "T1", "T2"]
    assert server.snapshot(KALSHI_TABLE)[0]["contract"] == "PRES-2024-DJT"
    clock_rows = server.snapshot(CLOCK_TABLE)
    assert len(clock_rows) == 1 and clock_rows[0]["quotes"] == 2  # indexed: one row, newest


# --------------------------------------------------------------------------------------
# The page in headless Chromium
# --------------------------------------------------------------------------------------

from browser_util import DEEP_TEXT  # noqa: E402


COUNT_CANVASES = """
(id => {
  let n = 0;
  const walk = (e) => {
    if (e.shadowRoot) walk(e.shadowRoot);
    for (const c of e.children) {
      if (c.tagName === "CANVAS" && c.width > 0 && c.height > 0) n++;
      walk(c);
    }
  };
  walk(document.getElementById(id));
  return n;
})
"""


def _chromium_or_skip() -> str:
    from browser_util import chromium_or_skip

    return chromium_or_skip()


@pytest.mark.browser
def test_page_shows_live_rows_offline_in_new_york_time(caplog: pytest.LogCaptureFixture) -> None:
    binary = _chromium_or_skip()
    from browser_util import Chromium, run_demo

    caplog.set_level(logging.WARNING, logger="elecflow.adapters.dashboard")
    control = ReplayControl()
    control.set_state("running")
    server = DashboardServer(port=0, control=control)
    create_default_tables(server)
    # A fixed row to check time zones: 01:30:00.123 UTC is 20:30:00.123 in New York; the
    # browser runs in Tokyo time, where it would read 10:30:00.123.
    server.update(QUOTES_TABLE, [{"symbol": "ZZTZ", "time": T0_MS + 30 * 60_000 + 123,
                                  "bid": 10.0, "ask": 10.02, "mid": 10.01}])
    url = server.start()
    origin = url.rstrip("/")
    runner = run_demo(server, speed=20.0)
    try:
        with Chromium(binary=binary, timezone="Asia/Tokyo") as browser:
            browser.navigate(url)
            browser.wait_for("window.elecflowDashboard?.ready", timeout=40)
            status = browser.wait_for(
                "(s => s.rows.quotes >= 11 && s.rows.trades > 0 && s.rows.kalshi > 0"
                " && s.rows.replay_clock === 1 && s)(window.elecflowDashboard)", timeout=15)
            assert status["errors"] == []
            assert status["connected"] is True

            # Rows render in the grids, times in New York whatever the browser's zone.
            quotes_text = browser.wait_for(f"({DEEP_TEXT})('viewer-quotes').includes('ZZTZ') && "
                                           f"({DEEP_TEXT})('viewer-quotes')", timeout=10)
            assert "SPY" in quotes_text and "20:30:00.123" in quotes_text
            assert "10:30:00.123" not in quotes_text and "01:30:00.123" not in quotes_text
            assert "ET" in browser.evaluate("window.elecflowDashboard.engineTimeText") or \
                "EST" in browser.evaluate("window.elecflowDashboard.engineTimeText")
            trades_text = browser.evaluate(f"({DEEP_TEXT})('viewer-trades')")
            assert re.search(r"T\d{7}", trades_text)  # demo trade ids
            # The Kalshi chart drew (canvas) and the legend names the contracts.
            assert browser.wait_for(f"({COUNT_CANVASES})('viewer-kalshi-chart')", timeout=10) > 0
            legend = browser.wait_for("document.getElementById('kalshi-legend').textContent", timeout=10)
            assert "PRES-2024-DJT" in legend and "PRES-2024-KH" in legend

            # Rows keep updating while the csp graph publishes.
            before = browser.evaluate("JSON.stringify([window.elecflowDashboard.updates, "
                                      "window.elecflowDashboard.engineTimeText])")
            newest_trade = max(re.findall(r"T\d{7}", trades_text))
            time.sleep(1.5)
            after = browser.evaluate("JSON.stringify([window.elecflowDashboard.updates, "
                                     "window.elecflowDashboard.engineTimeText])")
            assert after != before
            # ... and the grid shows them: a newer trade on top (newest first).
            assert browser.wait_for(
                f"({DEEP_TEXT})('viewer-trades').match(/T\\d{{7}}/)?.[0] > {newest_trade!r}", timeout=5)

            # Pause / Resume from the banner reach the ReplayControl, and the banner follows.
            browser.evaluate("document.getElementById('pause').click()")
            deadline = time.monotonic() + 5
            while not control.paused and time.monotonic() < deadline:
                time.sleep(0.05)
            assert control.paused
            assert browser.wait_for("document.getElementById('replay-state').dataset.state === 'paused'", 5)
            browser.evaluate("document.getElementById('resume').click()")
            assert browser.wait_for("document.getElementById('replay-state').dataset.state === 'running'", 5)
            assert not control.paused

            # Nothing left 127.0.0.1; nothing failed in the page.
            allowed = (f"{origin}/", f"ws://127.0.0.1:{server.port}/", "data:", f"blob:{origin}/")
            urls = browser.requested_urls()
            assert urls and all(u.startswith(allowed) for u in urls), [
                u[:100] for u in urls if not u.startswith(allowed)]
            assert browser.event_list("Runtime.exceptionThrown") == []
            assert browser.evaluate("window.elecflowDashboard.errors") == []
    finally:
        runner.stop_engine()
        runner.join()
        server.stop()
    # The viewer needed no request that the read-only filter refuses.
    assert not [r for r in caplog.records if "refused" in r.getMessage()]
