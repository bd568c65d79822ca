"""Writer of the synthetic Election Day in the vendors' own file formats, plus ground truth.

:func:`write_synthetic_day` generates the day (:func:`elecflow.synth.day.generate_day`)
and writes, under ``out_dir`` (docs/synthetic-day.md, "Files")::

    polygon/us_stocks_sip/quotes_v1/2024/11/2024-11-05.csv.gz   polygon_quotes
    polygon/us_stocks_sip/trades_v1/2024/11/2024-11-05.csv.gz   polygon_trades
    nbbo_1s/2024-11-05.parquet                                  nbbo_1s
    thetadata/<ROOT>_20241115_20241105.csv | .parquet           thetadata_raw | thetadata_formatted
    thetadata_trades/<ROOT>_20241115_20241105.csv               thetadata_trades (impact_underlyings: the
                                                                informed option market, elecflow.synth.impact)
    kalshi/trade_data_YYYY-MM-DD.json | trades_PRES-2024.json   kalshi_daily_report | kalshi_rest
    ground_truth/*.parquet, params.json
    manifest.json

A normal (pre-election) day (``day_kind="normal"``) writes the same layout under its own
trading date (``.../quotes_v1/2024/10/2024-10-08.csv.gz``, ``nbbo_1s/2024-10-08.parquet``),
no Kalshi files, options only if asked for, and the ground truth of its news
(``ground_truth/news.parquet``) instead of the probability and Kalshi truth.
:func:`write_training_days` writes many such days, one folder per date.

Every file is written to a temporary name in its directory and renamed into place, so a
killed run leaves only whole files. Output is byte-identical for equal configurations.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from pathlib import Path
from typing import Callable

from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from elecflow.synth.config import DEFAULT_SEED, SyntheticDayConfig
from elecflow.synth.day import DAY, SyntheticDay, generate_day, progress_units
from elecflow.synth.defects import REASONS_BY_STREAM
from elecflow.synth.kalshi import CONTRACTS
from elecflow.universe import get as get_instrument

POLYGON_QUOTE_COLUMNS = ("ticker", "ask_exchange", "ask_price", "ask_size", "bid_exchange", "bid_price", "bid_size",
                         "conditions", "indicators", "participant_timestamp", "sequence_number", "sip_timestamp",
                         "tape", "trf_timestamp")
POLYGON_TRADE_COLUMNS = ("ticker", "conditions", "correction", "exchange", "id", "participant_timestamp", "price",
                         "sequence_number", "sip_timestamp", "size", "tape", "trf_id", "trf_timestamp")
THETADATA_RAW_COLUMNS = ("root", "exp", "strike", "right", "date", "ms_of_day", "bid_size", "bid_exchange", "bid",
                         "bid_condition", "ask_size", "ask_exchange", "ask", "ask_condition")
# option_trades: the simulated informed option market (elecflow.synth.impact), no injected defects
STREAMS = ("quotes", "trades", "nbbo_1s", "option_quotes", "kalshi_trades", "option_trades")


def quotes_path(date: dt.date = DAY) -> str:
    return f"polygon/us_stocks_sip/quotes_v1/{date:%Y}/{date:%m}/{date.isoformat()}.csv.gz"


def trades_path(date: dt.date = DAY) -> str:
    return f"polygon/us_stocks_sip/trades_v1/{date:%Y}/{date:%m}/{date.isoformat()}.csv.gz"


def nbbo_path(date: dt.date = DAY) -> str:
    return f"nbbo_1s/{date.isoformat()}.parquet"


QUOTES_PATH = quotes_path(DAY)  # the Election Day's files
TRADES_PATH = trades_path(DAY)
NBBO_PATH = nbbo_path(DAY)
KALSHI_REST_PATH = "kalshi/trades_PRES-2024.json"
# The broad factor universe (docs/factors.md): its own 1 s NBBO file and the factor weights,
# in a folder the replay's vendor discovery leaves to the factor pipeline.
FACTOR_UNIVERSE_DIR = "factor_universe"
FACTOR_WEIGHTS_PATH = f"{FACTOR_UNIVERSE_DIR}/ff_factor_weights.json"
FACTOR_TRUTH_NAMES = ("ff_universe", "ff_factors")  # ground_truth/<name>.parquet, plus ff_model.json


def factor_universe_nbbo_path(date: dt.date = DAY) -> str:
    return f"{FACTOR_UNIVERSE_DIR}/nbbo_1s/{date.isoformat()}.parquet"
PARQUET_COMPRESSION = "zstd"
# CSV cells holding commas are written with these sentinel characters and fixed up afterwards
# (pyarrow's CSV writer would otherwise quote every string, header included).
_COMMA, _QUOTE = "\x1f", "\x1e"


# --------------------------------------------------------------------------- atomic writes


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        pq.write_table(table, tmp, compression=PARQUET_COMPRESSION)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(obj, path: Path) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


# --------------------------------------------------------------------------- CSV


def _csv_bytes(table: pa.Table) -> bytes:
    """Header + rows, unquoted; cells prepared with sentinels get their quotes back."""
    buf = pa.BufferOutputStream()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16))
    body = buf.getvalue().to_pybytes()
    if _COMMA.encode() in body:
        body = body.replace(_QUOTE.encode(), b'"').replace(_COMMA.encode(), b",")
    return (",".join(table.column_names) + "\n").encode() + body


def _gzip(data: bytes, level: int) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)  # mtime 0: reproducible bytes


def _id_list_text(texts: np.ndarray) -> pa.Array:
    """Condition-id lists as CSV cells: ``""`` -> empty, ``"12,37"`` -> quoted."""
    uniq, inv = np.unique(texts.astype(str), return_inverse=True)
    cells = np.array([None if u == "" else (f"{_QUOTE}{u.replace(',', _COMMA)}{_QUOTE}" if "," in u else u)
                      for u in uniq], dtype=object)
    return pa.array(cells[inv], pa.string())


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.int64(), mask=values < 0)


def _tickers(index: np.ndarray, names: list[str]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(names)).cast(pa.string())


def polygon_quotes_table(cols: dict, tickers: list[str]) -> pa.Table:
    n = cols["sip_timestamp"].size
    data = {
        "ticker": _tickers(cols["ticker"], tickers),
        "ask_exchange": cols["ask_exchange"], "ask_price": cols["ask_price"], "ask_size": cols["ask_size"],
        "bid_exchange": cols["bid_exchange"], "bid_price": cols["bid_price"], "bid_size": cols["bid_size"],
        "conditions": pa.nulls(n, pa.string()), "indicators": pa.nulls(n, pa.string()),
        "participant_timestamp": cols["participant_timestamp"], "sequence_number": cols["sequence_number"],
        "sip_timestamp": cols["sip_timestamp"], "tape": cols["tape"], "trf_timestamp": pa.nulls(n, pa.int64()),
    }
    return pa.table({c: data[c] for c in POLYGON_QUOTE_COLUMNS})


def polygon_trades_table(cols: dict, tickers: list[str]) -> pa.Table:
    data = {
        "ticker": _tickers(cols["ticker"], tickers), "conditions": _id_list_text(cols["conditions"]),
        "correction": cols["correction"], "exchange": cols["exchange"], "id": cols["id"],
        "participant_timestamp": cols["participant_timestamp"], "price": cols["price"],
        "sequence_number": cols["sequence_number"], "sip_timestamp": cols["sip_timestamp"], "size": cols["size"],
        "tape": cols["tape"], "trf_id": _nullable(cols["trf_id"]), "trf_timestamp": _nullable(cols["trf_timestamp"]),
    }
    return pa.table({c: data[c] for c in POLYGON_TRADE_COLUMNS})


def write_polygon_csv(table: pa.Table, path: Path, gzip_level: int = 3) -> int:
    """A Polygon flat file (gzip CSV with header). Returns the number of data rows."""
    write_bytes_atomic(path, _gzip(_csv_bytes(table), gzip_level))
    return table.num_rows


# --------------------------------------------------------------------------- ThetaData


def thetadata_raw_table(cols: dict) -> pa.Table:
    return pa.table({c: cols[c] for c in THETADATA_RAW_COLUMNS})


def thetadata_formatted_table(cols: dict, underlying: str, expiry: dt.date, date: dt.date = DAY) -> pa.Table:
    """The public project's formatted variant: OCC symbol, New York local timestamp, dollars."""
    n = cols["strike"].size
    yymmdd = expiry.strftime("%y%m%d")
    root = get_instrument(underlying).option_root
    strike_txt = np.char.zfill(cols["strike"].astype(str), 8)
    symbol = np.char.add(np.char.add(f"{root}{yymmdd}", cols["right"].astype(str)), strike_txt)
    local_ms = (np.datetime64(date, "ms").astype(np.int64) + cols["ms_of_day"]).astype("datetime64[ms]")
    return pa.table({
        "symbol": pa.array(symbol.astype(object), pa.string()),
        "timestamp": pa.array(local_ms, pa.timestamp("ms")),
        "underlying": pa.array([underlying] * n, pa.string()),
        "expiration": pa.array([expiry] * n, pa.date32()),
        "strike": cols["strike"] / 1000.0,
        "right": pa.array(cols["right"], pa.string()),
        "bid": cols["bid"], "ask": cols["ask"],
        "bid_size": cols["bid_size"], "ask_size": cols["ask_size"],
        "bid_exchange": cols["bid_exchange"], "ask_exchange": cols["ask_exchange"],
    })


