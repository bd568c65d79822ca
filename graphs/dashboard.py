"""csp side of the dashboard: throttled nodes that push rows into a DashboardServer.

The nodes hold references to the newest structs between flushes and convert them to rows
only when they flush, so a tick costs a dict store or a deque append, never a row dict.
Flushes are paced by the wall clock (``time.monotonic()``), not by engine time: during a
paced replay at N times real time, engine-time alarms fire N times too often, and in
simulation mode at full speed engine time says nothing about how often a browser redraws.
A final flush runs when the graph stops, so the tables end in the graph's final state.

The server is any object with ``update(table: str, rows: list[dict]) -> None``
(:class:`elecflow.adapters.dashboard.DashboardServer`, or a recorder in tests); it is not
imported here, so graphs do not depend on the web layer.

Perspective 5.x JSON-encodes list-of-dict updates, so datetimes leave here as epoch
milliseconds (UTC); the page formats them in America/New_York.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections import deque
from typing import Any

import csp
import numpy as np
from csp import ts

from elecflow.mixture import lognormal_mixture_pdf
from elecflow.schema import (
    ElectionHedge,
    ElectionState,
    EquityQuote,
    EquityTrade,
    KalshiProbability,
    KalshiTrade,
    MinuteBar,
    ReplayClock,
    RndCurvePoint,
    RndSummary,
    SmilePoint,
    UpMoveScore,
)

__all__ = [
    "QUOTES_TABLE",
    "TRADES_TABLE",
    "KALSHI_TABLE",
    "CLOCK_TABLE",
    "BARS_TABLE",
    "bar_row",
    "publish_bars",
    "publish_batches",
    "publish_kalshi_filter",
    "publish_upmove",
    "publish_option_chains",
    "smile_chart_rows",
    "density_chart_rows",
    "upmove_row",
    "kalshi_filter_row",
    "KALSHI_FILTER_TABLE",
    "KALSHI_SERIES_TABLE",
    "kalshi_series_rows",
    "TRADES_LIMIT",
    "KALSHI_LIMIT",
    "CLOCK_KEY",
    "TABLE_SCHEMAS",
    "create_default_tables",
    "dashboard_graph",
    "publish_latest",
    "publish_recent",
    "epoch_ms",
    "quote_row",
    "trade_row",
    "kalshi_row",
    "clock_row",
]

log = logging.getLogger(__name__)

# csp's node parser rejects ``csp.is_configured_realtime()`` inside a node body.
_is_configured_realtime = csp.is_configured_realtime

QUOTES_TABLE = "quotes"
TRADES_TABLE = "trades"
KALSHI_TABLE = "kalshi"
CLOCK_TABLE = "replay_clock"
BARS_TABLE = "bars_1m"
OPTION_SUMMARY_TABLE = "rnd_summary"  # latest refresh per underlying
OPTION_HISTORY_TABLE = "rnd_history"  # refreshes over time (moments chart)
OPTION_HISTORY_LIMIT = 20000
SMILE_TABLE = "smile_chart"  # long form, one fixed key per (underlying, series, point)
DENSITY_TABLE = "rnd_chart"  # density and CDF on the grid, one fixed key per (underlying, point)
STATES_TABLE = "election_states"  # latest fit per (underlying, mode): the conditional returns/vols table
STATES_PROBABILITY_TABLE = "election_probability"  # option-implied vs Kalshi probability over time
STATES_DENSITY_TABLE = "state_density_chart"  # Trump and Harris state densities, fixed keys per point
STATES_DENSITY_POINTS = 121
HEDGE_TABLE = "election_hedge"  # the position file's election delta and Kalshi hedge
KALSHI_FILTER_TABLE = "kalshi_filter"
KALSHI_SERIES_TABLE = "kalshi_filter_series"
KALSHI_FILTER_LIMIT = 20000
TRADES_LIMIT = 2000
KALSHI_LIMIT = 20000
CLOCK_KEY = "replay"

#: Column types of the default tables (perspective type names). Times are ``datetime``
#: columns fed with epoch milliseconds in UTC.
TABLE_SCHEMAS: dict[str, dict[str, str]] = {
    QUOTES_TABLE: {
        "symbol": "string",
        "time": "datetime",
        "bid": "float",
        "ask": "float",
        "mid": "float",
        "spread_bps": "float",
        "bid_size": "float",
        "ask_size": "float",
        "bid_exchange": "integer",
        "ask_exchange": "integer",
    },
    TRADES_TABLE: {
        "time": "datetime",
        "symbol": "string",
        "price": "float",
        "size": "float",
        "exchange": "integer",
        "is_iso": "boolean",
        "condition_mask": "integer",
        "correction": "integer",
        "trade_id": "string",
    },
    KALSHI_TABLE: {
        "time": "datetime",
        "contract": "string",
        "price": "float",
        "count": "integer",
        "taker_side": "string",
        "trade_id": "string",
    },
    BARS_TABLE: {  # the latest finished minute of each ticker (elecflow.schema.MinuteBar)
        "ticker": "string",
        "bucket": "datetime",
        "log_mid": "float",
        "quote_updates": "integer",
        "avg_rsprd_bps": "float",
        "pct_trades_iso": "float",
        "pct_volume_iso": "float",
        "total_flow_non_iso": "float",
        "total_flow_iso": "float",
        "num_trades": "integer",
        "num_trades_iso": "integer",
        "total_volume": "float",
        "total_flow": "float",
        "iso_flow_intensity": "float",
        "microprice": "float",
        "microprice_var": "float",
        "p_up": "float",  # the up-move classifier's probability for the next minute (upmove_1m)
    },
    KALSHI_FILTER_TABLE: {  # filter updates at fills (elecflow.schema.KalshiProbability, kind "fill")
        "time": "datetime",
        "contract": "string",
        "p_obs": "float",
        "p": "float",
        "p_lo": "float",
        "p_hi": "float",
        "z": "float",
        "regime": "string",
        "warm": "boolean",
    },
    # the same updates in long form, one row per series, for a chart split by series
    KALSHI_SERIES_TABLE: {"time": "datetime", "series": "string", "value": "float"},
    OPTION_SUMMARY_TABLE: {
        "underlying": "string", "time": "datetime", "forward": "float", "forward_method": "string",
        "atm_iv": "float", "mean": "float", "sd": "float", "skew": "float", "kurtosis": "float",
        "q05": "float", "q50": "float", "q95": "float", "n_quotes_used": "integer", "n_excluded": "integer",
        "mass_error": "float", "n_arbitrage_violations": "integer", "gp_incremental": "integer",
        "gp_full_fits": "integer", "density_error": "string",
    },
    OPTION_HISTORY_TABLE: {"time": "datetime", "underlying": "string", "atm_iv": "float",
                           "sd_over_forward": "float", "skew": "float", "kurtosis": "float"},
    SMILE_TABLE: {"key": "string", "underlying": "string", "series": "string", "k": "float", "iv": "float"},
    DENSITY_TABLE: {"key": "string", "underlying": "string", "strike": "float", "density": "float",
                    "cdf": "float"},
    STATES_TABLE: {
        "key": "string", "underlying": "string", "mode": "string", "time": "datetime", "identified": "boolean",
        "label": "string", "kalshi_probability": "float", "trump_probability": "float",
        "trump_probability_se": "float", "trump_probability_filtered": "float", "probability_gap": "float",
        "trump_expected_return": "float",
        "trump_expected_return_se": "float", "harris_expected_return": "float",
        "harris_expected_return_se": "float", "trump_vol": "float", "trump_vol_se": "float",
        "harris_vol": "float", "harris_vol_se": "float", "rmse_vol_points": "float", "fit_ms": "float",
        "message": "string",
    },
    HEDGE_TABLE: {"underlying": "string", "time": "datetime", "election_delta": "float",
                  "delta_per_point": "float", "kalshi_contracts": "float", "market_value": "float",
                  "status": "string"},
    STATES_PROBABILITY_TABLE: {"time": "datetime", "underlying": "string", "series": "string", "p": "float"},
    STATES_DENSITY_TABLE: {"key": "string", "underlying": "string", "series": "string", "strike": "float",
                           "density": "float"},
    CLOCK_TABLE: {
        "key": "string",
        "time": "datetime",
        "state": "string",
        "speed": "float",
        "quotes": "integer",
        "trades": "integer",
        "nbbo_1s": "integer",
        "option_quotes": "integer",
        "kalshi_trades": "integer",
        "option_trades": "integer",
    },
}


def create_default_tables(server: Any) -> None:
    """Create the dashboard's four tables on ``server`` (a DashboardServer)."""
    server.add_table(QUOTES_TABLE, TABLE_SCHEMAS[QUOTES_TABLE], index="symbol")
    server.add_table(TRADES_TABLE, TABLE_SCHEMAS[TRADES_TABLE], limit=TRADES_LIMIT)
    server.add_table(KALSHI_TABLE, TABLE_SCHEMAS[KALSHI_TABLE], limit=KALSHI_LIMIT)
    server.add_table(CLOCK_TABLE, TABLE_SCHEMAS[CLOCK_TABLE], index="key")
    server.add_table(BARS_TABLE, TABLE_SCHEMAS[BARS_TABLE], index="ticker")
    server.add_table(OPTION_SUMMARY_TABLE, TABLE_SCHEMAS[OPTION_SUMMARY_TABLE], index="underlying")
    server.add_table(OPTION_HISTORY_TABLE, TABLE_SCHEMAS[OPTION_HISTORY_TABLE], limit=OPTION_HISTORY_LIMIT)
    server.add_table(SMILE_TABLE, TABLE_SCHEMAS[SMILE_TABLE], index="key")
    server.add_table(DENSITY_TABLE, TABLE_SCHEMAS[DENSITY_TABLE], index="key")
    server.add_table(STATES_TABLE, TABLE_SCHEMAS[STATES_TABLE], index="key")
    server.add_table(HEDGE_TABLE, TABLE_SCHEMAS[HEDGE_TABLE], index="underlying")
    server.add_table(STATES_PROBABILITY_TABLE, TABLE_SCHEMAS[STATES_PROBABILITY_TABLE], limit=OPTION_HISTORY_LIMIT)
    server.add_table(STATES_DENSITY_TABLE, TABLE_SCHEMAS[STATES_DENSITY_TABLE], index="key")
    server.add_table(KALSHI_FILTER_TABLE, TABLE_SCHEMAS[KALSHI_FILTER_TABLE], limit=KALSHI_FILTER_LIMIT)
    server.add_table(KALSHI_SERIES_TABLE, TABLE_SCHEMAS[KALSHI_SERIES_TABLE], limit=4 * KALSHI_FILTER_LIMIT)
    for table in LEADERSHIP_TABLES:  # price discovery, lead-lag, sweeps: latest per key (see below)
        server.add_table(table, TABLE_SCHEMAS[table], index="key")
    for table, kw in FACTOR_TABLES.items():  # Fama-French factors (see below)
        server.add_table(table, TABLE_SCHEMAS[table], **kw)
    for table, kw in IMPACT_TABLES.items():  # cross impact of option order flow (see below)
        server.add_table(table, TABLE_SCHEMAS[table], **kw)


