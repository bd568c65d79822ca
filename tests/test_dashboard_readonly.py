"""The dashboard server is read-only for its websocket clients, checks origins, and
serves everything it needs itself.

A REAL perspective 5.6 client (``perspective.AsyncClient`` over a tornado websocket, the
same transport the browser uses) attacks a running server with every mutation the client
API offers while a realtime csp graph keeps publishing into the same tables.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.resources
import ipaddress
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import csp
import perspective
import pytest
import tornado.httpclient
import tornado.websocket
from csp import ts

from elecflow.adapters.control import ReplayControl
from elecflow.adapters.dashboard import (
    READ_REQUEST_FIELDS,
    DashboardServer,
    _parse_envelope,
    refusal_reason,
)
from elecflow.graphs.dashboard import (
    CLOCK_TABLE,
    KALSHI_TABLE,
    QUOTES_TABLE,
    TABLE_SCHEMAS,
    TRADES_TABLE,
    create_default_tables,
    publish_latest,
    quote_row,
)
from elecflow.schema import EquityQuote

T0_MS = 1_730_854_800_000  # 2024-11-06 01:00 UTC = 2024-11-05 20:00 New York

SEED_ROWS = {
    QUOTES_TABLE: [
        {"symbol": "SPY", "time": T0_MS, "bid": 576.0, "ask": 576.02, "mid": 576.01},
        {"symbol": "QQQ", "time": T0_MS, "bid": 492.0, "ask": 492.03, "mid": 492.015},
    ],
    TRADES_TABLE: [{"time": T0_MS, "symbol": "SPY", "price": 576.01, "size": 100.0, "trade_id": "T1"}],
    KALSHI_TABLE: [
        {"time": T0_MS, "contract": "PRES-2024-DJT", "price": 0.58, "count": 10, "taker_side": "yes"},
        {"time": T0_MS + 1000, "contract": "PRES-2024-KH", "price": 0.42, "count": 5, "taker_side": "no"},
    ],
    CLOCK_TABLE: [{"key": "replay", "time": T0_MS, "state": "running", "speed": 20.0, "quotes": 2}],
}


@pytest.fixture
def control() -> ReplayControl:
    c = ReplayControl()
    c.set_state("running")
    return c


@pytest.fixture
def server(control: ReplayControl):
    srv = DashboardServer(port=0, control=control, allowed_origins=("http://dash.example:9000",))
    create_default_tables(srv)
    for table, rows in SEED_ROWS.items():
        srv.update(table, rows)
    srv.start()
    yield srv
    srv.stop()


def ws_url(srv: DashboardServer) -> str:
    return f"ws://127.0.0.1:{srv.port}/websocket"


class RemoteClient:
    """perspective.AsyncClient wired to the dashboard's websocket (what the page does)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}

    async def __aenter__(self) -> perspective.AsyncClient:
        request = tornado.httpclient.HTTPRequest(self.url, headers=self.headers)
        self.ws = await tornado.websocket.websocket_connect(request)
        self.client = perspective.AsyncClient(self._send)
        self._pump = asyncio.ensure_future(self._read())
        return self.client

    async def _send(self, msg: bytes) -> None:
        await self.ws.write_message(bytes(msg), binary=True)

    async def _read(self) -> None:
        while True:
            msg = await self.ws.read_message()
            if msg is None:
                return
            await self.client.handle_response(msg)

    async def __aexit__(self, *exc: object) -> None:
        self.ws.close()
        self._pump.cancel()