def thetadata_filename(root: str, expiry: dt.date, fmt: str, date: dt.date = DAY) -> str:
    ext = "csv" if fmt == "raw" else "parquet"
    return f"thetadata/{root}_{expiry:%Y%m%d}_{date:%Y%m%d}.{ext}"


# --------------------------------------------------------------------------- Kalshi


def _iso_z(ns: np.ndarray) -> np.ndarray:
    """UTC ns -> ``2024-11-05T14:32:10.123456Z`` (always six fractional digits)."""
    if ns.size == 0:
        return np.zeros(0, dtype=object)
    text = np.datetime_as_string(np.asarray(ns, dtype=np.int64).astype("datetime64[ns]").astype("datetime64[us]"),
                                 unit="us")
    return np.char.add(text, "Z").astype(object)


def kalshi_records(day: SyntheticDay, fmt: str) -> tuple[list[dict], np.ndarray, list[int]]:
    """All Kalshi records (clean and bad) sorted by time, their times, and each bad record's index.

    ``fmt`` is ``"daily_report"`` or ``"rest"``.
    """
    k = day.kalshi
    ts = _iso_z(k.time_ns)
    names = np.array(CONTRACTS, dtype=object)[k.contract]
    recs: list[dict] = []
    if fmt == "daily_report":
        for i in range(k.time_ns.size):
            recs.append({"ticker_name": names[i], "create_ts": ts[i], "contracts_traded": int(k.count[i]),
                         "price": int(k.price[i])})
    else:
        for i in range(k.time_ns.size):
            yes = int(k.price[i])
            recs.append({"trade_id": k.trade_id[i], "ticker": names[i], "count": int(k.count[i]), "yes_price": yes,
                         "no_price": 100 - yes, "taker_side": "yes" if k.taker_yes[i] else "no",
                         "created_time": ts[i]})
    times = list(k.time_ns.astype(np.int64))
    for bad in day.kalshi_bad:
        times.append(bad["time_ns"])
        recs.append(_bad_kalshi_record(bad, fmt))
    times = np.array(times, dtype=np.int64)
    order = np.argsort(times, kind="stable")
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size)
    bad_index = [int(position[k.time_ns.size + j]) for j in range(len(day.kalshi_bad))]
    return [recs[i] for i in order], times[order], bad_index


