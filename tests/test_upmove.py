"""Up-move classifier (elecflow.upmove, graphs/upmove.py): references and contracts.

IRLS against statsmodels' Logit and a scipy optimiser; AUC against a brute-force pairwise
count (and scikit-learn when installed); labels and features by hand; JSON round trip;
streaming scorer == batch; the csp node on curve ticks; the committed model file.
No model is trained on generated days here (docs/upmove.md for the training run).
"""

from __future__ import annotations

import datetime as dt
import json
import math

import csp
import numpy as np
import pytest
from scipy.optimize import minimize

from elecflow import upmove as um
from elecflow.graphs.upmove import UpMoveScore, load_default_model, upmove_probabilities
from elecflow.microstructure import BAR_COLUMNS
from elecflow.schema import MinuteBar

M = um.NS_PER_MINUTE
T0 = 28_846_667 * M  # a whole UTC minute on 2024-11-05
NAN = math.nan


def _logit_data(n=2000, k=4, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)) * np.array([1.0, 2.0, 0.5, 3.0])[:k]
    beta = np.array([0.8, -0.3, 1.2, 0.1])[:k]
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + X @ beta)))).astype(float)
    return X, y


# ---------------------------------------------------------------------------------------------
# logistic regression
# ---------------------------------------------------------------------------------------------


def test_irls_equals_statsmodels_logit_without_penalty():
    sm = pytest.importorskip("statsmodels.api")
    X, y = _logit_data()
    b0, b, _ = um.fit_logistic(X, y, l2=0.0)
    ref = sm.Logit(y, sm.add_constant(X)).fit(method="newton", tol=1e-12, maxiter=100, disp=0).params
    np.testing.assert_allclose(np.r_[b0, b], ref, rtol=0, atol=1e-6)


