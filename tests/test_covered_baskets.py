"""``etf_baskets = "constituents"``: every unlevered ETF with constituents among our stocks is
their basket (weights rescaled to sum to one) plus a stationary AR(1) premium - the control on
which the ETF-vs-NAV price-discovery groups (docs/leadership.md, "ETF vs NAV") can be checked.

Two hours of the regular session (10:00-12:00 New York) written in both modes: the efficient
ETF-minus-NAV is stationary with the premium's variance (a random walk in the default mode);
on the 1 s NBBO file the trace test finds one common trend in the graph's rolling windows; the
ETFs that adjust faster than every one of their constituents lead by the Hasbrouck midpoint.

``python tests/test_covered_baskets.py [START END]`` prints the measured table of
docs/leadership.md (default: the whole regular session, 09:30-16:00).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from elecflow import universe as U
from elecflow.adapters.synthetic import nbbo_path, write_synthetic_day
from elecflow.leadership import LeadershipConfig, price_discovery_shares, rolling_fits, trace_rank
from elecflow.leadership.groups import nav_etfs, nav_weights
from elecflow.synth.config import SyntheticDayConfig
from elecflow.synth.day import normal_paths
from elecflow.synth.equities import PREMIUM_HALF_LIFE_SECONDS, PREMIUM_SD, covered_etfs, premium_owner

MODES = ("factor", "constituents")
WINDOW = ("10:00", "12:00")
# the 40's equity files do not depend on these (own streams); leaving them out saves time
EQUITIES_ONLY = dict(option_underlyings=[], impact_underlyings=[], factor_universe_size=0)
GRAPH = LeadershipConfig()  # the replay graph's rolling windows: 1,800 rows, 1 lagged difference, "ci"
# ETFs whose quotes adjust faster than every one of their constituents': the designed leaders
FASTER_THAN_BASKET = tuple(e for e in covered_etfs()
                           if U.INSTRUMENTS[e].half_life < min(U.INSTRUMENTS[s].half_life for s in nav_weights(e)))


def write_day(mode: str, out: Path, start: str, end: str) -> Path:
    write_synthetic_day(SyntheticDayConfig(start_et=start, end_et=end, etf_baskets=mode, **EQUITIES_ONLY), out,
                        progress=False)
    return out


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> dict[str, Path]:
    return {mode: write_day(mode, tmp_path_factory.mktemp(mode), *WINDOW) for mode in MODES}


def efficient_truth(root: Path) -> pd.DataFrame:
    """``ground_truth/efficient_prices.parquet`` wide: a column per symbol, and ``premium:ETF``
    per covered ETF when the file has premia."""
    truth = pq.read_table(root / "ground_truth" / "efficient_prices.parquet").to_pandas()
    wide = truth.pivot(index="time", columns="symbol", values="log_efficient_price")
    if "log_etf_premium" in truth:
        premia = truth.dropna(subset=["log_etf_premium"]).pivot(index="time", columns="symbol",
                                                                  values="log_etf_premium")
        wide = wide.join(premia.add_prefix("premium:"))
    return wide


def quoted_log_mids(root: Path) -> pd.DataFrame:
    """Log NBBO mids on the 1 s grid from the 1 s NBBO vendor file, as the replay graph forms
    them: the quote in force just before each whole second, carried forward, from the first
    second at which every ticker has one."""
    nbbo = pq.read_table(root / nbbo_path()).to_pandas()
    nbbo["log_mid"] = np.log((nbbo.bid_price + nbbo.ask_price) / 2.0)
    wide = nbbo.pivot(index="timestamp", columns="symbol", values="log_mid")
    grid = pd.date_range(wide.index[0], wide.index[-1], freq="1s")
    return wide.reindex(grid).ffill().dropna()


def nav(wide: pd.DataFrame, etf: str) -> np.ndarray:
    """The ``NAV:ETF`` series of the price-discovery groups (rescaled constituent weights)."""
    return sum(w * wide[s].to_numpy() for s, w in nav_weights(etf).items())


def rolling_rank_and_etf_share(mids: pd.DataFrame, etf: str) -> tuple[np.ndarray, np.ndarray]:
    """Trace-test rank and the ETF's Hasbrouck midpoint in (ETF, NAV:ETF) windows of the graph's
    length, one window per publication (every ``publish_seconds`` rows)."""
    y = np.column_stack([mids[etf].to_numpy(), nav(mids, etf)])
    fits = rolling_fits(y, GRAPH.window_seconds, GRAPH.k_ar_diff, 1, GRAPH.deterministic)
    fits = fits[::int(GRAPH.publish_seconds / GRAPH.step_seconds)]
    ranks = np.array([trace_rank(f.eigenvalues, f.nobs, GRAPH.deterministic) for f in fits])
    etf_share = np.array([price_discovery_shares(f.alpha, f.beta, f.sigma_u).is_midpoint[0] for f in fits])
    return ranks, etf_share


def variogram(d: np.ndarray, lag: int) -> float:
    """Mean squared change of ``d`` over ``lag`` seconds."""
    return float(np.mean((d[lag:] - d[:-lag]) ** 2))


@pytest.fixture(scope="module")
def measured(days) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per mode and covered ETF: the rolling windows' trace ranks and ETF IS midpoints."""
    out = {}
    for mode in MODES:
        mids = quoted_log_mids(days[mode])
        out[mode] = {etf: rolling_rank_and_etf_share(mids, etf) for etf in covered_etfs()}
    return out


