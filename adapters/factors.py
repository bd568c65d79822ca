"""Files of the factor pipeline: the universe's 1 s NBBO and weights, baseline days.

* :func:`find_factor_universe` -- the universe's vendor files under a folder (default
  ``<data>/factor_universe``): 1 s NBBO files found by their columns (format ``nbbo_1s``) and
  one factor weights JSON (factor -> ticker -> weight, validated by
  :class:`~elecflow.factors.FactorWeights`);
* :func:`stage_universe` -- the universe's rows through the project's validating ingest
  (quality rules, quarantine with reasons, counts that reconcile) into time-ordered canonical
  Parquet parts that csp's native reader replays (``<out>/factor_universe/``);
* :func:`day_factor_data` -- one whole day in vectorised numpy: 1 s factor returns, interval
  returns of the instruments and factors, regimes (the batch path behind the baseline and the
  accuracy benchmark);
* :func:`baseline_stats` -- the regression's sufficient statistics on prior normal days, one
  cached JSON per day (keyed by the settings and the input files' sizes and times);
* :func:`baseline_dates`, :func:`find_baseline_days`, :func:`ensure_synthetic_baseline` --
  which prior days, where they are, and generating them for a synthetic day;
* :func:`prepare_factor_inputs` -- all of the above for one replay (what ``run_replay`` calls).

Choices and figures: docs/factors.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from elecflow import quality
from elecflow.adapters.ingest import (
    IngestFilter,
    IngestReport,
    RollingParquetArchive,
    ingest,
    merged_tables,
    write_report,
)
from elecflow.adapters.vendors import (
    CANONICAL_SCHEMAS,
    SourceFile,
    VendorFileError,
    _is_data_file,
    discover,
    read_canonical,
    sniff_format,
)
from elecflow.factors import (
    FF_FACTORS,
    BaselineStats,
    FactorModelSettings,
    FactorWeights,
    FactorWeightsError,
    accumulate,
    dimson_regressors,
    factor_returns_batch,
    interval_returns_batch,
    regime_of,
)

__all__ = ["FACTOR_UNIVERSE_DIR", "FactorUniverseFiles", "find_factor_universe", "read_weights", "stage_universe",
           "DayFactorData", "day_factor_data", "baseline_stats", "baseline_dates", "find_baseline_days",
           "default_baseline_root", "ensure_synthetic_baseline", "summarize_factor_outputs", "FactorInputs",
           "prepare_factor_inputs"]

FACTOR_UNIVERSE_DIR = "factor_universe"
CACHE_DIR = ".elecflow-cache"
CACHE_VERSION = 1  # bump when the statistics' definition changes


@dataclass
class FactorUniverseFiles:
    root: Path
    weights_path: Path
    nbbo: list[SourceFile]
    weights: FactorWeights

    def describe(self) -> dict:
        return {"root": str(self.root), "weights": str(self.weights_path), "stocks": self.weights.size,
                "nbbo_files": [str(s.path) for s in self.nbbo]}


def read_weights(path: Path) -> FactorWeights:
    """The factor weights JSON at ``path``; a :class:`VendorFileError` names the file and the problem."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise VendorFileError(f"{path}: cannot read the factor weights JSON ({exc})") from exc
    try:
        return FactorWeights.from_mapping(obj)
    except FactorWeightsError as exc:
        raise VendorFileError(f"{path}: {exc}") from exc


def _looks_like_weights(path: Path) -> bool:
    if not path.name.lower().endswith(".json"):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False
    return head.lstrip().startswith("{") and any(f'"{f}"' in head for f in FF_FACTORS)


def find_factor_universe(data_dir: Path | None, root: Path | None = None) -> FactorUniverseFiles | None:
    """The factor universe's files under ``root`` (default ``<data_dir>/factor_universe``).

    Returns None when the default folder does not exist (no universe: the factor streams are
    skipped); an explicit ``root`` that does not exist, a folder without exactly one weights
    JSON or without 1 s NBBO files, or a file missing a required column is a
    :class:`VendorFileError`.
    """
    explicit = root is not None
    if root is None:
        if data_dir is None:
            return None
        root = Path(data_dir) / FACTOR_UNIVERSE_DIR
    root = Path(root)
    if not root.is_dir():
        if explicit:
            raise VendorFileError(f"{root}: factor universe folder does not exist")
        return None
    files = sorted(p for p in root.rglob("*") if p.is_file() and _is_data_file(p) and CACHE_DIR not in p.parts)
    weights = [p for p in files if _looks_like_weights(p)]
    if len(weights) != 1:
        raise VendorFileError(f"{root}: expected one factor weights JSON (factor -> ticker -> weight), "
                              f"found {len(weights)}" + (f": {', '.join(p.name for p in weights)}" if weights else ""))
    parsed = read_weights(weights[0])
    nbbo = []
    for p in files:
        if p in weights:
            continue
        fmt, missing = sniff_format(p)
        if fmt != "nbbo_1s":
            continue
        if missing:
            raise VendorFileError(f"{p}: looks like nbbo_1s but is missing required column "
                                  + ", ".join(repr(c) for c in missing))
        nbbo.append(SourceFile(p, fmt))
    if not nbbo:
        raise VendorFileError(f"{root}: no 1 s NBBO files (columns symbol, timestamp, bid_price, ask_price)")
    return FactorUniverseFiles(root, weights[0], nbbo, parsed)


