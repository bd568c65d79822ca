"""``elecflow report``: PNG figures and a CSV of the election states of a replayed day.

Reads the Parquet outputs of ``elecflow replay`` (``election_states``; ``rnd_curve`` and
``kalshi_probability`` when present) and writes what the dashboard's election-state panels
show, frozen at one time of the day (default: the last minute with mode-A fits):

* ``state_table.csv`` -- per underlying, the mode-A conditional expected return and vol to
  expiry in the Trump and Harris states with standard errors, at the chosen time and the
  day's median (:func:`state_table`; columns in ``docs/report.md``);
* ``state_returns.png`` -- the same as a bar chart (expected returns, 2-se error bars, Trump
  vs Harris per underlying) over a table;
* ``states_<UNDERLYING>.png`` -- the two state densities weighted by their probabilities over
  the total risk-neutral density (the chain's ``rnd_curve`` and the mode-A mixture);
* ``probability_<UNDERLYING>.png`` -- the option-implied Trump probability (mode B, once its
  states are labelled) with its +/- 2 se band against Kalshi's filtered probability.

Every problem the user can fix (no such directory, no ``election_states`` dataset, no
mode-A fit, a bad ``at``) raises :class:`ReportError` with a message naming it. pyarrow and
numpy only (no pandas); matplotlib (Agg, object-oriented API: no pyplot, no display) for the
figures.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from elecflow.calendar import NY, ns_to_utc, utc_ns
from elecflow.mixture import lognormal_mixture_pdf

__all__ = [
    "ReportError",
    "Outputs",
    "load_outputs",
    "resolve_at",
    "state_table",
    "write_state_csv",
    "plot_state_densities",
    "plot_probability",
    "plot_state_returns",
    "write_report",
    "STATE_TABLE_COLUMNS",
    "STATE_FIELDS",
]

NS_PER_MINUTE = 60 * 1_000_000_000

STATES_DATASET = "election_states"
CURVE_DATASET = "rnd_curve"
KALSHI_DATASET = "kalshi_probability"

# election_states columns the report reads
_STATE_COLUMNS = (
    "time", "underlying", "mode", "success", "message", "identified", "label", "kalshi_probability",
    "trump_probability", "trump_probability_se", "trump_probability_filtered", "probability_gap", "spot",
    "forward", "tau",
    "trump_mean", "trump_expected_return", "trump_expected_return_se", "trump_vol", "trump_vol_se",
    "harris_mean", "harris_expected_return", "harris_expected_return_se", "harris_vol", "harris_vol_se",
    "rmse_vol_points",
)
# the conditional quantities whose day's median is reported
STATE_FIELDS = (
    "trump_expected_return", "trump_expected_return_se", "trump_vol", "trump_vol_se",
    "harris_expected_return", "harris_expected_return_se", "harris_vol", "harris_vol_se",
)
# (column, arrow type) of the state table, in order; the CSV adds time_new_york after time
_TABLE_SCHEMA = [
    ("underlying", pa.string()),
    ("time", pa.timestamp("ns", tz="UTC")),
    ("success", pa.bool_()),
    ("identified", pa.bool_()),
    ("message", pa.string()),
    ("label", pa.string()),
    ("kalshi_probability", pa.float64()),
    ("spot", pa.float64()),
    ("forward", pa.float64()),
    ("tau", pa.float64()),
    ("trump_mean", pa.float64()),
    ("trump_expected_return", pa.float64()),
    ("trump_expected_return_se", pa.float64()),
    ("trump_vol", pa.float64()),
    ("trump_vol_se", pa.float64()),
    ("harris_mean", pa.float64()),
    ("harris_expected_return", pa.float64()),
    ("harris_expected_return_se", pa.float64()),
    ("harris_vol", pa.float64()),
    ("harris_vol_se", pa.float64()),
    ("rmse_vol_points", pa.float64()),
    ("option_label", pa.string()),
    ("option_trump_probability", pa.float64()),
    ("option_trump_probability_se", pa.float64()),
    ("option_trump_probability_filtered", pa.float64()),
    ("probability_gap", pa.float64()),
    ("day_fits", pa.int64()),
    *((f"median_{f}", pa.float64()) for f in STATE_FIELDS),
]
STATE_TABLE_COLUMNS = tuple(name for name, _ in _TABLE_SCHEMA)

TRUMP_COLOR = "#c62828"
HARRIS_COLOR = "#1f5fb4"
RND_COLOR = "#222222"


class ReportError(Exception):
    """A problem with the replay outputs or the arguments, printed without a traceback."""


# ------------------------------------------------------------------------------------ loading


@dataclass(frozen=True)
class Outputs:
    """The replay outputs the report reads, as pyarrow tables sorted by time.

    ``states``: ``election_states``; ``curve``: ``rnd_curve`` (time, underlying, strike,
    density) or None when absent; ``kalshi``: the ``kalshi_probability`` grid rows (time, p,
    sd) or None when absent.
    """

    out_dir: Path
    states: pa.Table
    curve: pa.Table | None = None
    kalshi: pa.Table | None = None

    @cached_property
    def state_columns(self) -> dict[str, np.ndarray]:
        """``states`` as numpy columns (``time`` as int64 ns UTC)."""
        return _columns(self.states)

    @cached_property
    def curve_columns(self) -> dict[str, np.ndarray] | None:
        return _columns(self.curve) if self.curve is not None else None

    @property
    def underlyings(self) -> list[str]:
        return sorted(set(self.states.column("underlying").to_pylist()))

    @property
    def trading_date(self) -> dt.date:
        """New York date of the first fit: the date ``HH:MM`` in ``at`` refers to."""
        return ns_to_utc(int(_ns(self.states.column("time")).min())).astimezone(NY).date()


def _read_dataset(out_dir: Path, name: str, columns: list[str] | None, required: bool) -> pa.Table | None:
    path = out_dir / name
    if not path.exists():
        if required:
            raise ReportError(
                f"{out_dir}: no {name} dataset (was the replay run without option quotes, or with the option "
                f"graph or the election-state fits switched off?)")
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ReportError(f"{path}: cannot read the {name} dataset ({exc})") from exc
    if columns is not None:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ReportError(f"{path}: the {name} dataset lacks column(s) {', '.join(missing)} "
                              "(written by another version of elecflow?)")
        table = table.select(columns)
    if required and table.num_rows == 0:
        raise ReportError(f"{path}: the {name} dataset has no rows (no option chain was fitted in the window)")
    if table.num_rows:
        table = table.sort_by([("time", "ascending")])
    return table


def load_outputs(out_dir: str | Path) -> Outputs:
    """Read the report's inputs from the output directory of ``elecflow replay``.

    Raises :class:`ReportError` when ``out_dir`` is not a directory or lacks a readable,
    non-empty ``election_states`` dataset; ``rnd_curve`` and ``kalshi_probability`` are
    optional (the figures then go without the chain's density / use the per-minute Kalshi
    probability of the fits).
    """
    out_dir = Path(out_dir)
    if not out_dir.exists():
        raise ReportError(f"{out_dir}: output directory does not exist")
    if not out_dir.is_dir():
        raise ReportError(f"{out_dir}: not a directory (give the --out directory of elecflow replay)")
    states = _read_dataset(out_dir, STATES_DATASET, list(_STATE_COLUMNS), required=True)
    curve = _read_dataset(out_dir, CURVE_DATASET, ["time", "underlying", "strike", "density"], required=False)
    kalshi = _read_dataset(out_dir, KALSHI_DATASET, ["time", "kind", "p", "sd"], required=False)
    if kalshi is not None:
        kind = kalshi.column("kind").to_numpy(zero_copy_only=False)
        kalshi = kalshi.filter(pa.array(kind == "grid")).select(["time", "p", "sd"])
        if kalshi.num_rows == 0:
            kalshi = None
    if curve is not None and curve.num_rows == 0:
        curve = None
    return Outputs(out_dir=out_dir, states=states, curve=curve, kalshi=kalshi)


# ---------------------------------------------------------------------------- column helpers


def _ns(column) -> np.ndarray:
    """A timestamp column -> int64 ns since the epoch (UTC)."""
    return np.asarray(column.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _columns(table: pa.Table) -> dict[str, np.ndarray]:
    """Numpy columns: ``time`` as int64 ns, floats with NaN for nulls, strings as objects."""
    out = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            out[name] = _ns(col)
        elif pa.types.is_floating(col.type):
            out[name] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
        elif pa.types.is_boolean(col.type):
            out[name] = np.asarray(col.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            out[name] = np.asarray(col.fill_null("").to_numpy(zero_copy_only=False), dtype=object)
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


def _minute(ns: np.ndarray | int):
    return ns // NS_PER_MINUTE * NS_PER_MINUTE


def _ny_clock(ns: int, seconds: bool = True) -> str:
    return ns_to_utc(ns).astimezone(NY).strftime("%H:%M:%S" if seconds else "%H:%M")


def _ny_datetime64(ns: np.ndarray) -> np.ndarray:
    """UTC ns -> naive New York wall-clock datetime64 (for plotting)."""
    ns = np.asarray(ns, dtype=np.int64)
    if ns.size == 0:
        return ns.astype("datetime64[ns]")
    first = ns_to_utc(int(ns.min())).astimezone(NY).utcoffset()
    last = ns_to_utc(int(ns.max())).astimezone(NY).utcoffset()
    if first == last:  # no daylight-saving change inside: one offset
        return (ns + int(first.total_seconds()) * 1_000_000_000).astype("datetime64[ns]")
    offsets = np.array([int(ns_to_utc(int(t)).astimezone(NY).utcoffset().total_seconds()) for t in ns])
    return (ns + offsets * 1_000_000_000).astype("datetime64[ns]")


# ------------------------------------------------------------------------------- the table


def _mode_a_fits(cols: dict[str, np.ndarray]) -> np.ndarray:
    return (cols["mode"] == "A") & cols["success"]


def _parse_at(at, trading_date: dt.date) -> int:
    """``at`` -> int ns UTC. Strings are ``HH:MM[:SS]`` New York time on the trading date
    (``+1``: the next day) or an ISO datetime (naive = New York), as ``replay --start``;
    ``datetime.time`` is New York time on the trading date; a ``datetime`` is aware or
    naive UTC (the engine's convention); an ``int`` is ns since the epoch."""
    if isinstance(at, (int, np.integer)) and not isinstance(at, bool):
        return int(at)
    if isinstance(at, dt.datetime):
        return utc_ns(at)
    if isinstance(at, dt.time):
        return utc_ns(trading_date, at)
    if isinstance(at, str):
        from elecflow.config import parse_window_bound

        text = at.strip()
        if re.fullmatch(r"\d:\d\d(:\d\d)?(\+1d?)?", text):  # "9:45" -> "09:45"
            text = "0" + text
        try:
            return utc_ns(parse_window_bound(text, trading_date))
        except ValueError as exc:
            raise ReportError(f"--at {at!r}: neither HH:MM[:SS] New York time (+1 = next day) "
                              "nor an ISO datetime") from exc
    raise ReportError(f"at: expected HH:MM, a datetime or None, got {type(at).__name__}")


def resolve_at(states: pa.Table, at=None) -> int:
    """The report's time (int ns UTC): the last mode-A fit (successful, any underlying) in the
    minute of ``at`` or earlier; ``at=None``: the last minute with mode-A fits.

    Fits are stamped a moment into their minute (e.g. 10:58:01 New York), so ``at="10:58"``
    selects the 10:58:01 fit. Raises :class:`ReportError` when there is no mode-A fit, or none
    at or before ``at``.
    """
    cols = _columns(states.select(["time", "mode", "success"]))
    fits = cols["time"][_mode_a_fits(cols)]
    if fits.size == 0:
        raise ReportError(
            "election_states has no successful mode-A fit (mode A needs Kalshi's probability: were there "
            "Kalshi trades in the replay window?)")
    if at is None:
        return int(fits.max())
    first = int(fits.min())
    date = ns_to_utc(int(cols["time"].min())).astimezone(NY).date()
    at_ns = _parse_at(at, date)
    eligible = fits[_minute(fits) <= _minute(at_ns)]
    if eligible.size == 0:
        raise ReportError(f"no mode-A fit at or before {ns_to_utc(at_ns).astimezone(NY):%Y-%m-%d %H:%M} New York "
                          f"(the first is at {ns_to_utc(first).astimezone(NY):%Y-%m-%d %H:%M:%S})")
    return int(eligible.max())


def _state_rows(states: pa.Table, at_ns: int) -> list[dict]:
    cols = _columns(states.select(list(_STATE_COLUMNS)))
    t, minute = cols["time"], _minute(cols["time"])
    cutoff = _minute(at_ns)
    rows = []
    for u in sorted(set(cols["underlying"].tolist())):
        is_u = cols["underlying"] == u
        mode_a = is_u & (cols["mode"] == "A")
        candidates = np.flatnonzero(mode_a & (minute <= cutoff))
        if candidates.size == 0:
            continue  # no mode-A row yet for this underlying
        i = candidates[t[candidates] == t[candidates].max()][-1]  # the last row of the latest time
        row = {name: cols[name][i].item() if hasattr(cols[name][i], "item") else cols[name][i]
               for name in ("underlying", "success", "identified", "message", "label", "kalshi_probability",
                            "spot", "forward", "tau", "trump_mean", "trump_expected_return",
                            "trump_expected_return_se", "trump_vol", "trump_vol_se", "harris_mean",
                            "harris_expected_return", "harris_expected_return_se", "harris_vol", "harris_vol_se",
                            "rmse_vol_points")}
        row["time"] = int(t[i])
        # mode B of the same minute: the option-implied Trump probability
        b = np.flatnonzero(is_u & (cols["mode"] == "B") & (minute == minute[i]))
        if b.size:
            j = b[np.argmax(t[b])]
            row.update(option_label=str(cols["label"][j]),
                       option_trump_probability=float(cols["trump_probability"][j]),
                       option_trump_probability_se=float(cols["trump_probability_se"][j]),
                       option_trump_probability_filtered=float(cols["trump_probability_filtered"][j]),
                       probability_gap=float(cols["probability_gap"][j]))
        else:
            row.update(option_label="", option_trump_probability=math.nan, option_trump_probability_se=math.nan,
                       option_trump_probability_filtered=math.nan, probability_gap=math.nan)
        # the day's median over the identified mode-A fits (the whole output, not only up to at)
        day = mode_a & cols["success"] & cols["identified"]
        row["day_fits"] = int(day.sum())
        for f in STATE_FIELDS:
            values = cols[f][day]
            values = values[np.isfinite(values)]
            row[f"median_{f}"] = float(np.median(values)) if values.size else math.nan
        rows.append(row)
    return rows


def state_table(states: pa.Table, at=None) -> pa.Table:
    """Per underlying, the mode-A states at the report's time and the day's medians.

    ``states``: the ``election_states`` table (``load_outputs(...).states``); ``at``: as in
    :func:`resolve_at`. One row per underlying with a mode-A row at or before that minute:
    the underlying's latest mode-A row in that minute or before (its own ``time``; the fit's
    values as written, NaN with ``success = False`` and the ``message`` if that fit failed),
    mode B's label, Trump probability and se of the same minute, and the median of each
    :data:`STATE_FIELDS` over the day's successful, identified mode-A fits (``day_fits`` of
    them). Columns :data:`STATE_TABLE_COLUMNS`; a pyarrow Table (``.to_pandas()`` if wanted).
    """
    at_ns = resolve_at(states, at)
    rows = _state_rows(states, at_ns)
    schema = pa.schema(_TABLE_SCHEMA)
    arrays = []
    for name, typ in _TABLE_SCHEMA:
        values = [r[name] for r in rows]
        if name == "time":
            arrays.append(pa.array(values, pa.int64()).cast(typ))
        else:
            arrays.append(pa.array(values, typ))
    return pa.Table.from_arrays(arrays, schema=schema)


def _csv_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""  # repr: round-trips exactly
    return "" if value is None else str(value)


def write_state_csv(table: pa.Table, path: str | Path) -> Path:
    """The state table as CSV: the columns of :func:`state_table` with ``time`` in ISO UTC and
    ``time_new_york`` after it; floats at full precision, NaN as an empty field, booleans
    ``true``/``false``."""
    path = Path(path)
    names = list(table.column_names)
    header = names[: names.index("time") + 1] + ["time_new_york"] + names[names.index("time") + 1:]
    times = _ns(table.column("time"))
    columns = {n: table.column(n).to_pylist() for n in names if n != "time"}
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for k in range(table.num_rows):
            utc = ns_to_utc(int(times[k]))
            values = {"time": utc.isoformat(), "time_new_york": utc.astimezone(NY).isoformat()}
            values.update({n: _csv_value(columns[n][k]) for n in columns})
            writer.writerow([values[h] for h in header])
    return path


# ----------------------------------------------------------------------------------- figures


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ReportError("the report's figures need matplotlib (pip install matplotlib)") from exc
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # Agg, whatever backend the process has chosen; no display
    fig.savefig(path, format="png")
    return path


def _time_axis(ax) -> None:
    from matplotlib.dates import AutoDateLocator, DateFormatter

    ax.xaxis.set_major_locator(AutoDateLocator(minticks=4, maxticks=10))
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    ax.set_xlabel("New York time")


def _row(cols: dict[str, np.ndarray], underlying: str, mode: str, at_ns: int) -> int | None:
    """Index of the underlying's latest ``mode`` row in the minute of ``at_ns`` or before."""
    idx = np.flatnonzero((cols["underlying"] == underlying) & (cols["mode"] == mode)
                         & (_minute(cols["time"]) <= _minute(at_ns)))
    return int(idx[np.argmax(cols["time"][idx])]) if idx.size else None


def _state_params(cols: dict[str, np.ndarray], i: int):
    """(p, [mean_T, mean_H], [sdlog_T, sdlog_H]) of a mode-A row, or None if unusable."""
    p, tau = float(cols["trump_probability"][i]), float(cols["tau"][i])
    means = [float(cols["trump_mean"][i]), float(cols["harris_mean"][i])]
    vols = [float(cols["trump_vol"][i]), float(cols["harris_vol"][i])]
    if not (cols["success"][i] and 0.0 < p < 1.0 and tau > 0.0
            and all(math.isfinite(m) and m > 0 for m in means) and all(math.isfinite(v) and v > 0 for v in vols)):
        return None
    return p, means, [v * math.sqrt(tau) for v in vols]


def _curve_at(outputs: Outputs, underlying: str, at_ns: int):
    """(time, strike, density) of the underlying's last ``rnd_curve`` in the minute of ``at_ns``
    or before, or None."""
    c = outputs.curve_columns
    if c is None:
        return None
    t = c["time"]
    ok = (c["underlying"] == underlying) & (_minute(t) <= _minute(at_ns))
    if not ok.any():
        return None
    last = t[ok].max()
    sel = ok & (t == last)
    strike, density = c["strike"][sel], c["density"][sel]
    order = np.argsort(strike)
    return int(last), strike[order], density[order]


def plot_state_densities(outputs: Outputs, underlying: str, at_ns: int, path: str | Path) -> Path:
    """``states_<U>.png``: Trump-wins and Harris-wins lognormals of the mode-A fit, weighted
    by ``p`` and ``1 - p``, their sum, and the chain's risk-neutral density (``rnd_curve``)."""
    cols = outputs.state_columns
    i = _row(cols, underlying, "A", at_ns)
    curve = _curve_at(outputs, underlying, at_ns)
    fig = _figure(8.0, 4.8)
    ax = fig.add_subplot()
    params = _state_params(cols, i) if i is not None else None
    lo, hi = math.inf, -math.inf
    if curve is not None:
        lo, hi = float(curve[1].min()), float(curve[1].max())
    if params is not None:
        p, means, sds = params
        mus = [math.log(m) - 0.5 * s * s for m, s in zip(means, sds)]
        lo = min(lo, *(math.exp(m - 3.5 * s) for m, s in zip(mus, sds)))
        hi = max(hi, *(math.exp(m + 3.5 * s) for m, s in zip(mus, sds)))
    if params is not None or curve is not None:
        x = np.linspace(max(lo, 0.0), hi, 600)
    if curve is not None:
        ax.plot(curve[1], curve[2], color=RND_COLOR, lw=1.8,
                label="risk-neutral density (chain)" + ("" if i is None or curve[0] == cols["time"][i]
                                                        else f", {_ny_clock(curve[0])}"))
    if params is not None:
        p, means, sds = params
        trump = p * lognormal_mixture_pdf(x, [1.0], [mus[0]], [sds[0]])
        harris = (1.0 - p) * lognormal_mixture_pdf(x, [1.0], [mus[1]], [sds[1]])
        total = lognormal_mixture_pdf(x, [p, 1.0 - p], mus, sds)
        er = [float(cols["trump_expected_return"][i]), float(cols["harris_expected_return"][i])]
        ax.fill_between(x, trump, color=TRUMP_COLOR, alpha=0.22, lw=0)
        ax.plot(x, trump, color=TRUMP_COLOR, lw=1.5,
                label=f"Trump wins x p = {p:.3f}  (mean {means[0]:.4g}, {100 * er[0]:+.2f} %)")
        ax.fill_between(x, harris, color=HARRIS_COLOR, alpha=0.22, lw=0)
        ax.plot(x, harris, color=HARRIS_COLOR, lw=1.5,
                label=f"Harris wins x (1-p) = {1 - p:.3f}  (mean {means[1]:.4g}, {100 * er[1]:+.2f} %)")
        ax.plot(x, total, color="#777777", lw=1.3, ls="--", label="mode-A mixture (sum)")
        for m, c in zip(means, (TRUMP_COLOR, HARRIS_COLOR)):
            ax.axvline(m, color=c, lw=0.8, ls=":")
    if i is not None and math.isfinite(cols["spot"][i]):
        ax.axvline(cols["spot"][i], color="#555555", lw=0.9, ls="-.", label=f"spot {cols['spot'][i]:.4g}")
    if params is None:
        why = "no mode-A row" if i is None else (str(cols["message"][i]) or "states not usable")
        ax.text(0.5, 0.5, f"no state fit: {why}", transform=ax.transAxes, ha="center", va="center",
                color="#888888")
    when = _ny_clock(int(cols["time"][i])) if i is not None else _ny_clock(at_ns)
    ax.set_title(f"{underlying}: election-state densities of S_T at {when} New York (mode A)")
    ax.set_xlabel(f"{underlying} price at expiry")
    ax.set_ylabel("density")
    ax.set_ylim(bottom=0)
    if ax.get_legend_handles_labels()[0]:
        fig.legend(fontsize=8, loc="outside lower center", ncols=2, frameon=False)
    return _save(fig, Path(path))


def plot_probability(outputs: Outputs, underlying: str, at_ns: int, path: str | Path) -> Path:
    """``probability_<U>.png``: mode B's Trump probability with its +/- 2 se band (where the
    states are labelled) against Kalshi's filtered probability, over the day."""
    cols = outputs.state_columns
    is_u = cols["underlying"] == underlying
    a = np.flatnonzero(is_u & (cols["mode"] == "A"))
    b = np.flatnonzero(is_u & (cols["mode"] == "B"))
    span = cols["time"][np.flatnonzero(is_u)]
    t0, t1 = int(span.min()), int(span.max())
    fig = _figure(8.0, 4.2)
    ax = fig.add_subplot()
    if outputs.kalshi is not None:
        kt = _ns(outputs.kalshi.column("time"))
        keep = (kt >= t0 - NS_PER_MINUTE) & (kt <= t1 + NS_PER_MINUTE)
        kp = np.asarray(outputs.kalshi.column("p").to_numpy(zero_copy_only=False), float)[keep]
        ax.plot(_ny_datetime64(kt[keep]), kp, color="#333333", lw=1.0, label="Kalshi (filtered)")
    elif a.size:
        ax.plot(_ny_datetime64(cols["time"][a]), cols["kalshi_probability"][a], color="#333333", lw=1.0,
                label="Kalshi (filtered)")
    labelled = False
    if b.size:
        bx = _ny_datetime64(cols["time"][b])
        bp, bse = cols["trump_probability"][b], cols["trump_probability_se"][b]
        ok = np.isfinite(bp)
        labelled = bool(ok.any())
        if labelled:
            band = ok & np.isfinite(bse)
            ax.fill_between(bx, bp - 2 * bse, bp + 2 * bse, where=band, color=TRUMP_COLOR, alpha=0.18, lw=0,
                            label="options +/- 2 se")
            ax.plot(bx, bp, color=TRUMP_COLOR, lw=0.8, alpha=0.7, marker="." if ok.sum() < 30 else None,
                    label="options (mode B)")
            bf = cols["trump_probability_filtered"][b]
            if np.isfinite(bf).any():
                ax.plot(bx, bf, color="#7a1010", lw=1.8, label="options (filtered)")
    if not labelled:
        ax.text(0.5, 0.92, "mode B: states never labelled (undetermined) in this replay: no option-implied probability",
                transform=ax.transAxes, ha="center", va="top", fontsize=8, color="#888888")
    ax.axvline(_ny_datetime64(np.array([at_ns]))[0], color="#888888", lw=0.8, ls=":")
    ax.set_title(f"{underlying}: Trump-wins probability, options vs Kalshi")
    ax.set_ylabel("P(Trump wins)")
    _time_axis(ax)
    lo, hi = ax.get_ylim()
    ax.set_ylim(max(lo, 0.0), min(hi, 1.0))
    ax.legend(fontsize=8, loc="lower left", frameon=False)
    return _save(fig, Path(path))


def _pct(value: float, se: float | None = None) -> str:
    if not math.isfinite(value):
        return "-"
    text = f"{100 * value:+.2f}"
    if se is not None and math.isfinite(se):
        text += f" ± {100 * se:.2f}"
    return text


def plot_state_returns(table: pa.Table, path: str | Path) -> Path:
    """``state_returns.png``: expected returns to expiry in the Trump and Harris states per
    underlying (bars with 2-se error bars, diamonds at the day's median) over a table of the
    numbers (returns and vols in %, +/- se)."""
    rows = table.to_pylist()
    times = _ns(table.column("time"))
    n = len(rows)
    table_height = 0.3 * (n + 1)
    fig = _figure(max(9.0, 1.1 * n + 3.0), 4.2 + table_height)
    grid = fig.add_gridspec(2, 1, height_ratios=[4.0, table_height])
    ax = fig.add_subplot(grid[0])
    x = np.arange(n)
    width = 0.38
    for k, (state, color) in enumerate((("trump", TRUMP_COLOR), ("harris", HARRIS_COLOR))):
        value = np.array([r[f"{state}_expected_return"] for r in rows], float) * 100
        se = np.array([r[f"{state}_expected_return_se"] for r in rows], float) * 100
        median = np.array([r[f"median_{state}_expected_return"] for r in rows], float) * 100
        pos = x + (k - 0.5) * width
        ax.bar(pos, np.nan_to_num(value), width, color=color, alpha=0.8,
               label=f"{state.capitalize()} wins")
        ax.errorbar(pos, value, yerr=2 * np.nan_to_num(se), fmt="none", ecolor="black", elinewidth=1.0, capsize=3)
        ax.plot(pos, median, ls="none", marker="D", mfc="white", mec="black", ms=5,
                label="day's median" if k == 0 else None)
    ax.axhline(0.0, color="black", lw=0.7)
    ax.set_xticks(x, [r["underlying"] for r in rows])
    ax.set_ylabel("expected return to expiry, % (bars: 2 se)")
    when = _ny_clock(int(times.max())) if n else ""
    ax.set_title(f"Conditional expected returns by election outcome, mode A, at {when} New York")
    ax.legend(fontsize=8, frameon=False)
    tab = fig.add_subplot(grid[1])
    tab.axis("off")
    header = ["", "time", "p (Kalshi)", "Trump E[r] %", "Trump vol %", "Harris E[r] %", "Harris vol %",
              "median T E[r] %", "median H E[r] %"]
    body = [[r["underlying"], _ny_clock(int(t)), f"{r['kalshi_probability']:.3f}",
             _pct(r["trump_expected_return"], r["trump_expected_return_se"]),
             _pct(r["trump_vol"], r["trump_vol_se"]).lstrip("+"),
             _pct(r["harris_expected_return"], r["harris_expected_return_se"]),
             _pct(r["harris_vol"], r["harris_vol_se"]).lstrip("+"),
             _pct(r["median_trump_expected_return"]), _pct(r["median_harris_expected_return"])]
            for r, t in zip(rows, times)]
    if body:
        widths = [0.07, 0.09, 0.09, 0.13, 0.13, 0.13, 0.13, 0.115, 0.115]
        cells = tab.table(cellText=body, colLabels=header, colWidths=widths, cellLoc="center",
                          bbox=[0.0, 0.0, 1.0, 1.0])
        cells.auto_set_font_size(False)
        cells.set_fontsize(8)
    return _save(fig, Path(path))


# ------------------------------------------------------------------------------------ report


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def write_report(out_dir: str | Path, report_dir: str | Path | None = None, at=None) -> list[Path]:
    """Write the report of the replay outputs in ``out_dir`` into ``report_dir`` (default
    ``out_dir/report``) and return the files written: ``state_table.csv``,
    ``state_returns.png``, then ``states_<U>.png`` and ``probability_<U>.png`` per underlying
    with a mode-A row at or before the report's time. ``at``: as in :func:`resolve_at`.
    Raises :class:`ReportError` for every problem the user can fix."""
    outputs = load_outputs(out_dir)
    at_ns = resolve_at(outputs.states, at)
    table = state_table(outputs.states, at_ns)
    report_dir = Path(report_dir) if report_dir is not None else Path(out_dir) / "report"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{report_dir}: cannot create the report directory ({exc.strerror or exc})") from exc
    try:
        written = [write_state_csv(table, report_dir / "state_table.csv"),
                   plot_state_returns(table, report_dir / "state_returns.png")]
        for u in table.column("underlying").to_pylist():
            written.append(plot_state_densities(outputs, u, at_ns, report_dir / f"states_{_file_part(u)}.png"))
            written.append(plot_probability(outputs, u, at_ns, report_dir / f"probability_{_file_part(u)}.png"))
    except OSError as exc:
        where = exc.filename or report_dir
        raise ReportError(f"{where}: cannot write the report ({exc.strerror or exc})") from exc
    return written