def test_irls_with_l2_penalty_equals_a_generic_optimiser():
    X, y = _logit_data(seed=2)
    l2 = 25.0
    b0, b, _ = um.fit_logistic(X, y, l2=l2)

    def negobj(beta):
        eta = beta[0] + X @ beta[1:]
        return np.sum(np.logaddexp(0, eta) - y * eta) + 0.5 * l2 * np.sum(beta[1:] ** 2)

    def grad(beta):
        p = 1 / (1 + np.exp(-(beta[0] + X @ beta[1:])))
        return np.r_[np.sum(p - y), X.T @ (p - y) + l2 * beta[1:]]

    ref = minimize(negobj, np.zeros(X.shape[1] + 1), jac=grad, method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(np.r_[b0, b], ref, atol=1e-6)
    # the penalty shrinks the coefficients relative to the unpenalised fit
    assert np.sum(b**2) < np.sum(um.fit_logistic(X, y, l2=0.0)[1] ** 2)


def test_fit_rejects_bad_input_and_separable_data():
    X, y = _logit_data(n=50)
    with pytest.raises(ValueError):
        um.fit_logistic(X, y * 2)
    with pytest.raises(ValueError):
        um.fit_logistic(np.where(X > 2, np.nan, X), y)
    sep = np.r_[-np.arange(1, 6), np.arange(1, 6)].astype(float)[:, None]
    with pytest.raises(RuntimeError):
        um.fit_logistic(sep, (sep[:, 0] > 0).astype(float), l2=0.0, max_iter=30)
    b0, b, _ = um.fit_logistic(sep, (sep[:, 0] > 0).astype(float), l2=1.0)  # a penalty makes it finite
    assert np.isfinite(b).all()


def test_model_fit_standardises_and_is_deterministic():
    X, y = _logit_data(k=3)
    X = X * np.array([1e-4, 1.0, 1e3]) + np.array([5.0, 0.0, -2e3])
    X[::17, 1] = np.nan  # undefined -> the training mean
    names = ("a", "b", "c")
    m1, m2 = um.UpMoveModel.fit(X, y, names, l2=0.0), um.UpMoveModel.fit(X, y, names, l2=0.0)
    assert m1 == m2
    np.testing.assert_allclose(m1.means, np.nanmean(X, 0), rtol=1e-12)
    np.testing.assert_allclose(m1.sds, np.nanstd(X, 0), rtol=1e-12)
    Z = np.nan_to_num((X - np.nanmean(X, 0)) / np.nanstd(X, 0))
    b0, b, _ = um.fit_logistic(Z, y)
    np.testing.assert_allclose(m1.predict_proba(X), 1 / (1 + np.exp(-(b0 + Z @ b))), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# AUC
# ---------------------------------------------------------------------------------------------


def _auc_pairs(y, s):
    pos, neg = s[y == 1], s[y == 0]
    d = pos[:, None] - neg[None, :]
    return ((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size


@pytest.mark.parametrize("discrete", [False, True])
def test_auc_equals_brute_force_pairs(discrete):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    s = rng.normal(size=500) + 0.5 * y
    if discrete:
        s = np.round(s)  # many ties
    assert um.auc(y, s) == pytest.approx(_auc_pairs(y, s), abs=1e-12)
    assert um.auc(y, np.zeros(500)) == 0.5
    assert um.auc(y, y) == 1.0 and um.auc(y, -y) == 0.0
    assert math.isnan(um.auc(np.ones(5), np.arange(5.0)))
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        return
    assert um.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_log_loss():
    assert um.log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert um.log_loss([1, 0], [0.8, 0.1]) == pytest.approx(-(math.log(0.8) + math.log(0.9)) / 2)


# ---------------------------------------------------------------------------------------------
# features and labels on a small bars table
# ---------------------------------------------------------------------------------------------


def _bar(ticker, minute, log_mid, **kw):
    row = dict(ticker=ticker, bucket=T0 + minute * M, log_mid=log_mid, quote_updates=3, avg_rsprd=1e-3,
               pct_trades_iso=NAN, pct_volume_iso=NAN, total_flow_non_iso=0.0, total_flow_iso=0.0, num_trades=0,
               num_trades_iso=0, total_volume=0.0, total_flow=0.0, iso_flow_intensity=NAN, microprice=NAN,
               microprice_var=NAN)
    row.update(kw)
    return row


def _small_bars(seed=4):
    """Three tickers over 12 minutes, with silent minutes, a NaN log_mid and zero changes;
    rows sorted by (bucket, ticker) as the graph emits them."""
    rng = np.random.default_rng(seed)
    rows = []
    for j, tick in enumerate(["AAA", "BBB", "CCC"]):
        lm = math.log(50.0 * (j + 1))
        for minute in range(12):
            if (minute + j) % 5 == 4:  # silent minute: no row
                continue
            lm += rng.choice([0.0, 1.0]) * rng.normal() * 1e-3
            n = int(rng.integers(0, 4))
            vol = float(rng.integers(1, 9) * 100) * n
            flow = float(rng.uniform(-1, 1)) * vol * math.exp(lm)
            rows.append(_bar(tick, minute, NAN if (tick, minute) == ("CCC", 2) else lm,
                             quote_updates=int(rng.integers(0, 30)), avg_rsprd=float(rng.uniform(2e-4, 2e-3)),
                             num_trades=n, total_volume=vol, total_flow=flow if n else 0.0,
                             pct_trades_iso=float(rng.uniform()) if n else NAN,
                             pct_volume_iso=float(rng.uniform()) if n else NAN,
                             iso_flow_intensity=float(rng.uniform(-0.5, 0.5)) if n else NAN))
    rows.sort(key=lambda r: (r["bucket"], r["ticker"]))
    return rows


def _columns(rows):
    return {c: np.array([r[c] for r in rows], dtype=object if c == "ticker" else None) for c in BAR_COLUMNS}


def test_labels_by_hand():
    rows = [_bar("A", 0, 1.0), _bar("A", 1, 1.1), _bar("A", 2, 1.1), _bar("A", 3, 1.05),  # up, zero, down
            _bar("A", 5, 1.2),  # A's minute 4 is silent: minute 3 has no label, minute 5 neither (last)
            _bar("B", 0, 2.0), _bar("B", 1, NAN), _bar("B", 2, 2.1), _bar("B", 3, 2.0)]
    order = np.random.default_rng(0).permutation(len(rows))  # input order does not matter
    y, ok = um.forward_labels(_columns([rows[i] for i in order]))
    inv = np.argsort(order)
    assert ok[inv].tolist() == [True, False, True, False, False, False, False, True, False]
    assert y[inv][ok[inv]].tolist() == [1, 0, 0]


def test_features_by_hand():
    lm = math.log(100.0)
    rows = [_bar("A", 0, lm - 0.002, avg_rsprd=5e-4),
            _bar("A", 1, lm, quote_updates=9, avg_rsprd=4e-4, num_trades=4, total_volume=300.0, total_flow=-15000.0,
                 pct_trades_iso=0.25, pct_volume_iso=0.5, iso_flow_intensity=-0.2)]
    X = um.raw_features(_columns(rows))
    f = dict(zip(um.FEATURES, X[1]))
    assert f["flow_intensity"] == pytest.approx(-0.5)  # -15000 / (300 * 100)
    assert f["iso_flow_intensity"] == -0.2 and f["pct_trades_iso"] == 0.25 and f["pct_volume_iso"] == 0.5
    assert f["avg_rsprd"] == 4e-4 and f["log_quote_updates"] == pytest.approx(math.log(10))
    assert f["lag_ret"] == pytest.approx(math.asinh(20.0))  # 20 bp
    assert f["lag_ret_spreads"] == pytest.approx(math.asinh(0.002 / 4e-4))
    g = dict(zip(um.FEATURES, X[0]))  # no trades: zero flow; no previous minute: NaN lag
    assert g["flow_intensity"] == 0 and g["iso_flow_intensity"] == 0 and g["pct_trades_iso"] == 0
    assert math.isnan(g["lag_ret"]) and math.isnan(g["lag_ret_spreads"])


def _model(seed=5):
    rng = np.random.default_rng(seed)
    k = len(um.FEATURES)
    return um.UpMoveModel(um.FEATURES, tuple(rng.normal(size=k) * 0.1), tuple(rng.uniform(0.5, 2, k)),
                          tuple(rng.normal(size=k)), 0.1, 1.0, {"note": "test"})


def test_json_round_trip_is_exact_and_plain():
    m = _model()
    text = m.to_json()
    back = um.UpMoveModel.from_json(text)
    assert back == m and back.coef == m.coef and back.means == m.means
    assert json.loads(text)["format"] == um.FORMAT
    assert "pickle" not in text and "py/" not in text
    bad = json.loads(text)
    bad["coef"][0] = "nan"
    with pytest.raises(ValueError):
        um.UpMoveModel.from_dict(bad)


def test_streaming_scorer_equals_batch():
    rows = _small_bars()
    m = _model()
    batch_X = um.raw_features(_columns(rows))
    batch = m.predict_bars(_columns(rows))
    scorer = um.UpMoveScorer(m)
    for i, r in enumerate(rows):
        p = scorer.on_bar(r)
        assert p == pytest.approx(batch[i], rel=1e-13, abs=0)
    # features are bit-identical (same formula) on a second pass with a fresh scorer
    s2 = um.UpMoveScorer(m)
    got = np.array([s2.features(r) for r in rows])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(batch_X))
    np.testing.assert_array_equal(np.nan_to_num(got), np.nan_to_num(batch_X))
    with pytest.raises(ValueError):
        s2.on_bar(rows[0])  # a ticker's bars must move forward


def _struct(row):
    return MinuteBar(**{**row, "bucket": dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=row["bucket"] // 1000)})


def test_node_on_curve_ticks():
    rows = _small_bars()
    m = _model()
    batch = m.predict_bars(_columns(rows))
    by_bucket: dict[int, list] = {}
    for r in rows:
        by_bucket.setdefault(r["bucket"], []).append(r)
    ticks = [(_struct(rs[0]).bucket, [_struct(r) for r in rs]) for b, rs in sorted(by_bucket.items())]

    @csp.graph
    def g():
        csp.add_graph_output("p", upmove_probabilities(csp.curve([MinuteBar], ticks), m))

    start = ticks[0][0] - dt.timedelta(minutes=1)
    out = csp.run(g, starttime=start, endtime=ticks[-1][0])["p"]
    assert [t for t, _ in out] == [t for t, _ in ticks]
    flat = [s for _, lst in out for s in lst]
    assert all(isinstance(s, UpMoveScore) for s in flat)
    assert [(s.ticker, s.bucket) for s in flat] == [(b.ticker, b.bucket) for _, lst in ticks for b in lst]
    np.testing.assert_allclose([s.p_up for s in flat], batch, rtol=1e-13, atol=0)


# ---------------------------------------------------------------------------------------------
# the committed model
# ---------------------------------------------------------------------------------------------


def test_committed_model_loads_and_is_finite():
    m = load_default_model()
    assert m.features == um.FEATURES
    nums = np.r_[m.means, m.sds, m.coef, m.intercept, m.l2]
    assert np.isfinite(nums).all() and min(m.sds) > 0
    assert m.metadata["training"]["day_kind"] == "normal"
    assert all(d < "2024-11-05" for d in m.metadata["training"]["dates"])
    um.UpMoveScorer(m)  # usable by the node


def test_committed_model_beats_the_naive_baselines_out_of_sample():
    meta = load_default_model().metadata
    oos = meta["out_of_sample"]
    for key in ("overall", "regular_hours"):
        v = oos[key]
        assert v["n"] > 10_000
        assert v["auc_model"] > v["auc_lag_sign"] > v["auc_constant"] == 0.5
    assert oos["overall"]["log_loss_model"] < oos["overall"]["log_loss_base_rate"]
    assert oos["tickers_model_beats_lag_sign"] >= 0.75 * oos["tickers"]
    assert meta["in_sample"]["auc_model"] > meta["in_sample"]["auc_lag_sign"]
