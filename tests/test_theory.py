"""The "Arrow-Debreu Meets Kyle" equilibrium model (elecflow.theory).

References used here, all independent of the code under test:

* for K = 2 the log-odds law N(alpha^2, 2 alpha^2), integrated by adaptive quadrature, and
  the closed form Phi = (1 - E[p_1])(1 - alpha^2/2) (so alpha*(2) = sqrt(2));
* for K = 3 a tensor Gauss-Hermite rule over the three normals of the canonical posterior;
* randomised quasi-Monte Carlo of the canonical posterior, with replicate standard errors;
* exact moment identities of the posterior (E[p_1] + (K-1) E[p_l] = 1, ...);
* finite differences of the pricing kernel for the price-impact matrices;
* brute-force best responses in the original game (all N orders, BFGS on the expected
  profit with common random numbers): a belief is an equilibrium iff it is its own best
  response within Monte Carlo error;
* Kyle (1985)'s closed form beta = sigma_eps / sigma_v, lambda = sigma_v / (2 sigma_eps),
  Var(P) = sigma_v^2 / 2;
* the paper's own statements (Section 2's prices, eq. (2), footnotes 8-9; Examples 7.1-7.3;
  Prop. 7.6; Figures 2, 6, 7), tested as far as they hold; where they do not, the test
  asserts what is true and says so (docs/theory.md has the discussion).
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from elecflow.cli import main
from elecflow.theory import (
    ADKyleModel,
    Estimate,
    best_response,
    binary_information_efficiency,
    binary_phi,
    canonical_moments,
    discretised_kyle,
    equilibrium_alpha,
    information_efficiency,
    insider_profit,
    kyle_linear_equilibrium,
    normal_noise,
    phi,
    phi_monte_carlo,
    posterior_weights,
    state_prices,
)
from elecflow.theory.canonical import _alpha_cached, _moments_raw
from elecflow.theory.derivatives import (
    example_signals,
    insider_smile,
    option_payoffs,
    replicate,
    sign_pattern,
    smile_curvature,
)
from elecflow.theory.equilibrium import symmetric_equilibrium


def simplex_eta(K: int, N: int, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random distributions whose centred rows form a regular simplex in the Sigma^2 metric:
    eta_k = m + s u_k with u_k Sigma^2-orthonormal, summing to 0 and Sigma^2-orthogonal to m."""
    m = rng.dirichlet(np.full(N, 5.0))
    R = rng.standard_normal((N, K))
    basis, _ = np.linalg.qr(np.column_stack([1.0 / sigma, sigma * m]))
    R -= basis @ (basis.T @ R)
    V, _ = np.linalg.qr(R)
    U = V / sigma[:, None]
    s = 0.5 * m.min() / np.abs(U).max()
    return m[None, :] + s * U.T


def centred_exposure_gap(model: ADKyleModel, W_found: np.ndarray, W_ref: np.ndarray) -> float:
    """Relative distance of the payoff-relevant parts (centred exposures Q eta W) of two orders."""
    Q = np.eye(model.K) - 1.0 / model.K
    a, b = Q @ model.eta @ W_found, Q @ model.eta @ W_ref
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --------------------------------------------------------------------------- canonical game


@pytest.mark.parametrize("alpha", [0.3, 0.8, 1.2, math.sqrt(2), 2.0, 3.0])
def test_binary_phi_closed_form_and_laplace_quadrature(alpha):
    e1 = stats.norm(alpha**2, math.sqrt(2) * alpha).expect(special.expit, epsabs=1e-14, epsrel=1e-13)
    assert binary_phi(alpha) == pytest.approx((1 - e1) * (1 - alpha**2 / 2), abs=1e-12)
    est = phi(alpha, 2)
    assert est.value == pytest.approx(binary_phi(alpha), abs=max(1e-11, est.abs_error))


def test_alpha_and_efficiency_for_two_signals_are_exact():
    a, i = equilibrium_alpha(2), information_efficiency(2)
    assert abs(a.value - math.sqrt(2)) < 1e-11 and a.abs_error < 1e-9
    assert abs(a.value - math.sqrt(2)) <= a.abs_error
    assert i.value == pytest.approx(binary_information_efficiency(), abs=1e-11)
    assert float(a) == a.value and isinstance(a, Estimate)
    assert "+/-" in f"{a:.6f}"


