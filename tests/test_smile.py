"""SmileGP: against scikit-learn's GaussianProcessRegressor (test-only reference) and against a
fresh fit after every kind of incremental operation, including a 10,000-operation stress run."""

from __future__ import annotations

import numpy as np
import pytest

from elecflow.smile import SmileGP, SmileGPError, heuristic_hyperparameters

sklearn_gp = pytest.importorskip("sklearn.gaussian_process")
kernels = pytest.importorskip("sklearn.gaussian_process.kernels")

XS = np.linspace(-0.8, 0.5, 121)  # beyond the quoted range on both sides


def chain(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-0.6, 0.3, n))
    sd = rng.uniform(0.0005, 0.005, n) * (1 + 5 * np.abs(x))
    y = 0.2 - 0.15 * x + 0.4 * x**2 + rng.normal(0, 1, n) * sd
    return x, y, sd**2


def sk_fit(x, y, s, ell, sf2, mean):
    k = kernels.ConstantKernel(sf2, "fixed") * kernels.RBF(ell, "fixed")
    return sklearn_gp.GaussianProcessRegressor(kernel=k, alpha=s, optimizer=None,
                                               normalize_y=False).fit(x[:, None], y - mean)


def assert_same_posterior(a: SmileGP, b: SmileGP, rtol=1e-9):
    m1, v1 = a.predict(XS)
    m2, v2 = b.predict(XS)
    np.testing.assert_allclose(m1, m2, rtol=rtol, atol=0)
    # variance: relative to itself, with a floor at rtol * signal variance (cancellation in
    # s_f^2 - ||R^{-T} k*||^2 bounds what any implementation can resolve)
    np.testing.assert_allclose(v1, v2, rtol=rtol, atol=rtol * b.signal_var)
    assert a.log_marginal_likelihood() == pytest.approx(b.log_marginal_likelihood(), rel=rtol, abs=rtol)


def fresh(gp: SmileGP) -> SmileGP:
    return SmileGP(gp.lengthscale, gp.signal_var, gp.mean).fit(gp.x, gp.y, gp.noise)


@pytest.fixture
def data():
    x, y, s = chain(60)
    ell, sf2 = heuristic_hyperparameters(x, y)
    return x, y, s, ell, sf2, float(np.mean(y))


# ------------------------------------------------------------------ reference: scikit-learn
@pytest.mark.parametrize("n", [1, 2, 25, 60, 200])
def test_matches_sklearn(n):
    x, y, s = chain(n, seed=n)
    ell, sf2 = heuristic_hyperparameters(x, y) if n > 2 else (0.2, 1e-3)
    mean = float(np.mean(y))
    gp = SmileGP(ell, sf2, mean).fit(x, y, s)
    sk = sk_fit(x, y, s, ell, sf2, mean)
    mu, var = gp.predict(XS)
    mk, sd = sk.predict(XS[:, None], return_std=True)
    np.testing.assert_allclose(mu, mean + mk, rtol=1e-9, atol=0)
    np.testing.assert_allclose(gp.predict_mean(XS), mean + mk, rtol=1e-9, atol=0)
    np.testing.assert_allclose(var, sd**2, rtol=1e-9, atol=1e-12 * sf2)  # noise-free latent variance
    assert gp.log_marginal_likelihood() == pytest.approx(sk.log_marginal_likelihood_value_, rel=1e-9)


def test_nonzero_mean_is_the_level_far_from_quotes(data):
    x, y, s, ell, sf2, mean = data
    gp = SmileGP(ell, sf2, mean).fit(x, y, s)
    mu, var = gp.predict([50.0])
    assert mu[0] == pytest.approx(mean) and var[0] == pytest.approx(sf2)
    empty = SmileGP(ell, sf2, 0.25)
    mu, var = empty.predict([0.0, 1.0])
    np.testing.assert_array_equal(mu, [0.25, 0.25])
    np.testing.assert_array_equal(var, [sf2, sf2])


def test_heuristics_are_the_seeds(data):
    x, y, s, *_ = data
    ell, sf2 = heuristic_hyperparameters(x, y)
    pairs = [abs(x[i] - x[j]) for i in range(len(x)) for j in range(i + 1, len(x))]
    assert ell == pytest.approx(np.median(pairs)) and sf2 == pytest.approx(np.var(y))
    gp = SmileGP(1.0, 1.0, 0.0).fit(x, y, s)
    gp.refit_heuristics(update_mean=True)
    assert (gp.lengthscale, gp.signal_var, gp.mean) == pytest.approx((ell, sf2, np.mean(y)))
    assert gp.n_refits == 1
    assert_same_posterior(gp, fresh(gp))


