"""The real ``elecflow replay`` CLI, paced, with its dashboard in headless Chromium.

Starts ``python -m elecflow.cli replay --mode paced`` as a subprocess over a short window of
the embedded synthetic Election Day (generated into ./replay_data on first use; the run
reuses it, so the subprocess runs from the repository root), reads the dashboard URL from
its stdout and checks, in a loopback-only Chromium: rows in the grids, live updates while
the replay runs, the state banner, Pause/Resume through ``POST /api/replay`` (the engine
clock stands still while paused), the finished state, that the page's last clock row equals
the run's reconciled counts, and that nothing was requested from a host other than
127.0.0.1.

Like ``test_dashboard_browser.py``: skipped without Chromium unless
``ELECFLOW_REQUIRE_BROWSER=1``, which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elecflow.universe import ETFS, STOCKS

ROOT = Path(__file__).resolve().parents[1]
NEW_YORK = dt.timezone(dt.timedelta(hours=-5))  # EST on 2024-11-05

#: 09:30-09:50 New York at 60x: 20 s of wall time once the replay runs.
WINDOW = ("09:30", "09:50")
SPEED = 60.0
WINDOW_START_MS = int(dt.datetime(2024, 11, 5, 9, 30, tzinfo=NEW_YORK).timestamp() * 1000)
WINDOW_END_MS = int(dt.datetime(2024, 11, 5, 9, 50, tzinfo=NEW_YORK).timestamp() * 1000)

from browser_util import DEEP_TEXT  # noqa: E402


#: Rows the datagrid actually rendered (regular-table body rows with text).
RENDERED_ROWS = """
(id => {
  let n = 0;
  const walk = (e) => {
    if (e.shadowRoot) walk(e.shadowRoot);
    for (const c of e.children) {
      if (c.tagName === "REGULAR-TABLE") {
        n += [...c.querySelectorAll("tbody tr")].filter((r) => r.textContent.trim()).length;
      } else {
        walk(c);
      }
    }
  };
  walk(document.getElementById(id));
  return n;
})
"""

CLOCK = "JSON.stringify(window.elecflowDashboard.clock)"
BANNER = "document.getElementById('replay-state').dataset.state"


def _chromium_or_skip() -> str:
    from browser_util import chromium_or_skip

    return chromium_or_skip()


# --------------------------------------------------------------------------------------
# The CLI subprocess
# --------------------------------------------------------------------------------------


# On a machine without ./replay_data the CLI first generates the day and the five normal days
# its factor baseline is estimated on (about 1 minute alone, several under a loaded CI run).
URL_TIMEOUT = 900
FIRST_ROWS_TIMEOUT = 300


class ReplayProcess:
    """``elecflow replay`` in a subprocess; its output is drained by a thread."""

    def __init__(self, out_dir: Path, *extra: str) -> None:
        self.lines: list[str] = []
        self._url_seen = threading.Event()
        self.url: str | None = None
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "elecflow.cli", "replay", "--mode", "paced", "--speed", str(SPEED),
               "--start", WINDOW[0], "--end", WINDOW[1], "--port", "0", "--out", str(out_dir),
               "--no-progress", *extra]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, name="replay-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            m = re.search(r"elecflow dashboard: (http://127\.0\.0\.1:\d+/)", line)
            if m and self.url is None:
                self.url = m.group(1)
                self._url_seen.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_url(self, timeout: float) -> str:
        # Generous: on a machine without ./replay_data the CLI first generates the day.
        deadline = time.monotonic() + timeout
        while not self._url_seen.wait(0.1):
            if self.proc.poll() is not None:
                raise AssertionError(f"elecflow exited with {self.proc.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no dashboard URL after {timeout} s:\n{self.output}")
        assert self.url is not None
        return self.url

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # after the replay: the CLI's SIGTERM handler stops the server
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)


@contextlib.contextmanager
def replay_process(out_dir: Path, *extra: str) -> Iterator[ReplayProcess]:
    replay = ReplayProcess(out_dir, *extra)
    try:
        yield replay
    finally:
        replay.stop()


# --------------------------------------------------------------------------------------
# HTTP and a read-only perspective probe (no proxy: everything is on 127.0.0.1)
# --------------------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def api_get(url: str) -> dict[str, Any]:
    with _OPENER.open(url + "api/replay", timeout=5) as response:
        return json.loads(response.read())


def api_post(url: str, action: str) -> dict[str, Any]:
    request = urllib.request.Request(url + "api/replay", data=json.dumps({"action": action}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with _OPENER.open(request, timeout=5) as response:
        return json.loads(response.read())


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def table_size(url: str, name: str) -> int:
    """Rows in a dashboard table, read over the websocket with perspective's own client
    (``table_size`` only: no view is created)."""
    import perspective
    import tornado.websocket

    async def probe() -> int:
        ws = await tornado.websocket.websocket_connect(url.replace("http://", "ws://") + "websocket")

        async def send(msg: bytes) -> None:
            await ws.write_message(bytes(msg), binary=True)

        client = perspective.AsyncClient(send)

        async def pump() -> None:
            while (msg := await ws.read_message()) is not None:
                await client.handle_response(msg)

        reader = asyncio.ensure_future(pump())
        try:
            table = await client.open_table(name)
            return await table.size()
        finally:
            ws.close()
            reader.cancel()

    return asyncio.run(asyncio.wait_for(probe(), 5))


def clock(browser: Any) -> dict[str, Any]:
    return json.loads(browser.evaluate(CLOCK) or "null") or {}


# --------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------


@pytest.mark.browser
def test_paced_cli_replay_in_the_dashboard(tmp_path: Path) -> None:
    binary = _chromium_or_skip()
    from browser_util import Chromium

    out_dir = tmp_path / "out"
    with replay_process(out_dir) as replay:
        url = replay.wait_for_url(timeout=URL_TIMEOUT)
        t0 = time.monotonic()  # a fresh checkout first generates the day: not part of the bound below
        origin = url.rstrip("/")
        port = int(origin.rsplit(":", 1)[1])

        # Open the page as soon as the URL is printed, as a person would.
        with Chromium(binary=binary, timezone="Asia/Tokyo") as browser:
            browser.navigate(url)
            browser.wait_for("window.elecflowDashboard?.ready", timeout=30)

            # Rows: one per symbol in the quotes table (the viewer's own view) and rendered
            # rows in the grid; times in New York although the browser runs in Tokyo.
            # the first rows wait for the replay's preparation (validation, staging, and on a
            # fresh checkout the factor baseline's statistics), up to a few minutes under CI load
            browser.wait_for("window.elecflowDashboard.rows.quotes === 40 && "
                             "window.elecflowDashboard.rows.replay_clock === 1", timeout=FIRST_ROWS_TIMEOUT)
            symbols = browser.evaluate(
                "(async () => { const v = await document.getElementById('viewer-quotes').getView();"
                " return [await v.num_rows(), (await v.to_columns()).symbol]; })()")
            assert symbols[0] == 40
            assert sorted(symbols[1]) == sorted(list(STOCKS) + list(ETFS))
            # the condition inside the page: wait_for returns the first truthy value, and one rendered
            # row is truthy while the grid is still filling
            assert browser.wait_for(f"({RENDERED_ROWS})('viewer-quotes') >= 10", timeout=60)
            quotes_text = browser.evaluate(f"({DEEP_TEXT})('viewer-quotes')")
            assert "AAPL" in quotes_text and re.search(r"11/05, 09:[345]\d:\d\d\.\d{3}", quotes_text)
            # the condition inside the page: wait_for returns the first truthy value, and one rendered
            # row is truthy while the grid is still filling
            assert browser.wait_for(f"({RENDERED_ROWS})('viewer-trades') >= 10", timeout=60)
            assert browser.evaluate("window.elecflowDashboard.rows.kalshi") > 0
            # the banner polls /api/replay once a second
            browser.wait_for(f"({BANNER}) === 'running'", timeout=5)

            # Live: engine time, counts and the grid's contents move while the replay runs.
            before, text_before = clock(browser), quotes_text
            time.sleep(3.0)
            after = clock(browser)
            assert after["time"] - before["time"] >= 60_000, (before, after)  # >= 1 engine minute
            assert after["trades"] > before["trades"] and after["quotes"] > before["quotes"]
            assert browser.evaluate(f"({DEEP_TEXT})('viewer-quotes')") != text_before
            assert browser.evaluate(BANNER) == "running"

            # Pause: the API and the banner say paused and the engine clock stands still.
            paused = api_post(url, "pause")
            assert paused["state"] == "paused", f"replay already over? {paused}"
            browser.wait_for(f"{BANNER} === 'paused'", timeout=5)
            time.sleep(0.5)  # let flushes made just before the pause arrive
            frozen = browser.evaluate(f"[{CLOCK}, ({DEEP_TEXT})('viewer-trades')]")
            time.sleep(2.0)
            assert browser.evaluate(f"[{CLOCK}, ({DEEP_TEXT})('viewer-trades')]") == frozen
            assert api_get(url)["state"] == "paused"

            # Resume: the clock moves on.
            assert api_post(url, "resume")["state"] == "running"
            paused_ms = json.loads(frozen[0])["time"]
            browser.wait_for(f"window.elecflowDashboard.clock.time > {paused_ms}", timeout=5)
            browser.wait_for(f"{BANNER} === 'running'", timeout=5)

            # Finished: banner, API, and the tables end in the graph's final state.
            browser.wait_for(f"{BANNER} === 'finished'", timeout=45)
            assert api_get(url) == {"state": "finished", "paused": False, "controllable": True}
            summary = json.loads((out_dir / "run_summary.json").read_text())
            assert summary["reconciles"] is True
            final = browser.wait_for(
                f"(c => c && c.time === {WINDOW_END_MS} && c)(window.elecflowDashboard.clock)", timeout=5)
            assert {k: final[k] for k in summary["replayed"]} == summary["replayed"]
            assert "09:50:00" in browser.evaluate("window.elecflowDashboard.engineTimeText")
            assert browser.evaluate("window.elecflowDashboard.connected") is True

            # Nothing left 127.0.0.1; nothing failed in the page.
            allowed = (f"{origin}/", f"ws://127.0.0.1:{port}/", "data:", f"blob:{origin}/")
            urls = browser.requested_urls()
            assert urls and all(u.startswith(allowed) for u in urls), [
                u[:100] for u in urls if not u.startswith(allowed)]
            assert browser.event_list("Runtime.exceptionThrown") == []
            assert browser.evaluate("window.elecflowDashboard.errors") == []

        # Without --exit-when-done the server outlives the replay.
        assert replay.proc.poll() is None
        assert "replay finished; the dashboard stays up" in replay.output
        assert "counts reconcile" in replay.output
    assert replay.proc.returncode is not None  # stopped by the context manager
    assert time.monotonic() - t0 < 90


@pytest.mark.browser
def test_page_opened_before_the_first_kalshi_fill(tmp_path: Path) -> None:
    """Open the page while the Kalshi table is still empty. perspective-python 5.6.1 hangs in
    Table.update when the first rows reach an empty table that already has two pivoted views
    (the page's Kalshi chart is split by contract, its legend grouped by contract), freezing
    the replay and the server; the page therefore makes pivoted views only once rows exist."""
    binary = _chromium_or_skip()
    from browser_util import Chromium

    with replay_process(tmp_path / "out", "--exit-when-done") as replay:
        url = replay.wait_for_url(timeout=URL_TIMEOUT)
        # Hold the engine before its first event, so the Kalshi table is empty for sure.
        api_post(url, "pause")
        with Chromium(binary=binary) as browser:
            browser.navigate(url)
            browser.wait_for("window.elecflowDashboard?.ready", timeout=30)
            wait_until(lambda: api_get(url)["state"] == "paused", 60, "the replay to start (paused)")
            assert browser.evaluate("window.elecflowDashboard.rows.kalshi") == 0
            api_post(url, "resume")
            # Two engine minutes take 2 s at 60x; allow five times that.
            browser.wait_for(f"window.elecflowDashboard.clock?.time > {WINDOW_START_MS + 120_000}", timeout=FIRST_ROWS_TIMEOUT)
            assert api_get(url)["state"] == "running"
            # the deferred chart appears once the first fills are in
            browser.wait_for("(async () => { const v = document.getElementById('viewer-kalshi-chart');"
                             " try { return (await (await v.getView()).num_rows()) > 0; }"
                             " catch (e) { return false; } })()", timeout=20)