# --------------------------------------------------------------------------------------
# Row conversion: pure functions, struct -> JSON-safe dict
# --------------------------------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1)
_ONE_MS = dt.timedelta(milliseconds=1)


def epoch_ms(t: dt.datetime | None) -> int | None:
    """Milliseconds since the Unix epoch. Naive datetimes mean UTC (csp's convention)."""
    if t is None:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return (t - _EPOCH) // _ONE_MS


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: send null (non-float values pass through)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _get(struct: csp.Struct, field: str, default: Any = None) -> Any:
    """A struct field, or ``default`` when it was never set (csp raises on unset fields)."""
    return getattr(struct, field, default)


def quote_row(q: EquityQuote) -> dict[str, Any]:
    """Latest-quote row: bid/ask, mid and the quoted spread in basis points of the mid.

    Mid and spread are null unless both sides are positive (one-sided or empty book).
    """
    bid = _get(q, "bid_price", math.nan)
    ask = _get(q, "ask_price", math.nan)
    mid = spread_bps = None
    if bid > 0 and ask > 0:
        mid = 0.5 * (bid + ask)
        spread_bps = (ask - bid) / mid * 1e4
    return {
        "symbol": q.symbol,
        "time": epoch_ms(_get(q, "time")),
        "bid": _finite(bid),
        "ask": _finite(ask),
        "mid": mid,
        "spread_bps": spread_bps,
        "bid_size": _finite(_get(q, "bid_size", math.nan)),
        "ask_size": _finite(_get(q, "ask_size", math.nan)),
        "bid_exchange": _get(q, "bid_exchange"),
        "ask_exchange": _get(q, "ask_exchange"),
    }