# ------------------------------------------------------------------ each incremental operation
def test_update_target(data):
    x, y, s, ell, sf2, mean = data
    gp = SmileGP(ell, sf2, mean).fit(x, y, s)
    for i in (0, 17, 59, -1):
        gp.update(i, y=0.3)
        assert_same_posterior(gp, fresh(gp))


@pytest.mark.parametrize("factor", [4.0, 0.25, 1e-3])  # update, downdate, large downdate
def test_update_noise(data, factor):
    x, y, s, ell, sf2, mean = data
    gp = SmileGP(ell, sf2, mean).fit(x, y, s)
    for i in (0, 30, 59):
        gp.update(i, noise=s[i] * factor)
        assert_same_posterior(gp, fresh(gp))
    gp.update(5, y=0.21, noise=s[5] * 2)
    assert_same_posterior(gp, fresh(gp))


def test_insert_and_remove(data):
    x, y, s, ell, sf2, mean = data
    gp = SmileGP(ell, sf2, mean, capacity=4)  # forces storage growth
    for xi, yi, si in zip(x, y, s):
        assert gp.insert(xi, yi, si) == gp.n - 1
    assert_same_posterior(gp, SmileGP(ell, sf2, mean).fit(x, y, s))
    for i in (0, 30, "last", -1):
        i = gp.n - 1 if i == "last" else i
        before = gp.x
        i_pos = i % gp.n
        gp.remove(i)
        np.testing.assert_array_equal(gp.x, np.delete(before, i_pos))
        assert_same_posterior(gp, fresh(gp))
    while gp.n:
        gp.remove(0)
    mu, var = gp.predict([0.0])
    assert mu[0] == mean and var[0] == sf2


def test_hyperparameter_change_is_a_counted_refit(data):
    x, y, s, ell, sf2, mean = data
    gp = SmileGP(ell, sf2, mean).fit(x, y, s)
    gp.set_hyperparameters(lengthscale=ell * 1.5)
    gp.set_hyperparameters(signal_var=sf2 * 2)
    assert gp.n_refits == 2
    gp.set_hyperparameters(mean=0.1)  # mean only: a re-solve, not a refit
    assert gp.n_refits == 2
    assert_same_posterior(gp, SmileGP(ell * 1.5, sf2 * 2, 0.1).fit(x, y, s))


def test_optimise_hyperparameters_reaches_the_likelihood_maximum(data):
    x, y, s, ell, sf2, mean = data
    gp = SmileGP(ell, sf2, mean).fit(x, y, s)
    lml0 = gp.log_marginal_likelihood()
    lml = gp.optimise_hyperparameters()
    assert lml > lml0 and gp.n_refits == 1
    k = kernels.ConstantKernel(sf2, (1e-8, 10.0)) * kernels.RBF(ell, (1e-3, 10.0))
    sk = sklearn_gp.GaussianProcessRegressor(kernel=k, alpha=s, normalize_y=False,
                                             n_restarts_optimizer=3, random_state=0).fit(x[:, None], y - mean)
    assert lml >= sk.log_marginal_likelihood_value_ - 1e-6
    assert_same_posterior(gp, fresh(gp))
    lml_m = gp.optimise_hyperparameters(optimise_mean=True)  # profile the constant mean too
    assert lml_m >= lml - 1e-9


