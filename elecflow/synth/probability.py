"""The true Trump-wins probability: a bounded martingale in an information clock.

Construction (docs/synthetic-day.md, "Probability"). Let ``W`` be a standard Brownian
motion and ``v(t)`` a non-decreasing *information clock* with ``v(T0) = 0``. The latent
vote margin at the end of the night is ``Z_end = Z0 + W(V)`` and Trump wins iff
``Z_end > 0``. The information revealed by time ``t`` is ``Z(t) = Z0 + W(v(t))``, so::

    p(t) = P(Z_end > 0 | F_t) = P(W(V) - W(v(t)) > -Z(t)) = Phi( Z(t) / sqrt(V - v(t)) ).

``p`` is a conditional expectation of the fixed outcome, hence a martingale (Doob), and it
stays in (0, 1) while ``v(t) < V``. Scheduled news is a *jump* of the clock: at news time
``s_j`` the clock jumps by ``J_j`` and ``Z`` by an independent ``N(0, J_j)`` draw (a BM
increment over a clock interval of length ``J_j``); the formula for ``p`` is unchanged,
so ``p`` stays a martingale through the jumps. Starting from ``p0`` needs
``Z0 = sqrt(V) * Phi^{-1}(p0)``.

The clock (``V = 1``): diffusive speed ``c * (eps + (h / (T_R - t + h))**2)`` that rises
hyperbolically toward the resolution time ``T_R`` (2024-11-06 06:00 ET), with ``c`` set so
the diffusive part contributes ``1 - jump_share - terminal_share`` over the full window;
news jumps contribute ``jump_share`` (split by weight); ``terminal_share`` is still
unrevealed at ``T_R`` (the call comes after the window). Increments are integrated in
closed form over each grid step, so the path is an exact discrete-time martingale on any
grid. ``p`` is clipped to ``[1e-12, 1 - 1e-12]`` so it never rounds to 0 or 1 in double
precision (a bias below 1e-12).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri

from elecflow.calendar import NS_PER_SECOND, ny_datetime_to_utc, utc_ns

P_CLIP = 1e-12
TOTAL_VARIANCE = 1.0  # V; the model is scale free in V
FULL_START_NS = utc_ns(ny_datetime_to_utc(dt.datetime(2024, 11, 5, 0, 0)))
RESOLUTION_NS = utc_ns(ny_datetime_to_utc(dt.datetime(2024, 11, 6, 6, 0)))  # T_R = end of the full window


@dataclass(frozen=True)
class NewsEvent:
    """A scheduled information release: the clock jumps by ``weight / sum(weights) * jump_share``."""

    time_et: dt.datetime  # naive New York time
    label: str
    weight: float

    @property
    def time_ns(self) -> int:
        return utc_ns(ny_datetime_to_utc(self.time_et))


def _et(day: int, hh: int, mm: int) -> dt.datetime:
    return dt.datetime(2024, 11, day, hh, mm)


DEFAULT_NEWS: tuple[NewsEvent, ...] = (
    NewsEvent(_et(5, 19, 0), "polls close: GA VA SC IN KY VT", 1.0),
    NewsEvent(_et(5, 19, 30), "polls close: NC OH WV", 0.8),
    NewsEvent(_et(5, 20, 0), "polls close: PA FL MI(most) and 13 more", 1.5),
    NewsEvent(_et(5, 21, 0), "polls close: AZ WI MN NY and more", 1.5),
    NewsEvent(_et(5, 22, 0), "polls close: NV UT MT", 0.6),
    NewsEvent(_et(5, 23, 0), "polls close: CA OR WA ID", 0.6),
    NewsEvent(_et(5, 23, 20), "race-call news (NC)", 1.0),
    NewsEvent(_et(6, 0, 35), "race-call news (GA)", 1.2),
    NewsEvent(_et(6, 1, 0), "polls close: AK", 0.2),
    NewsEvent(_et(6, 1, 25), "race-call news (PA)", 2.0),
    NewsEvent(_et(6, 5, 35), "race-call news (WI)", 1.0),
)


@dataclass(frozen=True)
class ClockSpec:
    """Parameters of the information clock (see the module docstring)."""

    jump_share: float = 0.50
    terminal_share: float = 0.10
    scale_hours: float = 1.0  # h
    floor: float = 0.0005  # eps
    news: tuple[NewsEvent, ...] = DEFAULT_NEWS
    start_ns: int = FULL_START_NS  # T0: v(T0) = 0
    resolution_ns: int = RESOLUTION_NS  # T_R

    @property
    def diffusive_share(self) -> float:
        return 1.0 - self.jump_share - self.terminal_share

    def _antiderivative(self, t_ns: np.ndarray) -> np.ndarray:
        """Integral of eps + (h/(T_R - t + h))^2 dt from T0 (t in hours)."""
        h = self.scale_hours
        t = (np.asarray(t_ns, dtype=np.float64) - self.start_ns) / 3.6e12
        tr = (self.resolution_ns - self.start_ns) / 3.6e12
        return self.floor * t + h * h * (1.0 / (tr - t + h) - 1.0 / (tr + h))

    @property
    def _c(self) -> float:
        """The constant c making the diffusive clock total ``diffusive_share`` at T_R."""
        return self.diffusive_share * TOTAL_VARIANCE / float(self._antiderivative(np.array([self.resolution_ns]))[0])

    def diffusive_variance(self, t_ns: np.ndarray) -> np.ndarray:
        """Diffusive clock v_c(t) (no jumps) at times ``t_ns`` (ns, between T0 and T_R)."""
        return self._c * self._antiderivative(t_ns)

    def diffusive_speed(self, t_ns: np.ndarray) -> np.ndarray:
        """dv_c/dt per second at times ``t_ns``."""
        h = self.scale_hours
        t = (np.asarray(t_ns, dtype=np.float64) - self.start_ns) / 3.6e12
        tr = (self.resolution_ns - self.start_ns) / 3.6e12
        return self._c * (self.floor + (h / (tr - t + h)) ** 2) / 3600.0

    def jump_variances(self) -> np.ndarray:
        w = np.array([n.weight for n in self.news], dtype=np.float64)
        if w.size == 0 or w.sum() == 0:
            return np.zeros(len(self.news))
        return self.jump_share * TOTAL_VARIANCE * w / w.sum()


@dataclass
class ProbabilityPath:
    """The true probability on a time grid and its state (arrays of equal length)."""

    time_ns: np.ndarray  # int64 grid (UTC ns)
    p: np.ndarray  # P(Trump wins | F_t)
    z: np.ndarray  # Z(t), the revealed margin
    probit: np.ndarray  # Z / sqrt(V - v) = Phi^{-1}(p) before clipping
    clock: np.ndarray  # v(t), cumulative information variance incl. jumps
    remaining: np.ndarray  # V - v(t)
    news: list[dict] = field(default_factory=list)  # each jump: time, label, variance, dz, p before/after

    def at(self, t_ns: np.ndarray) -> np.ndarray:
        """p at arbitrary times: the value at the last grid point <= t."""
        idx = np.searchsorted(self.time_ns, np.asarray(t_ns, dtype=np.int64), side="right") - 1
        return self.p[np.clip(idx, 0, self.p.size - 1)]


def clock_on_grid(spec: ClockSpec, grid_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diffusive clock increments per grid step and where the scheduled jumps fall.

    Returns ``(dv_diffusive[n-1], jump_step[m], on_grid[m])`` for the ``m`` scheduled
    events: event ``j`` is applied in the step ending at grid point ``jump_step[j]`` (the
    first grid point at or after its time) when ``on_grid[j]``; events after the grid's
    end or at its first point are dropped.
    """
    grid_ns = np.asarray(grid_ns, dtype=np.int64)
    if grid_ns[0] < spec.start_ns or grid_ns[-1] > spec.resolution_ns:
        raise ValueError("grid must lie within [T0, T_R] of the clock")
    dv = np.diff(spec.diffusive_variance(grid_ns))
    times = np.array([n.time_ns for n in spec.news], dtype=np.int64)
    steps = np.searchsorted(grid_ns, times, side="left")
    on_grid = (times > grid_ns[0]) & (steps < grid_ns.size)
    return dv, steps, on_grid


