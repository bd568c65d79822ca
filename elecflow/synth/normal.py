"""Normal (pre-election) trading days: ordinary news in place of the election signal.

Pure numerics, no I/O (docs/synthetic-day.md, "Normal days"). On a normal day the
efficient prices follow the same factor model as on Election Day
(:func:`elecflow.synth.equities.simulate_efficient_prices`) with the election probability
replaced by a common *macro news level* ``M`` (log units of a market-wide move) and with
each stock's own news jumps added to its idiosyncratic shock::

    dM   = macro_vol s(t) dW_M  +  scheduled release jumps  +  unscheduled macro jumps
    dF_f = MACRO_FACTOR_LOADINGS[f] dM + sigma_f s(t) dW_f               (factors)
    dx_i = sum_f B_if dF_f + sum_j W_ij dx_j + sigma_i s(t) dW_i + dJ_i   (stocks; no election loading)

* scheduled releases at their New York times (:func:`scheduled_releases`): a generic
  schedule (weekly jobless claims on Thursdays 08:30, a 10:00 data release every day)
  plus an approximate calendar of the big releases of September-November 2024; a release
  of weight ``w`` moves ``M`` by ``N(0, w * macro_release_jump_sd^2)``;
* unscheduled macro news: ``Poisson(macro_news_per_day)`` jumps of ``N(0, macro_news_jump_sd^2)``;
* each stock's own news (``J_i``): ``Poisson(idio_news_per_day)`` jumps of
  ``N(0, (idio_news_scale * idio_vol_i / sqrt(252))^2)`` (a fraction of its daily
  idiosyncratic vol); GOOG, built from GOOGL, inherits GOOGL's news.

Unscheduled times are spread over 04:00-20:00 ET with density proportional to the session
vol multiplier ``s(t)`` (pre-open 0.35, regular 1, after-hours 0.5). A jump at time ``t``
applies to the grid step ending at the first grid point ``>= t`` (as the election news).
The quoted mids then catch up with the partial adjustment, and the informed / ISO flow
trades the gap exactly as on Election Day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from elecflow import universe as U
from elecflow.calendar import NS_PER_SECOND, Session, ny_to_utc, session_of, utc_ns
from elecflow.synth.equities import VOL_SESSION_MULT

# d F_f / d M: a unit of macro news is a +1 log move of the market factor ("risk on"):
# cyclicals and small caps follow, long bonds (RATES is the bond price) and utilities fall.
MACRO_FACTOR_LOADINGS: dict[str, float] = {
    "MKT": 1.0, "TECH": 0.15, "SEMI": 0.3, "FIN": 0.25, "REGBANK": 0.4, "ENERGY": 0.2, "SMALLCAP": 0.3,
    "RATES": -0.5, "CREDIT": 0.1, "CHINA": 0.3, "EMX": 0.3, "UTIL": -0.2,
}
MACRO_FACTOR = "MACRO"  # name of the news level in the factors ground truth


@dataclass(frozen=True)
class Release:
    """A scheduled macro release on one date (New York time)."""

    time: dt.time
    label: str
    weight: float


# Weekly and daily releases of every normal day.
GENERIC_RELEASES: tuple[tuple[int | None, Release], ...] = (
    (3, Release(dt.time(8, 30), "initial jobless claims", 0.5)),  # Thursdays
    (None, Release(dt.time(10, 0), "10:00 data release", 0.4)),  # every day
)
# Approximate calendar of the big US releases around the 2024 election (descriptive labels;
# only times and weights matter to the model).
CALENDAR_2024: dict[dt.date, tuple[Release, ...]] = {
    dt.date(2024, 9, 6): (Release(dt.time(8, 30), "employment situation (Aug)", 3.0),),
    dt.date(2024, 9, 11): (Release(dt.time(8, 30), "CPI (Aug)", 3.0),),
    dt.date(2024, 9, 12): (Release(dt.time(8, 30), "PPI (Aug)", 1.5),),
    dt.date(2024, 9, 17): (Release(dt.time(8, 30), "retail sales (Aug)", 1.5),),
    dt.date(2024, 9, 18): (Release(dt.time(14, 0), "FOMC decision", 4.0),
                           Release(dt.time(14, 30), "FOMC press conference", 2.0)),
    dt.date(2024, 9, 27): (Release(dt.time(8, 30), "PCE (Aug)", 2.0),),
    dt.date(2024, 10, 1): (Release(dt.time(10, 0), "ISM manufacturing (Sep)", 1.0),),
    dt.date(2024, 10, 4): (Release(dt.time(8, 30), "employment situation (Sep)", 3.0),),
    dt.date(2024, 10, 10): (Release(dt.time(8, 30), "CPI (Sep)", 3.0),),
    dt.date(2024, 10, 11): (Release(dt.time(8, 30), "PPI (Sep)", 1.5),),
    dt.date(2024, 10, 17): (Release(dt.time(8, 30), "retail sales (Sep)", 1.5),),
    dt.date(2024, 10, 30): (Release(dt.time(8, 30), "GDP advance (Q3)", 2.0),),
    dt.date(2024, 10, 31): (Release(dt.time(8, 30), "PCE (Sep)", 2.0),),
    dt.date(2024, 11, 1): (Release(dt.time(8, 30), "employment situation (Oct)", 3.0),
                           Release(dt.time(10, 0), "ISM manufacturing (Oct)", 1.0)),
}


def scheduled_releases(date: dt.date) -> list[Release]:
    """The releases of ``date`` in time order (generic schedule + the 2024 calendar)."""
    out = [r for wd, r in GENERIC_RELEASES if wd is None or wd == date.weekday()]
    out += list(CALENDAR_2024.get(date, ()))
    return sorted(out, key=lambda r: (r.time, -r.weight, r.label))


@dataclass(frozen=True)
class NewsParams:
    """The normal-day news knobs (the day's configuration supplies them)."""

    macro_vol: float = 0.04
    macro_release_jump_sd: float = 0.003
    macro_news_per_day: float = 4.0
    macro_news_jump_sd: float = 0.0015
    idio_news_per_day: float = 1.0
    idio_news_scale: float = 0.5

    @classmethod
    def from_config(cls, config) -> "NewsParams":
        return cls(**{f: getattr(config, f) for f in cls.__dataclass_fields__})


@dataclass
class NormalNews:
    """The news of one normal day on the equity grid."""

    level: np.ndarray  # (n,) macro news level M, 0 at the grid start
    idio: dict[str, np.ndarray]  # stock -> (n-1,) log increments of its own news
    events: list[dict] = field(default_factory=list)  # every jump, time order


def _session_weights(grid_ns: np.ndarray, date: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Per-step vol multiplier s(t) (steps = seconds [grid[k], grid[k+1])) and its normalised density."""
    sess = session_of(grid_ns[:-1], date)
    mult = np.array([VOL_SESSION_MULT.get(Session(int(s)), 0.0) for s in range(5)])[sess]
    total = mult.sum()
    return mult, (mult / total if total > 0 else np.full(mult.size, 1.0 / max(mult.size, 1)))


def _random_times(grid_ns: np.ndarray, density: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` event times (sorted ns) with per-second density ``density``, uniform in the second."""
    steps = rng.choice(density.size, size=count, p=density)
    offsets = rng.integers(1, NS_PER_SECOND, size=count)  # strictly inside the second
    return np.sort(grid_ns[steps] + offsets)


def _step_of(grid_ns: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """Increment index of the step ending at the first grid point >= t."""
    return np.searchsorted(grid_ns, t_ns, side="left") - 1


def _event(kind: str, label: str, symbol: str | None, t_ns: int, grid_ns: np.ndarray, step: int, sd: float,
           size: float) -> dict:
    return {"kind": kind, "label": label, "symbol": symbol, "time_utc_ns": int(t_ns),
            "grid_time_utc_ns": int(grid_ns[step + 1]), "sd": float(sd), "log_jump": float(size)}


def simulate_news(grid_ns: np.ndarray, date: dt.date, params: NewsParams, rng_macro: np.random.Generator,
                  rng_idio: dict[str, np.random.Generator]) -> NormalNews:
    """The macro news level and every stock's own news on the 1 s grid of ``date``.

    ``rng_idio`` maps each stock that has own news to its generator. Draw order per
    generator is fixed (diffusion, release sizes, unscheduled count, times, sizes), so the
    draws do not depend on the window the day is later cut to.
    """
    grid_ns = np.asarray(grid_ns, dtype=np.int64)
    n = grid_ns.size
    mult, density = _session_weights(grid_ns, date)
    dt_years = 1.0 / U.SECONDS_PER_TRADING_YEAR
    events: list[dict] = []

    # ---- macro: diffusion + scheduled releases + unscheduled news
    dm = params.macro_vol * np.sqrt(dt_years) * mult * rng_macro.standard_normal(n - 1)
    releases = scheduled_releases(date)
    rel_z = rng_macro.standard_normal(len(releases))
    for r, z in zip(releases, rel_z):
        t = utc_ns(ny_to_utc(date, r.time))
        k = int(_step_of(grid_ns, np.array([t]))[0])
        if not (0 <= k < n - 1):
            continue
        sd = params.macro_release_jump_sd * np.sqrt(r.weight)
        dm[k] += sd * z
        events.append(_event("release", r.label, None, t, grid_ns, k, sd, sd * z))
    count = int(rng_macro.poisson(params.macro_news_per_day))
    times = _random_times(grid_ns, density, count, rng_macro)
    sizes = params.macro_news_jump_sd * rng_macro.standard_normal(count)
    for t, size, k in zip(times, sizes, _step_of(grid_ns, times)):
        dm[k] += size
        events.append(_event("macro_news", "unscheduled macro news", None, t, grid_ns, int(k),
                             params.macro_news_jump_sd, size))
    level = np.concatenate(([0.0], np.cumsum(dm)))

    # ---- each stock's own news
    idio: dict[str, np.ndarray] = {}
    for sym, rng in rng_idio.items():
        sd = params.idio_news_scale * U.INSTRUMENTS[sym].idio_vol / np.sqrt(252.0)
        count = int(rng.poisson(params.idio_news_per_day))
        times = _random_times(grid_ns, density, count, rng)
        sizes = sd * rng.standard_normal(count)
        inc = np.zeros(n - 1)
        steps = _step_of(grid_ns, times)
        np.add.at(inc, steps, sizes)
        idio[sym] = inc
        for t, size, k in zip(times, sizes, steps):
            events.append(_event("stock_news", f"{sym} news", sym, t, grid_ns, int(k), sd, size))
    events.sort(key=lambda e: (e["time_utc_ns"], e["kind"], e["symbol"] or ""))
    return NormalNews(level, idio, events)


def news_stocks() -> tuple[str, ...]:
    """Stocks with their own news: every stock not built from another (GOOG follows GOOGL)."""
    return tuple(s for s in U.STOCKS if not U.INSTRUMENTS[s].constituent_weights and U.INSTRUMENTS[s].idio_vol > 0)


def effective_macro_loadings() -> dict[str, float]:
    """Total d log S / d M per symbol (through the factors and constituents)."""
    out: dict[str, float] = {}
    for sym in U.evaluation_order():
        inst = U.INSTRUMENTS[sym]
        if inst.leverage:
            index, mult = inst.leverage
            out[sym] = mult * out[index]
            continue
        g = sum(w * MACRO_FACTOR_LOADINGS.get(f, 0.0) for f, w in inst.factor_loadings.items())
        g += sum(w * out[j] for j, w in inst.constituent_weights.items())
        out[sym] = g
    return {s: out[s] for s in U.SYMBOLS}