# --------------------------------------------------------------------------- configuration and truth


def test_option_is_validated_and_recorded_only_when_set(days):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"etf_baskets\s+Input should be 'factor' or 'constituents'"):
        SyntheticDayConfig(etf_baskets="basket")
    control = SyntheticDayConfig(etf_baskets="constituents")
    assert "etf_baskets" not in SyntheticDayConfig().manifest_dump()  # the default manifest predates it
    assert SyntheticDayConfig(**control.manifest_dump()) == control
    generated_with = {m: json.loads((days[m] / "manifest.json").read_text())["generated_with"] for m in MODES}
    assert "etf_baskets" not in generated_with["factor"]
    assert generated_with["constituents"]["etf_baskets"] == "constituents"

    params = {m: json.loads((days[m] / "ground_truth" / "params.json").read_text()) for m in MODES}
    assert "etf_baskets" not in params["factor"]  # absent: the default construction
    recorded = params["constituents"]["etf_baskets"]
    assert recorded["mode"] == "constituents" and recorded["premium_sd"] == PREMIUM_SD
    assert recorded["premium_half_life_seconds"] == PREMIUM_HALF_LIFE_SECONDS
    assert set(recorded["etfs"]) == set(covered_etfs()) == set(nav_etfs())
    assert [recorded["etfs"][e]["premium_of"] for e in ("SPY", "IVV", "VOO", "XLF")] == ["SPY", "SPY", "SPY", "XLF"]
    equities = params["constituents"]["equities"]
    gamma = equities["effective_election_loadings"]
    for etf in covered_etfs():
        assert equities["instruments"][etf]["factor_loadings"] == {}
        assert equities["instruments"][etf]["constituent_weights"] == pytest.approx(nav_weights(etf))
        assert gamma[etf] == pytest.approx(sum(w * gamma[s] for s, w in nav_weights(etf).items()))
    assert gamma["TQQQ"] == pytest.approx(3.0 * gamma["QQQ"]) and gamma["SOXL"] == pytest.approx(3.0 * gamma["SMH"])


