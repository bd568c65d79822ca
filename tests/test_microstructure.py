"""Trade signing, 1-minute bars and the 1 s NBBO (elecflow.microstructure).

Hand-made cases for every rule branch; streaming == batch, exactly, on a generated window;
bars against an independent pandas computation; the 1 s NBBO against the vendor file; and
signing accuracy against the generator's true initiator side (docs/microstructure.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elecflow import microstructure as ms
from elecflow.conditions import mask_from_ids

NAN = math.nan
M = ms.NS_PER_MINUTE
S = ms.NS_PER_SECOND
T0 = 28_846_667 * M  # a whole UTC minute on 2024-11-05


# ---------------------------------------------------------------------------------------------
# rule branches
# ---------------------------------------------------------------------------------------------


def test_lee_ready_quote_rule_and_midpoint_tick_test():
    bid = np.array([10.00, 10.00, 10.00, 10.00, 10.00, NAN, 10.00])
    ask = np.array([10.02, 10.02, 10.02, 10.02, 10.02, NAN, 10.00])
    price = np.array([10.02, 10.00, 10.01, 10.01, 10.01, 10.05, 10.00])
    prev = np.array([NAN, NAN, 10.00, 10.02, NAN, 10.06, 9.99])
    got = ms.lee_ready(price, bid, ask, prev)
    # at ask, at bid, mid uptick, mid downtick, mid undecidable, no quote -> tick, locked -> tick
    assert got.tolist() == [1, -1, 1, -1, 0, -1, 1]
    assert got.dtype == np.int8
    # inside the spread, off the midpoint: quote rule, whatever the tick
    assert ms.lee_ready([10.015, 10.005], [10.0, 10.0], [10.02, 10.02], [10.02, 9.0]).tolist() == [1, -1]
    # outside the quotes: still the quote rule
    assert ms.lee_ready([10.03, 9.99], [10.0, 10.0], [10.02, 10.02], [NAN, NAN]).tolist() == [1, -1]
    # ineligible -> 0
    assert ms.lee_ready([10.02], [10.0], [10.02], [NAN], eligible=[False]).tolist() == [0]


def test_midpoint_is_found_despite_binary_floating_point():
    # (0.1 + 0.2) / 2 != 0.15 in doubles; the print at 0.15 is still at the midpoint
    assert 0.5 * (0.1 + 0.2) != 0.15
    assert ms.lee_ready([0.15, 0.15], [0.1, 0.1], [0.2, 0.2], [0.14, 0.16]).tolist() == [1, -1]
    assert ms.emo([0.3, 0.1], [0.1, 0.1], [0.1 + 0.2, 0.1 + 0.2], [NAN, NAN]).tolist() == [1, -1]


def test_tick_rule():
    assert ms.tick_rule([10.0, 10.0, 10.0, 10.0], [9.9, 10.1, NAN, 10.0]).tolist() == [1, -1, 0, 0]


def test_emo_uses_quotes_only_at_the_quotes():
    bid = np.full(5, 10.00)
    ask = np.full(5, 10.04)
    price = np.array([10.04, 10.00, 10.03, 10.03, 10.05])
    prev = np.array([10.05, 9.90, 10.04, 10.02, 10.04])
    assert ms.emo(price, bid, ask, prev).tolist() == [1, -1, -1, 1, 1]
    # Lee-Ready differs on the inside print with a down tick
    assert ms.lee_ready(price, bid, ask, prev).tolist() == [1, -1, 1, 1, 1]
    # locked market: neither at-ask nor at-bid rule applies
    assert ms.emo([10.0], [10.0], [10.0], [10.01]).tolist() == [-1]


def test_last_different_price_zero_tick_lookback_groups_and_ineligible():
    p = [10.0, 10.0, 10.1, 10.1, 10.1, 10.0, 10.0, 10.2]
    expect = [NAN, NAN, 10.0, 10.0, 10.0, 10.1, 10.1, 10.0]
    np.testing.assert_array_equal(ms.last_different_price(p), expect)
    # two interleaved symbols keep separate look-backs
    g = ["A", "B", "A", "B", "A", "B"]
    p2 = [10.0, 50.0, 10.0, 50.5, 10.2, 50.5]
    np.testing.assert_array_equal(ms.last_different_price(p2, g), [NAN, NAN, NAN, 50.0, 10.0, 50.0])
    # an ineligible print (e.g. average-price trade) is not a last price
    p3 = [10.0, 12.0, 10.0, 10.1]
    elig = [True, False, True, True]
    np.testing.assert_array_equal(ms.last_different_price(p3, eligible=elig), [NAN, 10.0, NAN, 10.0])


def test_prevailing_quote_is_strictly_before_trade_minus_delay():
    qt = np.array([100, 200, 300])
    bid = np.array([1.0, 2.0, 3.0])
    ask = bid + 0.01
    tt = np.array([50, 100, 101, 200, 250, 300, 301])
    idx = ms.prevailing_quote_index(tt, qt)
    assert idx.tolist() == [-1, -1, 0, 0, 1, 1, 2]  # a quote at the trade's own time is not in force
    b, a = ms.prevailing_quotes(tt, qt, bid, ask)
    np.testing.assert_array_equal(b, [NAN, NAN, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(a, b + 0.01)
    # with a delay of 60 ns: the last quote strictly before t - 60
    assert ms.prevailing_quote_index(tt, qt, delay_ns=60).tolist() == [-1, -1, -1, 0, 0, 1, 1]
    assert ms.prevailing_quote_index([161], qt, delay_ns=60).tolist() == [0]
    assert ms.prevailing_quote_index([160], qt, delay_ns=60).tolist() == [-1]
    # per symbol
    qg = ["A", "B", "A"]
    tg = ["B", "A", "A", "C"]
    assert ms.prevailing_quote_index([250, 250, 350, 999], qt, trade_group=tg, quote_group=qg).tolist() == [1, 0, 2, -1]
    with pytest.raises(ValueError):
        ms.prevailing_quote_index([1], [2, 1])
    with pytest.raises(ValueError):
        ms.prevailing_quote_index([1], [1, 2], delay_ns=-1)


def test_eligibility_from_conditions_and_correction():
    regular = 0
    form_t_odd = mask_from_ids([12, 37])
    iso = mask_from_ids([14, 41])
    avg_price = mask_from_ids([2])
    official_close = mask_from_ids([15])
    masks = np.array([regular, form_t_odd, iso, avg_price, official_close, regular])
    corr = np.array([0, 0, 0, 0, 0, 1])
    assert ms.signing_eligible(masks, corr).tolist() == [True, True, True, False, False, False]
    scalar = [ms.is_signing_eligible(int(m), int(c)) for m, c in zip(masks, corr)]
    assert scalar == [True, True, True, False, False, False]
    # average-price prints are real volume (unsigned); official-close markers and cancels are not
    assert ms.bar_counted(masks, corr).tolist() == [True, True, True, True, False, False]
    assert [ms.counts_in_bars(int(m), int(c)) for m, c in zip(masks, corr)] == [True, True, True, True, False, False]
    assert not ms.is_signing_eligible(1 << 61)  # id 61 is not in the table


def test_sign_trades_skips_ineligible_prints_in_the_lookback():
    # all prints at the midpoint: pure tick test; the ineligible 12.0 must not become the last price
    qt = np.array([0])
    bid, ask = np.array([9.0]), np.array([11.0])
    tt = np.array([10, 20, 30, 40])
    price = np.array([10.0, 12.0, 10.0, 10.5])
    elig = np.array([True, False, True, True])
    got = ms.sign_trades(tt, price, qt, bid, ask, eligible=elig)
    # 10.0 first: undecidable; 12.0: ineligible; 10.0 again: zero tick, no earlier different price
    assert got.tolist() == [0, 0, 0, 1]
    assert ms.sign_trades(tt, price, method="tick", eligible=elig).tolist() == [0, 0, 0, 1]
    with pytest.raises(ValueError):
        ms.sign_trades(tt, price, method="nope")


def test_streaming_signer_quote_delay_and_ties():
    for delay, expect in ((0, -1), (3, 1), (6, 0)):
        s = ms.TradeSigner("lee_ready", quote_delay_ns=delay)
        s.on_quote("X", 100, 10.00, 10.02)  # mid 10.01
        s.on_quote("X", 105, 10.02, 10.04)  # mid 10.03
        s.on_quote("X", 106, 9.00, 9.02)  # same time as the trade: not in force
        # trade at 106 at 10.02: below mid 10.03 (delay 0), above 10.01 (delay 3), no quote (delay 6)
        assert s.on_trade("X", 106, 10.02, True) == expect, delay
    s = ms.TradeSigner("emo")
    s.on_quote("X", 1, 10.0, 10.04)
    assert s.on_trade("X", 2, 10.04) == 1
    assert s.on_trade("X", 3, 10.02) == -1  # inside, down tick from 10.04
    assert s.on_trade("X", 4, 10.02) == -1  # zero tick: looks back to 10.04
    assert s.on_trade("X", 5, 10.50, False) == 0  # ineligible, no look-back update
    assert s.on_trade("X", 6, 10.03) == 1  # up from 10.02, not down from 10.50
    assert s.prevailing("X", 7) == (10.0, 10.04)
    with pytest.raises(ValueError):
        s.on_trade("X", 5, 10.0)
    with pytest.raises(ValueError):
        ms.TradeSigner("lr")


# ---------------------------------------------------------------------------------------------
# bars and the 1 s sampler by hand
# ---------------------------------------------------------------------------------------------


def test_minute_bars_by_hand():
    bars = ms.MinuteBars()
    bars.on_quote("X", T0 + 10 * S, 100.00, 100.02, 300, 100)
    bars.on_trade("X", T0 + 20 * S, 100.02, 100, 1, True)
    bars.on_quote("X", T0 + 40 * S, 100.02, 100.04, 100, 100)
    bars.on_trade("X", T0 + 45 * S, 100.02, 50, -1, False)
    bars.on_trade("X", T0 + 46 * S, 100.02, 999, 1, False, counted=False)  # a cancelled print
    bars.on_quote("X", T0 + 50 * S, 100.02, 100.04, 200, 200)  # size change only: not an update
    assert bars.close(T0 + 59 * S) == []  # bucket still open
    (row,) = bars.close(T0 + M)
    assert list(row) == list(ms.BAR_COLUMNS)
    assert row["ticker"] == "X" and row["bucket"] == T0 + M
    mid_avg = (100.01 * 30 + 100.03 * 20) / 50
    assert row["log_mid"] == pytest.approx(math.log(mid_avg), rel=1e-13)
    assert row["quote_updates"] == 2
    assert row["avg_rsprd"] == pytest.approx((0.02 / 100.01 * 30 + 0.02 / 100.03 * 20) / 50, rel=1e-9)
    micro1 = (100 * 100.00 + 300 * 100.02) / 400
    assert row["microprice"] == pytest.approx((micro1 * 30 + 100.03 * 20) / 50, rel=1e-13)
    var = (0.02**2 / (12 * 400) * 30 + 0.02**2 / (12 * 200) * 10 + 0.02**2 / (12 * 400) * 10) / 50
    assert row["microprice_var"] == pytest.approx(var, rel=1e-9)
    assert (row["num_trades"], row["num_trades_iso"], row["total_volume"]) == (2, 1, 150.0)
    assert row["pct_trades_iso"] == 0.5
    assert row["pct_volume_iso"] == pytest.approx(2 / 3)
    assert row["total_flow_iso"] == pytest.approx(10002.0)
    assert row["total_flow_non_iso"] == pytest.approx(-5001.0)
    assert row["total_flow"] == pytest.approx(5001.0)
    assert row["iso_flow_intensity"] == pytest.approx(10002.0 / 15003.0)
    # minute 2 is silent (no row); minute 3 has only a trade: quote values carried over
    bars.on_trade("X", T0 + 130 * S, 100.04, 10, 1, False)
    bars.on_quote("X", T0 + 180 * S, 100.04, 100.06, 100, 100)  # exactly on the boundary: next bucket
    rows = bars.close(T0 + 3 * M)
    assert [r["bucket"] for r in rows] == [T0 + 3 * M]
    r = rows[0]
    assert r["log_mid"] == math.log(100.03) and r["quote_updates"] == 0 and r["microprice"] == 100.03
    assert r["num_trades"] == 1 and r["num_trades_iso"] == 0 and r["pct_trades_iso"] == 0.0
    (last,) = bars.flush()
    assert last["bucket"] == T0 + 4 * M and last["quote_updates"] == 1 and last["num_trades"] == 0
    assert math.isnan(last["pct_trades_iso"]) and math.isnan(last["iso_flow_intensity"])
    assert last["total_flow"] == 0.0 and last["log_mid"] == pytest.approx(math.log(100.05), rel=1e-13)
    # trades before any quote: NaN quote features
    b2 = ms.MinuteBars()
    b2.on_trade("Y", T0 + 1, 5.0, 100, 0, False)
    (r2,) = b2.flush()
    assert math.isnan(r2["log_mid"]) and math.isnan(r2["microprice"]) and r2["quote_updates"] == 0
    assert r2["num_trades"] == 1 and r2["total_flow"] == 0.0 and r2["iso_flow_intensity"] == 0.0
    with pytest.raises(ValueError):
        b2.on_quote("Y", T0, 5.0, 5.01, 1, 1)
    b3 = ms.MinuteBars()
    b3.close(T0 + M)
    with pytest.raises(ValueError):  # its bar was already returned
        b3.on_trade("Z", T0 + M - 1, 5.0, 100, 1, False)


def test_minute_bars_batch_by_hand_and_event_order_at_the_boundary():
    quotes = {"time": np.array([T0 + 10 * S, T0 + 40 * S, T0 + 50 * S, T0 + 180 * S]),
              "symbol": np.array(["X"] * 4, dtype=object),
              "bid_price": np.array([100.00, 100.02, 100.02, 100.04]),
              "ask_price": np.array([100.02, 100.04, 100.04, 100.06]),
              "bid_size": np.array([300.0, 100, 200, 100]), "ask_size": np.array([100.0, 100, 200, 100])}
    trades = {"time": np.array([T0 + 20 * S, T0 + 45 * S, T0 + 46 * S, T0 + 130 * S]),
              "symbol": np.array(["X"] * 4, dtype=object),
              "price": np.array([100.02, 100.02, 100.02, 100.04]), "size": np.array([100.0, 50, 999, 10]),
              "is_iso": np.array([True, False, False, False]),
              "condition_mask": np.array([mask_from_ids([14]), 0, 0, 0]), "correction": np.array([0, 0, 1, 0])}
    signs = np.array([1, -1, 1, 1])
    got = ms.minute_bars(quotes, trades, signs)
    assert got["bucket"].tolist() == [T0 + M, T0 + 3 * M, T0 + 4 * M]
    assert got["num_trades"].tolist() == [2, 1, 0]
    assert got["total_flow"].tolist() == [100.02 * 100 - 100.02 * 50, 100.04 * 10, 0.0]
    # either side may be missing
    only_trades = ms.minute_bars(None, trades, signs)
    assert only_trades["bucket"].tolist() == [T0 + M, T0 + 3 * M] and np.isnan(only_trades["log_mid"]).all()
    only_quotes = ms.minute_bars(pd.DataFrame(quotes), None)
    assert only_quotes["bucket"].tolist() == [T0 + M, T0 + 4 * M]
    assert only_quotes["log_mid"][0] == got["log_mid"][0] and only_quotes["num_trades"].tolist() == [0, 0]
    # the streaming class, with close() called before / after the boundary event, agrees exactly
    for close_first in (True, False):
        bars = ms.MinuteBars()
        rows = []
        events = sorted([(t, 0, i) for i, t in enumerate(quotes["time"])]
                        + [(t, 1, i) for i, t in enumerate(trades["time"])])
        for t, kind, i in events:
            if close_first:
                rows += bars.close(t - t % M)
            if kind == 0:
                values = (float(quotes[c][i]) for c in ("bid_price", "ask_price", "bid_size", "ask_size"))
                bars.on_quote("X", int(t), *values)
            else:
                bars.on_trade("X", int(t), float(trades["price"][i]), float(trades["size"][i]), int(signs[i]),
                              bool(trades["is_iso"][i]),
                              ms.counts_in_bars(int(trades["condition_mask"][i]), int(trades["correction"][i])))
            if not close_first:
                rows += bars.close(t - t % M)
        rows += bars.flush()
        _assert_bars_equal(ms.bars_from_rows(rows), got, rtol=0.0)


def test_one_second_nbbo_by_hand():
    s = ms.OneSecondNbbo()
    s.on_quote("B", T0 + 100, 1.0, 1.1)
    s.on_quote("A", T0 + 200, 2.0, 2.1)
    s.on_quote("B", T0 + S - 1, 1.01, 1.11)  # last quote of second [T0, T0 + 1 s)
    s.on_quote("B", T0 + S, 1.02, 1.12)  # exactly T0 + 1 s: belongs to the next second
    assert s.close(T0 + S) == [(T0 + S, "A", 2.0, 2.1), (T0 + S, "B", 1.01, 1.11)]
    s.on_quote("A", T0 + 3 * S + 5, 2.2, 2.3)
    assert s.flush() == [(T0 + 2 * S, "B", 1.02, 1.12), (T0 + 4 * S, "A", 2.2, 2.3)]
    with pytest.raises(ValueError):  # a second already returned cannot take more quotes
        s.on_quote("C", T0 + 5 * S, 3.0, 3.1)
    got = ms.nbbo_1s([T0 + 100, T0 + 200, T0 + S - 1, T0 + S, T0 + 3 * S + 5], ["B", "A", "B", "B", "A"],
                     [1.0, 2.0, 1.01, 1.02, 2.2], [1.1, 2.1, 1.11, 1.12, 2.3])
    assert got["time"].tolist() == [T0 + S, T0 + S, T0 + 2 * S, T0 + 4 * S]
    assert got["symbol"].tolist() == ["A", "B", "B", "A"]
    assert got["bid_price"].tolist() == [2.0, 1.01, 1.02, 2.2]


# ---------------------------------------------------------------------------------------------
# a generated window: 09:30-10:30 ET, replayed through the project's ingest
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def window(tmp_path_factory):
    from elecflow.adapters.synthetic import write_synthetic_day
    from elecflow.config import ReplayConfig
    from elecflow.graphs.run import resolve_sources, run_replay
    from elecflow.synth.config import SyntheticDayConfig

    root = tmp_path_factory.mktemp("micro")
    write_synthetic_day(SyntheticDayConfig(start_et="09:30", end_et="10:30", option_underlyings=["SPY"]),
                        root / "data", progress=False)
    cfg = ReplayConfig(mode="sim", data=root / "data", out=root / "out", progress=False)
    run_replay(cfg, resolve_sources(cfg, log=lambda *a: None), log=lambda *a: None)
    quotes = pq.read_table(root / "out" / "quotes")
    trades = pq.read_table(root / "out" / "trades")
    return {
        "quotes": quotes,
        "trades": trades,
        "nbbo": pq.read_table(root / "out" / "nbbo_1s"),
        "truth": pq.read_table(root / "data" / "ground_truth" / "trades_truth.parquet").to_pandas(),
        "eligible": ms.signing_eligible(trades["condition_mask"].to_numpy(), trades["correction"].to_numpy()),
    }


def _events(quotes: pa.Table, trades: pa.Table):
    """The two streams merged in time order (quotes first on ties), as python lists."""
    qt = quotes["time"].cast(pa.int64()).to_numpy()
    tt = trades["time"].cast(pa.int64()).to_numpy()
    t = np.concatenate([qt, tt])
    kind = np.concatenate([np.zeros(qt.size, np.int8), np.ones(tt.size, np.int8)])
    idx = np.concatenate([np.arange(qt.size), np.arange(tt.size)])
    order = np.lexsort((kind, t))
    return kind[order].tolist(), idx[order].tolist(), qt.tolist(), tt.tolist()


@pytest.mark.parametrize("method", ms.METHODS)
def test_streaming_signer_equals_batch(window, method):
    q, t, elig = window["quotes"], window["trades"], window["eligible"]
    kinds, idxs, qt, tt = _events(q, t)
    qs, qb, qa = q["symbol"].to_pylist(), q["bid_price"].to_pylist(), q["ask_price"].to_pylist()
    ts, tp, el = t["symbol"].to_pylist(), t["price"].to_pylist(), elig.tolist()
    for delay in (0, 1_000_000, 250_000_000):
        batch = ms.sign_trades(t["time"], t["price"], q["time"], q["bid_price"], q["ask_price"], eligible=elig,
                               trade_group=t["symbol"], quote_group=q["symbol"], method=method, delay_ns=delay)
        signer = ms.TradeSigner(method, quote_delay_ns=delay)
        stream = np.zeros(len(tt), np.int8)
        for k, i in zip(kinds, idxs):
            if k == 0:
                signer.on_quote(qs[i], qt[i], qb[i], qa[i])
            else:
                stream[i] = signer.on_trade(ts[i], tt[i], tp[i], el[i])
        np.testing.assert_array_equal(stream, batch, err_msg=f"{method} delay {delay}")
        assert np.count_nonzero(batch) > 0.99 * len(batch)


def _window_signs(window, method="lee_ready"):
    q, t = window["quotes"], window["trades"]
    return ms.sign_trades(t["time"], t["price"], q["time"], q["bid_price"], q["ask_price"],
                          eligible=window["eligible"], trade_group=t["symbol"], quote_group=q["symbol"], method=method)


FLOW_COLUMNS = ("total_flow_non_iso", "total_flow_iso", "total_flow")


def _assert_bars_equal(got: dict, want: dict, rtol: float, flow_scale: np.ndarray | None = None):
    """Integer columns and tickers exactly; floats exactly (rtol 0) or to rtol. Signed flows
    are sums with cancellation, so their tolerance is rtol x the bar's dollar volume."""
    assert list(got) == list(ms.BAR_COLUMNS)
    for c in ms.BAR_COLUMNS:
        a, b = np.asarray(got[c]), np.asarray(want[c])
        assert a.shape == b.shape, c
        if c == "ticker" or c in ("bucket", "quote_updates", "num_trades", "num_trades_iso"):
            assert a.tolist() == b.tolist(), c
        elif rtol == 0.0:
            np.testing.assert_array_equal(a, b, err_msg=c)
        elif c in FLOW_COLUMNS and flow_scale is not None:
            assert np.all(np.abs(a - b) <= rtol * flow_scale), c
        elif c == "iso_flow_intensity":  # a flow over the dollar volume: the same cancellation, scale 1
            np.testing.assert_allclose(a, b, rtol=0.0, atol=rtol, equal_nan=True, err_msg=c)
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0.0, equal_nan=True, err_msg=c)


