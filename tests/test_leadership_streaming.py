"""The streaming side of the leadership analysis (library layer, no csp): regimes, groups and
their derived series, the per-group rolling monitor, the small-group shares kernel, tick
windows and summed Hayashi-Yoshida curves, the sweep regression and its standard errors.

References: the estimation core (``fit_vecm``, ``select_coint_rank``,
``price_discovery_shares``, ``lead_lag``), statsmodels (OLS with cluster-robust, HC1 and HAC
covariances), brute force and the universe's design.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import statsmodels.api as sm
from pydantic import ValidationError

from elecflow import universe as U
from elecflow.calendar import ELECTION_DAY, utc_ns
from elecflow.leadership import (RollingVECM, VECMFit, fit_vecm, hayashi_yoshida, lead_lag, price_discovery_shares,
                                 select_coint_rank)
from elecflow.leadership import _kernels
from elecflow.leadership._small_shares import small_shares
from elecflow.leadership.groups import (ELECTION, KALSHI, NAV_PREFIX, GroupSpec, LeadershipConfig, SeriesBook,
                                        default_groups, election_portfolio_weights, nav_etfs, nav_weights,
                                        panel_group)
from elecflow.leadership.monitor import SHARE_FIELDS, GroupMonitor, trace_rank
from elecflow.leadership.regimes import Regime, RegimeCalendar, regime_name
from elecflow.leadership.rolling import _OUT_BLOCK_ROWS
from elecflow.leadership.sweep import FamaMacBeth, IsoShareWindow, cross_section_slope, newey_west_mean
from elecflow.leadership.ticks import CurveSum, DerivedTicks, TickWindow, summarise_curve, window_curve
from elecflow.leadership.vecm import batch_moments

NS = 1_000_000_000


def ny(hh: int, mm: int = 0, day: int = 0) -> int:
    return utc_ns(ELECTION_DAY + dt.timedelta(days=day), dt.time(hh, mm))


# --------------------------------------------------------------------------- regimes


def test_regime_boundaries_in_new_york_time():
    cal = RegimeCalendar()
    expected = [(ny(3, 59), Regime.CLOSED), (ny(4), Regime.PRE_OPEN), (ny(9, 29), Regime.PRE_OPEN),
                (ny(9, 30), Regime.REGULAR), (ny(15, 29), Regime.REGULAR), (ny(15, 30), Regime.CLOSE),
                (ny(15, 59), Regime.CLOSE), (ny(16), Regime.AFTER_HOURS), (ny(19, 59), Regime.AFTER_HOURS),
                (ny(20), Regime.RESULTS_NIGHT), (ny(5, 59, day=1), Regime.RESULTS_NIGHT), (ny(6, day=1), Regime.CLOSED)]
    for t, regime in expected:
        assert cal.regime_of(t) is regime, regime_name(regime)
    times = np.array([t for t, _ in expected])
    np.testing.assert_array_equal(cal.regimes(times), [int(r) for _, r in expected])
    # New York is UTC-5 on Election Day: the close starts at 20:30 UTC
    assert cal.regime_of(int(dt.datetime(2024, 11, 5, 20, 30, tzinfo=dt.timezone.utc).timestamp()) * NS) \
        is Regime.CLOSE


def test_grid_rows_belong_to_the_second_before_their_stamp():
    cal = RegimeCalendar()
    assert cal.interval_regime(ny(9, 30)) is Regime.PRE_OPEN  # the row 09:30:00 is [09:29:59, 09:30)
    assert cal.interval_regime(ny(9, 30) + NS) is Regime.REGULAR
    assert cal.fraction(ny(15, 30), ny(16)) == 1.0  # a 1,800 s window fits the close exactly
    assert cal.fraction(ny(15, 20), ny(15, 40)) == 0.5
    assert cal.fraction(ny(9, 0), ny(9, 30)) == 1.0
    with pytest.raises(ValueError, match="empty window"):
        cal.fraction(ny(10), ny(10))


def test_close_start_is_configurable_and_checked():
    cal = RegimeCalendar(close_start=dt.time(15, 50))
    assert cal.regime_of(ny(15, 45)) is Regime.REGULAR and cal.regime_of(ny(15, 50)) is Regime.CLOSE
    with pytest.raises(ValueError, match="inside the regular session"):
        RegimeCalendar(close_start=dt.time(16, 30))


# --------------------------------------------------------------------------- groups


def test_default_groups_are_the_issues():
    groups = {g.name: g.members for g in default_groups()}
    assert groups["sp500_trackers"] == ("SPY", "IVV", "VOO")
    assert groups["alphabet"] == ("GOOGL", "GOOG")
    assert groups["election"] == (KALSHI, ELECTION)
    assert set(nav_etfs()) == {"SPY", "QQQ", "IVV", "VUG", "VOO", "XLF", "XLE", "DIA", "SMH", "XLU"}
    for etf in nav_etfs():
        assert groups[f"{etf}_nav"] == (etf, NAV_PREFIX + etf)
    assert all(g.note for g in default_groups())
    panel = panel_group()
    assert len(panel.members) == 41 and panel.members[-1] == KALSHI


def test_nav_weights_are_the_universe_constituents_rescaled():
    for etf in nav_etfs():
        raw = U.INSTRUMENTS[etf].constituent_weights
        w = nav_weights(etf)
        assert math.isclose(sum(w.values()), 1.0) and set(w) == set(raw)
        total = sum(raw.values())
        assert all(math.isclose(w[s], raw[s] / total) for s in raw)
    with pytest.raises(ValueError, match="no constituents"):
        nav_weights("TLT")


def test_election_portfolio_has_unit_loading_and_minimum_noise():
    w = election_portfolio_weights()
    g = U.effective_election_loadings()
    assert math.isclose(sum(w[s] * g[s] for s in w), 1.0, rel_tol=1e-10)
    assert not any(U.INSTRUMENTS[s].leverage for s in w)
    # first-order condition of min w'Sigma w s.t. w'g = 1: Sigma w = lambda g
    exposures, vols = U.shock_exposures(), {f.name: f.vol for f in U.FACTORS}
    vols.update({f"idio:{s}": U.INSTRUMENTS[s].idio_vol for s in U.STOCKS})
    symbols = list(w)
    shocks = sorted({k for s in symbols for k in exposures[s]})
    e = np.array([[exposures[s].get(k, 0.0) for k in shocks] for s in symbols])
    sigma = (e * np.array([vols[k] ** 2 for k in shocks])) @ e.T
    wv, gv = np.array([w[s] for s in symbols]), np.array([g[s] for s in symbols])
    lam = (sigma @ wv) @ gv / (gv @ gv)
    np.testing.assert_allclose(sigma @ wv, lam * gv, atol=1e-10)
    # and no cheaper unit-loading portfolio among random perturbations that keep w'g = 1
    rng = np.random.default_rng(1)
    base = wv @ sigma @ wv
    for _ in range(50):
        d = rng.standard_normal(wv.size)
        d -= (d @ gv) / (gv @ gv) * gv
        assert (wv + 0.1 * d) @ sigma @ (wv + 0.1 * d) >= base - 1e-15


def test_series_book_resolves_members_to_base_weights():
    book = SeriesBook.build(["SPY", "NAV:XLE", KALSHI, ELECTION], election_weights={"DJT": 2.0, "TSLA": -1.0})
    assert book.constituents["NAV:XLE"] == ("XOM",) and book.is_derived("NAV:XLE") and not book.is_derived("SPY")
    values = np.array([{"DJT": 3.0, "KALSHI": 0.2, "SPY": 6.0, "TSLA": 5.0, "XOM": 4.7}[b] for b in book.bases])
    np.testing.assert_allclose(book.matrix(["SPY", "NAV:XLE", KALSHI, ELECTION]) @ values, [6.0, 4.7, 0.2, 1.0])


@pytest.mark.parametrize("kwargs, message", [
    ({"groups": [{"name": "a", "members": ["SPY"]}]}, "at least two members"),
    ({"groups": [{"name": "a", "members": ["SPY", "SPY"]}]}, "distinct"),
    ({"groups": [{"name": "a", "members": ["SPY", "NAV:TLT"]}]}, "no constituents"),
    ({"groups": [{"name": "a", "members": ["SPY", "IVV"]}, {"name": "a", "members": ["SPY", "VOO"]}]}, "unique"),
    ({"groups": [{"name": "panel41", "members": ["SPY", "IVV"]}]}, "reserved"),
    ({"publish_seconds": 0.5}, "at least step_seconds"),
    ({"panel_publish_seconds": 15}, "whole multiple of publish_seconds"),
    ({"lead_lag_max_seconds": 400}, "half the lead-lag window"),
    ({"lead_lag_window_seconds": 90}, "whole multiple"),
    ({"election_weights": {"KALSHI": 1.0}}, "tickers"),
    ({"sweep_measures": ["speed"]}, "sweep_measures"),
])
def test_bad_settings_fail_with_the_field(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        LeadershipConfig(**kwargs)


def test_lag_grid_is_symmetric_with_zero():
    grid = LeadershipConfig(lead_lag_max_seconds=2.0, lead_lag_resolution_seconds=0.5).lag_grid()
    np.testing.assert_allclose(grid, [-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2])


# --------------------------------------------------------------------------- monitor


def _cointegrated(n: int, k: int, seed: int, lag_of: tuple[int, ...] | None = None) -> np.ndarray:
    """k prices of one random walk near 500, market i adjusting with half-life lag_of[i] steps."""
    rng = np.random.default_rng(seed)
    x = 500 + np.cumsum(rng.standard_normal(n) * 0.05)
    out = np.empty((n, k))
    for i in range(k):
        a = 1.0 - 2.0 ** (-1.0 / (lag_of[i] if lag_of else 1.0 + i))
        m = np.empty(n)
        m[0] = x[0]
        for t in range(1, n):
            m[t] = m[t - 1] + a * (x[t] - m[t - 1])
        out[:, i] = m + rng.standard_normal(n) * 0.005
    return out


@pytest.mark.parametrize("k, det", [(2, "ci"), (3, "ci"), (3, "co"), (4, "ci")])
def test_trace_rank_equals_select_coint_rank(k, det):
    for seed in range(4):
        y = _cointegrated(400, k, seed)
        fit = fit_vecm(y, 1, k - 1, det)
        assert trace_rank(fit.eigenvalues, fit.nobs, det) == select_coint_rank(y, 1, det).rank
    y = np.cumsum(np.random.default_rng(9).standard_normal((400, 3)), axis=0)  # three independent walks
    fit = fit_vecm(y, 1, 2, "ci")
    assert trace_rank(fit.eigenvalues, fit.nobs, "ci") == select_coint_rank(y, 1, "ci").rank == 0
    assert trace_rank(np.zeros(12), 100, "ci") == -1  # no table beyond 11 series


def _monitor(spec, window=120, shares_every=1, calendar=None):
    book = SeriesBook.build(spec.members)
    return GroupMonitor(spec, book, window, NS, calendar or RegimeCalendar(), 1, "ci", shares_every), book


def test_monitor_equals_a_batch_refit_on_each_window():
    spec = GroupSpec(name="g", members=("AAA", "BBB", "CCC"))
    mon, book = _monitor(spec)
    y = np.log(_cointegrated(300, 3, 3, lag_of=(0.5, 2.0, 3.0)))
    t0 = ny(10)
    fresh = np.ones(3, dtype=bool)
    for i, row in enumerate(y):
        est = mon.step(t0 + (i + 1) * NS, row, fresh)  # bases sort as AAA, BBB, CCC
        if i + 1 < 120:
            assert est is None
            continue
        window = y[i + 1 - 120:i + 1]
        fit = fit_vecm(window, 1, 2, "ci")
        ref = price_discovery_shares(fit.alpha, fit.beta, fit.sigma_u)
        expected = np.vstack([ref.is_lower, ref.is_upper, ref.is_midpoint, ref.mis, ref.cs, ref.ils])
        np.testing.assert_allclose(est.shares, expected, rtol=1e-7, atol=1e-9)
        assert est.coint_rank == select_coint_rank(window, 1, "ci").rank
        assert est.regime is Regime.REGULAR and est.regime_fraction == 1.0 and est.rows == 120
    # the designed leader (shortest half-life) has the largest IS midpoint in most windows
    summary = mon.regime_summary(Regime.REGULAR)
    assert summary.windows == 300 - 119
    assert int(np.argmax(summary.leader_fraction)) == 0
    assert summary.leader_fraction[0] > 0.75


def test_monitor_regime_averages_use_pure_windows_only():
    spec = GroupSpec(name="g", members=("AAA", "BBB"))
    mon, _ = _monitor(spec, window=60)
    y = np.log(_cointegrated(400, 2, 5, lag_of=(0.5, 3.0)))
    start = ny(15, 30) - 200 * NS  # crosses from regular into the close
    fresh = np.ones(2, dtype=bool)
    regular, close = [], []
    for i, row in enumerate(y):
        t = start + (i + 1) * NS
        est = mon.step(t, row, fresh)
        if est is not None and est.ok and est.regime_fraction == 1.0:
            (regular if est.regime is Regime.REGULAR else close).append(est.shares)
    assert regular and close
    np.testing.assert_allclose(mon.regime_summary(Regime.REGULAR).means, np.mean(regular, axis=0), rtol=1e-12)
    np.testing.assert_allclose(mon.regime_summary(Regime.CLOSE).means, np.mean(close, axis=0), rtol=1e-12)
    # windows straddling 15:30 are in neither: 59 of them
    assert mon.regime_summary(Regime.REGULAR).windows + mon.regime_summary(Regime.CLOSE).windows == 400 - 59 - 59


def test_monitor_restarts_after_a_stale_member_and_publishes_on_demand():
    spec = GroupSpec(name="g", members=("AAA", "BBB"))
    mon, _ = _monitor(spec, window=60, shares_every=7)
    y = np.log(_cointegrated(200, 2, 6))
    fresh = np.ones(2, dtype=bool)
    t0 = ny(11)
    for i in range(100):
        mon.step(t0 + i * NS, y[i], fresh)
    est = mon.estimate()  # solved now when the last step computed no shares
    fit = fit_vecm(y[40:100], 1, 1, "ci")
    ref = price_discovery_shares(fit.alpha, fit.beta, fit.sigma_u)
    np.testing.assert_allclose(est.shares[SHARE_FIELDS.index("is_mid")], ref.is_midpoint, rtol=1e-7)
    mon.step(t0 + 100 * NS, y[100], np.array([True, False]))  # BBB went quiet: start afresh
    assert mon.resets == 1 and mon.estimate() is None and not mon.roll.ready
    mon.step(t0 + 101 * NS, np.array([np.nan, y[101, 1]]), fresh)  # unknown value: no row either
    assert mon.estimate() is None
    for i in range(102, 162):
        mon.step(t0 + i * NS, y[i], fresh)
    assert mon.estimate() is not None and mon.estimate().rows == 60


def test_large_groups_are_estimated_when_asked_with_sampled_bounds():
    members = tuple(f"S{i}" for i in range(7))
    mon, _ = _monitor(GroupSpec(name="big", members=members), window=150)
    assert not mon.per_step
    y = np.log(_cointegrated(200, 7, 8))
    fresh = np.ones(7, dtype=bool)
    for i, row in enumerate(y):
        assert mon.step(ny(13) + (i + 1) * NS, row, fresh) is None  # pushed only
    est = mon.estimate()
    fit = fit_vecm(y[-150:], 1, 6, "ci")
    ref = price_discovery_shares(fit.alpha, fit.beta, fit.sigma_u)  # sampled orderings, seed 0
    assert not est.exact and est.n_orderings == ref.n_orderings and est.coint_rank == trace_rank(
        fit.eigenvalues, fit.nobs, "ci")
    np.testing.assert_allclose(est.shares[SHARE_FIELDS.index("is_upper")], ref.is_upper, rtol=1e-6)
    assert mon.estimate() is est and mon.regime_summary(Regime.REGULAR).windows == 1  # counted once


def test_monitor_reports_degenerate_windows():
    spec = GroupSpec(name="g", members=("AAA", "BBB"))
    mon, _ = _monitor(spec, window=60)
    fresh = np.ones(2, dtype=bool)
    est = None
    for i in range(60):  # BBB never moves
        est = mon.step(ny(12) + i * NS, np.array([math.log(100 + 0.01 * (i % 3)), math.log(50.0)]), fresh)
    assert est is not None and not est.ok and "singular" in est.error and np.all(np.isnan(est.shares))
    assert mon.regime_summary(Regime.REGULAR) is None


def test_derived_members_need_one_fresh_constituent():
    spec = GroupSpec(name="g", members=("SPY", "NAV:XLE"))
    book = SeriesBook.build(spec.members)
    mon = GroupMonitor(spec, book, 60, NS, RegimeCalendar())
    assert book.bases == ("SPY", "XOM")
    assert mon.members_fresh(np.array([True, True])) and not mon.members_fresh(np.array([True, False]))
    spec = GroupSpec(name="h", members=("SPY", "NAV:SPY"))
    book = SeriesBook.build(spec.members)
    mon = GroupMonitor(spec, book, 60, NS, RegimeCalendar())
    fresh = np.array([b in ("SPY", "AAPL") for b in book.bases])
    assert mon.members_fresh(fresh)  # NAV:SPY: one fresh constituent is enough
    fresh[book.bases.index("AAPL")] = False
    assert not mon.members_fresh(fresh)


def test_a_base_the_group_does_not_use_cannot_void_its_rows():
    """The node shares one book across groups: a base that has no value (Kalshi with its filter
    off, a ticker that never quoted) must not stop the groups that do not use it."""
    groups = (GroupSpec(name="g", members=("AAA", "BBB")), GroupSpec(name="k", members=("KALSHI", "AAA")))
    book = SeriesBook.build([m for g in groups for m in g.members])
    mon = GroupMonitor(groups[0], book, 60, NS, RegimeCalendar())
    y = np.log(_cointegrated(100, 2, 5))
    values = np.full(len(book.bases), np.nan)
    fresh = np.zeros(len(book.bases), dtype=bool)
    cols = [book.bases.index("AAA"), book.bases.index("BBB")]
    for i, row in enumerate(y):
        values[cols], fresh[cols] = row, True
        est = mon.step(ny(10) + (i + 1) * NS, values, fresh)
    assert est is not None and est.ok and mon.resets == 0
    np.testing.assert_allclose(est.shares[SHARE_FIELDS.index("is_mid")].sum(), 1.0)


# --------------------------------------------------------------------------- small-group shares


def test_small_shares_equal_the_reference():
    rng = np.random.default_rng(0)
    for k in range(2, 7):
        for _ in range(40):
            a, b = rng.standard_normal((k, k - 1)), rng.standard_normal((k, k - 1))
            m = rng.standard_normal((k, k))
            omega = m @ m.T + 0.05 * np.eye(k)
            ref = price_discovery_shares(a, b, omega)
            np.testing.assert_allclose(small_shares(a, b, omega),
                                       np.vstack([ref.is_lower, ref.is_upper, ref.is_midpoint, ref.mis, ref.cs,
                                                  ref.ils]), rtol=1e-12, atol=1e-12)


def test_small_shares_defer_edge_cases_to_the_reference():
    a = np.array([[1.0], [-1.0]])
    with pytest.raises(ValueError, match="positive definite"):
        small_shares(a, a, np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="sums to zero"):
        small_shares(np.array([[1.0], [1.0]]), a, np.eye(2))
    with pytest.raises(ValueError, match="symmetric"):
        small_shares(a, a, np.array([[1.0, 0.1], [0.2, 1.0]]))
    with pytest.raises(ValueError, match="finite"):
        small_shares(np.array([[np.nan], [1.0]]), a, np.eye(2))


# --------------------------------------------------------------------------- ticks


def test_tick_window_keeps_the_value_in_force():
    w = TickWindow(capacity=16)
    for i in range(100):
        w.append(i * 10, float(i))
    w.append(990, -1.0)  # equal stamp: replaces
    assert len(w) == 100 and w.last_value == -1.0
    t, v = w.window(255, 400)
    assert t[0] == 254 and v[0] == 25.0 and t[1] == 260 and t[-1] == 390
    t, v = w.window(260, 400)  # a tick at the start keeps its increment from the value before
    assert list(t[:2]) == [259, 260] and list(v[:2]) == [25.0, 26.0]
    w.trim(505)
    t, v = w.window(505, 600)
    assert t[0] == 504 and v[0] == 50.0  # the tick in force at the trim point survived
    with pytest.raises(ValueError, match="older"):
        w.append(5, 0.0)
    for i in range(100, 5000):  # compaction and growth keep order
        w.append(i * 10, float(i))
    t, v = w.window(0, 10 ** 9)
    assert np.all(np.diff(t) > 0) and v[-1] == 4999.0


def test_derived_ticks_follow_their_constituents():
    d = DerivedTicks({"A": 0.25, "B": 0.75})
    d.update("A", 1, 4.0)
    assert len(d.ticks) == 0  # B not seen yet
    rng = np.random.default_rng(2)
    cur = {"A": 4.0}
    for i in range(2, 2000):
        name = "AB"[rng.integers(2)]
        cur[name] = float(rng.standard_normal())
        d.update(name, i, cur[name])
        if "B" in cur:
            assert abs(d.value - (0.25 * cur["A"] + 0.75 * cur["B"])) < 1e-12
    d.update("C", 5000, 1.0)  # not a constituent: ignored
    assert d.ticks.last_time == 1999


def test_summarised_curve_equals_lead_lag_and_sums_are_additive():
    rng = np.random.default_rng(4)
    base = np.cumsum(rng.standard_normal(4000))
    lags = np.arange(-5, 5.25, 0.25)
    x, y = TickWindow(), TickWindow()
    tx = np.union1d(rng.choice(np.arange(1, 4000), 1500, replace=False), [2000])
    ty = np.union1d(rng.choice(np.arange(1, 4000), 1200, replace=False), [2000])
    for t in tx:
        x.append(int(t) * NS, float(base[t]))
    for t in ty:
        y.append(int(t) * NS, float(base[max(t - 2, 0)]))  # y follows x by 2 s
    cov, vx, vy, nx, ny_ = window_curve(x, y, 0, 4000 * NS, lags)
    sec_x, sec_y = (tx * NS) * 1e-9, (ty * NS) * 1e-9  # the node's clock: ns since the window start, in s
    ref = lead_lag(sec_x, base[tx], sec_y, base[np.maximum(ty - 2, 0)], lags)
    got = summarise_curve(lags, cov, vx, vy)
    assert got.best_lag == ref.best_lag > 0 and ref.lead_lag_ratio > 1  # x leads
    assert math.isclose(got.best_correlation, ref.best_correlation) and math.isclose(got.lead_lag_ratio,
                                                                                      ref.lead_lag_ratio)
    # at lag 0, with both series ticking in the last nanosecond before the split, two windows
    # add up to the whole
    split = 2000 * NS
    assert 2000 in tx and 2000 in ty  # ticks at 2000 s: shift the split by one ns
    split = 2000 * NS + 1
    total = CurveSum(1)
    for a, b in ((0, split), (split, 4000 * NS)):
        part = window_curve(x, y, a, b, np.array([0.0]))
        total.add(*part)
    whole = hayashi_yoshida(sec_x, base[tx], sec_y, base[np.maximum(ty - 2, 0)], [0.0])
    np.testing.assert_allclose(total.covariance, whole.covariance, rtol=1e-12)
    assert total.windows == 2


# --------------------------------------------------------------------------- sweeps


def test_cross_section_slope_equals_statsmodels():
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(8), [3, 2, 2, 4, 2, 3, 2, 2])
    x = rng.random(g.size)
    y = -0.8 * x + 0.3 * g + rng.standard_normal(g.size) * 0.2
    dummies = np.column_stack([x] + [(g == k).astype(float) for k in range(8)])
    ref = sm.OLS(y, dummies).fit(cov_type="cluster", cov_kwds={"groups": g})
    fit = cross_section_slope(y, x, g)
    assert math.isclose(fit.slope, ref.params[0], rel_tol=1e-12) and math.isclose(fit.se, ref.bse[0], rel_tol=1e-10)
    ref = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HC1")
    fit = cross_section_slope(y, x)
    assert math.isclose(fit.slope, ref.params[1], rel_tol=1e-12) and math.isclose(fit.se, ref.bse[1], rel_tol=1e-10)
    assert fit.n_groups == 1 and math.isclose(fit.t_stat, ref.tvalues[1], rel_tol=1e-10)


def test_cross_section_slope_says_why_it_cannot_estimate():
    assert "observations" in cross_section_slope([1.0, 2.0], [0.1, 0.2]).error
    fit = cross_section_slope([1.0, 2.0, 3.0, 4.0], [0.1, 0.1, 0.3, 0.3], ["a", "a", "b", "b"])
    assert np.isnan(fit.slope) and "no variation" in fit.error
    fit = cross_section_slope([1, 2, 3, np.nan, 5], [1, 2, 3, 4, np.inf])
    assert fit.n_obs == 3


def test_newey_west_mean_and_fama_macbeth_equal_statsmodels_hac():
    rng = np.random.default_rng(3)
    v = np.cumsum(rng.standard_normal(300)) * 0.05 + rng.standard_normal(300)
    for lags in (0, 4, 60):
        ref = sm.OLS(v, np.ones(v.size)).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
        mean, se = newey_west_mean(v, lags)
        assert math.isclose(mean, ref.params[0], rel_tol=1e-12) and math.isclose(se, ref.bse[0], rel_tol=1e-10)
        fm = FamaMacBeth(lags)
        for value in v:
            fm.add(value)
        fm.add(math.nan)  # ignored
        got = fm.result()
        assert got[2] == 300 and math.isclose(got[0], mean, rel_tol=1e-12) and math.isclose(got[1], se, rel_tol=1e-9)


def test_iso_share_window_against_brute_force():
    rng = np.random.default_rng(5)
    step = NS
    win = IsoShareWindow(step, 120 * NS)
    trades = []
    t = ny(10)
    for _ in range(3000):
        t += int(rng.exponential(0.2) * NS)
        sym = ["SPY", "IVV", "DJT"][rng.integers(3)]
        size = float(rng.integers(1, 500))
        iso = bool(rng.random() < 0.3)
        win.add(sym, t, size, iso)
        trades.append((t, sym, size, iso))
    end = (t // NS) * NS
    got = win.shares(end - 100 * NS, end)
    for sym in ("SPY", "IVV", "DJT"):
        rows = [(s, i) for tt, ss, s, i in trades if ss == sym and end - 100 * NS <= tt < end]
        expected = sum(s for s, i in rows if i) / sum(s for s, _ in rows)
        assert math.isclose(got[sym], expected, rel_tol=1e-12)
    with pytest.raises(ValueError, match="longer than the capacity"):
        win.shares(end - 500 * NS, end)
    with pytest.raises(ValueError, match="older than the window"):
        win.add("SPY", end - 400 * NS, 1.0, False)


# --------------------------------------------------------------------------- rolling VECM internals


def test_rolling_fits_are_read_only_views_equal_to_plain_fits():
    """update() hands out views into blocks of packed results with the block layout already
    set: each equals a VECMFit built the plain way, stays unchanged while later steps fill
    new blocks, and equals a fresh solve of the same moments bit for bit."""
    y = _cointegrated(500, 3, 11)
    roll = RollingVECM(3, 100, 1, 2, "ci")
    kept = []
    for row in y:
        fit = roll.update(row)
        if fit is not None:
            assert np.array_equal(fit.params, roll.fit().params)
            kept.append((fit, fit.params.copy()))
    assert len(kept) > 3 * _OUT_BLOCK_ROWS
    for fit, params in kept[::37]:
        assert np.array_equal(fit.params, params) and not fit.params.flags.writeable
        plain = VECMFit(params, fit.n_series, fit.coint_rank, fit.k_ar_diff, fit.n_inside, fit.n_outside, fit.nobs,
                        fit.deterministic)
        for name in ("alpha", "beta", "beta_full", "det_coef_coint", "gamma", "det_coef", "sigma_u", "eigenvalues",
                     "llf", "pi", "gamma_lags"):
            np.testing.assert_array_equal(getattr(fit, name), getattr(plain, name), err_msg=name)
    with pytest.raises(ValueError, match="read-only"):
        kept[0][0].params[0] = 0.0


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_jacobi_eigen_equals_numpy(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, n))
    # positive definite, diagonal, zero, and a cluster of nearly equal eigenvalues
    for matrix in (x @ x.T, np.diag(rng.standard_normal(n)), np.zeros((n, n)), np.eye(n) + 1e-9 * (x + x.T)):
        ws = np.zeros((2, n, n))
        ws[0] = matrix
        _kernels._jacobi_eigen(ws, 0, n, 1)
        values, vectors = np.diag(ws[0]), ws[1]
        atol = 1e-13 * np.abs(matrix).max()
        np.testing.assert_allclose(np.sort(values), np.linalg.eigvalsh(matrix), rtol=0, atol=atol)
        np.testing.assert_allclose(matrix @ vectors, vectors * values, rtol=0, atol=atol)
        np.testing.assert_allclose(vectors.T @ vectors, np.eye(n), rtol=0, atol=1e-14)


def test_llf_where_the_determinant_leaves_the_double_range():
    """The solver takes one log of det S00 prod (1 - lambda_i) unless that product under- or
    overflows. Prices scaled by c: only sigma_u (times c^2), the inside constant (times c)
    and llf (minus nobs K log c) change."""
    y = _cointegrated(300, 3, 12)
    base = fit_vecm(y, 1, 2, "ci")
    for c in (1e-110, 1e110):  # det S00 ~ (1e-4 c^2)^3: 1e-672 and 1e648
        scaled = fit_vecm(y * c, 1, 2, "ci")
        assert scaled.llf == pytest.approx(base.llf - base.nobs * 3 * math.log(c), rel=1e-12)
        np.testing.assert_allclose(scaled.alpha, base.alpha, rtol=1e-9)
        np.testing.assert_allclose(scaled.beta, base.beta, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(scaled.det_coef_coint, base.det_coef_coint * c, rtol=1e-9)
        np.testing.assert_allclose(scaled.sigma_u, base.sigma_u * c * c, rtol=1e-9)


def test_solver_refuses_a_workspace_too_small():
    mw, shift, trend_offset, trend_scale, nobs = batch_moments(_cointegrated(100, 2, 13), 1)
    (slabs, side, _), int_shape = _kernels.workspace_shapes(2, 1, 1, 0)
    out = np.empty(_kernels.packed_size(2, 1, 3, 2))
    for ws_shape in ((slabs - 1, side, side), (slabs, side - 1, side)):
        with pytest.raises(ValueError, match="workspace too small"):
            _kernels.johansen_from_moments(mw, float(nobs), 2, 1, 1, 0, 1, 0, 0, shift, trend_offset, trend_scale,
                                           out, np.empty(ws_shape), np.empty(int_shape, dtype=np.int64))
