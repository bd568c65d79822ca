"""ChainSmile against the synthetic day's truth, incremental == fresh fit, counts reconcile."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from elecflow.calendar import utc_ns
from elecflow.chain import BOOK_STATES, ChainSmile
from elecflow.options import QUOTE_REASONS
from elecflow.rnd import l1_distance
from elecflow.smile import SmileGP
from elecflow.synth.options import mixture_density

DAY = dt.date(2024, 11, 5)
EXPIRY = dt.date(2024, 11, 15)
RATE = 0.0483
T_1000 = utc_ns(DAY, dt.time(10, 0))


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    from elecflow.adapters.synthetic import write_synthetic_day
    from elecflow.adapters.vendors import discover, read_canonical
    from elecflow.synth.config import SyntheticDayConfig

    d = tmp_path_factory.mktemp("chainday")
    write_synthetic_day(SyntheticDayConfig(start_et="09:55", end_et="10:05", option_underlyings=["SPY", "QQQ"]),
                        d, progress=False)
    sources, _ = discover(d)
    frames = []
    for src in sources:
        if src.stream != "option_quotes":
            continue
        for b in read_canonical(src):
            ok = b.codes == 0  # parse-level rejects belong to the reader's quarantine
            frames.append(pd.DataFrame({k: v[ok] for k, v in b.columns.items()}))
    quotes = pd.concat(frames, ignore_index=True).sort_values("time", kind="stable")
    truth = pd.read_parquet(d / "ground_truth" / "options_truth.parquet")
    return quotes, truth


def run_chain(quotes, underlying, until_ns, **kw):
    """Feed quotes in time order and refresh on a 1 s engine-time grid up to ``until_ns``."""
    q = quotes[quotes.underlying == underlying]
    recs = list(zip(q.time.to_numpy(np.int64), q.contract, q.strike, q.right, q.bid, q.ask, q.bid_size,
                    q.ask_size))
    cs = ChainSmile(underlying, EXPIRY, RATE, **kw)
    t = int(recs[0][0]) // 10**9 * 10**9
    i, snaps = 0, []
    while t <= until_ns:
        while i < len(recs) and recs[i][0] <= t:
            r = recs[i]
            cs.on_quote(int(r[0]), r[1], float(r[2]), r[3] == "C", r[4], r[5], r[6], r[7])
            i += 1
        snaps.append(cs.refresh(t))
        t += 10**9
    return cs, snaps


def truth_row(truth, underlying, t_ns):
    rows = truth[truth.underlying == underlying]
    return rows.iloc[int(np.argmin(np.abs(rows.time.astype("int64").to_numpy() - t_ns)))]


@pytest.mark.parametrize("underlying", ["SPY", "QQQ"])
def test_density_matches_truth_at_1000(day, underlying):
    quotes, truth = day
    cs, snaps = run_chain(quotes, underlying, T_1000)
    snap = snaps[-1]
    row = truth_row(truth, underlying, T_1000)
    T = row["T"]
    pdf = lambda s: mixture_density(s, T, row.q, row.mean_trump, row.sigma_trump,  # noqa: E731
                                    row.mean_harris, row.sigma_harris)
    m1 = row.q * row.mean_trump + (1 - row.q) * row.mean_harris
    var = (row.q * row.mean_trump**2 * np.exp(row.sigma_trump**2 * T)
           + (1 - row.q) * row.mean_harris**2 * np.exp(row.sigma_harris**2 * T) - m1**2)
    assert snap.rnd is not None, snap.density_error
    l1 = l1_distance(snap.rnd, pdf)
    msg = (f"{underlying}: L1={l1:.4f} F={snap.forward / row.forward - 1:.2e} "
           f"mean={snap.mean / row.forward - 1:.2e} sd={snap.sd / np.sqrt(var) - 1:.4f}")
    assert snap.forward_method == "parity_huber", msg
    assert abs(snap.forward / row.forward - 1) <= 1e-3, msg
    assert abs(snap.discount / row.discount_factor - 1) <= 1e-2, msg
    assert abs(snap.tau - T) < 1e-9
    assert l1 <= 0.05, msg
    assert abs(snap.mean / row.forward - 1) <= 2e-3, msg
    assert abs(snap.sd / np.sqrt(var) - 1) <= 0.05, msg
    assert snap.rnd.diagnostics.arbitrage_free
    # the smile and its quoted points are on the same k = log(K/F) axis, ATM IV inside the band
    assert snap.k_min == snap.quoted_k[0] and snap.k_max == snap.quoted_k[-1]
    assert snap.quoted_iv.min() - 0.01 < snap.atm_iv < snap.quoted_iv.max() + 0.01
    assert np.all(snap.smile_sd >= 0) and snap.smile_mean.shape == snap.smile_k.shape

    # counts reconcile: every quote seen is classified (after a refresh with a forward) ...
    assert snap.n_pending == 0
    assert snap.quotes_seen == ((quotes.underlying == underlying) & (quotes.time.astype(np.int64) <= T_1000)).sum()
    assert sum(snap.reason_counts.values()) == snap.quotes_seen
    assert set(snap.reason_counts) == set(QUOTE_REASONS)
    # ... and every contract of the book is used, ITM-side, or excluded by a reason
    assert set(snap.book_counts) == set(BOOK_STATES)
    assert sum(snap.book_counts.values()) == cs.n_contracts
    assert snap.book_counts["used"] == snap.n_quotes_used == snap.quoted_k.size
    # counters: one first fit, heuristics then 5 marginal-likelihood refits over 301 refreshes
    c = snap.gp_counters
    assert c["refreshes"] == 301 and c["hyper_optimisations"] == 5 and c["gp_refits"] == 5
    assert c["full_fits"] == 1 + c["forward_refits"] + c["bulk_fits"] + c["fallback_fits"]


@pytest.mark.parametrize("underlying", ["SPY", "QQQ"])
def test_incremental_gp_equals_fresh_fit(day, underlying):
    quotes, _ = day
    # every change pushed, never a bulk refit: the GP only ever sees rank-one operations
    cs, snaps = run_chain(quotes, underlying, T_1000, change_tol=0.0, max_update_fraction=1.0,
                          density=False, refit_every=10**9)
    c = snaps[-1].gp_counters
    assert c["full_fits"] == 1 and c["bulk_fits"] == 0 and c["fallback_fits"] == 0
    # sticky points: one changes only when its quote does (5 snapshots of ~100 OTM quotes);
    # a re-quote on a new forward moves the point's input: a remove and an insert
    assert c["removes"] > 300 and c["inserts"] > 300
    gp = cs.gp
    # the GP holds exactly the current book's OTM points
    K, x, y, s = cs.points()
    o = np.argsort(K)
    snap = snaps[-1]
    np.testing.assert_array_equal(K[o], snap.quoted_strike)
    np.testing.assert_array_equal(x[o], snap.quoted_k)  # each quote's own log-moneyness
    np.testing.assert_array_equal(y[o], snap.quoted_iv)
    np.testing.assert_allclose(s[o], snap.quoted_iv_sd**2, rtol=1e-15)
    # ... and its posterior equals a fresh fit on the same points
    fresh = SmileGP(gp.lengthscale, gp.signal_var, mean=gp.mean).fit(x, y, s)
    xs = np.linspace(x.min() - 0.05, x.max() + 0.05, 201)
    m1, v1 = gp.predict(xs)
    m2, v2 = fresh.predict(xs)
    np.testing.assert_allclose(m1, m2, rtol=1e-9)
    np.testing.assert_allclose(v1, v2, rtol=1e-9, atol=1e-9 * gp.signal_var)
    assert abs(gp.log_marginal_likelihood() / fresh.log_marginal_likelihood() - 1) < 1e-9


def test_flat_chain_and_pending_counts():
    """A flat 20 % Black chain: no parity data -> quotes wait unclassified; then the smile is
    flat, the density lognormal, and a crossed / zero-bid quote is counted and dropped."""
    from elecflow.options import black_price

    now = utc_ns(DAY, dt.time(10, 0))
    cs = ChainSmile("XYZ", EXPIRY, RATE, min_points=5, refit_every=10**9)
    cs.on_quote(now, "C100", 100.0, True, 1.0, 1.1, 10, 10)
    snap = cs.refresh(now)  # one call, no pairs, no spot: no forward
    assert snap.forward_method == "none" and snap.n_pending == 1 and snap.rnd is None
    tau = snap.tau
    F, DF = 100.0, np.exp(-RATE * tau)
    for K in np.arange(80.0, 121.0, 1.0):
        for call in (True, False):
            p = float(black_price(F, K, tau, 0.2, call, DF))
            cs.on_quote(now, f"{'C' if call else 'P'}{K:g}", K, call, p - 0.005, p + 0.005, 50, 50)
    cs.on_quote(now, "C120", 120.0, True, 0.5, 0.4, 5, 5)  # crossed replaces a good quote
    snap = cs.refresh(now)
    assert snap.forward_method == "parity_huber" and abs(snap.forward / F - 1) < 1e-6
    assert snap.n_pending == 0 and sum(snap.reason_counts.values()) == snap.quotes_seen == 84
    assert snap.book_counts["crossed"] == 1 and snap.reason_counts["crossed"] == 1
    assert 120.0 not in snap.quoted_strike
    np.testing.assert_allclose(snap.smile_mean, 0.2, atol=2e-4)
    assert abs(snap.mean / F - 1) < 1e-4 and abs(snap.log_sd / (0.2 * np.sqrt(tau)) - 1) < 0.01


def test_asynchronous_quotes_take_the_incremental_path(tmp_path):
    """With each strike quoted at its own second of the minute (``option_quote_spread_seconds``),
    a 1 s refresh sees a few changed contracts: the GP follows them by rank-one updates,
    inserts and removes (no bulk refit after the first minute), and the result still equals
    a fresh fit on the same points."""
    from elecflow.adapters.synthetic import write_synthetic_day
    from elecflow.adapters.vendors import discover, read_canonical
    from elecflow.synth.config import SyntheticDayConfig

    write_synthetic_day(SyntheticDayConfig(start_et="09:30", end_et="09:36", option_underlyings=["SPY"],
                                           option_quote_spread_seconds=60), tmp_path, progress=False)
    sources, _ = discover(tmp_path)
    frames = [pd.DataFrame({k: v[b.codes == 0] for k, v in b.columns.items()})
              for src in sources if src.stream == "option_quotes" for b in read_canonical(src)]
    quotes = pd.concat(frames, ignore_index=True).sort_values("time", kind="stable")
    cs, snaps = run_chain(quotes, "SPY", utc_ns(DAY, dt.time(9, 35, 59)), refit_every=10**9)
    c = snaps[-1].gp_counters
    assert c["updates"] + c["inserts"] > 300, c
    assert c["bulk_fits"] <= 2  # at most while the first minute's strikes arrive
    assert all(s.rnd is not None for s in snaps[120:])
    gp = cs.gp
    fresh = SmileGP(gp.lengthscale, gp.signal_var, mean=gp.mean).fit(gp.x, gp.y, gp.noise)
    xs = np.linspace(gp.x.min(), gp.x.max(), 101)
    np.testing.assert_allclose(gp.predict(xs)[0], fresh.predict(xs)[0], rtol=1e-9)
