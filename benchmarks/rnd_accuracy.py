"""Accuracy of the replay graph's option densities against the generator's truth.

Reads the outputs of ``elecflow replay --mode sim --out OUT`` (``rnd_curve``, ``rnd_summary``)
and the synthetic day's ``ground_truth/options_truth.parquet``; for each underlying, at the
refresh nearest 10:00 and 15:30 New York, reports the L1 distance of the density to the true
two-lognormal mixture over the density grid, the share of the true mass that grid covers,
and the errors of the mean, sd and forward. Prints a markdown table and writes JSON
(default benchmarks/results/rnd_accuracy.json).

    elecflow replay --mode sim --out /tmp/day && \\
    python benchmarks/rnd_accuracy.py --out /tmp/day --data replay_data/synthetic-2024-11-05-seed20241105
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from elecflow.synth.options import mixture_density

HERE = Path(__file__).resolve().parent
TIMES = (("10:00", "2024-11-05T15:00:30"), ("15:30", "2024-11-05T20:30:30"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory of a sim replay")
    parser.add_argument("--data", type=Path, required=True, help="the synthetic day (with ground_truth/)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "rnd_accuracy.json")
    args = parser.parse_args()
    curve = pq.read_table(args.out / "rnd_curve").to_pandas()
    summ = pq.read_table(args.out / "rnd_summary").to_pandas()
    truth = pq.read_table(args.data / "ground_truth" / "options_truth.parquet").to_pandas()
    rows = []
    print("| underlying | NY time | L1 on the grid | true mass on the grid | mean/F - 1 | sd rel. error | "
          "forward rel. error | quotes used |")
    print("|---|---|---|---|---|---|---|---|")
    for und in sorted(summ.underlying.unique()):
        for hhmm, utc in TIMES:
            target = np.datetime64(utc, "ns").astype(np.int64)
            c = curve[curve.underlying == und]
            times = c["time"].astype("int64").unique()
            t = times[np.argmin(np.abs(times - target))]
            grid_rows = c[c["time"].astype("int64") == t]
            tr = truth[truth.underlying == und]
            tr = tr.iloc[np.argmin(np.abs(tr["time"].astype("int64").to_numpy() - t))]
            args_mix = (tr["T"], tr["q"], tr["mean_trump"], tr["sigma_trump"], tr["mean_harris"], tr["sigma_harris"])
            strikes = grid_rows.strike.to_numpy()
            h = strikes[1] - strikes[0]
            dens = mixture_density(strikes, *args_mix)
            fine = np.linspace(1e-6, tr["forward"] * 4, 400_001)
            w = mixture_density(fine, *args_mix)
            w = w / np.trapezoid(w, fine)
            mean = np.trapezoid(fine * w, fine)
            sd = np.sqrt(np.trapezoid((fine - mean) ** 2 * w, fine))
            s = summ[(summ.underlying == und) & (summ["time"].astype("int64") == t)].iloc[0]
            row = {"underlying": und, "time_new_york": hhmm, "l1_on_grid": float(np.sum(np.abs(
                grid_rows.density.to_numpy() - dens)) * h), "true_mass_on_grid": float(np.sum(dens) * h),
                "mean_over_forward_minus_1": float(s["mean"] / tr["forward"] - 1),
                "sd_rel_error": float(s["sd"] / sd - 1), "forward_rel_error": float(s["forward"] / tr["forward"] - 1),
                "quotes_used": int(s["n_quotes_used"])}
            rows.append(row)
            print(f"| {und} | {hhmm} | {row['l1_on_grid']:.4f} | {row['true_mass_on_grid']:.1%} | "
                  f"{row['mean_over_forward_minus_1']:+.1e} | {row['sd_rel_error']:+.2%} | "
                  f"{row['forward_rel_error']:+.1e} | {row['quotes_used']} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "rnd_accuracy", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