def stage_universe(files: FactorUniverseFiles, out_dir: Path, start_ns: int | None, end_ns: int | None,
                   part_ns: int, batch_rows: int = 500_000) -> tuple[IngestReport, list[Path]]:
    """Validate the universe's rows and write them as time-ordered canonical parts.

    Everything goes under ``<out_dir>/factor_universe/`` (cleared first): ``nbbo_1s/part-*.parquet``,
    ``quarantine.parquet`` (rejected rows with their reason) and ``ingest_report.json`` (read =
    accepted + rejected + skipped per file; rows of tickers outside the weights or outside the
    window are skipped).
    """
    root = Path(out_dir) / FACTOR_UNIVERSE_DIR
    if root.exists():
        shutil.rmtree(root)
    filt = IngestFilter(symbols=frozenset(files.weights.tickers), start_ns=start_ns, end_ns=end_ns)
    report = ingest(files.nbbo, root / ".staging", root / "quarantine.parquet", filt, batch_rows=batch_rows)
    archive = RollingParquetArchive(root, "nbbo_1s", CANONICAL_SCHEMAS["nbbo_1s"], part_ns)
    for table in merged_tables(report.partitions.get("nbbo_1s", [])):
        archive.write(table)
    parts = archive.close()
    shutil.rmtree(root / ".staging", ignore_errors=True)
    shutil.rmtree(root / ".inprogress", ignore_errors=True)
    write_report(report, root / "ingest_report.json")
    return report, parts


# --------------------------------------------------------------------------- one day, vectorised


@dataclass
class DayFactorData:
    """One day's factor data computed in bulk (see :func:`day_factor_data`)."""

    day_dir: Path
    symbols: tuple[str, ...]
    labels: np.ndarray  # (T,) 1 s labels with universe rows
    factor_returns: np.ndarray  # (T, K)
    coverage: np.ndarray  # (T,)
    ends: np.ndarray  # (J,) interval ends
    interval_factor_returns: np.ndarray  # (J, K)
    interval_returns: np.ndarray  # (J, A), NaN = missing
    regimes: np.ndarray  # (J,) object
    rows: dict = field(default_factory=dict)  # rows read / rejected per input

    def regressors(self, lags: int) -> np.ndarray:
        return dimson_regressors(self.interval_factor_returns, lags)