def _bad_kalshi_record(bad: dict, fmt: str) -> dict:
    ts = _iso_z(np.array([bad["time_ns"]]))[0]
    price = {"missing_price": None, "string_price": "n/a", "price_zero": 0, "price_hundred": 100}[bad["variant"]]
    if fmt == "daily_report":
        rec = {"ticker_name": bad["contract"], "create_ts": ts, "contracts_traded": bad["count"]}
        if bad["variant"] != "missing_price":
            rec["price"] = price
        return rec
    rec = {"trade_id": bad["trade_id"], "ticker": bad["contract"], "count": bad["count"]}
    if bad["variant"] != "missing_price":
        rec["yes_price"] = price
    hint = bad["price_hint"]
    rec["no_price"] = 100 - price if isinstance(price, int) else 100 - hint
    rec["taker_side"] = "yes"
    rec["created_time"] = ts
    return rec


def _json_array_bytes(records: list) -> bytes:
    """A JSON array, one record per line."""
    if not records:
        return b"[]\n"
    return ("[\n" + ",\n".join(json.dumps(r, separators=(", ", ": ")) for r in records) + "\n]\n").encode()


def write_kalshi_daily_reports(day: SyntheticDay, out_dir: Path) -> list[tuple[str, int, list[tuple[int, int]]]]:
    """``kalshi/trade_data_YYYY-MM-DD.json``, one per UTC date the window touches.

    Returns ``(relative path, rows, [(bad record number, row in file)])`` per file.
    """
    recs, times, bad_index = kalshi_records(day, "daily_report")
    w0, w1 = day.window_ns
    first = np.datetime64(w0, "ns").astype("datetime64[D]")
    last = np.datetime64(w1 - 1, "ns").astype("datetime64[D]")
    dates = times.astype("datetime64[ns]").astype("datetime64[D]")
    out = []
    d = first
    while d <= last:
        sel = np.flatnonzero(dates == d)
        rel = f"kalshi/trade_data_{d}.json"
        write_bytes_atomic(out_dir / rel, _json_array_bytes([recs[i] for i in sel]))
        start = int(sel[0]) if sel.size else 0
        bad_rows = [(j, b - start) for j, b in enumerate(bad_index) if sel.size and sel[0] <= b <= sel[-1]]
        out.append((rel, int(sel.size), bad_rows))
        d = d + np.timedelta64(1, "D")
    return out


