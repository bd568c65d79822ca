"""Time and accuracy of ``elecflow.theory.equilibrium_alpha(K)`` (the canonical game's alpha*).

For K = 2, 3, 5, 10, 20, 50, 100: the wall time of a cold call (caches cleared; median of
``--repeats``), the returned value and its claimed error, and the distance to a reference:

- K = 2: sqrt(2), exact (Phi = (1 - E[p_1])(1 - alpha^2/2)); also the root of the
  one-dimensional adaptive quadrature of Phi over the log-odds law N(a^2, 2a^2);
- K = 3: the root of Phi computed by a 70^3 tensor Gauss-Hermite rule over the three
  normals of the posterior (independent of the library's method);
- K >= 5: the root of the library's quadrature refined four-fold (steps / 4, wider ranges).

For every K, an independent randomised-QMC estimate of Phi at the returned alpha* (16
scrambles x 2^14 Sobol' points), converted to an alpha deviation through Phi'(alpha*):
it must be zero within its standard error. Target: under 1 s per K at 1e-4 accuracy.
Prints a markdown table and writes JSON (default benchmarks/results/theory_alpha.json).

    python benchmarks/theory_alpha.py [--json PATH] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from scipy import optimize, special

from elecflow.theory import binary_phi, equilibrium_alpha, information_efficiency, phi, phi_monte_carlo
from elecflow.theory.canonical import _alpha_cached, _efficiency_cached, _moments_cached, _moments_raw
from _results import machine_info, write_result

HERE = Path(__file__).resolve().parent
KS = (2, 3, 5, 10, 20, 50, 100)


def cold_time(K: int, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        for cache in (_alpha_cached, _efficiency_cached, _moments_cached):
            cache.cache_clear()
        t0 = time.perf_counter()
        equilibrium_alpha(K)
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def gauss_hermite_phi3(alpha: float, n: int = 70) -> float:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    g1, g2, g3 = np.meshgrid(x, x, x, indexing="ij")
    p1 = special.softmax(np.stack([alpha**2 + alpha * g1, alpha * g2, alpha * g3]), axis=0)[0]
    ww = w[:, None, None] * w[None, :, None] * w[None, None, :]
    return float(np.sum(ww * (1 - alpha**2 * p1) * (1 - p1)))


def reference(K: int, guess: float) -> tuple[float, str]:
    if K == 2:
        return math.sqrt(2.0), "exact sqrt(2)"
    if K == 3:
        root = optimize.brentq(gauss_hermite_phi3, guess - 0.01, guess + 0.01, xtol=1e-14)
        return root, "70^3 tensor Gauss-Hermite"

    def refined(a):
        p1, p11, *_ = _moments_raw(a, K, 3)
        return 1.0 - (1.0 + a * a) * p1 + a * a * p11

    return optimize.brentq(refined, guess - 0.01, guess + 0.01, xtol=1e-14), "quadrature refined 4x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=HERE / "results" / "theory_alpha.json")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    print("| K | alpha*(K) | claimed error | reference (method) | abs. diff | cold time | RQMC alpha dev. (se) "
          "| I(K) |")
    print("|---|---|---|---|---|---|---|---|")
    for K in KS:
        seconds = cold_time(K, args.repeats)
        a = equilibrium_alpha(K)
        ref, how = reference(K, a.value)
        h = 1e-5
        slope = (phi(a.value + h, K).value - phi(a.value - h, K).value) / (2 * h)
        mc = phi_monte_carlo(a.value, K, n=2**14, replicates=16, seed=K)
        dev, dev_se = -mc.value / slope, mc.stderr / abs(slope)
        eff = information_efficiency(K)
        row = {"K": K, "alpha": a.value, "alpha_abs_error": a.abs_error, "reference": ref, "reference_method": how,
               "abs_diff": abs(a.value - ref), "cold_seconds": seconds, "rqmc_phi_at_alpha": mc.value,
               "rqmc_phi_stderr": mc.stderr, "rqmc_alpha_deviation": dev, "rqmc_alpha_deviation_stderr": dev_se,
               "information_efficiency": eff.value, "information_efficiency_abs_error": eff.abs_error}
        if K == 2:
            row["binary_quadrature_root"] = optimize.brentq(binary_phi, 1.3, 1.5, xtol=1e-15)
        rows.append(row)
        print(f"| {K} | {a.value:.12f} | {a.abs_error:.1e} | {ref:.12f} ({how}) | {row['abs_diff']:.1e} | "
              f"{seconds * 1e3:.0f} ms | {dev:+.1e} ({dev_se:.1e}) | {eff.value:.10f} |")
    out = {"benchmark": "theory_alpha", "machine": machine_info(), "target": "< 1 s per K at 1e-4 accuracy",
           "rows": rows, "max_abs_diff": max(r["abs_diff"] for r in rows),
           "max_cold_seconds": max(r["cold_seconds"] for r in rows)}
    write_result(out, args.json)
    print(f"max |alpha - reference| = {out['max_abs_diff']:.1e}, slowest cold call {out['max_cold_seconds']:.2f} s; "
          f"wrote {args.json}")


if __name__ == "__main__":
    main()
