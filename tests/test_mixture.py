"""Closed-form lognormal-mixture prices, density and CDF (elecflow.mixture).

References, all independent of the closed form under test:

* numerical integration (``scipy.integrate.quad``) of the payoffs against the density, and of
  the density itself;
* put-call parity ``C - P = DF (E[S_T] - K)``;
* for one component, py_vollib's Black-76 price and scipy.stats.lognorm's pdf / cdf;
* the published example of the R package RND (Kam Hamidieh, CRAN, version 1.2;
  ``man/mln.objective.Rd`` and ``man/price.mln.option.Rd``): ``r = 0.05``, ``y = 0.02``,
  ``te = 60/365``, ``alpha.1 = 0.4``, ``meanlog.1 = 6.8``, ``meanlog.2 = 6.95``,
  ``sdlog.1 = 0.065``, ``sdlog.2 = 0.055``, for which the manual prints
  "This is the current price implied by parameter values: s0 = 981.8815". That ``s0`` is the
  only published *number*; the option prices of that example (strikes 700..1300, calls
  800..1200 by 10, puts 805..1200 by 10) are checked against RND's own ``price.mln.option``
  formula transcribed term by term (``E_i (1 - pnorm(u_i - sdlog_i)) - k (1 - pnorm(u_i))``,
  puts by RND's parity line) and against quadrature.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from elecflow.mixture import (
    lognormal_mixture_call,
    lognormal_mixture_cdf,
    lognormal_mixture_mean,
    lognormal_mixture_pdf,
    lognormal_mixture_put,
)

# RND's published example (see the module docstring)
RND_R, RND_Y, RND_TE = 0.05, 0.02, 60.0 / 365.0
RND_W = np.array([0.4, 0.6])
RND_MU = np.array([6.8, 6.95])
RND_SD = np.array([0.065, 0.055])
RND_S0_PUBLISHED = 981.8815

CASES = [
    # (weights, meanlogs, sdlogs, discount): the RND example, an election-like pair, three components
    (RND_W, RND_MU, RND_SD, math.exp(-RND_R * RND_TE)),
    (np.array([0.58, 0.42]), np.log([585.0, 552.0]) - 0.5 * np.array([0.0237, 0.029]) ** 2,
     np.array([0.0237, 0.029]), 0.9986),
    (np.array([0.2, 0.5, 0.3]), np.array([3.3, 3.5, 3.1]), np.array([0.3, 0.15, 0.45]), 0.97),
]


def _quad_price(strike, w, mu, s, df, is_call):
    """DF * integral of the payoff against the mixture density (split at K and the modes)."""
    def pdf(x):
        return float(lognormal_mixture_pdf(x, w, mu, s))

    hi = float(np.max(np.exp(mu + 12 * s)))
    lo = float(np.min(np.exp(mu - 12 * s)))
    if is_call:
        a, b = strike, max(hi, strike * 1.01)
        f = lambda x: (x - strike) * pdf(x)  # noqa: E731
    else:
        a, b = min(lo, strike * 0.99), strike
        f = lambda x: (strike - x) * pdf(x)  # noqa: E731
    inside = [float(v) for v in np.exp(mu) if a < v < b]
    val, _ = integrate.quad(f, a, b, points=inside or None, limit=400, epsabs=1e-13, epsrel=1e-12)
    return df * val


@pytest.mark.parametrize("case", range(len(CASES)))
def test_prices_match_quadrature_of_the_density(case):
    w, mu, s, df = CASES[case]
    mean = float(lognormal_mixture_mean(w, mu, s))
    strikes = mean * np.array([0.7, 0.85, 0.95, 1.0, 1.03, 1.1, 1.3])
    calls = lognormal_mixture_call(strikes, w, mu, s, df)
    puts = lognormal_mixture_put(strikes, w, mu, s, df)
    for K, c, p in zip(strikes, calls, puts):
        assert c == pytest.approx(_quad_price(K, w, mu, s, df, True), rel=1e-8, abs=1e-10 * mean)
        assert p == pytest.approx(_quad_price(K, w, mu, s, df, False), rel=1e-8, abs=1e-10 * mean)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_density_and_cdf_against_quadrature(case):
    w, mu, s, _ = CASES[case]
    lo, hi = float(np.min(np.exp(mu - 12 * s))), float(np.max(np.exp(mu + 12 * s)))
    pdf = lambda x: float(lognormal_mixture_pdf(x, w, mu, s))  # noqa: E731
    modes = sorted(float(v) for v in np.exp(mu))
    total, _ = integrate.quad(pdf, lo, hi, points=modes, limit=400, epsabs=1e-14)
    assert total == pytest.approx(1.0, abs=1e-10)
    mean, _ = integrate.quad(lambda x: x * pdf(x), lo, hi, points=modes, limit=400, epsabs=1e-12)
    assert mean == pytest.approx(float(lognormal_mixture_mean(w, mu, s)), rel=1e-10)
    for x in np.quantile(np.exp(mu), [0.0, 1.0]) * np.array([0.9, 1.05]):
        cum, _ = integrate.quad(pdf, lo, x, limit=400, epsabs=1e-14)
        assert float(lognormal_mixture_cdf(x, w, mu, s)) == pytest.approx(cum, abs=1e-10)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_strike_derivatives_give_cdf_and_density(case):
    """dC/dK = -DF (1 - CDF(K)) and d2C/dK2 = DF pdf(K) (Breeden-Litzenberger), by differences."""
    w, mu, s, df = CASES[case]
    mean = float(lognormal_mixture_mean(w, mu, s))
    K = mean * np.array([0.9, 1.0, 1.07])
    h = 1e-4 * mean
    c = lambda k: lognormal_mixture_call(k, w, mu, s, df)  # noqa: E731
    slope = (c(K + h) - c(K - h)) / (2 * h)
    curv = (c(K + h) - 2 * c(K) + c(K - h)) / (h * h)
    np.testing.assert_allclose(slope, -df * (1 - lognormal_mixture_cdf(K, w, mu, s)), atol=1e-6)  # O(h^2) differences
    np.testing.assert_allclose(curv, df * lognormal_mixture_pdf(K, w, mu, s), rtol=1e-4)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_put_call_parity(case):
    w, mu, s, df = CASES[case]
    mean = float(lognormal_mixture_mean(w, mu, s))
    K = np.linspace(0.5, 1.6, 23) * mean
    parity = lognormal_mixture_call(K, w, mu, s, df) - lognormal_mixture_put(K, w, mu, s, df)
    np.testing.assert_allclose(parity, df * (mean - K), atol=1e-10 * mean)


def test_rnd_published_current_price():
    """RND's manual: s0 = 981.8815 for its example parameters; s0 = e^{(y-r) te} E[S_T]."""
    s0 = math.exp((RND_Y - RND_R) * RND_TE) * float(lognormal_mixture_mean(RND_W, RND_MU, RND_SD))
    assert round(s0, 4) == RND_S0_PUBLISHED


