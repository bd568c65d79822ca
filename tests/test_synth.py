"""The synthetic Election Day: determinism, martingale, ETF identities, option prices,
defects that break exactly one rule, and files that match the manifest."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import integrate

from elecflow import universe as U
from elecflow.calendar import NS_PER_SECOND, ny_datetime_to_utc, utc_ns
from elecflow.synth import options as O
from elecflow.synth.config import SyntheticDayConfig
from elecflow.synth.day import EQUITY_CLOSE_NS, EQUITY_OPEN_NS, REBALANCE_NS, probability_path
from elecflow.synth.equities import simulate_efficient_prices
from elecflow.synth.probability import FULL_START_NS, RESOLUTION_NS, ClockSpec, second_grid, simulate_probability
from elecflow.synth.rng import stream

from elecflow.adapters.synthetic import write_synthetic_day

SMALL = dict(start_et="09:30", end_et="09:45", option_underlyings=["SPY", "DJT"], defects_per_kind=3,
             kalshi_expected_trades=60_000)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_day(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    manifest = write_synthetic_day(SyntheticDayConfig(seed=7, **SMALL), out, progress=False)
    return out, manifest


def _quotes(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "polygon/us_stocks_sip/quotes_v1/2024/11/2024-11-05.csv.gz", keep_default_na=False,
                       na_values={"bid_price": ["nan"], "ask_price": ["nan"]})


def _trades(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "polygon/us_stocks_sip/trades_v1/2024/11/2024-11-05.csv.gz",
                       dtype={"conditions": str}, keep_default_na=False)


def _defect_rows(manifest: dict, path_part: str) -> dict[int, str]:
    return {d["row"]: d["reason"] for d in manifest["defect_rows"] if path_part in d["path"]}


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path, small_day):
    out, _ = small_day
    again = tmp_path / "again"
    write_synthetic_day(SyntheticDayConfig(seed=7, **SMALL), again, progress=False)
    first, second = _hashes(out), _hashes(again)
    assert first == second
    other = tmp_path / "other"
    write_synthetic_day(SyntheticDayConfig(seed=8, **SMALL), other, progress=False)
    third = _hashes(other)
    assert set(third) == set(first)
    changed = [p for p in first if p != "manifest.json" and first[p] != third[p]]
    assert len(changed) == len(first) - 1  # every data and truth file differs


def test_option_knob_does_not_change_the_equity_path(tmp_path, small_day):
    out, _ = small_day
    cfg = SyntheticDayConfig(seed=7, **{**SMALL, "option_underlyings": ["TLT"]})
    alt = tmp_path / "alt"
    write_synthetic_day(cfg, alt, progress=False)
    a, b = _hashes(out), _hashes(alt)
    for rel in ("polygon/us_stocks_sip/quotes_v1/2024/11/2024-11-05.csv.gz",
                "polygon/us_stocks_sip/trades_v1/2024/11/2024-11-05.csv.gz", "nbbo_1s/2024-11-05.parquet",
                "ground_truth/efficient_prices.parquet", "ground_truth/probability.parquet",
                "kalshi/trade_data_2024-11-05.json"):
        assert a[rel] == b[rel], rel


# --------------------------------------------------------------------------- probability


def test_probability_is_a_martingale_in_distribution():
    spec = ClockSpec()
    grid = second_grid(FULL_START_NS, RESOLUTION_NS, step_s=300)
    k_mid = (utc_ns(ny_datetime_to_utc(dt.datetime(2024, 11, 5, 21, 0))) - FULL_START_NS) // (300 * NS_PER_SECOND)
    for p0 in (0.58, 0.2):
        finals, mids = [], []
        for seed in range(2500):
            path = simulate_probability(spec, grid, p0, stream(seed, "probability_diffusion"),
                                        stream(seed, "probability_jumps"))
            assert np.all((path.p > 0) & (path.p < 1))
            finals.append(path.p[-1])
            mids.append(path.p[k_mid])
        for values in (np.array(finals), np.array(mids)):
            se = values.std(ddof=1) / np.sqrt(values.size)
            assert abs(values.mean() - p0) < 4 * se, (p0, values.mean(), se)
        # by 06:00 ET most of the information is out: the path is near 0 or 1
        assert np.mean((np.array(finals) < 0.1) | (np.array(finals) > 0.9)) > 0.6


def test_probability_state_identities_and_news_jumps():
    cfg = SyntheticDayConfig()
    path = probability_path(cfg)
    assert path.p[0] == pytest.approx(0.58)
    np.testing.assert_allclose(path.probit, path.z / np.sqrt(path.remaining))
    assert np.all(np.diff(path.clock) >= 0)
    assert path.remaining[-1] == pytest.approx(cfg.info_terminal_share)
    jumps = sum(n["variance"] for n in path.news)
    assert jumps == pytest.approx(cfg.info_jump_share)
    # the default seed resolves toward Trump, as on the night
    assert path.p[-1] > 0.9


# --------------------------------------------------------------------------- ETFs


@pytest.fixture(scope="module")
def efficient():
    grid = second_grid(EQUITY_OPEN_NS, EQUITY_CLOSE_NS)
    p = 0.58 + np.cumsum(np.r_[0.0, 2e-4 * np.random.default_rng(1).standard_normal(grid.size - 1)])
    return simulate_efficient_prices(grid, np.clip(p, 0.01, 0.99), REBALANCE_NS, stream(3, "efficient_prices"))


def test_leveraged_etfs_are_daily_reset_multiples_of_their_index(efficient):
    rb = efficient.rebalance_index
    assert efficient.time_ns[rb] == REBALANCE_NS
    for lev, index, mult in (("TQQQ", "QQQ", 3.0), ("SQQQ", "QQQ", -3.0), ("SOXL", "SMH", 3.0)):
        s_l = np.exp(efficient.log_price[efficient.row(lev)])
        s_i = np.exp(efficient.log_price[efficient.row(index)])
        for a, b in ((0, rb + 1), (rb, s_l.size)):  # before and after the 16:00 reset
            ref = a
            np.testing.assert_allclose(s_l[a:b] / s_l[ref] - 1, mult * (s_i[a:b] / s_i[ref] - 1), atol=1e-12)
        r_l = np.diff(np.log(s_l))
        r_i = np.diff(np.log(s_i))
        slope = np.dot(r_l, r_i) / np.dot(r_i, r_i)
        assert slope == pytest.approx(mult, rel=0.05)
        assert np.max(np.abs(r_l - mult * r_i)) < 0.1 * np.max(np.abs(mult * r_i))


def test_basket_etfs_match_their_constituents_and_factors(efficient):
    f_row = {f: i for i, f in enumerate(efficient.factors)}
    d_f = np.diff(efficient.factor_log, axis=1)
    for etf in U.ETFS:
        inst = U.INSTRUMENTS[etf]
        if inst.leverage:
            continue
        expect = sum(w * d_f[f_row[f]] for f, w in inst.factor_loadings.items())
        expect = expect + sum(w * np.diff(efficient.log_price[efficient.row(j)])
                              for j, w in inst.constituent_weights.items())
        np.testing.assert_allclose(np.diff(efficient.log_price[efficient.row(etf)]), expect, atol=1e-13)
    # identical baskets track each other exactly
    np.testing.assert_allclose(np.diff(efficient.log_price[efficient.row("SPY")]),
                               np.diff(efficient.log_price[efficient.row("VOO")]), atol=1e-15)


def test_quoted_targets_adjust_with_their_half_life(efficient):
    x = efficient.log_price[efficient.row("SHW")]
    m = efficient.log_target[efficient.row("SHW")]
    a = 1 - 2 ** (-1 / U.INSTRUMENTS["SHW"].half_life)
    np.testing.assert_allclose(m[1:], m[:-1] + a * (x[1:] - m[:-1]), atol=1e-12)
    leaders = U.designed_leaders()
    assert leaders[:2] == ["SPY", "QQQ"] and leaders[-1] == "SHW"


# --------------------------------------------------------------------------- options


def test_mixture_prices_equal_numerical_integration_and_parity():
    F, T, r = 500.0, 10 / 365, 0.0483
    df = np.exp(-r * T)
    for q, gamma, s_t, s_h in ((0.58, 0.06, 0.15, 0.2), (0.3, 0.64, 1.2, 1.5), (0.9, -0.07, 0.12, 0.1)):
        m_t, m_h = O.state_means(F, q, gamma)
        assert q * m_t + (1 - q) * m_h == pytest.approx(F, rel=1e-14)

        def dens(s):
            return O.mixture_density(s, T, q, m_t, s_t, m_h, s_h)

        # support: 14 standard deviations of either lognormal around its mean
        lo = min(m * np.exp(-14 * sig * np.sqrt(T)) for m, sig in ((m_t, s_t), (m_h, s_h)))
        hi = max(m * np.exp(14 * sig * np.sqrt(T)) for m, sig in ((m_t, s_t), (m_h, s_h)))

        def quad(f, a, b):
            a, b = max(a, lo), min(b, hi)
            if a >= b:
                return 0.0
            pts = [x for x in (m_h, m_t, F) if a < x < b]
            return integrate.quad(f, a, b, points=pts or None, limit=500, epsabs=1e-12, epsrel=1e-12)[0]

        total = quad(dens, 0, np.inf)
        mean = quad(lambda s: s * dens(s), 0, np.inf)
        assert total == pytest.approx(1.0, abs=1e-8)
        assert mean == pytest.approx(F, rel=1e-8)
        for K in (0.6 * F, 0.95 * F, F, 1.07 * F, 1.5 * F):
            call = O.mixture_price(K, T, df, q, m_t, s_t, m_h, s_h, True)
            put = O.mixture_price(K, T, df, q, m_t, s_t, m_h, s_h, False)
            c_num = df * quad(lambda s: (s - K) * dens(s), K, np.inf)
            p_num = df * quad(lambda s: (K - s) * dens(s), 0, K)
            assert call == pytest.approx(c_num, abs=1e-7 * F)
            assert put == pytest.approx(p_num, abs=1e-7 * F)
            assert call - put == pytest.approx(df * (F - K), abs=1e-9 * F)


def test_option_quotes_bracket_the_mixture_price(small_day):
    out, manifest = small_day
    truth = pq.read_table(out / "ground_truth/options_truth.parquet").to_pandas()
    raw = pd.read_csv(out / "thetadata/SPY_20241115_20241105.csv")
    bad = _defect_rows(manifest, "SPY_2024")
    clean = raw.drop(index=list(bad))
    assert list(raw.columns) == ["root", "exp", "strike", "right", "date", "ms_of_day", "bid_size", "bid_exchange",
                                 "bid", "bid_condition", "ask_size", "ask_exchange", "ask", "ask_condition"]
    key = clean[["strike", "right", "ms_of_day"]].to_numpy()
    order = np.lexsort((key[:, 2], key[:, 1], key[:, 0]))
    assert np.all(order == np.arange(order.size))  # sorted by strike, right, ms_of_day
    tr = truth[truth.underlying == "SPY"].copy()
    midnight = utc_ns(dt.datetime(2024, 11, 5, 5, 0))
    tr["ms_of_day"] = (tr.time.astype("int64") - midnight) // 1_000_000
    rows = clean.merge(tr, on="ms_of_day")
    theo = O.mixture_price(rows.strike / 1000.0, rows["T"], rows.discount_factor, rows.q, rows.mean_trump,
                           rows.sigma_trump, rows.mean_harris, rows.sigma_harris, rows.right == "C")
    assert np.all(rows.ask >= theo - 1e-9)
    assert np.all((rows.bid <= theo + 1e-9) | (rows.bid == 0))
    assert np.all(rows.bid <= rows.ask)
    assert (rows.bid == 0).any()  # far out of the money
    spread = rows.ask - rows.bid
    k = np.abs(np.log(rows.strike / 1000.0 / rows.forward))
    assert spread[k > 0.1].mean() > spread[k < 0.01].mean()


def test_wing_strikes_hold_the_risk_neutral_mass():
    """The listed strikes (dense core + wings out to the election jump + 4 state sds) span
    all but a sliver of each chain's true mass at the open, for the volatile names too; the
    index ETFs' core listing is what it was (no wings needed)."""
    cfg = SyntheticDayConfig()
    T, q = 10.27 / 365, 0.58
    for sym in cfg.option_underlyings:
        spot = U.get(sym).ref_price
        K = O.listed_strikes(sym, T, cfg.option_strike_range, cfg.option_strike_sds)
        m_t, m_h = O.state_means(spot, q, U.effective_election_loadings()[sym])
        s_t, s_h = O.state_vols(sym)
        dens = lambda s: O.mixture_density(s, T, q, m_t, s_t, m_h, s_h)  # noqa: E731
        inside = integrate.quad(dens, K.min(), K.max(), limit=200)[0]
        assert inside > 0.995, (sym, inside)
        assert np.all(np.diff(K) > 0) and K.min() > 0
    assert np.array_equal(O.listed_strikes("SPY", T, 0.25, 4.0), O.strike_grid("SPY", U.get("SPY").ref_price, 0.25))
    djt = O.listed_strikes("DJT", T, 0.25, 4.0)
    assert djt.size > O.strike_grid("DJT", U.get("DJT").ref_price, 0.25).size
    wing = djt[djt > 1.25 * U.get("DJT").ref_price]
    gaps = np.diff(wing) / wing[:-1]
    assert gaps.min() >= 0.04 and gaps.max() <= 0.1  # sparse: about 5 % of the strike apart