def _nbbo_rows(sources: list[SourceFile], keep: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(label, index, mid) of the valid rows of ``keep``'s symbols, sorted by label (stable).

    The project's reader maps the files; the same stateless quality rules as the ingest drop
    bad rows (NaN, non-positive or crossed prices), which are counted.
    """
    labels, idx, mids = [], [], []
    counts = {"read": 0, "rejected": 0, "skipped": 0}
    for src in sources:
        for batch in read_canonical(src):
            cols, codes = batch.columns, batch.codes
            counts["read"] += len(batch)
            sym = np.asarray(cols["symbol"], dtype=object)
            index = np.array([keep.get(s, -1) for s in sym.tolist()], dtype=np.int64) if sym.size else \
                np.zeros(0, np.int64)
            zeros = np.zeros(len(batch))
            rules = quality.first_failure(*quality.equity_quote_failures(cols["bid_price"], cols["ask_price"], zeros,
                                                                          zeros), n=len(batch))
            wanted = index >= 0
            good = wanted & (codes == 0) & (rules == 0)
            counts["skipped"] += int((~wanted).sum())
            counts["rejected"] += int((wanted & ~good).sum())
            labels.append(np.asarray(cols["time"], dtype=np.int64)[good])
            idx.append(index[good])
            mids.append(0.5 * (np.asarray(cols["bid_price"])[good] + np.asarray(cols["ask_price"])[good]))
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), counts
    label, index, mid = np.concatenate(labels), np.concatenate(idx), np.concatenate(mids)
    order = np.argsort(label, kind="stable")
    return label[order], index[order], mid[order], counts


def _instrument_sources(day_dir: Path) -> list[SourceFile]:
    sources, _ = discover(day_dir)
    nbbo = [s for s in sources if s.format == "nbbo_1s"]
    if not nbbo:
        raise VendorFileError(f"{day_dir}: no 1 s NBBO file of the instruments (format nbbo_1s) for the factor betas")
    return nbbo


def day_factor_data(day_dir: Path, symbols, settings: FactorModelSettings, risk_free_rate: float,
                    universe: FactorUniverseFiles | None = None) -> DayFactorData:
    """The day in ``day_dir`` in bulk: 1 s factor returns from its universe, interval returns of
    the factors and of ``symbols`` (from the day's 1 s NBBO file), and the intervals' regimes.

    The same definitions as the streaming path (:func:`~elecflow.factors.factor_returns_batch`,
    :func:`~elecflow.factors.interval_returns_batch`), so a baseline day's statistics are what
    the replay graph would have accumulated.
    """
    day_dir = Path(day_dir)
    universe = universe or find_factor_universe(day_dir)
    if universe is None:
        raise VendorFileError(f"{day_dir}: no factor universe ({FACTOR_UNIVERSE_DIR}/ with 1 s NBBO files and weights)")
    w = universe.weights
    u_label, u_idx, u_mid, u_counts = _nbbo_rows(universe.nbbo, w.index())
    labels, F, coverage = factor_returns_batch(u_label, u_idx, u_mid, w, risk_free_rate)
    symbols = tuple(symbols)
    a_label, a_idx, a_mid, a_counts = _nbbo_rows(_instrument_sources(day_dir), {s: i for i, s in enumerate(symbols)})
    ends, F_int, Y = interval_returns_batch(labels, F, a_label, a_idx, a_mid, len(symbols), settings.interval_ns)
    regimes = np.array([regime_of(int(e)) for e in ends], dtype=object)
    return DayFactorData(day_dir, symbols, labels, F, coverage, ends, F_int, Y, regimes,
                         {"universe": u_counts, "instruments": a_counts})


# --------------------------------------------------------------------------- baseline


def _cache_key(day_dir: Path, universe: FactorUniverseFiles, symbols, settings: FactorModelSettings,
               risk_free_rate: float) -> str:
    inputs = [universe.weights_path] + [s.path for s in universe.nbbo] + [s.path for s in _instrument_sources(day_dir)]
    stamp = [(str(p.relative_to(day_dir)) if p.is_relative_to(day_dir) else str(p), p.stat().st_size,
              p.stat().st_mtime_ns) for p in inputs]
    blob = json.dumps({"version": CACHE_VERSION, "symbols": list(symbols), "interval": settings.interval_seconds,
                       "lags": settings.dimson_lags, "rf": risk_free_rate, "files": stamp}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _day_stats(day_dir: Path, symbols, settings: FactorModelSettings, risk_free_rate: float) -> BaselineStats:
    data = day_factor_data(day_dir, symbols, settings, risk_free_rate)
    stats = BaselineStats(tuple(symbols), FF_FACTORS, settings.interval_seconds, settings.dimson_lags,
                          [day_dir.name])
    # the first interval of a day has no start mids (NaN returns) and no lagged factors
    accumulate(stats, data.regressors(settings.dimson_lags), data.interval_returns, data.regimes)
    return stats


def baseline_stats(day_dirs: list[Path], symbols, settings: FactorModelSettings, risk_free_rate: float,
                   cache: bool = True, log: Callable[[str], None] = print) -> BaselineStats | None:
    """The baseline statistics of ``day_dirs`` (None if the list is empty).

    Each day's statistics are cached as JSON next to the day folders, in
    ``<root>/.elecflow-cache/<day>-factor-baseline-<key>.json`` (if writable; outside the day
    folder, where the vendor discovery would take it for a data file), keyed by the settings
    and the input files' sizes and modification times, so a regenerated or edited day is
    recomputed.
    """
    symbols = tuple(symbols)
    total: BaselineStats | None = None
    for day_dir in map(Path, day_dirs):
        universe = find_factor_universe(day_dir)
        if universe is None:
            raise VendorFileError(f"{day_dir}: baseline day without a factor universe ({FACTOR_UNIVERSE_DIR}/)")
        key = _cache_key(day_dir, universe, symbols, settings, risk_free_rate)
        path = day_dir.parent / CACHE_DIR / f"{day_dir.name}-factor-baseline-{key}.json"
        stats = None
        if cache and path.exists():
            try:
                stats = BaselineStats.from_dict(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError):
                stats = None  # unreadable cache: recompute
        if stats is None:
            log(f"factors: baseline statistics of {day_dir.name} ...")
            stats = _day_stats(day_dir, symbols, settings, risk_free_rate)
            if cache:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                    tmp.write_text(json.dumps(stats.to_dict()))
                    os.replace(tmp, path)
                except OSError:
                    pass  # a read-only baseline folder: no cache
        total = stats if total is None else total.merged(stats)
    return total


def baseline_dates(date: dt.date, n: int) -> list[dt.date]:
    """The ``n`` trading days before ``date`` (weekdays, no NYSE holidays or half days), oldest first."""
    from elecflow.synth.config import FIRST_NORMAL_DAY, normal_trading_days

    if n <= 0:
        return []
    last = date - dt.timedelta(days=1)
    days = normal_trading_days(max(FIRST_NORMAL_DAY, last - dt.timedelta(days=7 * n + 14)), last)
    return days[-n:]


def find_baseline_days(root: Path, date: dt.date, n: int) -> list[Path]:
    """Folders ``<root>/<YYYY-MM-DD>`` of the ``n`` trading days before ``date`` that exist."""
    root = Path(root)
    return [root / d.isoformat() for d in baseline_dates(date, n) if (root / d.isoformat()).is_dir()]


def default_baseline_root(data_dir: Path | None) -> Path | None:
    """For a synthetic day (its manifest names a seed): ``<parent>/normal-days-seed<seed>``."""
    if data_dir is None:
        return None
    try:
        manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    seed = manifest.get("seed")
    return Path(data_dir).parent / f"normal-days-seed{seed}" if isinstance(seed, int) else None


def ensure_synthetic_baseline(data_dir: Path, date: dt.date, n: int, progress: bool = True) -> list[Path]:
    """Generate (or reuse) the ``n`` synthetic normal days before ``date`` for the synthetic day in
    ``data_dir``: same seed and universe size, written to :func:`default_baseline_root`."""
    from elecflow.adapters.synthetic import write_training_days

    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    size = manifest.get("generated_with", {}).get("factor_universe_size", 0)
    if not size:
        raise VendorFileError(f"{data_dir}: the synthetic day has no factor universe (factor_universe_size = 0)")
    root = default_baseline_root(data_dir)
    return write_training_days(baseline_dates(date, n), root, seed=int(manifest["seed"]), progress=progress,
                               factor_universe_size=int(size))


# --------------------------------------------------------------------------- after a run


def summarize_factor_outputs(out_dir: Path) -> dict:
    """The final per-regime figures of a run from its ``factor_decomposition`` output: per
    instrument and regime, the last row's regime variances and idiosyncratic ratio; per regime,
    the median ratio over stocks and over ETFs (``factor_summary.json`` is this)."""
    from elecflow import universe as U

    parts = sorted((Path(out_dir) / "factor_decomposition").glob("part-*.parquet"))
    if not parts:
        return {}
    t = pa.concat_tables([pq.read_table(p) for p in parts])
    if t.num_rows == 0:
        return {}
    df = t.select(["time", "symbol", "regime", "regime_total_var", "regime_systematic_var",
                   "regime_idiosyncratic_var", "regime_intervals", "baseline_idiosyncratic_var",
                   "idio_ratio_vs_baseline", "beta_mkt_rf", "beta_smb", "beta_hml", "beta_rmw", "beta_cma"]).to_pandas()
    last = df.sort_values("time").groupby(["symbol", "regime"], sort=True).tail(1)
    per = {}
    for r in last.itertuples(index=False):
        per.setdefault(r.symbol, {})[r.regime] = {
            "intervals": int(r.regime_intervals), "total_var": float(r.regime_total_var),
            "systematic_var": float(r.regime_systematic_var), "idiosyncratic_var": float(r.regime_idiosyncratic_var),
            "baseline_idiosyncratic_var": float(r.baseline_idiosyncratic_var),
            "idio_ratio_vs_baseline": float(r.idio_ratio_vs_baseline)}
    regimes = {}
    for regime, g in last.groupby("regime"):
        kinds = g.symbol.map(lambda s: U.INSTRUMENTS[s].kind if s in U.INSTRUMENTS else "other")
        out = {}
        for kind in ("stock", "etf"):
            vals = g.idio_ratio_vs_baseline[kinds == kind].to_numpy(dtype=float)
            vals = vals[np.isfinite(vals)]
            out[f"median_idio_ratio_{kind}s"] = float(np.median(vals)) if vals.size else None
        regimes[regime] = out
    return {"instruments": per, "regimes": regimes}


# --------------------------------------------------------------------------- the replay's factor inputs


@dataclass
class FactorInputs:
    """What the replay graph's factor nodes need (see :func:`prepare_factor_inputs`)."""

    universe: FactorUniverseFiles
    parts: list[Path]  # the universe's validated canonical 1 s NBBO parts
    report: IngestReport
    symbols: tuple[str, ...]
    settings: FactorModelSettings
    risk_free_rate: float
    baseline: BaselineStats | None
    baseline_days: list[Path]
    has_vendor_nbbo: bool = False  # the replay has the instruments' own 1 s NBBO file (else: sampled from quotes)

    def describe(self) -> dict:
        totals = self.report.totals().get("nbbo_1s", {"read": 0, "accepted": 0, "rejected": {}, "skipped": {}})
        return {"universe": self.universe.describe(),
                "rows": {"read": totals["read"], "accepted": totals["accepted"],
                         "rejected": dict(totals["rejected"]), "skipped": dict(totals["skipped"])},
                "reconciles": self.report.reconciles, "symbols": list(self.symbols),
                "settings": {k: getattr(self.settings, k) for k in ("interval_seconds", "dimson_lags",
                                                                    "beta_halflife_hours", "window_intervals",
                                                                    "prior_weight")},
                "risk_free_rate": self.risk_free_rate, "instrument_nbbo": "vendor 1 s file" if self.has_vendor_nbbo
                else "sampled from the quotes", "baseline_days": [str(p) for p in self.baseline_days]}


def prepare_factor_inputs(config, out_dir: Path, start_ns: int | None, end_ns: int | None, part_ns: int,
                          instrument_nbbo_parts: list[Path] = (), log: Callable[[str], None] = print
                          ) -> FactorInputs | None:
    """Find and stage the factor universe and load (or compute, or generate) the baseline.

    ``config`` is a :class:`~elecflow.config.ReplayConfig`; ``instrument_nbbo_parts`` the replay's
    canonical ``nbbo_1s`` parts (the instruments' own 1 s file, if any). Returns None, with a log line, when
    there is no factor universe under the data (the factor streams are then skipped). Writes
    ``<out>/factor_universe/factor_inputs.json`` (what was used).
    """
    from elecflow import universe as U

    fs = config.factor_settings
    universe = find_factor_universe(config.data, fs.universe)
    if universe is None:
        log(f"factors: no factor universe under {config.data} ({FACTOR_UNIVERSE_DIR}/): factor streams skipped")
        return None
    vendor = sum(pq.ParquetFile(p).metadata.num_rows for p in instrument_nbbo_parts) > 0
    if not vendor and not config.features:
        log("factors: the instruments have no 1 s NBBO file and the features (which sample it from the quotes) "
            "are off: factor streams skipped")
        return None
    symbols = tuple(config.symbols) if config.symbols is not None else tuple(U.SYMBOLS)
    settings = fs.model_settings()
    report, parts = stage_universe(universe, out_dir, start_ns, end_ns, part_ns, config.batch_rows)
    root = fs.baseline if fs.baseline is not None else default_baseline_root(config.data)
    days: list[Path] = []
    if fs.baseline_days and root is not None:
        days = find_baseline_days(root, config.date, fs.baseline_days)
        if len(days) < fs.baseline_days and fs.generate_baseline and fs.baseline is None:
            log(f"factors: generating the {fs.baseline_days} normal days before {config.date} into {root} "
                "(once; about 8 s a day) ...")
            days = ensure_synthetic_baseline(config.data, config.date, fs.baseline_days, progress=config.progress)
    if fs.baseline_days and not days:
        log(f"factors: no baseline days before {config.date} under {root}: betas start from the day's own data "
            "and the idiosyncratic-variance ratio is not computed (see docs/factors.md, 'Baseline days')")
    elif fs.baseline_days and len(days) < fs.baseline_days:
        log(f"factors: {len(days)} of {fs.baseline_days} baseline days found under {root}")
    baseline = baseline_stats(days, symbols, settings, fs.risk_free_rate, log=log) if days else None
    inputs = FactorInputs(universe, parts, report, symbols, settings, fs.risk_free_rate, baseline, days, vendor)
    path = Path(out_dir) / FACTOR_UNIVERSE_DIR / "factor_inputs.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(inputs.describe(), indent=2, default=str))
    os.replace(tmp, path)
    return inputs
