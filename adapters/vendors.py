"""Readers for the vendors' own file formats, mapped to the canonical event columns.

One place holds every mapping (column names, units, time zones, condition codes): the
``FORMATS`` table and the ``_to_canonical_*`` functions below. A reader yields raw batches
(bounded memory), converts each to canonical columns, and reports per row either a reason
code (quarantine) or acceptance. Stateful checks (ordering, duplicates) and routing happen in
:mod:`elecflow.adapters.ingest`.

Formats (see docs/data-formats.md for the full contracts):

=====================  ==============  ====================================================
format                 stream          vendor file
=====================  ==============  ====================================================
polygon_quotes         quotes          Polygon flat file ``us_stocks_sip/quotes_v1`` (CSV[.gz] or Parquet)
polygon_trades         trades          Polygon flat file ``us_stocks_sip/trades_v1``
nbbo_1s                nbbo_1s         1-second downsampled NBBO (right-endpoint timestamps)
thetadata_raw          option_quotes   ThetaData quote snapshots, raw fields
thetadata_formatted    option_quotes   ThetaData snapshots as formatted by the public project
thetadata_trades       option_trades   ThetaData option trade ticks (+ optional aggressor ``side``)
kalshi_daily_report    kalshi_trades   ``trade_data_YYYY-MM-DD.json`` public daily report
kalshi_rest            kalshi_trades   REST ``/trades`` responses (``{"trades": [...]}``)
=====================  ==============  ====================================================
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from elecflow import conditions as cond
from elecflow.quality import REASON_CODE

NEW_YORK = ZoneInfo("America/New_York")
# Ids a trade may carry: those in the Polygon table that fit the condition bitmask. Polygon's
# financial-status indicators 63..71 are listed in the table but never expected on trades.
_KNOWN_CONDITIONS = frozenset(cond.TABLE.known_ids)


class VendorFileError(Exception):
    """A fatal problem with an input file: missing, unreadable, or missing a required column.

    The message names the file (and the column); the CLI prints it without a traceback and
    exits non-zero.
    """


@dataclass(frozen=True)
class FormatSpec:
    name: str
    stream: str
    required: tuple[str, ...]
    # columns that identify the format when sniffing a file of unknown name
    signature: tuple[str, ...]


FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            "polygon_quotes",
            "quotes",
            required=("ticker", "ask_exchange", "ask_price", "ask_size", "bid_exchange", "bid_price", "bid_size",
                      "sequence_number", "sip_timestamp"),
            signature=("ticker", "ask_price", "bid_price", "sip_timestamp", "ask_exchange", "bid_exchange"),
        ),
        FormatSpec(
            "polygon_trades",
            "trades",
            required=("ticker", "conditions", "correction", "exchange", "id", "price", "sequence_number",
                      "sip_timestamp", "size"),
            signature=("ticker", "price", "size", "sip_timestamp", "conditions", "exchange", "id"),
        ),
        FormatSpec(
            "nbbo_1s",
            "nbbo_1s",
            required=("symbol", "timestamp", "bid_price", "ask_price"),
            signature=("symbol", "timestamp", "bid_price", "ask_price"),
        ),
        FormatSpec(
            "thetadata_raw",
            "option_quotes",
            required=("root", "exp", "strike", "right", "date", "ms_of_day", "bid_size", "bid", "ask_size", "ask"),
            signature=("root", "exp", "strike", "right", "ms_of_day", "bid", "ask"),
        ),
        FormatSpec(
            "thetadata_formatted",
            "option_quotes",
            required=("symbol", "timestamp", "underlying", "expiration", "strike", "right", "bid", "ask",
                      "bid_size", "ask_size"),
            signature=("symbol", "timestamp", "underlying", "expiration", "strike", "right"),
        ),
        # ThetaData's option trade ticks (v2 hist/option/trade fields behind the contract columns of
        # its bulk responses), as the informed-market simulator writes them (elecflow.theory.simulator):
        # `side` (B/S) is optional, real prints are unsigned. The expiry column is `expiration`: with
        # the quote files' `exp` a trade file would look like a thetadata_raw quote file.
        FormatSpec(
            "thetadata_trades",
            "option_trades",
            required=("root", "expiration", "strike", "right", "date", "ms_of_day", "price", "size"),
            signature=("root", "expiration", "strike", "right", "ms_of_day", "price", "size", "sequence",
                       "condition"),
        ),
        FormatSpec(
            "kalshi_daily_report",
            "kalshi_trades",
            required=("ticker_name", "create_ts", "contracts_traded", "price"),
            signature=("ticker_name", "create_ts", "contracts_traded", "price"),
        ),
        FormatSpec(
            "kalshi_rest",
            "kalshi_trades",
            required=("ticker", "count", "yes_price", "created_time"),
            signature=("ticker", "count", "yes_price", "created_time", "taker_side"),
        ),
    )
}

STREAMS: tuple[str, ...] = ("quotes", "trades", "nbbo_1s", "option_quotes", "kalshi_trades", "option_trades")

# Canonical Arrow schemas: column names and types equal the csp.Struct fields in
# elecflow.schema, so csp's Parquet reader fills the structs without a field map.
_TS = pa.timestamp("ns", tz="UTC")
CANONICAL_SCHEMAS: dict[str, pa.Schema] = {
    "quotes": pa.schema([("time", _TS), ("symbol", pa.string()), ("bid_price", pa.float64()),
                         ("bid_size", pa.float64()), ("bid_exchange", pa.int64()), ("ask_price", pa.float64()),
                         ("ask_size", pa.float64()), ("ask_exchange", pa.int64()), ("sequence_number", pa.int64())]),
    "trades": pa.schema([("time", _TS), ("symbol", pa.string()), ("price", pa.float64()), ("size", pa.float64()),
                         ("exchange", pa.int64()), ("condition_mask", pa.int64()), ("is_iso", pa.bool_()),
                         ("correction", pa.int64()), ("sequence_number", pa.int64()), ("trade_id", pa.string())]),
    "nbbo_1s": pa.schema([("time", _TS), ("symbol", pa.string()), ("bid_price", pa.float64()),
                          ("ask_price", pa.float64())]),
    "option_quotes": pa.schema([("time", _TS), ("contract", pa.string()), ("underlying", pa.string()),
                                ("expiry", pa.date32()), ("strike", pa.float64()), ("right", pa.string()),
                                ("bid", pa.float64()), ("ask", pa.float64()), ("bid_size", pa.float64()),
                                ("ask_size", pa.float64())]),
    "kalshi_trades": pa.schema([("time", _TS), ("contract", pa.string()), ("price", pa.float64()),
                                ("count", pa.int64()), ("taker_side", pa.string()), ("trade_id", pa.string())]),
    "option_trades": pa.schema([("time", _TS), ("contract", pa.string()), ("underlying", pa.string()),
                                ("expiry", pa.date32()), ("strike", pa.float64()), ("right", pa.string()),
                                ("price", pa.float64()), ("size", pa.float64()), ("side", pa.int64()),
                                ("exchange", pa.int64()), ("condition", pa.int64()), ("sequence", pa.int64())]),
}
# The column that defines "the same instrument" for ordering and duplicate checks.
KEY_COLUMN: dict[str, str] = {"quotes": "symbol", "trades": "symbol", "nbbo_1s": "symbol",
                              "option_quotes": "contract", "kalshi_trades": "contract", "option_trades": "contract"}

# ThetaData option roots that differ from the Polygon ticker of the underlying.
OPTION_ROOT_TO_TICKER: dict[str, str] = {"BRKB": "BRK.B", "BFB": "BF.B"}


@dataclass
class CanonicalBatch:
    """One batch of rows mapped to canonical columns.

    ``columns`` holds numpy arrays (object arrays for strings, int64 ns for ``time``);
    ``codes`` is the per-row reason code from parsing (0 = parsed fine); ``raw`` gives the
    original record of a row for the quarantine file; ``first_row`` is the 1-based row number
    in the file of this batch's first row.
    """

    columns: dict[str, np.ndarray]
    codes: np.ndarray
    raw: "RawRows"
    first_row: int

    def __len__(self) -> int:
        return self.codes.size


class RawRows:
    """Lazy access to original records, so only rejected rows are ever converted."""

    def __init__(self, batch: pa.RecordBatch | None = None, records: list | None = None):
        self._batch = batch
        self._records = records

    def get(self, i: int) -> str:
        if self._records is not None:
            rec = self._records[i]
            return rec if isinstance(rec, str) else json.dumps(rec, default=str, sort_keys=True)
        row = self._batch.slice(i, 1).to_pylist()[0]
        return json.dumps(row, default=str, sort_keys=True)


# --------------------------------------------------------------------------------------
# Sniffing and discovery
# --------------------------------------------------------------------------------------

# CSV is parsed in blocks of this many bytes (~12k Polygon rows). Measured on the default day
# and on a 2.5x denser one: peak memory of validating the quotes file stayed at ~210 MB for
# both with 1 MiB blocks, against 480 and 715 MB with 16 MiB blocks, at the same speed.
CSV_BLOCK_BYTES = 1 << 20

_DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".json", ".jsonl", ".json.gz")


def _is_data_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in _DATA_SUFFIXES)


def file_columns(path: Path) -> list[str]:
    """Column names (or JSON record keys) of a vendor file, read cheaply."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            return list(pq.read_schema(path).names)
        if name.endswith(".csv") or name.endswith(".csv.gz"):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", newline="") as fh:
                header = fh.readline()
            return [c.strip().strip('"') for c in header.rstrip("\r\n").split(",")]
        if name.endswith(".json") or name.endswith(".jsonl") or name.endswith(".json.gz"):
            return sorted(_first_json_record(path).keys())
    except (OSError, pa.ArrowInvalid, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise VendorFileError(f"{path}: cannot read the file header ({exc})") from exc
    return []


def _first_json_record(path: Path) -> dict:
    for rec in _json_records(path):
        if isinstance(rec, dict):
            return rec
    return {}


def sniff_format(path: Path) -> tuple[str | None, list[str]]:
    """Best matching format of a file and the required columns it lacks.

    A file matches a format when it has most of that format's signature columns; the
    format with the largest share wins. Returns ``(None, [])`` when nothing matches.
    """
    cols = set(file_columns(path))
    best, best_share = None, 0.0
    for spec in FORMATS.values():
        share = len(cols.intersection(spec.signature)) / len(spec.signature)
        if share > best_share:
            best, best_share = spec, share
    if best is None or best_share < 0.6:
        return None, []
    missing = [c for c in best.required if c not in cols]
    return best.name, missing


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: str

    @property
    def stream(self) -> str:
        return FORMATS[self.format].stream


def discover(data_dir: Path) -> tuple[list[SourceFile], list[Path]]:
    """Find vendor files under ``data_dir`` by their columns, not by their names.

    Returns the recognised files and the data files that matched no format. A recognised
    file that lacks a required column is fatal (:class:`VendorFileError` naming both).
    """
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise VendorFileError(f"{data_dir}: data directory does not exist")
    if not data_dir.is_dir():
        raise VendorFileError(f"{data_dir}: not a directory")
    found, unknown = [], []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file() and _is_data_file(p)):
        # factor_universe/: the broad Fama-French universe's own 1 s NBBO and weights, read by the
        # factor pipeline (elecflow.adapters.factors), not replayed as the 40's streams
        if ("ground_truth" in path.parts or "factor_universe" in path.relative_to(data_dir).parts
                or path.name == "manifest.json"):
            continue
        fmt, missing = sniff_format(path)
        if fmt is None:
            unknown.append(path)
            continue
        if missing:
            raise VendorFileError(
                f"{path}: looks like {fmt} but is missing required column "
                + ", ".join(repr(c) for c in missing)
            )
        found.append(SourceFile(path, fmt))
    return found, unknown