def test_rnd_price_mln_option_formula():
    """The example's strikes, against RND's price.mln.option transcribed term by term."""
    df = math.exp(-RND_R * RND_TE)
    k = np.arange(700.0, 1301.0)
    e1, e2 = np.exp(RND_MU + 0.5 * RND_SD**2)
    u1 = (np.log(k) - RND_MU[0]) / RND_SD[0]
    u2 = (np.log(k) - RND_MU[1]) / RND_SD[1]
    c1 = df * (e1 * stats.norm.sf(u1 - RND_SD[0]) - k * stats.norm.sf(u1))
    c2 = df * (e2 * stats.norm.sf(u2 - RND_SD[1]) - k * stats.norm.sf(u2))
    rnd_call = RND_W[0] * c1 + RND_W[1] * c2
    s0 = math.exp((RND_Y - RND_R) * RND_TE) * (RND_W[0] * e1 + RND_W[1] * e2)
    rnd_put = rnd_call - s0 * math.exp(-RND_Y * RND_TE) + k * df
    np.testing.assert_allclose(lognormal_mixture_call(k, RND_W, RND_MU, RND_SD, df), rnd_call, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(lognormal_mixture_put(k, RND_W, RND_MU, RND_SD, df), rnd_put, rtol=1e-9, atol=1e-9)
    # and the extraction example's grids (calls 800..1200, puts 805..1195) against quadrature
    for K in (800.0, 1000.0, 1200.0):
        assert float(lognormal_mixture_call(K, RND_W, RND_MU, RND_SD, df)) == pytest.approx(
            _quad_price(K, RND_W, RND_MU, RND_SD, df, True), rel=1e-8)
    for K in (805.0, 995.0, 1195.0):
        assert float(lognormal_mixture_put(K, RND_W, RND_MU, RND_SD, df)) == pytest.approx(
            _quad_price(K, RND_W, RND_MU, RND_SD, df, False), rel=1e-8, abs=1e-9)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # py_vollib's own deprecation notice
def test_one_component_is_black76_and_scipy_lognormal():
    from py_vollib.black import black

    F, sigma, t, r = 100.0, 0.25, 0.5, 0.03
    mu, s = math.log(F) - 0.5 * sigma**2 * t, sigma * math.sqrt(t)
    for K in (70.0, 95.0, 100.0, 120.0):
        assert float(lognormal_mixture_call(K, [1.0], [mu], [s], math.exp(-r * t))) == pytest.approx(
            black("c", F, K, t, r, sigma), rel=1e-10)
        assert float(lognormal_mixture_put(K, [1.0], [mu], [s], math.exp(-r * t))) == pytest.approx(
            black("p", F, K, t, r, sigma), rel=1e-10)
    x = np.linspace(50, 160, 12)
    ref = stats.lognorm(s=s, scale=math.exp(mu))
    np.testing.assert_allclose(lognormal_mixture_pdf(x, [1.0], [mu], [s]), ref.pdf(x), rtol=1e-12)
    np.testing.assert_allclose(lognormal_mixture_cdf(x, [1.0], [mu], [s]), ref.cdf(x), rtol=1e-12)


def test_matches_the_synthetic_generator_pricer():
    from elecflow.synth.options import mixture_density, mixture_price

    T, df, q, mT, sT, mH, sH = 0.028, 0.9986, 0.57, 585.0, 0.141, 552.0, 0.173
    K = np.linspace(480, 660, 19)
    w = [q, 1 - q]
    s = np.array([sT, sH]) * math.sqrt(T)
    mu = np.log([mT, mH]) - 0.5 * s * s
    np.testing.assert_allclose(lognormal_mixture_call(K, w, mu, s, df),
                               mixture_price(K, T, df, q, mT, sT, mH, sH, True), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(lognormal_mixture_put(K, w, mu, s, df),
                               mixture_price(K, T, df, q, mT, sT, mH, sH, False), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(lognormal_mixture_pdf(K, w, mu, s), mixture_density(K, T, q, mT, sT, mH, sH),
                               rtol=1e-12)
    assert float(lognormal_mixture_mean(w, mu, s)) == pytest.approx(q * mT + (1 - q) * mH, rel=1e-14)


def test_far_wings_keep_relative_accuracy():
    """Puts are evaluated directly: a far OTM put keeps its digits (parity would cancel)."""
    w, mu, s = [0.5, 0.5], [math.log(100.0), math.log(110.0)], [0.05, 0.05]
    K = 60.0
    p = float(lognormal_mixture_put(K, w, mu, s, 1.0))
    ref = sum(wi * stats.norm.cdf((math.log(K) - m) / si) * K - wi * math.exp(m + si * si / 2)
              * stats.norm.cdf((math.log(K) - m) / si - si) for wi, m, si in zip(w, mu, s))
    assert 0 < p < 1e-20
    assert p == pytest.approx(ref, rel=1e-6)


def test_broadcasting_shapes():
    w = np.array([[0.3, 0.7], [0.5, 0.5], [0.9, 0.1]])  # 3 parameter sets
    mu = np.array([4.6, 4.7])  # shared by all sets (broadcast)
    s = np.array([[0.1, 0.2]])
    K = np.array([90.0, 100.0, 110.0, 120.0])[:, None]  # 4 strikes x 3 sets
    out = lognormal_mixture_call(K, w, mu, s, 0.99)
    assert out.shape == (4, 3)
    for j in range(3):
        np.testing.assert_allclose(out[:, j], lognormal_mixture_call(K[:, 0], w[j], mu, s[0], 0.99), rtol=1e-14)
    assert lognormal_mixture_mean(w, mu, s).shape == (3,)
    assert lognormal_mixture_pdf(np.array([95.0, 105.0]), [1.0], [4.6], [0.1]).shape == (2,)
    assert np.ndim(lognormal_mixture_call(100.0, [1.0], [4.6], [0.1])) == 0
    # a zero strike is the discounted mean, the cdf/pdf are 0 there
    assert float(lognormal_mixture_call(0.0, [0.5, 0.5], [4.6, 4.7], [0.1, 0.2], 0.9)) == pytest.approx(
        0.9 * float(lognormal_mixture_mean([0.5, 0.5], [4.6, 4.7], [0.1, 0.2])))
    assert float(lognormal_mixture_cdf(0.0, [1.0], [4.6], [0.1])) == 0.0
    assert float(lognormal_mixture_pdf(0.0, [1.0], [4.6], [0.1])) == 0.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(weights=[0.5, 0.6]), "sum to 1"),
    (dict(weights=[1.2, -0.2]), ">= 0"),
    (dict(weights=[0.5, 0.5 + 1e-8]), "sum to 1"),
    (dict(sdlogs=[0.1, 0.0]), "sdlogs must be > 0"),
    (dict(sdlogs=[0.1, -0.2]), "sdlogs must be > 0"),
    (dict(discount=0.0), "discount"),
    (dict(discount=-1.0), "discount"),
    (dict(strike=-5.0), "strike"),
    (dict(meanlogs=[4.6, np.nan]), "finite"),
    (dict(weights=[0.5, 0.5], meanlogs=[4.6, 4.7, 4.8]), "broadcast"),
    (dict(weights=0.5), "component axis"),
])
def test_input_validation(kwargs, match):
    args = dict(strike=100.0, weights=[0.5, 0.5], meanlogs=[4.6, 4.7], sdlogs=[0.1, 0.2], discount=0.99)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        lognormal_mixture_call(**args)
    if "discount" not in kwargs and "strike" not in kwargs:
        with pytest.raises(ValueError, match=match):
            lognormal_mixture_pdf(100.0, args["weights"], args["meanlogs"], args["sdlogs"])


def test_weights_within_tolerance_are_accepted():
    lognormal_mixture_call(100.0, [0.5, 0.5 + 5e-10], [4.6, 4.7], [0.1, 0.2])
