"""A thin, read-only Perspective dashboard server for live csp replays.

One :class:`perspective.Server` holds the dashboard tables; csp nodes (see
:mod:`elecflow.graphs.dashboard`) push rows into it with :meth:`DashboardServer.update`.
A tornado application on its own thread and IOLoop serves:

``/``                                   the page (``static/index.html``)
``/static/<file>``                      the page's own small JS/CSS files, and the viewer
                                        bundle ``perspective-anywidget.js``/``.css`` taken
                                        from the installed perspective wheel (never a CDN)
``/websocket``                          Perspective's protocol, READ-ONLY (see below)
``/api/replay``                         GET: replay state; POST ``{"action": "pause"}`` or
                                        ``{"action": "resume"}``

Read-only policy. Perspective's stock handler lets any websocket client update, replace,
clear, delete or create tables. :class:`ReadOnlyPerspectiveHandler` decodes the envelope of
every incoming protobuf ``Request`` (field numbers of perspective-python 5.6.1's
``perspective.proto``) and forwards it to the server only when its request type is on
:data:`READ_REQUEST_FIELDS`, an allow-list; anything else (mutations, request types added by
a later perspective release, malformed messages) is answered with a ``ServerError`` response
and never reaches the engine.

Origins. Browsers attach an ``Origin`` header to websocket handshakes and POSTs; it must be
this server's own origin (``http://<host>:<port>``, plus the loopback aliases when bound to
loopback) or one of ``allowed_origins``. Requests without ``Origin`` come from non-browser
clients and are not a cross-site risk. Every request's ``Host`` header must also name this
server, which defeats DNS-rebinding pages.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import ipaddress
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import perspective
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
from perspective.handlers.tornado import PerspectiveTornadoHandler

from .control import ReplayControl

__all__ = [
    "DashboardServer",
    "ReadOnlyPerspectiveHandler",
    "READ_REQUEST_FIELDS",
    "refusal_reason",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# The read-only filter: a minimal protobuf wire-format reader for the Request envelope.
# --------------------------------------------------------------------------------------

#: ``Request`` oneof field numbers (``client_req``) that only read, in perspective 5.6.1.
#: Checked by capturing what the 5.6.1 Python client sends for every API call; see
#: docs/dashboard.md. Everything NOT listed here is refused, including the mutations
#: make_table=27, table_delete=28, table_remove=31, table_replace=32 (also ``clear``),
#: table_update=33 and make_join_table=38, and any number a later release adds.
READ_REQUEST_FIELDS: Mapping[int, str] = {
    3: "get_features",
    4: "get_hosted_tables",
    5: "table_make_port",  # viewer.load() asks for an input port id; no data changes
    6: "table_make_view",
    7: "table_schema",
    8: "table_size",
    10: "view_column_paths",
    11: "view_delete",  # a client deleting its own view; view ids are random per view
    12: "view_dimensions",
    13: "view_expression_schema",
    14: "view_get_config",
    15: "view_schema",
    16: "view_to_arrow",
    17: "server_system_info",
    18: "view_collapse",
    19: "view_expand",
    20: "view_get_min_max",
    21: "view_on_update",
    22: "view_remove_on_update",
    23: "view_set_depth",
    24: "view_to_columns_string",
    25: "view_to_csv",
    26: "view_to_rows_string",
    29: "table_on_delete",
    30: "table_remove_delete",
    34: "view_on_delete",
    35: "view_remove_delete",
    36: "view_to_ndjson_string",
    37: "remove_hosted_tables_update",
    39: "view_on_remove",
    40: "view_remove_on_remove",
    41: "table_describe",  # also carries validate_expressions in 5.6
}

#: Names of refused request types, only for messages and logs.
_KNOWN_WRITE_FIELDS: Mapping[int, str] = {
    27: "make_table",
    28: "table_delete",
    31: "table_remove",
    32: "table_replace (or clear)",
    33: "table_update",
    38: "make_join_table",
}

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5


class _Malformed(ValueError):
    pass


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _parse_envelope(msg: bytes) -> tuple[int, str, list[int]]:
    """Return ``(msg_id, entity_id, request_fields)`` of a serialized ``Request``.

    ``request_fields`` lists every field number other than ``msg_id`` (1) and
    ``entity_id`` (2), in order. Raises :class:`_Malformed` on a broken message.
    """
    msg_id = 0
    entity_id = b""
    request_fields: list[int] = []
    pos = 0
    n = len(msg)
    while pos < n:
        key, pos = _read_varint(msg, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise _Malformed("field number 0")
        if wire == _WIRE_VARINT:
            value, pos = _read_varint(msg, pos)
            if field == 1:
                msg_id = value & 0xFFFFFFFF
            else:
                request_fields.append(field)
        elif wire == _WIRE_LEN:
            length, pos = _read_varint(msg, pos)
            if pos + length > n:
                raise _Malformed("truncated length-delimited field")
            if field == 2:
                entity_id = msg[pos : pos + length]
            else:
                request_fields.append(field)
            pos += length
        elif wire == _WIRE_I64:
            pos += 8
            request_fields.append(field)
        elif wire == _WIRE_I32:
            pos += 4
            request_fields.append(field)
        else:  # groups (3, 4) and reserved wire types
            raise _Malformed(f"unsupported wire type {wire}")
        if pos > n:
            raise _Malformed("truncated fixed-width field")
    try:
        entity = entity_id.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Malformed("entity_id is not UTF-8") from exc
    return msg_id, entity, request_fields


def refusal_reason(msg: bytes) -> str | None:
    """``None`` if the serialized ``Request`` only reads; otherwise why it is refused."""
    try:
        _, _, fields = _parse_envelope(msg)
    except _Malformed as exc:
        return f"malformed request ({exc})"
    return _fields_refusal(fields)


def _fields_refusal(fields: list[int]) -> str | None:
    if len(fields) != 1:
        return f"expected exactly one request in the envelope, got fields {fields}"
    field = fields[0]
    if field in READ_REQUEST_FIELDS:
        return None
    name = _KNOWN_WRITE_FIELDS.get(field, f"unknown request type #{field}")
    return f"this dashboard is read-only: {name} is not allowed"


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _encode_len(field: int, payload: bytes) -> bytes:
    return _encode_varint((field << 3) | _WIRE_LEN) + _encode_varint(len(payload)) + payload


def _server_error_response(msg_id: int, entity_id: str, message: str) -> bytes:
    """Serialized ``Response{msg_id, entity_id, server_error: ServerError{message}}``.

    ``status_code`` stays at its default ``SERVER_ERROR`` (0), which proto3 omits.
    """
    error = _encode_len(1, message.encode("utf-8"))
    out = b""
    if msg_id:
        out += _encode_varint((1 << 3) | _WIRE_VARINT) + _encode_varint(msg_id)
    if entity_id:
        out += _encode_len(2, entity_id.encode("utf-8"))
    return out + _encode_len(50, error)


# --------------------------------------------------------------------------------------
# Origin and Host policy
# --------------------------------------------------------------------------------------


def _normalize_origin(origin: str) -> str:
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.netloc:
        return origin.strip().lower()
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class _OriginPolicy:
    """Which ``Origin`` and ``Host`` header values name this server."""

    def __init__(self, host: str, port: int, allowed_origins: Iterable[str]) -> None:
        hosts = {host.lower()}
        try:
            if ipaddress.ip_address(host).is_loopback:
                hosts |= {"127.0.0.1", "localhost", "[::1]"}
        except ValueError:
            if host.lower() == "localhost":
                hosts |= {"127.0.0.1", "[::1]"}
        if ":" in host and not host.startswith("["):
            hosts = {f"[{h}]" if ":" in h and not h.startswith("[") else h for h in hosts}
        self.hosts = frozenset(f"{h}:{port}" for h in hosts)
        extra = {_normalize_origin(o) for o in allowed_origins}
        self.origins = frozenset({f"http://{h}" for h in self.hosts} | extra)
        self.hosts = self.hosts | frozenset(urlsplit(o).netloc for o in extra if "://" in o)

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None:
            return True  # not a browser: no cross-site request to forge
        return _normalize_origin(origin) in self.origins

    def host_allowed(self, host_header: str | None) -> bool:
        return host_header is not None and host_header.lower() in self.hosts


# --------------------------------------------------------------------------------------
# Tornado handlers
# --------------------------------------------------------------------------------------

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# The viewer compiles inlined WebAssembly and imports blob: modules and workers; the page
# talks only to its own origin (HTTP and websocket), so no other host can be reached.
_PAGE_CSP = (
    "default-src 'self'; script-src 'self' blob: 'wasm-unsafe-eval'; "
    "worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)


class _BaseHandler(tornado.web.RequestHandler):
    def initialize(self, policy: _OriginPolicy, **kwargs: Any) -> None:
        self.policy = policy

    def set_default_headers(self) -> None:
        for name, value in _SECURITY_HEADERS.items():
            self.set_header(name, value)

    def prepare(self) -> None:
        if not self.policy.host_allowed(self.request.headers.get("Host")):
            raise tornado.web.HTTPError(403, "unexpected Host header")


class _AssetHandler(_BaseHandler):
    """Serves a fixed map of in-memory files; nothing is looked up from the URL path."""

    def initialize(self, policy: _OriginPolicy, assets: Mapping[str, tuple[bytes, str]]) -> None:
        super().initialize(policy)
        self.assets = assets

    def get(self, name: str = "index.html") -> None:
        asset = self.assets.get(name)
        if asset is None:
            raise tornado.web.HTTPError(404)
        body, content_type = asset
        self.set_header("Content-Type", content_type)
        if name == "index.html":
            self.set_header("Content-Security-Policy", _PAGE_CSP)
            self.set_header("Cache-Control", "no-store")
        else:
            self.set_header("Cache-Control", "no-cache")
        self.write(body)


class _ReplayApiHandler(_BaseHandler):
    def initialize(self, policy: _OriginPolicy, control: ReplayControl | None) -> None:
        super().initialize(policy)
        self.control = control

    def _state(self) -> dict[str, Any]:
        if self.control is None:
            return {"state": "unavailable", "paused": False, "controllable": False}
        return {"state": self.control.state, "paused": self.control.paused, "controllable": True}

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write(self._state())

    def post(self) -> None:
        if not self.policy.origin_allowed(self.request.headers.get("Origin")):
            raise tornado.web.HTTPError(403, "cross-origin request refused")
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != "application/json":
            raise tornado.web.HTTPError(415, "send application/json")
        try:
            action = json.loads(self.request.body or b"{}").get("action")
        except (ValueError, AttributeError):
            raise tornado.web.HTTPError(400, "body must be a JSON object") from None
        if action not in ("pause", "resume"):
            raise tornado.web.HTTPError(400, 'action must be "pause" or "resume"')
        if self.control is None:
            raise tornado.web.HTTPError(409, "this dashboard has no replay to control")
        if action == "pause":
            self.control.pause()
        else:
            self.control.resume()
        self.set_header("Cache-Control", "no-store")
        self.write(self._state())


class ReadOnlyPerspectiveHandler(PerspectiveTornadoHandler):
    """Perspective's tornado handler that forwards only read requests (an allow-list)."""

    def initialize(  # type: ignore[override]
        self,
        perspective_server: perspective.Server,
        policy: _OriginPolicy,
        open_handlers: set[Any],
        **kwargs: Any,
    ) -> None:
        super().initialize(perspective_server=perspective_server, **kwargs)
        self.policy = policy
        self.open_handlers = open_handlers
        self.refused = 0

    def open(self) -> None:
        super().open()
        self.open_handlers.add(self)

    def on_close(self) -> None:
        self.open_handlers.discard(self)
        super().on_close()

    def prepare(self) -> None:
        if not self.policy.host_allowed(self.request.headers.get("Host")):
            raise tornado.web.HTTPError(403, "unexpected Host header")

    def check_origin(self, origin: str) -> bool:
        allowed = self.policy.origin_allowed(origin)
        if not allowed:
            log.warning("dashboard: refused websocket from origin %r", origin)
        return allowed

    def on_message(self, msg: bytes | str) -> None:
        if not isinstance(msg, bytes):
            return  # the base handler ignores text frames too
        try:
            msg_id, entity_id, fields = _parse_envelope(msg)
        except _Malformed as exc:
            log.warning("dashboard: closing websocket after a malformed request (%s)", exc)
            self.close(1008, "malformed request")
            return
        reason = _fields_refusal(fields)
        if reason is None:
            super().on_message(msg)
            return
        self.refused += 1
        log.warning("dashboard: refused request on %r: %s", entity_id, reason)
        reply = _server_error_response(msg_id, entity_id, reason)
        # The same path as the session's own responses keeps replies in order.
        self.loop.add_callback(self._write_reply, reply)

    def _write_reply(self, reply: bytes) -> None:
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        self.write_message(reply, binary=True)


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------

