"""Injected bad rows: a known number per stream and reason, each breaking exactly one rule.

Every defect is an *extra* row (the clean stream is untouched), inserted right after a
clean "anchor" row of the same instrument. Anchors are at least three rows apart, never
the first or last row of their instrument, so the row before and the row after a defect
are always clean. The rules a reader is expected to apply, and how each defect row is made
so that it fails that rule and no other (docs/synthetic-day.md, "Defects"):

quotes (Polygon)
  crossed_quote      copy of the anchor with ``bid = ask + 1..3 ticks``
  nonpositive_price  copy with ``bid_price`` 0 (or -0.01)
  nan_price          copy with ``ask_price`` (or ``bid_price``) NaN
  negative_size      copy with ``bid_size`` negated
  (for the four above, ``sip_timestamp`` lies strictly between the anchor's and the next row's)
  duplicate          exact copy of the anchor (every column, sequence number included)
  out_of_order       copy of the anchor's prices and sizes with its own sequence number and
                     a ``sip_timestamp`` up to 100 ms *earlier* than the anchor's (still
                     later than the row before the anchor)
trades (Polygon)
  nonpositive_price, negative_size, unknown_condition (condition id 99 appended),
  duplicate, out_of_order: as for quotes; new rows get fresh per-ticker trade ids
options (ThetaData)
  option_bid_above_ask  copy with ``bid = ask + 1..3 ticks`` (ask > 0)
  negative_size         copy with ``bid_size`` negative
  (``ms_of_day`` between the anchor's snapshot and the contract's next one)
kalshi
  malformed_record   a record without ``price`` (``yes_price``) or with a non-number string
  price_out_of_range a record priced 0 or 100 cents
"""

from __future__ import annotations

import numpy as np

QUOTE_REASONS = ("crossed_quote", "nonpositive_price", "nan_price", "negative_size", "duplicate", "out_of_order")
TRADE_REASONS = ("nonpositive_price", "negative_size", "duplicate", "out_of_order", "unknown_condition")
OPTION_REASONS = ("option_bid_above_ask", "negative_size")
KALSHI_REASONS = ("malformed_record", "price_out_of_range")
REASONS_BY_STREAM = {"quotes": QUOTE_REASONS, "trades": TRADE_REASONS, "option_quotes": OPTION_REASONS,
                     "kalshi_trades": KALSHI_REASONS, "nbbo_1s": ()}
UNKNOWN_CONDITION_ID = 99


