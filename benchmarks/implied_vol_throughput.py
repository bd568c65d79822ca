"""Implied-vol throughput: elecflow.options.implied_vol vs py_lets_be_rational and py_vollib.

10^5 options (random strikes out to ~8 standard deviations, expiries from 1 minute to
30 years, vols 1%-300%, calls and puts, ITM and OTM).  For every solver: options per second
(best of ``--repeat`` runs for ours, one pass of a per-option Python loop for the peers)
and the maximum relative price round-trip error (re-priced with elecflow's bs_price, on
the cases where a volatility exists in floating point).  py_vollib_vectorized is measured
when importable and otherwise reported as skipped.

Writes benchmarks/results/implied_vol_throughput.json.  Usage:
    python benchmarks/implied_vol_throughput.py [--n 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from elecflow import options as o  # noqa: E402

MINUTE = 1.0 / (365.0 * 24 * 60)


def make_chain(n, seed=20241105):
    rng = np.random.default_rng(seed)
    S = rng.uniform(5, 500, n)
    tau = np.exp(rng.uniform(np.log(MINUTE), np.log(30.0), n))
    r = rng.uniform(0.0, 0.08, n)
    vol = np.exp(rng.uniform(np.log(0.01), np.log(3.0), n))
    F = S * np.exp(r * tau)
    K = F * np.exp(rng.uniform(-8, 8, n) * vol * np.sqrt(tau))
    call = rng.random(n) < 0.5
    price = o.bs_price(S, K, tau, r, vol, call)
    DF = np.exp(-r * tau)
    intr = DF * np.where(call, np.maximum(F - K, 0), np.maximum(K - F, 0))
    upper = DF * np.where(call, F, K)
    valid = ((price - intr) > 1e-280) & (price < upper * (1 - 1e-15)) & (price > 1e-300)
    return S, K, tau, r, vol, call, price, valid


def roundtrip(iv, S, K, tau, r, call, price, valid):
    ok = valid & np.isfinite(iv)
    p2 = o.bs_price(S[ok], K[ok], tau[ok], r[ok], iv[ok], call[ok])
    rel = np.abs(p2 - price[ok]) / price[ok]
    return {
        "max_rel_price_roundtrip_error": float(rel.max()) if rel.size else None,
        "p99_rel_price_roundtrip_error": float(np.quantile(rel, 0.99)) if rel.size else None,
        "n_cases_with_vol": int(valid.sum()),
        "n_failed_or_nan": int((valid & ~np.isfinite(iv)).sum()),
        "n_rel_error_above_1e-12": int((rel > 1e-12).sum()),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results", "implied_vol_throughput.json"))
    args = ap.parse_args(argv)
    S, K, tau, r, vol, call, price, valid = make_chain(args.n)
    n = args.n
    results = {}

    # ours (warm up the numba kernels first; compile time reported separately)
    t0 = time.perf_counter()
    o.implied_vol(price[:10], S[:10], K[:10], tau[:10], r[:10], call[:10])
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        iv = o.implied_vol(price, S, K, tau, r, call)
        times.append(time.perf_counter() - t0)
    F, DF = S * np.exp(r * tau), np.exp(-r * tau)
    _, iters = o.black_implied_vol(price, F, K, tau, call, DF, return_iterations=True)
    results["elecflow"] = {
        "options_per_second": n / min(times),
        "seconds_best": min(times),
        "seconds_median": float(np.median(times)),
        "first_call_seconds_incl_jit_or_cache_load": compile_s,
        "threads": 1,
        "mean_iterations": float(iters[valid].mean()),
        "max_iterations": int(iters[valid].max()),
        **roundtrip(iv, S, K, tau, r, call, price, valid),
    }

    # py_lets_be_rational: per-option Python loop on the undiscounted Black price
    try:
        import py_lets_be_rational as lbr

        und = price / DF
        q = np.where(call, 1.0, -1.0)
        out = np.full(n, np.nan)
        t0 = time.perf_counter()
        for i in range(n):
            try:
                out[i] = lbr.implied_volatility_from_a_transformed_rational_guess(
                    und[i], F[i], K[i], tau[i], q[i])
            except Exception:
                pass
        dt_ = time.perf_counter() - t0
        results["py_lets_be_rational"] = {
            "version": getattr(lbr, "__version__", "1.0.1?"),
            "options_per_second": n / dt_, "seconds": dt_, "loop": "per-option Python",
            **roundtrip(out, S, K, tau, r, call, price, valid),
        }
    except ImportError as e:  # pragma: no cover
        results["py_lets_be_rational"] = {"skipped": f"not importable: {e}"}

    # py_vollib: per-option Python loop (Black-Scholes interface, its own LBR underneath)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from py_vollib.black_scholes.implied_volatility import implied_volatility as pv_iv
            import py_vollib
        flags = np.where(call, "c", "p")
        out = np.full(n, np.nan)
        t0 = time.perf_counter()
        for i in range(n):
            try:
                out[i] = pv_iv(price[i], S[i], K[i], tau[i], r[i], flags[i])
            except Exception:
                pass
        dt_ = time.perf_counter() - t0
        results["py_vollib"] = {
            "version": getattr(py_vollib, "__version__", "1.0.12"),
            "options_per_second": n / dt_, "seconds": dt_, "loop": "per-option Python",
            **roundtrip(out, S, K, tau, r, call, price, valid),
        }
    except ImportError as e:  # pragma: no cover
        results["py_vollib"] = {"skipped": f"not importable: {e}"}

    try:
        import py_vollib_vectorized  # noqa: F401
    except ImportError as e:
        results["py_vollib_vectorized"] = {
            "skipped": f"not installed in this environment ({e}); not measured"}
    else:
        from py_vollib_vectorized import vectorized_implied_volatility as vv

        flags = np.where(call, "c", "p")
        try:
            t0 = time.perf_counter()
            out = np.asarray(vv(price, S, K, tau, r, flags, q=0, model="black_scholes",
                                return_as="numpy", on_error="ignore"), dtype=float)
            dt_ = time.perf_counter() - t0
        except Exception as e:  # measured on 0.1.1 with numba 0.68: its numba code no longer compiles
            results["py_vollib_vectorized"] = {
                "skipped": f"installed but fails at run time ({type(e).__name__}: {str(e).splitlines()[0][:200]})"}
        else:
            results["py_vollib_vectorized"] = {"options_per_second": n / dt_, "seconds": dt_,
                                               **roundtrip(out, S, K, tau, r, call, price, valid)}

    ours = results["elecflow"]["options_per_second"]
    speedup = {k: ours / v["options_per_second"] for k, v in results.items()
               if k != "elecflow" and "options_per_second" in v}
    payload = {
        "benchmark": "implied_vol_throughput",
        "n_options": n,
        "chain": "S U(5,500); tau logU(1 min, 30 y); r U(0,8%); vol logU(1%,300%); "
                 "ln(K/F) U(-8,8) sd; calls/puts 50/50; no dividends (py_vollib has none)",
        "accuracy_target_max_rel_price_roundtrip": 1e-12,
        "results": results,
        "speedup_of_elecflow_vs": speedup,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=2)
    os.replace(tmp, args.out)
    print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