def test_streaming_bars_equal_batch_bars(window):
    q, t = window["quotes"], window["trades"]
    signs = _window_signs(window)
    batch = ms.minute_bars(q, t, signs)
    kinds, idxs, qt, tt = _events(q, t)
    qc = {c: q[c].to_pylist() for c in ("symbol", "bid_price", "ask_price", "bid_size", "ask_size")}
    tc = {c: t[c].to_pylist() for c in ("symbol", "price", "size", "is_iso", "condition_mask", "correction")}
    sl = signs.tolist()
    bars = ms.MinuteBars()
    rows = []
    boundary = None
    for k, i in zip(kinds, idxs):
        now = qt[i] if k == 0 else tt[i]
        if boundary is None or now >= boundary:  # the 1-minute timer
            rows += bars.close(now - now % M)
            boundary = now - now % M + M
        if k == 0:
            bars.on_quote(qc["symbol"][i], now, qc["bid_price"][i], qc["ask_price"][i], qc["bid_size"][i],
                          qc["ask_size"][i])
        else:
            bars.on_trade(tc["symbol"][i], now, tc["price"][i], tc["size"][i], sl[i], tc["is_iso"][i],
                          ms.counts_in_bars(tc["condition_mask"][i], tc["correction"][i]))
    rows += bars.flush()
    _assert_bars_equal(ms.bars_from_rows(rows), batch, rtol=0.0)
    assert len(set(batch["ticker"])) == 40 and len(batch["ticker"]) == 40 * 60