@pytest.mark.parametrize("K", [3, 7, 40])
@pytest.mark.parametrize("alpha", [0.5, 1.5, 2.5])
def test_posterior_moment_identities(K, alpha):
    m = canonical_moments(alpha, K)
    assert m.p1 + (K - 1) * m.p2 == pytest.approx(1.0, abs=1e-12)
    assert m.p11 + (K - 1) * m.p12 == pytest.approx(m.p1, abs=1e-12)
    assert m.p12 + m.p22 + (K - 2) * m.p23 == pytest.approx(m.p2, abs=1e-12)
    assert m.abs_error < 1e-11
    cov = m.covariance_mean(1)
    assert np.allclose(cov.sum(axis=1), 0.0, atol=1e-12) and np.allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > -1e-12)


def test_three_signal_phi_against_tensor_gauss_hermite():
    x, w = np.polynomial.hermite_e.hermegauss(70)
    w = w / w.sum()
    for alpha in (0.7, 1.523, 2.2):
        g1, g2, g3 = np.meshgrid(x, x, x, indexing="ij")
        logits = np.stack([alpha**2 + alpha * g1, alpha * g2, alpha * g3])
        p1 = special.softmax(logits, axis=0)[0]
        ww = w[:, None, None] * w[None, :, None] * w[None, None, :]
        ref = float(np.sum(ww * (1 - alpha**2 * p1) * (1 - p1)))
        assert phi(alpha, 3).value == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("K,alpha", [(3, 1.0), (5, 1.6), (20, 2.0)])
def test_phi_against_randomised_qmc(K, alpha):
    quad, mc = phi(alpha, K), phi_monte_carlo(alpha, K, n=2**13, replicates=12, seed=K)
    assert abs(quad.value - mc.value) <= mc.abs_error + quad.abs_error
    assert mc.stderr < 2e-4


def test_alpha_error_estimate_is_honest_and_accurate():
    for K in (3, 10, 50, 100):
        a = equilibrium_alpha(K)
        assert a.abs_error < 1e-9
        # a root of the refined Phi (halved steps, wider range) is the better reference
        ref = optimize.brentq(lambda x: 1 - (1 + x * x) * _moments_raw(x, K, 1)[0] + x * x * _moments_raw(x, K, 1)[1],
                              a.value - 1e-3, a.value + 1e-3, xtol=1e-14)
        assert abs(a.value - ref) <= a.abs_error
        assert phi(a.value, K).value == pytest.approx(0.0, abs=1e-10)
        assert phi(0.0, K).value == pytest.approx(1 - 1 / K)


def test_alpha_increasing_concave_and_efficiency_decreasing_convex():
    """Figures 2 and 6 / Prop. 7.10, on K = 2..60: second differences far beyond the errors."""
    ks = range(2, 61)
    a = np.array([equilibrium_alpha(k).value for k in ks])
    i = np.array([information_efficiency(k).value for k in ks])
    err_a = max(equilibrium_alpha(k).abs_error for k in ks)
    err_i = max(information_efficiency(k).abs_error for k in ks)
    assert np.all(np.diff(a) > 4 * err_a) and np.all(np.diff(a, 2) < -4 * err_a)
    assert np.all(np.diff(i) < -4 * err_i) and np.all(np.diff(i, 2) > 4 * err_i)
    assert np.all(i > 1.0 / np.array(list(ks)))             # prices always learn something


def test_equilibrium_alpha_for_one_hundred_signals_is_fast():
    _alpha_cached.cache_clear()
    import time

    t0 = time.perf_counter()
    a = equilibrium_alpha(100)
    assert time.perf_counter() - t0 < 5.0                   # benchmark target: < 1 s on an idle core
    assert a.abs_error < 1e-4


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, "3"])
def test_bad_number_of_signals_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="K must"):
        equilibrium_alpha(bad)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), 9.0, "x"])
def test_bad_alpha_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="alpha"):
        phi(bad, 3)