def check_source(source: SourceFile) -> None:
    """Fail clearly if a named source file is missing or lacks a required column."""
    if not source.path.exists():
        raise VendorFileError(f"{source.path}: file not found (expected {source.format})")
    cols = set(file_columns(source.path))
    missing = [c for c in FORMATS[source.format].required if c not in cols]
    if missing:
        raise VendorFileError(
            f"{source.path}: missing required column " + ", ".join(repr(c) for c in missing)
            + f" for format {source.format}"
        )


# --------------------------------------------------------------------------------------
# Raw batch reading (bounded memory)
# --------------------------------------------------------------------------------------


def _raw_batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        # one row group at a time: iter_batches over the whole file reads ahead and was
        # measured to decode entire files at once
        pf = pq.ParquetFile(path)
        for k in range(pf.metadata.num_row_groups):
            yield from pf.iter_batches(batch_size=batch_rows, row_groups=[k])
        return
    # CSV: every column as text, converted column by column afterwards, so a single bad
    # value quarantines its row instead of aborting the whole file.
    header = file_columns(path)
    read_opts = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=True)
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=True,
                                   quoted_strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(path, read_options=read_opts, convert_options=convert)
        for batch in reader:
            yield batch
    except pa.ArrowInvalid as exc:
        raise VendorFileError(f"{path}: cannot parse as CSV ({exc})") from exc


