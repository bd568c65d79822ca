"""Headless Chromium over the DevTools protocol, a demo feed, and the dashboard screenshot.

No playwright: Chromium is started with ``--remote-debugging-port=0`` and driven over its
DevTools websocket with tornado's websocket client. Chromium's own network is cut down to
loopback: every other host resolves to nothing and any proxied request goes to a dead
port, so a page that tried a CDN would fail visibly instead of silently working.

Reusable entry points:

- :func:`capture_screenshot(url, path, wait_seconds)` -- load a dashboard URL, wait until
  the page reports ready plus ``wait_seconds``, save a PNG.
- ``python tests/browser_util.py [docs/img/dashboard.png]`` -- start a DashboardServer,
  feed it plausible synthetic quotes/trades/Kalshi fills from a realtime csp graph, and
  take the screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import tornado.websocket

__all__ = [
    "CHROMIUM_FLAGS",
    "Chromium",
    "capture_screenshot",
    "find_chromium",
    "demo_feed",
    "run_demo",
]

#: Flags from the project brief plus the loopback-only network rules.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    # Nothing but loopback: unresolvable names everywhere else, and a dead proxy for
    # anything that gets past that (loopback bypasses proxies implicitly).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--proxy-server=http://127.0.0.1:9",
)

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """``$ELECFLOW_CHROMIUM``, ``/usr/bin/chromium``, or the first Chromium on PATH."""
    explicit = os.environ.get("ELECFLOW_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_or_skip() -> str:
    """The Chromium binary, or skip the calling test; with ``ELECFLOW_REQUIRE_BROWSER=1`` (CI)
    a missing browser fails the test instead."""
    import pytest

    binary = find_chromium()
    if binary is None:
        reason = ("no Chromium binary found (looked at $ELECFLOW_CHROMIUM, /usr/bin/chromium and "
                  "chromium/google-chrome on PATH); `apt-get install chromium` to run this test")
        if os.environ.get("ELECFLOW_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " -- and ELECFLOW_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    return binary


def _no_proxy_get(url: str, timeout: float = 5.0) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


class Chromium:
    """One headless Chromium with one page, driven synchronously over DevTools.

    >>> with Chromium() as browser:
    ...     browser.navigate("http://127.0.0.1:8080/")
    ...     browser.evaluate("document.title")
    """

    def __init__(
        self,
        binary: str | None = None,
        width: int = 1600,
        height: int = 1000,
        timezone: str | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise FileNotFoundError("no Chromium binary found (set ELECFLOW_CHROMIUM)")
        self.width, self.height, self.timezone = width, height, timezone
        self.startup_timeout = startup_timeout
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._events_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ws: tornado.websocket.WebSocketClientConnection | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> "Chromium":
        try:
            self._launch()
            self._connect()
            self._setup_page()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _launch(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="elecflow-chromium-")
        args = [
            self.binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self._profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        env = dict(os.environ)
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
            env.pop(var, None)
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if port_file.exists():
                lines = port_file.read_text().split()
                if len(lines) >= 1 and lines[0].isdigit():
                    self.devtools_port = int(lines[0])
                    break
            if self._proc.poll() is not None:
                raise RuntimeError(f"Chromium exited at start with code {self._proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not open its DevTools port")
            time.sleep(0.05)

    def _connect(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        page_ws = None
        while page_ws is None:
            try:
                targets = json.loads(_no_proxy_get(f"http://127.0.0.1:{self.devtools_port}/json/list"))
                page_ws = next(
                    (t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None
                )
            except OSError:
                pass
            if page_ws is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("Chromium has no page target")
                time.sleep(0.05)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cdp", daemon=True)
        self._thread.start()
        self._run(self._open(page_ws), timeout=self.startup_timeout)

    async def _open(self, url: str) -> None:
        self._ws = await tornado.websocket.websocket_connect(url, max_message_size=512 << 20)
        asyncio.ensure_future(self._reader())

    async def _reader(self) -> None:
        assert self._ws is not None
        while True:
            raw = await self._ws.read_message()
            if raw is None:
                for fut in self._pending.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError("DevTools connection closed"))
                return
            msg = json.loads(raw)
            if "id" in msg:
                fut = self._pending.pop(msg["id"], None)
                if fut is not None and not fut.done():
                    if "error" in msg:
                        fut.set_exception(RuntimeError(f"DevTools error: {msg['error']}"))
                    else:
                        fut.set_result(msg.get("result", {}))
            else:
                with self._events_lock:
                    self.events.append((msg.get("method", ""), msg.get("params", {})))

    def _setup_page(self) -> None:
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        if self.timezone:
            self.call("Emulation.setTimezoneOverride", {"timezoneId": self.timezone})

    def close(self) -> None:
        if self._loop is not None:
            if self._ws is not None:
                self._loop.call_soon_threadsafe(self._ws.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(5)
            self._loop = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    # -- protocol ----------------------------------------------------------------------

    def _run(self, coro: Any, timeout: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        assert self._ws is not None
        self._next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = fut
        await self._ws.write_message(json.dumps({"id": self._next_id, "method": method, "params": params}))
        return await fut

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        """Send one DevTools command and return its ``result``."""
        return self._run(self._call(method, params or {}), timeout + 1.0)

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """Evaluate JavaScript in the page (promises awaited); return its JSON value."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise RuntimeError(f"page script failed: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, interval: float = 0.2) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {expression}")
            time.sleep(interval)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def event_list(self, method: str) -> list[dict[str, Any]]:
        with self._events_lock:
            return [params for name, params in self.events if name == method]

    def requested_urls(self) -> list[str]:
        return [p["request"]["url"] for p in self.event_list("Network.requestWillBeSent")] + [
            p["url"] for p in self.event_list("Network.webSocketCreated")
        ]