# ---------------------------------------------------------------- the general model: checks


@pytest.mark.parametrize("kwargs,match", [
    (dict(eta=[[0.5, 0.5]]), "K >= 2"),
    (dict(eta=[[0.5, 0.6], [0.5, 0.5]]), "sum to 1"),
    (dict(eta=[[1.5, -0.5], [0.5, 0.5]]), ">= 0"),
    (dict(eta=[[0.5, 0.5], [0.2, 0.8]], sigma=[1.0, 0.0]), "sigma"),
    (dict(eta=[[0.5, 0.5], [0.2, 0.8]], sigma=[1.0, 1.0, 1.0]), "length N"),
    (dict(eta=[[0.5, 0.5], [0.2, 0.8]], prior=[0.7, 0.2]), "sum to 1"),
    (dict(eta=[[0.5, 0.5], [0.2, 0.8]], prior=[1.0, 0.0]), "> 0"),
    (dict(eta=[0.5, 0.5]), "K x N"),
    (dict(eta=[[0.2, 0.8], [0.2, 0.8]]), "nothing to be informed"),
])
def test_model_rejects_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ADKyleModel(**kwargs)


def test_information_matrix_square_root_and_pseudo_inverse():
    rng = np.random.default_rng(5)
    eta = rng.dirichlet(np.ones(6), 3)
    m = ADKyleModel(eta, sigma=rng.uniform(0.5, 2, 6))
    assert np.allclose(m.L @ m.L, m.information_matrix) and np.allclose(m.L, m.L.T)
    assert np.allclose(m.L_pinv, np.linalg.inv(m.L)) and m.linearly_independent
    dep = np.vstack([eta, 0.5 * (eta[0] + eta[1])])           # a fourth, dependent story
    md = ADKyleModel(dep)
    assert not md.linearly_independent
    assert np.allclose(md.L_pinv, np.linalg.pinv(md.L, rcond=1e-10), atol=1e-8)
    assert not md.symmetric                                   # dependence breaks condition (*)


def test_paper_formula_is_the_equilibrium_when_sigma_is_constant_and_gram_is_symmetric():
    """eq. (37) = the closed form when sigma is constant and eta eta' = a I + b 11'."""
    rng = np.random.default_rng(8)
    for K in (2, 3, 4):
        N = K + 4
        eta = simplex_eta(K, N, np.ones(N), rng)
        gram = eta @ eta.T
        assert np.allclose(gram - np.diag(np.diag(gram)), gram[0, 1] * (1 - np.eye(K)))
        m = ADKyleModel(eta, sigma=0.7)
        assert m.symmetric
        assert np.allclose(m.paper_demand(), m.demand(), atol=1e-10)


@pytest.mark.parametrize("K", [2, 3, 4, 5])
def test_closed_form_is_a_brute_force_best_response_in_the_original_game(K):
    """Random stories in the regular-simplex class (*), unequal noise: every signal's best
    response over all N orders reproduces the equilibrium demand within Monte Carlo error."""
    rng = np.random.default_rng(100 + K)
    N = K + 3
    sigma = rng.uniform(0.5, 2.0, N)
    model = ADKyleModel(simplex_eta(K, N, sigma, rng), sigma)
    assert model.symmetric and model.equilibrium.closed_form
    W = model.demand()
    noise = normal_noise(sigma, 2**13, seed=K)
    for k in range(K):
        br = best_response(k, model.eta, sigma, W, noise=noise)
        j_eq, grad = insider_profit(W[:, k], k, model.eta, sigma, W, noise=noise)
        assert centred_exposure_gap(model, br.orders, W[:, k]) < 5e-3
        assert br.profit - j_eq < 2e-5 * abs(j_eq)             # quadratic in the (MC-sized) gap
        assert np.linalg.norm(grad) < 1e-3 * np.linalg.norm(model.eta[k])


