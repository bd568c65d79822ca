"""The Kalshi denoiser: the local-level filter against statsmodels, the EKF and quadrature
updates against brute-force posteriors, the recursive-ML score against finite differences,
incremental == batch, and accuracy against the synthetic day's true probability."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import ndtr, ndtri

from elecflow import kalshi as K
from elecflow.adapters.synthetic import write_synthetic_day
from elecflow.adapters.vendors import discover, read_canonical
from elecflow.synth.config import SyntheticDayConfig

# ----------------------------------------------------------------------------------------
# 1. local-level filter vs statsmodels
# ----------------------------------------------------------------------------------------


def _series(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(0.0, 0.1, n)) + rng.normal(0.0, 0.3, n)
    y[[0, 5, 50, 51, 200, n - 1]] = np.nan  # missing: predict only
    return y, rng


def test_local_level_irregular_gaps_matches_statsmodels():
    from statsmodels.tsa.statespace.mlemodel import MLEModel

    y, rng = _series()
    n = y.size
    dt = rng.exponential(1.0, n)
    r = rng.uniform(0.05, 0.2, n)  # time-varying observation variance
    q, x0, p0 = 0.02, 0.3, 2.0
    m, v = K.local_level_filter(y, r, q, x0, p0, dt=dt)

    mod = MLEModel(y, k_states=1)
    mod["design"] = np.ones((1, 1))
    mod["transition"] = np.ones((1, 1))
    mod["selection"] = np.ones((1, 1))
    mod["obs_cov"] = r.reshape(1, 1, n)
    state_cov = np.zeros((1, 1, n))  # statsmodels: state_cov[t] drives the step t -> t+1
    state_cov[0, 0, :-1] = q * dt[1:]
    mod["state_cov"] = state_cov
    mod.ssm.initialize_known(np.array([x0]), np.array([[p0 + q * dt[0]]]))
    ref = mod.ssm.filter()
    np.testing.assert_allclose(m, ref.filtered_state[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(v, ref.filtered_state_cov[0, 0], rtol=0, atol=1e-10)


def test_local_level_per_step_matches_unobserved_components():
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    y, _ = _series(seed=1)
    m, v = K.local_level_filter(y, 0.09, 0.01, 0.3, 2.0)
    uc = UnobservedComponents(y, "llevel")
    uc.ssm.initialize_known(np.array([0.3]), np.array([[2.0]]))
    uc.ssm.tolerance = 0  # no steady-state shortcut
    ref = uc.filter([0.09, 0.01])
    np.testing.assert_allclose(m, ref.filtered_state[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(v, ref.filtered_state_cov[0, 0], rtol=0, atol=1e-10)


def test_local_level_rejects_bad_input():
    with pytest.raises(ValueError):
        K.local_level_filter([1.0, 2.0], -1.0, 0.1, 0.0, 1.0)
    with pytest.raises(ValueError):
        K.local_level_filter([1.0, 2.0], 1.0, 0.1, 0.0, 1.0, dt=[1.0, -1.0])
    with pytest.raises(ValueError):
        K.local_level_filter([[1.0]], 1.0, 0.1, 0.0, 1.0)
    m, v = K.local_level_filter([], 1.0, 0.1, 0.0, 1.0)
    assert m.size == v.size == 0


# ----------------------------------------------------------------------------------------
# 2. numerics: clock, Phi^{-1}
# ----------------------------------------------------------------------------------------

H_NS = 3_600_000_000_000


def test_clock_increment_is_the_integral_of_the_speed():
    clk = K.InformationClock()
    tr = clk.resolution_ns
    pairs = [(tr - 30 * H_NS, tr - 12 * H_NS), (tr - 2 * H_NS, tr - H_NS // 3), (tr - 10 ** 9, tr),
             (tr - H_NS, tr + H_NS // 2), (tr + 10 ** 9, tr + H_NS)]
    for a, b in pairs:
        ref, _ = integrate.quad(lambda s: float(clk.speed(np.array([a + s * H_NS]))[0]), 0.0, (b - a) / H_NS,
                                limit=200, epsabs=1e-13)
        assert clk.increment(a, b)[0] == pytest.approx(ref, rel=1e-9, abs=1e-14)
    # additive, zero for no elapsed time, calendar time without a scale
    a, m, b = tr - 5 * H_NS, tr - 3 * H_NS + 123, tr - H_NS
    assert clk.increment(a, b)[0] == pytest.approx(clk.increment(a, m)[0] + clk.increment(m, b)[0], rel=1e-12)
    assert clk.increment(a, a)[0] == 0.0
    cal = K.InformationClock(scale_hours=math.inf, floor=0.0)
    assert cal.increment(0, 2 * H_NS)[0] == pytest.approx(2.0, rel=1e-15)


def test_ndtri_matches_scipy():
    p = np.concatenate([np.logspace(-300, -1, 200), np.linspace(0.01, 0.99, 199), 1 - np.logspace(-15, -2, 50)])
    got = np.array([K._ndtri(x) for x in p])
    np.testing.assert_allclose(got, ndtri(p), rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------------------
# 3. one update against the brute-force posterior
# ----------------------------------------------------------------------------------------


def _grid_posterior(m, P, y, b, r, lo=0.0, hi=1.0):
    x = np.linspace(m - 12 * math.sqrt(P), m + 12 * math.sqrt(P), 400_001)
    h = np.clip(ndtr(x) + b, lo, hi)
    w = np.exp(-0.5 * (x - m) ** 2 / P - 0.5 * (y - h) ** 2 / r)
    z = integrate.trapezoid(w, x)
    mu = integrate.trapezoid(w * x, x) / z
    var = integrate.trapezoid(w * (x - mu) ** 2, x) / z
    return mu, var, math.log(z / (2 * math.pi * math.sqrt(P * r)))


def _one_update(m, P, y, contract=0, bias=(0.0, 0.01), r=1e-4):
    """Set the state to N(m, P) at t and process one fill at the same t (no diffusion, no jump)."""
    params = K.KalshiFilterParams(bounce_var=(r - 1e-4 / 12,) * 2, bias=bias, jump_rate=0.0, adapt_gain=0.0,
                                  ucbm_growth=False)
    st = np.zeros(K.N_STATE)
    sti = np.zeros(2, dtype=np.int64)
    K._init_state(st, sti, math.log(0.5))
    st[K.S_M], st[K.S_P] = m, P
    sti[K.I_T], sti[K.I_N] = 10 ** 18, 5
    out = np.empty(K.N_OUT)
    K._step(st, sti, params.as_array(), K.InformationClock().as_array(), 10 ** 18, contract, y, out)
    return st[K.S_M], st[K.S_P], out[K.O_LL], int(out[K.O_EDGE])


def test_ekf_step_against_grid_posterior():
    # a hand case: prior probit N(0.3, 1e-3) (p ~ 0.618, sd ~ 1.2c), a DJT fill at 63c, r = 1e-4
    m, P, y = 0.3, 1e-3, 0.63
    mu, var, logz = _grid_posterior(m, P, y, 0.0, 1e-4)
    em, ev, ell, edge = _one_update(m, P, y)
    assert edge == 0
    assert abs(em - mu) < 0.01 * math.sqrt(var)  # linearisation error: <1% of a posterior sd
    assert ev == pytest.approx(var, rel=0.01)
    assert ell == pytest.approx(logz, abs=0.005)
    # the linearisation error vanishes as the prior tightens (relative to the posterior sd)
    errs = []
    for p_ in (1e-2, 1e-3, 1e-4):
        mu, var, _ = _grid_posterior(m, p_, y, 0.0, 1e-4)
        errs.append(abs(_one_update(m, p_, y)[0] - mu) / math.sqrt(var))
    assert errs[0] > errs[1] > 10 * errs[2] and errs[2] < 1e-3
    # the KH side: 1 - price measures Phi(x) + b_KH
    mu, var, _ = _grid_posterior(m, P, 1 - 0.36, 0.01, 1e-4)
    em, ev, _, _ = _one_update(m, P, 0.36, contract=1)
    assert abs(em - mu) < 0.01 * math.sqrt(var) and ev == pytest.approx(var, rel=0.01)


def test_quadrature_step_at_the_price_bound_against_grid_posterior():
    # prior around p ~ 0.977, a DJT fill at 99c: the measurement saturates at the 98c mid
    m, P, y = 2.0, 0.05, 0.99
    mu, var, logz = _grid_posterior(m, P, y, 0.0, 1e-4, 0.02, 0.98)
    em, ev, ell, edge = _one_update(m, P, y)
    assert edge == 1
    assert abs(em - mu) < 0.01 * math.sqrt(var)
    assert ev == pytest.approx(var, rel=0.02)
    assert ell == pytest.approx(logz, abs=0.02)
    # a fill at 1c / 99c is an ordinary observation of the saturated mid: finite, no blow-up
    for price, contract in ((0.99, 0), (0.01, 0), (0.01, 1), (0.99, 1)):
        out = _one_update(-2.0 if (price < 0.5) == (contract == 0) else 2.0, 0.05, price, contract=contract)
        assert all(math.isfinite(v) for v in out[:3])


def test_saturated_fills_leave_the_state_to_diffuse():
    # prediction well beyond the bound and a fill that agrees: likelihood only, state kept
    em, ev, ell, edge = _one_update(2.6, 0.05, 0.97)
    assert edge == 2 and em == 2.6 and ev == 0.05 and math.isfinite(ell)


# ----------------------------------------------------------------------------------------
# 4. filter behaviour on simulated fills
# ----------------------------------------------------------------------------------------


def _simulated_fills(n=3000, seed=7, start_p=0.55, drift_to=None):
    """A probit random walk observed through rounded mids +- 1c, both contracts."""
    rng = np.random.default_rng(seed)
    clk = K.InformationClock()
    t = clk.resolution_ns - 8 * H_NS + np.cumsum(rng.integers(1, 20_000, n)) * 1_000_000
    dk = np.diff(clk.increment(np.r_[t[0], t[:-1]], t))
    x = ndtri(start_p) + np.concatenate([[0.0], np.cumsum(rng.normal(0.0, np.sqrt(0.8 * np.abs(dk))))])
    if drift_to is not None:
        x = x + np.linspace(0.0, drift_to, n)
    p = ndtr(x)
    c = (rng.random(n) < 0.4).astype(np.int64)
    fair = np.where(c == 0, p, 1 - p - 0.01)
    mid = np.clip(np.rint(100 * fair), 2, 98)
    price = (mid + np.where(rng.random(n) < 0.5, 1, -1)) / 100.0
    return t.astype(np.int64), c, price, p


@pytest.mark.parametrize("growth", [False, True])
def test_recursive_ml_score_is_the_derivative_of_the_loglik(growth):
    # the sensitivity recursion behind the online q update is exact: the summed per-fill
    # scores equal the finite-difference derivative of the log-likelihood in log q0,
    # including fills at the price bound (quadrature) and news-jump mixtures
    t, c, px, _ = _simulated_fills(drift_to=2.5)
    params = K.KalshiFilterParams(q=0.6, bounce_var=(9e-5, 9e-5), bias=(0.0, 0.01), adapt_gain=0.0,
                                  ucbm_growth=growth)
    prm, clk = params.as_array(), K.InformationClock().as_array()

    def run(logq):
        st = np.zeros(K.N_STATE)
        sti = np.zeros(2, dtype=np.int64)
        K._init_state(st, sti, logq)
        out = np.empty((t.size, K.N_OUT))
        K._run(st, sti, prm, clk, t, c, px, np.empty(0, np.int64), out, np.empty((0, 4)))
        return out

    out = run(math.log(0.6))
    assert np.any(out[:, K.O_EDGE] == 1)  # the path reaches the bound
    h = 1e-5
    fd = (run(math.log(0.6) + h)[:, K.O_LL].sum() - run(math.log(0.6) - h)[:, K.O_LL].sum()) / (2 * h)
    assert out[:, K.O_SCORE].sum() == pytest.approx(fd, rel=1e-5, abs=1e-4)


def test_incremental_equals_batch_exactly():
    t, c, px, _ = _simulated_fills(n=1500, seed=3)
    names = np.where(c == 0, "PRES-2024-DJT", "PRES-2024-KH")
    grid = np.arange(t[0] - 10 ** 9, t[-1] + 3 * 10 ** 9, 10 ** 9, dtype=np.int64)
    batch, grid_out, fb = K.filter_kalshi_fills(t, names, px, warmup_fills=400, grid_ns=grid)

    inc = K.KalshiProbabilityFilter(warmup_fills=400)
    rows, preds, g = [], [], 0
    for i in range(t.size):
        while g < grid.size and grid[g] <= t[i]:
            preds.append(inc.predict(int(grid[g])))
            g += 1
        rows.append(inc.update(int(t[i]), str(names[i]), float(px[i]), 1))
    preds += [inc.predict(int(x)) for x in grid[g:]]

    assert fb.fit is not None and inc.fit is not None and fb.params == inc.params
    for field in ("p_obs", "p", "sd", "z", "jump_prob", "loglik", "q"):
        assert np.array_equal(getattr(batch, field), np.array([getattr(r, field) for r in rows])), field
    assert [K.REGIMES[k] for k in batch.regime] == [r.regime for r in rows]
    assert batch.warm.tolist() == [r.warm for r in rows] and batch.warm.sum() == t.size - 400
    assert batch.edge.tolist() == [r.edge for r in rows]
    assert np.array_equal(grid_out[:, :2], np.array(preds), equal_nan=True)
    assert math.isnan(grid_out[0, 0])  # before the first fill
    # the batch in pieces (split mid warm-up and after) is the same as well
    f2 = K.KalshiProbabilityFilter(warmup_fills=400)
    parts = [f2.update_many(t[a:b], c[a:b], px[a:b]) for a, b in ((0, 123), (123, 700), (700, t.size))]
    assert np.array_equal(np.concatenate([p_.p for p_ in parts]), batch.p)
    # and deterministic
    again, _, _ = K.filter_kalshi_fills(t, names, px, warmup_fills=400, grid_ns=grid)
    assert np.array_equal(again.p, batch.p) and np.array_equal(again.sd, batch.sd)


def test_fixed_parameters_interface_and_regimes():
    t, c, px, _ = _simulated_fills(n=50)
    f = K.KalshiProbabilityFilter(K.KalshiFilterParams(q=0.5, bias=(0.0, 0.01)))
    assert f.warm and f.fit is None and math.isnan(f.predict(int(t[0]))[0])
    out = f.update(int(t[0]), "PRES-2024-KH", 0.45)
    assert out.p_obs == pytest.approx(0.55) and out.contract == 1 and out.regime == "calm"
    assert out.p == pytest.approx(0.54, abs=1e-9)  # starts at the fill, less the KH bias
    p, sd = f.predict(int(t[0]) + 600 * 10 ** 9)
    assert p == pytest.approx(out.p) and sd > out.sd  # uncertainty grows between fills
    shock = f.update(int(t[0]) + 601 * 10 ** 9, 0, 0.75)
    assert shock.regime == "shock" and shock.jump_prob > 0.99 and shock.p > 0.7
    assert K.regime_of([0.0, -2.0, 3.99, 4.0, -7.0]).tolist() == [0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="unknown contract"):
        f.update(int(t[1]) + 10 ** 12, "PRES-2024-RFK", 0.5)
    with pytest.raises(ValueError, match="time order"):
        f.update(int(t[0]), 0, 0.5)
    with pytest.raises(ValueError, match="strictly between"):
        f.update(int(t[0]) + 10 ** 12, 0, 1.0)
    with pytest.raises(ValueError):
        K.KalshiFilterParams(q=-1.0)
    with pytest.raises(ValueError):
        K.fit_kalshi_filter(t[:10], c[:10], px[:10])


# ----------------------------------------------------------------------------------------
# 5. the synthetic Election night against its ground truth
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """18:00 ET -> 06:00 ET (+1 d) of the default seed: where the Kalshi action is."""
    out = tmp_path_factory.mktemp("night")
    cfg = SyntheticDayConfig(start_et="18:00", end_et="06:00+1d", option_underlyings=[], intensity_scale=0.02,
                             defects_per_kind=0)
    write_synthetic_day(cfg, out, progress=False)
    sources, _ = discover(out)
    cols = {"time": [], "contract": [], "price": []}
    for src in sources:
        if src.stream != "kalshi_trades":
            continue
        for batch in read_canonical(src):
            ok = batch.codes == 0
            for k in cols:
                cols[k].append(batch.columns[k][ok])
    t = np.concatenate(cols["time"]).astype(np.int64)
    order = np.argsort(t, kind="stable")
    t, names, px = t[order], np.concatenate(cols["contract"])[order], np.concatenate(cols["price"])[order]
    truth = pd.read_parquet(out / "ground_truth" / "probability.parquet")
    grid_t = truth["time"].astype("int64").to_numpy()
    p_grid = truth["p_true"].to_numpy()
    p_fill = p_grid[np.searchsorted(grid_t, t, side="right") - 1]  # p at the last grid second <= t
    params = json.loads((out / "ground_truth" / "params.json").read_text())
    res, grid_pred, filt = K.filter_kalshi_fills(t, names, px, grid_ns=grid_t)
    return dict(t=t, names=names, px=px, p_fill=p_fill, grid_t=grid_t, p_grid=p_grid, truth=truth, params=params,
                res=res, grid_pred=grid_pred, filt=filt)


def test_filtered_probability_beats_raw_fills_and_covers_the_truth(night):
    res, p, warm = night["res"], night["p_fill"], night["res"].warm
    assert warm.sum() > 10_000
    raw_rmse = np.sqrt(np.mean((res.p_obs[warm] - p[warm]) ** 2))
    filt_rmse = np.sqrt(np.mean((res.p[warm] - p[warm]) ** 2))
    assert filt_rmse <= 0.8 * raw_rmse  # measured 0.38x on this window (docs/kalshi-filter.md)
    cover_fills = np.mean(np.abs(res.p[warm] - p[warm]) <= 2 * res.sd[warm])
    assert 0.88 <= cover_fills <= 0.99  # measured 0.932
    g = night["grid_t"] > night["t"][warm][0]
    pred = night["grid_pred"][g]
    cover_grid = np.mean(np.abs(pred[:, 0] - night["p_grid"][g]) <= 2 * pred[:, 1])
    assert 0.90 <= cover_grid <= 0.99  # measured 0.968
    assert np.sqrt(np.mean((pred[:, 0] - night["p_grid"][g]) ** 2)) <= 0.8 * raw_rmse


def test_estimates_recover_the_generator(night):
    fit, params, truth = night["filt"].fit, night["params"], night["truth"]
    est = fit.estimates
    assert fit.converged
    # KH bias = P(neither candidate); bounce = the 1c half-spread squared
    assert est["bias_kh"] == pytest.approx(params["kalshi"]["other_outcomes"], abs=0.003)
    half = params["kalshi"]["half_spread_cents"] / 100.0
    for k in ("bounce_var_djt", "bounce_var_kh"):
        assert 0.6 * half ** 2 <= est[k] <= 1.4 * half ** 2
    # q at the first fill = c / R(t0): the generator's diffusive speed scale c (the clock
    # shape is shared by design) over the remaining information variance
    tt = truth["time"].astype("int64").to_numpy()
    t0 = night["t"][0]
    i0 = np.searchsorted(tt, t0, side="right") - 1
    i1 = i0 + 1800  # 30 jump-free minutes (first news at 19:00 ET)
    c = (truth["clock_variance"].iloc[i1] - truth["clock_variance"].iloc[i0]) / K.InformationClock().increment(
        tt[i0], tt[i1])[0]
    q_true = c / truth["remaining_variance"].iloc[i0]
    assert q_true / 2.5 <= est["q"] <= q_true * 2.5  # a 500-fill warm-up: se ~40 %
    # the online q rises through the night, as c / R(t) does
    res = night["res"]
    assert np.median(res.q[-2000:]) > 2 * np.median(res.q[res.warm][:2000])


def test_news_jumps_are_flagged(night):
    res, t = night["res"], night["t"]
    news = night["params"]["probability"]["news"]
    big = [ev for ev in news if abs(ev["p_after"] - ev["p_before"]) >= 0.06]
    assert len(big) >= 5
    for ev in big:
        near = (t >= ev["grid_time_utc_ns"] - 10 ** 9) & (t < ev["grid_time_utc_ns"] + 60 * 10 ** 9)
        assert np.any((res.jump_prob[near] > 0.5) & (res.regime[near] == 2)), ev["label"]
    # shocks are (almost) only news
    shock_t = t[res.regime == 2]
    news_t = np.array([ev["grid_time_utc_ns"] for ev in news])
    far = np.min(np.abs(shock_t[:, None] - news_t[None, :]), axis=1) > 120 * 10 ** 9
    assert far.sum() <= 2


def test_warmup_waits_for_both_contracts():
    t, c, px, _ = _simulated_fills(n=900, seed=11)
    was_kh = (c == 1) & (np.arange(c.size) < 700)
    c = np.where(was_kh, 0, c)  # the first 700 fills are all DJT: KH noise and bias not identified yet
    px = np.where(was_kh, np.round(1.0 - px, 2), px)  # read as the DJT price
    kh_seen = np.cumsum(c)
    ready = int(np.argmax(kh_seen >= K.MIN_FILLS_PER_CONTRACT))  # index of the 10th KH fill
    res, _, f = K.filter_kalshi_fills(t, c, px, warmup_fills=300)
    assert f.fit is not None and f.fit.n_obs == ready + 1
    assert not res.warm[: ready + 1].any() and res.warm[ready + 1:].all()