#: Text of every text node under an element, shadow roots included (a JS function of an id).
DEEP_TEXT = """
(id => {
  let out = [];
  const walk = (n) => {
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) {
      if (c.nodeType === 3) out.push(c.textContent); else walk(c);
    }
  };
  walk(document.getElementById(id));
  return out.join(" ");
})
"""


def capture_screenshot(url: str, path: Path, wait_seconds: float, width: int = 1600, height: int = 1000) -> None:
    """Open ``url`` in headless Chromium, wait until the dashboard reports ready (its
    ``window.elecflowDashboard.ready``) and then ``wait_seconds`` more, and save a PNG."""
    with Chromium(width=width, height=height) as browser:
        browser.navigate(url)
        try:
            browser.wait_for("window.elecflowDashboard && window.elecflowDashboard.ready", 30.0)
        except TimeoutError:
            pass  # not our dashboard page, or it is broken: the screenshot will show it
        time.sleep(wait_seconds)
        browser.screenshot(Path(path))


# --------------------------------------------------------------------------------------
# A plausible synthetic feed for demos and browser tests (realtime csp graph)
# --------------------------------------------------------------------------------------

import csp  # noqa: E402  (after the browser helpers, which need no csp)
from csp import ts  # noqa: E402

from elecflow.graphs.dashboard import dashboard_graph  # noqa: E402
from elecflow.schema import EquityQuote, EquityTrade, KalshiTrade, ReplayClock  # noqa: E402

_DEMO_SYMBOLS = {
    "SPY": 576.0, "QQQ": 492.0, "IWM": 221.0, "DIA": 421.0, "DJT": 34.0,
    "TSLA": 251.0, "XLF": 46.5, "TLT": 93.0, "GLD": 250.0, "KRE": 57.0,
}
_DEMO_CONTRACTS = {"PRES-2024-DJT": 0.58, "PRES-2024-KH": 0.42, "POPVOTE-24-R": 0.35}
#: 2024-11-05 20:00 New York (EST) = 2024-11-06 01:00 UTC.
DEMO_START = dt.datetime(2024, 11, 6, 1, 0)


