"""elecflow.options: Black-Scholes prices, implied vol (vs py_vollib / py_lets_be_rational),
microprice, quote filter, parity-implied forward, time to expiry."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from elecflow import options as o
from elecflow.calendar import utc_ns

MINUTE = 1.0 / (365.0 * 24 * 60)


def _roundtrip_mask(price, F, K, call, DF):
    """Cases where a volatility exists in floating point: OTM part representable and
    price strictly below the upper bound."""
    intr = DF * np.where(call, np.maximum(F - K, 0.0), np.maximum(K - F, 0.0))
    upper = DF * np.where(call, F, K)
    return ((price - intr) > 1e-280) & (price < upper * (1.0 - 1e-15)) & (price > 1e-300)


def _grid():
    rng = np.random.default_rng(20241105)
    n = 200_000
    S = rng.uniform(5, 500, n)
    tau = np.exp(rng.uniform(np.log(MINUTE), np.log(30.0), n))
    r = rng.uniform(-0.01, 0.08, n)
    q = rng.uniform(0.0, 0.05, n)
    vol = np.exp(rng.uniform(np.log(0.005), np.log(5.0), n))
    # strikes up to ~12 standard deviations either side, plus plain random ones
    z = rng.uniform(-12, 12, n)
    F = S * np.exp((r - q) * tau)
    K = F * np.exp(z * vol * np.sqrt(tau))
    K[: n // 4] = S[: n // 4] * np.exp(rng.uniform(-1.5, 1.5, n // 4))
    call = rng.random(n) < 0.5
    # extreme corners: 1-minute and 30-year expiries, tiny and huge vols, deep OTM
    ez = np.array([-30.0, -15.0, -8.0, -3.0, -0.5, 0.0, 0.5, 3.0, 8.0, 15.0, 30.0])
    et = np.array([MINUTE, 1.0 / 365, 1.0, 30.0])
    ev = np.array([1e-4, 0.01, 0.2, 1.0, 3.0, 8.0])
    EZ, ET, EV, EC = (a.ravel() for a in np.meshgrid(ez, et, ev, [True, False], indexing="ij"))
    ES = np.full(EZ.shape, 100.0)
    Er = np.full(EZ.shape, 0.05)
    Eq = np.full(EZ.shape, 0.01)
    EF = ES * np.exp((Er - Eq) * ET)
    EK = EF * np.exp(EZ * np.minimum(EV * np.sqrt(ET), 1.0))
    cat = np.concatenate
    return (cat([S, ES]), cat([K, EK]), cat([tau, ET]), cat([r, Er]), cat([vol, EV]),
            cat([call, EC.astype(bool)]), cat([q, Eq]))


def test_roundtrip_random_and_extreme_grid():
    S, K, tau, r, vol, call, q = _grid()
    p = o.bs_price(S, K, tau, r, vol, call, q)
    F, DF = S * np.exp((r - q) * tau), np.exp(-r * tau)
    m = _roundtrip_mask(p, F, K, call, DF)
    assert m.sum() > 130_000
    iv = o.implied_vol(p, S, K, tau, r, call, q)
    assert not np.isnan(iv[m]).any()
    p2 = o.bs_price(S, K, tau, r, iv, call, q)
    rel = np.abs(p2[m] - p[m]) / p[m]
    assert rel.max() <= 1e-12, rel.max()
    # where the price is sensitive to the volatility, the volatility itself comes back
    vg = o.vega(S, K, tau, r, vol, q)
    sens = m & (vg * vol > 1e-6 * p) & (vol * np.sqrt(tau) < 3.0)
    assert np.max(np.abs(iv[sens] - vol[sens]) / vol[sens]) < 1e-9


def test_roundtrip_deep_otm_wings_full_relative_accuracy():
    # normalised prices down to ~1e-250: the erfcx / asymptotic regions
    x = -np.linspace(0.5, 60.0, 400)
    for s in (0.05, 0.5, 2.0, 6.0):
        b = o.normalised_black(x, s)
        m = b > 1e-280
        K = 100.0 * np.exp(-x[m])
        p = o.black_price(100.0, K, 1.0, s, True, 1.0)
        iv = o.black_implied_vol(p, 100.0, K, 1.0, True, 1.0)
        assert np.max(np.abs(iv - s) / s) < 1e-12
        assert np.max(np.abs(o.black_price(100.0, K, 1.0, iv, True) - p) / p) < 1e-12


def test_normalised_black_matches_lets_be_rational():
    lbr = pytest.importorskip("py_lets_be_rational")
    rng = np.random.default_rng(3)
    x = rng.uniform(-40, 40, 3000)
    s = np.exp(rng.uniform(np.log(1e-3), np.log(10), 3000))
    ours = o.normalised_black(x, s)
    ref = np.array([lbr.normalised_black(xi, si, 1.0) for xi, si in zip(x, s)])
    m = ref > 1e-290
    assert np.max(np.abs(ours[m] - ref[m]) / ref[m]) < 1e-13


def test_agrees_with_py_vollib():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from py_vollib.black_scholes import black_scholes
        from py_vollib.black_scholes.implied_volatility import implied_volatility as pv_iv

    rng = np.random.default_rng(11)
    n = 2000
    S = rng.uniform(20, 300, n)
    K = S * np.exp(rng.uniform(-0.6, 0.6, n))
    t = np.exp(rng.uniform(np.log(1 / 365), np.log(5.0), n))
    r = rng.uniform(0.0, 0.07, n)
    vol = rng.uniform(0.05, 1.2, n)
    call = rng.random(n) < 0.5
    flags = np.where(call, "c", "p")
    ref_p = np.array([black_scholes(f, a, b, c, d, e) for f, a, b, c, d, e in zip(flags, S, K, t, r, vol)])
    ours_p = o.bs_price(S, K, t, r, vol, call)
    pm = ref_p > 1e-8 * S
    assert np.max(np.abs(ours_p[pm] - ref_p[pm]) / ref_p[pm]) < 1e-12
    F, DF = S * np.exp(r * t), np.exp(-r * t)
    vg = o.vega(S, K, t, r, vol)
    m = _roundtrip_mask(ref_p, F, K, call, DF) & (vg * vol > 1e-4 * ref_p)
    ref_iv = np.array([pv_iv(p, a, b, c, d, f) for p, a, b, c, d, f in
                       zip(ref_p[m], S[m], K[m], t[m], r[m], flags[m])])
    ours_iv = o.implied_vol(ref_p[m], S[m], K[m], t[m], r[m], call[m])
    assert m.sum() > 1500
    assert np.max(np.abs(ours_iv - ref_iv) / ref_iv) < 1e-10
    assert np.max(np.abs(ours_iv - vol[m]) / vol[m]) < 1e-10


def test_nan_outside_bounds_and_degenerate_inputs():
    S, K, t, r = 100.0, np.array([80.0, 100.0, 120.0]), 0.5, 0.03
    F, DF = S * np.exp(r * t), np.exp(-r * t)
    call_lo = DF * np.maximum(F - K, 0)
    put_lo = DF * np.maximum(K - F, 0)
    # below intrinsic
    assert np.isnan(o.implied_vol(call_lo - 1e-6, S, K, t, r, True)[call_lo > 0]).all()
    assert np.isnan(o.implied_vol(put_lo - 1e-6, S, K, t, r, False)[put_lo > 0]).all()
    # at/above the maximum
    assert np.isnan(o.implied_vol(DF * F, S, K, t, r, True)).all()
    assert np.isnan(o.implied_vol(DF * K + 1e-9, S, K, t, r, False)).all()
    # negative, non-finite prices, expired
    assert np.isnan(o.implied_vol(-1.0, S, K, t, r, True)).all()
    assert np.isnan(o.implied_vol(np.nan, S, K, t, r, True)).all()
    assert np.isnan(o.implied_vol(5.0, S, K, 0.0, r, True)).all()
    # exactly at the lower bound: zero volatility
    assert o.implied_vol(0.0, S, 120.0, t, r, True) == 0.0
    # broadcasting and shapes
    assert o.implied_vol(np.full((2, 3), 5.0), S, K, t, r, True).shape == (2, 3)
    assert np.ndim(o.bs_price(S, 100.0, t, r, 0.2, True)) == 0


def test_put_call_parity_and_black_consistency():
    rng = np.random.default_rng(5)
    n = 5000
    S = rng.uniform(10, 200, n)
    K = S * np.exp(rng.uniform(-2, 2, n))
    t = np.exp(rng.uniform(np.log(MINUTE), np.log(30), n))
    r = rng.uniform(-0.01, 0.08, n)
    q = rng.uniform(0, 0.06, n)
    v = np.exp(rng.uniform(np.log(0.01), np.log(3), n))
    c = o.bs_price(S, K, t, r, v, True, q)
    p = o.bs_price(S, K, t, r, v, False, q)
    F, DF = S * np.exp((r - q) * t), np.exp(-r * t)
    assert np.max(np.abs((c - p) - DF * (F - K)) / np.maximum(S, K)) < 1e-13
    np.testing.assert_allclose(o.black_price(F, K, t, v, True, DF), c, rtol=1e-15)
    # vega against a central difference
    h = 1e-5 * v
    fd = (o.bs_price(S, K, t, r, v + h, True, q) - o.bs_price(S, K, t, r, v - h, True, q)) / (2 * h)
    vg = o.vega(S, K, t, r, v, q)
    m = (vg > 1e-3) & (vg * v > 1e-3 * c)
    np.testing.assert_allclose(vg[m], fd[m], rtol=1e-6)
    # closed form at the money: C = DF F (2 N(s/2) - 1)
    from scipy.stats import norm
    s = 0.3 * np.sqrt(2.0)
    np.testing.assert_allclose(o.black_price(100.0, 100.0, 2.0, 0.3, True, 0.9),
                               0.9 * 100 * (2 * norm.cdf(s / 2) - 1), rtol=1e-14)


def test_microprice_formulas():
    pb, pa, qb, qa = np.array([10.0, 1.0]), np.array([10.2, 1.5]), np.array([300.0, 1.0]), np.array([100.0, 3.0])
    np.testing.assert_allclose(o.microprice(pb, pa, qb, qa), (qa * pb + qb * pa) / (qb + qa))
    assert o.microprice(10.0, 10.2, 300.0, 100.0) == pytest.approx(10.15)
    np.testing.assert_allclose(o.microprice_var(pb, pa, qb, qa), (pa - pb) ** 2 / (12 * (qb + qa)))
    assert np.isnan(o.microprice(1.0, 2.0, 0.0, 0.0))
    vg = o.vega(100.0, 100.0, 0.5, 0.02, 0.25)
    assert o.iv_variance(0.04, vg) == pytest.approx(0.04 / vg**2)
    assert o.iv_variance(0.04, 0.0) == np.inf


def test_quote_filter_reasons():
    F, DF = 100.0, 0.99
    bid = np.array([1.0, 0.0, 3.0, 0.5, 0.5, 100.0, np.nan, 2.0, 2.0])
    ask = np.array([1.2, 0.1, 2.9, 0.6, 0.6, 101.0, 1.0, 2.0, 2.1])
    K = np.array([110.0, 130.0, 100.0, 80.0, 120.0, 50.0, 100.0, 100.0, 100.0])
    call = np.array([True, True, True, True, False, True, True, True, False])
    codes = o.quote_filter(bid, ask, F, DF, K, call)
    R = o.QuoteReason
    expected = [R.OK, R.ZERO_BID, R.CROSSED, R.BELOW_INTRINSIC, R.BELOW_INTRINSIC,
                R.ABOVE_MAXIMUM, R.INVALID, R.OK, R.OK]
    assert codes.tolist() == expected
    assert [o.QUOTE_REASONS[c] for c in codes[:3]] == ["ok", "zero_bid", "crossed"]
    # with sizes the microprice decides the bounds check
    lo = DF * (F - 80.0)
    c2 = o.quote_filter(lo - 0.05, lo + 0.15, F, DF, 80.0, True, bid_size=1.0, ask_size=100.0)
    assert c2 == R.BELOW_INTRINSIC
    assert o.quote_filter(lo - 0.05, lo + 0.15, F, DF, 80.0, True) == R.OK
    # every quote that passes has an implied vol
    ok = codes == R.OK
    iv = o.black_implied_vol(0.5 * (bid + ask)[ok], F, K[ok], 0.25, call[ok], DF)
    assert np.isfinite(iv).all()


def test_implied_forward_recovers_forward_and_discount():
    rng = np.random.default_rng(7)
    S, r, q, t = 250.0, 0.045, 0.018, 0.4
    F_true, DF_true = S * np.exp((r - q) * t), np.exp(-r * t)
    K = np.arange(150.0, 351.0, 5.0)
    smile = 0.22 + 0.4 * np.log(K / F_true) ** 2 - 0.1 * np.log(K / F_true)
    C = o.black_price(F_true, K, t, smile, True, DF_true)
    P = o.black_price(F_true, K, t, smile, False, DF_true)
    noise = 0.01
    Cn = C + rng.normal(0, noise, K.size)
    Pn = P + rng.normal(0, noise, K.size)
    Cn[np.argmin(np.abs(K - F_true)) + 1] += 2.0  # one bad quote near the money
    fit = o.implied_forward(K, Cn, Pn)
    assert fit.method == "parity_huber" and fit.n_pairs >= 3
    assert abs(fit.forward / F_true - 1) < 5e-4
    assert abs(fit.discount - DF_true) < 5e-3
    # noiseless: exact
    fit0 = o.implied_forward(K, C, P)
    assert fit0.forward == pytest.approx(F_true, rel=1e-10)
    assert fit0.discount == pytest.approx(DF_true, rel=1e-10)
    # too few pairs: fallback to S e^{(r-q) tau}, and it says so
    fb = o.implied_forward(K[:2], C[:2], P[:2], spot=S, rate=r, tau=t)
    assert fb.method == "spot_carry" and fb.forward == pytest.approx(S * np.exp(r * t))
    assert fb.discount == pytest.approx(np.exp(-r * t))
    none = o.implied_forward(K[:2], C[:2], P[:2])
    assert none.method == "none" and np.isnan(none.forward)
    nan_c = C.copy()
    nan_c[:-2] = np.nan
    assert o.implied_forward(K, nan_c, P, spot=S, rate=r, tau=t).method == "spot_carry"


def test_time_to_expiry_to_new_york_close():
    exp = dt.date(2024, 11, 15)
    close = utc_ns(exp, dt.time(16, 0))
    assert close == utc_ns(dt.datetime(2024, 11, 15, 21, 0, tzinfo=dt.timezone.utc))  # EST
    now = utc_ns(dt.date(2024, 11, 5), dt.time(9, 30))
    assert o.time_to_expiry(now, exp) == pytest.approx((close - now) / (365 * 86400e9))
    assert o.time_to_expiry(close, exp) == 0.0
    # summer close is 20:00 UTC (EDT)
    assert o.expiry_close_ns(dt.date(2024, 7, 19)) == utc_ns(
        dt.datetime(2024, 7, 19, 20, 0, tzinfo=dt.timezone.utc))
    arr = o.time_to_expiry(np.array([now, close + 10**9]), exp)
    assert arr.shape == (2,) and arr[1] < 0
