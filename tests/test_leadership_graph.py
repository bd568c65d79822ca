"""The leadership streams inside the replay graph (graphs/leadership.py), on 09:30-10:00 New
York of the synthetic Election Day, with 300 s windows:

* the graph's rows equal the library on the same data (a batch VECM on the 1 s grid rebuilt
  from the replay's own ``nbbo_1s_sampled`` and ``kalshi_probability``; Hayashi-Yoshida on the
  replayed quotes; the sweep regression from the replayed trades);
* checked against the generator's design: the designed leaders (shortest quote half-life) rank
  first in their groups, and the within-group lead times are within a second of the lead-lag
  of the generator's own quoted-mid targets.

A ``slow`` test replays the whole default day with the default settings.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy.special import ndtri

from elecflow.adapters.synthetic import write_synthetic_day
from elecflow.adapters.vendors import discover
from elecflow.config import ReplayConfig
from elecflow.graphs.dashboard import TABLE_SCHEMAS, lead_lag_row, price_discovery_row, sweep_row
from elecflow.graphs.run import run_replay
from elecflow.leadership import fit_vecm, hayashi_yoshida, lead_lag, price_discovery_shares
from elecflow.leadership.groups import KALSHI, LeadershipConfig, SeriesBook
from elecflow.leadership.regimes import Regime, RegimeCalendar
from elecflow.leadership.sweep import cross_section_slope, newey_west_mean
from elecflow.leadership.ticks import summarise_curve
from elecflow.microstructure import bar_counted
from elecflow.schema import LeadLagEstimate, PriceDiscovery, SweepLeadership
from elecflow.synth.config import SyntheticDayConfig

NS = 1_000_000_000
SETTINGS = LeadershipConfig(window_seconds=300, publish_seconds=10, lead_lag_window_seconds=300,
                            lead_lag_publish_seconds=60)
STREAMS = {"price_discovery": PriceDiscovery, "lead_lag": LeadLagEstimate, "sweep_leadership": SweepLeadership}


def _known(model, **values) -> dict:
    """The settings ``model`` has: switch off other layers (options, factors, the simulated option
    market...) where they exist, so this test times and exercises the leadership streams only."""
    return {k: v for k, v in values.items() if k in model.model_fields}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("leadership")
    synth = SyntheticDayConfig(start_et="09:30", end_et="10:00",
                               **_known(SyntheticDayConfig, option_underlyings=[], impact_underlyings=[],
                                        factor_universe_size=0))
    write_synthetic_day(synth, root / "data", progress=False)
    config = ReplayConfig(mode="sim", data=root / "data", out=root / "out", progress=False, dashboard=False,
                          leadership_settings=SETTINGS,
                          **_known(ReplayConfig, options=False, upmove=False, factors=False))
    sources, _ = discover(config.data)
    result = run_replay(config, sources, log=lambda *_: None)
    return root / "data", root / "out", result


def _table(out: Path, name: str) -> pa.Table:
    return pq.read_table(out / name)


def _rows(table: pa.Table, **equal) -> pa.Table:
    for column, value in equal.items():
        table = table.filter(pc.equal(table.column(column), value))
    return table


def _ns(column) -> np.ndarray:
    return column.cast(pa.int64()).to_numpy() if pa.types.is_timestamp(column.type) else np.asarray(column)


def test_streams_are_written_with_their_schema(run):
    _, out, result = run
    assert result.reconciles()
    for name, struct in STREAMS.items():
        table = _table(out, name)
        assert table.num_rows > 0, name
        assert set(table.column_names) == set(struct.metadata()), name
        assert set(table.column("scope").to_pylist()) == {"window", "regime"}, name
        assert set(table.column("regime").to_pylist()) == {"regular"}, name  # 09:30-10:00
    pd = _table(out, "price_discovery")
    groups = set(pd.column("group").to_pylist())
    assert {g.name for g in SETTINGS.groups} == groups
    window = _rows(pd, scope="window")
    assert np.all(window.column("regime_fraction").to_numpy() == 1.0)  # the grid starts at 09:30
    # every 10 s from the first full window (five minutes after all three quoted) to the end
    times = np.unique(_ns(_rows(window, group="sp500_trackers").column("time")))
    assert np.all(np.diff(times) == 10 * NS) and 140 <= times.size <= 151 and times[-1] % (10 * NS) == 0


def _grid(out: Path, bases: tuple[str, ...], end_ns: int, rows: int) -> np.ndarray:
    """The base series on the 1 s grid, as the node sees them: the last 1 s NBBO (log mid) and
    the last Kalshi grid prediction (probit) at or before each step, carried forward."""
    steps = end_ns - NS * np.arange(rows)[::-1]
    out_rows = np.full((rows, len(bases)), np.nan)
    nbbo = _table(out, "nbbo_1s_sampled")
    kalshi = _rows(_table(out, "kalshi_probability"), kind="grid")
    for j, b in enumerate(bases):
        if b == KALSHI:
            t, v = _ns(kalshi.column("time")), ndtri(kalshi.column("p").to_numpy())
        else:
            q = _rows(nbbo, symbol=b)
            t = _ns(q.column("time"))
            v = np.log(0.5 * (q.column("bid_price").to_numpy() + q.column("ask_price").to_numpy()))
        idx = np.searchsorted(t, steps, side="right") - 1
        out_rows[:, j] = np.where(idx >= 0, v[np.maximum(idx, 0)], np.nan)
    return out_rows


@pytest.mark.parametrize("group", ["sp500_trackers", "SPY_nav", "election"])
def test_window_shares_equal_a_batch_fit_on_the_sampled_grid(run, group):
    _, out, _ = run
    spec = next(g for g in SETTINGS.groups if g.name == group)
    rows = _rows(_table(out, "price_discovery"), scope="window", group=group)
    t_end = int(np.unique(_ns(rows.column("time")))[-7])  # one minute before the last window
    rows = rows.filter(pc.equal(rows.column("time").cast(pa.int64()), t_end))
    book = SeriesBook.build(spec.members)
    levels = _grid(out, book.bases, t_end, SETTINGS.window_seconds) @ book.matrix(spec.members).T
    fit = fit_vecm(levels, 1, len(spec.members) - 1, "ci")
    ref = price_discovery_shares(fit.alpha, fit.beta, fit.sigma_u)
    members = rows.column("member").to_pylist()
    order = [members.index(m) for m in spec.members]
    for name, expected in (("is_lower", ref.is_lower), ("is_upper", ref.is_upper), ("mis", ref.mis),
                           ("cs", ref.cs), ("is_mid", ref.is_midpoint)):
        np.testing.assert_allclose(rows.column(name).to_numpy()[order], expected, rtol=1e-6, atol=1e-8)


def _mid_ticks(out: Path, symbol: str) -> tuple[np.ndarray, np.ndarray]:
    """Mid changes of the replayed quotes, time stamps as the node sees them (microseconds)."""
    q = _rows(_table(out, "quotes"), symbol=symbol)
    t = _ns(q.column("time")) // 1000 * 1000
    mid = np.log(0.5 * (q.column("bid_price").to_numpy() + q.column("ask_price").to_numpy()))
    keep = np.concatenate(([True], np.diff(mid) != 0))
    t, mid = t[keep], mid[keep]
    last = np.concatenate((t[1:] != t[:-1], [True]))  # equal stamps: the last value
    return t[last], mid[last]


def _window_ticks(t, v, start, end):
    i0, i1 = np.searchsorted(t, start), np.searchsorted(t, end)
    tt, vv = t[i0:i1], v[i0:i1]
    if i0 > 0:
        tt, vv = np.concatenate(([start - 1], tt)), np.concatenate(([v[i0 - 1]], vv))
    return (tt - start) * 1e-9, vv  # seconds from the window start, as the node computes them


def test_lead_lag_rows_equal_hayashi_yoshida_on_the_replayed_ticks(run):
    _, out, _ = run
    ll = _rows(_table(out, "lead_lag"), scope="window")
    lags = SETTINGS.lag_grid()
    kalshi = _rows(_table(out, "kalshi_probability"), kind="fill")
    series = {KALSHI: (_ns(kalshi.column("time")), ndtri(kalshi.column("p").to_numpy()))}
    checked = 0
    for pair, x, y in (("sp500_trackers", "SPY", "IVV"), ("alphabet", "GOOGL", "GOOG"), ("kalshi", KALSHI, "DJT")):
        for name in (x, y):
            if name not in series:
                series[name] = _mid_ticks(out, name)
        rows = _rows(ll, pair=pair, x=x, y=y)
        for i in range(rows.num_rows):
            end = int(_ns(rows.column("time"))[i])
            start = end - int(SETTINGS.lead_lag_window_seconds * NS)
            ref = lead_lag(*_window_ticks(*series[x], start, end), *_window_ticks(*series[y], start, end), lags)
            assert rows.column("best_lag")[i].as_py() == ref.best_lag
            assert math.isclose(rows.column("best_correlation")[i].as_py(), ref.best_correlation, rel_tol=1e-12)
            assert math.isclose(rows.column("lead_lag_ratio")[i].as_py(), ref.lead_lag_ratio, rel_tol=1e-12)
            checked += 1
    assert checked >= 3 * 20


def test_designed_leaders_rank_first(run):
    """SPY (quote half-life 0.5 s) over IVV (2 s) and VOO (2.5 s); GOOGL (2.5 s) over GOOG
    (3.5 s): the largest Hasbrouck midpoint in nearly every window of the regular session."""
    _, out, _ = run
    regime = _rows(_table(out, "price_discovery"), scope="regime", regime="regular")
    for group, leader in (("sp500_trackers", "SPY"), ("alphabet", "GOOGL")):
        rows = _rows(regime, group=group)
        last = int(_ns(rows.column("time")).max())
        rows = rows.filter(pc.equal(rows.column("time").cast(pa.int64()), last))
        by = dict(zip(rows.column("member").to_pylist(), rows.to_pylist()))
        assert by[leader]["leader_fraction"] >= 0.95, group
        assert by[leader]["is_mid"] == max(r["is_mid"] for r in by.values()), group
        assert by[leader]["mis"] == max(r["mis"] for r in by.values()), group
        assert by[leader]["coint_fraction"] >= 0.9  # one common trend, as designed
        assert by[leader]["windows"] >= 1400  # every step from the first full window to 10:00:00


def test_lead_times_within_a_second_of_the_truth(run):
    """The Hayashi-Yoshida argmax of the replayed quotes against that of the generator's
    noise-free quoted-mid targets (``ground_truth/efficient_prices.parquet``) over the same
    non-overlapping windows; the sign (lead-lag ratio) as designed."""
    data, out, _ = run
    truth = pq.read_table(data / "ground_truth" / "efficient_prices.parquet")
    ll = _rows(_table(out, "lead_lag"), scope="regime")
    lags = SETTINGS.lag_grid()
    window = int(SETTINGS.lead_lag_window_seconds * NS)
    for pair, x, y in (("sp500_trackers", "SPY", "IVV"), ("sp500_trackers", "SPY", "VOO"),
                       ("alphabet", "GOOGL", "GOOG")):
        rows = _rows(ll, pair=pair, x=x, y=y)
        got = rows.to_pylist()[-1]
        ends = _ns(_rows(_rows(_table(out, "lead_lag"), scope="window", pair=pair, x=x, y=y).column("time")))
        tiles = [e for e in ends if e % window == 0]
        assert got["windows"] == len(tiles) == 6  # the windows ending 09:35, 09:40, ..., 10:00
        cov, vx, vy = np.zeros(lags.size), 0.0, 0.0
        for end in tiles:
            parts = []
            for s in (x, y):
                d = _rows(truth, symbol=s)
                parts += _window_ticks(_ns(d.column("time")), d.column("log_quoted_mid_target").to_numpy(),
                                       end - window, end)
            hy = hayashi_yoshida(*parts, lags)
            cov, vx, vy = cov + hy.covariance, vx + hy.realised_var_x, vy + hy.realised_var_y
        designed = summarise_curve(lags, cov, vx, vy)
        assert designed.lead_lag_ratio > 1 and got["lead_lag_ratio"] > 1, (x, y)
        assert abs(got["best_lag"] - designed.best_lag) <= 1.0, (x, y, got["best_lag"], designed.best_lag)


def test_sweep_rows_equal_the_regression_on_the_replayed_trades(run):
    _, out, _ = run
    pd_rows = _rows(_table(out, "price_discovery"), scope="window")
    sweeps = _table(out, "sweep_leadership")
    trades = _table(out, "trades")
    counted = bar_counted(trades.column("condition_mask").to_numpy(), trades.column("correction").to_numpy())
    t_trade = _ns(trades.column("time")) // 1000 * 1000
    sym, size, iso = (trades.column("symbol").to_numpy(zero_copy_only=False), trades.column("size").to_numpy(),
                      trades.column("is_iso").to_numpy(zero_copy_only=False))
    book = SeriesBook.build([m for g in SETTINGS.groups for m in g.members])
    window = _rows(sweeps, scope="window", measure="is_mid")
    assert window.num_rows >= 140
    slopes = []
    for i in range(0, window.num_rows, 25):
        end = int(_ns(window.column("time"))[i])
        start = end - SETTINGS.window_seconds * NS
        sel = counted & (t_trade >= start) & (t_trade < end)
        shares = {}
        for s in np.unique(sym[sel]):
            m = sel & (sym == s)
            shares[s] = size[m & iso].sum() / size[m].sum()
        rows = [r for r in pd_rows.filter(pc.equal(pd_rows.column("time").cast(pa.int64()), end)).to_pylist()
                if not r["error"] and r["coint_rank"] == r["n_members"] - 1]
        kalshi_groups = {r["group"] for r in rows if r["member"] == KALSHI}
        rows = [r for r in rows if r["group"] not in kalshi_groups]
        x = []
        for r in rows:
            combo = book.constituents[r["member"]]
            w = np.abs([book.weights[r["member"]][book.bases.index(b)] for b in combo])
            vals = np.array([shares.get(b, np.nan) for b in combo])
            ok = np.isfinite(vals)
            x.append(float(w[ok] @ vals[ok] / w[ok].sum()) if ok.any() else np.nan)
        ref = cross_section_slope([r["is_mid"] for r in rows], x, [r["group"] for r in rows])
        got = window.to_pylist()[i]
        assert got["n_obs"] == ref.n_obs and got["n_groups"] == ref.n_groups
        assert math.isclose(got["slope"], ref.slope, rel_tol=1e-9) and math.isclose(got["se"], ref.se, rel_tol=1e-9)
    # the regime rows: Fama-MacBeth over the window slopes, Newey-West with the windows' overlap
    slopes = window.column("slope").to_numpy()
    last = _rows(sweeps, scope="regime", measure="is_mid").to_pylist()[-1]
    mean, se = newey_west_mean(slopes[np.isfinite(slopes)], 29)
    assert last["nw_lags"] == 29 and last["windows"] == np.isfinite(slopes).sum()
    assert math.isclose(last["slope"], mean, rel_tol=1e-12) and math.isclose(last["se"], se, rel_tol=1e-9)


def test_rows_convert_for_the_dashboard(run):
    _, out, _ = run
    for name, to_row, struct in (("price_discovery", price_discovery_row, PriceDiscovery),
                                 ("lead_lag", lead_lag_row, LeadLagEstimate),
                                 ("sweep_leadership", sweep_row, SweepLeadership)):
        record = _table(out, name).to_pylist()[-1]
        record["time"] = record["time"].replace(tzinfo=None)
        row = to_row(struct(**record))
        assert set(row) == set(TABLE_SCHEMAS[name])
        assert row["view"] == ("latest" if record["scope"] == "window" else record["regime"])
        assert all(not isinstance(v, float) or math.isfinite(v) for v in row.values())  # NaN -> None


@pytest.mark.slow
def test_full_default_day(tmp_path):
    """The default settings over the whole default day: designed leaders first in every equity
    regime; Kalshi ahead of every asset after hours, when the poll closings move p."""
    from elecflow.cli import ensure_embedded_day

    data = ensure_embedded_day({}, None, quiet=True)
    config = ReplayConfig(mode="sim", data=data, out=tmp_path, progress=False, dashboard=False)
    result = run_replay(config, discover(data)[0], log=lambda *_: None)
    assert result.reconciles()
    regime_rows = _rows(_table(tmp_path, "price_discovery"), scope="regime").to_pylist()
    final = {(r["group"], r["member"], r["regime"]): r for r in regime_rows}
    for regime in ("pre_open", "regular", "close", "after_hours"):
        for group, leader, members in (("sp500_trackers", "SPY", ("SPY", "IVV", "VOO")),
                                       ("alphabet", "GOOGL", ("GOOGL", "GOOG"))):
            rows = {m: final[(group, m, regime)] for m in members}
            assert max(rows, key=lambda m: rows[m]["is_mid"]) == leader, (group, regime)
            assert max(rows, key=lambda m: rows[m]["leader_fraction"]) == leader, (group, regime)
    assert not any(r["regime"] == "results_night" for r in regime_rows)  # no equity quotes then
    lead = [r for r in _rows(_table(tmp_path, "lead_lag"), scope="regime", pair="kalshi",
                             regime="after_hours").to_pylist()]
    final_ll = {r["y"]: r for r in lead}
    assert len(final_ll) == 40
    assert all(r["lead_lag_ratio"] > 1 for r in final_ll.values())  # Kalshi leads every asset
    # and the co-movement has the sign of each asset's election loading
    from elecflow.universe import effective_election_loadings
    for symbol, g in effective_election_loadings().items():
        if abs(g) > 0.1:
            assert np.sign(final_ll[symbol]["best_correlation"]) == np.sign(g), symbol
    cal = RegimeCalendar()
    assert cal.regime_of(int(_ns(_table(tmp_path, "lead_lag").column("time")).max()) - 1) is Regime.RESULTS_NIGHT