def pick_anchors(key: np.ndarray, candidate: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` anchor rows: inner rows of their key group, ``candidate`` true, >= 3 rows apart.

    Returns fewer than ``k`` only if the stream is too small.
    """
    n = key.size
    if n < 3 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    inner = np.zeros(n, dtype=bool)
    inner[1:-1] = (key[1:-1] == key[:-2]) & (key[1:-1] == key[2:])
    pool = np.flatnonzero(inner & candidate)
    if pool.size == 0:
        return np.zeros(0, dtype=np.int64)
    chosen: list[int] = []
    for r in rng.permutation(pool)[: max(4 * k, 64)]:
        if all(abs(int(r) - c) >= 3 for c in chosen):
            chosen.append(int(r))
            if len(chosen) == k:
                break
    return np.array(chosen, dtype=np.int64)


def insert_after(columns: dict[str, np.ndarray], anchors: np.ndarray, rows: dict[str, np.ndarray]
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Insert ``rows[c][j]`` right after row ``anchors[j]``; returns new columns and new row positions."""
    order = np.argsort(anchors, kind="stable")
    at = anchors[order] + 1
    out = {c: np.insert(v, at, np.asarray(rows[c])[order]) for c, v in columns.items()}
    positions = np.empty(anchors.size, dtype=np.int64)
    positions[order] = at + np.arange(anchors.size)
    return out, positions


def _between(t: np.ndarray, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gap = t[anchors + 1] - t[anchors]
    return t[anchors] + 1 + (rng.random(anchors.size) * (gap - 1)).astype(np.int64)


def inject_polygon(stream: str, cols: dict[str, np.ndarray], k: int, rng: np.random.Generator, tick: float = 0.01
                   ) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Add ``k`` defect rows per reason to a Polygon quotes or trades column dict.

    ``cols`` is in file order (ticker, then sip_timestamp) with a ``ticker`` key column;
    trades also carry ``id`` (int, unique per ticker) and ``conditions`` (text).
    """
    reasons = QUOTE_REASONS if stream == "quotes" else TRADE_REASONS
    key, t = cols["ticker"], cols["sip_timestamp"]
    gap_ok = np.zeros(t.size, dtype=bool)
    gap_ok[1:-1] = (np.diff(t[:-1]) >= 2) & (np.diff(t[1:]) >= 2)  # room before and after the anchor
    anchors_all = pick_anchors(key, gap_ok, k * len(reasons), rng)
    log: list[dict] = []
    new_rows: dict[str, list] = {c: [] for c in cols}
    anchor_list: list[np.ndarray] = []
    next_id = None
    if stream == "trades":
        next_id = {int(g): int(cols["id"][key == g].max()) + 1 for g in np.unique(key[anchors_all])} \
            if anchors_all.size else {}
    for i, reason in enumerate(reasons):
        anchors = anchors_all[i * k:(i + 1) * k]
        if anchors.size == 0:
            continue
        rows = {c: v[anchors].copy() for c, v in cols.items()}
        m = anchors.size
        if reason != "duplicate":
            rows["sequence_number"] = cols["sequence_number"][anchors] + (1 if stream == "quotes" else 2)
            if reason == "out_of_order":
                # late report: earlier than the anchor, later than the row before it
                room = np.minimum(t[anchors] - t[anchors - 1] - 1, 100_000_000)
                new_t = t[anchors] - 1 - (rng.random(m) * room).astype(np.int64)
            else:
                new_t = _between(t, anchors, rng)
            shift = new_t - t[anchors]
            rows["sip_timestamp"] = new_t
            rows["participant_timestamp"] = cols["participant_timestamp"][anchors] + shift
            if "trf_timestamp" in rows:
                rows["trf_timestamp"] = np.where(rows["trf_timestamp"] >= 0, rows["trf_timestamp"] + shift, -1)
            if stream == "trades":
                ids = []
                for g in key[anchors]:
                    ids.append(next_id[int(g)])
                    next_id[int(g)] += 1
                rows["id"] = np.array(ids, dtype=np.int64)
        alt = np.arange(m) % 2 == 1  # alternate the variant of a reason
        if reason == "crossed_quote":
            rows["bid_price"] = np.round(rows["ask_price"] + tick * rng.integers(1, 4, m), 4)
        elif reason == "nonpositive_price":
            col = "bid_price" if stream == "quotes" else "price"
            rows[col] = np.where(alt, -tick, 0.0)
        elif reason == "nan_price":
            rows["ask_price"] = np.where(alt, rows["ask_price"], np.nan)
            rows["bid_price"] = np.where(alt, np.nan, rows["bid_price"])
        elif reason == "negative_size":
            col = "bid_size" if stream == "quotes" else "size"
            rows[col] = -np.abs(rows[col])
        elif reason == "unknown_condition":
            rows["conditions"] = np.array([f"{c},{UNKNOWN_CONDITION_ID}" if c else str(UNKNOWN_CONDITION_ID)
                                           for c in rows["conditions"]], dtype=object)
        for c in cols:
            new_rows[c].append(rows[c])
        anchor_list.append(anchors)
        for j in range(m):
            entry = {"stream": stream, "reason": reason, "ticker_index": int(key[anchors[j]]),
                     "sip_timestamp": int(rows["sip_timestamp"][j]),
                     "sequence_number": int(rows["sequence_number"][j])}
            if stream == "trades":
                entry["id"] = int(rows["id"][j])
            log.append(entry)
    if not anchor_list:
        return cols, []
    anchors = np.concatenate(anchor_list)
    out, positions = insert_after(cols, anchors, {c: np.concatenate(v) for c, v in new_rows.items()})
    for entry, pos in zip(log, positions):
        entry["row"] = int(pos)
    return out, log


def inject_options(cols: dict[str, np.ndarray], k: int, rng: np.random.Generator, cadence_ms: int
                   ) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Add ``k`` defect rows per reason to one ThetaData file's columns (file order).

    ``cols`` needs ``contract_key`` (int, one per strike/right), ``ms_of_day``, ``time_ns``,
    ``bid``, ``ask``, ``bid_size`` and the other vendor columns.
    """
    key = cols["contract_key"]
    ms = cols["ms_of_day"]
    nxt = np.zeros(key.size, dtype=bool)
    nxt[:-1] = (key[1:] == key[:-1]) & (np.diff(ms) >= 2)
    anchors_all = pick_anchors(key, nxt & (cols["ask"] > 0), k * len(OPTION_REASONS), rng)
    log: list[dict] = []
    new_rows: dict[str, list] = {c: [] for c in cols}
    anchor_list = []
    for i, reason in enumerate(OPTION_REASONS):
        anchors = anchors_all[i * k:(i + 1) * k]
        if anchors.size == 0:
            continue
        m = anchors.size
        rows = {c: v[anchors].copy() for c, v in cols.items()}
        room = np.minimum(ms[anchors + 1] - ms[anchors] - 1, cadence_ms - 1)
        dms = 1 + (rng.random(m) * room).astype(np.int64)
        rows["ms_of_day"] = ms[anchors] + dms
        rows["time_ns"] = cols["time_ns"][anchors] + dms * 1_000_000
        if reason == "option_bid_above_ask":
            rows["bid"] = np.round(rows["ask"] + 0.01 * rng.integers(1, 4, m), 4)
            rows["bid_size"] = np.maximum(rows["bid_size"], 1)
        else:
            rows["bid_size"] = -np.maximum(np.abs(rows["bid_size"]), 1)
        for c in cols:
            new_rows[c].append(rows[c])
        anchor_list.append(anchors)
        for j in range(m):
            log.append({"stream": "option_quotes", "reason": reason, "strike": int(rows["strike"][j]),
                        "right": str(rows["right"][j]), "ms_of_day": int(rows["ms_of_day"][j])})
    if not anchor_list:
        return cols, []
    extra = {c: np.concatenate(v) for c, v in new_rows.items()}
    out, positions = insert_after(cols, np.concatenate(anchor_list), extra)
    for entry, pos in zip(log, positions):
        entry["row"] = int(pos)
    return out, log


def kalshi_defects(window_ns: tuple[int, int], k: int, rng: np.random.Generator, n_contracts: int = 2
                   ) -> list[dict]:
    """Specs of bad Kalshi records: ``variant`` is how the writer renders the record."""
    from elecflow.synth.kalshi import uuids

    out = []
    for reason, variants in (("malformed_record", ("missing_price", "string_price")),
                             ("price_out_of_range", ("price_zero", "price_hundred"))):
        for j in range(k):
            t = int(window_ns[0] + rng.integers(0, window_ns[1] - window_ns[0]) // 1_000 * 1_000)
            out.append({"stream": "kalshi_trades", "reason": reason, "variant": variants[j % 2], "time_ns": t,
                        "contract_index": int(rng.integers(0, n_contracts)),
                        "count": int(rng.integers(1, 200)), "price_hint": int(rng.integers(2, 99))})
    for entry, tid in zip(out, uuids(rng, len(out))):
        entry["trade_id"] = str(tid)
    return out
