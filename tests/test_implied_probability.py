"""Local-level filter of the option-implied (mode B) weight (elecflow.implied_probability).

References: statsmodels' UnobservedComponents local level (its log-likelihood at given
parameters, with the same diffuse start, and its maximum-likelihood estimates) and the
simulated truth of a random walk observed in noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elecflow.implied_probability import (
    FilterParams,
    ImpliedProbabilityFilter,
    filter_upper_weight,
    fit_filter_params,
)


def _simulate(n=390, state_sd=0.0018, noise_sd=0.015, se_ratio=3.0, seed=0, gaps=False):
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    if gaps:  # minutes without an identified fit
        t = np.sort(rng.choice(int(1.3 * n), n, replace=False)).astype(float)
    dt = np.diff(t, prepend=t[0])
    truth = 0.57 + np.cumsum(state_sd * np.sqrt(dt) * rng.standard_normal(n))
    se = noise_sd / se_ratio * np.exp(0.2 * rng.standard_normal(n))  # the fit's (understated) se
    y = truth + se * se_ratio * rng.standard_normal(n)
    return t, y, se, truth


def test_loglik_equals_statsmodels_local_level():
    sm = pytest.importorskip("statsmodels.api")
    t, y, _, _ = _simulate(n=200, seed=1)
    se = np.full(y.size, 0.01)
    params = FilterParams(noise_scale=2.3, state_var_per_minute=4e-6)
    means, sds, loglik = filter_upper_weight(t, y, se, params)
    # our diffuse start (the first observation sets the state, variance r) is statsmodels'
    # model of the remaining observations with the first prediction known: mean y0, var r + q
    r, q = 2.3 * 0.01 ** 2, 4e-6
    model = sm.tsa.UnobservedComponents(y[1:], level="llevel")
    model.initialize_known(np.array([y[0]]), np.array([[r + q]]))
    model.ssm.loglikelihood_burn = 0
    model.ssm.tolerance = 0.0  # no switch to the steady-state gain: the exact recursion
    ref = model.loglike(np.array([r, q]))
    assert loglik == pytest.approx(ref, rel=1e-12)
    res = model.filter(np.array([r, q]))
    np.testing.assert_allclose(means[1:], res.filtered_state[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(sds[1:] ** 2, res.filtered_state_cov[0, 0], rtol=1e-10)


def test_mle_equals_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    t, y, _, _ = _simulate(n=390, seed=2)
    se = np.full(y.size, 0.005)
    fit = fit_filter_params(t, y, se, prior_state_sd=None)  # plain maximum likelihood, as statsmodels
    ref = sm.tsa.UnobservedComponents(y, level="llevel").fit(disp=False)
    irregular, level = ref.params
    assert fit.noise_scale * 0.005 ** 2 == pytest.approx(irregular, rel=2e-3)
    assert fit.state_var_per_minute == pytest.approx(level, rel=2e-2)


@pytest.mark.parametrize("gaps", [False, True])
def test_recovers_the_simulated_truth(gaps):
    """The fit's se understated 3x and the state moving 0.0018 per minute: both estimated,
    and the filtered weight tracks the truth far better than the raw measurements."""
    t, y, se, truth = _simulate(seed=3, gaps=gaps)
    fit = fit_filter_params(t, y, se)
    assert fit.noise_scale == pytest.approx(9.0, rel=0.25)
    assert math.sqrt(fit.state_var_per_minute) == pytest.approx(0.0018, rel=0.35)
    means, sds, _ = filter_upper_weight(t, y, se, fit)
    raw = np.corrcoef(y, truth)[0, 1]
    filtered = np.corrcoef(means[30:], truth[30:])[0, 1]
    assert filtered > 0.9 > raw
    z = (means[30:] - truth[30:]) / sds[30:]
    assert 0.7 < z.std() < 1.4  # the filter's sd is honest


def test_streaming_equals_batch():
    t, y, se, _ = _simulate(n=120, seed=4, gaps=True)
    fixed = ImpliedProbabilityFilter(min_fit_observations=1000, max_fit_observations=1000)
    out = np.array([fixed.update(*row) for row in zip(t, y, se)])
    means, sds, _ = filter_upper_weight(t, y, se, FilterParams())
    np.testing.assert_array_equal(out[:, 0], means)
    np.testing.assert_array_equal(out[:, 1], sds)
    # with re-estimation: after each update the state is the batch filter over the kept
    # history with the parameters then in force
    live = ImpliedProbabilityFilter(refit_every=10, min_fit_observations=30, max_fit_observations=80)
    lo = 0
    for i, row in enumerate(zip(t, y, se)):
        x, sd = live.update(*row)
        if i + 1 >= 30 and (i + 1 - 30) % 10 == 0:
            lo = max(0, i + 1 - 80)  # history trimmed at refits only
        m, s, _ = filter_upper_weight(t[lo:i + 1], y[lo:i + 1], se[lo:i + 1], live.params)
        assert (x, sd) == (m[-1], s[-1])
    assert live.n_refits == 10
    assert live.predict(t[-1] + 10.0)[1] > sd


def test_bad_input():
    f = ImpliedProbabilityFilter()
    assert all(math.isnan(v) for v in f.predict(0.0))
    with pytest.raises(ValueError, match="finite"):
        f.update(0.0, math.nan, 0.01)
    with pytest.raises(ValueError, match="positive"):
        f.update(0.0, 0.5, 0.0)
    f.update(5.0, 0.5, 0.01)
    with pytest.raises(ValueError, match="before the previous"):
        f.update(4.0, 0.5, 0.01)
    with pytest.raises(ValueError, match="one length"):
        filter_upper_weight([0.0, 1.0], [0.5], [0.01])
    with pytest.raises(ValueError, match="non-decreasing"):
        filter_upper_weight([1.0, 0.0], [0.5, 0.5], [0.01, 0.01])
    with pytest.raises(ValueError, match="at least 3"):
        fit_filter_params([0.0, 1.0], [0.5, 0.5], [0.01, 0.01])
    with pytest.raises(ValueError, match="positive"):
        FilterParams(noise_scale=0.0)


def test_prior_keeps_a_quiet_stretch_from_freezing_the_filter():
    """A stretch where the state does not move: plain maximum likelihood puts q at its lower
    bound (the pile-up at zero); the prior keeps it within an e-fold or two of 0.002."""
    rng = np.random.default_rng(7)
    t = np.arange(150, dtype=float)
    se = np.full(t.size, 0.005)
    y = 0.57 + 3 * se * rng.standard_normal(t.size)  # no state movement at all
    plain = fit_filter_params(t, y, se, prior_state_sd=None)
    shrunk = fit_filter_params(t, y, se)
    assert math.sqrt(plain.state_var_per_minute) < 1e-4
    assert 0.002 * math.exp(-3) < math.sqrt(shrunk.state_var_per_minute) < 0.002
    with pytest.raises(ValueError, match="prior"):
        fit_filter_params(t, y, se, prior_state_sd=0.0)
