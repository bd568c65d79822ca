"""Row-level quality rules and the stateful ordering/duplicate checker."""

import numpy as np
import pytest

from elecflow import quality
from elecflow.quality import REASON_CODE, OrderingChecker, first_failure, reason_names


def test_first_failure_takes_the_first_rule_in_order():
    a = np.array([True, False, True, False])
    b = np.array([True, True, False, False])
    codes = first_failure(("nan_price", a), ("crossed_quote", b), n=4)
    assert list(reason_names(codes)) == ["nan_price", "crossed_quote", "nan_price", "ok"]


def test_equity_quote_rules():
    bid = np.array([1.0, np.nan, -1.0, 2.0, 2.0, 2.0])
    ask = np.array([1.1, 1.0, 1.0, 1.9, 2.0, 2.1])
    bs = np.array([100, 100, 100, 100, 100, -5.0])
    asz = np.full(6, 100.0)
    codes = first_failure(*quality.equity_quote_failures(bid, ask, bs, asz), n=6)
    assert list(reason_names(codes)) == ["ok", "nan_price", "nonpositive_price", "crossed_quote", "ok",
                                         "negative_size"]


def test_option_rules_keep_zero_bids_and_reject_bid_above_ask():
    bid = np.array([0.0, 1.2, 0.5, -0.1])
    ask = np.array([0.05, 1.1, 0.0, 0.2])
    sizes = np.full(4, 10.0)
    codes = first_failure(*quality.option_quote_failures(bid, ask, sizes, sizes, np.full(4, 100.0),
                                                         np.array(["C", "P", "C", "P"], dtype=object)), n=4)
    assert list(reason_names(codes)) == ["ok", "option_bid_above_ask", "option_bid_above_ask", "negative_price"]


def test_kalshi_rules():
    codes = first_failure(*quality.kalshi_trade_failures(np.array([58.0, 0.0, 100.0, 99.0]),
                                                         np.array([1, 1, 1, 0])), n=4)
    assert list(reason_names(codes)) == ["ok", "price_out_of_range", "price_out_of_range", "nonpositive_count"]


def _check(checker, keys, times, values, codes=None):
    keys = np.array(keys, dtype=object)
    times = np.array(times, dtype=np.int64)
    values = np.array(values, dtype=float)
    codes = np.zeros(keys.size, dtype=np.int8) if codes is None else np.array(codes, dtype=np.int8)
    checker.check(keys, times, [keys, times, values], codes)
    return list(reason_names(codes))


def test_out_of_order_and_duplicates_per_key_across_batches():
    c = OrderingChecker()
    # A: 1, 3, 2 (late), 3 duplicate of previous kept row; B independent and interleaved
    got = _check(c, ["A", "B", "A", "A", "B", "A"], [1, 5, 3, 2, 4, 3], [10, 1, 11, 12, 2, 11])
    assert got == ["ok", "ok", "ok", "out_of_order", "out_of_order", "duplicate"]
    # the next batch continues from the kept state: A last kept (3, 11.0), B last kept (5, 1.0)
    got = _check(c, ["A", "B", "A"], [3, 5, 2], [11, 1, 9])
    assert got == ["duplicate", "duplicate", "out_of_order"]


def test_same_timestamp_different_content_is_not_a_duplicate():
    c = OrderingChecker()
    assert _check(c, ["A", "A", "A"], [7, 7, 7], [1, 2, 1]) == ["ok", "ok", "ok"]


def test_rows_already_rejected_do_not_enter_the_state():
    c = OrderingChecker()
    bad = REASON_CODE["nan_price"]
    # the rejected row at t=100 must not make the later t=2 row look out of order
    got = _check(c, ["A", "A", "A"], [1, 100, 2], [1, 2, 3], codes=[0, bad, 0])
    assert got == ["ok", "nan_price", "ok"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_checker_matches_a_row_by_row_reference(seed):
    rng = np.random.default_rng(seed)
    n = 400
    keys = rng.choice(np.array(["A", "B", "C"], dtype=object), n)
    times = np.cumsum(rng.integers(0, 3, n)) - rng.integers(0, 4, n) * (rng.random(n) < 0.1)
    values = rng.integers(0, 2, n).astype(float)
    # reference: plain Python loop over rows
    expected, last = [], {}
    for k, t, v in zip(keys, times, values):
        prev = last.get(k)
        if prev is not None and t < prev[0]:
            expected.append("out_of_order")
        elif prev is not None and (t, v) == (prev[0], prev[1]):
            expected.append("duplicate")
        else:
            expected.append("ok")
            last[k] = (t, v)
    c = OrderingChecker()
    got = []
    for lo in range(0, n, 97):  # batches of odd size
        got += _check(c, keys[lo:lo + 97], times[lo:lo + 97], values[lo:lo + 97])
    assert got == expected