def trade_row(t: EquityTrade) -> dict[str, Any]:
    return {
        "time": epoch_ms(_get(t, "time")),
        "symbol": t.symbol,
        "price": _finite(_get(t, "price", math.nan)),
        "size": _finite(_get(t, "size", math.nan)),
        "exchange": _get(t, "exchange"),
        "is_iso": _get(t, "is_iso"),
        "condition_mask": _get(t, "condition_mask"),
        "correction": _get(t, "correction"),
        "trade_id": _get(t, "trade_id"),
    }


def kalshi_row(k: KalshiTrade) -> dict[str, Any]:
    return {
        "time": epoch_ms(_get(k, "time")),
        "contract": k.contract,
        "price": _finite(_get(k, "price", math.nan)),
        "count": _get(k, "count"),
        "taker_side": _get(k, "taker_side"),
        "trade_id": _get(k, "trade_id"),
    }


def bar_row(b: MinuteBar) -> dict[str, Any]:
    """A per-minute feature row; the relative spread is shown in basis points, NaN as null."""
    row = {name: _finite(getattr(b, name)) for name in TABLE_SCHEMAS[BARS_TABLE] if name not in (
        "bucket", "avg_rsprd_bps", "p_up")}
    row["bucket"] = epoch_ms(b.bucket)
    row["avg_rsprd_bps"] = _finite(b.avg_rsprd * 1e4)
    return row


def kalshi_filter_row(k: KalshiProbability) -> dict[str, Any]:
    """A filter update at a fill: raw (as a probability), filtered, and the +/- 2 sd band."""
    return {"time": epoch_ms(k.time), "contract": k.contract, "p_obs": _finite(k.p_obs), "p": _finite(k.p),
            "p_lo": _finite(max(0.0, k.p - 2.0 * k.sd)), "p_hi": _finite(min(1.0, k.p + 2.0 * k.sd)),
            "z": _finite(k.z), "regime": k.regime, "warm": k.warm}


KALSHI_SERIES = (("raw fill", "p_obs"), ("filtered", "p"), ("-2 sd", "p_lo"), ("+2 sd", "p_hi"))


def kalshi_series_rows(k: KalshiProbability) -> list[dict[str, Any]]:
    """One filter update as long-form chart rows: raw fill, filtered, and the band edges."""
    wide = kalshi_filter_row(k)
    return [{"time": wide["time"], "series": name, "value": wide[column]} for name, column in KALSHI_SERIES]


def clock_row(c: ReplayClock) -> dict[str, Any]:
    """The one row of the replay clock table (constant key :data:`CLOCK_KEY`)."""
    return {
        "key": CLOCK_KEY,
        "time": epoch_ms(_get(c, "time")),
        "state": _get(c, "state"),
        "speed": _get(c, "speed"),
        "quotes": _get(c, "quotes"),
        "trades": _get(c, "trades"),
        "nbbo_1s": _get(c, "nbbo_1s"),
        "option_quotes": _get(c, "option_quotes"),
        "kalshi_trades": _get(c, "kalshi_trades"),
        "option_trades": _get(c, "option_trades"),
    }


# --------------------------------------------------------------------------------------
# Throttled publishing nodes
# --------------------------------------------------------------------------------------


def _push(server: Any, table: str, rows: list[dict[str, Any]], errors: list[int]) -> None:
    """Send rows; a dashboard failure is logged, never allowed to stop the replay."""
    try:
        server.update(table, rows)
    except Exception:
        errors[0] += 1
        if errors[0] == 1:
            log.exception("dashboard: update of table %r failed (further failures counted)", table)


class _LatestByKey:
    """Pending structs of a ``publish_latest``: the newest per key (references, no rows yet)."""

    def __init__(self, key_field: str):
        self.key_field = key_field
        self.items: dict = {}

    def add(self, x) -> None:
        self.items[getattr(x, self.key_field)] = x

    def drain(self) -> list:
        out = list(self.items.values())
        self.items.clear()
        return out

    def __bool__(self) -> bool:
        return bool(self.items)


class _Recent:
    """Pending structs of a ``publish_recent``: the newest ``max_rows`` in arrival order."""

    def __init__(self, max_rows: int):
        self.items: deque = deque(maxlen=max(1, max_rows))

    def add(self, x) -> None:
        self.items.append(x)

    def drain(self) -> list:
        out = list(self.items)
        self.items.clear()
        return out

    def __bool__(self) -> bool:
        return bool(self.items)