def _json_records(path: Path) -> list:
    name = path.name.lower()
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as fh:
        text = fh.read()
    if name.endswith(".jsonl"):
        records = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                records.append(line)  # quarantined as malformed_record
        return records
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VendorFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if isinstance(doc, dict):
        for key in ("trades", "data", "records"):
            if isinstance(doc.get(key), list):
                return doc[key]
        raise VendorFileError(f"{path}: JSON object without a 'trades' list")
    if not isinstance(doc, list):
        raise VendorFileError(f"{path}: JSON document is neither a list of records nor an object with 'trades'")
    return doc


# --------------------------------------------------------------------------------------
# Column conversion helpers (text or typed Arrow -> numpy), marking unparsable values
# --------------------------------------------------------------------------------------

_NUMBER = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(nan|NaN|NAN|inf|Inf|INF)\s*$"


def _as_float(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Float values and a mask of values that could not be parsed (nulls become NaN)."""
    col = _combine(col)
    bad = np.zeros(len(col), dtype=bool)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            col = pc.cast(col, pa.float64())
        except pa.ArrowInvalid:
            ok = pc.fill_null(pc.match_substring_regex(col, _NUMBER), True)
            bad = ~ok.to_numpy(zero_copy_only=False)
            col = pc.cast(pc.if_else(ok, col, pa.scalar(None, pa.string())), pa.float64())
    elif not pa.types.is_floating(col.type):
        col = pc.cast(col, pa.float64())
    return pc.fill_null(col, np.nan).to_numpy(zero_copy_only=False).astype(np.float64, copy=False), bad


_INTEGER = r"^\s*[-+]?\d+(\.0*)?\s*$"


def _as_int(col: pa.Array, default: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """int64 values and a mask of missing/unparsable values (filled with 0 or ``default``).

    Text is parsed as integers directly, never through float64, which would round epoch
    nanoseconds to the nearest 256 ns. Clean columns take one vectorised cast; only a column
    with a bad value pays for the per-value check.
    """
    col = _combine(col)
    bad = np.zeros(len(col), dtype=bool)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            col = pc.cast(col, pa.int64())
        except pa.ArrowInvalid:
            text = pc.utf8_trim_whitespace(col)
            ok = pc.fill_null(pc.match_substring_regex(text, _INTEGER), True)
            bad = ~ok.to_numpy(zero_copy_only=False)
            text = pc.if_else(ok, text, pa.scalar(None, pa.string()))
            col = pc.cast(pc.replace_substring_regex(text, r"\.0*$", ""), pa.int64())
    elif pa.types.is_floating(col.type):
        as_float = pc.fill_null(col, np.nan).to_numpy(zero_copy_only=False)
        bad = ~np.isnan(as_float) & (as_float != np.floor(as_float))
        col = pa.array(np.where(np.isnan(as_float) | bad, 0, as_float).astype(np.int64),
                       mask=np.isnan(as_float) | bad)
    elif not pa.types.is_integer(col.type):
        col = pc.cast(col, pa.int64())
    missing = pc.is_null(col).to_numpy(zero_copy_only=False) & ~bad
    values = pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy(zero_copy_only=False)
    if default is not None:
        values = np.where(missing, default, values)
        missing = np.zeros_like(missing)
    return values.astype(np.int64, copy=False), bad | missing


def _as_str(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Object array of strings and a mask of missing/empty values."""
    col = _combine(col)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    missing = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), True).to_numpy(zero_copy_only=False)
    values = pc.fill_null(col, "").to_numpy(zero_copy_only=False).astype(object)
    return values, missing