def simulate_probability(
    spec: ClockSpec,
    grid_ns: np.ndarray,
    p0: float,
    rng_diffusion: np.random.Generator,
    rng_jumps: np.random.Generator,
) -> ProbabilityPath:
    """One path of the probability martingale on ``grid_ns``, starting from ``p0`` at ``T0``.

    The grid must start at the clock's ``T0`` (``p(T0) = p0``). Diffusive increments
    ``N(0, dv_k)`` come from ``rng_diffusion``, jump sizes from ``rng_jumps`` (one draw per
    scheduled event, in schedule order, whether or not it falls on this grid, so a coarser
    or shorter grid sees the same news sizes).
    """
    grid_ns = np.asarray(grid_ns, dtype=np.int64)
    if grid_ns[0] != spec.start_ns:
        raise ValueError("the grid must start at the clock origin T0")
    dv, steps, on_grid = clock_on_grid(spec, grid_ns)
    jump_normals = rng_jumps.standard_normal(len(spec.news))[on_grid]
    jump_step, jump_var = steps[on_grid], spec.jump_variances()[on_grid]
    news = [n for n, keep in zip(spec.news, on_grid) if keep]

    dz = np.sqrt(dv) * rng_diffusion.standard_normal(dv.size)
    dclock = dv.copy()
    jump_dz = np.sqrt(jump_var) * jump_normals
    np.add.at(dz, jump_step - 1, jump_dz)
    np.add.at(dclock, jump_step - 1, jump_var)

    z0 = np.sqrt(TOTAL_VARIANCE) * float(ndtri(p0))
    z = np.concatenate(([z0], z0 + np.cumsum(dz)))
    clock = np.concatenate(([0.0], np.cumsum(dclock)))
    remaining = TOTAL_VARIANCE - clock
    probit = z / np.sqrt(remaining)
    p = np.clip(ndtr(probit), P_CLIP, 1.0 - P_CLIP)

    events = []
    for j, ev in enumerate(news):
        k = int(jump_step[j])
        events.append({
            "time_et": ev.time_et.isoformat(),
            "time_utc_ns": ev.time_ns,
            "grid_time_utc_ns": int(grid_ns[k]),
            "label": ev.label,
            "weight": ev.weight,
            "variance": float(jump_var[j]),
            "dz": float(jump_dz[j]),
            "p_before": float(p[k - 1]),
            "p_after": float(p[k]),
        })
    return ProbabilityPath(grid_ns, p, z, probit, clock, remaining, events)


def second_grid(start_ns: int, end_ns: int, step_s: int = 1) -> np.ndarray:
    """Grid ``start, start + step, ...`` up to and including ``end`` (ns)."""
    step = step_s * NS_PER_SECOND
    n = (end_ns - start_ns) // step
    return start_ns + step * np.arange(n + 1, dtype=np.int64)
