"""Train the up-move classifier on synthetic normal days, evaluate it on Election Day.

    python -m elecflow.adapters.upmove_training --days 5 --out elecflow/data/upmove_model.json

Steps (docs/upmove.md): write the normal pre-election days with
:func:`elecflow.adapters.synthetic.write_training_days`; replay each one in simulation mode
through the project's graph (validation, Lee-Ready signing, 1-minute bars) and read its
``bars_1m``; fit :class:`elecflow.upmove.UpMoveModel` on the pooled bars; replay the
Election Day (default: the embedded synthetic day) the same way and score it out of sample
against the naive baselines. The model JSON carries the measured AUCs in ``metadata``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from elecflow.upmove import (
    FEATURES,
    UpMoveModel,
    auc,
    bar_columns,
    forward_labels,
    log_loss,
    naive_scores,
    raw_features,
)

DEFAULT_SEED = 20241105
DEFAULT_FIRST_DAY = "2024-10-28"
DEFAULT_L2 = 1.0
ELECTION_DAY = dt.date(2024, 11, 5)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_ELECTION_DATA = REPO / "replay_data" / f"synthetic-2024-11-05-seed{DEFAULT_SEED}"
DEFAULT_OUT = REPO / "elecflow" / "data" / "upmove_model.json"


def replay_bars(data: Path, out: Path, date: dt.date, reuse: bool = True, log=print):
    """Replay one day's vendor files in simulation mode and return its ``bars_1m`` table.

    With ``reuse``, an ``out`` that already holds a finished run (``run_summary.json`` and
    ``bars_1m``) newer than the data folder's manifest is read as it is.
    """
    from elecflow.config import ReplayConfig
    from elecflow.graphs.run import resolve_sources, run_replay

    out = Path(out)
    done = out / "run_summary.json"
    manifest = Path(data) / "manifest.json"
    fresh = done.exists() and (out / "bars_1m").exists() and (
        not manifest.exists() or done.stat().st_mtime >= manifest.stat().st_mtime)
    if not (reuse and fresh):
        cfg = ReplayConfig(mode="sim", data=Path(data), out=out, progress=False, date=date, dashboard=False)
        run_replay(cfg, resolve_sources(cfg, log=log), log=log)
    return pq.read_table(out / "bars_1m")


def _session_regular(bucket_ns: np.ndarray) -> np.ndarray:
    """Bars whose minute lies in 09:30-16:00 New York time."""
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    start = (bucket_ns - 60_000_000_000) // 1_000_000_000
    out = np.zeros(bucket_ns.shape[0], bool)
    for s in np.unique(start):
        t = dt.datetime.fromtimestamp(int(s), ny)
        out[start == s] = dt.time(9, 30) <= t.time() < dt.time(16, 0)
    return out


def _scores(y, p, naive, ok) -> dict:
    yy = y[ok]
    return {
        "n": int(ok.sum()),
        "up_rate": float(yy.mean()) if yy.size else float("nan"),
        "auc_model": auc(yy, p[ok]),
        "auc_lag_sign": auc(yy, naive["lag_sign"][ok]),
        "auc_constant": auc(yy, naive["constant"][ok]),
    }


def evaluate(model: UpMoveModel, bars, base_rate: float | None = None) -> dict:
    """AUC of the model and the naive baselines on ``bars`` (labelled rows only): overall,
    regular hours (09:30-16:00 ET), and per ticker; log loss of the model and of the constant
    ``base_rate`` (the training up-rate)."""
    c = bar_columns(bars)
    y, defined = forward_labels(bars)
    p = model.predict_proba(raw_features(bars))
    naive = naive_scores(bars)
    out = {"overall": _scores(y, p, naive, defined),
           "regular_hours": _scores(y, p, naive, defined & _session_regular(c["bucket"]))}
    yy = y[defined]
    out["overall"]["log_loss_model"] = log_loss(yy, p[defined])
    if base_rate is not None:
        out["overall"]["log_loss_base_rate"] = log_loss(yy, np.full(yy.shape, base_rate))
    tick = c["ticker"].astype(str)
    out["per_ticker"] = {t: _scores(y, p, naive, defined & (tick == t)) for t in sorted(set(tick))}
    pt = out["per_ticker"].values()
    out["tickers_model_beats_lag_sign"] = int(sum(v["auc_model"] > v["auc_lag_sign"] for v in pt))
    out["tickers"] = len(out["per_ticker"])
    return out


def train(dates, workdir: Path, seed: int = DEFAULT_SEED, progress: bool = True, l2: float = DEFAULT_L2,
          election_data: Path | None = DEFAULT_ELECTION_DATA, out: Path | None = None, reuse: bool = True):
    """Generate and replay the normal ``dates``, fit, evaluate on Election Day, save.

    Returns ``(model, report)``. ``workdir`` receives the generated days
    (``workdir/days/<date>``) and the replays (``workdir/replay/<date>``); ``out`` (if given)
    the model JSON. ``election_data=None`` skips the out-of-sample evaluation.
    """
    from elecflow.adapters.synthetic import write_training_days

    t0 = time.perf_counter()
    log = (lambda *a, **k: print(*a, **k, file=sys.stderr)) if progress else (lambda *a, **k: None)
    workdir = Path(workdir)
    dates = [d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in dates]
    folders = write_training_days(dates, workdir / "days", seed=seed, progress=progress, reuse=reuse)
    t_gen = time.perf_counter() - t0

    Xs, ys, per_day = [], [], {}
    for d, folder in zip(dates, folders):
        log(f"replaying {d}")
        bars = replay_bars(folder, workdir / "replay" / d.isoformat(), d, reuse=reuse, log=log)
        y, ok = forward_labels(bars)
        Xs.append(raw_features(bars)[ok])
        ys.append(y[ok])
        per_day[d.isoformat()] = {"bars": bars.num_rows, "labelled": int(ok.sum())}
    X, y = np.vstack(Xs), np.concatenate(ys)
    t_bars = time.perf_counter() - t0 - t_gen

    t1 = time.perf_counter()
    model = UpMoveModel.fit(X, y, FEATURES, l2=l2)
    t_fit = time.perf_counter() - t1
    base_rate = float(y.mean())
    p_in = model.predict_proba(X)
    in_sample = {"n": int(y.size), "up_rate": base_rate, "auc_model": auc(y, p_in),
                 "auc_lag_sign": auc(y, np.nan_to_num(np.sign(X[:, FEATURES.index("lag_ret")]))),
                 "log_loss_model": log_loss(y, p_in), "log_loss_base_rate": log_loss(y, np.full(y.shape, base_rate))}

    oos = None
    if election_data is not None:
        log("replaying Election Day")
        ebars = replay_bars(Path(election_data), workdir / "replay" / ELECTION_DAY.isoformat(), ELECTION_DAY,
                            reuse=reuse, log=log)
        oos = evaluate(model, ebars, base_rate)

    meta = {
        "label": "1 if the same ticker's log_mid at bucket + 1 min is above log_mid at bucket, 0 if below; "
                 "rows with no next-minute bar or a zero change are not labelled",
        "training": {"day_kind": "normal", "dates": [d.isoformat() for d in dates], "seed": seed,
                     "rows": int(y.size), "per_day": per_day, "up_rate": base_rate},
        "fit_iterations": model.metadata.get("fit_iterations"),
        "in_sample": in_sample,
    }
    if oos is not None:
        meta["out_of_sample"] = {"data": f"Election Day 2024-11-05: {Path(election_data).name}", **oos}
    model = UpMoveModel(model.features, model.means, model.sds, model.coef, model.intercept, model.l2, meta)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(model.to_json() + "\n")
        os.replace(tmp, out)
    report = {
        "seconds": {"generate": round(t_gen, 1), "replay_and_bars": round(t_bars, 1), "fit": round(t_fit, 2),
                    "total": round(time.perf_counter() - t0, 1)},
        "in_sample": in_sample,
        "out_of_sample": oos,
        "model_path": str(out) if out is not None else None,
    }
    return model, report


def _summary(report: dict) -> str:
    lines = [f"timing (s): {report['seconds']}"]
    i = report["in_sample"]
    lines.append(f"in sample ({i['n']:,} rows): AUC model {i['auc_model']:.4f}  lag-sign {i['auc_lag_sign']:.4f}")
    o = report["out_of_sample"]
    if o:
        for key in ("overall", "regular_hours"):
            v = o[key]
            lines.append(f"Election Day {key} ({v['n']:,} rows): AUC model {v['auc_model']:.4f}  "
                         f"lag-sign {v['auc_lag_sign']:.4f}  constant {v['auc_constant']:.4f}")
        lines.append(f"tickers where the model beats lag-sign: {o['tickers_model_beats_lag_sign']}/{o['tickers']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    from elecflow.synth.config import normal_trading_days

    ap = argparse.ArgumentParser(prog="python -m elecflow.adapters.upmove_training", description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=5, help="number of normal trading days from --first (default 5)")
    ap.add_argument("--first", default=DEFAULT_FIRST_DAY, help="first training date (default 2024-10-28)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--l2", type=float, default=DEFAULT_L2, help="L2 penalty on standardised coefficients")
    ap.add_argument("--workdir", type=Path, default=Path("out/upmove_training"),
                    help="generated days and replays (default out/upmove_training)")
    ap.add_argument("--election-data", type=Path, default=DEFAULT_ELECTION_DATA,
                    help="Election Day vendor files for the out-of-sample test (default: the embedded day)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model JSON path")
    ap.add_argument("--report", type=Path, help="also write the full report JSON here")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    dates = normal_trading_days(args.first, ELECTION_DAY - dt.timedelta(days=1))[: args.days]
    if len(dates) < args.days:
        print(f"only {len(dates)} valid normal days from {args.first} to 2024-11-04", file=sys.stderr)
        return 2
    if not args.election_data.exists():
        print(f"{args.election_data}: not found (run `elecflow generate` or `elecflow replay` once)", file=sys.stderr)
        return 2
    model, report = train(dates, args.workdir, seed=args.seed, progress=not args.no_progress, l2=args.l2,
                          election_data=args.election_data, out=args.out)
    if args.report:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    print(_summary(report))
    print(f"model written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