def _combine(col):
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _ns_timestamps(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """UTC epoch nanoseconds from integer ns, timestamps, or ISO-8601 text (naive = UTC)."""
    col = _combine(col)
    if pa.types.is_timestamp(col.type):
        missing = pc.is_null(col).to_numpy(zero_copy_only=False)
        ns = pc.cast(col, pa.timestamp("ns", tz=col.type.tz)).cast(pa.int64())
        return pc.fill_null(ns, 0).to_numpy(zero_copy_only=False), missing
    if pa.types.is_integer(col.type):
        return _as_int(col)
    values, missing = _as_str(col)
    if values.size and all(v.strip().lstrip("-").isdigit() for v in values[~missing][:1]):
        return _as_int(col)
    return _iso_to_ns(values, missing)


def _iso_to_ns(values: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.zeros(values.size, dtype=np.int64)
    bad = missing.copy()
    for i, text in enumerate(values):
        if missing[i]:
            continue
        try:
            out[i] = parse_iso_ns(text)
        except (ValueError, TypeError):
            bad[i] = True
    return out, bad


_FRACTION = re.compile(r"^(?P<base>[^.]+)(\.(?P<frac>\d+))?(?P<tz>Z|[+-]\d\d:?\d\d)?$")


def parse_iso_ns(text: str) -> int:
    """ISO-8601 (``T`` or space separator, optional fraction up to ns, ``Z``/offset; naive = UTC)."""
    text = text.strip().replace(" ", "T", 1)
    m = _FRACTION.match(text)
    if not m:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    base = dt.datetime.fromisoformat(m.group("base"))
    tz = m.group("tz")
    if tz and tz != "Z":
        base = base.replace(tzinfo=dt.datetime.fromisoformat("2000-01-01T00:00:00" + tz).tzinfo)
    elif base.tzinfo is None:
        base = base.replace(tzinfo=dt.timezone.utc)
    frac = (m.group("frac") or "")[:9].ljust(9, "0")
    seconds = int(base.timestamp())
    return seconds * 1_000_000_000 + int(frac)


def _ny_local_to_utc_ns(local_ns: np.ndarray) -> np.ndarray:
    """New York wall-clock epoch-ns (naive) -> UTC epoch ns, exact per calendar day.

    The offset is taken at noon of each local date: right for every time after 02:00 on
    DST-change days, which covers all exchange sessions.
    """
    day_ns = 86_400 * 1_000_000_000
    days = local_ns // day_ns
    out = np.empty_like(local_ns)
    for d in np.unique(days):
        date = dt.date(1970, 1, 1) + dt.timedelta(days=int(d))
        noon = dt.datetime.combine(date, dt.time(12), tzinfo=NEW_YORK)
        offset_ns = int(noon.utcoffset().total_seconds()) * 1_000_000_000
        sel = days == d
        out[sel] = local_ns[sel] - offset_ns
    return out


# --------------------------------------------------------------------------------------
# Per-format mapping to canonical columns
# --------------------------------------------------------------------------------------


def _codes(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.int8)


def _mark(codes: np.ndarray, mask: np.ndarray, reason: str) -> None:
    codes[(codes == 0) & np.asarray(mask, dtype=bool)] = REASON_CODE[reason]


def _to_canonical_polygon_quotes(b: pa.RecordBatch, *, size_multiplier: float) -> tuple[dict, np.ndarray]:
    codes = _codes(b.num_rows)
    symbol, sym_missing = _as_str(b.column("ticker"))
    time, t_missing = _ns_timestamps(b.column("sip_timestamp"))
    _mark(codes, sym_missing | t_missing, "missing_value")
    bid, bid_bad = _as_float(b.column("bid_price"))
    ask, ask_bad = _as_float(b.column("ask_price"))
    bid_size, bs_bad = _as_float(b.column("bid_size"))
    ask_size, as_bad = _as_float(b.column("ask_size"))
    bid_ex, bx_bad = _as_int(b.column("bid_exchange"), default=0)
    ask_ex, ax_bad = _as_int(b.column("ask_exchange"), default=0)
    seq, seq_bad = _as_int(b.column("sequence_number"), default=0)
    _mark(codes, bid_bad | ask_bad | bs_bad | as_bad | bx_bad | ax_bad | seq_bad, "malformed_record")
    cols = {"time": time, "symbol": symbol, "bid_price": bid, "bid_size": bid_size * size_multiplier,
            "bid_exchange": bid_ex, "ask_price": ask, "ask_size": ask_size * size_multiplier,
            "ask_exchange": ask_ex, "sequence_number": seq}
    return cols, codes


def _condition_masks(col: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bitmasks from Polygon condition lists (text ``"14,41"``/``"[14, 41]"`` or list<int>).

    Returns masks, a mask of malformed lists and a mask of lists holding an id that is not in
    the condition table. Distinct texts are few (a handful of combinations), so each is
    parsed once.
    """
    col = _combine(col)
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        texts = np.array([",".join(str(x) for x in v) if v is not None else "" for v in col.to_pylist()],
                         dtype=object)
    else:
        texts = pc.fill_null(pc.cast(col, pa.string()), "").to_numpy(zero_copy_only=False)
    uniques, inverse = np.unique(texts.astype(str), return_inverse=True)
    u_mask = np.zeros(uniques.size, dtype=np.int64)
    u_malformed = np.zeros(uniques.size, dtype=bool)
    u_unknown = np.zeros(uniques.size, dtype=bool)
    for j, text in enumerate(uniques):
        try:
            ids = cond.parse_condition_string(text)
        except ValueError:
            u_malformed[j] = True
            continue
        if any(i not in _KNOWN_CONDITIONS for i in ids):
            u_unknown[j] = True
            continue
        u_mask[j] = cond.mask_from_ids(ids)
    return u_mask[inverse], u_malformed[inverse], u_unknown[inverse]


def _to_canonical_polygon_trades(b: pa.RecordBatch, *, size_multiplier: float) -> tuple[dict, np.ndarray]:
    codes = _codes(b.num_rows)
    symbol, sym_missing = _as_str(b.column("ticker"))
    time, t_missing = _ns_timestamps(b.column("sip_timestamp"))
    _mark(codes, sym_missing | t_missing, "missing_value")
    price, p_bad = _as_float(b.column("price"))
    size, s_bad = _as_float(b.column("size"))
    exchange, x_bad = _as_int(b.column("exchange"), default=0)
    correction, c_bad = _as_int(b.column("correction"), default=0)
    seq, seq_bad = _as_int(b.column("sequence_number"), default=0)
    trade_id, _ = _as_str(b.column("id"))
    _mark(codes, p_bad | s_bad | x_bad | c_bad | seq_bad, "malformed_record")
    masks, cond_malformed, cond_unknown = _condition_masks(b.column("conditions"))
    _mark(codes, cond_malformed, "malformed_conditions")
    _mark(codes, cond_unknown, "unknown_condition")
    cols = {"time": time, "symbol": symbol, "price": price, "size": size * size_multiplier, "exchange": exchange,
            "condition_mask": masks, "is_iso": cond.iso_flags(masks), "correction": correction,
            "sequence_number": seq, "trade_id": trade_id}
    return cols, codes


def _to_canonical_nbbo_1s(b: pa.RecordBatch) -> tuple[dict, np.ndarray]:
    codes = _codes(b.num_rows)
    symbol, sym_missing = _as_str(b.column("symbol"))
    time, t_missing = _ns_timestamps(b.column("timestamp"))
    _mark(codes, sym_missing | t_missing, "missing_value")
    bid, bid_bad = _as_float(b.column("bid_price"))
    ask, ask_bad = _as_float(b.column("ask_price"))
    _mark(codes, bid_bad | ask_bad, "malformed_record")
    return {"time": time, "symbol": symbol, "bid_price": bid, "ask_price": ask}, codes


def _occ_symbols(root: np.ndarray, expiry_yymmdd: np.ndarray, right: np.ndarray, strike_milli: np.ndarray) -> np.ndarray:
    """OCC-style contract codes without padding, e.g. ``SPY241115C00580000``."""
    parts = pa.array(strike_milli.astype(np.int64)).cast(pa.string())
    strike_txt = pc.utf8_lpad(parts, 8, "0")
    exp_txt = pc.utf8_lpad(pa.array(expiry_yymmdd.astype(np.int64)).cast(pa.string()), 6, "0")
    joined = pc.binary_join_element_wise(pa.array(root.astype(str)), exp_txt, pa.array(right.astype(str)),
                                         strike_txt, "")
    return joined.to_numpy(zero_copy_only=False).astype(object)


def _yyyymmdd_to_date_days(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YYYYMMDD ints -> days since epoch, with a mask of impossible dates (e.g. 20241131)."""
    values = np.asarray(values, dtype=np.int64)
    years, months, days = values // 10000, (values // 100) % 100, values % 100
    bad = (years < 1970) | (years > 2200) | (months < 1) | (months > 12) | (days < 1) | (days > 31)
    years, months, days = np.where(bad, 1970, years), np.where(bad, 1, months), np.where(bad, 1, days)
    month_start = (years - 1970) * 12 + (months - 1)
    first = np.asarray(month_start, dtype="datetime64[M]").astype("datetime64[D]")
    out = first + (days - 1).astype("timedelta64[D]")
    bad |= out.astype("datetime64[M]") != first.astype("datetime64[M]")  # day past month end
    return out.astype(np.int64), bad


def _thetadata_contract_time(b: pa.RecordBatch, codes: np.ndarray, expiry_column: str):
    """The contract and time fields shared by ThetaData's quote and trade rows (the quote file
    names the expiry ``exp``, the trade file ``expiration``): ``(root, exp, exp_days,
    strike_milli, right, time_ns)``, marking ``missing_value`` and ``bad_timestamp`` in ``codes``."""
    root, r_missing = _as_str(b.column("root"))
    exp, e_bad = _as_int(b.column(expiry_column))
    date, d_bad = _as_int(b.column("date"))
    ms, ms_bad = _as_int(b.column("ms_of_day"))
    strike_milli, k_bad = _as_int(b.column("strike"))
    right, rt_missing = _as_str(b.column("right"))
    right = np.array([r.strip().upper()[:1] for r in right], dtype=object) if right.size else right
    _mark(codes, r_missing | e_bad | d_bad | ms_bad | k_bad | rt_missing, "missing_value")
    exp_days, exp_bad = _yyyymmdd_to_date_days(exp)
    date_days, date_bad = _yyyymmdd_to_date_days(date)
    _mark(codes, exp_bad | date_bad | (ms < 0) | (ms >= 86_400_000), "bad_timestamp")
    time = _ny_local_to_utc_ns(date_days * 86_400_000_000_000 + ms * 1_000_000)
    return root, exp, exp_days, strike_milli, right, time


def _to_canonical_thetadata_raw(b: pa.RecordBatch) -> tuple[dict, np.ndarray]:
    codes = _codes(b.num_rows)
    root, exp, exp_days, strike_milli, right, time = _thetadata_contract_time(b, codes, "exp")
    bid, bid_bad = _as_float(b.column("bid"))
    ask, ask_bad = _as_float(b.column("ask"))
    bid_size, bs_bad = _as_float(b.column("bid_size"))
    ask_size, as_bad = _as_float(b.column("ask_size"))
    _mark(codes, bid_bad | ask_bad | bs_bad | as_bad, "malformed_record")
    underlying = np.array([OPTION_ROOT_TO_TICKER.get(r, r) for r in root], dtype=object)
    contract = _occ_symbols(root, exp % 1_000_000, np.where(codes == 0, right, "X"), strike_milli)
    cols = {"time": time, "contract": contract, "underlying": underlying, "expiry": exp_days,
            "strike": strike_milli / 1000.0, "right": right, "bid": bid, "ask": ask, "bid_size": bid_size,
            "ask_size": ask_size}
    return cols, codes


def _to_canonical_thetadata_formatted(b: pa.RecordBatch) -> tuple[dict, np.ndarray]:
    codes = _codes(b.num_rows)
    contract, c_missing = _as_str(b.column("symbol"))
    underlying, u_missing = _as_str(b.column("underlying"))
    underlying = np.array([OPTION_ROOT_TO_TICKER.get(u, u) for u in underlying], dtype=object)
    ts_col = _combine(b.column("timestamp"))
    if pa.types.is_timestamp(ts_col.type) and ts_col.type.tz is None:
        local_ns = pc.fill_null(pc.cast(ts_col, pa.timestamp("ns")).cast(pa.int64()), 0).to_numpy(
            zero_copy_only=False)
        t_missing = pc.is_null(ts_col).to_numpy(zero_copy_only=False)
        time = _ny_local_to_utc_ns(local_ns)
    elif pa.types.is_timestamp(ts_col.type):
        time, t_missing = _ns_timestamps(ts_col)
    else:  # text in New York local time
        text, t_missing = _as_str(ts_col)
        local, bad = _iso_to_ns(text, t_missing)
        t_missing = t_missing | bad
        time = _ny_local_to_utc_ns(local)
    exp_col = _combine(b.column("expiration"))
    if pa.types.is_date(exp_col.type):
        exp_days = pc.fill_null(pc.cast(exp_col, pa.date32()).cast(pa.int32()), 0).to_numpy(
            zero_copy_only=False).astype(np.int64)
        e_missing = pc.is_null(exp_col).to_numpy(zero_copy_only=False)
    else:
        exp_text, e_missing = _as_str(exp_col)
        digits = np.array([int(str(s).replace("-", "")[:8]) if not m and str(s).replace("-", "")[:8].isdigit()
                           else 19700101 for s, m in zip(exp_text, e_missing)], dtype=np.int64)
        exp_days, e_bad = _yyyymmdd_to_date_days(digits)
        e_missing = e_missing | e_bad
    strike, k_bad = _as_float(b.column("strike"))
    right, rt_missing = _as_str(b.column("right"))
    right = np.array([r.strip().upper()[:1] for r in right], dtype=object) if right.size else right
    _mark(codes, c_missing | u_missing | t_missing | e_missing | rt_missing, "missing_value")
    bid, bid_bad = _as_float(b.column("bid"))
    ask, ask_bad = _as_float(b.column("ask"))
    bid_size, bs_bad = _as_float(b.column("bid_size"))
    ask_size, as_bad = _as_float(b.column("ask_size"))
    _mark(codes, k_bad | bid_bad | ask_bad | bs_bad | as_bad, "malformed_record")
    cols = {"time": time, "contract": contract, "underlying": underlying, "expiry": exp_days,
            "strike": strike, "right": right, "bid": bid, "ask": ask, "bid_size": bid_size, "ask_size": ask_size}
    return cols, codes


# Aggressor side of an option print: B/BUY +1, S/SELL -1; empty or absent 0 (unsigned, the
# rule for real ThetaData prints, which the graph signs by the quote rule).
_SIDE_CODES = {"B": 1, "BUY": 1, "S": -1, "SELL": -1, "": 0}


def _trade_sides(b: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
    """Signs from the optional ``side`` column and a mask of values that are not a side."""
    if "side" not in b.schema.names:
        return np.zeros(b.num_rows, dtype=np.int64), np.zeros(b.num_rows, dtype=bool)
    text = pc.fill_null(pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(_combine(b.column("side")), pa.string()))), "")
    values = text.to_numpy(zero_copy_only=False)
    side = np.array([_SIDE_CODES.get(v, 0) for v in values], dtype=np.int64)
    bad = np.array([v not in _SIDE_CODES for v in values], dtype=bool)
    return side, bad


def _to_canonical_thetadata_trades(b: pa.RecordBatch) -> tuple[dict, np.ndarray]:
    """Option trade ticks (ThetaData fields; ``side`` optional, ``bad_side`` when it is not one)."""
    codes = _codes(b.num_rows)
    root, exp, exp_days, strike_milli, right, time = _thetadata_contract_time(b, codes, "expiration")
    price, p_bad = _as_float(b.column("price"))
    size, s_bad = _as_float(b.column("size"))
    names = b.schema.names
    optional = {c: _as_int(b.column(c), default=0) if c in names else (np.zeros(b.num_rows, dtype=np.int64),
                                                                        np.zeros(b.num_rows, dtype=bool))
                for c in ("exchange", "condition", "sequence")}
    _mark(codes, p_bad | s_bad | optional["exchange"][1] | optional["condition"][1] | optional["sequence"][1],
          "malformed_record")
    side, side_bad = _trade_sides(b)
    _mark(codes, side_bad, "bad_side")
    underlying = np.array([OPTION_ROOT_TO_TICKER.get(r, r) for r in root], dtype=object)
    contract = _occ_symbols(root, exp % 1_000_000, np.where(codes == 0, right, "X"), strike_milli)
    cols = {"time": time, "contract": contract, "underlying": underlying, "expiry": exp_days,
            "strike": strike_milli / 1000.0, "right": right, "price": price, "size": size, "side": side,
            "exchange": optional["exchange"][0], "condition": optional["condition"][0],
            "sequence": optional["sequence"][0]}
    return cols, codes


def _kalshi_records_to_canonical(records: list, fmt: str) -> tuple[dict, np.ndarray]:
    n = len(records)
    codes = _codes(n)
    time = np.zeros(n, dtype=np.int64)
    contract = np.empty(n, dtype=object)
    price = np.full(n, np.nan)
    count = np.zeros(n, dtype=np.int64)
    taker = np.empty(n, dtype=object)
    trade_id = np.empty(n, dtype=object)
    if fmt == "kalshi_daily_report":
        keys = ("ticker_name", "create_ts", "contracts_traded", "price")
    else:
        keys = ("ticker", "created_time", "count", "yes_price")
    malformed = REASON_CODE["malformed_record"]
    for i, rec in enumerate(records):
        contract[i], taker[i], trade_id[i] = "", "", ""
        if not isinstance(rec, dict) or any(k not in rec or rec[k] is None for k in keys):
            codes[i] = malformed
            continue
        sym, ts_text, cnt, px = (rec[k] for k in keys)
        if not isinstance(sym, str) or not isinstance(ts_text, str) or isinstance(cnt, bool) \
                or isinstance(px, bool) or not isinstance(cnt, (int, float)) or not isinstance(px, (int, float)) \
                or float(cnt) != int(cnt):
            codes[i] = malformed
            continue
        try:
            time[i] = parse_iso_ns(ts_text)
        except ValueError:
            codes[i] = REASON_CODE["bad_timestamp"]
            continue
        contract[i], count[i], price[i] = sym, int(cnt), float(px)
        if fmt == "kalshi_rest":
            side = rec.get("taker_side")
            if side not in ("yes", "no", None):
                codes[i] = malformed
                continue
            taker[i] = side or ""
            trade_id[i] = str(rec.get("trade_id") or "")
            no_price = rec.get("no_price")
            if isinstance(no_price, (int, float)) and not isinstance(no_price, bool) and abs(no_price + px - 100) > 1e-9:
                codes[i] = REASON_CODE["inconsistent_prices"]
    cols = {"time": time, "contract": contract, "price": price, "count": count, "taker_side": taker,
            "trade_id": trade_id}
    return cols, codes


# --------------------------------------------------------------------------------------
# Public reader
# --------------------------------------------------------------------------------------


def read_canonical(source: SourceFile, batch_rows: int = 500_000, size_multiplier: float = 1.0
                   ) -> Iterator[CanonicalBatch]:
    """Yield canonical batches of a vendor file. Prices of Kalshi trades become dollars.

    ``size_multiplier`` converts vendor size units to shares (100 for files in round lots).
    """
    check_source(source)
    fmt = source.format
    if fmt in ("kalshi_daily_report", "kalshi_rest"):
        records = _json_records(source.path)
        for start in range(0, len(records), batch_rows):
            chunk = records[start:start + batch_rows]
            cols, codes = _kalshi_records_to_canonical(chunk, fmt)
            cols["price"] = cols["price"] / 100.0  # cents -> dollars; rules below use cents
            yield CanonicalBatch(cols, codes, RawRows(records=chunk), first_row=start + 1)
        return
    row = 1
    for batch in _raw_batches(source.path, batch_rows):
        if fmt == "polygon_quotes":
            cols, codes = _to_canonical_polygon_quotes(batch, size_multiplier=size_multiplier)
        elif fmt == "polygon_trades":
            cols, codes = _to_canonical_polygon_trades(batch, size_multiplier=size_multiplier)
        elif fmt == "nbbo_1s":
            cols, codes = _to_canonical_nbbo_1s(batch)
        elif fmt == "thetadata_raw":
            cols, codes = _to_canonical_thetadata_raw(batch)
        elif fmt == "thetadata_formatted":
            cols, codes = _to_canonical_thetadata_formatted(batch)
        elif fmt == "thetadata_trades":
            cols, codes = _to_canonical_thetadata_trades(batch)
        else:  # pragma: no cover - FORMATS and this switch are kept in step by tests
            raise ValueError(f"no reader for format {fmt}")
        yield CanonicalBatch(cols, codes, RawRows(batch=batch), first_row=row)
        row += batch.num_rows
