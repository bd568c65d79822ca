"""Rolling Johansen VECM step against a statsmodels refit of the same window.

For groups of K = 2, 3, 5 prices of one value (an efficient random walk in cents around 500
plus AR(1) pricing errors, so rank K - 1) and windows of 300 and 1800 one-second rows, times

- ``step``: ``RollingVECM.update(row)`` - add the new row's cross products, remove the
  leaving row's, solve the reduced-rank regression from the moments, return a ``VECMFit``;
  median over repeats of the mean over ``--steps`` consecutive steps (amortised rebuilds
  of the moments every ``window`` steps included);
- ``push``: ``RollingVECM.push(row)`` - the moment update alone;
- ``step_batched``: the same steps through ``RollingVECM.update_many(rows)`` in blocks of
  1,000 rows (one compiled loop, a ``VECMFit`` per row; identical results) - what a replay
  or backtest pays per step, without the per-row Python call;
- ``statsmodels_refit``: ``statsmodels.tsa.vector_ar.vecm.VECM(window_rows, ...).fit()`` on the
  same window - the baseline; ``batch_fit``: ``elecflow.leadership.fit_vecm`` on it;
- ``max_rel_dev_vs_statsmodels``: the largest deviation of the last rolling fit from
  statsmodels' fit of the same window over alpha, beta, gamma, det_coef_coint, sigma_u and
  llf (each relative to the block's largest entry), statsmodels being given the window
  centred on 500 (``y - 500``; its ``det_coef_coint`` mapped back by ``- 500 iota' beta``),
  an exact reparametrisation of the "ci" model. ``max_rel_dev_vs_statsmodels_raw``: the same
  against statsmodels on the raw prices - larger, because statsmodels forms the moments of
  levels near 500 that move by cents and loses ~7 digits to cancellation (see
  docs/leadership.md, "Conditioning").

Speed-up = statsmodels_refit / step (and / step_batched). Target: >= 100x. Model: k_ar_diff = 1,
coint_rank = K - 1, deterministic = "ci" (the rolling default). Writes JSON (default
benchmarks/results/rolling_vecm.json) and prints a table.

    python benchmarks/rolling_vecm.py [--json PATH] [--steps 20000] [--k-ar-diff 1]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from _results import machine_info, write_result
from elecflow.leadership import RollingVECM, fit_vecm

HERE = Path(__file__).resolve().parent
GROUPS = (2, 3, 5)
WINDOWS = (300, 1800)
DETERMINISTIC = "ci"


def prices(n_markets: int, n_obs: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    efficient = 500.0 + np.cumsum(rng.normal(0.0, 0.01, n_obs))
    errors = np.zeros((n_obs, n_markets))
    shocks = rng.normal(0.0, 0.01, (n_obs, n_markets))
    persistence = np.linspace(0.3, 0.8, n_markets)
    for t in range(1, n_obs):
        errors[t] = persistence * errors[t - 1] + shocks[t]
    return efficient[:, None] + errors


def median_time(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def max_rel_dev(a, b, det_coef_coint=None) -> float:
    worst = 0.0
    for name in ("alpha", "beta", "gamma", "det_coef_coint", "sigma_u"):
        x, z = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        if name == "det_coef_coint" and det_coef_coint is not None:
            z = det_coef_coint
        if z.size:
            worst = max(worst, float(np.max(np.abs(x - z)) / np.max(np.abs(z))))
    return max(worst, abs(a.llf - b.llf) / abs(b.llf))


def bench(n_markets: int, window: int, steps: int, k_ar_diff: int, repeats: int = 5) -> dict:
    from statsmodels.tsa.vector_ar.vecm import VECM

    rank = n_markets - 1
    y = prices(n_markets, window + (repeats + 1) * steps + 1, seed=n_markets * 1000 + window)
    # (the batched run below replays the same rows through a second estimator)
    roll = RollingVECM(n_markets, window, k_ar_diff, rank, DETERMINISTIC)
    for row in y[:window + steps]:  # warm-up: fill the window, JIT, caches
        roll.update(row)
    cursor = [window + steps]

    def run_steps():
        start = cursor[0]
        for row in y[start:start + steps]:
            roll.update(row)
        cursor[0] = start + steps

    step = median_time(run_steps, repeats) / steps
    last = roll.update(y[cursor[0]])
    cursor[0] += 1
    window_rows = y[cursor[0] - window:cursor[0]]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = VECM(window_rows, k_ar_diff=k_ar_diff, coint_rank=rank,
                     deterministic=DETERMINISTIC)
        raw = model.fit()
        level = 500.0
        centred = VECM(window_rows - level, k_ar_diff=k_ar_diff, coint_rank=rank,
                       deterministic=DETERMINISTIC).fit()
        # y = (y - c) + c: the inside constant absorbs c' beta
        centred_det = centred.det_coef_coint - level * np.ones(n_markets) @ centred.beta
        n_refits = 100

        def refit():
            VECM(window_rows, k_ar_diff=k_ar_diff, coint_rank=rank,
                 deterministic=DETERMINISTIC).fit()

        sm_refit = median_time(lambda: [refit() for _ in range(n_refits)], 3) / n_refits
    batch = median_time(lambda: [fit_vecm(window_rows, k_ar_diff, rank, DETERMINISTIC)
                                 for _ in range(50)], 5) / 50

    batched = RollingVECM(n_markets, window, k_ar_diff, rank, DETERMINISTIC)
    batched.update_many(y[:window + steps])
    block = 1000
    cursor[0] = window + steps

    def run_batched():
        start = cursor[0]
        for first in range(start, start + steps, block):
            batched.update_many(y[first:min(first + block, start + steps)])
        cursor[0] = start + steps

    step_batched = median_time(run_batched, repeats) / steps

    push_roll = RollingVECM(n_markets, window, k_ar_diff, rank, DETERMINISTIC)
    for row in y[:window]:
        push_roll.push(row)
    push_rows = y[window:window + steps]
    push = median_time(lambda: [push_roll.push(r) for r in push_rows], 1) / steps
    return {
        "n_series": n_markets, "window": window, "k_ar_diff": k_ar_diff,
        "coint_rank": rank, "deterministic": DETERMINISTIC,
        "step": step, "step_batched": step_batched, "push": push,
        "statsmodels_refit": sm_refit, "batch_fit": batch,
        "speedup_vs_statsmodels": sm_refit / step,
        "speedup_batched_vs_statsmodels": sm_refit / step_batched,
        "max_rel_dev_vs_statsmodels": max_rel_dev(last, centred, centred_det),
        "max_rel_dev_vs_statsmodels_raw": max_rel_dev(last, raw),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=str(HERE / "results" / "rolling_vecm.json"))
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--k-ar-diff", type=int, default=1)
    args = ap.parse_args()
    rows = [bench(k, w, args.steps, args.k_ar_diff) for k in GROUPS for w in WINDOWS]
    header = (f"{'K':>2} {'window':>6} {'step us':>8} {'batched':>8} {'push us':>8} "
              f"{'sm refit us':>12} {'fit_vecm us':>11} {'speedup':>8} {'batched':>8} "
              f"{'dev vs sm':>10} {'dev vs sm raw':>14}")
    print(header)
    for r in rows:
        print(f"{r['n_series']:>2} {r['window']:>6} {r['step'] * 1e6:>8.2f} "
              f"{r['step_batched'] * 1e6:>8.2f} {r['push'] * 1e6:>8.2f} "
              f"{r['statsmodels_refit'] * 1e6:>12.0f} {r['batch_fit'] * 1e6:>11.0f} "
              f"{r['speedup_vs_statsmodels']:>7.0f}x {r['speedup_batched_vs_statsmodels']:>7.0f}x "
              f"{r['max_rel_dev_vs_statsmodels']:>10.1e} "
              f"{r['max_rel_dev_vs_statsmodels_raw']:>14.1e}")
    out = {"benchmark": "rolling_vecm", "machine": machine_info(), "target_speedup": 100,
           "command": "python benchmarks/rolling_vecm.py", "results": rows}
    write_result(out, args.json)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