@csp.node(memoize=False)
def _publish_throttled(server: object, table: str, x: ts[csp.Struct], to_row: object, throttle_seconds: float,
                       pending: object):
    """Collect ticks in ``pending`` and push them as rows on the wall-clock throttle.

    Flushes when a tick arrives and ``throttle_seconds`` of wall-clock time have passed
    since the last flush, and once more when the graph stops. In realtime mode (engine
    time is wall time) a one-shot alarm also flushes what the last tick of a burst left.
    """
    with csp.alarms():
        a_flush = csp.alarm(bool)

    with csp.state():
        s_last_flush = 0.0
        s_realtime = False
        s_alarm_set = False
        s_errors = [0]

    with csp.start():
        s_last_flush = time.monotonic()
        s_realtime = _is_configured_realtime()

    with csp.stop():
        if pending:
            _push(server, table, [to_row(v) for v in pending.drain()], s_errors)

    if csp.ticked(x):
        pending.add(x)
    if csp.ticked(a_flush):
        s_alarm_set = False
    if pending:
        now = time.monotonic()
        wait = throttle_seconds - (now - s_last_flush)
        if wait <= 0.0:
            rows = [to_row(v) for v in pending.drain()]
            s_last_flush = now
            _push(server, table, rows, s_errors)
        elif s_realtime and not s_alarm_set:
            csp.schedule_alarm(a_flush, dt.timedelta(seconds=wait), True)
            s_alarm_set = True


@csp.graph
def publish_latest(server: object, table: str, x: ts[csp.Struct], key_field: str, to_row: object,
                   throttle_seconds: float):
    """Upsert the newest struct per ``key_field`` value into ``table`` (see
    :func:`_publish_throttled` for when rows are flushed)."""
    _publish_throttled(server, table, x, to_row, throttle_seconds, _LatestByKey(key_field))


@csp.graph
def publish_recent(server: object, table: str, x: ts[csp.Struct], to_row: object, throttle_seconds: float,
                   max_rows: int):
    """Append the structs seen since the last flush (at most the newest ``max_rows``). Pair it
    with a table whose ``limit`` bounds how many rows the server and the browser keep."""
    _publish_throttled(server, table, x, to_row, throttle_seconds, _Recent(max_rows))


@csp.graph
def dashboard_graph(
    server: object,
    quotes: ts[EquityQuote],
    trades: ts[EquityTrade],
    kalshi: ts[KalshiTrade],
    clock: ts[ReplayClock],
    throttle_seconds: float = 0.25,
):
    """Feed the default tables (see :func:`create_default_tables`) from the replay streams."""
    publish_latest(server, QUOTES_TABLE, quotes, "symbol", quote_row, throttle_seconds)
    publish_recent(server, TRADES_TABLE, trades, trade_row, throttle_seconds, TRADES_LIMIT)
    publish_recent(server, KALSHI_TABLE, kalshi, kalshi_row, throttle_seconds, KALSHI_LIMIT)
    publish_recent(server, CLOCK_TABLE, clock, clock_row, throttle_seconds, 1)


@csp.node
def publish_batches(server: object, table: str, x: ts[[csp.Struct]], to_row: object):
    """Push each tick's whole list of rows at once.

    For streams that become final in bursts at a boundary (a minute's bars of all tickers):
    the burst is the natural batch, so there is nothing to throttle, and unrolling it into
    single ticks would leave the tail of a burst waiting for the next tick.
    """
    with csp.state():
        s_errors = [0]
    if x:
        _push(server, table, [to_row(v) for v in x], s_errors)


def publish_bars(server: object, bars: ts[[MinuteBar]]) -> None:
    """Each minute's finished bars into the ``bars_1m`` table (latest per ticker)."""
    publish_batches(server, BARS_TABLE, bars, bar_row)


@csp.node
def _fill_rows_only(x: ts[[KalshiProbability]]) -> ts[[KalshiProbability]]:
    fills = [k for k in x if k.kind == "fill"]
    if fills:
        return fills


def publish_kalshi_filter(server: object, probabilities: ts[[KalshiProbability]]) -> None:
    """Filter updates at fills into ``kalshi_filter`` (the regime grid: the newest row's regime
    is the regime indicator) and ``kalshi_filter_series`` (the chart: raw vs filtered with the
    band), a tick's burst at a time."""
    fills = _fill_rows_only(probabilities)
    publish_batches(server, KALSHI_FILTER_TABLE, fills, kalshi_filter_row)
    _publish_series(server, fills)


@csp.node
def _publish_series(server: object, x: ts[[KalshiProbability]]):
    with csp.state():
        s_errors = [0]
    rows = [row for k in x for row in kalshi_series_rows(k)]
    if rows:
        _push(server, KALSHI_SERIES_TABLE, rows, s_errors)


def upmove_row(u: UpMoveScore) -> dict[str, Any]:
    """A partial row of the bars table: only ``p_up`` of that ticker changes."""
    return {"ticker": u.ticker, "p_up": _finite(u.p_up)}


def publish_upmove(server: object, scores: ts[[UpMoveScore]]) -> None:
    """Each minute's up-move probabilities into the bars table's ``p_up`` column."""
    publish_batches(server, BARS_TABLE, scores, upmove_row)


def option_summary_row(r: RndSummary) -> dict[str, Any]:
    row = {name: _finite(getattr(r, name)) for name in TABLE_SCHEMAS[OPTION_SUMMARY_TABLE] if name != "time"}
    row["time"] = epoch_ms(r.time)
    return row


def option_history_row(r: RndSummary) -> dict[str, Any]:
    return {"time": epoch_ms(r.time), "underlying": r.underlying, "atm_iv": _finite(r.atm_iv),
            "sd_over_forward": _finite(r.sd / r.forward) if r.forward > 0 else None, "skew": _finite(r.skew),
            "kurtosis": _finite(r.kurtosis)}


