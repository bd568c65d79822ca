"""Chain refresh latency of ``density_from_smile`` (issue 4): closed-form tails vs the
previous implementation (adaptive ``quad_vec`` tail moments, ``brentq`` tail quantiles),
both measured in the same run.

Smiles (F = 570, DF = 0.9987, tau = 10/365, trusted range k in [-0.09, +0.075], roughly
SPY's quoted strikes, so the tails carry ~2 % of the mass and the tail code is exercised):

- ``lognormal``: flat 20 % IV (callable);
- ``mixture``: the implied vols of a two-lognormal mixture (the synthetic day's election
  model: q = 0.5, state means 570 +- 2 %, state vols 18 % / 24 %) at 41 nodes, passed as
  ``(k_nodes, iv_nodes)`` (cubic spline), i.e. what a fitted smile hands over;
- ``bump``: a smile with a butterfly arbitrage (IV bump at k = 0.03), so ``repair="auto"``
  really runs the NNLS projection.

For n_grid = 100, 200, 400, 800, default ``tails="lognormal"``: ``repair="never"`` and
``repair="always"`` (lognormal, mixture: the projection is set up and finds the curve
arbitrage-free) and ``repair="auto"`` (bump: an actual repair). Each timing is the median
over ``--repeats`` batches of the mean per-call time. Also recorded: the largest relative
difference of the summary statistics (moments, quantiles, masses) between the two
implementations. Writes JSON (default benchmarks/results/rnd_refresh.json).

    python benchmarks/rnd_refresh.py [--json PATH] [--sizes 100,200,400,800] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from elecflow.rnd import _density_from_smile_reference, density_from_smile
from elecflow.synth.options import black76, mixture_price
from _results import machine_info, write_result

HERE = Path(__file__).resolve().parent
F, DF, TAU = 570.0, 0.9987, 10 / 365
K_MIN, K_MAX = -0.09, 0.075
STATS = ("mean", "sd", "skew", "kurtosis", "log_mean", "log_sd", "log_skew", "log_kurtosis",
         "mass_left_tail", "mass_right_tail", "mass_error")


def mixture_nodes(n_nodes: int = 41):
    args = (TAU, DF, 0.5, F * 1.02, 0.18, F * 0.98, 0.24)
    k = np.linspace(K_MIN - 0.03, K_MAX + 0.03, n_nodes)
    iv = np.empty_like(k)
    for i, kk in enumerate(k):
        K = F * np.exp(kk)
        call = bool(K >= F)
        p = float(mixture_price(K, *args, call))
        iv[i] = brentq(lambda s: float(black76(F, K, TAU, s, DF, call)) - p, 1e-4, 10.0, xtol=1e-14)
    return k, iv


def smiles():
    return {
        "lognormal": lambda k: np.full_like(k, 0.2),
        "mixture": mixture_nodes(),
        "bump": lambda k: 0.2 + 0.05 * np.exp(-0.5 * ((k - 0.03) / 0.006) ** 2),
    }


def per_call(fn, repeats: int, budget: float = 0.2) -> float:
    """Median over ``repeats`` batches of the mean time per call (batch ~ ``budget`` s)."""
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    n = max(1, int(budget / one))
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n)
    return float(np.median(out))


def max_rel_diff(a, b) -> float:
    d = [abs(getattr(a, s) - getattr(b, s)) / max(abs(getattr(b, s)), 1.0) for s in STATS]
    d.append(float(np.max(np.abs(a.quantiles / b.quantiles - 1.0))))
    return float(max(d))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(HERE / "results" / "rnd_refresh.json"))
    ap.add_argument("--sizes", default="100,200,400,800")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    cases = [("lognormal", "never"), ("lognormal", "always"), ("mixture", "never"), ("mixture", "always"),
             ("bump", "auto")]
    sm = smiles()
    rows = []
    for name, repair in cases:
        for n in sizes:
            kw = dict(n_grid=n, repair=repair)
            call = lambda fn: fn(sm[name], F, DF, TAU, K_MIN, K_MAX, **kw)  # noqa: E731
            new, old = call(density_from_smile), call(_density_from_smile_reference)
            t_new = per_call(lambda: call(density_from_smile), args.repeats)
            t_old = per_call(lambda: call(_density_from_smile_reference), args.repeats)
            row = dict(smile=name, repair=repair, n_grid=n, new_ms=1e3 * t_new, old_ms=1e3 * t_old,
                       speedup=t_old / t_new, repaired=new.diagnostics.repaired,
                       repair_iterations=new.diagnostics.repair_iterations,
                       tail_mass=new.mass_left_tail + new.mass_right_tail, max_rel_diff=max_rel_diff(new, old))
            rows.append(row)
            print(f"{name:9s} repair={repair:6s} n={n:4d}  new {row['new_ms']:8.3f} ms  old {row['old_ms']:8.3f} ms"
                  f"  x{row['speedup']:6.1f}  diff {row['max_rel_diff']:.1e}", flush=True)
    r400 = [r for r in rows if r["n_grid"] == 400 and r["repair"] == "never"]
    out = {
        "benchmark": "rnd_refresh",
        "forward": F, "discount": DF, "tau": TAU, "k_range": [K_MIN, K_MAX], "tails": "lognormal",
        "rows": rows,
        "target_ms_at_400": 1.0,
        "target_met": bool(all(r["new_ms"] <= 1.0 for r in r400)),
        "numpy": np.__version__,
        **machine_info(),
    }
    write_result(out, args.json)
    print(f"target (<= 1 ms at n=400, no repair) met: {out['target_met']}; wrote {args.json}")


if __name__ == "__main__":
    main()
