"""Row-level data-quality rules shared by every reader.

Pure numpy: each rule takes column arrays and returns, per row, a reason code (0 = row is
good). Readers combine the codes of the stateless rules with the stateful ordering checks of
:class:`OrderingChecker` and route every non-zero row to quarantine with the reason's name.
The first failing rule wins, in the order the rules are applied, so each rejected row has
exactly one reason and the counts reconcile: ``read = accepted + rejected + skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Reason codes. The names are what the quarantine file and the run summary show.
REASONS: tuple[str, ...] = (
    "ok",
    "missing_value",  # a required field is null or empty
    "malformed_record",  # a JSON record that is not an object or has fields of the wrong type
    "bad_timestamp",  # timestamp cannot be parsed or is outside any sensible range
    "nan_price",
    "nonpositive_price",
    "negative_price",  # options: a negative bid or ask (zero bids are legitimate)
    "negative_size",
    "nonpositive_count",
    "crossed_quote",  # equity NBBO with bid > ask (a locked market, bid == ask, is kept)
    "option_bid_above_ask",
    "price_out_of_range",  # Kalshi prices must lie in 1..99 cents
    "inconsistent_prices",  # Kalshi REST yes_price + no_price != 100
    "bad_right",  # option right not C/P
    "nonpositive_strike",
    "malformed_conditions",  # condition list that is not a list of integers
    "unknown_condition",  # condition id not in the Polygon table (elecflow/data)
    "duplicate",  # exact copy of the previous accepted row of the same key
    "out_of_order",  # timestamp earlier than an accepted row before it of the same key
    # option trades (thetadata_trades): appended, so the codes above keep their numbers
    "bad_side",  # option trades: a side other than B/S (or BUY/SELL); an empty side is an unsigned print
    "nonpositive_size",  # a print of no contracts carries no order flow
)
REASON_CODE: dict[str, int] = {name: code for code, name in enumerate(REASONS)}


def reason_names(codes: np.ndarray) -> np.ndarray:
    """Map reason codes to their names (object array)."""
    return np.asarray(REASONS, dtype=object)[codes]


def first_failure(*rules: tuple[str, np.ndarray], n: int) -> np.ndarray:
    """Combine boolean failure masks into one reason code per row; the first rule wins."""
    codes = np.zeros(n, dtype=np.int8)
    for name, failed in rules:
        failed = np.asarray(failed, dtype=bool)
        codes[(codes == 0) & failed] = REASON_CODE[name]
    return codes


def equity_quote_failures(bid: np.ndarray, ask: np.ndarray, bid_size: np.ndarray, ask_size: np.ndarray) -> list:
    """Stateless rules for an equity NBBO quote."""
    return [
        ("nan_price", np.isnan(bid) | np.isnan(ask)),
        ("nonpositive_price", (bid <= 0) | (ask <= 0)),
        ("negative_size", (bid_size < 0) | (ask_size < 0) | np.isnan(bid_size) | np.isnan(ask_size)),
        ("crossed_quote", bid > ask),
    ]


def equity_trade_failures(price: np.ndarray, size: np.ndarray) -> list:
    """Stateless rules for an equity trade (condition ids are checked by the reader)."""
    return [
        ("nan_price", np.isnan(price)),
        ("nonpositive_price", price <= 0),
        ("negative_size", (size < 0) | np.isnan(size)),
    ]


def option_quote_failures(bid, ask, bid_size, ask_size, strike, right) -> list:
    """Stateless rules for an option quote. Zero bids (far out of the money) are kept."""
    right = np.asarray(right, dtype=object)
    return [
        ("bad_right", ~((right == "C") | (right == "P"))),
        ("nonpositive_strike", ~(strike > 0)),
        ("nan_price", np.isnan(bid) | np.isnan(ask)),
        ("negative_price", (bid < 0) | (ask < 0)),
        ("negative_size", (bid_size < 0) | (ask_size < 0) | np.isnan(bid_size) | np.isnan(ask_size)),
        # ask == 0 means no offer; a positive bid against no offer is as bad as a crossed book
        ("option_bid_above_ask", bid > ask),
    ]


def option_trade_failures(price, size, strike, right) -> list:
    """Stateless rules for an option trade print (an unparsable side is caught by the reader)."""
    right = np.asarray(right, dtype=object)
    return [
        ("bad_right", ~((right == "C") | (right == "P"))),
        ("nonpositive_strike", ~(strike > 0)),
        ("nan_price", np.isnan(price)),
        ("nonpositive_price", price <= 0),
        ("nonpositive_size", ~(size > 0)),
    ]


def kalshi_trade_failures(price_cents: np.ndarray, count: np.ndarray) -> list:
    """Stateless rules for a Kalshi fill (price in cents)."""
    return [
        ("nan_price", np.isnan(price_cents)),
        ("price_out_of_range", (price_cents < 1) | (price_cents > 99)),
        ("nonpositive_count", count <= 0),
    ]


@dataclass
class _KeyState:
    last_time: int
    last_row: tuple


@dataclass
class OrderingChecker:
    """Stateful per-key checks across batches: out-of-order timestamps and exact duplicates.

    A row is ``out_of_order`` when its timestamp is earlier than the latest accepted row of
    the same key, and a ``duplicate`` when every compared column equals the previous accepted
    row of the same key (vendors repeat a message back to back). Only rows that passed the
    stateless rules take part, so a bad row never corrupts the state.
    """

    state: dict = field(default_factory=dict)

    def check(self, keys: np.ndarray, times: np.ndarray, columns: list[np.ndarray], codes: np.ndarray,
              key_codes: np.ndarray | None = None) -> None:
        """Update ``codes`` in place (0 -> duplicate/out_of_order) for one batch.

        ``key_codes`` (optional) are small integers identifying ``keys`` (a factorisation);
        grouping on them avoids sorting strings.
        """
        dup_code = REASON_CODE["duplicate"]
        ooo_code = REASON_CODE["out_of_order"]
        candidates = np.flatnonzero(codes == 0)
        if candidates.size == 0:
            return
        cand_keys = (key_codes if key_codes is not None else keys)[candidates]
        # group rows by key, preserving file order within each key
        order = np.argsort(cand_keys, kind="stable")
        sorted_keys = cand_keys[order]
        boundaries = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        starts = np.concatenate(([0], boundaries))
        ends = np.concatenate((boundaries, [sorted_keys.size]))
        for start, end in zip(starts, ends):
            rows = candidates[order[start:end]]
            key = keys[rows[0]]
            self._check_group(key, rows, times, columns, codes, dup_code, ooo_code)

    def _check_group(self, key, rows, times, columns, codes, dup_code, ooo_code) -> None:
        t = times[rows]
        prior = self.state.get(key)
        # running maximum of earlier times decides out-of-order; it ignores rejected rows because
        # a rejected (earlier) time never raises the maximum
        prev_max = np.maximum.accumulate(t)
        prev_max = np.concatenate(([prior.last_time if prior else np.iinfo(np.int64).min], prev_max[:-1]))
        if prior is not None:
            prev_max = np.maximum(prev_max, prior.last_time)
        out_of_order = t < prev_max
        codes[rows[out_of_order]] = ooo_code
        kept = rows[~out_of_order]
        if kept.size:
            # exact duplicate of the previous kept row of this key (vectorised over the group)
            same = np.ones(kept.size, dtype=bool)
            same[0] = False
            first_same = prior is not None
            for col in columns:
                values = col[kept]
                if kept.size > 1:
                    same[1:] &= _equal(values[1:], values[:-1])
            if first_same:
                first_row = tuple(col[kept[0]] for col in columns)
                same[0] = _rows_equal(first_row, prior.last_row)
            codes[kept[same]] = dup_code
            last = kept[-1]
            self.state[key] = _KeyState(int(times[last]), tuple(col[last] for col in columns))


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    eq = a == b
    if a.dtype.kind == "f":
        eq |= np.isnan(a) & np.isnan(b)
    return np.asarray(eq, dtype=bool)


def _rows_equal(a: tuple, b: tuple) -> bool:
    for x, y in zip(a, b):
        if x != y and not (isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y)):
            return False
    return True