def smile_chart_rows(points: list, previous_counts: dict) -> list[dict[str, Any]]:
    """Long-form smile rows with fixed keys: the quotes, the GP mean and its +/- 2 sd band.

    Keys are (underlying, series, position), so each refresh overwrites the previous one; when
    a series is shorter than last time, the leftover keys are blanked (no stale points).
    ``previous_counts`` maps (underlying, series) to the last length and is updated.
    """
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for p in points:
        if p.kind == "quote":
            series.setdefault((p.underlying, "quotes"), []).append((p.k, p.iv))
        else:
            series.setdefault((p.underlying, "GP mean"), []).append((p.k, p.iv))
            series.setdefault((p.underlying, "GP -2 sd"), []).append((p.k, p.iv - 2 * p.iv_sd))
            series.setdefault((p.underlying, "GP +2 sd"), []).append((p.k, p.iv + 2 * p.iv_sd))
    rows = []
    for (underlying, name), values in series.items():
        for i, (k, iv) in enumerate(values):
            rows.append({"key": f"{underlying}|{name}|{i}", "underlying": underlying, "series": name,
                         "k": _finite(k), "iv": _finite(iv)})
        for i in range(len(values), previous_counts.get((underlying, name), 0)):
            rows.append({"key": f"{underlying}|{name}|{i}", "underlying": underlying, "series": name, "k": None,
                         "iv": None})
        previous_counts[(underlying, name)] = len(values)
    return rows


def density_chart_rows(points: list) -> list[dict[str, Any]]:
    """Density and CDF on the grid, keyed by (underlying, grid position)."""
    counts: dict[str, int] = {}
    rows = []
    for p in points:
        i = counts.get(p.underlying, 0)
        counts[p.underlying] = i + 1
        rows.append({"key": f"{p.underlying}|{i}", "underlying": p.underlying, "strike": p.strike,
                     "density": _finite(p.density), "cdf": _finite(p.cdf)})
    return rows


@csp.node
def _publish_smiles(server: object, x: ts[[SmilePoint]]):
    with csp.state():
        s_counts = {}
        s_errors = [0]
    _push(server, SMILE_TABLE, smile_chart_rows(x, s_counts), s_errors)


@csp.node
def _publish_densities(server: object, x: ts[[RndCurvePoint]]):
    with csp.state():
        s_errors = [0]
    _push(server, DENSITY_TABLE, density_chart_rows(x), s_errors)


def publish_option_chains(server: object, summary: ts[[RndSummary]], smile: ts[[SmilePoint]],
                          curve: ts[[RndCurvePoint]]) -> None:
    """The option-chain panels: latest summary per underlying, moments over time, the smile
    with quotes and GP band, the density and CDF."""
    publish_batches(server, OPTION_SUMMARY_TABLE, summary, option_summary_row)
    publish_batches(server, OPTION_HISTORY_TABLE, summary, option_history_row)
    _publish_smiles(server, smile)
    _publish_densities(server, curve)


# --------------------------------------------------------------------------- election states

_STATE_COLUMNS = [c for c in TABLE_SCHEMAS[STATES_TABLE] if c not in ("key", "time")]


def state_table_row(r: ElectionState) -> dict[str, Any]:
    row = {c: _finite(getattr(r, c)) for c in _STATE_COLUMNS}
    row.update(key=f"{r.underlying}|{r.mode}", time=epoch_ms(r.time))
    return row


def state_probability_rows(rows: list) -> list[dict[str, Any]]:
    """Per underlying and minute: Kalshi's filtered probability, and the option-implied one
    (mode B, once its states are labelled) with its +/- 2 se band and its filtered value."""
    out = []
    for r in rows:
        t = epoch_ms(r.time)
        if r.mode == "A" and math.isfinite(r.kalshi_probability):
            out.append({"time": t, "underlying": r.underlying, "series": "Kalshi (filtered)",
                        "p": r.kalshi_probability})
        if r.mode == "B" and math.isfinite(r.trump_probability):
            se = r.trump_probability_se if math.isfinite(r.trump_probability_se) else 0.0
            out += [{"time": t, "underlying": r.underlying, "series": name, "p": value}
                    for name, value in (("options (mode B)", r.trump_probability),
                                        ("options -2 se", r.trump_probability - 2 * se),
                                        ("options +2 se", r.trump_probability + 2 * se))]
        if r.mode == "B" and math.isfinite(r.trump_probability_filtered):
            out.append({"time": t, "underlying": r.underlying, "series": "options (filtered)",
                        "p": r.trump_probability_filtered})
    return out


def state_density_rows(r: ElectionState, n: int = STATES_DENSITY_POINTS) -> list[dict[str, Any]]:
    """The mode-A fit's Trump and Harris lognormals, weighted by their probabilities, and their
    sum, on a strike grid covering both (fixed keys: each minute overwrites the last)."""
    p = r.trump_probability
    params = [(r.trump_mean, r.trump_vol), (r.harris_mean, r.harris_vol)]
    if not (r.mode == "A" and r.success and 0 < p < 1 and r.tau > 0
            and all(math.isfinite(m) and m > 0 and math.isfinite(v) and v > 0 for m, v in params)):
        return []
    sd = [v * math.sqrt(r.tau) for _, v in params]
    mu = [math.log(m) - 0.5 * s * s for (m, _), s in zip(params, sd)]
    lo = min(m - 4 * s for m, s in zip(mu, sd))
    hi = max(m + 4 * s for m, s in zip(mu, sd))
    strikes = np.exp(np.linspace(lo, hi, n))
    trump = p * lognormal_mixture_pdf(strikes, [1.0], [mu[0]], [sd[0]])
    harris = (1 - p) * lognormal_mixture_pdf(strikes, [1.0], [mu[1]], [sd[1]])
    out = []
    for i, x in enumerate(strikes.tolist()):
        for series, value in (("Trump wins x p", trump[i]), ("Harris wins x (1-p)", harris[i]),
                              ("mixture", trump[i] + harris[i])):
            out.append({"key": f"{r.underlying}|{series}|{i}", "underlying": r.underlying, "series": series,
                        "strike": x, "density": float(value)})
    return out