def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


_PAGE_FILES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
_VIEWER_FILES = ("perspective-anywidget.js", "perspective-anywidget.css")


def _load_assets() -> dict[str, tuple[bytes, str]]:
    """The page files next to this module plus the viewer bundle from the perspective wheel."""
    assets: dict[str, tuple[bytes, str]] = {}
    static = importlib.resources.files(__package__) / "static"
    for entry in static.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in _PAGE_FILES:
            assets[entry.name] = (entry.read_bytes(), _PAGE_FILES[suffix])
    if "index.html" not in assets:
        raise FileNotFoundError(f"dashboard page missing: {static / 'index.html'}")
    # Not importlib.resources.files("perspective.widget"): importing that package needs
    # the optional anywidget dependency. The files sit in the wheel either way.
    wheel_static = importlib.resources.files("perspective") / "widget" / "static"
    for name in _VIEWER_FILES:
        resource = wheel_static / name
        if not resource.is_file():
            raise FileNotFoundError(
                f"{name} not found in the installed perspective-python "
                f"{perspective.__version__} wheel (looked in {wheel_static})"
            )
        assets[name] = (resource.read_bytes(), _PAGE_FILES["." + name.rsplit(".", 1)[-1]])
    return assets


class DashboardServer:
    """Perspective tables plus a read-only web dashboard on 127.0.0.1.

    Tables are created with :meth:`add_table` (before or after :meth:`start`) and fed with
    :meth:`update` from any thread, typically the csp engine thread.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        control: ReplayControl | None = None,
        allowed_origins: tuple[str, ...] = (),
    ) -> None:
        if not host or _is_wildcard(host):
            raise ValueError(
                f"refusing to listen on every interface ({host!r}): give one address, "
                "e.g. 127.0.0.1"
            )
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self.host = host
        self.port = int(port)
        self.control = control
        self.allowed_origins = tuple(allowed_origins)
        self.perspective_server = perspective.Server()
        self._client = self.perspective_server.new_local_client()
        self._tables: dict[str, perspective.Table] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: tornado.ioloop.IOLoop | None = None
        self._http: tornado.httpserver.HTTPServer | None = None
        self._url: str | None = None
        self._websockets: set[ReadOnlyPerspectiveHandler] = set()  # touched on the loop only

    # -- tables ------------------------------------------------------------------------

    def add_table(
        self,
        name: str,
        schema: dict[str, str],
        index: str | None = None,
        limit: int | None = None,
    ) -> None:
        """Create an empty table from ``{column: type}`` (perspective type names).

        ``index`` makes updates upsert by that column; ``limit`` keeps only the newest
        ``limit`` rows. Perspective allows one or the other.
        """
        if index is not None and limit is not None:
            raise ValueError("a Perspective table takes either index or limit, not both")
        if index is not None and index not in schema:
            raise ValueError(f"index column {index!r} is not in the schema of {name!r}")
        with self._lock:
            if name in self._tables:
                raise ValueError(f"table {name!r} already exists")
            kwargs: dict[str, Any] = {"name": name}
            if index is not None:
                kwargs["index"] = index
            if limit is not None:
                kwargs["limit"] = int(limit)
            self._tables[name] = self._client.table(dict(schema), **kwargs)

    def update(self, name: str, rows: list[dict[str, Any]] | dict[str, list[Any]]) -> None:
        """Append or upsert rows; thread-safe. Datetimes must already be epoch milliseconds."""
        if not rows:
            return
        table = self._tables[name]
        with self._lock:
            table.update(rows)

    def snapshot(self, name: str) -> list[dict[str, Any]]:
        """The table's current rows (through a short-lived local view); for tests and tools."""
        with self._lock:
            view = self._tables[name].view()
            try:
                return view.to_json()
            finally:
                view.delete()

    def size(self, name: str) -> int:
        return self._tables[name].size()

    @property
    def table_names(self) -> list[str]:
        return list(self._tables)

    # -- web server --------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        return self._url

    def _make_app(self, policy: _OriginPolicy) -> tornado.web.Application:
        assets = _load_assets()
        return tornado.web.Application(
            [
                (r"/", _AssetHandler, {"policy": policy, "assets": assets}),
                (r"/static/([A-Za-z0-9_.-]+)", _AssetHandler, {"policy": policy, "assets": assets}),
                (r"/api/replay", _ReplayApiHandler, {"policy": policy, "control": self.control}),
                (
                    r"/websocket",
                    ReadOnlyPerspectiveHandler,
                    {
                        "perspective_server": self.perspective_server,
                        "policy": policy,
                        "open_handlers": self._websockets,
                    },
                ),
            ],
            websocket_max_message_size=1 << 20,  # read requests are small
            compress_response=True,
        )

    def start(self) -> str:
        """Listen and serve on a background thread; return (and print) the page's URL."""
        if self._thread is not None:
            raise RuntimeError("dashboard already started")
        # Bind here so that a busy port fails in the caller, with port 0 resolved.
        sockets = tornado.netutil.bind_sockets(self.port, address=self.host)
        port = sockets[0].getsockname()[1]
        policy = _OriginPolicy(self.host, port, self.allowed_origins)
        app = self._make_app(policy)
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(asyncio.new_event_loop())
            loop = tornado.ioloop.IOLoop.current()
            try:
                http = tornado.httpserver.HTTPServer(app)
                http.add_sockets(sockets)
            except BaseException as exc:  # pragma: no cover - reported to the caller
                failure.append(exc)
                ready.set()
                return
            self._loop, self._http = loop, http
            loop.add_callback(ready.set)
            loop.start()
            loop.close(all_fds=True)

        self._thread = threading.Thread(target=run, name="elecflow-dashboard", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            for sock in sockets:
                sock.close()
            raise failure[0]
        self.port = port
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self._url = f"http://{shown}:{port}/"
        print(f"elecflow dashboard: {self._url}", flush=True)
        return self._url

    def stop(self, timeout: float = 5.0) -> None:
        """Close connections, stop the IOLoop and join its thread. Idempotent."""
        thread, loop, http = self._thread, self._loop, self._http
        if thread is None or loop is None:
            return

        async def shutdown() -> None:
            assert http is not None
            http.stop()
            for handler in list(self._websockets):
                handler.close(1001, "server shutting down")
            try:
                await asyncio.wait_for(http.close_all_connections(), timeout)
            except asyncio.TimeoutError:  # pragma: no cover
                log.warning("dashboard: connections did not close in %.1f s", timeout)
            loop.stop()

        loop.add_callback(shutdown)
        thread.join(timeout + 2.0)
        self._thread = self._loop = self._http = None

    def __enter__(self) -> "DashboardServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