def run_async(coro: Any, timeout: float = 30.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --------------------------------------------------------------------------------------
# Reads work
# --------------------------------------------------------------------------------------


def test_reads_work_over_the_websocket(server: DashboardServer) -> None:
    async def scenario() -> None:
        async with RemoteClient(ws_url(server)) as client:
            names = await client.get_hosted_table_names()
            assert sorted(names) == sorted(TABLE_SCHEMAS)
            table = await client.open_table(QUOTES_TABLE)
            assert await table.schema() == TABLE_SCHEMAS[QUOTES_TABLE]
            assert await table.size() == 2
            assert table.get_index() == "symbol"  # sync in 5.6: known from open_table
            view = await table.view(columns=["symbol", "bid"], sort=[["symbol", "asc"]])
            assert await view.to_json() == [
                {"symbol": "QQQ", "bid": 492.0},
                {"symbol": "SPY", "bid": 576.0},
            ]
            assert (await view.dimensions())["num_view_rows"] == 2
            assert (await view.to_csv()).splitlines()[1] == '"QQQ",492'
            assert isinstance(await view.to_arrow(), bytes)
            grouped = await (await client.open_table(KALSHI_TABLE)).view(
                group_by=["contract"], columns=["price"], aggregates={"price": "last"}
            )
            cols = await grouped.to_columns()
            assert cols["price"][1:] == [0.58, 0.42]
            # Expressions are allowed (read-only computations), validated by the server.
            assert "x2" in (await table.validate_expressions({"x2": '"bid" * 2'}))["expression_schema"]

            # Live updates from the server side reach the read-only client.
            updated = asyncio.Event()
            await view.on_update(lambda *a: updated.set())
            await table.size()  # on_update does not wait for the server: one round trip
            server.update(QUOTES_TABLE, [{"symbol": "IWM", "time": T0_MS, "bid": 221.0}])
            await asyncio.wait_for(updated.wait(), 5)
            assert await table.size() == 3
            await view.delete()
            await grouped.delete()

    run_async(scenario())


# --------------------------------------------------------------------------------------
# Every mutation is refused, while a csp graph keeps writing
# --------------------------------------------------------------------------------------


class CountingServer:
    """Passes updates to the real server and records what happened (thread-safe)."""

    def __init__(self, inner: DashboardServer) -> None:
        self.inner = inner
        self.updates = 0
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    def update(self, table: str, rows: list[dict[str, Any]]) -> None:
        try:
            self.inner.update(table, rows)
        except BaseException as exc:
            with self.lock:
                self.errors.append(exc)
            raise
        with self.lock:
            self.updates += 1


@csp.node
def _ticking_quotes(trigger: ts[bool]) -> ts[EquityQuote]:
    with csp.state():
        s_n = 0
    if csp.ticked(trigger):
        s_n += 1
        symbol = ("LIVE1", "LIVE2")[s_n % 2]  # the seeded SPY/QQQ rows stay untouched
        return EquityQuote(
            time=csp.now(), symbol=symbol, bid_price=100.0 + s_n * 0.01, ask_price=100.02 + s_n * 0.01,
            bid_size=100.0, ask_size=100.0, bid_exchange=1, ask_exchange=2, sequence_number=s_n,
        )


@csp.graph
def _live_publisher(server: object):
    quotes = _ticking_quotes(csp.timer(dt.timedelta(milliseconds=10), True))
    publish_latest(server, QUOTES_TABLE, quotes, "symbol", quote_row, 0.02)


MUTATIONS = ["update", "remove", "replace", "clear", "delete", "make_table", "join", "update_csv"]


def test_every_mutation_is_refused_while_a_csp_graph_publishes(server: DashboardServer) -> None:
    counting = CountingServer(server)
    kalshi_before = server.snapshot(KALSHI_TABLE)
    trades_before = server.snapshot(TRADES_TABLE)
    seeded_quotes = {r["symbol"]: r for r in server.snapshot(QUOTES_TABLE)}
    runner = csp.run_on_thread(
        _live_publisher, counting,
        starttime=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        endtime=dt.timedelta(seconds=60), realtime=True, daemon=True,
    )
    try:
        async def scenario() -> dict[str, str]:
            outcomes: dict[str, str] = {}
            async with RemoteClient(ws_url(server)) as client:
                quotes = await client.open_table(QUOTES_TABLE)
                kalshi = await client.open_table(KALSHI_TABLE)
                trades = await client.open_table(TRADES_TABLE)
                attempts = {
                    "update": lambda: quotes.update([{"symbol": "EVIL", "bid": 1.0}]),
                    "remove": lambda: quotes.remove(["SPY"]),
                    "replace": lambda: kalshi.replace([{"contract": "EVIL", "price": 0.01}]),
                    "clear": lambda: trades.clear(),
                    "delete": lambda: quotes.delete(),
                    "make_table": lambda: client.table({"a": [1, 2, 3]}, name="evil"),
                    "join": lambda: client.join(KALSHI_TABLE, TRADES_TABLE, "time"),
                    "update_csv": lambda: kalshi.update("contract,price\nEVIL,0.5"),
                }
                assert list(attempts) == MUTATIONS
                for name, attempt in attempts.items():
                    try:
                        await asyncio.wait_for(attempt(), 10)
                        outcomes[name] = "succeeded"
                    except perspective.PerspectiveError as exc:
                        outcomes[name] = str(exc)
                # The connection is still usable for reads after the refusals.
                assert await kalshi.size() == len(kalshi_before)
                assert sorted(await client.get_hosted_table_names()) == sorted(server.table_names)
            return outcomes

        deadline = time.monotonic() + 10
        while counting.updates < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        updates_before_attack = counting.updates
        assert updates_before_attack >= 3, "the csp graph is not publishing"
        outcomes = run_async(scenario())
        for name in MUTATIONS:
            assert "read-only" in outcomes[name], f"{name}: {outcomes[name]}"

        # The graph keeps publishing after the attack, without errors.
        time.sleep(0.3)
        assert counting.updates > updates_before_attack
        seen = counting.updates
        time.sleep(0.3)
        assert counting.updates > seen
        assert counting.errors == []
        assert runner.is_alive()
    finally:
        runner.stop_engine()
        runner.join()  # re-raises if the graph failed

    # Nothing the client sent changed any table; the graph's rows are there.
    assert sorted(server.table_names) == sorted(TABLE_SCHEMAS)
    assert server.snapshot(KALSHI_TABLE) == kalshi_before
    assert server.snapshot(TRADES_TABLE) == trades_before
    quotes_after = {r["symbol"]: r for r in server.snapshot(QUOTES_TABLE)}
    assert set(quotes_after) == {"SPY", "QQQ", "LIVE1", "LIVE2"}  # no EVIL, SPY not removed
    assert {k: quotes_after[k] for k in seeded_quotes} == seeded_quotes


# --------------------------------------------------------------------------------------
# The allow-list itself
# --------------------------------------------------------------------------------------


def _captured_request_fields(action) -> list[int]:
    """Field numbers of the requests the 5.6 Python client sends for ``action``."""
    srv = perspective.Server()
    local = srv.new_local_client()
    local.table({"a": [1, 2], "b": ["x", "y"]}, name="t", index="a")
    local.table({"a": [1, 2], "c": [1.0, 2.0]}, name="u")
    seen: list[int] = []

    def handle_request(msg: bytes) -> None:
        seen.extend(_parse_envelope(bytes(msg))[2])
        session.handle_request(msg)

    session = perspective.ProxySession(local, lambda msg: remote.handle_response(msg))
    remote = perspective.Client(handle_request, session.close)
    action(remote)
    return seen


READ_ACTIONS = {
    "hosted": lambda c: c.get_hosted_table_names(),
    "system_info": lambda c: c.system_info(),
    "schema/size/columns": lambda c: (c.open_table("t").schema(), c.open_table("t").size(),
                                      c.open_table("t").columns()),
    "validate": lambda c: c.open_table("t").validate_expressions({"x": '"a" + 1'}),
    "view reads": lambda c: [
        getattr(v, m)()
        for v in [c.open_table("t").view(group_by=["b"])]
        for m in ("schema", "dimensions", "column_paths", "expression_schema", "get_config",
                  "to_json", "to_columns", "to_csv", "to_arrow", "to_ndjson")
    ],
    "expand/collapse/min_max": lambda c: [
        (v.expand(0), v.collapse(0), v.get_min_max("a")) for v in [c.open_table("t").view(group_by=["b"])]
    ],
    "callbacks": lambda c: [
        (v.remove_update(v.on_update(lambda *a: None)), v.remove_remove(v.on_remove(lambda *a: None)),
         v.remove_delete(v.on_delete(lambda *a: None)), v.delete())
        for v in [c.open_table("t").view()]
    ] + [t.remove_delete(t.on_delete(lambda *a: None)) for t in [c.open_table("t")]]
    + [c.remove_hosted_tables_update(c.on_hosted_tables_update(lambda *a: None))],
    "make_port": lambda c: c.open_table("t").make_port(),
}

WRITE_ACTIONS = {
    "update": lambda c: c.open_table("t").update([{"a": 3, "b": "z"}]),
    "remove": lambda c: c.open_table("t").remove([1]),
    "replace": lambda c: c.open_table("t").replace({"a": [9], "b": ["q"]}),
    "clear": lambda c: c.open_table("t").clear(),
    "table": lambda c: c.table({"z": [1]}, name="new"),
    "join": lambda c: c.join("t", "u", "a"),
    "delete": lambda c: c.open_table("u").delete(),
}


@pytest.mark.parametrize("name", list(READ_ACTIONS))
def test_allow_list_covers_what_the_client_reads_with(name: str) -> None:
    fields = _captured_request_fields(READ_ACTIONS[name])
    assert fields, "the client sent nothing"
    assert set(fields) <= set(READ_REQUEST_FIELDS), sorted(set(fields) - set(READ_REQUEST_FIELDS))


@pytest.mark.parametrize("name", list(WRITE_ACTIONS))
def test_allow_list_excludes_every_mutation(name: str) -> None:
    fields = _captured_request_fields(WRITE_ACTIONS[name])
    mutating = [f for f in fields if f not in READ_REQUEST_FIELDS]
    assert mutating, f"{name} would pass the read-only filter: {fields}"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _request(msg_id: int, entity: str, *fields: tuple[int, bytes]) -> bytes:
    out = _varint(1 << 3) + _varint(msg_id) + _field(2, entity.encode())
    for number, payload in fields:
        out += _field(number, payload)
    return out


def test_filter_fails_closed_on_unknown_and_smuggled_requests() -> None:
    assert refusal_reason(_request(1, "quotes", (7, b""))) is None  # table_schema
    assert "unknown request type #99" in refusal_reason(_request(1, "quotes", (99, b"")))
    assert "table_update" in refusal_reason(_request(1, "quotes", (33, b"")))
    # A read and a write in one envelope (protobuf keeps the last oneof member): refused.
    assert refusal_reason(_request(1, "quotes", (7, b""), (33, b""))) is not None
    assert refusal_reason(_request(1, "quotes")) is not None  # no request at all
    assert refusal_reason(_request(1, "quotes", (7, b""))[:-3] + b"\xff") is not None
    assert "malformed" in refusal_reason(b"\x0a\x05ab")  # truncated
    assert "malformed" in refusal_reason(b"\x0b")  # group wire type


def test_refusal_is_a_server_error_response_with_the_same_msg_id(server: DashboardServer) -> None:
    async def scenario() -> tuple[bytes, bytes | None]:
        ws = await tornado.websocket.websocket_connect(ws_url(server))
        await ws.write_message(_request(77, "quotes", (33, b"")), binary=True)
        reply = await ws.read_message()
        # A malformed message closes the connection.
        await ws.write_message(b"\x0a\x05ab", binary=True)
        after = await ws.read_message()
        return reply, after

    reply, after = run_async(scenario())
    msg_id, entity, fields = _parse_envelope(reply)
    assert (msg_id, entity, fields) == (77, "quotes", [50])  # Response.server_error
    assert b"read-only" in reply
    assert after is None
    assert server.size(QUOTES_TABLE) == 2


# --------------------------------------------------------------------------------------
# Origins, Host, HTTP API and assets
# --------------------------------------------------------------------------------------


def _ws_status(url: str, headers: dict[str, str]) -> int:
    async def attempt() -> int:
        try:
            ws = await tornado.websocket.websocket_connect(
                tornado.httpclient.HTTPRequest(url, headers=headers)
            )
        except tornado.httpclient.HTTPClientError as exc:
            return exc.code
        ws.close()
        return 101

    return run_async(attempt())


def test_cross_origin_websocket_is_refused(server: DashboardServer) -> None:
    url = ws_url(server)
    own = f"http://127.0.0.1:{server.port}"
    assert _ws_status(url, {"Origin": "http://evil.example"}) == 403
    assert _ws_status(url, {"Origin": "null"}) == 403
    assert _ws_status(url, {"Origin": f"http://127.0.0.1:{server.port + 1}"}) == 403
    assert _ws_status(url, {"Origin": own}) == 101
    assert _ws_status(url, {"Origin": f"http://localhost:{server.port}"}) == 101
    assert _ws_status(url, {"Origin": "http://dash.example:9000"}) == 101  # allowed_origins
    assert _ws_status(url, {}) == 101  # non-browser client: no Origin header
    # DNS rebinding: a page on evil.example resolved to 127.0.0.1 sends its own Host.
    assert _ws_status(url, {"Host": f"evil.example:{server.port}"}) == 403


def _http(server: DashboardServer, path: str, method: str = "GET", body: Any = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.port}{path}", data=data, method=method, headers=headers or {}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_replay_api_pause_resume(server: DashboardServer, control: ReplayControl) -> None:
    own = {"Origin": f"http://127.0.0.1:{server.port}", "Content-Type": "application/json"}
    status, _, body = _http(server, "/api/replay")
    assert status == 200 and json.loads(body) == {"state": "running", "paused": False, "controllable": True}

    status, _, body = _http(server, "/api/replay", "POST", {"action": "pause"}, own)
    assert status == 200 and json.loads(body)["state"] == "paused"
    assert control.paused and control.state == "paused"
    assert json.loads(_http(server, "/api/replay")[2])["state"] == "paused"

    status, _, body = _http(server, "/api/replay", "POST", {"action": "resume"}, own)
    assert status == 200 and json.loads(body)["state"] == "running"
    assert not control.paused

    # Cross-origin, wrong content type, bad actions, foreign Host: refused, state unchanged.
    evil = {"Origin": "http://evil.example", "Content-Type": "application/json"}
    assert _http(server, "/api/replay", "POST", {"action": "pause"}, evil)[0] == 403
    form = {"Origin": own["Origin"], "Content-Type": "application/x-www-form-urlencoded"}
    assert _http(server, "/api/replay", "POST", b"action=pause", form)[0] == 415
    assert _http(server, "/api/replay", "POST", {"action": "stop"}, own)[0] == 400
    assert _http(server, "/api/replay", "POST", b"[1", own)[0] == 400
    rebind = dict(own, Host=f"evil.example:{server.port}")
    assert _http(server, "/api/replay", "POST", {"action": "pause"}, rebind)[0] == 403
    assert not control.paused

    control.set_state("finished")
    assert json.loads(_http(server, "/api/replay")[2])["state"] == "finished"


def test_replay_api_without_control() -> None:
    srv = DashboardServer(port=0)
    srv.start()
    try:
        assert json.loads(_http(srv, "/api/replay")[2])["state"] == "unavailable"
        headers = {"Origin": f"http://127.0.0.1:{srv.port}", "Content-Type": "application/json"}
        assert _http(srv, "/api/replay", "POST", {"action": "pause"}, headers)[0] == 409
    finally:
        srv.stop()


def test_page_and_viewer_bundle_are_served_locally(server: DashboardServer) -> None:
    status, headers, page = _http(server, "/")
    assert status == 200 and b"<perspective-viewer" in page
    csp_header = headers["Content-Security-Policy"]
    assert "connect-src 'self'" in csp_header and "default-src 'self'" in csp_header
    assert headers["X-Frame-Options"] == "DENY"
    wheel = importlib.resources.files("perspective") / "widget" / "static"
    for name in ("perspective-anywidget.js", "perspective-anywidget.css"):
        status, headers, body = _http(server, f"/static/{name}")
        assert status == 200 and body == (wheel / name).read_bytes()
    status, _, js = _http(server, "/static/dashboard.js")
    assert status == 200 and b"__wasm_module__" in js
    # No CDN or other remote URL in our own page files.
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        text = (importlib.resources.files("elecflow.adapters") / "static" / name).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name
    assert _http(server, "/static/..%2Fdashboard.py")[0] == 404
    assert _http(server, "/static/nothing.js")[0] == 404
    assert _http(server, "/", headers={"Host": f"evil.example:{server.port}"})[0] == 403


def test_start_stop_and_binding(capsys: pytest.CaptureFixture[str]) -> None:
    srv = DashboardServer(port=0)
    srv.add_table("t", {"k": "string", "v": "float"}, index="k")
    url = srv.start()
    assert url == f"http://127.0.0.1:{srv.port}/" and srv.port > 0
    assert url in capsys.readouterr().out
    with pytest.raises(RuntimeError):
        srv.start()
    srv.stop()
    srv.stop()  # idempotent
    srv.update("t", {"k": ["a"], "v": [1.0]})  # columnar update; tables outlive the web server
    assert srv.snapshot("t") == [{"k": "a", "v": 1.0}]

    with pytest.raises(ValueError, match="every interface"):
        DashboardServer(host=str(ipaddress.IPv4Address(0)))  # the IPv4 wildcard address
    with pytest.raises(ValueError, match="every interface"):
        DashboardServer(host="::")
    with pytest.raises(ValueError, match="index or limit"):
        srv.add_table("u", {"k": "string"}, index="k", limit=10)
    with pytest.raises(ValueError, match="already exists"):
        srv.add_table("t", {"k": "string"})