@pytest.mark.parametrize("K", [2, 3, 5])
def test_paper_eq37_leaves_an_arbitrage(K):
    """Against the belief of eq. (37) with unequal noise there is a portfolio that moves no
    price but earns: profit is unbounded, and the brute-force search runs off."""
    rng = np.random.default_rng(200 + K)
    N = K + 3
    sigma = rng.uniform(0.5, 2.0, N)
    model = ADKyleModel(simplex_eta(K, N, sigma, rng), sigma)
    belief = model.paper_demand()
    # V orthogonal to every difference of Sigma^{-2} belief columns moves no posterior
    diffs = (belief[:, 1:] - belief[:, :1]) / (sigma**2)[:, None]
    _, _, vt = np.linalg.svd(diffs.T)
    null = vt[K - 1:].T                                       # (N, N - K + 1)
    om = model.sample_order_flow(0, 50, rng)
    noise = normal_noise(sigma, 2**12, seed=1)
    _, grad = insider_profit(belief[:, 0], 0, model.eta, sigma, belief, noise=noise)
    V = null @ (null.T @ grad)                                # the earning zero-impact direction
    assert np.allclose(model.posterior(om + 10 * V, belief), model.posterior(om, belief), atol=1e-12)
    j0, _ = insider_profit(belief[:, 0], 0, model.eta, sigma, belief, noise=noise)
    j1, _ = insider_profit(belief[:, 0] + 1000 * V, 0, model.eta, sigma, belief, noise=noise)
    j2, _ = insider_profit(belief[:, 0] + 2000 * V, 0, model.eta, sigma, belief, noise=noise)
    assert j1 - j0 > 0.1 * j0 and j2 - j0 == pytest.approx(2 * (j1 - j0), rel=1e-6)   # linear, unbounded
    br = best_response(0, model.eta, sigma, belief, noise=noise, max_norm=1e4)
    assert not br.converged and br.profit > 100 * j0


def test_generic_stories_need_the_numerical_equilibrium_and_efficiency_is_not_invariant():
    """K = 3 with generic distributions: condition (*) fails, the symmetric formula is not a
    best response, the numerical equilibrium is, and E[q_k | s_k] differs across signals and
    from I(3) (Corollary 7.9 needs (*))."""
    rng = np.random.default_rng(3)
    sigma = np.ones(6)
    model = ADKyleModel(rng.dirichlet(np.ones(6), 3), sigma)
    assert not model.symmetric and model.simplex_defect > 0.1
    eq = model.equilibrium
    assert not eq.closed_form and eq.residual < 1e-7
    noise = normal_noise(sigma, 2**13, seed=7)
    naive = symmetric_equilibrium(model.eta, sigma).demand
    for k in range(3):
        br = best_response(k, model.eta, sigma, eq.demand, noise=noise)
        assert centred_exposure_gap(model, br.orders, eq.demand[:, k]) < 5e-3
        br_naive = best_response(k, model.eta, sigma, naive, noise=noise)
        assert centred_exposure_gap(model, br_naive.orders, naive[:, k]) > 0.1
    overall, per_signal = model.information_efficiency()
    assert np.ptp(per_signal) > 20 * eq.efficiency_error.max()
    assert abs(overall.value - information_efficiency(3).value) > 10 * overall.abs_error


def test_linearly_dependent_stories_use_the_numerical_equilibrium():
    """Remark 6.4's pseudo-inverse case: a third story that is the midpoint of two others.
    Its insider does not trade in equilibrium; eq. (37) with L^+ leaves an arbitrage."""
    rng = np.random.default_rng(1)
    two = rng.dirichlet(np.ones(5), 2)
    model = ADKyleModel(np.vstack([two, two.mean(axis=0)]))
    assert not model.linearly_independent and not model.symmetric
    eq = model.equilibrium
    noise = normal_noise(model.sigma, 2**13, seed=2)
    for k in range(3):
        br = best_response(k, model.eta, model.sigma, eq.demand, noise=noise)
        j_eq, _ = insider_profit(eq.demand[:, k], k, model.eta, model.sigma, eq.demand, noise=noise)
        assert br.profit - j_eq < 1e-8
    assert np.linalg.norm(model.eta @ eq.demand[:, 2]) < 1e-6 * np.linalg.norm(model.eta @ eq.demand[:, 0])
    assert eq.efficiency[2] < eq.efficiency[0] < information_efficiency(3).value   # (0.41, 0.63 vs 0.68)
    br = best_response(0, model.eta, model.sigma, model.paper_demand(), noise=noise, max_norm=1e4)
    assert not br.converged


