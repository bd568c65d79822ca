"""The session calendar and the seed universe's design data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from elecflow import calendar as C
from elecflow import universe as U


def test_new_york_utc_conversion_on_election_day():
    # DST ended 2024-11-03: New York is UTC-5 on 11-05 and 11-06
    assert C.ny_to_utc(C.ELECTION_DAY, dt.time(9, 30)) == dt.datetime(2024, 11, 5, 14, 30, tzinfo=dt.timezone.utc)
    assert C.utc_ns(C.ELECTION_DAY, dt.time(9, 30)) == 1_730_817_000_000_000_000
    assert C.utc_ns(dt.datetime(2024, 11, 5, 14, 30)) == 1_730_817_000_000_000_000  # naive = UTC
    assert C.utc_to_ny(dt.datetime(2024, 11, 6, 1, 0)).replace(tzinfo=None) == dt.datetime(2024, 11, 5, 20, 0)
    assert C.ns_to_utc(1_730_817_000_123_456_789, naive=True) == dt.datetime(2024, 11, 5, 14, 30, 0, 123456)
    assert C.ms_of_day_ny(C.utc_ns(C.ELECTION_DAY, dt.time(9, 30)), C.ELECTION_DAY) == 34_200_000
    # before the DST change the offset is -4 h
    assert C.ny_to_utc(dt.date(2024, 10, 31), dt.time(9, 30)).hour == 13


def test_sessions_and_their_boundaries():
    windows = C.sessions()
    assert [w.session for w in windows] == [C.Session.PRE_OPEN, C.Session.REGULAR, C.Session.AFTER_HOURS,
                                            C.Session.RESULTS_NIGHT]
    for a, b in zip(windows, windows[1:]):
        assert a.end_ns == b.start_ns
    assert windows[-1].end == dt.datetime(2024, 11, 6, 11, 0, tzinfo=dt.timezone.utc)
    cases = [((5, 3, 59, 59), C.Session.CLOSED), ((5, 4, 0, 0), C.Session.PRE_OPEN),
             ((5, 9, 30, 0), C.Session.REGULAR), ((5, 15, 59, 59), C.Session.REGULAR),
             ((5, 16, 0, 0), C.Session.AFTER_HOURS), ((5, 20, 0, 0), C.Session.RESULTS_NIGHT),
             ((6, 5, 59, 59), C.Session.RESULTS_NIGHT), ((6, 6, 0, 0), C.Session.CLOSED)]
    ns = []
    for (day, hh, mm, ss), expected in cases:
        t = C.ny_datetime_to_utc(dt.datetime(2024, 11, day, hh, mm, ss))
        assert C.session_of(t) == expected
        assert C.session_of(C.utc_ns(t)) == expected
        ns.append(C.utc_ns(t))
    codes = C.session_of(np.array(ns, dtype=np.int64))
    assert codes.dtype == np.int8
    assert list(codes) == [int(e) for _, e in cases]
    assert list(C.session_of(np.array(ns, dtype="datetime64[ns]"))) == list(codes)


def test_universe_is_the_seed_study():
    assert len(U.STOCKS) == 20 and len(U.ETFS) == 20
    assert U.STOCKS[0] == "NVDA" and U.ETFS[-1] == "KRE"
    assert U.get("BRK.B").option_root == "BRKB" and U.symbol_from_option_root("BRKB") == "BRK.B"
    with pytest.raises(KeyError, match="XYZ"):
        U.get("XYZ")
    order = U.evaluation_order()
    for sym in U.SYMBOLS:
        inst = U.INSTRUMENTS[sym]
        deps = set(inst.constituent_weights) | ({inst.leverage[0]} if inst.leverage else set())
        assert all(order.index(d) < order.index(sym) for d in deps)
        assert set(inst.factor_loadings) <= set(U.FACTOR_NAMES)
        assert inst.tick == 0.01 and inst.ref_price > 0 and inst.half_life > 0


def test_election_loadings_have_the_designed_signs():
    g = U.effective_election_loadings()
    for sym in ("DJT", "TSLA", "XOM", "JPM", "KRE", "XLF", "PLTR", "MSTR", "IWM", "SPY", "TQQQ", "SOXL"):
        assert g[sym] > 0, sym
    for sym in ("TLT", "FXI", "EEM", "CEG", "XLU", "SQQQ"):
        assert g[sym] < 0, sym
    assert max(g, key=g.get) == "DJT"
    assert g["TQQQ"] == pytest.approx(3 * g["QQQ"]) and g["SQQQ"] == pytest.approx(-3 * g["QQQ"])
    assert U.annual_vol("TQQQ") == pytest.approx(3 * U.annual_vol("QQQ"))
