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


def _state(mode="A", p=0.6, **kw):
    from elecflow.schema import ElectionState

    base = dict(time=T0, underlying="SPY", mode=mode, success=True, message="", identified=True,
                identification_reason="ok", label="trump_upper", kalshi_probability=p, trump_probability=p,
                trump_probability_se=0.01, probability_gap=0.0, spot=570.0, forward=571.0, discount=0.9987,
                tau=10 / 365,
                trump_mean=585.0, trump_expected_return=0.026, trump_expected_return_se=0.001, trump_vol=0.14,
                trump_vol_se=0.002, harris_mean=550.0, harris_expected_return=-0.035,
                harris_expected_return_se=0.001, harris_vol=0.17, harris_vol_se=0.002, separation=0.06,
                separation_z=30.0, side_lr=float("nan"), weight_upper=p, weight_upper_se=0.01,
                trump_probability_filtered=float("nan"), trump_probability_filtered_se=float("nan"),
                rmse_price=0.01, rmse_vol_points=0.1, n_points=100, warm_started=True, fit_ms=0.7)
    base.update(kw)
    return ElectionState(**base)


def test_state_density_rows_are_the_weighted_state_lognormals():
    import numpy as np

    from elecflow.graphs.dashboard import state_density_rows

    rows = state_density_rows(_state(p=0.6))
    by = {}
    for r in rows:
        by.setdefault(r["series"], []).append((r["strike"], r["density"]))
    assert set(by) == {"Trump wins x p", "Harris wins x (1-p)", "mixture"}
    mass = {k: np.trapezoid([d for _, d in v], [s for s, _ in v]) for k, v in by.items()}
    assert abs(mass["Trump wins x p"] - 0.6) < 1e-3 and abs(mass["Harris wins x (1-p)"] - 0.4) < 1e-3
    assert abs(mass["mixture"] - 1.0) < 1e-3
    mean_t = np.trapezoid([s * d for s, d in by["Trump wins x p"]], [s for s, _ in by["Trump wins x p"]]) / 0.6
    assert abs(mean_t / 585.0 - 1) < 1e-3
    assert rows[0]["key"] == "SPY|Trump wins x p|0"
    assert state_density_rows(_state(mode="B")) == [] and state_density_rows(_state(success=False)) == []


def test_state_probability_rows_show_kalshi_and_the_labelled_option_probability():
    from elecflow.graphs.dashboard import state_probability_rows

    rows = state_probability_rows([_state("A", 0.6), _state("B", 0.62, trump_probability_se=0.02,
                                                            trump_probability_filtered=0.605),
                                   _state("B", float("nan"), underlying="QQQ", kalshi_probability=0.6)])
    series = {(r["underlying"], r["series"]): r["p"] for r in rows}
    assert series == {("SPY", "Kalshi (filtered)"): 0.6, ("SPY", "options (mode B)"): 0.62,
                      ("SPY", "options -2 se"): 0.62 - 0.04, ("SPY", "options +2 se"): 0.62 + 0.04,
                      ("SPY", "options (filtered)"): 0.605}


def test_hedge_rows_wait_for_states_then_neutralise_the_books_election_delta(tmp_path):
    import math

    from elecflow.graphs.dashboard import hedge_row
    from elecflow.graphs.options import hedge_rows, states_for_hedge
    from elecflow.hedge import option_price, read_positions

    book = tmp_path / "book.csv"
    book.write_text("underlying,expiry,strike,right,quantity,multiplier\n"
                    "SPY,2024-11-15,580,C,50,100\nSPY,,,,-2000,\nQQQ,2024-11-15,490,C,25,\nKALSHI,,,,100,\n")
    positions = read_positions(book)
    spy = states_for_hedge(_state(p=0.6))
    assert spy is not None and states_for_hedge(_state(mode="B")) is None
    assert states_for_hedge(_state(identified=False)) is None
    waiting = hedge_rows(T0, positions, {"SPY": spy})
    assert len(waiting) == 1 and waiting[0].status == "waiting for states of QQQ"
    assert math.isnan(waiting[0].election_delta)
    qqq = states_for_hedge(_state(p=0.6, underlying="QQQ", spot=486.0, forward=487.0, trump_mean=500.0,
                                  harris_mean=468.0))
    rows = {r.underlying: r for r in hedge_rows(T0, positions, {"SPY": spy, "QQQ": qqq})}
    assert set(rows) == {"SPY", "QQQ", "KALSHI", "TOTAL"} and rows["TOTAL"].status == "ok"
    assert rows["KALSHI"].election_delta == 100.0  # a Trump-wins contract gains $1 per unit of p
    # the TOTAL delta is the book's value change per unit of p, by finite differences of the
    # state-mixture prices at fixed state densities (an independent route to the same number)
    def book_value(p):
        import dataclasses
        s, q = dataclasses.replace(spy, probability=p), dataclasses.replace(qqq, probability=p)
        return (50 * 100 * float(option_price(s, 580.0, True)) - 2000 * s.carry_ratio * s.forward
                + 25 * 100 * float(option_price(q, 490.0, True)) + 100 * p)
    h = 1e-4
    fd = (book_value(0.6 + h) - book_value(0.6 - h)) / (2 * h)
    assert abs(rows["TOTAL"].election_delta - fd) < 1e-6 * max(1.0, abs(fd))
    assert rows["TOTAL"].kalshi_contracts == -rows["TOTAL"].election_delta
    assert hedge_row(rows["TOTAL"])["delta_per_point"] == rows["TOTAL"].election_delta / 100