def test_non_uniform_prior_equilibrium_and_the_rescaling_of_assumption_1():
    rng = np.random.default_rng(11)
    sigma = np.ones(4)
    model = ADKyleModel(rng.dirichlet(np.ones(4), 2), sigma, prior=[0.7, 0.3])
    assert not model.symmetric
    eq = model.equilibrium
    noise = normal_noise(sigma, 2**13, seed=3)
    for k in range(2):
        br = best_response(k, model.eta, sigma, eq.demand, model.prior, noise)
        assert centred_exposure_gap(model, br.orders, eq.demand[:, k]) < 5e-3
    # the paper's prior-as-payoff-rescaling belief is not an equilibrium of the prior game
    br = best_response(0, model.eta, sigma, model.paper_demand(), model.prior, noise, max_norm=1e4)
    assert not br.converged
    _, per_signal = model.information_efficiency()
    assert per_signal[0] > information_efficiency(2).value > per_signal[1]


def test_posterior_over_simulated_order_flow_has_the_law_of_prop_7_7():
    rng = np.random.default_rng(21)
    K, N = 4, 7
    sigma = rng.uniform(0.5, 2.0, N)
    model = ADKyleModel(simplex_eta(K, N, sigma, rng), sigma)
    a = model.alpha.value
    om = model.sample_order_flow(2, 40_000, rng)
    logq = np.log(model.posterior(om))
    lo = logq - logq[:, [0]]                                   # log-odds against signal 0
    # softmax(alpha^2 e_k + alpha G): log q_l - log q_0 = alpha^2 (d_lk - d_0k) + alpha (G_l - G_0)
    assert lo[:, 2].mean() == pytest.approx(a * a, abs=0.03)
    assert lo[:, 1].mean() == pytest.approx(0.0, abs=0.03)
    assert lo[:, 1:].var(axis=0) == pytest.approx(np.full(3, 2 * a * a), rel=0.03)
    assert np.corrcoef(lo[:, 1], lo[:, 3])[0, 1] == pytest.approx(0.5, abs=0.02)
    assert model.posterior(om)[:, 2].mean() == pytest.approx(information_efficiency(K).value, abs=0.005)
    prices = model.prices(om)
    assert np.allclose(prices.sum(axis=1), 1.0)                # state prices are a distribution


def test_price_impact_matrices():
    rng = np.random.default_rng(4)
    x, eta = example_signals("volatility", n_states=41)
    sigma = np.linspace(0.5, 2.0, 41)
    model = ADKyleModel(eta, sigma)
    assert model.symmetric                                     # K = 2 always satisfies (*)
    om = model.sample_order_flow(0, 1, rng)[0]
    lam = model.realised_impact(om)
    h = 1e-5                                                   # central differences: error ~1e-10 relative
    fd = np.stack([(model.prices(om + h * e) - model.prices(om - h * e)) / (2 * h) for e in np.eye(41)], axis=1)
    assert np.allclose(lam, fd, rtol=0, atol=1e-7 * np.abs(lam).max())
    q = model.posterior(om)
    cov = eta.T @ (np.diag(q) - np.outer(q, q)) @ eta
    g = np.trace((np.eye(2) - 0.5) @ model.noise_gram @ (np.eye(2) - 0.5))
    assert np.allclose(lam, model.alpha.value / math.sqrt(g) * cov)   # alpha*/sqrt(g) x payoff covariance
    # expected impact: exact (canonical moments) = mean of realised impacts over order flow
    oms = model.sample_order_flow(1, 4000, rng)
    mc = model.realised_impact(oms).mean(axis=0)
    assert np.allclose(model.expected_impact(1), mc, atol=0.05 * np.abs(mc).max())
    # eq. (38) as printed has the same sign pattern but another scale
    paper = model.paper_impact(1)
    big = np.abs(paper) > 1e-3 * np.abs(paper).max()
    assert np.array_equal(np.sign(paper[big]), np.sign(model.expected_impact(1)[big]))