def write_kalshi_rest(day: SyntheticDay, out_dir: Path) -> tuple[str, int, list[tuple[int, int]]]:
    """``kalshi/trades_PRES-2024.json``: ``{"trades": [...], "cursor": ""}``, ascending ``created_time``."""
    recs, _, bad_index = kalshi_records(day, "rest")
    body = _json_array_bytes(recs).decode().rstrip("\n")
    write_bytes_atomic(out_dir / KALSHI_REST_PATH, ('{"trades": ' + body + ', "cursor": ""}\n').encode())
    return KALSHI_REST_PATH, len(recs), list(enumerate(bad_index))


# --------------------------------------------------------------------------- the day


def write_synthetic_day(config: SyntheticDayConfig, out_dir: Path, progress: bool = True) -> dict:
    """Generate the day of ``config`` and write every vendor file, ground truth and manifest.

    Returns the manifest (also written as ``out_dir/manifest.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_truth = len(_truth_names(config.is_normal)) if config.write_ground_truth else 0
    n_files = 3 + len(config.option_underlyings) + (0 if config.is_normal else 1) + n_truth + 1
    if config.factor_universe_size:  # the universe's two vendor files and its three truth files
        n_files += 1 + (len(FACTOR_TRUTH_NAMES) + 1 if config.write_ground_truth else 0)
    n_files += len(config.impact_underlyings) + (1 if config.impact_underlyings and config.write_ground_truth else 0)
    bar = None
    if progress:
        from tqdm import tqdm

        desc = f"normal day {config.trading_date.isoformat()}" if config.is_normal else "synthetic day"
        bar = tqdm(total=progress_units(config) + n_files, desc=desc, unit="step")

    def tick(name: str) -> None:
        if bar is not None:
            bar.set_postfix_str(name, refresh=False)
            bar.update(1)

    try:
        day = generate_day(config, tick)
        manifest = _write_all(day, out_dir, tick)
    finally:
        if bar is not None:
            bar.close()
    return manifest


def _truth_names(normal: bool) -> tuple[str, ...]:
    """Ground-truth Parquet files written (params.json comes on top)."""
    if normal:
        return ("news", "efficient_prices", "factors", "trades_truth", "options_truth")
    return ("probability", "efficient_prices", "factors", "trades_truth", "kalshi_truth", "options_truth")


def _truth_table(day: SyntheticDay, name: str) -> pa.Table:
    return {"probability": day.probability_table, "news": day.news_table,
            "efficient_prices": day.efficient_prices_table, "factors": day.factors_table,
            "trades_truth": day.trades_truth_table, "kalshi_truth": day.kalshi_truth_table,
            "options_truth": day.options_truth_table}[name]()


def _write_all(day: SyntheticDay, out_dir: Path, tick: Callable[[str], None]) -> dict:
    cfg = day.config
    date = day.trading_date
    previous = _previous_files(out_dir)
    files: list[dict] = []
    defect_rows: list[dict] = []

    # ---- Polygon
    q_path, t_path, nbbo_rel = quotes_path(date), trades_path(date), nbbo_path(date)
    n = write_polygon_csv(polygon_quotes_table(day.quotes, day.tickers), out_dir / q_path, cfg.gzip_level)
    files.append({"path": q_path, "format": "polygon_quotes", "rows": n})
    tick("quotes file")
    n = write_polygon_csv(polygon_trades_table(day.trades, day.tickers), out_dir / t_path, cfg.gzip_level)
    files.append({"path": t_path, "format": "polygon_trades", "rows": n})
    tick("trades file")
    for entry in day.defects:
        if entry["stream"] in ("quotes", "trades"):
            defect_rows.append({**entry, "path": q_path if entry["stream"] == "quotes" else t_path})
    write_parquet_atomic(day.nbbo, out_dir / nbbo_rel)
    files.append({"path": nbbo_rel, "format": "nbbo_1s", "rows": day.nbbo.num_rows})
    tick("nbbo file")
    universe_files = _write_factor_universe(day, out_dir) if day.universe is not None else []
    if universe_files:
        tick("factor universe files")

    # ---- ThetaData
    fmt = "thetadata_raw" if cfg.option_format == "raw" else "thetadata_formatted"
    for sym, cols in day.options.items():
        rel = thetadata_filename(get_instrument(sym).option_root, cfg.option_expiry, cfg.option_format, date)
        if cfg.option_format == "raw":
            write_bytes_atomic(out_dir / rel, _csv_bytes(thetadata_raw_table(cols)))
        else:
            write_parquet_atomic(thetadata_formatted_table(cols, sym, cfg.option_expiry, date), out_dir / rel)
        files.append({"path": rel, "format": fmt, "rows": int(cols["strike"].size)})
        for entry in day.defects:
            if entry["stream"] == "option_quotes" and entry["underlying"] == sym:
                defect_rows.append({**entry, "path": rel})
        tick(f"options file {sym}")

    # ---- the simulated informed option market: ThetaData quotes and signed trades per root
    impact_files, impact_truth_files, impact_rows = _write_impact_markets(day, out_dir, tick)
    files += impact_files

    # ---- Kalshi (Election Day only: a normal day has no Kalshi files)
    bad = day.kalshi_bad
    if day.kalshi is None:
        pass
    elif cfg.kalshi_format == "daily_report":
        for rel, rows, bad_rows in write_kalshi_daily_reports(day, out_dir):
            files.append({"path": rel, "format": "kalshi_daily_report", "rows": rows})
            defect_rows += [{**_public(bad[j]), "path": rel, "row": r} for j, r in bad_rows]
    else:
        rel, rows, bad_rows = write_kalshi_rest(day, out_dir)
        files.append({"path": rel, "format": "kalshi_rest", "rows": rows})
        defect_rows += [{**_public(bad[j]), "path": rel, "row": r} for j, r in bad_rows]
    if day.kalshi is not None:
        tick("kalshi files")

    # ---- ground truth
    truth_files = []
    if cfg.write_ground_truth:
        for name in _truth_names(day.is_normal):
            table = _truth_table(day, name)
            rel = f"ground_truth/{name}.parquet"
            write_parquet_atomic(table, out_dir / rel)
            truth_files.append({"path": rel, "rows": table.num_rows})
            tick(name)
        write_json_atomic(day.params, out_dir / "ground_truth/params.json")
        truth_files.append({"path": "ground_truth/params.json", "rows": None})
        if day.universe is not None:
            truth_files += _write_factor_truth(day, out_dir, tick)
    truth_files += impact_truth_files  # empty without ground truth or informed market

    defects = {s: dict(day.params["defects"].get(s, {})) for s in STREAMS}
    # clean rows per stream: the generator's (as params.json records them) plus the informed market's
    clean_rows = {s: int(day.clean_rows.get(s, 0)) + impact_rows.get(s, 0) for s in STREAMS}
    manifest = {"seed": cfg.seed}
    if day.is_normal:  # absent on the Election Day, whose manifest predates normal days: read as election, 11-05
        manifest.update({"day_kind": day.day_kind, "trading_date": date.isoformat()})
    manifest.update({
        "generated_with": cfg.manifest_dump(),
        "files": files,
        "defects": defects,
        "clean_rows": clean_rows,
        "ground_truth_files": truth_files,
        "defect_rows": defect_rows,
        "reasons_by_stream": {s: list(REASONS_BY_STREAM.get(s, ())) for s in STREAMS},
    })
    if day.impact_markets:
        # clean_rows above include these rows; params.json (the generator's record) does not
        manifest["impact_markets"] = {
            sym: {"root": sim.root, "period_seconds": sim.params["period_ms"] / 1000.0, "periods": sim.n_periods,
                  "contracts": sim.n_contracts, "session_story": sim.model.stories.names[sim.session_story],
                  "option_quotes": int(sim.quote_ms.size * sim.n_contracts),
                  "option_trades": int(np.count_nonzero(sim.order_flow))}
            for sym, sim in day.impact_markets.items()}
    if universe_files:  # a section of its own: files, clean_rows and defects above stay the 40's
        manifest["factor_universe"] = {"stocks": day.universe.design.size, "files": universe_files}
    _remove_stale(out_dir, previous, {f["path"] for f in files} | {f["path"] for f in truth_files}
                  | {f["path"] for f in universe_files})
    write_json_atomic(manifest, out_dir / "manifest.json")
    tick("manifest")
    return manifest


def _write_factor_universe(day: SyntheticDay, out_dir: Path) -> list[dict]:
    """The universe's vendor files: its 1 s NBBO and the factor weights (factor -> ticker -> weight)."""
    ud = day.universe
    rel = factor_universe_nbbo_path(day.trading_date)
    write_parquet_atomic(ud.nbbo, out_dir / rel)
    write_json_atomic(ud.design.weights_json(), out_dir / FACTOR_WEIGHTS_PATH)
    return [{"path": rel, "format": "nbbo_1s", "rows": ud.nbbo.num_rows},
            {"path": FACTOR_WEIGHTS_PATH, "format": "ff_factor_weights", "rows": None}]


