"""Trade signing, sweeps, 1-minute microstructure bars and the 1 s NBBO sampler.

Pure numerics (numpy + numba), no file I/O and no csp: every estimator has a batch function
over arrays and a streaming class with per-tick methods, and the two agree exactly
(``tests/test_microstructure.py``). Definitions and conventions: ``docs/microstructure.md``.

Times are integer nanoseconds since the Unix epoch, UTC (``int`` or ``int64``).

Signing
    :func:`lee_ready`, :func:`tick_rule`, :func:`emo` decide one sign per trade from
    aligned arrays (price, prevailing bid/ask, look-back price); :func:`prevailing_quotes`
    and :func:`last_different_price` build those inputs from raw quote and trade arrays;
    :func:`sign_trades` chains all of it; :class:`TradeSigner` is the streaming signer.
Bars
    :class:`MinuteBars` (streaming) and :func:`minute_bars` (batch) produce the seed's
    per-minute feature table (:data:`BAR_COLUMNS`).
1 s NBBO
    :class:`OneSecondNbbo` (streaming) and :func:`nbbo_1s` (batch): the last quote in
    ``[T - 1 s, T)``, labelled ``T``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

import numba
import numpy as np

from elecflow.conditions import TABLE

__all__ = [
    "BAR_COLUMNS",
    "METHODS",
    "NBBO_1S_COLUMNS",
    "NS_PER_MINUTE",
    "NS_PER_SECOND",
    "PRICE_RTOL",
    "MinuteBars",
    "OneSecondNbbo",
    "TradeSigner",
    "bar_counted",
    "bars_from_rows",
    "counts_in_bars",
    "emo",
    "is_signing_eligible",
    "last_different_price",
    "lee_ready",
    "minute_bars",
    "nbbo_1s",
    "prevailing_quote_index",
    "prevailing_quotes",
    "sign_trades",
    "signing_eligible",
    "tick_rule",
]

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND

#: Two prices within this relative distance are the same price in the quote comparisons
#: (at the midpoint, at the bid, at the ask). (bid + ask) / 2 is computed in floating point
#: and can miss a printed midpoint by an ulp (0.1 + 0.2 != 0.3); 1e-10 is a million times
#: the double rounding error and below the smallest tick ($0.0001) on any price under
#: $1,000,000. Trade prices are compared with each other exactly (tick test).
PRICE_RTOL = 1e-10

#: Signing methods: Lee-Ready (1991), tick rule, Ellis-Michaely-O'Hara (2000).
METHODS = ("lee_ready", "tick", "emo")
_METHOD_CODE = {"lee_ready": 0, "tick": 1, "emo": 2}

#: Columns of a 1-minute bar, in order: the seed's table, then the microprice pair.
BAR_COLUMNS = (
    "ticker",
    "bucket",
    "log_mid",
    "quote_updates",
    "avg_rsprd",
    "pct_trades_iso",
    "pct_volume_iso",
    "total_flow_non_iso",
    "total_flow_iso",
    "num_trades",
    "num_trades_iso",
    "total_volume",
    "total_flow",
    "iso_flow_intensity",
    "microprice",
    "microprice_var",
)
_INT_BAR_COLUMNS = ("bucket", "quote_updates", "num_trades", "num_trades_iso")

#: Columns of the 1 s NBBO sample (the vendor's ``nbbo_1s`` file; ``time`` = right end T).
NBBO_1S_COLUMNS = ("time", "symbol", "bid_price", "ask_price")

_INF = math.inf
_NAN = math.nan

# --------------------------------------------------------------------------------------------
# eligibility from condition masks and the correction indicator
# --------------------------------------------------------------------------------------------

#: A mask with any of these bits set must not be signed: excluded ids and ids outside the table.
_NOT_SIGNABLE_BITS = TABLE.excluded_mask | ~TABLE.known_mask
#: Condition ids whose consolidated rules do not update volume (official open/close markers,
#: the corrected close, legacy correction/cancel ids...): such prints are not bar volume.
_NO_VOLUME_BITS = sum(1 << c.id for c in TABLE if c.maskable and not c.updates_volume)


def is_signing_eligible(condition_mask: int, correction: int = 0) -> bool:
    """Scalar: the trade may be signed and may update the tick-test look-back.

    True when the condition table allows signing (``conditions.TABLE.is_sign_eligible``:
    no excluded id, no unknown id) and the trade is not corrected or cancelled
    (``correction == 0``).
    """
    return correction == 0 and not (condition_mask & _NOT_SIGNABLE_BITS)


def signing_eligible(condition_masks, corrections=None) -> np.ndarray:
    """Vectorised :func:`is_signing_eligible` (bool array)."""
    ok = TABLE.sign_eligible(condition_masks)
    if corrections is not None:
        ok &= np.asarray(corrections) == 0
    return ok


def counts_in_bars(condition_mask: int, correction: int = 0) -> bool:
    """Scalar: the trade counts in the bars' trade counts, volume and flow.

    A trade counts unless it is corrected or cancelled (``correction != 0``) or carries a
    condition whose consolidated rules do not update volume (e.g. 15/16 official close/open
    markers, which repeat volume already printed). Unsigned trades (sign 0) still count in
    ``num_trades`` and ``total_volume``; they add nothing to the signed flows.
    """
    return correction == 0 and not (condition_mask & _NO_VOLUME_BITS)


def bar_counted(condition_masks, corrections=None) -> np.ndarray:
    """Vectorised :func:`counts_in_bars` (bool array)."""
    masks = np.asarray(condition_masks).astype(np.int64, copy=False)
    ok = (masks & np.int64(_NO_VOLUME_BITS)) == 0
    if corrections is not None:
        ok &= np.asarray(corrections) == 0
    return ok


# --------------------------------------------------------------------------------------------
# the per-trade rules (one scalar implementation, compiled by numba for the batch path and
# called as plain Python by the streaming signer, so both make bit-identical decisions)
# --------------------------------------------------------------------------------------------


def _tick_py(price, prev):
    if price > prev:
        return 1
    if price < prev:
        return -1
    return 0  # zero tick against a look-back price, or prev is NaN (no earlier different price)


def _lee_ready_py(price, bid, ask, prev):
    if bid > 0.0 and bid <= ask and ask < _INF:
        mid = 0.5 * (bid + ask)
        tol = PRICE_RTOL * mid
        if price > mid + tol:
            return 1
        if price < mid - tol:
            return -1
    return _tick_py(price, prev)


def _emo_py(price, bid, ask, prev):
    if bid > 0.0 and bid < ask and ask < _INF:  # a locked market (bid == ask) is ambiguous
        if abs(price - ask) <= PRICE_RTOL * ask:
            return 1
        if abs(price - bid) <= PRICE_RTOL * bid:
            return -1
    return _tick_py(price, prev)


def _sign_py(method, price, bid, ask, prev):
    if method == 0:
        return _lee_ready_py(price, bid, ask, prev)
    if method == 1:
        return _tick_py(price, prev)
    return _emo_py(price, bid, ask, prev)


_tick_nb = numba.njit(cache=True)(_tick_py)


@numba.njit(cache=True)
def _lee_ready_nb(price, bid, ask, prev):
    if bid > 0.0 and bid <= ask and ask < np.inf:
        mid = 0.5 * (bid + ask)
        tol = PRICE_RTOL * mid
        if price > mid + tol:
            return 1
        if price < mid - tol:
            return -1
    return _tick_nb(price, prev)


@numba.njit(cache=True)
def _emo_nb(price, bid, ask, prev):
    if bid > 0.0 and bid < ask and ask < np.inf:
        if abs(price - ask) <= PRICE_RTOL * ask:
            return 1
        if abs(price - bid) <= PRICE_RTOL * bid:
            return -1
    return _tick_nb(price, prev)


@numba.njit(cache=True)
def _sign_nb(method, price, bid, ask, prev):
    if method == 0:
        return _lee_ready_nb(price, bid, ask, prev)
    if method == 1:
        return _tick_nb(price, prev)
    return _emo_nb(price, bid, ask, prev)


@numba.njit(cache=True)
def _sign_array_nb(method, price, bid, ask, prev, eligible):
    n = price.shape[0]
    out = np.zeros(n, np.int8)
    for i in range(n):
        if eligible[i]:
            out[i] = _sign_nb(method, price[i], bid[i], ask[i], prev[i])
    return out


def _f64(x, n=None, name="array") -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} elements, expected {n}")
    return a


def _mask(eligible, n) -> np.ndarray:
    if eligible is None:
        return np.ones(n, np.bool_)
    a = np.ascontiguousarray(np.asarray(eligible, dtype=np.bool_))
    if a.shape != (n,):
        raise ValueError(f"eligible has shape {a.shape}, expected ({n},)")
    return a


def _sign_arrays(method: str, price, bid, ask, prev_price, eligible) -> np.ndarray:
    price = _f64(price, name="price")
    n = price.shape[0]
    bid = _f64(bid, n, "bid") if bid is not None else np.full(n, np.nan)
    ask = _f64(ask, n, "ask") if ask is not None else np.full(n, np.nan)
    prev = _f64(prev_price, n, "prev_price")
    return _sign_array_nb(_METHOD_CODE[method], price, bid, ask, prev, _mask(eligible, n))


def lee_ready(price, bid, ask, prev_price, eligible=None) -> np.ndarray:
    """Lee-Ready (1991) trade signs: +1 buyer-initiated, -1 seller-initiated, 0 undecidable.

    Quote rule: a trade above the prevailing midpoint is a buy, below it a sell. A trade at
    the midpoint (within :data:`PRICE_RTOL`), or one without a usable quote (NaN, bid <= 0,
    ask < bid), is signed by the tick test against ``prev_price``: the last earlier trade
    price *different* from this one (:func:`last_different_price`); up = +1, down = -1;
    0 when ``prev_price`` is NaN (no earlier different price).

    ``bid``/``ask`` are the quote in force when the trade printed (:func:`prevailing_quotes`).
    ``eligible`` (optional bool array): False -> 0 (see :func:`signing_eligible`). Returns int8.
    """
    return _sign_arrays("lee_ready", price, bid, ask, prev_price, eligible)


def tick_rule(price, prev_price, eligible=None) -> np.ndarray:
    """Tick test alone: sign(price - prev_price), 0 when prev_price is NaN or equal. int8."""
    return _sign_arrays("tick", price, None, None, prev_price, eligible)


def emo(price, bid, ask, prev_price, eligible=None) -> np.ndarray:
    """Ellis, Michaely and O'Hara (2000): quote rule only at the quotes, tick test elsewhere.

    A trade at the ask (within :data:`PRICE_RTOL`) is a buy, at the bid a sell; every other
    trade (inside the spread, at the midpoint, outside the quotes, or in a locked or unusable
    quote) is signed by the tick test as in :func:`tick_rule`. int8.
    """
    return _sign_arrays("emo", price, bid, ask, prev_price, eligible)


# --------------------------------------------------------------------------------------------
# groups (symbols) -> integer codes
# --------------------------------------------------------------------------------------------


def _is_arrow(x) -> bool:
    return type(x).__module__.startswith("pyarrow")


def _to_numpy(x) -> np.ndarray:
    if _is_arrow(x):
        return x.to_numpy(zero_copy_only=False) if hasattr(x, "to_numpy") else np.asarray(x)
    return np.asarray(x)


def _factorize(*groups):
    """Shared codes for several label arrays: (sorted vocabulary list, [int64 codes...]).

    Labels can be numpy arrays (strings, objects or integers) or pyarrow arrays. Codes follow
    the sorted vocabulary, so sorting by code sorts by label (ASCII order for tickers).
    """
    if all(_is_arrow(g) for g in groups):
        import pyarrow as pa
        import pyarrow.compute as pc

        vocab = sorted(set().union(*(pc.unique(g).to_pylist() for g in groups)))
        value_set = pa.array(vocab, type=groups[0].type)
        codes = []
        for g in groups:
            idx = pc.index_in(g, value_set=value_set)
            if isinstance(idx, pa.ChunkedArray):
                idx = idx.combine_chunks()
            codes.append(idx.to_numpy(zero_copy_only=False).astype(np.int64))
        return vocab, codes
    arrays = [_to_numpy(g) for g in groups]
    sizes = [len(a) for a in arrays]
    vocab, inverse = np.unique(np.concatenate(arrays) if arrays else np.array([]), return_inverse=True)
    inverse = inverse.astype(np.int64).reshape(-1)
    codes = np.split(inverse, np.cumsum(sizes)[:-1])
    return vocab.tolist(), codes


def _same_kind(*groups):
    """Make label arrays all pyarrow (fast path) or all numpy; empty ones follow the others."""
    arrow = [_is_arrow(g) for g in groups]
    if all(arrow) or not any(arrow):
        return groups
    ref = next(g for g in groups if _is_arrow(g))
    if all(_is_arrow(g) or len(g) == 0 for g in groups):
        import pyarrow as pa

        return tuple(g if _is_arrow(g) else pa.array([], type=ref.type) for g in groups)
    return tuple(_to_numpy(g) for g in groups)


def _group_codes(group, n, name):
    if group is None:
        return np.zeros(n, np.int64), 1
    vocab, (codes,) = _factorize(group)
    if codes.shape[0] != n:
        raise ValueError(f"{name} has {codes.shape[0]} elements, expected {n}")
    return codes, max(len(vocab), 1)


# --------------------------------------------------------------------------------------------
# prevailing quote and tick-test look-back
# --------------------------------------------------------------------------------------------


def _times(x, name="times") -> np.ndarray:
    if _is_arrow(x):
        import pyarrow as pa

        x = x.cast(pa.int64())
    a = np.asarray(x)
    if a.dtype.kind == "M":
        a = a.astype("datetime64[ns]").view(np.int64)
    a = np.ascontiguousarray(a.astype(np.int64, copy=False))
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    return a


def prevailing_quote_index(trade_times, quote_times, delay_ns: int = 0, trade_group=None,
                           quote_group=None) -> np.ndarray:
    """Index (into the quote arrays) of the quote in force strictly before ``t - delay_ns``.

    For a trade at ``t`` this is the last quote of the same group with
    ``quote_time < t - delay_ns``: ``searchsorted(quote_times, t - delay_ns, side="left") - 1``
    within the group. A quote stamped exactly ``t - delay_ns`` is *not* yet in force (the
    trade may have been what moved it). -1 where the group has no such quote.

    Quote times must be non-decreasing within each group (ValueError otherwise); trades may
    come in any order. Groups (e.g. symbols) are matched by value between the two arrays.
    """
    tt = _times(trade_times, "trade_times")
    qt = _times(quote_times, "quote_times")
    if delay_ns < 0:
        raise ValueError("delay_ns must be >= 0")
    target = tt - np.int64(delay_ns)
    if trade_group is None and quote_group is None:
        if qt.size and np.any(np.diff(qt) < 0):
            raise ValueError("quote_times must be non-decreasing")
        return np.searchsorted(qt, target, side="left").astype(np.int64) - 1
    if trade_group is None or quote_group is None:
        raise ValueError("give both trade_group and quote_group, or neither")
    vocab, (tc, qc) = _factorize(*_same_kind(trade_group, quote_group))
    if tc.shape[0] != tt.shape[0] or qc.shape[0] != qt.shape[0]:
        raise ValueError("group arrays must align with their time arrays")
    out = np.full(tt.shape[0], -1, np.int64)
    q_order = np.argsort(qc, kind="stable")
    q_bounds = np.searchsorted(qc[q_order], np.arange(len(vocab) + 1))
    for g in np.unique(tc):
        lo, hi = q_bounds[g], q_bounds[g + 1]
        if lo == hi:
            continue
        qidx = q_order[lo:hi]
        qtg = qt[qidx]
        if np.any(np.diff(qtg) < 0):
            raise ValueError("quote_times must be non-decreasing within each group")
        tsel = np.flatnonzero(tc == g)
        pos = np.searchsorted(qtg, target[tsel], side="left") - 1
        out[tsel] = np.where(pos >= 0, qidx[np.maximum(pos, 0)], -1)
    return out


def prevailing_quotes(trade_times, quote_times, bid, ask, delay_ns: int = 0, trade_group=None,
                      quote_group=None) -> tuple[np.ndarray, np.ndarray]:
    """(bid, ask) in force strictly before each ``trade_time - delay_ns``; NaN where none.

    See :func:`prevailing_quote_index` for the exact rule (``side="left"`` minus one).
    """
    idx = prevailing_quote_index(trade_times, quote_times, delay_ns, trade_group, quote_group)
    b = _f64(bid, name="bid")
    a = _f64(ask, b.shape[0], "ask")
    ok = idx >= 0
    safe = np.where(ok, idx, 0)
    nan = np.full(idx.shape[0], np.nan)
    if b.shape[0] == 0:
        return nan, nan.copy()
    return np.where(ok, b[safe], nan), np.where(ok, a[safe], nan)


@numba.njit(cache=True)
def _last_different_nb(price, codes, n_groups, eligible):
    n = price.shape[0]
    out = np.empty(n, np.float64)
    last = np.full(n_groups, np.nan)  # last eligible price of the group
    before = np.full(n_groups, np.nan)  # the price before the current run of equal prices
    for i in range(n):
        g = codes[i]
        p = price[i]
        if p != last[g]:  # also when last is NaN (no earlier trade)
            out[i] = last[g]
        else:
            out[i] = before[g]
        if eligible[i] and p > 0.0 and p < np.inf:
            if p != last[g]:
                before[g] = last[g]
                last[g] = p
    return out


def last_different_price(price, group=None, eligible=None) -> np.ndarray:
    """Tick-test look-back: for each trade, the last earlier eligible trade price of the same
    group that differs from its own price (zero-tick look-back); NaN when there is none.

    Rows must be in time order within each group. Trades that are not ``eligible`` (or have a
    non-positive or non-finite price) get a look-back value but do not update it: an excluded
    print (average price, out of sequence, cancelled...) is not a "trade at market" for the
    last-price logic, exactly as it is not signed.
    """
    p = _f64(price, name="price")
    codes, n_groups = _group_codes(group, p.shape[0], "group")
    return _last_different_nb(p, codes, n_groups, _mask(eligible, p.shape[0]))


def _valid_price_mask(price: np.ndarray) -> np.ndarray:
    return (price > 0.0) & (price < np.inf)


def sign_trades(trade_times, price, quote_times=None, bid=None, ask=None, *, eligible=None,
                trade_group=None, quote_group=None, method: str = "lee_ready",
                delay_ns: int = 0) -> np.ndarray:
    """Sign raw trades against raw quotes, per symbol: the batch counterpart of :class:`TradeSigner`.

    ``method`` is ``"lee_ready"``, ``"tick"`` (quotes not needed) or ``"emo"``. Prevailing
    quote: :func:`prevailing_quotes` with ``delay_ns``. Look-back: :func:`last_different_price`
    over the eligible trades. Ineligible trades (and trades with a non-positive or non-finite
    price) get 0. Trades must be in time order within each symbol. Returns int8.
    """
    if method not in _METHOD_CODE:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    p = _f64(price, name="price")
    n = p.shape[0]
    elig = _mask(eligible, n) & _valid_price_mask(p)
    prev = last_different_price(p, trade_group, elig)
    if method == "tick":
        return tick_rule(p, prev, elig)
    if quote_times is None or bid is None or ask is None:
        raise ValueError(f"method {method!r} needs quote_times, bid and ask")
    b, a = prevailing_quotes(trade_times, quote_times, bid, ask, delay_ns, trade_group, quote_group)
    return _sign_arrays(method, p, b, a, prev, elig)


# --------------------------------------------------------------------------------------------
# streaming signer
# --------------------------------------------------------------------------------------------


class _SignerState:
    __slots__ = ("bid", "ask", "pending", "last", "before", "time")

    def __init__(self):
        self.bid = _NAN  # the latest quote already in force for any later trade
        self.ask = _NAN
        self.pending = deque()  # (time, bid, ask) not yet in force for every later trade
        self.last = _NAN  # last eligible trade price
        self.before = _NAN  # price before the current run of equal prices
        self.time = -(1 << 62)  # last event time seen (order check)


class TradeSigner:
    """Streaming trade signer: the per-tick counterpart of :func:`sign_trades`.

    ``method``: ``"lee_ready"`` (default), ``"tick"`` or ``"emo"``. ``quote_delay_ns``: a
    trade at ``t`` is signed against the last quote with ``time < t - quote_delay_ns``.

    Feed quotes and trades of each symbol in time order (ties in any order; the strict
    inequality settles them): ``on_quote(symbol, time_ns, bid, ask)`` and
    ``on_trade(symbol, time_ns, price, eligible) -> int``. Per symbol the state is the quote
    known to be in force for every later trade, a short queue of newer quotes (those within
    the delay, or stamped at the latest timestamp), the last eligible price and the price
    before its run. Each call is O(1) amortised. A time earlier than the symbol's previous
    event raises ValueError.
    """

    __slots__ = ("method", "_code", "delay", "_states")

    def __init__(self, method: str = "lee_ready", quote_delay_ns: int = 0):
        if method not in _METHOD_CODE:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if quote_delay_ns < 0:
            raise ValueError("quote_delay_ns must be >= 0")
        self.method = method
        self._code = _METHOD_CODE[method]
        self.delay = int(quote_delay_ns)
        self._states: dict[str, _SignerState] = {}

    def _state(self, symbol, time_ns) -> _SignerState:
        s = self._states.get(symbol)
        if s is None:
            s = self._states[symbol] = _SignerState()
        if time_ns < s.time:
            raise ValueError(f"{symbol}: event at {time_ns} ns is earlier than the previous one ({s.time} ns)")
        s.time = time_ns
        return s

    @staticmethod
    def _promote(s: _SignerState, cutoff: int) -> None:
        pend = s.pending
        while pend and pend[0][0] < cutoff:
            _, s.bid, s.ask = pend.popleft()

    def on_quote(self, symbol: str, time_ns: int, bid: float, ask: float) -> None:
        s = self._state(symbol, time_ns)
        s.pending.append((time_ns, bid, ask))
        # every later trade has t >= time_ns, so quotes older than time_ns - delay are in force for it
        self._promote(s, time_ns - self.delay)

    def on_trade(self, symbol: str, time_ns: int, price: float, eligible: bool = True) -> int:
        s = self._state(symbol, time_ns)
        self._promote(s, time_ns - self.delay)
        if not eligible or not (0.0 < price < _INF):
            return 0
        last = s.last
        if price != last:
            prev = last
            s.before = last
            s.last = price
        else:
            prev = s.before
        return _sign_py(self._code, price, s.bid, s.ask, prev)

    def prevailing(self, symbol: str, time_ns: int) -> tuple[float, float]:
        """(bid, ask) a trade of ``symbol`` at ``time_ns`` would be signed against (no state change
        beyond promoting quotes; ``time_ns`` must not be earlier than the last event)."""
        s = self._state(symbol, time_ns)
        self._promote(s, time_ns - self.delay)
        return s.bid, s.ask


# --------------------------------------------------------------------------------------------
# 1-minute bars
# --------------------------------------------------------------------------------------------


class _BarState:
    __slots__ = (
        "end", "time", "active", "has_quote", "t_last", "bid", "ask", "mid", "rsprd", "micro_ok", "micro", "mvar",
        "q_dt", "q_mid", "q_rs", "m_dt", "m_mp", "m_var", "updates",
        "n", "n_iso", "vol", "vol_iso", "dvol", "flow", "flow_iso", "flow_non",
    )

    def __init__(self):
        self.end = 0  # end of the open bucket; 0 = none open
        self.time = -(1 << 62)  # last event time (order check)
        self.active = False  # the open bucket saw a quote or a counted trade
        self.has_quote = False
        self.t_last = 0  # quote state integrated up to here
        self.bid = _NAN
        self.ask = _NAN
        self.mid = _NAN
        self.rsprd = _NAN
        self.micro_ok = False
        self.micro = _NAN
        self.mvar = _NAN
        self._reset()

    def _reset(self):
        self.q_dt = 0.0
        self.q_mid = 0.0
        self.q_rs = 0.0
        self.m_dt = 0.0
        self.m_mp = 0.0
        self.m_var = 0.0
        self.updates = 0
        self.n = 0
        self.n_iso = 0
        self.vol = 0.0
        self.vol_iso = 0.0
        self.dvol = 0.0
        self.flow = 0.0
        self.flow_iso = 0.0
        self.flow_non = 0.0


class MinuteBars:
    """Streaming 1-minute microstructure bars (the seed's table plus microprice), per symbol.

    Buckets are ``[end - 60 s, end)`` on the UTC minute grid, labelled by ``end``.
    Feed each symbol's events in time order:

    - ``on_quote(symbol, time_ns, bid, ask, bid_size, ask_size)``
    - ``on_trade(symbol, time_ns, price, size, sign, is_iso, counted=True)`` (``sign`` from a
      signer; ``counted`` from :func:`counts_in_bars`; uncounted trades are ignored)

    and collect finished bars with ``close(until_ns)`` — every bar whose bucket ends at or
    before ``until_ns``, sorted by (bucket, ticker); call it from a 1-minute timer at each
    minute boundary — or ``flush()`` at the end of the data. An event past a symbol's open
    bucket closes that bucket itself, so it does not matter whether the timer or an event at
    the same boundary is handled first. A bar is emitted only for a minute with at least one
    quote or counted trade of its symbol. Quote-state averages are time-weighted over the
    minute, carrying the quote in force at its start (``docs/microstructure.md``).

    Rows are dicts with the keys of :data:`BAR_COLUMNS` (``bucket`` in epoch ns, UTC).
    Quotes that are not usable (bid <= 0, ask < bid, NaN or infinite prices) are ignored.
    """

    __slots__ = ("_states", "_ready", "interval", "_closed")

    def __init__(self, interval_ns: int = NS_PER_MINUTE):
        if interval_ns <= 0:
            raise ValueError("interval_ns must be positive")
        self.interval = int(interval_ns)
        self._states: dict[str, _BarState] = {}
        self._ready: list[dict] = []
        self._closed = -(1 << 62)  # events before this time belong to bars already returned

    def _state(self, symbol: str, time_ns: int) -> _BarState:
        s = self._states.get(symbol)
        if s is None:
            s = self._states[symbol] = _BarState()
        if time_ns < s.time or time_ns < self._closed:
            raise ValueError(f"{symbol}: event at {time_ns} ns is earlier than the previous one ({s.time} ns) "
                             f"or than a closed bucket ({self._closed} ns)")
        s.time = time_ns
        if time_ns >= s.end:
            self._roll(symbol, s, time_ns)
        return s

    def _roll(self, symbol: str, s: _BarState, time_ns: int) -> None:
        if s.end:
            self._finish(symbol, s)
        s.end = (time_ns // self.interval + 1) * self.interval
        s.t_last = s.end - self.interval

    def _finish(self, symbol: str, s: _BarState) -> None:
        """Close the open bucket: emit its row if it saw activity, reset the accumulators."""
        if s.active:
            if s.has_quote:
                dt = float(s.end - s.t_last)
                s.q_dt += dt
                s.q_mid += s.mid * dt
                s.q_rs += s.rsprd * dt
                if s.micro_ok:
                    s.m_dt += dt
                    s.m_mp += s.micro * dt
                    s.m_var += s.mvar * dt
            self._ready.append(_bar_row(symbol, s))
        s._reset()
        s.active = False
        s.t_last = s.end
        s.end = 0

    def on_quote(self, symbol: str, time_ns: int, bid: float, ask: float, bid_size: float, ask_size: float) -> None:
        if not (bid > 0.0 and bid <= ask and ask < _INF and bid_size >= 0.0 and ask_size >= 0.0):
            return
        s = self._state(symbol, time_ns)
        if s.has_quote:
            dt = float(time_ns - s.t_last)
            s.q_dt += dt
            s.q_mid += s.mid * dt
            s.q_rs += s.rsprd * dt
            if s.micro_ok:
                s.m_dt += dt
                s.m_mp += s.micro * dt
                s.m_var += s.mvar * dt
            if bid != s.bid or ask != s.ask:
                s.updates += 1
        else:
            s.updates += 1
            s.has_quote = True
        s.t_last = time_ns
        s.bid = bid
        s.ask = ask
        mid = 0.5 * (bid + ask)
        s.mid = mid
        s.rsprd = (ask - bid) / mid
        qsum = bid_size + ask_size
        if qsum > 0.0:
            s.micro_ok = True
            s.micro = (ask_size * bid + bid_size * ask) / qsum
            s.mvar = (ask - bid) * (ask - bid) / (12.0 * qsum)
        else:
            s.micro_ok = False
        s.active = True

    def on_trade(self, symbol: str, time_ns: int, price: float, size: float, sign: int, is_iso: bool,
                 counted: bool = True) -> None:
        if not counted:
            return
        s = self._state(symbol, time_ns)
        dv = size * price
        f = sign * dv
        s.n += 1
        s.vol += size
        s.dvol += dv
        s.flow += f
        if is_iso:
            s.n_iso += 1
            s.vol_iso += size
            s.flow_iso += f
        else:
            s.flow_non += f
        s.active = True

    def close(self, until_ns: int) -> list[dict]:
        """Finished bars with ``bucket <= until_ns``, sorted by (bucket, ticker).

        Afterwards an event earlier than ``until_ns`` raises ValueError (its bar is gone).
        """
        self._closed = max(self._closed, until_ns)
        for symbol, s in self._states.items():
            if s.end and s.end <= until_ns:
                self._finish(symbol, s)
        if not self._ready:
            return []
        done = [r for r in self._ready if r["bucket"] <= until_ns]
        if len(done) == len(self._ready):
            self._ready = []
        else:
            self._ready = [r for r in self._ready if r["bucket"] > until_ns]
        done.sort(key=_row_key)
        return done

    def flush(self) -> list[dict]:
        """Close every open bucket (end of data) and return all remaining bars."""
        return self.close(1 << 62)


def _row_key(row):
    return row["bucket"], row["ticker"]


def _bar_row(symbol: str, s: _BarState) -> dict:
    if s.q_dt > 0.0:
        log_mid = math.log(s.q_mid / s.q_dt)
        avg_rsprd = s.q_rs / s.q_dt
    else:
        log_mid = avg_rsprd = _NAN
    if s.m_dt > 0.0:
        micro = s.m_mp / s.m_dt
        mvar = s.m_var / s.m_dt
    else:
        micro = mvar = _NAN
    n = s.n
    return {
        "ticker": symbol,
        "bucket": s.end,
        "log_mid": log_mid,
        "quote_updates": s.updates,
        "avg_rsprd": avg_rsprd,
        "pct_trades_iso": s.n_iso / n if n > 0 else _NAN,
        "pct_volume_iso": s.vol_iso / s.vol if s.vol > 0.0 else _NAN,
        "total_flow_non_iso": s.flow_non,
        "total_flow_iso": s.flow_iso,
        "num_trades": n,
        "num_trades_iso": s.n_iso,
        "total_volume": s.vol,
        "total_flow": s.flow,
        "iso_flow_intensity": s.flow_iso / s.dvol if s.dvol > 0.0 else _NAN,
        "microprice": micro,
        "microprice_var": mvar,
    }


def bars_from_rows(rows: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """Rows from :class:`MinuteBars` -> the column dict :func:`minute_bars` returns."""
    out = {}
    for c in BAR_COLUMNS:
        vals = [r[c] for r in rows]
        if c == "ticker":
            out[c] = np.array(vals, dtype=object)
        elif c in _INT_BAR_COLUMNS:
            out[c] = np.array(vals, dtype=np.int64)
        else:
            out[c] = np.array(vals, dtype=np.float64)
    return out


# ---- batch bars (numba): the streaming logic transliterated over per-symbol sorted arrays

# float output columns of the kernel, in this order
_F_COLS = ("log_mid", "avg_rsprd", "pct_trades_iso", "pct_volume_iso", "total_flow_non_iso", "total_flow_iso",
           "total_volume", "total_flow", "iso_flow_intensity", "microprice", "microprice_var")
# int output columns: symbol code, bucket, quote_updates, num_trades, num_trades_iso


@numba.njit(cache=True)
def _bars_nb(interval, q_t, q_code, q_bid, q_ask, q_bsz, q_asz, t_t, t_code, t_px, t_sz, t_sign, t_iso,
             q_bounds, t_bounds, n_groups):
    nq = q_t.shape[0]
    nt = t_t.shape[0]
    cap = nq + nt + 1
    oi = np.empty((cap, 5), np.int64)
    of = np.empty((cap, 11), np.float64)
    r = 0
    for g in range(n_groups):
        qi = q_bounds[g]
        qe = q_bounds[g + 1]
        ti = t_bounds[g]
        te = t_bounds[g + 1]
        end = 0
        active = False
        has_quote = False
        t_last = 0
        bid = np.nan
        ask = np.nan
        mid = np.nan
        rsprd = np.nan
        micro_ok = False
        micro = np.nan
        mvar = np.nan
        q_dt = 0.0
        q_mid = 0.0
        q_rs = 0.0
        m_dt = 0.0
        m_mp = 0.0
        m_var = 0.0
        updates = 0
        n = 0
        n_iso = 0
        vol = 0.0
        vol_iso = 0.0
        dvol = 0.0
        flow = 0.0
        flow_iso = 0.0
        flow_non = 0.0
        while qi < qe or ti < te or end != 0:
            # next event: the earlier of the next quote and the next trade (quotes first on ties)
            is_quote = False
            have_event = False
            t = 0
            if qi < qe and (ti >= te or q_t[qi] <= t_t[ti]):
                is_quote = True
                have_event = True
                t = q_t[qi]
            elif ti < te:
                have_event = True
                t = t_t[ti]
            if is_quote:
                b = q_bid[qi]
                a = q_ask[qi]
                bs = q_bsz[qi]
                az = q_asz[qi]
                if not (b > 0.0 and b <= a and a < np.inf and bs >= 0.0 and az >= 0.0):
                    qi += 1
                    continue
            if end != 0 and (not have_event or t >= end):
                # finish the open bucket
                if active:
                    if has_quote:
                        dt = float(end - t_last)
                        q_dt += dt
                        q_mid += mid * dt
                        q_rs += rsprd * dt
                        if micro_ok:
                            m_dt += dt
                            m_mp += micro * dt
                            m_var += mvar * dt
                    oi[r, 0] = g
                    oi[r, 1] = end
                    oi[r, 2] = updates
                    oi[r, 3] = n
                    oi[r, 4] = n_iso
                    if q_dt > 0.0:
                        of[r, 0] = np.log(q_mid / q_dt)
                        of[r, 1] = q_rs / q_dt
                    else:
                        of[r, 0] = np.nan
                        of[r, 1] = np.nan
                    of[r, 2] = n_iso / n if n > 0 else np.nan
                    of[r, 3] = vol_iso / vol if vol > 0.0 else np.nan
                    of[r, 4] = flow_non
                    of[r, 5] = flow_iso
                    of[r, 6] = vol
                    of[r, 7] = flow
                    of[r, 8] = flow_iso / dvol if dvol > 0.0 else np.nan
                    if m_dt > 0.0:
                        of[r, 9] = m_mp / m_dt
                        of[r, 10] = m_var / m_dt
                    else:
                        of[r, 9] = np.nan
                        of[r, 10] = np.nan
                    r += 1
                q_dt = 0.0
                q_mid = 0.0
                q_rs = 0.0
                m_dt = 0.0
                m_mp = 0.0
                m_var = 0.0
                updates = 0
                n = 0
                n_iso = 0
                vol = 0.0
                vol_iso = 0.0
                dvol = 0.0
                flow = 0.0
                flow_iso = 0.0
                flow_non = 0.0
                active = False
                t_last = end
                end = 0
            if not have_event:
                break
            if end == 0:
                end = (t // interval + 1) * interval
                t_last = end - interval
            if is_quote:
                if has_quote:
                    dt = float(t - t_last)
                    q_dt += dt
                    q_mid += mid * dt
                    q_rs += rsprd * dt
                    if micro_ok:
                        m_dt += dt
                        m_mp += micro * dt
                        m_var += mvar * dt
                    if b != bid or a != ask:
                        updates += 1
                else:
                    updates += 1
                    has_quote = True
                t_last = t
                bid = b
                ask = a
                mid = 0.5 * (b + a)
                rsprd = (a - b) / mid
                qsum = bs + az
                if qsum > 0.0:
                    micro_ok = True
                    micro = (az * b + bs * a) / qsum
                    mvar = (a - b) * (a - b) / (12.0 * qsum)
                else:
                    micro_ok = False
                active = True
                qi += 1
            else:
                px = t_px[ti]
                sz = t_sz[ti]
                dv = sz * px
                f = t_sign[ti] * dv
                n += 1
                vol += sz
                dvol += dv
                flow += f
                if t_iso[ti]:
                    n_iso += 1
                    vol_iso += sz
                    flow_iso += f
                else:
                    flow_non += f
                active = True
                ti += 1
    return oi[:r], of[:r]


def _col(table, name, required=True):
    """A column of a pyarrow Table, a pandas DataFrame or a mapping of arrays."""
    if table is None:
        return None
    if _is_arrow(table):
        if name not in table.column_names:
            if required:
                raise KeyError(f"column {name!r} missing")
            return None
        return table.column(name)
    if hasattr(table, "columns") and hasattr(table, "__getitem__") and not isinstance(table, Mapping):
        if name not in table.columns:
            if required:
                raise KeyError(f"column {name!r} missing")
            return None
        return table[name].to_numpy()
    if name not in table:
        if required:
            raise KeyError(f"column {name!r} missing")
        return None
    return table[name]


def _sorted_by_group(codes: np.ndarray, times: np.ndarray, n_groups: int, what: str):
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1)).astype(np.int64)
    ts = times[order]
    if ts.size > 1:
        d = np.diff(ts)
        same = np.diff(codes[order]) == 0
        if np.any((d < 0) & same):
            raise ValueError(f"{what} times must be non-decreasing within each symbol")
    return order, bounds


def minute_bars(quotes, trades, signs=None, interval_ns: int = NS_PER_MINUTE) -> dict[str, np.ndarray]:
    """Batch 1-minute bars over whole arrays: the counterpart of :class:`MinuteBars`.

    ``quotes``: columns ``time`` (epoch ns or timestamp), ``symbol``, ``bid_price``,
    ``ask_price``, ``bid_size``, ``ask_size``. ``trades``: ``time``, ``symbol``, ``price``,
    ``size``, ``is_iso``, and optionally ``condition_mask`` and ``correction`` (then
    :func:`bar_counted` decides which trades count; without them every trade counts).
    ``signs``: one int per trade (0 where unsigned); None = all 0. Either table may be None.
    Tables are pyarrow Tables, pandas DataFrames or mappings of arrays; rows in time order
    within each symbol.

    Returns a dict of numpy arrays keyed by :data:`BAR_COLUMNS` (``ticker`` object array of
    str, ``bucket`` int64 epoch ns UTC, counts int64, the rest float64), rows sorted by
    (bucket, ticker): the rows ``MinuteBars`` would emit on the same ticks, bit for bit.
    """
    empty_i = np.zeros(0, np.int64)
    empty_f = np.zeros(0, np.float64)
    if quotes is not None:
        q_t = _times(_col(quotes, "time"), "quote time")
        q_sym = _col(quotes, "symbol")
    else:
        q_t, q_sym = empty_i, np.zeros(0, dtype=object)
    if trades is not None:
        t_t = _times(_col(trades, "time"), "trade time")
        t_sym = _col(trades, "symbol")
    else:
        t_t, t_sym = empty_i, np.zeros(0, dtype=object)
    vocab, (q_code, t_code) = _factorize(*_same_kind(q_sym, t_sym))
    n_groups = len(vocab)

    if trades is not None:
        t_px = _f64(_to_numpy(_col(trades, "price")), name="price")
        t_sz = _f64(_to_numpy(_col(trades, "size")), t_px.shape[0], "size")
        t_iso = np.asarray(_to_numpy(_col(trades, "is_iso")), dtype=np.bool_)
        masks = _col(trades, "condition_mask", required=False)
        corr = _col(trades, "correction", required=False)
        counted = np.ones(t_px.shape[0], np.bool_)
        if masks is not None:
            counted &= bar_counted(_to_numpy(masks))
        if corr is not None:
            counted &= _to_numpy(corr) == 0
        sign = np.zeros(t_px.shape[0], np.float64) if signs is None else _f64(signs, t_px.shape[0], "signs")
        keep = np.flatnonzero(counted)
        t_t, t_code, t_px, t_sz, t_iso, sign = (x[keep] for x in (t_t, t_code, t_px, t_sz, t_iso, sign))
    else:
        t_px = t_sz = sign = empty_f
        t_iso = np.zeros(0, np.bool_)
    if quotes is not None:
        q_bid = _f64(_to_numpy(_col(quotes, "bid_price")), name="bid_price")
        q_ask = _f64(_to_numpy(_col(quotes, "ask_price")), q_bid.shape[0], "ask_price")
        q_bsz = _f64(_to_numpy(_col(quotes, "bid_size")), q_bid.shape[0], "bid_size")
        q_asz = _f64(_to_numpy(_col(quotes, "ask_size")), q_bid.shape[0], "ask_size")
    else:
        q_bid = q_ask = q_bsz = q_asz = empty_f

    qo, q_bounds = _sorted_by_group(q_code, q_t, n_groups, "quote")
    to, t_bounds = _sorted_by_group(t_code, t_t, n_groups, "trade")
    oi, of = _bars_nb(
        np.int64(interval_ns),
        q_t[qo], q_code[qo], q_bid[qo], q_ask[qo], q_bsz[qo], q_asz[qo],
        t_t[to], t_code[to], t_px[to], t_sz[to], sign[to], t_iso[to],
        q_bounds, t_bounds, n_groups,
    )
    order = np.lexsort((oi[:, 0], oi[:, 1]))  # by bucket, then ticker code (= ticker order)
    oi, of = oi[order], of[order]
    vocab_arr = np.array(vocab, dtype=object) if vocab else np.zeros(0, dtype=object)
    out = {
        "ticker": vocab_arr[oi[:, 0]] if len(oi) else np.zeros(0, dtype=object),
        "bucket": oi[:, 1].copy(),
        "quote_updates": oi[:, 2].copy(),
        "num_trades": oi[:, 3].copy(),
        "num_trades_iso": oi[:, 4].copy(),
    }
    for k, c in enumerate(_F_COLS):
        out[c] = of[:, k].copy()
    return {c: out[c] for c in BAR_COLUMNS}


# --------------------------------------------------------------------------------------------
# 1 s NBBO
# --------------------------------------------------------------------------------------------


class _SecState:
    __slots__ = ("end", "bid", "ask")

    def __init__(self):
        self.end = 0
        self.bid = _NAN
        self.ask = _NAN


class OneSecondNbbo:
    """Streaming 1 s NBBO sampler with the vendor files' right-endpoint convention.

    ``on_quote(symbol, time_ns, bid, ask)`` for each quote (time order per symbol);
    ``close(until_ns)`` returns ``(T, symbol, bid, ask)`` tuples for every whole second
    ``T <= until_ns`` in which the symbol had a quote: the last quote with time in
    ``[T - 1 s, T)``, sorted by (T, symbol). Call it on a 1 s timer at each whole second
    (an event at exactly T belongs to the next second, and closes second T itself if it is
    handled first); ``flush()`` at the end of the data.
    """

    __slots__ = ("_states", "_ready", "interval", "_closed")

    def __init__(self, interval_ns: int = NS_PER_SECOND):
        if interval_ns <= 0:
            raise ValueError("interval_ns must be positive")
        self.interval = int(interval_ns)
        self._states: dict[str, _SecState] = {}
        self._ready: list[tuple] = []
        self._closed = -(1 << 62)

    def on_quote(self, symbol: str, time_ns: int, bid: float, ask: float) -> None:
        s = self._states.get(symbol)
        if s is None:
            s = self._states[symbol] = _SecState()
        if time_ns < self._closed:
            raise ValueError(f"{symbol}: quote at {time_ns} ns is in a second already closed")
        if time_ns >= s.end:
            if s.end:
                self._ready.append((s.end, symbol, s.bid, s.ask))
            s.end = (time_ns // self.interval + 1) * self.interval
        elif time_ns < s.end - self.interval:
            raise ValueError(f"{symbol}: quote at {time_ns} ns is before its open second")
        s.bid = bid
        s.ask = ask

    def close(self, until_ns: int) -> list[tuple]:
        """Rows ``(T, symbol, bid, ask)`` with ``T <= until_ns``, sorted by (T, symbol)."""
        self._closed = max(self._closed, until_ns)
        for symbol, s in self._states.items():
            if s.end and s.end <= until_ns:
                self._ready.append((s.end, symbol, s.bid, s.ask))
                s.end = 0
        if not self._ready:
            return []
        done = [r for r in self._ready if r[0] <= until_ns]
        if len(done) == len(self._ready):
            self._ready = []
        else:
            self._ready = [r for r in self._ready if r[0] > until_ns]
        done.sort(key=_sec_key)
        return done

    def flush(self) -> list[tuple]:
        return self.close(1 << 62)


def _sec_key(row):
    return row[0], row[1]


def nbbo_1s(times, symbols, bid, ask, interval_ns: int = NS_PER_SECOND) -> dict[str, np.ndarray]:
    """Batch 1 s NBBO: for each symbol and whole second T with a quote in ``[T - 1 s, T)``,
    the last such quote (the later row wins a timestamp tie). Returns a dict keyed by
    :data:`NBBO_1S_COLUMNS` (``time`` int64 epoch ns = T, ``symbol`` object array), rows
    sorted by (time, symbol): what :class:`OneSecondNbbo` emits on the same quotes.
    """
    t = _times(times, "times")
    b = _f64(_to_numpy(bid), t.shape[0], "bid")
    a = _f64(_to_numpy(ask), t.shape[0], "ask")
    vocab, (code,) = _factorize(symbols)
    if code.shape[0] != t.shape[0]:
        raise ValueError("symbols must align with times")
    sec = (t // interval_ns + 1) * interval_ns
    idx = np.arange(t.shape[0])
    # within (symbol, second) keep the last by time, then by row position
    order = np.lexsort((idx, t, sec, code))
    c_s, s_s = code[order], sec[order]
    last = np.ones(order.shape[0], np.bool_)
    if order.shape[0] > 1:
        last[:-1] = (c_s[1:] != c_s[:-1]) | (s_s[1:] != s_s[:-1])
    pick = order[last]
    final = np.lexsort((code[pick], sec[pick]))
    pick = pick[final]
    vocab_arr = np.array(vocab, dtype=object) if vocab else np.zeros(0, dtype=object)
    return {
        "time": sec[pick],
        "symbol": vocab_arr[code[pick]] if pick.size else np.zeros(0, dtype=object),
        "bid_price": b[pick],
        "ask_price": a[pick],
    }