@csp.node
def _publish_states(server: object, x: ts[[ElectionState]]):
    with csp.state():
        s_errors = [0]
    for table, rows in ((STATES_TABLE, [state_table_row(r) for r in x]),
                        (STATES_PROBABILITY_TABLE, state_probability_rows(x)),
                        (STATES_DENSITY_TABLE, [row for r in x for row in state_density_rows(r)])):
        if rows:
            _push(server, table, rows, s_errors)


def hedge_row(r: ElectionHedge) -> dict[str, Any]:
    return {"underlying": r.underlying, "time": epoch_ms(r.time), "election_delta": _finite(r.election_delta),
            "delta_per_point": _finite(r.election_delta / 100.0), "kalshi_contracts": _finite(r.kalshi_contracts),
            "market_value": _finite(r.market_value), "status": r.status}


def publish_election_states(server: object, states: ts[[ElectionState]],
                            hedge: ts[[ElectionHedge]] | None = None) -> None:
    """The election-state panels: the conditional returns/vols table (latest per underlying
    and mode), option-implied vs Kalshi probability over time, the state densities, and the
    position file's election delta with its Kalshi hedge."""
    _publish_states(server, states)
    if hedge is not None:
        publish_batches(server, HEDGE_TABLE, hedge, hedge_row)



# --------------------------------------------------------------------------- leadership
# Price discovery, lead-lag and sweeps (graphs/leadership.py, docs/leadership.md). Each table
# keeps the latest row per key; ``view`` is "latest" for the newest rolling window and the
# regime's name for the regime aggregates, so the page shows one regime by filtering on it.

from elecflow.schema import LeadLagEstimate, PriceDiscovery, SweepLeadership  # noqa: E402

PRICE_DISCOVERY_TABLE = "price_discovery"
LEAD_LAG_TABLE = "lead_lag"
SWEEP_TABLE = "sweep_leadership"
LEADERSHIP_TABLES = (PRICE_DISCOVERY_TABLE, LEAD_LAG_TABLE, SWEEP_TABLE)
TABLE_SCHEMAS.update({
    PRICE_DISCOVERY_TABLE: {
        "key": "string", "view": "string", "group": "string", "member": "string", "time": "datetime",
        "regime": "string", "regime_fraction": "float", "windows": "integer", "is_lower": "float",
        "is_upper": "float", "is_mid": "float", "mis": "float", "cs": "float", "ils": "float",
        "leader_fraction": "float", "coint_rank": "integer", "coint_fraction": "float", "error": "string",
        "note": "string",
    },
    LEAD_LAG_TABLE: {
        "key": "string", "view": "string", "pair": "string", "x": "string", "y": "string", "time": "datetime",
        "regime": "string", "windows": "integer", "n_x": "integer", "n_y": "integer", "best_lag": "float",
        "best_correlation": "float", "zero_lag_correlation": "float", "lead_lag_ratio": "float",
        "null_sd": "float", "p_value": "float", "identified": "boolean", "lag_low": "float", "lag_high": "float",
        "leader": "string",
    },
    SWEEP_TABLE: {
        "key": "string", "view": "string", "measure": "string", "time": "datetime", "regime": "string",
        "slope": "float", "se": "float", "t_stat": "float", "n_obs": "integer", "n_groups": "integer",
        "r2": "float", "windows": "integer", "independent_windows": "float", "error": "string",
    },
})


def leadership_view(scope: str, regime: str) -> str:
    """The page's selector value of a row: "latest" (rolling window) or the regime's name."""
    return "latest" if scope == "window" else regime


def price_discovery_row(r: PriceDiscovery, notes: dict | None = None) -> dict[str, Any]:
    view = leadership_view(r.scope, r.regime)
    row = {name: _finite(getattr(r, name)) for name in TABLE_SCHEMAS[PRICE_DISCOVERY_TABLE]
           if name not in ("key", "view", "time", "note")}
    row.update(key=f"{r.group}|{r.member}|{view}", view=view, time=epoch_ms(r.time),
               note=(notes or {}).get(r.group, ""))
    return row


def lead_lag_row(r: LeadLagEstimate) -> dict[str, Any]:
    view = leadership_view(r.scope, r.regime)
    row = {name: _finite(getattr(r, name)) for name in TABLE_SCHEMAS[LEAD_LAG_TABLE]
           if name not in ("key", "view", "time", "leader")}
    ratio = r.lead_lag_ratio
    # a curve whose peak is noise names no leader, whatever its ratio (NaN compares False: none either)
    leader = "" if not r.identified else r.x if ratio > 1.0 else r.y if 0.0 <= ratio < 1.0 else ""
    row.update(key=f"{r.pair}|{r.x}|{r.y}|{view}", view=view, time=epoch_ms(r.time), leader=leader)
    return row


def sweep_row(r: SweepLeadership) -> dict[str, Any]:
    view = leadership_view(r.scope, r.regime)
    row = {name: _finite(getattr(r, name)) for name in TABLE_SCHEMAS[SWEEP_TABLE] if name not in ("key", "view", "time")}
    row.update(key=f"{r.measure}|{view}", view=view, time=epoch_ms(r.time))
    return row


def publish_leadership(server: object, shares: ts[[PriceDiscovery]], lead_lags: ts[[LeadLagEstimate]],
                       sweeps: ts[[SweepLeadership]], notes: dict | None = None) -> None:
    """The leadership panel's tables, one burst per publication (``notes``: group -> caveat)."""
    def to_row(r: PriceDiscovery) -> dict[str, Any]:
        return price_discovery_row(r, notes)

    publish_batches(server, PRICE_DISCOVERY_TABLE, shares, to_row)
    publish_batches(server, LEAD_LAG_TABLE, lead_lags, lead_lag_row)
    publish_batches(server, SWEEP_TABLE, sweeps, sweep_row)