# ------------------------------------------------------------------------- the paper's cases


def test_section_2_three_state_example():
    eta = np.array([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    rng = np.random.default_rng(2)
    om = rng.normal(size=(200, 3))
    # the intuitive strategy of Section 2: +/- alpha (1, -1, 1); prices follow eq. (2)
    for alpha in (0.3, 1.0):
        belief = alpha * np.array([[1, -1], [-1, 1], [1, -1]], dtype=float)
        delta = om[:, 0] + om[:, 2] - om[:, 1]
        e = np.exp(2 * alpha * delta)
        expected = np.column_stack([0.5 * e / (e + 1), 1 / (e + 1), 0.5 * e / (e + 1)])
        assert np.allclose(state_prices(om, eta, belief, 1.0), expected)
        # footnote 8: unequal noise -> Delta = w1/s1^2 + w3/s3^2 - w2/s2^2
        s = np.array([0.5, 1.0, 2.0])
        d8 = om[:, 0] / s[0] ** 2 + om[:, 2] / s[2] ** 2 - om[:, 1] / s[1] ** 2
        q = posterior_weights(om, belief, s)
        assert np.allclose(np.log(q[:, 0] / q[:, 1]), 2 * alpha * d8)
        # footnote 9: a prior adds its log-odds
        q9 = posterior_weights(om, belief, 1.0, prior=[0.7, 0.3])
        assert np.allclose(np.log(q9[:, 0] / q9[:, 1]), 2 * alpha * delta + np.log(0.7 / 0.3))
    assert np.allclose(state_prices(om[:3], eta, 0 * belief, 1.0), [0.25, 0.5, 0.25])
    assert np.allclose(state_prices(np.array([40.0, -40.0, 40.0]), eta, 5 * belief, 1.0), [0.5, 0, 0.5])
    # payoff covariances under the uniform prior: x1,x3 complements (1/16; the paper says 1/8)
    cov = eta.T @ (np.eye(2) / 2 - 0.25) @ eta
    assert cov[0, 2] == pytest.approx(1 / 16)
    assert cov[0, 1] == pytest.approx(-1 / 8) and cov[1, 2] == pytest.approx(-1 / 8)
    # the equilibrium: demand ~ (1, -2, 1) (not (1, -1, 1)); sufficient statistic w1 + w3 - 2 w2
    model = ADKyleModel(eta)
    W = model.demand()
    assert np.allclose(W[:, 0] / W[0, 0], [1, -2, 1]) and np.allclose(W[:, 1], -W[:, 0])
    shift = np.array([1.0, 1.0, 1.0]) * 0.7 + np.array([1.0, 0.0, -1.0]) * 1.3    # orthogonal to (1, -2, 1)
    assert np.allclose(model.posterior(om + shift), model.posterior(om))
    lam = model.expected_impact()
    assert lam[0, 2] > 0 and lam[0, 1] < 0 and lam[1, 2] < 0 and np.allclose(lam, lam.T)
    # against the intuitive belief, (1, 2, 1) moves no price but earns: no equilibrium
    V = np.array([1.0, 2.0, 1.0])
    assert np.allclose(state_prices(om + 3 * V, eta, belief, 1.0), state_prices(om, eta, belief, 1.0))
    # under s2, adding t V to the believed orders raises the expected profit linearly in t
    # (per unit: E[q_1 | s2] > 0); sizes t and 2t on independent noise samples
    W0 = belief[:, 1]

    def gain(t, noise):
        return (insider_profit(W0 + t * V, 1, eta, 1.0, belief, noise=noise)[0]
                - insider_profit(W0, 1, eta, 1.0, belief, noise=noise)[0])

    noise_a, noise_b = normal_noise(np.ones(3), seed=0), normal_noise(np.ones(3), seed=1)
    per_unit = (eta[1] - state_prices(W0 + noise_a, eta, belief, 1.0)) @ V    # draw by draw
    se = per_unit.std() / math.sqrt(per_unit.size)                            # i.i.d. bound
    t = 100.0
    g1, g2 = gain(t, noise_a), gain(2 * t, noise_b)
    assert g1 > 10 * t * se and g1 / t == pytest.approx(per_unit.mean(), rel=1e-9)
    assert abs(g2 - 2 * g1) < 4 * math.sqrt(5) * t * se


def test_kyle_1985_is_the_single_market_case_with_a_discretised_normal_prior():
    """One market, K values on Gauss-Hermite nodes of N(v0, sigma_v^2) (Remark 3.2), the
    general model's Bayes rule (Theorem 4.1): Kyle's linear pricing, his beta as the best
    response, and half the prior variance in the price."""
    v0, sv, se = 1.0, 0.5, 2.0
    ky = kyle_linear_equilibrium(sv, se)
    assert (ky.beta, ky.lam, ky.revealed_fraction) == pytest.approx((se / sv, sv / (2 * se), 0.5))
    v, prior = discretised_kyle(v0, sv, 40)
    eta, belief = v[:, None], (ky.beta * (v - v0))[None, :]
    sd_omega = math.sqrt(ky.beta**2 * sv**2 + se**2)
    om = np.linspace(-3, 3, 61) * sd_omega
    price = state_prices(om[:, None], eta, belief, se, prior)[:, 0]
    assert np.allclose(price, v0 + ky.lam * om, atol=1e-9)
    z, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    eps = se * z

    def profit(W, k):
        return float(w @ ((v[k] - state_prices((W + eps)[:, None], eta, belief, se, prior)[:, 0]) * W))

    for k in np.flatnonzero(np.abs(v - v0) <= 2 * sv):
        res = optimize.minimize_scalar(lambda W: -profit(W, k), bracket=(0.0, ky.beta * (v[k] - v0) + 1e-3), tol=1e-12)
        assert res.x == pytest.approx(ky.beta * (v[k] - v0), abs=1e-6 * ky.beta * sv)
    var_p = 0.0
    for k in range(40):
        price_k = state_prices((belief[0, k] + eps)[:, None], eta, belief, se, prior)[:, 0]
        var_p += prior[k] * float(w @ (price_k - v0) ** 2)
    assert var_p / sv**2 == pytest.approx(0.5, abs=1e-9)


def test_examples_7_1_to_7_3_sign_patterns():
    expected = {"mean": ("-+", "+-"), "volatility": ("+-+", "-+-"), "skew": ("-+-+", "+-+-")}
    for kind, (p1, p2) in expected.items():
        x, eta = example_signals(kind)
        model = ADKyleModel(eta)
        W = model.demand()
        assert (sign_pattern(W[:, 0]), sign_pattern(W[:, 1])) == (p1, p2), kind
        assert np.allclose(W[:, 1], -W[:, 0])                   # binary signals: mirror-image trades
        assert abs(W[:, 0].sum()) < 1e-12                       # no net bond position
    # Example 7.1: the bull spread switches sign at the midpoint of the two means
    x, eta = example_signals("mean")
    W = ADKyleModel(eta).demand()[:, 0]
    assert 99.0 < x[np.argmax(W > 1e-3 * np.abs(W).max())] < 101.0
    # Example 7.3: long the right tail, short the left tail, antisymmetric about the mean
    x, eta = example_signals("skew")
    W = ADKyleModel(eta).demand()[:, 0]
    assert np.allclose(W, -W[::-1], atol=1e-12)
    # Example 7.2 / Figure 4: zero demand and zero impact where the two densities cross
    x, eta = example_signals("volatility", n_states=801)
    model = ADKyleModel(eta)
    cross = np.flatnonzero(np.diff(np.sign(eta[0] - eta[1])))[0]
    i = cross if abs(eta[0, cross] - eta[1, cross]) < abs(eta[0, cross + 1] - eta[1, cross + 1]) else cross + 1
    W, lam = model.demand(), model.expected_impact()
    assert abs(W[i, 0]) < 0.02 * np.abs(W).max()
    assert np.abs(lam[i]).max() < 0.02 * np.abs(lam).max() and np.abs(lam[:, i]).max() < 0.02 * np.abs(lam).max()
    assert abs(model.paper_demand()[i, 0]) > 0.1 * np.abs(model.paper_demand()).max()   # eq. (37): not zero
    wings = np.argmin(np.abs(x - 85)), np.argmin(np.abs(x - 115))
    assert lam[wings] > 0                                       # x1, x3 of Figure 4: positive cross impact


def test_proposition_7_6_within_straddle_cross_impact():
    """Put-call cross impact of the ATM straddle is positive and rises with the high-vol story's
    volatility; conditional on the true signal it is the same under s1 and s2 for K = 2 (so
    the strict ordering of Prop. 7.6 cannot hold in the binary example)."""
    x = np.linspace(60, 140, 161)
    put, call = option_payoffs(x, [100.0], False)[:, 0], option_payoffs(x, [100.0], True)[:, 0]
    from elecflow.theory.derivatives import discretise

    values = []
    for hi in (8.0, 10.0, 12.0, 14.0):
        eta = np.stack([discretise(stats.norm(100, hi), x), discretise(stats.norm(100, 6.0), x)])
        model = ADKyleModel(eta)
        c1, c2 = model.cross_impact(put, call, k=0), model.cross_impact(put, call, k=1)
        assert c1 > 0 and c1 == pytest.approx(c2, rel=1e-9)
        values.append(c1)
    assert np.all(np.diff(values) > 0)


def test_replication_by_bond_underlying_and_options():
    rng = np.random.default_rng(9)
    x = np.sort(rng.uniform(50, 150, 30))
    W = rng.normal(size=30)
    book = replicate(W, x, 14)
    assert np.allclose(book.payoff(x), W, atol=1e-10)
    assert book.strikes.size + 2 == x.size                      # bond + underlying + N - 2 options
    assert np.all(book.strikes[~book.is_call] <= x[14]) and np.all(book.strikes[book.is_call] > x[14])
    # eq. (7) alone (no bond, no at-the-money put) cannot pay anything at the ATM state
    assert book.bonds == pytest.approx(W[14])
    x7, eta = example_signals("volatility")
    W7 = ADKyleModel(eta).demand()[:, 0]
    assert np.allclose(replicate(W7, x7, 80).payoff(x7), W7, atol=1e-12)
    with pytest.raises(ValueError, match="interior"):
        replicate(W, x, 0)
    with pytest.raises(ValueError, match="increasing"):
        replicate(W, x[::-1], 5)


def test_figure_7_insider_induced_smile():
    smiles = [insider_smile(v, 0.15) for v in (0.25, 0.30, 0.35)]
    curv = []
    for s in smiles:
        k, iv = s.log_moneyness, s.mean_iv
        assert np.all(np.isfinite(iv))
        central = np.abs(k[1:-1]) <= 0.26                       # the convex band ends near |k| = 0.3
        assert np.all(np.diff(iv, 2)[central] > 0)              # convex near the money
        assert np.allclose(iv, iv[::-1], atol=1e-10)            # symmetric in log-moneyness
        assert np.all(iv < s.true_vol) and np.all(iv > s.alt_vol)
        curv.append(smile_curvature(k, iv))
    assert 0 < curv[0] < curv[1] < curv[2]                      # more convex as true vol rises


def test_cli_theory_figures(tmp_path, capsys):
    code = main(["theory", "figures", "--to", str(tmp_path), "--k-max", "8", "--no-progress"])
    assert code == 0
    names = {p.name for p in tmp_path.iterdir()}
    for fig in ("fig2-alpha", "fig3-mean", "fig4-volatility", "fig5-skew", "fig6-efficiency", "fig7-smile"):
        assert f"theory-{fig}.png" in names and f"theory-{fig}.csv" in names
        assert (tmp_path / f"theory-{fig}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "theory-fig2-alpha.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["K"]) for r in rows] == list(range(2, 9))
    assert float(rows[0]["alpha_star"]) == pytest.approx(math.sqrt(2), abs=1e-10)
    assert float(rows[-1]["alpha_star"]) == equilibrium_alpha(8).value
    assert "wrote 12 files" in capsys.readouterr().out
    assert main(["theory", "figures", "--to", str(tmp_path), "--k-max", "2"]) == 2