def _write_factor_truth(day: SyntheticDay, out_dir: Path, tick: Callable[[str], None]) -> list[dict]:
    from elecflow.synth.factor_universe import factor_returns_table, model_json, universe_table

    out = []
    tables = {"ff_universe": universe_table(day.universe.design),
              "ff_factors": factor_returns_table(day.universe, day.window_ns)}
    for name in FACTOR_TRUTH_NAMES:
        rel = f"ground_truth/{name}.parquet"
        write_parquet_atomic(tables[name], out_dir / rel)
        out.append({"path": rel, "rows": tables[name].num_rows})
        tick(name)
    write_json_atomic(model_json(day.universe.design, day.config.risk_free_rate), out_dir / "ground_truth/ff_model.json")
    out.append({"path": "ground_truth/ff_model.json", "rows": None})
    tick("ff_model")
    return out


def _write_impact_markets(day: SyntheticDay, out_dir: Path, tick: Callable[[str], None]
                          ) -> tuple[list[dict], list[dict], dict[str, int]]:
    """The informed option markets (elecflow.synth.impact): each root's ThetaData quotes and
    signed trades via ``write_option_market``, its own ground truth, and for all of them
    ``ground_truth/impact_truth.json`` (summary and matrices per underlying) and
    ``ground_truth/impact_truth.parquet`` (the theoretical matrix, long form). Returns the
    vendor-file entries, the truth-file entries and the clean rows per stream."""
    from elecflow.synth.impact import impact_truth
    from elecflow.theory.simulator import write_option_market

    cfg = day.config
    files, truth, rows = [], [], {"option_quotes": 0, "option_trades": 0}
    quote_format = "thetadata_raw" if cfg.option_format == "raw" else "thetadata_formatted"
    summaries, tables = {}, []
    for sym, sim in day.impact_markets.items():
        written = write_option_market(sim, out_dir, quote_format=cfg.option_format)
        for rel, n in written.items():
            if rel.startswith("thetadata/"):
                files.append({"path": rel, "format": quote_format, "rows": n})
                rows["option_quotes"] += n
            elif rel.startswith("thetadata_trades/"):
                files.append({"path": rel, "format": "thetadata_trades", "rows": n})
                rows["option_trades"] += n
            elif cfg.write_ground_truth:
                truth.append({"path": rel, "rows": None if rel.endswith(".json") else n})
            else:  # the simulator always writes its truth: drop it when none was asked for
                (out_dir / rel).unlink(missing_ok=True)
        if not cfg.write_ground_truth and (out_dir / "ground_truth").is_dir() \
                and not any((out_dir / "ground_truth").iterdir()):
            (out_dir / "ground_truth").rmdir()
        summary, table = impact_truth(sim)
        summaries[sym] = summary
        tables.append(pa.table(table))
        tick(f"impact files {sym}")
    if cfg.write_ground_truth and summaries:
        write_json_atomic({"underlyings": summaries}, out_dir / "ground_truth/impact_truth.json")
        table = pa.concat_tables(tables)
        write_parquet_atomic(table, out_dir / "ground_truth/impact_truth.parquet")
        truth += [{"path": "ground_truth/impact_truth.json", "rows": None},
                  {"path": "ground_truth/impact_truth.parquet", "rows": table.num_rows}]
        tick("impact truth")
    return files, truth, rows


