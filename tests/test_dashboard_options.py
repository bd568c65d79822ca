"""Row conversion of the option-chain dashboard tables (fixed keys, no stale points)."""

from __future__ import annotations

import datetime as dt

from elecflow.graphs.dashboard import density_chart_rows, smile_chart_rows
from elecflow.schema import RndCurvePoint, SmilePoint

T0 = dt.datetime(2024, 11, 5, 15, 0)


def _p(kind, k, iv, sd=0.01, und="SPY"):
    return SmilePoint(time=T0, underlying=und, kind=kind, k=k, strike=100.0, iv=iv, iv_sd=sd)


def test_smile_rows_have_fixed_keys_and_blank_leftovers():
    counts = {}
    first = smile_chart_rows([_p("quote", -0.1, 0.25), _p("quote", 0.1, 0.22), _p("fit", 0.0, 0.23)], counts)
    keys = {r["key"]: r for r in first}
    assert set(keys) == {"SPY|quotes|0", "SPY|quotes|1", "SPY|GP mean|0", "SPY|GP -2 sd|0", "SPY|GP +2 sd|0"}
    assert keys["SPY|GP +2 sd|0"]["iv"] == 0.23 + 0.02
    second = smile_chart_rows([_p("quote", 0.0, 0.24), _p("fit", 0.0, 0.23)], counts)
    blanked = [r for r in second if r["key"] == "SPY|quotes|1"]
    assert blanked == [{"key": "SPY|quotes|1", "underlying": "SPY", "series": "quotes", "k": None, "iv": None}]


def test_density_rows_are_keyed_by_grid_position_per_underlying():
    pts = [RndCurvePoint(time=T0, underlying=u, strike=s, density=0.1, cdf=0.5) for u in ("SPY", "QQQ")
           for s in (1.0, 2.0)]
    assert [r["key"] for r in density_chart_rows(pts)] == ["SPY|0", "SPY|1", "QQQ|0", "QQQ|1"]