def test_staggered_quotes_are_priced_at_their_own_instant(tmp_path):
    """``option_quote_spread_seconds > 0``: each strike's call and put share one phase in
    [0, spread) after every snapshot, and are priced at that instant (spot and probability
    then), so they bracket the mixture price of their own time, not the snapshot's."""
    out = tmp_path / "day"
    write_synthetic_day(SyntheticDayConfig(start_et="09:30", end_et="09:36", option_underlyings=["SPY", "DJT"],
                                           option_quote_spread_seconds=20), out, progress=False)
    truth = pq.read_table(out / "ground_truth/options_truth.parquet").to_pandas()
    for sym in ("SPY", "DJT"):
        raw = pd.read_csv(next((out / "thetadata").glob(f"{sym}_*.csv")))
        raw = raw[(raw.bid_size >= 0) & (raw.bid <= raw.ask)]  # the injected defects
        snap_ms = (truth[truth.underlying == sym].time.astype("int64").to_numpy() - utc_ns(
            dt.datetime(2024, 11, 5, 5, 0))) // 1_000_000
        phase = raw.ms_of_day.to_numpy() - snap_ms[np.searchsorted(snap_ms, raw.ms_of_day.to_numpy(), "right") - 1]
        assert phase.min() >= 0 and phase.max() < 20_000
        per_strike = pd.Series(phase).groupby(raw.strike.to_numpy()).nunique()
        assert per_strike.max() == 1  # one phase per strike, shared by its call and put
        assert pd.Series(phase).nunique() > 10  # and strikes differ
        assert raw.groupby(["strike", "ms_of_day"]).right.nunique().min() == 2  # synchronous parity pairs
    # priced at the quote's own instant: the mixture price from the spot and probability then
    from elecflow.synth.day import generate_day
    day = generate_day(SyntheticDayConfig(start_et="09:30", end_et="09:36", option_underlyings=["DJT"],
                                          option_quote_spread_seconds=20))
    ch = day.chains["DJT"]
    t = ch.time_ns
    spot = np.exp(day.paths.log_price[day.paths.row("DJT"), (t - day.paths.time_ns[0]) // NS_PER_SECOND])
    T = (ch.snap_ns[0] + (ch.T[0] * 365 * 86400 * NS_PER_SECOND) - t) / (365 * 86400 * NS_PER_SECOND)
    F = spot * np.exp((ch.rate - ch.dividend_yield) * T)
    q = day.probability.at(t)
    m_t, m_h = O.state_means(F, q, ch.gamma)
    own = O.mixture_price(ch.strike_milli / 1000.0, T, np.exp(-ch.rate * T), q, m_t, ch.sigma_trump, m_h,
                          ch.sigma_harris, ch.is_call)
    np.testing.assert_allclose(ch.theo, np.maximum(own, 0.0), rtol=1e-9, atol=1e-12)
    at_snapshot = np.interp(t, ch.snap_ns, ch.spot, period=None)  # the spot at the snapshot before
    assert np.mean(np.abs(spot / at_snapshot - 1) > 0) > 0.5  # the instants really differ
    assert np.all(ch.ask / O.PX >= ch.theo - 1e-9) and np.all((ch.bid / O.PX <= ch.theo + 1e-9) | (ch.bid == 0))


# --------------------------------------------------------------------------- files and defects


def _quote_rules(q: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every rule evaluated on every row (not first-failure), against the previous clean row."""
    rules = {
        "nan_price": (q.bid_price.isna() | q.ask_price.isna()).to_numpy(),
        "nonpositive_price": ((q.bid_price <= 0) | (q.ask_price <= 0)).to_numpy(),
        "negative_size": ((q.bid_size < 0) | (q.ask_size < 0)).to_numpy(),
        "crossed_quote": (q.bid_price > q.ask_price).to_numpy(),
    }
    rules.update(_ordering_rules(q, "ticker", "sip_timestamp", np.any(list(rules.values()), axis=0)))
    return rules


def _ordering_rules(df: pd.DataFrame, key: str, time: str, stateless_bad: np.ndarray) -> dict[str, np.ndarray]:
    n = len(df)
    dup, ooo = np.zeros(n, bool), np.zeros(n, bool)
    last: dict = {}
    values = df.to_numpy()
    keys, times = df[key].to_numpy(), df[time].to_numpy()
    for i in range(n):
        if stateless_bad[i]:
            continue
        prev = last.get(keys[i])
        if prev is not None:
            ooo[i] = times[i] < prev[1]
            dup[i] = all((a == b) or (a != a and b != b) for a, b in zip(values[i], prev[0]))
        if not ooo[i] and not dup[i]:
            last[keys[i]] = (values[i], times[i])
    return {"duplicate": dup, "out_of_order": ooo}


def _check_exactly_one_rule(rules: dict[str, np.ndarray], expected: dict[int, str]) -> None:
    hits = np.sum(list(rules.values()), axis=0)
    flagged = set(np.flatnonzero(hits).tolist())
    assert flagged == set(expected), (sorted(flagged - set(expected))[:5], sorted(set(expected) - flagged)[:5])
    for row, reason in expected.items():
        assert hits[row] == 1 and rules[reason][row], (row, reason, {k: bool(v[row]) for k, v in rules.items()})


def test_quote_defects_each_break_exactly_their_rule(small_day):
    out, manifest = small_day
    q = _quotes(out)
    expected = _defect_rows(manifest, "quotes_v1")
    assert sorted(manifest["defects"]["quotes"].values()) == [3] * 6
    _check_exactly_one_rule(_quote_rules(q), expected)
    # never crossed apart from the injected rows
    crossed = set(np.flatnonzero((q.bid_price > q.ask_price).to_numpy()).tolist())
    assert crossed == {r for r, why in expected.items() if why == "crossed_quote"}
    # duplicates sit right after their original; out-of-order rows are earlier than the row before
    for row, why in expected.items():
        if why == "duplicate":
            assert q.iloc[row].equals(q.iloc[row - 1])
        if why == "out_of_order":
            assert q.sip_timestamp[row] < q.sip_timestamp[row - 1] and q.ticker[row] == q.ticker[row - 1]


def test_trade_defects_each_break_exactly_their_rule(small_day):
    out, manifest = small_day
    t = _trades(out)
    expected = _defect_rows(manifest, "trades_v1")
    known = {"", "12", "14", "37", "41"}
    unknown = np.array([not set(c.split(",")) <= known for c in t.conditions])
    rules = {"nonpositive_price": (t.price <= 0).to_numpy(), "negative_size": (t["size"] < 0).to_numpy(),
             "unknown_condition": unknown}
    rules.update(_ordering_rules(t, "ticker", "sip_timestamp", np.any(list(rules.values()), axis=0)))
    _check_exactly_one_rule(rules, expected)
    clean = t.drop(index=list(expected))
    assert not clean.duplicated(["ticker", "id"]).any()


def test_option_and_kalshi_defects_each_break_exactly_their_rule(small_day):
    out, manifest = small_day
    for root in ("SPY", "DJT"):
        o = pd.read_csv(out / f"thetadata/{root}_20241115_20241105.csv")
        rules = {"option_bid_above_ask": (o.bid > o.ask).to_numpy(),
                 "negative_size": ((o.bid_size < 0) | (o.ask_size < 0)).to_numpy()}
        _check_exactly_one_rule(rules, _defect_rows(manifest, f"{root}_2024"))
    assert manifest["defects"]["option_quotes"] == {"option_bid_above_ask": 3, "negative_size": 3}
    recs = json.loads((out / "kalshi/trade_data_2024-11-05.json").read_text())
    malformed = np.array([not isinstance(r.get("price"), int) for r in recs])
    out_of_range = np.array([isinstance(r.get("price"), int) and not 1 <= r["price"] <= 99 for r in recs])
    _check_exactly_one_rule({"malformed_record": malformed, "price_out_of_range": out_of_range},
                            _defect_rows(manifest, "kalshi/"))


def test_manifest_counts_equal_rows_in_files(small_day):
    out, manifest = small_day
    for f in manifest["files"]:
        path = out / f["path"]
        if f["format"] in ("polygon_quotes", "polygon_trades"):
            with gzip.open(path, "rt") as fh:
                n = sum(1 for _ in fh) - 1
        elif f["format"] in ("thetadata_raw", "thetadata_trades"):
            n = sum(1 for _ in path.open()) - 1
        elif f["format"] in ("nbbo_1s", "thetadata_formatted"):
            n = pq.read_metadata(path).num_rows
        elif f["format"] == "kalshi_daily_report":
            n = len(json.loads(path.read_text()))
        else:
            n = len(json.loads(path.read_text())["trades"])
        assert n == f["rows"], f
    streams = {"polygon_quotes": "quotes", "polygon_trades": "trades", "nbbo_1s": "nbbo_1s",
               "thetadata_raw": "option_quotes", "kalshi_daily_report": "kalshi_trades",
               "thetadata_trades": "option_trades"}
    for fmt, s in streams.items():
        rows = sum(f["rows"] for f in manifest["files"] if f["format"] == fmt)
        assert rows == manifest["clean_rows"][s] + sum(manifest["defects"][s].values()), s
    truth = pq.read_metadata(out / "ground_truth/trades_truth.parquet").num_rows
    assert truth == manifest["clean_rows"]["trades"]
    params = json.loads((out / "ground_truth/params.json").read_text())
    # the manifest's clean rows add the simulated informed option market's (XLF by default), which
    # params.json, the generator's record of the 40 instruments' day, leaves out
    informed = {s: sum(m[s] for m in manifest["impact_markets"].values()) for s in ("option_quotes", "option_trades")}
    assert manifest["clean_rows"]["option_trades"] == informed["option_trades"] > 0
    assert params["clean_rows"] == {s: n - informed.get(s, 0) for s, n in manifest["clean_rows"].items()
                                    if s != "option_trades"}


def test_polygon_files_are_sorted_and_well_formed(small_day):
    out, manifest = small_day
    with gzip.open(out / "polygon/us_stocks_sip/quotes_v1/2024/11/2024-11-05.csv.gz", "rt") as fh:
        header = fh.readline().strip()
    assert header == ("ticker,ask_exchange,ask_price,ask_size,bid_exchange,bid_price,bid_size,conditions,indicators,"
                      "participant_timestamp,sequence_number,sip_timestamp,tape,trf_timestamp")
    q = _quotes(out)
    clean = q.drop(index=list(_defect_rows(manifest, "quotes_v1")))
    assert clean.ticker.is_monotonic_increasing
    assert (clean.groupby("ticker").sip_timestamp.diff().dropna() > 0).all()
    assert (clean.participant_timestamp < clean.sip_timestamp).all()
    assert set(clean.tape) <= {1, 2, 3}
    assert np.allclose(np.round(clean.bid_price * 100), clean.bid_price * 100)  # penny ticks
    t = _trades(out)
    assert list(t.columns) == ["ticker", "conditions", "correction", "exchange", "id", "participant_timestamp",
                               "price", "sequence_number", "sip_timestamp", "size", "tape", "trf_id",
                               "trf_timestamp"]
    with gzip.open(out / "polygon/us_stocks_sip/trades_v1/2024/11/2024-11-05.csv.gz", "rt") as fh:
        text = fh.read()
    assert '"14,41"' in text or '"14,37,41"' in text  # multi-id lists are quoted
    assert all(len(s.split(".")[1]) <= 4 for s in re.findall(r",(\d+\.\d+),", text[:200_000]))
    # trade ids unique per ticker; odd lots carry 37; regular-hours window: no Form T
    clean_t = t.drop(index=list(_defect_rows(manifest, "trades_v1")))
    has = clean_t.conditions.str.split(",")
    assert ((clean_t["size"] < 100) == has.apply(lambda c: "37" in c)).all()
    assert not has.apply(lambda c: "12" in c).any()


def test_trades_are_signed_against_the_prevailing_quote(small_day):
    out, manifest = small_day
    q = _quotes(out).drop(index=list(_defect_rows(manifest, "quotes_v1")))
    truth = pq.read_table(out / "ground_truth/trades_truth.parquet").to_pandas()
    truth["sip_timestamp"] = truth.sip_timestamp.astype("int64")
    for sym in ("SPY", "DJT", "SHW"):
        qs = q[q.ticker == sym]
        ts = truth[truth.symbol == sym]
        i = np.searchsorted(qs.sip_timestamp.to_numpy(), ts.sip_timestamp.to_numpy(), side="left") - 1
        bid, ask = qs.bid_price.to_numpy()[i], qs.ask_price.to_numpy()[i]
        price, side, loc = ts.price.to_numpy(), ts.true_side.to_numpy(), ts.location.to_numpy()
        touch = loc == "touch"
        assert np.allclose(price[touch], np.where(side[touch] > 0, ask[touch], bid[touch]))
        mid = loc == "mid"
        assert np.allclose(price[mid], (bid[mid] + ask[mid]) / 2)
        inside = loc == "inside"
        assert np.all((price[inside] - (bid[inside] + ask[inside]) / 2) * side[inside] > 0)
        assert np.all((price[inside] > bid[inside]) & (price[inside] < ask[inside]))


def test_iso_is_more_frequent_on_informed_flow(small_day):
    out, manifest = small_day
    truth = pq.read_table(out / "ground_truth/trades_truth.parquet").to_pandas()
    iso_informed = truth[truth.informed].is_iso.mean()
    iso_uninformed = truth[~truth.informed].is_iso.mean()
    assert iso_informed > 3 * iso_uninformed
    t = _trades(out).drop(index=list(_defect_rows(manifest, "trades_v1")))
    merged = t.assign(trade_id=t["id"].astype(str)).merge(truth, left_on=["ticker", "trade_id"],
                                                          right_on=["symbol", "trade_id"])
    assert len(merged) == len(truth)
    assert (merged.conditions.str.split(",").apply(lambda c: "14" in c) == merged.is_iso).all()


def test_nbbo_1s_is_the_last_clean_quote_of_each_second(small_day):
    out, manifest = small_day
    q = _quotes(out).drop(index=list(_defect_rows(manifest, "quotes_v1")))
    q["T"] = (q.sip_timestamp // NS_PER_SECOND + 1) * NS_PER_SECOND
    expect = q.groupby(["T", "ticker"], sort=True).last().reset_index()
    nbbo = pq.read_table(out / "nbbo_1s/2024-11-05.parquet").to_pandas()
    assert [str(t) for t in pq.read_schema(out / "nbbo_1s/2024-11-05.parquet").types] == [
        "string", "timestamp[ns, tz=UTC]", "double", "double"]
    assert len(nbbo) == len(expect)
    np.testing.assert_array_equal(nbbo.timestamp.astype("int64").to_numpy(), expect["T"].to_numpy())
    np.testing.assert_array_equal(nbbo.symbol.to_numpy(), expect.ticker.to_numpy())
    np.testing.assert_array_equal(nbbo.bid_price.to_numpy(), expect.bid_price.to_numpy())
    np.testing.assert_array_equal(nbbo.ask_price.to_numpy(), expect.ask_price.to_numpy())


def test_kalshi_fills_bounce_around_the_true_probability(small_day):
    out, manifest = small_day
    recs = json.loads((out / "kalshi/trade_data_2024-11-05.json").read_text())
    bad = _defect_rows(manifest, "kalshi/")
    clean = [r for i, r in enumerate(recs) if i not in bad]
    stamps = [r["create_ts"] for r in recs]
    assert stamps == sorted(stamps)
    assert all(re.fullmatch(r"2024-11-05T\d\d:\d\d:\d\d\.\d{6}Z", s) for s in stamps)
    assert all(1 <= r["price"] <= 99 for r in clean)
    truth = pq.read_table(out / "ground_truth/kalshi_truth.parquet").to_pandas()
    assert len(truth) == len(clean) == manifest["clean_rows"]["kalshi_trades"]
    djt = truth[truth.contract == "PRES-2024-DJT"]
    bounce = djt.price - np.clip(np.rint(100 * djt.true_p), 2, 98)
    assert set(bounce) <= {-1, 1}
    assert ((bounce > 0) == (djt.taker_side == "yes")).all()
    kh = truth[truth.contract == "PRES-2024-KH"]
    other = SyntheticDayConfig().kalshi_other_outcomes
    kh_bounce = kh.price - np.clip(np.rint(100 * (1 - kh.true_p - other)), 2, 98)
    assert set(kh_bounce) <= {-1, 1}
    assert ((kh_bounce > 0) == (kh.taker_side == "yes")).all()


def test_formatted_options_and_kalshi_rest_variants(tmp_path):
    # without the informed option market: its quotes would be a second thetadata_formatted file
    cfg = SyntheticDayConfig(seed=3, start_et="15:58", end_et="16:00", option_underlyings=["TSLA"],
                             option_format="formatted", kalshi_format="rest", defects_per_kind=2,
                             write_ground_truth=False, impact_underlyings=[])
    manifest = write_synthetic_day(cfg, tmp_path, progress=False)
    formats = {f["format"]: f for f in manifest["files"]}
    assert "thetadata_formatted" in formats and "kalshi_rest" in formats
    assert formats["thetadata_formatted"]["path"] == "thetadata/TSLA_20241115_20241105.parquet"
    table = pq.read_table(tmp_path / formats["thetadata_formatted"]["path"])
    assert table.column_names == ["symbol", "timestamp", "underlying", "expiration", "strike", "right", "bid", "ask",
                                  "bid_size", "ask_size", "bid_exchange", "ask_exchange"]
    assert str(table.schema.field("timestamp").type) == "timestamp[ms]"
    assert str(table.schema.field("expiration").type) == "date32[day]"
    df = table.to_pandas()
    assert all(re.fullmatch(r"TSLA241115[CP]\d{8}", s) for s in df.symbol)
    assert df.timestamp.min() == pd.Timestamp("2024-11-05 15:58:00")
    k = df.iloc[0]
    assert k.symbol == f"TSLA241115{k.right}{int(round(k.strike * 1000)):08d}"
    doc = json.loads((tmp_path / "kalshi/trades_PRES-2024.json").read_text())
    assert doc["cursor"] == "" and len(doc["trades"]) == formats["kalshi_rest"]["rows"]
    good = [t for t in doc["trades"] if isinstance(t.get("yes_price"), int) and 1 <= t["yes_price"] <= 99]
    assert all(t["no_price"] == 100 - t["yes_price"] and t["taker_side"] in ("yes", "no") for t in good)
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", t["trade_id"])
               for t in doc["trades"])
    assert [t["created_time"] for t in doc["trades"]] == sorted(t["created_time"] for t in doc["trades"])
    assert not (tmp_path / "ground_truth").exists()
    # a second generation into the same folder removes the files only the first one wrote
    write_synthetic_day(cfg.model_copy(update={"option_format": "raw"}), tmp_path, progress=False)
    assert not (tmp_path / "thetadata/TSLA_20241115_20241105.parquet").exists()
    assert (tmp_path / "thetadata/TSLA_20241115_20241105.csv").exists()


def test_config_rejects_bad_knobs():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="extra"):
        SyntheticDayConfig(sede=1)
    with pytest.raises(ValidationError, match="start_et"):
        SyntheticDayConfig(start_et="10:00", end_et="09:00")
    with pytest.raises(ValidationError, match="not in the seed universe"):
        SyntheticDayConfig(option_underlyings=["SPY", "XYZ"])
    cfg = SyntheticDayConfig(start_et="20:00", end_et="06:00+1d")
    assert cfg.end_et == dt.datetime(2024, 11, 6, 6, 0)
    assert SyntheticDayConfig.model_validate_json(cfg.model_dump_json()) == cfg


@pytest.mark.slow
def test_full_default_day_fits_on_disk(tmp_path):
    manifest = write_synthetic_day(SyntheticDayConfig(), tmp_path, progress=False)
    size = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert size < 500e6
    assert 1.5e6 <= manifest["clean_rows"]["quotes"] <= 2.5e6
    assert 0.3e6 <= manifest["clean_rows"]["trades"] <= 0.6e6
    params = json.loads((tmp_path / "ground_truth/params.json").read_text())
    assert params["probability"]["p_at_window_end"] > 0.9