def _reference_bars(quotes: pd.DataFrame, trades: pd.DataFrame, signs: np.ndarray) -> pd.DataFrame:
    """The bar definitions written out with pandas, independently of elecflow's kernels."""
    q = quotes.copy()
    q["t"] = q["time"].astype("int64")
    q = q.sort_values(["symbol", "t"], kind="stable").reset_index(drop=True)
    q["bucket"] = (q.t // M + 1) * M
    g = q.groupby("symbol", sort=False)
    q["update"] = (q.bid_price != g.bid_price.shift()) | (q.ask_price != g.ask_price.shift())
    q["mid"] = (q.bid_price + q.ask_price) / 2
    q["rsprd"] = (q.ask_price - q.bid_price) / q.mid
    qsum = q.bid_size + q.ask_size
    q["micro"] = (q.ask_size * q.bid_price + q.bid_size * q.ask_price) / qsum
    q["mvar"] = (q.ask_price - q.bid_price) ** 2 / (12 * qsum)
    q["micro_ok"] = qsum > 0

    tr = trades.copy()
    tr["t"] = tr["time"].astype("int64")
    tr["sign"] = signs
    tr = tr[ms.bar_counted(tr.condition_mask.to_numpy(), tr.correction.to_numpy())]
    tr["bucket"] = (tr.t // M + 1) * M
    tr["dv"] = tr["size"] * tr.price
    tr["flow"] = tr.sign * tr.dv
    tr["iso_size"] = tr["size"].where(tr.is_iso, 0.0)
    tr["flow_iso"] = tr.flow.where(tr.is_iso, 0.0)
    tr["flow_non"] = tr.flow.where(~tr.is_iso, 0.0)
    tb = tr.groupby(["symbol", "bucket"]).agg(
        num_trades=("t", "size"), num_trades_iso=("is_iso", "sum"), total_volume=("size", "sum"),
        vol_iso=("iso_size", "sum"), dvol=("dv", "sum"), total_flow=("flow", "sum"),
        total_flow_iso=("flow_iso", "sum"), total_flow_non_iso=("flow_non", "sum"))

    active = q.set_index(["symbol", "bucket"]).index.unique().union(tb.index).set_names(["symbol", "bucket"])
    last_active = active.to_frame(index=False).groupby("symbol").bucket.max()

    # each quote is in force on [t, next quote of its symbol); the last one up to its last active bucket
    q["t_next"] = q.groupby("symbol").t.shift(-1, fill_value=-1)  # int64 (a NaN would make it float)
    q["t_next"] = q.t_next.where(q.t_next >= 0, q.symbol.map(last_active).astype("int64"))
    assert q.t_next.dtype == np.int64
    first = q.bucket
    last = (q.t_next - 1) // M * M + M
    k = ((last - first) // M + 1).clip(lower=1)
    seg = q.loc[q.index.repeat(k)].copy()
    seg["bucket"] = seg.bucket + M * seg.groupby(level=0).cumcount()
    seg["dt"] = (np.minimum(seg.t_next, seg.bucket) - np.maximum(seg.t, seg.bucket - M)).astype(float)
    seg = seg[seg.dt > 0]
    seg["w_mid"] = seg.mid * seg.dt
    seg["w_rs"] = seg.rsprd * seg.dt
    seg["m_dt"] = seg.dt.where(seg.micro_ok, 0.0)
    seg["w_micro"] = (seg.micro * seg.dt).where(seg.micro_ok, 0.0)
    seg["w_mvar"] = (seg.mvar * seg.dt).where(seg.micro_ok, 0.0)
    qb = seg.groupby(["symbol", "bucket"])[["dt", "w_mid", "w_rs", "m_dt", "w_micro", "w_mvar"]].sum()
    qb["quote_updates"] = q.groupby(["symbol", "bucket"]).update.sum()

    out = pd.DataFrame(index=active).join(qb).join(tb)
    out["quote_updates"] = out.quote_updates.fillna(0).astype("int64")
    for c in ("num_trades", "num_trades_iso"):
        out[c] = out[c].fillna(0).astype("int64")
    for c in ("total_volume", "vol_iso", "dvol", "total_flow", "total_flow_iso", "total_flow_non_iso"):
        out[c] = out[c].fillna(0.0)
    out["log_mid"] = np.log(out.w_mid / out.dt)
    out["avg_rsprd"] = out.w_rs / out.dt
    out["microprice"] = out.w_micro / out.m_dt
    out["microprice_var"] = out.w_mvar / out.m_dt
    out["pct_trades_iso"] = (out.num_trades_iso / out.num_trades).where(out.num_trades > 0)
    out["pct_volume_iso"] = (out.vol_iso / out.total_volume).where(out.total_volume > 0)
    out["iso_flow_intensity"] = (out.total_flow_iso / out.dvol).where(out.dvol > 0)
    out = out.reset_index().rename(columns={"symbol": "ticker"}).sort_values(["bucket", "ticker"])
    return out[list(ms.BAR_COLUMNS) + ["dvol"]].reset_index(drop=True)


def test_bars_equal_an_independent_pandas_computation(window):
    q, t = window["quotes"], window["trades"]
    signs = _window_signs(window)
    got = ms.minute_bars(q, t, signs)
    ref = _reference_bars(q.to_pandas(), t.to_pandas(), signs)
    want = {c: ref[c].to_numpy() for c in ms.BAR_COLUMNS}
    _assert_bars_equal(got, want, rtol=1e-12, flow_scale=ref.dvol.to_numpy())
    # trades-only subset (no quotes) and quotes-only subset
    qs = q.filter(pa.compute.is_in(q["symbol"], pa.array(["SPY", "DJT"])))
    ts = t.filter(pa.compute.is_in(t["symbol"], pa.array(["DJT", "SHW"])))
    keep = pa.compute.is_in(t["symbol"], pa.array(["DJT", "SHW"])).to_numpy(zero_copy_only=False)
    got2 = ms.minute_bars(qs, ts, signs[keep])
    ref2 = _reference_bars(qs.to_pandas(), ts.to_pandas(), signs[keep])
    _assert_bars_equal(got2, {c: ref2[c].to_numpy() for c in ms.BAR_COLUMNS}, rtol=1e-12,
                       flow_scale=ref2.dvol.to_numpy())
    shw = got2["ticker"] == "SHW"
    assert np.isnan(got2["log_mid"][shw]).all() and (got2["num_trades"][shw] > 0).all()
    spy = got2["ticker"] == "SPY"
    assert (got2["num_trades"][spy] == 0).all() and np.isnan(got2["pct_trades_iso"][spy]).all()


def test_one_second_nbbo_equals_the_vendor_file(window):
    q, v = window["quotes"], window["nbbo"]
    got = ms.nbbo_1s(q["time"], q["symbol"], q["bid_price"], q["ask_price"])
    assert got["time"].tolist() == v["time"].cast(pa.int64()).to_pylist()
    assert got["symbol"].tolist() == v["symbol"].to_pylist()
    np.testing.assert_array_equal(got["bid_price"], v["bid_price"].to_numpy())
    np.testing.assert_array_equal(got["ask_price"], v["ask_price"].to_numpy())
    sampler = ms.OneSecondNbbo()
    rows = []
    boundary = None
    for sym, t, b, a in zip(q["symbol"].to_pylist(), q["time"].cast(pa.int64()).to_pylist(),
                            q["bid_price"].to_pylist(), q["ask_price"].to_pylist()):
        if boundary is None or t >= boundary:  # the 1 s timer
            rows += sampler.close(t - t % S)
            boundary = t - t % S + S
        sampler.on_quote(sym, t, b, a)
    rows += sampler.flush()
    assert rows == list(zip(got["time"].tolist(), got["symbol"].tolist(), got["bid_price"].tolist(),
                            got["ask_price"].tolist()))


def signing_accuracy(trades: pa.Table, truth: pd.DataFrame, signs: dict[str, np.ndarray]) -> pd.DataFrame:
    """Share of trades whose sign equals the true initiator side (0 counts as wrong), per ticker
    and overall (``ALL``), one column per method."""
    df = trades.select(["symbol", "trade_id"]).to_pandas()
    for name, s in signs.items():
        df[name] = s
    m = df.merge(truth[["symbol", "trade_id", "true_side"]], on=["symbol", "trade_id"], how="inner",
                 validate="one_to_one")
    assert len(m) == len(df) == len(truth)
    hit = pd.DataFrame({name: m[name] == m.true_side for name in signs}).assign(ticker=m.symbol)
    per = hit.groupby("ticker").mean()
    per.loc["ALL"] = hit[list(signs)].mean()
    return per


def test_lee_ready_accuracy_against_the_true_side(window):
    signs = {name: _window_signs(window, name) for name in ms.METHODS}
    acc = signing_accuracy(window["trades"], window["truth"], signs)
    print("\nsigning accuracy, 09:30-10:30 ET window\n" + acc.round(4).to_string())
    assert acc.loc["ALL", "lee_ready"] >= 0.85
    assert (acc["lee_ready"] >= 0.85).all()
    # the quote rule matters: Lee-Ready beats EMO, which beats the tick rule alone
    assert acc.loc["ALL", "lee_ready"] > acc.loc["ALL", "emo"] > acc.loc["ALL", "tick"]