def test_covered_etfs_are_their_basket_plus_the_premium_and_nothing_else_moves(days):
    truth = {m: efficient_truth(days[m]) for m in MODES}
    basket = truth["constituents"]
    for etf in covered_etfs():
        expected = np.diff(nav(basket, etf) + basket[f"premium:{etf}"].to_numpy())
        np.testing.assert_allclose(np.diff(basket[etf].to_numpy()), expected, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(basket[f"premium:{etf}"], basket[f"premium:{premium_owner(etf)}"])
    # the premia have their own stream: stocks and the ETFs built without our stocks are unchanged
    unchanged = [s for s in U.SYMBOLS if s not in covered_etfs() and s not in ("TQQQ", "SQQQ", "SOXL")]
    pd.testing.assert_frame_equal(truth["factor"][unchanged], basket[unchanged])
    assert not np.allclose(truth["factor"]["TQQQ"], basket["TQQQ"])  # a multiple of the new QQQ

    # a normal day prices its baskets the same way, from the (seed, date) premium streams
    paths, _ = normal_paths(SyntheticDayConfig(day_kind="normal", trading_date="2024-10-08",
                                               etf_baskets="constituents", **EQUITIES_ONLY))
    for etf in covered_etfs():
        nav_path = sum(w * paths.log_price[paths.row(s)] for s, w in nav_weights(etf).items())
        np.testing.assert_allclose(np.diff(paths.log_price[paths.row(etf)]),
                                   np.diff(nav_path + paths.basket_premia[etf]), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- (a) the efficient gap


def test_efficient_etf_minus_nav_is_stationary_only_with_covered_baskets(days):
    """With covered baskets ETF - NAV is the premium: its variance over the two hours is the
    premium's stationary variance (sampling error ~15 % per premium, ~6 % pooled over the eight
    independent ones) and its mean squared change no longer grows with the horizon; in the
    default mode it grows like a random walk's (x 10 from 60 s to 600 s)."""
    designed = PREMIUM_SD ** 2
    variances, growth = [], {}
    for mode in MODES:
        truth = efficient_truth(days[mode])
        for etf in covered_etfs():
            gap = truth[etf].to_numpy() - nav(truth, etf)
            growth[mode, etf] = variogram(gap, 600) / variogram(gap, 60)
            if mode == "constituents" and premium_owner(etf) == etf:
                assert np.var(gap) < 1.6 * designed, etf
                variances.append(np.var(gap))
    assert 0.8 * designed < np.mean(variances) < 1.2 * designed
    for etf in covered_etfs():
        # premium: (1 - phi^600) / (1 - phi^60) = 1.33; random walk: 10
        assert growth["constituents", etf] < 2.0, (etf, growth["constituents", etf])
        assert growth["factor", etf] > 5.0, (etf, growth["factor", etf])


# --------------------------------------------------------------------------- (b), (c) on the quotes


def test_trace_test_finds_one_common_trend_on_the_quotes(measured):
    coint = {(m, e): float(np.mean(ranks == 1)) for m in MODES for e, (ranks, _) in measured[m].items()}
    for etf in ("SPY", "QQQ", "IVV", "VOO", "SMH"):
        assert coint["constituents", etf] >= 0.9, (etf, coint["constituents", etf])
        assert coint["factor", etf] <= coint["constituents", etf] - 0.3, (etf, coint["factor", etf])
    for etf, (ranks, _) in measured["constituents"].items():
        # the windows that miss rank 1 find rank 2 (the common trend looks stationary), never rank 0
        assert np.all(ranks >= 1), etf


def test_etfs_faster_than_their_whole_basket_lead_their_nav(measured):
    """The ETF has the larger Hasbrouck midpoint where its quotes adjust faster than every
    constituent's (SPY, QQQ, XLF, XLE, XLU). Where some constituent adjusts as fast (IVV, VOO,
    SMH, DIA) or faster (VUG), the NAV leads: it averages 10-27 quote updates a second against
    the ETF's 0.65-1.6, so its 1 s mid is fresher (docs/leadership.md, "ETF vs NAV")."""
    assert FASTER_THAN_BASKET == ("SPY", "QQQ", "XLF", "XLE", "XLU")
    for etf, (_, etf_share) in measured["constituents"].items():
        first = float(np.mean(etf_share > 0.5))
        if etf in FASTER_THAN_BASKET:
            assert first >= 0.9 and np.mean(etf_share) > 0.52, (etf, first, np.mean(etf_share))
        else:
            assert first <= 0.1, (etf, first)


def test_replay_graph_reports_the_covered_groups_cointegrated_with_the_designed_leaders(days, tmp_path):
    """The replay graph's ``price_discovery`` stream on the control day (bars, which give the
    graph its 1 s NBBO sample, and leadership; no Kalshi filter, which must not stop the equity
    groups): its own windows agree with the library measurement above."""
    from elecflow.config import ReplayConfig
    from elecflow.graphs.run import resolve_sources, run_replay

    cfg = ReplayConfig(mode="sim", data=days["constituents"], out=tmp_path / "out", progress=False,
                       features=True, upmove=False, options=False, kalshi_filter=False, factors=False,
                       impact=False)
    run_replay(cfg, resolve_sources(cfg, log=lambda *a: None), log=lambda *a: None)
    shares = pq.read_table(tmp_path / "out" / "price_discovery").to_pandas()
    windows = shares[(shares.scope == "window") & (shares.regime == "regular") & (shares.regime_fraction == 1.0)]
    for etf in ("SPY", "QQQ", "XLF", "IVV", "SMH"):
        rows = windows[windows.group == f"{etf}_nav"]
        etf_rows = rows[rows.member == etf]
        assert len(etf_rows) >= 300, (etf, len(etf_rows))  # 10 s publications over the pure windows
        assert (etf_rows.coint_rank == 1).mean() >= 0.85, (etf, (etf_rows.coint_rank == 1).mean())
        leads = (etf_rows.is_mid > 0.5).mean()
        if etf in FASTER_THAN_BASKET:
            assert leads >= 0.9, (etf, leads)
        else:
            assert leads <= 0.1, (etf, leads)


# --------------------------------------------------------------------------- the measured table


def measure(start: str, end: str) -> None:
    """Print cointegration rate and the ETF's IS midpoint / share of windows it ranks first, per
    covered ETF and mode, over ``[start, end)`` New York time (regular session)."""
    with tempfile.TemporaryDirectory() as tmp:
        mids = {m: quoted_log_mids(write_day(m, Path(tmp) / m, start, end)) for m in MODES}
    print(f"{start}-{end} New York, windows of {GRAPH.window_seconds} s every {GRAPH.publish_seconds:g} s")
    print("ETF   " + "  ".join(f"{m}: coint  IS mid  first" for m in MODES))
    for etf in covered_etfs():
        cells = []
        for m in MODES:
            ranks, share = rolling_rank_and_etf_share(mids[m], etf)
            cells.append(f"{m}: {np.mean(ranks == 1):5.3f}  {np.mean(share):6.3f}  {np.mean(share > 0.5):5.3f}")
        print(f"{etf:5s} " + "  ".join(cells) + f"   ({ranks.size} windows)")


if __name__ == "__main__":
    measure(*(sys.argv[1:3] if len(sys.argv) >= 3 else ("09:30", "16:00")))