@csp.node
def demo_feed(
    interval: dt.timedelta, speed: float, seed: int
) -> csp.Outputs(
    quotes=ts[[EquityQuote]], trades=ts[[EquityTrade]], kalshi=ts[[KalshiTrade]], clock=ts[ReplayClock]
):
    """Random-walk quotes, trades near the touch and drifting Kalshi prices, stamped with
    election-night event times running ``speed`` times faster than the wall clock."""
    with csp.alarms():
        a_tick = csp.alarm(bool)
    with csp.state():
        s_rng = random.Random(seed)
        s_mid = dict(_DEMO_SYMBOLS)
        s_logit = {c: math.log(p / (1 - p)) for c, p in _DEMO_CONTRACTS.items()}
        s_n = {"quotes": 0, "trades": 0, "kalshi": 0, "seq": 0}
        s_wall0 = 0.0
    with csp.start():
        s_wall0 = time.monotonic()
        csp.schedule_alarm(a_tick, dt.timedelta(0), True)

    if csp.ticked(a_tick):
        csp.schedule_alarm(a_tick, interval, True)
        t = DEMO_START + dt.timedelta(seconds=(time.monotonic() - s_wall0) * speed)
        quotes = []
        for sym in s_rng.sample(sorted(s_mid), 3):
            mid = s_mid[sym] * math.exp(s_rng.gauss(0.0, 0.0004))
            s_mid[sym] = mid
            half = max(0.005, round(mid * s_rng.uniform(0.00002, 0.0002), 2))
            s_n["seq"] += 1
            quotes.append(EquityQuote(
                time=t, symbol=sym, bid_price=round(mid - half, 2), ask_price=round(mid + half, 2),
                bid_size=float(100 * s_rng.randint(1, 30)), bid_exchange=s_rng.choice([4, 11, 12, 19]),
                ask_size=float(100 * s_rng.randint(1, 30)), ask_exchange=s_rng.choice([4, 11, 12, 19]),
                sequence_number=s_n["seq"]))
        s_n["quotes"] += len(quotes)
        csp.output(quotes=quotes)
        if s_rng.random() < 0.7:
            q = quotes[0]
            side = s_rng.choice([q.bid_price, q.ask_price])
            s_n["trades"] += 1
            csp.output(trades=[EquityTrade(
                time=t, symbol=q.symbol, price=side, size=float(s_rng.choice([1, 5, 10, 100, 200, 500])),
                exchange=s_rng.choice([4, 11, 12, 19]), condition_mask=0, is_iso=s_rng.random() < 0.1,
                correction=0, sequence_number=s_n["seq"], trade_id=f"T{s_n['trades']:07d}")])
        if s_rng.random() < 0.5:
            fills = []
            for contract in s_logit:
                drift = 0.004 if contract != "PRES-2024-KH" else -0.004
                s_logit[contract] += drift + s_rng.gauss(0.0, 0.03)
                price = min(0.99, max(0.01, round(1 / (1 + math.exp(-s_logit[contract])), 2)))
                s_n["kalshi"] += 1
                fills.append(KalshiTrade(
                    time=t, contract=contract, price=price, count=s_rng.randint(1, 500),
                    taker_side=s_rng.choice(["yes", "no"]), trade_id=f"K{s_n['kalshi']:07d}"))
            csp.output(kalshi=fills)
        csp.output(clock=ReplayClock(
            time=t, state="running", speed=speed, quotes=s_n["quotes"], trades=s_n["trades"],
            nbbo_1s=int((t - DEMO_START).total_seconds()) * len(s_mid), option_quotes=0,
            kalshi_trades=s_n["kalshi"]))


@csp.graph
def _demo_graph(server: object, interval: dt.timedelta, speed: float, seed: int, throttle_seconds: float):
    feed = demo_feed(interval, speed, seed)
    dashboard_graph(
        server, csp.unroll(feed.quotes), csp.unroll(feed.trades), csp.unroll(feed.kalshi),
        feed.clock, throttle_seconds=throttle_seconds,
    )


def run_demo(
    server: Any,
    interval: dt.timedelta = dt.timedelta(milliseconds=50),
    speed: float = 20.0,
    seed: int = 7,
    throttle_seconds: float = 0.25,
) -> Any:
    """Start the demo feed on a csp realtime thread; returns the runner (``stop_engine()``,
    ``join()``). ``server`` must already have the default tables."""
    return csp.run_on_thread(
        _demo_graph, server, interval, speed, seed, throttle_seconds,
        starttime=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), endtime=dt.timedelta(hours=1), realtime=True, daemon=True,
    )


def _main(argv: list[str]) -> int:
    from elecflow.adapters.control import ReplayControl
    from elecflow.adapters.dashboard import DashboardServer
    from elecflow.graphs.dashboard import create_default_tables

    root = Path(__file__).resolve().parents[1]

    out = Path(argv[0]) if argv else root / "docs" / "img" / "dashboard.png"
    control = ReplayControl()
    control.set_state("running")
    server = DashboardServer(port=0, control=control)
    create_default_tables(server)
    url = server.start()
    runner = run_demo(server, speed=60.0)
    try:
        time.sleep(4.0)  # let the chart accumulate a few minutes of event time
        capture_screenshot(url, out, wait_seconds=4.0)
    finally:
        runner.stop_engine()
        runner.join()
        server.stop()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
