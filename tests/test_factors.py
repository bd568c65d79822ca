"""Fama-French factors (issue 6): the weights format, factor returns, betas, the variance
decomposition, ETF replication -- each against an independent reference (numpy's least squares
and pseudo-inverse, explicit batch computations, the generator's ground truth) -- plus the
generator's universe, the csp nodes and the replay wiring. Model and figures: docs/factors.md."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import csp
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from elecflow import universe as U
from elecflow.adapters.factors import (
    baseline_dates,
    baseline_stats,
    day_factor_data,
    find_baseline_days,
    find_factor_universe,
    stage_universe,
)
from elecflow.adapters.synthetic import write_synthetic_day, write_training_days
from elecflow.adapters.vendors import VendorFileError, discover
from elecflow.config import ReplayConfig
from elecflow.factors import (
    FF_FACTORS,
    BaselineStats,
    FactorModel,
    FactorModelSettings,
    FactorReturnBuilder,
    FactorWeights,
    FactorWeightsError,
    IntervalAggregator,
    accumulate,
    dimson_regressors,
    ew_betas_batch,
    ex_ante_tracking_variance,
    factor_returns_batch,
    interval_returns_batch,
    min_norm_replication,
    realized_tracking_variance,
    regime_of,
    rolling_decomposition_batch,
)
from elecflow.factors.baseline import total_beta_standard_errors
from elecflow.graphs.dashboard import FactorChartState, factor_heatmap_row
from elecflow.graphs.factors import factor_returns
from elecflow.graphs.run import run_replay
from elecflow.schema import FactorDecomposition, FactorReturn, Nbbo1s
from elecflow.synth import factor_universe as FU
from elecflow.synth.config import SyntheticDayConfig
from elecflow.synth.rng import stream

S = 1_000_000_000
DAY0 = np.datetime64("2024-11-05T14:30:00", "ns").astype(np.int64)  # 09:30 New York


def _random_weights(rng, n=40) -> FactorWeights:
    tickers = [f"Q{i:03d}" for i in range(n)]
    cap = rng.lognormal(0, 1, n)
    obj = {"MKT-RF": dict(zip(tickers, cap / cap.sum()))}
    for f in FF_FACTORS[1:]:
        long_, short = rng.permutation(n)[: n // 3], rng.permutation(n)[: n // 3]
        w = np.zeros(n)
        w[long_] += 1.0 / long_.size
        w[short] -= 1.0 / short.size
        obj[f] = {tickers[i]: float(w[i]) for i in np.flatnonzero(w)}
    return FactorWeights.from_mapping(obj)


# --------------------------------------------------------------------------- weights


def test_weights_format_is_validated_with_clear_messages():
    rng = np.random.default_rng(1)
    w = _random_weights(rng)
    assert w.factors == FF_FACTORS and w.tickers == tuple(sorted(w.tickers))
    np.testing.assert_allclose(w.sums(), [1, 0, 0, 0, 0], atol=1e-12)
    good = {f: {t: float(w.matrix[k, i]) for i, t in enumerate(w.tickers) if w.matrix[k, i]}
            for k, f in enumerate(FF_FACTORS)}
    bad = [
        ([], "factor -> ticker -> weight"),
        ({k: v for k, v in good.items() if k != "CMA"}, "missing CMA"),
        ({**good, "MOM": {"A": 1.0}}, "unknown MOM"),
        ({**good, "SMB": {**good["SMB"], "Q000": math.nan}}, "not a finite number"),
        ({**good, "HML": {**good["HML"], "Q001": "0.1"}}, "not a finite number"),
        ({**good, "RMW": {}}, "non-empty"),
        # a long-only "factor" is a weighted average of levels in disguise: refused
        ({**good, "SMB": {t: abs(x) for t, x in good["SMB"].items()}}, "must sum to 0"),
        ({**good, "MKT-RF": {t: 2 * x for t, x in good["MKT-RF"].items()}}, "must sum to 1"),
    ]
    for obj, message in bad:
        with pytest.raises(FactorWeightsError, match=message):
            FactorWeights.from_mapping(obj)


def test_generated_universe_weights_are_fama_french_and_pure():
    design = FU.design_universe(300, stream(20241105, "factor_universe_design"))
    W = design.weights
    assert W.shape == (5, 300)
    # long-short weights sum to zero: a factor is a weighted sum of returns, never of levels
    np.testing.assert_allclose(W.sum(axis=1), [1, 0, 0, 0, 0], atol=1e-14)
    for k in range(1, 5):  # each leg sums to one
        np.testing.assert_allclose(W[k][W[k] > 0].sum(), 1.0, atol=1e-12)
    # the design: each vendor portfolio has unit exposure to its own latent factor, none to the others
    np.testing.assert_allclose(W @ design.loadings, np.eye(5), atol=1e-12)
    # breakpoints: size median, characteristics 30/70 percentiles
    assert (design.groups["size"] == "B").sum() == 150
    assert abs((design.groups["bm"] == "H").mean() - 0.3) < 0.01
    assert abs((design.groups["inv"] == "C").mean() - 0.3) < 0.01
    # the JSON form round-trips through the validating reader
    back = FactorWeights.from_mapping(json.loads(json.dumps(design.weights_json())))
    np.testing.assert_array_equal(back.matrix, W)
    assert back.tickers == design.tickers
    # the 40's true betas
    betas = FU.instrument_betas()
    # MKT-RF is the MKT factor and no other FF factor involves it: the market beta is the exposure
    assert betas["SPY"][0] == pytest.approx(U.shock_exposures()["SPY"]["MKT"], abs=1e-12)
    np.testing.assert_allclose(betas["TLT"], 0.0, atol=1e-12)  # rates are outside the FF span
    assert betas["IWM"][1] > 0.5 and betas["XOM"][2] > 0.5


# --------------------------------------------------------------------------- factor returns


def _random_rows(rng, w, seconds=400, start=DAY0):
    n = w.size
    price = 100 * np.exp(0.2 * rng.standard_normal(n))
    labels, idx, mids = [], [], []
    for s in range(1, seconds):
        q = np.flatnonzero(rng.random(n) < 0.7)
        if s % 11 == 0:
            q = np.concatenate([q, q[:2]])  # duplicate rows: the later one wins
        price *= np.exp(3e-4 * rng.standard_normal(n))
        for i in q:
            labels.append(start + s * S)
            idx.append(i)
            mids.append(price[i] * (1 + 1e-5 * rng.standard_normal()))
    return np.array(labels), np.array(idx), np.array(mids)


def test_streaming_factor_returns_equal_the_batch_and_a_direct_sum():
    rng = np.random.default_rng(2)
    w = _random_weights(rng)
    labels, idx, mids = _random_rows(rng, w)
    L, F, cov = factor_returns_batch(labels, idx, mids, w, 0.05)
    b = FactorReturnBuilder(w, 0.05)
    for k, lab in enumerate(L):
        sel = labels == lab
        f, c = b.step(lab, idx[sel], mids[sel])
        np.testing.assert_allclose(f, F[k], rtol=0, atol=1e-17)
        assert c == pytest.approx(cov[k], abs=1e-15)
    # direct: the dense mids (last row per stock and second wins), forward filled, returns, W r - rf dt
    M = np.full((L.size, w.size), np.nan)
    for lab, i, m in zip(labels, idx, mids):
        M[np.searchsorted(L, lab), i] = m
    filled = M.copy()
    for t in range(1, L.size):
        filled[t] = np.where(np.isnan(M[t]), filled[t - 1], M[t])
    R = np.nan_to_num(filled[1:] / filled[:-1] - 1.0)
    direct = R @ w.matrix.T - 0.05 * (1 / (365 * 86400)) * w.sums()
    np.testing.assert_allclose(F[1:], direct, atol=1e-16)
    with pytest.raises(ValueError, match="labels must increase"):
        b.step(L[-1], idx[:1], mids[:1])


def test_factor_returns_node_closes_each_second_after_all_its_rows():
    rng = np.random.default_rng(3)
    w = _random_weights(rng, 12)
    labels, idx, mids = _random_rows(rng, w, seconds=30)
    ticks = [(dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(t) // 1000),
              Nbbo1s(time=dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(t) // 1000), symbol=w.tickers[i],
                     bid_price=m - 0.005, ask_price=m + 0.005))
             for t, i, m in zip(labels, idx, mids)]
    ticks.append((ticks[-1][0], Nbbo1s(time=ticks[-1][0], symbol="NOT_IN_WEIGHTS", bid_price=1.0, ask_price=1.01)))
    start = ticks[0][0]
    out = csp.run(factor_returns, csp.curve(Nbbo1s, ticks), w, 0.0, starttime=start,
                  endtime=ticks[-1][0] + dt.timedelta(seconds=1))[0]
    L, F, _ = factor_returns_batch(labels, idx, 0.5 * ((mids - 0.005) + (mids + 0.005)), w, 0.0)
    assert [t for t, _ in out] == [start + dt.timedelta(seconds=k, microseconds=1) for k in range(L.size)]
    got = np.array([[r[0].mkt_rf, r[0].smb, r[0].hml, r[0].rmw, r[0].cma] for _, r in out])
    np.testing.assert_allclose(got, F, atol=1e-17)
    assert out[-1][1][0].n_quotes == np.sum(labels == labels[-1])  # the stray ticker is not counted
    assert out[0][1][0].regime == "regular"


# --------------------------------------------------------------------------- intervals, betas, decomposition


def test_interval_aggregator_equals_the_batch_and_skips_empty_intervals():
    rng = np.random.default_rng(4)
    A, K, D = 5, 5, 60 * S
    f_labels = np.concatenate([DAY0 + np.arange(1, 400) * S, DAY0 + np.arange(1000, 1300) * S])  # a gap
    F = 1e-4 * rng.standard_normal((f_labels.size, K))
    a_rows = [(t, a, 100 + a + 0.01 * k) for k, t in enumerate(f_labels) for a in range(A) if rng.random() < 0.5
              and not (a == 3 and t < DAY0 + 200 * S)]  # asset 3 starts late
    a_lab = np.array([r[0] for r in a_rows])
    a_idx = np.array([r[1] for r in a_rows])
    a_mid = np.array([r[2] for r in a_rows])
    ends, F_int, Y = interval_returns_batch(f_labels, F, a_lab, a_idx, a_mid, A, D)
    agg = IntervalAggregator(A, K, D)
    closed = []
    j = 0
    for k, t in enumerate(f_labels):  # the graph's order: a second's asset rows, then its factor return
        while j < a_lab.size and a_lab[j] == t:
            closed += agg.on_assets(t, np.array([a_idx[j]]), np.array([a_mid[j]]))
            j += 1
        closed += agg.on_factors(t, F[k])
    # the last interval (ending after the last label) stays open: nothing has closed it yet
    assert [c.end_ns for c in closed] == list(ends[:-1])
    np.testing.assert_allclose(np.array([c.factor_return for c in closed]), F_int[:-1], rtol=1e-14, atol=1e-18)
    np.testing.assert_allclose(np.array([c.asset_return for c in closed]), Y[:-1], rtol=1e-14, atol=1e-18,
                               equal_nan=True)
    assert np.isnan(Y[0]).all() and np.isnan(Y[:3, 3]).all()  # no start mids yet
    assert (np.diff(ends) > D).any()  # the gap's empty intervals were not emitted


def _simulated_panel(rng, J=1500, A=6, lags=1, lam_true=0.5):
    """Interval returns with known total betas, part of the response one interval late."""
    K = 5
    F = 0.001 * rng.standard_normal((J, K))
    B = rng.normal(0, 0.6, (A, K))
    B[:, 0] += 1.0
    late = rng.uniform(0, 0.4, A)  # share of the response arriving one interval later
    Fl = np.vstack([np.zeros((1, K)), F[:-1]])
    Y = F @ (B * (1 - late[:, None])).T + Fl @ (B * late[:, None]).T + 0.001 * rng.standard_normal((J, A))
    Y[:40, 2] = np.nan  # an asset that starts late
    return F, Y, B


def test_streaming_betas_equal_the_weighted_least_squares_batch_and_recover_the_truth():
    rng = np.random.default_rng(5)
    F, Y, B = _simulated_panel(rng, J=300)
    settings = FactorModelSettings(beta_halflife_hours=2.0, window_intervals=25)
    X = dimson_regressors(F, settings.dimson_lags)
    prior = BaselineStats(tuple("ABCDEF"), FF_FACTORS, 60.0, 1)
    accumulate(prior, X[:100], Y[:100], np.array(["regular"] * 100, dtype=object))
    model = FactorModel(tuple("ABCDEF"), settings, prior)
    steps = [model.step(DAY0 + (j + 1) * 60 * S, F[j], Y[j], "regular") for j in range(100, 300)]
    # the streaming model starts its lags at zero, like dimson_regressors on the streamed part
    ref = ew_betas_batch(dimson_regressors(F[100:], 1), Y[100:], settings.forgetting, prior.pooled(),
                         settings.prior_weight)
    np.testing.assert_allclose(np.array([s.betas for s in steps]), ref, rtol=1e-8, atol=1e-10)
    # Dimson total betas recover the true exposures, within 4 standard errors
    st = BaselineStats(tuple("ABCDEF"), FF_FACTORS, 60.0, 1)
    F, Y, B = _simulated_panel(rng)
    X = dimson_regressors(F, 1)
    accumulate(st, X, Y, np.array(["regular"] * len(X), dtype=object))
    b = st.prior_betas()
    total = b.reshape(6, 2, 5).sum(axis=1)
    se = total_beta_standard_errors(st.pooled(), b, 5)
    assert np.all(np.abs(total - B) < 4 * se), (total - B) / se
    contemporaneous_only = st.prior_betas()[:, :5]  # without the lag the slow part is missed
    assert np.abs(contemporaneous_only - B).max() > 8 * se.max()


def test_rolling_decomposition_incremental_equals_batch():
    rng = np.random.default_rng(6)
    F, Y, _ = _simulated_panel(rng, J=200)
    settings = FactorModelSettings(window_intervals=30)
    model = FactorModel(tuple("ABCDEF"), settings)
    X = dimson_regressors(F, 1)
    steps = [model.step(DAY0 + (j + 1) * 60 * S, F[j], Y[j], "regular") for j in range(200)]
    B = np.array([s.betas for s in steps])
    B = np.nan_to_num(B)  # before the betas exist the batch uses 0 (the rows are compared where warm)
    tot, sys, idio = rolling_decomposition_batch(X, Y, B, 30)
    warm = np.array([s.warm for s in steps])
    for name, ref in (("window_total", tot), ("window_systematic", sys), ("window_idiosyncratic", idio)):
        got = np.array([getattr(s, name) for s in steps])
        np.testing.assert_allclose(got[warm], ref[warm], rtol=1e-9, atol=1e-18, err_msg=name)
    # shares in [0, 1]; total = sys + idio + 2 cross
    s = steps[-1]
    share = s.window_systematic / (s.window_systematic + s.window_idiosyncratic)
    assert np.all((share >= 0) & (share <= 1))


def test_regime_accumulators_use_one_step_ahead_betas_and_the_fixed_prior():
    rng = np.random.default_rng(7)
    F, Y, _ = _simulated_panel(rng, J=400)
    X = dimson_regressors(F, 1)
    regimes = np.array(["pre_open"] * 150 + ["regular"] * 250, dtype=object)
    base = BaselineStats(tuple("ABCDEF"), FF_FACTORS, 60.0, 1)
    accumulate(base, X[:200], Y[:200], regimes[:200])
    model = FactorModel(tuple("ABCDEF"), FactorModelSettings(), base)
    b_prev = []
    for j in range(200, 400):
        b_prev.append(model.betas.copy())
        model.step(DAY0 + j * 60 * S, F[j], Y[j], "regular")
    b_prev = np.array(b_prev)
    y, x = Y[200:], dimson_regressors(F[200:], 1)  # the stream starts its lags at zero
    e1 = y - np.einsum("jap,jp->ja", b_prev, x)
    e_prior = y - x @ model.prior_betas.T
    summary = model.regime_summary()["regular"]
    ok = np.isfinite(y)
    np.testing.assert_allclose(summary["idiosyncratic"], np.nanmean(np.where(ok, e1 ** 2, np.nan), axis=0), rtol=1e-12)
    base_idio = base.regimes["regular"].residual_variance(model.prior_betas)
    direct = np.nanmean(np.where(ok, e_prior ** 2, np.nan), axis=0) / base_idio
    np.testing.assert_allclose(summary["idio_ratio"], direct,
                               rtol=1e-12)
    # the baseline serialises to JSON and back exactly
    back = BaselineStats.from_dict(json.loads(json.dumps(base.to_dict())))
    np.testing.assert_array_equal(back.prior_betas(), base.prior_betas())


# --------------------------------------------------------------------------- replication


def test_min_norm_replication_is_the_least_squares_minimum_norm_solution():
    rng = np.random.default_rng(8)
    L = rng.normal(0, 0.5, (5, 20))
    L[0] += 1.0
    beta = rng.normal(0, 0.5, 5)
    rep = min_norm_replication(L, beta)
    assert rep.method == "normal_equations" and rep.exposure_error < 1e-12
    np.testing.assert_allclose(rep.weights, np.linalg.lstsq(L, beta, rcond=None)[0], atol=1e-12)
    np.testing.assert_allclose(rep.weights, np.linalg.pinv(L) @ beta, atol=1e-12)
    np.testing.assert_allclose(rep.weights, L.T @ np.linalg.inv(L @ L.T) @ beta, atol=1e-12)  # the seed's formula
    # any other exact solution has a larger norm (add a null-space direction)
    null = np.linalg.svd(L)[2][-1]
    assert np.linalg.norm(rep.weights + 0.1 * null) > np.linalg.norm(rep.weights)
    # with a budget: exact exposure and sum, still least-norm
    rb = min_norm_replication(L, beta, budget=1.0)
    assert abs(rb.weights.sum() - 1) < 1e-12 and np.abs(L @ rb.weights - beta).max() < 1e-12
    np.testing.assert_allclose(rb.weights, np.linalg.pinv(np.vstack([L, np.ones(20)])) @ np.append(beta, 1), atol=1e-12)
    # a rank-deficient L (a factor no stock loads on) falls back to the pseudo-inverse
    L2 = L.copy()
    L2[3] = 0.0
    r2 = min_norm_replication(L2, beta)
    assert r2.method == "pseudo_inverse" and r2.exposure_error == pytest.approx(abs(beta[3]))
    with pytest.raises(ValueError, match="factor rows"):
        min_norm_replication(L, beta[:4])


def test_tracking_errors_match_direct_computations():
    rng = np.random.default_rng(9)
    J, S_, K = 20000, 20, 5
    L = rng.normal(0, 0.5, (K, S_))
    L[0] += 1
    beta_etf = rng.normal(0, 0.5, K)
    F = 0.001 * rng.standard_normal((J, K))
    d = rng.uniform(1, 4, S_) * 1e-7
    d_etf = 2e-7
    stocks = F @ L + rng.standard_normal((J, S_)) * np.sqrt(d)
    etf = F @ beta_etf + rng.standard_normal(J) * np.sqrt(d_etf)
    w = min_norm_replication(L, beta_etf).weights
    diff = etf - stocks @ w
    Yall = np.column_stack([etf, stocks])
    realized = realized_tracking_variance(w, 0, np.arange(1, S_ + 1), Yall.T @ Yall, J)
    assert realized == pytest.approx(np.mean(diff ** 2), rel=1e-10)
    ex_ante = ex_ante_tracking_variance(w, d_etf, d)
    assert realized == pytest.approx(ex_ante, rel=0.05)  # systematic parts cancel: only idiosyncratic noise left


# --------------------------------------------------------------------------- generator, files, replay


@pytest.fixture(scope="module")
def small_days(tmp_path_factory):
    """A 09:30-11:00 Election Day window and two baseline normal days (same window), generated."""
    root = tmp_path_factory.mktemp("factors")
    window = dict(start_et="09:30", end_et="11:00")
    day = root / "day"
    write_synthetic_day(SyntheticDayConfig(option_underlyings=[], **window), day, progress=False)
    dates = baseline_dates(dt.date(2024, 11, 5), 2)
    write_training_days(dates, root / "normal-days-seed20241105", progress=False, **window)
    return root, day


@pytest.fixture(scope="module")
def small_replay(small_days, tmp_path_factory):
    root, day = small_days
    out = tmp_path_factory.mktemp("out")
    cfg = ReplayConfig(mode="sim", data=day, out=out, dashboard=False, progress=False, features=False, upmove=False,
                       kalshi_filter=False, options=False, leadership=False,
                       factor_settings={"baseline_days": 2, "window_intervals": 20})
    sources, _ = discover(day)
    return run_replay(cfg, sources, log=lambda *_: None), out


def test_universe_files_and_truth_are_written_and_kept_out_of_the_replay_streams(small_days):
    root, day = small_days
    manifest = json.loads((day / "manifest.json").read_text())
    section = manifest["factor_universe"]
    assert section["stocks"] == 300
    nbbo = pq.read_table(day / section["files"][0]["path"])
    assert nbbo.column_names == ["symbol", "timestamp", "bid_price", "ask_price"]
    assert nbbo.num_rows == section["files"][0]["rows"]
    t = nbbo.column("timestamp").cast(pa.int64()).to_numpy()
    assert np.all(np.diff(t) >= 0) and np.all(t % S == 0)  # time-major, whole seconds
    assert np.all(nbbo.column("bid_price").to_numpy() < nbbo.column("ask_price").to_numpy())
    sources, unknown = discover(day)
    assert not any("factor_universe" in str(s.path) for s in sources) and unknown == []
    files = find_factor_universe(day)
    assert files.weights.size == 300 and len(files.nbbo) == 1
    truth = pq.read_table(day / "ground_truth/ff_factors.parquet")
    assert set(truth.column("factor").to_pylist()) == set(FF_FACTORS)
    model = json.loads((day / "ground_truth/ff_model.json").read_text())
    np.testing.assert_allclose(model["portfolio_exposure"], np.eye(5), atol=1e-12)
    # the 40's files do not depend on the universe: the same day without it is byte-identical
    other = root / "no_universe"
    write_synthetic_day(SyntheticDayConfig(option_underlyings=[], start_et="09:30", end_et="09:35",
                                           factor_universe_size=0), other, progress=False)
    with_u = root / "with_universe"
    write_synthetic_day(SyntheticDayConfig(option_underlyings=[], start_et="09:30", end_et="09:35"), with_u,
                        progress=False)
    for f in json.loads((other / "manifest.json").read_text())["files"]:
        assert (other / f["path"]).read_bytes() == (with_u / f["path"]).read_bytes(), f["path"]
    with pytest.raises(ValidationError, match="factor_universe_size"):
        SyntheticDayConfig(factor_universe_size=5)


def test_factor_returns_correlate_with_the_true_factors(small_days):
    """The batch path (same definitions as the graph) against the latent truth, 1 s and 60 s."""
    _, day = small_days
    data = day_factor_data(day, U.SYMBOLS, FactorModelSettings(), 0.0483)
    truth = pq.read_table(day / "ground_truth/ff_factors.parquet").to_pandas()
    tr = truth.pivot(index="time", columns="factor", values="true_return")[list(FF_FACTORS)]
    t_true = tr.index.asi8 if hasattr(tr.index, "asi8") else tr.index.view("int64")
    T = tr.to_numpy()
    # the row labelled T shows quotes of [T - 1 s, T), made at the efficient price of T - 1 s
    pos = np.searchsorted(t_true, data.labels - S)
    ok = (pos < t_true.size) & (t_true[np.minimum(pos, t_true.size - 1)] == data.labels - S)
    corr_1s = [np.corrcoef(data.factor_returns[ok, k], T[pos[ok], k])[0, 1] for k in range(5)]
    assert min(corr_1s) > 0.95, corr_1s
    cum = np.vstack([np.zeros(5), np.cumsum(T, axis=0)])
    end = data.ends[1:]
    lo, hi = np.searchsorted(t_true, end - 61 * S, side="right"), np.searchsorted(t_true, end - S, side="right")
    corr_60 = [np.corrcoef(data.interval_factor_returns[1:, k], (cum[hi] - cum[lo])[:, k])[0, 1] for k in range(5)]
    assert min(corr_60) > 0.95, corr_60


def test_replay_streams_agree_with_the_batch_path_and_the_baseline(small_days, small_replay):
    root, day = small_days
    result, out = small_replay
    assert result.reconciles()
    report = json.loads((out / "factor_universe/ingest_report.json").read_text())
    assert report["reconciles"] and report["totals"]["nbbo_1s"]["rejected"] == {}
    fr = pq.read_table(out / "factor_returns").to_pandas()
    data = day_factor_data(day, U.SYMBOLS, FactorModelSettings(), 0.0483)
    assert len(fr) == data.labels.size
    np.testing.assert_allclose(fr[["mkt_rf", "smb", "hml", "rmw", "cma"]].to_numpy(), data.factor_returns, atol=1e-15)
    assert set(fr.regime) == {"regular"}
    # the baseline: two days found under the default root, betas warm from the first interval
    inputs = json.loads((out / "factor_universe/factor_inputs.json").read_text())
    expected_days = [d.isoformat() for d in baseline_dates(dt.date(2024, 11, 5), 2)]
    assert [Path(p).name for p in inputs["baseline_days"]] == expected_days
    dec = pq.read_table(out / "factor_decomposition").to_pandas()
    assert dec.warm.all() and len(dec) == 40 * data.ends.size
    # the idiosyncratic-variance ratio is computed, and equals the batch computation on the same data
    days = find_baseline_days(root / "normal-days-seed20241105", dt.date(2024, 11, 5), 2)
    base = baseline_stats(days, U.SYMBOLS, FactorModelSettings(window_intervals=20), 0.0483, log=lambda *_: None)
    b0 = base.prior_betas()
    X = data.regressors(1)
    e0 = data.interval_returns - X @ b0.T
    ratio = np.nanmean(e0 ** 2, axis=0) / base.regimes["regular"].residual_variance(b0)
    last = dec.sort_values("time").groupby("symbol").tail(1).set_index("symbol").loc[list(U.SYMBOLS)]
    np.testing.assert_allclose(last.idio_ratio_vs_baseline.to_numpy(), ratio, rtol=1e-9)
    assert np.all(np.isfinite(ratio)) and np.all(ratio > 0)
    summary = json.loads((out / "factor_summary.json").read_text())
    assert summary["instruments"]["DJT"]["regular"]["idio_ratio_vs_baseline"] == pytest.approx(
        ratio[U.SYMBOLS.index("DJT")], rel=1e-9)
    # replicas: every ETF, exact exposures, the weights stream sums to the summary
    rep = pq.read_table(out / "etf_replication").to_pandas()
    assert set(rep.etf) == set(U.ETFS) and (rep.exposure_error < 1e-9).all()
    assert (rep.method == "normal_equations").all()
    weights = pq.read_table(out / "etf_replication_weights").to_pandas()
    sums = weights.groupby(["time", "etf"]).weight.sum()
    np.testing.assert_allclose(sums.loc[list(zip(rep.time, rep.etf))].to_numpy(), rep.weight_sum.to_numpy(), atol=1e-12)


def test_prior_betas_are_near_the_true_betas(small_days):
    """Two short baseline days: every prior beta within 5 standard errors of the generator's
    population betas on the vendor portfolios (the full-day figures are in docs/factors.md)."""
    root, day = small_days
    days = find_baseline_days(root / "normal-days-seed20241105", dt.date(2024, 11, 5), 2)
    base = baseline_stats(days, U.SYMBOLS, FactorModelSettings(), 0.0483, log=lambda *_: None)
    b = base.prior_betas()
    total = b.reshape(40, 2, 5).sum(axis=1)
    se = total_beta_standard_errors(base.pooled(), b, 5)
    model = json.loads((day / "ground_truth/ff_model.json").read_text())
    true = np.array([[model["instrument_portfolio_betas"][s][f] for f in FF_FACTORS] for s in U.SYMBOLS])
    z = (total - true) / se
    assert np.all(np.abs(z) < 5), dict(zip(U.SYMBOLS, np.abs(z).max(axis=1).round(1)))
    spy = U.SYMBOLS.index("SPY")
    assert abs(total[spy, 0] - true[spy, 0]) < 0.05


def test_configuration_and_missing_files_fail_clearly(tmp_path):
    with pytest.raises(ValidationError, match="interval_seconds"):
        ReplayConfig(factor_settings={"interval_seconds": 30.5})
    with pytest.raises(ValidationError, match="extra"):
        ReplayConfig(factor_settings={"halflife": 3})
    assert find_factor_universe(tmp_path) is None
    with pytest.raises(VendorFileError, match="does not exist"):
        find_factor_universe(tmp_path, tmp_path / "nope")
    (tmp_path / "factor_universe").mkdir()
    (tmp_path / "factor_universe" / "w.json").write_text('{"MKT-RF": {"A": 1.0}}')
    with pytest.raises(VendorFileError, match="must define exactly"):
        find_factor_universe(tmp_path)
    with pytest.raises(ValueError, match="whole number"):
        FactorModelSettings(interval_seconds=1.5)


def test_stage_universe_quarantines_bad_rows_and_reconciles(small_days, tmp_path):
    _, day = small_days
    files = find_factor_universe(day)
    table = pq.read_table(files.nbbo[0].path).slice(0, 3000)
    bad = table.slice(0, 3).to_pydict()
    bad["bid_price"] = [float("nan"), -1.0, 500.0]
    bad["ask_price"] = [1.0, 1.0, 499.0]  # nan, non-positive, crossed
    bad["symbol"] = [table.column("symbol")[0].as_py()] * 3
    folder = tmp_path / "factor_universe"
    folder.mkdir()
    (folder / "w.json").write_text(files.weights_path.read_text())
    rows = pa.concat_tables([table, pa.table(bad, schema=table.schema)]).sort_by([("timestamp", "ascending")])
    pq.write_table(rows, folder / "nbbo.parquet")
    report, parts = stage_universe(find_factor_universe(tmp_path), tmp_path / "out", None, None, 3600 * S)
    totals = report.totals()["nbbo_1s"]
    assert totals["read"] == 3003 and totals["accepted"] == 3000
    assert dict(totals["rejected"]) == {"nan_price": 1, "nonpositive_price": 1, "crossed_quote": 1}
    assert sum(pq.read_metadata(p).num_rows for p in parts) == 3000


def test_regimes_and_dashboard_rows():
    from elecflow.calendar import utc_ns

    at = lambda h, m, s=0: utc_ns(dt.date(2024, 11, 5), dt.time(h, m, s))  # noqa: E731
    assert [regime_of(at(*x)) for x in ((9, 30), (9, 30, 1), (15, 30, 1), (16, 0), (16, 0, 1), (20, 0))] == \
        ["pre_open", "regular", "close", "close", "after_hours", "after_hours"]
    t = dt.datetime(2024, 11, 5, 14, 31)
    state = FactorChartState()
    chart, regime = state.add(FactorReturn(time=t, regime="regular", mkt_rf=0.01, smb=-0.01, hml=0.0, rmw=0.0,
                                           cma=0.0, n_quotes=3, coverage=1.0))
    assert [r["factor"] for r in chart] == list(FF_FACTORS) and chart[0]["cumulative_bps"] == pytest.approx(100.0)
    assert regime[0]["key"] == "MKT-RF|regular" and regime[0]["seconds"] == 1
    chart, _ = state.add(FactorReturn(time=t + dt.timedelta(seconds=1), regime="regular", mkt_rf=0.01, smb=0.0,
                                      hml=0.0, rmw=0.0, cma=0.0, n_quotes=3, coverage=1.0))
    assert chart == []  # one point per minute
    assert state.rows()[0][0]["cumulative_bps"] == pytest.approx((1.01 ** 2 - 1) * 1e4)
    d = FactorDecomposition(time=t, symbol="DJT", regime="after_hours", interval_return=0.0, systematic_return=0.0,
                            beta_mkt_rf=0.8, beta_smb=0.0, beta_hml=0.0, beta_rmw=0.0, beta_cma=0.0,
                            window_total_var=2.0, window_systematic_var=1.0, window_idiosyncratic_var=1.0,
                            systematic_share=0.5, regime_total_var=4.0, regime_systematic_var=1.0,
                            regime_idiosyncratic_var=3.0, regime_intervals=10, baseline_idiosyncratic_var=1.5,
                            idio_ratio_vs_baseline=2.0, warm=True)
    row = factor_heatmap_row(d)
    assert row["sys_share_after_hours"] == 0.25 and row["idio_ratio_after_hours"] == 2.0
    assert "sys_share_regular" not in row and row["kind"] == "stock"  # other regimes' cells stay as they were


# --------------------------------------------------------------------------- the full default day (slow)


@pytest.mark.slow
def test_full_default_day_against_the_truth(tmp_path):
    """The full default Election Day and its five baseline days (about 2 min on 2 cores): factor
    returns against the latent truth, prior betas against the true betas, the idiosyncratic-
    variance ratio computed and ranked like the generator's design. Figures: docs/factors.md."""
    day = tmp_path / "synthetic-2024-11-05-seed20241105"
    write_synthetic_day(SyntheticDayConfig(), day, progress=False)
    from elecflow.adapters.factors import ensure_synthetic_baseline

    days = ensure_synthetic_baseline(day, dt.date(2024, 11, 5), 5, progress=False)
    settings = FactorModelSettings()
    base = baseline_stats(days, U.SYMBOLS, settings, 0.0483, log=lambda *_: None)
    data = day_factor_data(day, U.SYMBOLS, settings, 0.0483)
    truth = pq.read_table(day / "ground_truth/ff_factors.parquet").to_pandas()
    tr = truth.pivot(index="time", columns="factor", values="true_return")[list(FF_FACTORS)]
    t_true, T = np.asarray(tr.index.view("int64")), tr.to_numpy()
    pos = np.searchsorted(t_true, data.labels - S)
    ok = (pos < t_true.size) & (t_true[np.minimum(pos, t_true.size - 1)] == data.labels - S)
    regime_1s = np.array([regime_of(int(x)) for x in data.labels])
    cum = np.vstack([np.zeros(5), np.cumsum(T, axis=0)])
    lo = np.searchsorted(t_true, data.ends - 61 * S, side="right")
    hi = np.searchsorted(t_true, data.ends - S, side="right")
    for r in ("pre_open", "regular", "close", "after_hours"):
        s60 = (data.regimes == r) & (np.arange(data.ends.size) > 0)
        c60 = [np.corrcoef(data.interval_factor_returns[s60, k], (cum[hi] - cum[lo])[s60, k])[0, 1] for k in range(5)]
        assert min(c60) > 0.95, (r, c60)
        if r in ("regular", "close"):  # at 1 s only where every stock quotes every second
            s1 = ok & (regime_1s == r)
            c1 = [np.corrcoef(data.factor_returns[s1, k], T[pos[s1], k])[0, 1] for k in range(5)]
            assert min(c1) > 0.95, (r, c1)
    model = json.loads((day / "ground_truth/ff_model.json").read_text())
    true = np.array([[model["instrument_portfolio_betas"][s][f] for f in FF_FACTORS] for s in U.SYMBOLS])
    b = base.prior_betas()
    total = b.reshape(40, 2, 5).sum(axis=1)
    z = (total - true) / total_beta_standard_errors(base.pooled(), b, 5)
    assert np.mean(np.abs(z) < 3) > 0.9 and np.mean(np.abs(total - true)) < 0.1
    fm = FactorModel(U.SYMBOLS, settings, base)
    for e, f, y, r in zip(data.ends, data.interval_factor_returns, data.interval_returns, data.regimes):
        fm.step(int(e), f, y, r)
    summary = fm.regime_summary()
    for r in ("pre_open", "regular", "close", "after_hours"):
        assert np.all(np.isfinite(summary[r]["idio_ratio"])) and np.all(summary[r]["idio_ratio"] > 0)
    # election-sensitive names carry the polls' jumps as idiosyncratic variance after hours
    ah = dict(zip(U.SYMBOLS, summary["after_hours"]["idio_ratio"]))
    assert ah["DJT"] > 2 and ah["JPM"] > 5 and ah["NVDA"] < 2