# --------------------------------------------------------------------------- Fama-French factors
# (graphs/factors.py, docs/factors.md): cumulative factor returns over time (one point per factor
# and minute) and per regime, the systematic-vs-idiosyncratic heatmap (one row per instrument,
# columns per regime), and the latest ETF replica per ETF.

from elecflow.schema import EtfReplication, FactorDecomposition, FactorReturn  # noqa: E402
from elecflow.universe import INSTRUMENTS as _INSTRUMENTS, SECONDS_PER_TRADING_YEAR as _YEAR_S  # noqa: E402

FACTOR_CHART_TABLE = "factor_returns_chart"
FACTOR_REGIME_TABLE = "factor_regimes"
FACTOR_HEATMAP_TABLE = "factor_heatmap"
ETF_REPLICATION_TABLE = "etf_replication"
FACTOR_CHART_LIMIT = 20000
FACTOR_CHART_NS = 60 * 1_000_000_000  # one chart point per factor and minute of engine time
FACTOR_FIELDS = (("MKT-RF", "mkt_rf"), ("SMB", "smb"), ("HML", "hml"), ("RMW", "rmw"), ("CMA", "cma"))
HEATMAP_REGIMES = ("pre_open", "regular", "close", "after_hours")  # the regimes with equity quotes
TABLE_SCHEMAS.update({
    FACTOR_CHART_TABLE: {"time": "datetime", "factor": "string", "regime": "string", "cumulative_bps": "float"},
    FACTOR_REGIME_TABLE: {"key": "string", "factor": "string", "regime": "string", "time": "datetime",
                          "seconds": "integer", "return_bps": "float", "vol_annual": "float"},
    FACTOR_HEATMAP_TABLE: {
        "symbol": "string", "kind": "string", "time": "datetime", "regime": "string",
        "beta_mkt_rf": "float", "beta_smb": "float", "beta_hml": "float", "beta_rmw": "float", "beta_cma": "float",
        "systematic_share": "float",
        **{f"sys_share_{r}": "float" for r in HEATMAP_REGIMES},
        **{f"idio_ratio_{r}": "float" for r in HEATMAP_REGIMES},
    },
    ETF_REPLICATION_TABLE: {
        "etf": "string", "time": "datetime", "regime": "string", "n_stocks": "integer", "weight_sum": "float",
        "weight_norm": "float", "gross_exposure": "float", "exposure_error": "float", "condition": "float",
        "method": "string", "tracking_error_bps": "float", "realized_tracking_error_bps": "float",
        "tracking_error_annual": "float", "realized_tracking_error_annual": "float",
    },
})
FACTOR_TABLES: dict[str, dict] = {FACTOR_CHART_TABLE: {"limit": FACTOR_CHART_LIMIT}, FACTOR_REGIME_TABLE: {"index": "key"},
                                  FACTOR_HEATMAP_TABLE: {"index": "symbol"}, ETF_REPLICATION_TABLE: {"index": "etf"}}


class FactorChartState:
    """Cumulative factor returns (whole run and per regime) from 1 s factor returns, turned into
    chart rows once per minute of engine time. Cumulative returns compound the 1 s returns;
    a regime's vol is its realised vol per second scaled to a regular-hours year."""

    def __init__(self):
        self.log_growth = np.zeros(len(FACTOR_FIELDS))
        self.regimes: dict[str, list] = {}  # regime -> [log growth (K,), sum of squares (K,), seconds, last time]
        self.bucket: int | None = None
        self.last: FactorReturn | None = None

    def add(self, r: FactorReturn) -> tuple[list[dict], list[dict]]:
        f = np.array([getattr(r, name) for _, name in FACTOR_FIELDS])
        self.log_growth += np.log1p(f)
        acc = self.regimes.setdefault(r.regime, [np.zeros(len(f)), np.zeros(len(f)), 0, r.time])
        acc[0] += np.log1p(f)
        acc[1] += f * f
        acc[2] += 1
        acc[3] = r.time
        self.last = r
        bucket = datetime_to_ns_floor(r.time, FACTOR_CHART_NS)
        if self.bucket is None or bucket != self.bucket:
            self.bucket = bucket
            return self.rows()
        return [], []

    def rows(self) -> tuple[list[dict], list[dict]]:
        """The chart points now and the per-regime rows of the current regime."""
        if self.last is None:
            return [], []
        t = epoch_ms(self.last.time)
        chart = [{"time": t, "factor": name, "regime": self.last.regime, "cumulative_bps": float(np.expm1(g) * 1e4)}
                 for (name, _), g in zip(FACTOR_FIELDS, self.log_growth)]
        growth, squares, seconds, when = self.regimes[self.last.regime]
        regime = [{"key": f"{name}|{self.last.regime}", "factor": name, "regime": self.last.regime,
                   "time": epoch_ms(when), "seconds": int(seconds), "return_bps": float(np.expm1(g) * 1e4),
                   "vol_annual": float(math.sqrt(s / seconds * _YEAR_S)) if seconds else None}
                  for (name, _), g, s in zip(FACTOR_FIELDS, growth, squares)]
        return chart, regime


def datetime_to_ns_floor(t: dt.datetime, step_ns: int) -> int:
    return (epoch_ms(t) * 1_000_000) // step_ns


@csp.node
def _publish_factor_returns(server: object, x: ts[[FactorReturn]]):
    with csp.state():
        s_chart = FactorChartState()
        s_errors = [0]
    with csp.stop():  # the last minute's point
        chart, regime = s_chart.rows()
        if chart:
            _push(server, FACTOR_CHART_TABLE, chart, s_errors)
            _push(server, FACTOR_REGIME_TABLE, regime, s_errors)
    for r in x:
        chart, regime = s_chart.add(r)
        if chart:
            _push(server, FACTOR_CHART_TABLE, chart, s_errors)
            _push(server, FACTOR_REGIME_TABLE, regime, s_errors)


