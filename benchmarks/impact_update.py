"""Cost of the streaming cross-impact estimator and convergence of eq. (45) on simulated sessions.

1. Update cost per period of ``elecflow.impact.RollingImpactRegression`` for M = 20, 50, 100
   contracts (window 1000 periods, full, including the amortised exact refresh): the
   sufficient-statistics update alone (``shrinkage="gcv"`` or a fixed delta: second moments
   only; ``"lw"``: plus the fourth moments), and the estimate (Lambda, standard errors,
   GCV search) that a node computes when it publishes. BLAS is limited to one thread
   (threadpoolctl): csp runs nodes on one thread, and on the shared 2-core machine
   multithreaded BLAS was measured 50-200x slower for these small matrices; the default-
   thread timing is recorded too.
2. Convergence: the SPY election model (stories = Trump/Harris states, story fixed for the
   session, noise sd 20 contracts per contract and period, calls and puts at the strikes
   nearest the forward) with M = 20, 50, 100 contracts, simulated sessions of n periods,
   ``--reps`` sessions per point: relative Frobenius error ``|Lambda_hat - Lambda| /
   |Lambda|`` against the theoretical matrix E[Lambda | s] (quantiles), and the share of
   sessions whose sign pattern is exact, for OLS, GCV and Ledoit-Wolf shrinkage. Also the
   story-redrawn design (against its regression target and against the prior-average
   impact) and the calibration of the standard errors (sd of z-scores over sessions).
3. Figures: docs/img/impact-convergence.png, docs/img/impact-heatmap.png (theoretical and
   estimated Lambda across strikes, election and volatility stories),
   docs/img/impact-straddle.png (rolling within-straddle statistic over a session).

    python benchmarks/impact_update.py [--json PATH] [--img DIR] [--reps 10] [--quick]

Writes JSON (default benchmarks/results/impact_update.json) and prints the tables.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from elecflow.impact import RollingImpactRegression, fit_impact, straddle_cross_impact
from elecflow.theory.simulator import LognormalStories, OptionMarketModel, simulate_option_market
from _results import machine_info, write_result

HERE = Path(__file__).resolve().parent
DOCS_IMG = HERE.parent / "docs" / "img"
SIZES = {20: 10, 50: 25, 100: 50}            # M contracts -> strikes (call + put each)
WINDOW = 1000


def rel_fro(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ------------------------------------------------------------------------------- timing


def time_updates(M: int, shrinkage, n_updates: int, rng) -> dict:
    est = RollingImpactRegression(M, WINDOW, shrinkage=shrinkage)
    X = rng.normal(size=(WINDOW + n_updates, M)) * 20
    Y = X @ (rng.normal(size=(M, M)) * 1e-3).T + rng.normal(size=(WINDOW + n_updates, M)) * 0.05
    for t in range(WINDOW):
        est.update(Y[t], X[t])
    batches = []
    step = n_updates // 5
    for b in range(5):
        t0 = time.perf_counter()
        for t in range(WINDOW + b * step, WINDOW + (b + 1) * step):
            est.update(Y[t], X[t])
        batches.append((time.perf_counter() - t0) / step)
    est_times = []
    for _ in range(30):
        est._cache = None                                  # force a fresh estimate
        t0 = time.perf_counter()
        est.estimate()
        est_times.append(time.perf_counter() - t0)
    return {"update_us": 1e6 * float(np.median(batches)), "estimate_ms": 1e3 * float(np.median(est_times))}


def timing(quick: bool) -> dict:
    rng = np.random.default_rng(0)
    n_updates = 2000 if quick else 10_000
    out = {}
    for M in SIZES:
        row = {}
        with threadpool_limits(1):
            for sh in ("gcv", 0.0, "lw"):
                row[str(sh)] = time_updates(M, sh, n_updates, rng)
        row["gcv_default_blas_threads"] = time_updates(M, "gcv", min(n_updates, 2000), rng)
        out[M] = row
    return out


# -------------------------------------------------------------------------- convergence


def convergence(reps: int, quick: bool) -> dict:
    out = {}
    for M, n_strikes in SIZES.items():
        model = OptionMarketModel.election("SPY", n_strikes=n_strikes, strike_range=0.2)
        L = model.theoretical_impact(0)
        ns = [500, 1000, 2000, 4000, 8000, 16000, 32000] + ([64000] if M == 20 else [])
        if quick:
            ns = ns[:4]
        rows = []
        for n in ns:
            errs = {"ols": [], "gcv": [], "lw": []}
            signs = {"ols": 0, "gcv": 0, "lw": 0}
            signs_large = {"ols": 0, "gcv": 0, "lw": 0}
            entry_acc = {"ols": [], "gcv": [], "lw": []}
            deltas = []
            for r in range(reps):
                sim = simulate_option_market(model, n, story=r % 2, seed=1000 * M + 10 * r + n % 7, tick=None,
                                             start_ms=0, period_ms=1000)
                for name, sh in (("ols", 0.0), ("gcv", "gcv"), ("lw", "lw")):
                    e = fit_impact(sim.price_changes, sim.order_flow, shrinkage=sh)
                    if not e.ready:
                        errs[name].append(np.nan)
                        continue
                    errs[name].append(rel_fro(e.impact, L))
                    same = np.sign(e.impact) == np.sign(L)
                    signs[name] += int(same.all())
                    identified = np.abs(L) > 4.0 * e.stderr      # entries the window can sign
                    signs_large[name] += int(same[identified].all())
                    entry_acc[name].append(float(same.mean()))
                    if name == "gcv":
                        deltas.append(e.shrinkage)
            row = {"n": n}
            for name in errs:
                a = np.array(errs[name])
                row[name] = {"median": float(np.nanmedian(a)), "q10": float(np.nanquantile(a, 0.1)),
                             "q90": float(np.nanquantile(a, 0.9)), "sign_exact_share": signs[name] / reps,
                             "sign_exact_identified_share": signs_large[name] / reps,
                             "sign_entry_accuracy": float(np.mean(entry_acc[name])) if entry_acc[name] else None}
            row["gcv_delta_median"] = float(np.median(deltas)) if deltas else None
            rows.append(row)
            print(f"M={M:3d} n={n:6d}  OLS {row['ols']['median']:.3f} [{row['ols']['q10']:.3f}, "
                  f"{row['ols']['q90']:.3f}] signs {row['ols']['sign_exact_share']:.2f} "
                  f"(|L|>4se: {row['ols']['sign_exact_identified_share']:.2f}, "
                  f"entries {row['ols']['sign_entry_accuracy']:.3f})  GCV {row['gcv']['median']:.3f} "
                  f"(delta {row['gcv_delta_median']:.1e})  LW {row['lw']['median']:.3f}", flush=True)
        below = [r["n"] for r in rows if r["ols"]["median"] < 0.10]
        ln = np.log([r["n"] for r in rows])
        slope = float(np.polyfit(ln, np.log([r["ols"]["median"] for r in rows]), 1)[0])
        out[M] = {"rows": rows, "first_n_median_below_10pct": below[0] if below else None, "loglog_slope_ols": slope,
                  "lambda_fro": float(np.linalg.norm(L)),
                  "strikes": [float(model.strikes.min()), float(model.strikes.max())]}
    return out


def redrawn_and_calibration(reps: int) -> dict:
    model = OptionMarketModel.election("SPY", n_strikes=10, strike_range=0.2)
    target, lbar = model.regression_impact(None), model.theoretical_impact(None)
    red = []
    for r in range(reps):
        sim = simulate_option_market(model, 32000, redraw_story=True, seed=50 + r, tick=None)
        e = fit_impact(sim.price_changes, sim.order_flow)
        red.append((rel_fro(e.impact, target), rel_fro(e.impact, lbar)))
    red = np.array(red)
    small = OptionMarketModel.election("SPY", n_strikes=5, strike_range=0.2)
    Ls = small.theoretical_impact(0)
    z = []
    for r in range(max(reps, 40)):
        sim = simulate_option_market(small, 4000, story=0, seed=700 + r, tick=None)
        e = fit_impact(sim.price_changes, sim.order_flow)
        z.append((e.impact - Ls) / e.stderr)
    z = np.array(z)
    cover = float(np.mean(np.abs(z) < 1.959964))
    return {"redrawn": {"target_vs_lbar": rel_fro(target, lbar), "error_vs_target_median": float(np.median(red[:, 0])),
                        "error_vs_lbar_median": float(np.median(red[:, 1])), "n": 32000},
            "stderr_calibration": {"M": small.M, "n": 4000, "sessions": int(z.shape[0]), "z_sd": float(z.std()),
                                   "z_mean": float(z.mean()), "coverage_95": cover}}


# ------------------------------------------------------------------------------ figures


def _figure(w, h):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=110, layout="constrained")


def _save(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")


def convergence_figure(conv: dict, path: Path) -> None:
    fig = _figure(7.5, 4.6)
    ax = fig.add_subplot()
    for (M, c), color in zip(conv.items(), ("C0", "C1", "C2")):
        n = np.array([r["n"] for r in c["rows"]])
        med = np.array([r["ols"]["median"] for r in c["rows"]])
        lo = np.array([r["ols"]["q10"] for r in c["rows"]])
        hi = np.array([r["ols"]["q90"] for r in c["rows"]])
        gcv = np.array([r["gcv"]["median"] for r in c["rows"]])
        ax.fill_between(n, lo, hi, color=color, alpha=0.15)
        ax.plot(n, med, "o-", color=color, label=f"M = {M}: OLS median (10-90 %)")
        ax.plot(n, gcv, "x--", color=color, label=f"M = {M}: GCV shrinkage")
    n0 = np.array([400, 70000])
    ref = list(conv.values())[0]["rows"][0]
    ax.plot(n0, ref["ols"]["median"] * np.sqrt(ref["n"] / n0), ":", color="gray", label=r"$n^{-1/2}$")
    ax.axhline(0.10, color="k", lw=0.8)
    ax.text(450, 0.105, "10 %", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("periods n")
    ax.set_ylabel(r"$\|\hat\Lambda - \Lambda\|_F / \|\Lambda\|_F$")
    ax.set_title("Eq. (45) on simulated SPY election sessions: error vs periods")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def heatmap_figure(path: Path) -> dict:
    election = OptionMarketModel.election("SPY", n_strikes=10, strike_range=0.2)
    ks = np.linspace(-0.45, 0.45, 10)
    sd = np.array([0.30, 0.15])
    vol = OptionMarketModel(LognormalStories(-0.5 * sd**2, sd), np.repeat(np.exp(ks), 2), np.tile([True, False], 10))
    fig = _figure(11, 9)
    axes = fig.subplots(2, 2)
    info = {}
    for row, (name, model, n) in enumerate((("SPY election (Trump/Harris)", election, 20000),
                                            ("volatility signal (0.30 vs 0.15)", vol, 20000))):
        # contracts ordered: puts by strike, then calls by strike
        order = np.lexsort((model.strikes, model.is_call))
        if model is vol:
            labels = [f"{'C' if model.is_call[i] else 'P'} k={np.log(model.strikes[i]):+.2f}" for i in order]
        else:
            labels = [model.contract_labels()[i] for i in order]
        L = model.theoretical_impact(0)
        sim = simulate_option_market(model, n, story=0, seed=3, tick=None)
        e = fit_impact(sim.price_changes, sim.order_flow)
        info[name] = {"relative_error": rel_fro(e.impact, L),
                      "sign_exact": bool(np.array_equal(np.sign(e.impact), np.sign(L))), "n": n}
        vmax = np.abs(L).max()
        est_title = rf"estimated, n = {n} (error {info[name]['relative_error']:.1%})"
        for col, (mat, title) in enumerate(((L, r"theoretical $E[\Lambda\mid s]$"), (e.impact, est_title))):
            ax = axes[row, col]
            im = ax.imshow(mat[np.ix_(order, order)], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks(range(len(order)), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(len(order)), labels, fontsize=6)
            ax.set_title(f"{name}: {title}", fontsize=9)
            ax.set_xlabel("order flow in contract j", fontsize=8)
            ax.set_ylabel("price of contract i", fontsize=8)
        fig.colorbar(im, ax=axes[row, :], shrink=0.8, label="$ per contract")
    _save(fig, path)
    return info


def straddle_figure(path: Path) -> dict:
    """Rolling within-straddle statistic (footnote 34) at the ATM strike over one session."""
    sd = np.array([0.30, 0.15])
    vol = OptionMarketModel(LognormalStories(-0.5 * sd**2, sd), np.repeat(np.exp(np.linspace(-0.3, 0.3, 5)), 2),
                            np.tile([True, False], 5))
    election = OptionMarketModel.election("SPY", n_strikes=5, strike_range=0.2)
    fig = _figure(8, 5)
    axes = fig.subplots(2, 1, sharex=True)
    out = {}
    for ax, (name, model) in zip(axes, (("volatility signal", vol), ("SPY election", election))):
        c, p = model.straddle_pairs()
        atm = int(np.argmin(np.abs(model.strikes[c] - model.stories.forward(model.prior))))
        L = model.theoretical_impact(0)
        theory = float(straddle_cross_impact(L, c[atm], p[atm])[0])
        sim = simulate_option_market(model, 30000, story=0, seed=5, tick=None)
        est = RollingImpactRegression(model.M, 2000, shrinkage="gcv")
        t_out, v_out, s_out = [], [], []
        for t, (dp, om) in enumerate(zip(sim.price_changes, sim.order_flow)):
            est.update(dp, om)
            if t >= 1999 and (t + 1) % 250 == 0:
                val, se = est.estimate().straddle(c[atm], p[atm])
                t_out.append(t + 1), v_out.append(val[0]), s_out.append(se[0])
        t_out, v_out, s_out = map(np.array, (t_out, v_out, s_out))
        ax.fill_between(t_out, v_out - 2 * s_out, v_out + 2 * s_out, alpha=0.25, label="±2 se")
        ax.plot(t_out, v_out, label="rolling estimate (window 2000)")
        ax.axhline(theory, color="k", ls="--", label="theory")
        ax.axhline(0, color="gray", lw=0.6)
        ax.set_title(f"{name}: ATM straddle cross impact $\\Lambda_{{C,P}} + \\Lambda_{{P,C}}$", fontsize=9)
        ax.set_ylabel("$ per contract")
        ax.legend(fontsize=7)
        out[name] = {"theory": theory, "rolling_mean": float(v_out.mean()), "rolling_sd": float(v_out.std()),
                     "mean_se": float(s_out.mean())}
    axes[-1].set_xlabel("period")
    _save(fig, path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=HERE / "results" / "impact_update.json")
    parser.add_argument("--img", type=Path, default=DOCS_IMG)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="fewer updates and periods (smoke run)")
    args = parser.parse_args()
    t_start = time.perf_counter()
    tim = timing(args.quick)
    print("\n| M | update (gcv / fixed) | update (lw) | estimate gcv | estimate OLS | estimate lw | "
          "gcv, default BLAS threads |")
    print("|---|---|---|---|---|---|---|")
    for M, r in tim.items():
        print(f"| {M} | {r['gcv']['update_us']:.1f} us | {r['lw']['update_us']:.1f} us | "
              f"{r['gcv']['estimate_ms']:.2f} ms | {r['0.0']['estimate_ms']:.2f} ms | "
              f"{r['lw']['estimate_ms']:.2f} ms | "
              f"{r['gcv_default_blas_threads']['update_us']:.1f} us / "
              f"{r['gcv_default_blas_threads']['estimate_ms']:.2f} ms |")
    with threadpool_limits(1):
        conv = convergence(args.reps, args.quick)
        extra = redrawn_and_calibration(args.reps)
        print(extra)
        args.img.mkdir(parents=True, exist_ok=True)
        convergence_figure(conv, args.img / "impact-convergence.png")
        heat = heatmap_figure(args.img / "impact-heatmap.png")
        strad = straddle_figure(args.img / "impact-straddle.png")
    print(heat, strad)
    out = {"machine": machine_info(), "window": WINDOW, "timing": {str(k): v for k, v in tim.items()},
           "convergence": {str(k): v for k, v in conv.items()}, **extra, "heatmap": heat, "straddle": strad,
           "reps": args.reps, "quick": args.quick, "elapsed_s": time.perf_counter() - t_start}
    write_result(out, args.json)
    print(f"wrote {args.json} ({out['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
