"""Figures 2-7 of "Arrow-Debreu Meets Kyle", recomputed (``elecflow theory figures --to DIR``).

Every figure is drawn from numbers computed here, never read off the paper, and each PNG
has a CSV of exactly the plotted values next to it:

====================================  ===================================================
``theory-fig2-alpha.png/.csv``         alpha*(K), K = 2 .. k_max, with error estimates
``theory-fig3-mean.png/.csv``          Example 7.1: mean signal, bull/bear spread demand
``theory-fig4-volatility.png/.csv``    Example 7.2: volatility signal, straddle/butterfly
``theory-fig5-skew.png/.csv``          Example 7.3: skewness signal, ratio-spread demand
``theory-fig6-efficiency.png/.csv``    I(K), K = 2 .. k_max, with error estimates
``theory-fig7-smile.png/.csv``         the insider-induced smile, true vol 0.25/0.30/0.35
====================================  ===================================================

In Figures 3-5 the solid line is the equilibrium demand (:class:`ADKyleModel`) and the
dashed line the paper's eq. (37) as printed, which differs from it when the two stories'
``|eta|`` differ (Example 7.2). matplotlib with the Agg canvas (no display); tqdm shows
progress (the 2 x (k_max - 1) root solves take a few seconds).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from elecflow.theory.canonical import equilibrium_alpha, information_efficiency
from elecflow.theory.derivatives import example_signals, insider_smile
from elecflow.theory.model import ADKyleModel

__all__ = ["write_figures", "SMILE_VOLS", "SMILE_ALT_VOL"]

SMILE_VOLS = (0.25, 0.30, 0.35)  # Figure 7(b): true volatilities
SMILE_ALT_VOL = 0.15             # the low-volatility alternative story (not given in the paper)

_EXAMPLES = (
    ("fig3", "mean", "Example 7.1: mean signal", ("high mean $s_1$", "low mean $s_2$"),
     ("bull spread", "bear spread")),
    ("fig4", "volatility", "Example 7.2: volatility signal", ("high volatility $s_1$", "low volatility $s_2$"),
     ("straddle", "butterfly")),
    ("fig5", "skew", "Example 7.3: skewness signal", ("right-skewed $s_1$", "left-skewed $s_2$"),
     ("ratio spread", "ratio spread (reversed)")),
)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # Agg whatever backend the process uses; no display
    fig.savefig(path, format="png")
    return path


def _write_csv(path: Path, header: list[str], columns: list) -> Path:
    rows = zip(*[np.asarray(c).tolist() for c in columns])
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([repr(float(v)) if isinstance(v, float) else v for v in r])
    return path


def _curve_figures(target: Path, ks: np.ndarray, alphas, effs) -> list[Path]:
    a = np.array([x.value for x in alphas])
    ae = np.array([x.abs_error for x in alphas])
    i = np.array([x.value for x in effs])
    ie = np.array([x.abs_error for x in effs])
    out = [_write_csv(target / "theory-fig2-alpha.csv", ["K", "alpha_star", "abs_error"], [ks, a, ae]),
           _write_csv(target / "theory-fig6-efficiency.csv", ["K", "information_efficiency", "abs_error"],
                      [ks, i, ie])]
    for name, y, label, title in (("theory-fig2-alpha.png", a, r"$\alpha^*(K)$",
                                   r"Figure 2: equilibrium constant $\alpha^*(K)$ (increasing, concave)"),
                                  ("theory-fig6-efficiency.png", i, r"$\mathcal{I}(K)$",
                                   r"Figure 6: information efficiency $\mathcal{I}(K)$ (decreasing, convex)")):
        fig = _figure(6.4, 3.8)
        ax = fig.add_subplot()
        ax.plot(ks, y, color="black", lw=1.6, marker="o", ms=2.5)
        if name.startswith("theory-fig6"):
            ax.plot(ks, 1.0 / ks, color="grey", ls=":", lw=1.0, label="1/K (no learning)")
            ax.legend(frameon=False)
        ax.set_xlabel("number of signals K")
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        out.append(_save(fig, target / name))
    return out


def _example_figure(target: Path, tag: str, kind: str, title: str, signal_names, strategies) -> list[Path]:
    x, eta = example_signals(kind)
    model = ADKyleModel(eta)
    W, Wp = model.demand(), model.paper_demand()
    name = f"theory-{tag}-{kind}"
    csv_path = _write_csv(target / f"{name}.csv",
                          ["state", "eta_s1", "eta_s2", "demand_s1", "demand_s2", "eq37_demand_s1", "eq37_demand_s2"],
                          [x, eta[0], eta[1], W[:, 0], W[:, 1], Wp[:, 0], Wp[:, 1]])
    fig = _figure(8.4, 5.4)
    axes = fig.subplots(2, 2, sharex=True)
    colours = ("#c0392b", "#2c5aa0")
    for k in range(2):
        ax = axes[k, 0]
        ax.fill_between(x, eta[k], color=colours[k], alpha=0.35, lw=0)
        ax.plot(x, eta[1 - k], color="grey", lw=0.8, ls="--", label="other signal")
        ax.set_ylabel("probability")
        ax.set_title(f"signal: {signal_names[k]}", fontsize=9)
        ax.legend(frameon=False, fontsize=8)
        ax = axes[k, 1]
        ax.axhline(0.0, color="black", lw=0.6)
        ax.plot(x, W[:, k], color=colours[k], lw=1.6, label="equilibrium $W^*$")
        ax.plot(x, Wp[:, k], color="black", lw=0.9, ls="--", label="eq. (37) as printed")
        ax.set_ylabel("AD holdings")
        ax.set_title(f"informed demand $W^*(\\cdot|s_{k + 1})$: {strategies[k]}", fontsize=9)
        ax.legend(frameon=False, fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("state / option strike")
    fig.suptitle(title, fontsize=10)
    return [csv_path, _save(fig, target / f"{name}.png")]


def _smile_figure(target: Path) -> list[Path]:
    smiles = [insider_smile(v, SMILE_ALT_VOL) for v in SMILE_VOLS]
    k = smiles[0].log_moneyness
    csv_path = _write_csv(target / "theory-fig7-smile.csv",
                          ["log_moneyness"] + [f"mean_iv_true_{v:.2f}" for v in SMILE_VOLS],
                          [k] + [s.mean_iv for s in smiles])
    fig = _figure(9.0, 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(k, smiles[0].mean_iv, color="black", lw=1.6)
    ax1.axhline(SMILE_VOLS[0], color="grey", ls=":", lw=1.0, label="true volatility")
    ax1.set_title(f"(a) true vol {SMILE_VOLS[0]:.2f}, alternative {SMILE_ALT_VOL:.2f}", fontsize=9)
    ax1.legend(frameon=False, fontsize=8)
    for s, ls in zip(smiles, ("-", "--", ":")):
        ax2.plot(k, s.mean_iv, color="black", ls=ls, lw=1.4, label=f"true vol {s.true_vol:.2f}")
    ax2.set_title("(b) the smile steepens as the true volatility rises", fontsize=9)
    ax2.legend(frameon=False, fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xlabel("log-moneyness log(K/F)")
        ax.set_ylabel("mean implied volatility")
        ax.grid(alpha=0.3)
    fig.suptitle("Figure 7: insider-induced volatility smile (K = 2 lognormal stories, T = 1)", fontsize=10)
    return [csv_path, _save(fig, target / "theory-fig7-smile.png")]


def write_figures(target, k_max: int = 100, progress: bool = True) -> list[Path]:
    """Write Figures 2-7 (PNG) and their data (CSV) into ``target``; returns the paths.

    Raises
    ------
    ValueError
        If ``k_max < 3`` (the curves need at least two points).
    """
    if k_max < 3:
        raise ValueError(f"k_max must be >= 3 (got {k_max})")
    from tqdm import tqdm

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    ks = np.arange(2, int(k_max) + 1)
    written: list[Path] = []
    bar = tqdm(total=len(ks) + 4, desc="theory figures", unit="step", disable=not progress)
    alphas, effs = [], []
    for K in ks:
        alphas.append(equilibrium_alpha(int(K)))
        effs.append(information_efficiency(int(K)))
        bar.update(1)
    written += _curve_figures(target, ks, alphas, effs)
    for spec in _EXAMPLES:
        written += _example_figure(target, *spec)
        bar.update(1)
    written += _smile_figure(target)
    bar.update(1)
    bar.close()
    return written