def _public(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k != "price_hint"}


def _previous_files(out_dir: Path) -> set[str]:
    """Files listed by a manifest already in ``out_dir`` (a previous generation)."""
    path = out_dir / "manifest.json"
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    paths = {f.get("path") for f in old.get("files", [])} | {f.get("path") for f in old.get("ground_truth_files", [])}
    paths |= {f.get("path") for f in (old.get("factor_universe") or {}).get("files", [])}
    return {p for p in paths if isinstance(p, str)}


def _remove_stale(out_dir: Path, previous: set[str], current: set[str]) -> None:
    """Delete files a previous generation wrote here that this one did not (only those)."""
    root = out_dir.resolve()
    for rel in sorted(previous - current):
        path = (out_dir / rel).resolve()
        if root in path.parents and path.is_file():
            path.unlink()


# --------------------------------------------------------------------------- training days


def write_training_days(dates: Iterable[dt.date | str], out_root: Path, seed: int = DEFAULT_SEED,
                        progress: bool = True, reuse: bool = True, **config) -> list[Path]:
    """Write one synthetic normal (pre-election) day per date, each in ``out_root/<YYYY-MM-DD>/``.

    ``config`` holds further :class:`SyntheticDayConfig` knobs shared by every day (e.g.
    ``start_et="09:30"``, ``intensity_scale``, ``write_ground_truth``); ``day_kind`` and
    ``trading_date`` are set here. Every configuration is validated before anything is
    written (a weekend or holiday fails at once, naming the date). With ``reuse`` a folder
    whose manifest records the same configuration and whose listed files all exist is
    kept as it is (generation is deterministic, so it would be rewritten byte for byte).
    Returns the day folders in the order of ``dates``.
    """
    out_root = Path(out_root)
    if "day_kind" in config or "trading_date" in config:
        raise ValueError("write_training_days sets day_kind and trading_date itself")
    configs = []
    for d in dates:
        day = d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d).strip())
        configs.append(SyntheticDayConfig(seed=seed, day_kind="normal", trading_date=day, **config))
    if len({c.trading_date for c in configs}) != len(configs):
        raise ValueError("duplicate dates")
    bar = None
    if progress and configs:
        from tqdm import tqdm

        bar = tqdm(total=len(configs), desc="normal days", unit="day")
    folders = []
    try:
        for cfg in configs:
            folder = out_root / cfg.trading_date.isoformat()
            if bar is not None:
                bar.set_postfix_str(cfg.trading_date.isoformat(), refresh=True)
            if not (reuse and _is_complete(folder, cfg)):
                write_synthetic_day(cfg, folder, progress=False)
            folders.append(folder)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return folders


def _is_complete(folder: Path, cfg: SyntheticDayConfig) -> bool:
    """A previous generation of exactly ``cfg`` with every file it listed still present."""
    try:
        old = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if old.get("generated_with") != cfg.manifest_dump():
        return False
    listed = [f.get("path") for f in old.get("files", [])] + [f.get("path") for f in old.get("ground_truth_files", [])]
    listed += [f.get("path") for f in (old.get("factor_universe") or {}).get("files", [])]
    return all(isinstance(p, str) and (folder / p).is_file() for p in listed)