def factor_heatmap_row(r: FactorDecomposition) -> dict[str, Any]:
    """A partial row of the heatmap: betas, the window's systematic share, and this regime's
    systematic share and idiosyncratic ratio vs the baseline (other regimes' columns stay)."""
    inst = _INSTRUMENTS.get(r.symbol)
    row = {"symbol": r.symbol, "kind": inst.kind if inst is not None else "", "time": epoch_ms(r.time),
           "regime": r.regime, "systematic_share": _finite(r.systematic_share)}
    row.update({name: _finite(getattr(r, name)) for name in ("beta_mkt_rf", "beta_smb", "beta_hml", "beta_rmw",
                                                             "beta_cma")})
    if r.regime in HEATMAP_REGIMES:
        total = r.regime_systematic_var + r.regime_idiosyncratic_var
        row[f"sys_share_{r.regime}"] = _finite(r.regime_systematic_var / total) if total > 0 else None
        row[f"idio_ratio_{r.regime}"] = _finite(r.idio_ratio_vs_baseline)
    return row


def etf_replication_row(r: EtfReplication) -> dict[str, Any]:
    row = {name: _finite(getattr(r, name)) for name in TABLE_SCHEMAS[ETF_REPLICATION_TABLE] if name != "time"}
    row["time"] = epoch_ms(r.time)
    return row


def publish_factors(server: object, returns: ts[[FactorReturn]], decomposition: ts[[FactorDecomposition]],
                    replication: ts[[EtfReplication]]) -> None:
    """The factor panel's tables: the factor-returns chart and per-regime table, the
    systematic/idiosyncratic heatmap, and the ETF replicas (one burst per interval)."""
    _publish_factor_returns(server, returns)
    publish_batches(server, FACTOR_HEATMAP_TABLE, decomposition, factor_heatmap_row)
    publish_batches(server, ETF_REPLICATION_TABLE, replication, etf_replication_row)


# --------------------------------------------------------------------------- cross impact
# Eq. (45) on option order flow (graphs/impact.py, docs/theory.md): the latest matrix as a
# heatmap, the within-straddle statistic per strike over time, and the latest of every
# statistic with its standard error.

from elecflow.schema import CrossImpact, ImpactStat  # noqa: E402

IMPACT_HEATMAP_TABLE = "impact_heatmap"  # the latest Lambda, one fixed key per (underlying, i, j)
IMPACT_STRADDLE_TABLE = "impact_straddle"  # straddle cross impact per strike over time (chart)
IMPACT_STATS_TABLE = "impact_stats"  # the latest row per (underlying, statistic, label)
IMPACT_STRADDLE_LIMIT = 20000
TABLE_SCHEMAS.update({
    IMPACT_HEATMAP_TABLE: {"key": "string", "underlying": "string", "time": "datetime", "label_i": "string",
                           "label_j": "string", "impact": "float", "se": "float", "t_stat": "float"},
    IMPACT_STRADDLE_TABLE: {"time": "datetime", "underlying": "string", "series": "string", "value": "float",
                            "se": "float"},
    IMPACT_STATS_TABLE: {"key": "string", "underlying": "string", "time": "datetime", "statistic": "string",
                         "label": "string", "value": "float", "se": "float", "t_stat": "float", "n": "integer",
                         "periods": "integer", "shrinkage": "float", "dof": "float", "source": "string"},
})
IMPACT_TABLES: dict[str, dict] = {IMPACT_HEATMAP_TABLE: {"index": "key"},
                                  IMPACT_STRADDLE_TABLE: {"limit": IMPACT_STRADDLE_LIMIT},
                                  IMPACT_STATS_TABLE: {"index": "key"}}


def _t_stat(value: float, se: float) -> float | None:
    return _finite(value / se) if se > 0 else None


def impact_heatmap_row(r: CrossImpact) -> dict[str, Any]:
    """One entry of the latest matrix: row ``label_i`` (price), column ``label_j`` (flow)."""
    return {"key": f"{r.underlying}|{r.i}|{r.j}", "underlying": r.underlying, "time": epoch_ms(r.time),
            "label_i": r.label_i, "label_j": r.label_j, "impact": _finite(r.impact), "se": _finite(r.se),
            "t_stat": _t_stat(r.impact, r.se)}


def impact_straddle_row(r: ImpactStat) -> dict[str, Any]:
    return {"time": epoch_ms(r.time), "underlying": r.underlying, "series": f"K {r.label}",
            "value": _finite(r.value), "se": _finite(r.se)}


def impact_stat_row(r: ImpactStat) -> dict[str, Any]:
    return {"key": f"{r.underlying}|{r.statistic}|{r.label}", "underlying": r.underlying, "time": epoch_ms(r.time),
            "statistic": r.statistic, "label": r.label, "value": _finite(r.value), "se": _finite(r.se),
            "t_stat": _t_stat(r.value, r.se), "n": r.n, "periods": r.periods, "shrinkage": _finite(r.shrinkage),
            "dof": _finite(r.dof), "source": r.source}


@csp.node
def _publish_impact_stats(server: object, x: ts[[ImpactStat]]):
    with csp.state():
        s_errors = [0]
    _push(server, IMPACT_STATS_TABLE, [impact_stat_row(r) for r in x], s_errors)
    straddles = [impact_straddle_row(r) for r in x if r.statistic == "straddle"]
    if straddles:
        _push(server, IMPACT_STRADDLE_TABLE, straddles, s_errors)


def publish_impact(server: object, matrix: ts[[CrossImpact]], stats: ts[[ImpactStat]]) -> None:
    """The cross-impact panel: heatmap of the latest matrix, the straddle statistic per strike
    over time, and the latest statistics, one publication (a burst) at a time."""
    publish_batches(server, IMPACT_HEATMAP_TABLE, matrix, impact_heatmap_row)
    _publish_impact_stats(server, stats)