# ------------------------------------------------------------------ stress and stability
def test_10000_random_operations_equal_a_fresh_fit():
    rng = np.random.default_rng(7)
    x, y, s = chain(40, seed=3)
    ell, sf2 = heuristic_hyperparameters(x, y)
    gp = SmileGP(ell, sf2, float(np.mean(y))).fit(x, y, s)
    counts = dict(y=0, up=0, down=0, ins=0, rem=0)
    for step in range(10_000):
        u = rng.uniform()
        n = gp.n
        if u < 0.3:
            gp.update(rng.integers(n), y=0.2 + rng.normal(0, 0.02))
            counts["y"] += 1
        elif u < 0.6:
            i = rng.integers(n)
            new = rng.uniform(2.5e-7, 2.5e-4)
            counts["up" if new > gp.noise[i] else "down"] += 1
            gp.update(i, noise=new)
        elif u < 0.8 and n < 120 or n < 10:
            gp.insert(rng.uniform(-0.6, 0.3), 0.2 + rng.normal(0, 0.02), rng.uniform(2.5e-7, 2.5e-4))
            counts["ins"] += 1
        else:
            gp.remove(rng.integers(n))
            counts["rem"] += 1
        if step % 2500 == 2499:
            assert_same_posterior(gp, fresh(gp))
    assert min(counts.values()) > 1000
    assert gp.n_incremental == 10_000
    assert gp.n_drift_checks == 10_000 // gp.check_every
    assert_same_posterior(gp, fresh(gp))
    assert gp.check_drift() < 1e-13


def test_drift_check_triggers_refactorisation(data):
    x, y, s, ell, sf2, mean = data
    gp = SmileGP(ell, sf2, mean, check_every=1).fit(x, y, s)
    gp._R[3, 7] += 1e-6  # simulate accumulated damage to the factor
    gp.update(10, y=0.22)
    assert gp.n_refactorisations == 1 and gp.last_drift > gp.drift_tol
    assert_same_posterior(gp, fresh(gp))
    periodic = SmileGP(ell, sf2, mean, refactor_every=10).fit(x, y, s)
    for k in range(25):
        periodic.update(k, y=0.2)
    assert periodic.n_refactorisations == 2


def test_downdate_losing_positive_definiteness():
    x = np.array([-0.1, 0.0, 0.0, 0.1])  # a duplicated strike
    y = np.array([0.21, 0.2, 0.2, 0.19])
    s = np.array([1e-4, 1e-4, 1e-4, 1e-4])
    gp = SmileGP(0.1, 1e-3, 0.2).fit(x, y, s)
    gp.update(1, noise=0.0)  # still positive definite: a fallback refactorisation is fine
    assert_same_posterior(gp, fresh(gp))
    before = gp.predict(XS), gp.n_refactorisations
    with pytest.raises(SmileGPError, match="positive definite"):
        gp.update(2, y=0.3, noise=0.0)  # both copies noise-free: singular
    np.testing.assert_array_equal(gp.noise, [1e-4, 0.0, 1e-4, 1e-4])  # model unchanged
    np.testing.assert_array_equal(gp.y, y)
    np.testing.assert_allclose(gp.predict(XS), before[0], rtol=1e-12)
    assert gp.n_downdate_fallbacks >= 1
    with pytest.raises(SmileGPError):
        gp.insert(0.0, 0.2, 0.0)  # noise-free duplicate of a noise-free point
    assert gp.n == 4
    with pytest.raises(SmileGPError):
        SmileGP(0.1, 1e-3).fit(x, y, np.zeros(4))


def test_large_downdate_falls_back_to_refactorisation(data):
    x, y, s, ell, sf2, mean = data
    gp = SmileGP(ell, sf2, mean, downdate_guard=0.5).fit(x, y, s)
    gp.update(20, noise=s[20] * 1e-6)
    assert gp.n_downdate_fallbacks == 1 and gp.n_refactorisations == 1
    assert_same_posterior(gp, fresh(gp))


def test_bad_input_rejected(data):
    x, y, s, ell, sf2, mean = data
    with pytest.raises(ValueError):
        SmileGP(0.0, sf2)
    with pytest.raises(ValueError):
        SmileGP(ell, -1.0)
    gp = SmileGP(ell, sf2, mean)
    with pytest.raises(ValueError):
        gp.fit(x, y[:-1], s)
    with pytest.raises(ValueError):
        gp.fit(x, np.where(x > 0, np.nan, y), s)
    with pytest.raises(ValueError):
        gp.fit(x, y, -s)
    gp.fit(x, y, 1e-5)  # scalar noise broadcasts
    with pytest.raises(IndexError):
        gp.update(60, y=0.2)
    with pytest.raises(ValueError):
        gp.update(0, noise=-1.0)
    with pytest.raises(ValueError):
        gp.insert(np.inf, 0.2, 1e-5)
    assert_same_posterior(gp, SmileGP(ell, sf2, mean).fit(x, y, np.full(60, 1e-5)))
