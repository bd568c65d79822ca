"""Kalshi PRES-2024-DJT and PRES-2024-KH fills around the true probability.

* Arrivals: a Poisson process, piecewise constant per second, with intensity
  ``A * (base + clock_speed(t) / mean_speed + sum_j w_j * burst * exp(-(t - s_j) / decay))``:
  it follows the information clock (rising into the night) and bursts after each news
  event; ``A`` is set so the expected count over the full 30 h window is
  ``kalshi_expected_trades``. Each fill is DJT with probability 0.6, else KH.
* Quotes: DJT mid ``clip(round(100 p), 2, 98)`` cents; KH mid
  ``clip(round(100 (1 - p - other)), 2, 98)``; half-spread 1 cent. A taker buying YES pays
  the ask (mid + 1), a taker selling YES (buying NO) hits the bid (mid - 1), so prices are
  in 1..99 and bounce around the mid; DJT + KH need not sum to 100.
* Taker side: with probability ``informed_share`` the taker trades the sign of the next
  minute's change of ``p`` (YES on DJT if ``p`` rises, YES on KH if it falls); otherwise a
  fair coin.
* Size: ``max(1, round(exp(N(3.0, 1.5))))`` contracts, capped at 50 000.
* Times have microsecond resolution and are strictly increasing per contract.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from elecflow.calendar import NS_PER_SECOND
from elecflow.synth.probability import ClockSpec, ProbabilityPath

CONTRACTS = ("PRES-2024-DJT", "PRES-2024-KH")
DJT_SHARE = 0.6
BASE_RATE, BURST, BURST_DECAY_S = 1.0, 8.0, 600.0
INFORMED_HORIZON_S = 60
SIZE_LOG_MEAN, SIZE_LOG_SD, SIZE_CAP = 3.0, 1.5, 50_000


@dataclass
class KalshiFills:
    """Clean fills sorted by time (ties impossible within a contract)."""

    time_ns: np.ndarray  # UTC ns, multiples of 1 000 (microseconds)
    contract: np.ndarray  # 0 = DJT, 1 = KH
    price: np.ndarray  # yes price, cents 1..99
    count: np.ndarray  # contracts
    taker_yes: np.ndarray  # bool
    informed: np.ndarray  # bool
    true_p: np.ndarray  # p at the fill (last grid point <= t)
    mid: np.ndarray  # quoted mid in cents at the fill
    trade_id: np.ndarray  # object array of UUID strings


def intensity(spec: ClockSpec, grid_ns: np.ndarray, expected_total: float) -> np.ndarray:
    """Expected fills per second of ``grid_ns`` (the full window's 1 s grid, both contracts)."""
    speed = spec.diffusive_speed(grid_ns)
    shape = BASE_RATE + speed / speed.mean()
    w = np.array([n.weight for n in spec.news], dtype=np.float64)
    for ev, wj in zip(spec.news, w / max(w.sum(), 1e-300)):
        dt_s = (grid_ns - ev.time_ns) / NS_PER_SECOND
        after = dt_s >= 0
        shape[after] += wj * len(spec.news) * BURST * np.exp(-dt_s[after] / BURST_DECAY_S)
    return shape * (expected_total / shape.sum())


def generate_kalshi(
    prob: ProbabilityPath,
    spec: ClockSpec,
    window_ns: tuple[int, int],
    expected_total: float,
    informed_share: float,
    other_outcomes: float,
    rng: np.random.Generator,
) -> KalshiFills:
    """Fills of both contracts in ``window_ns``; ``prob`` is the full-window 1 s path."""
    grid = prob.time_ns
    rate = intensity(spec, grid, expected_total)
    secs = np.flatnonzero((grid >= window_ns[0]) & (grid < window_ns[1]))
    counts = rng.poisson(rate[secs])
    sec = np.repeat(secs, counts)
    n = sec.size
    t = grid[sec] + rng.integers(0, 1_000_000, n) * 1_000  # microsecond resolution
    contract = (rng.random(n) >= DJT_SHARE).astype(np.int8)
    order = np.lexsort((t, contract))  # strictly increasing per contract
    t, contract, sec = t[order], contract[order], sec[order]
    for c in (0, 1):
        sel = contract == c
        t[sel] = _strict_us(t[sel])
    order = np.lexsort((contract, t))
    t, contract, sec = t[order], contract[order], sec[order]

    p = prob.p[sec]
    ahead = prob.p[np.minimum(sec + INFORMED_HORIZON_S, grid.size - 1)]
    fair = np.where(contract == 0, 100.0 * p, 100.0 * (1.0 - p - other_outcomes))
    mid = np.clip(np.rint(fair), 2, 98).astype(np.int64)
    informed = rng.random(n) < informed_share
    move = np.sign(ahead - p) * np.where(contract == 0, 1, -1)
    coin = rng.random(n) < 0.5
    taker_yes = np.where(informed & (move != 0), move > 0, coin)
    price = mid + np.where(taker_yes, 1, -1)
    count = np.minimum(SIZE_CAP, np.maximum(1, np.rint(np.exp(rng.normal(SIZE_LOG_MEAN, SIZE_LOG_SD, n))))).astype(
        np.int64)
    ids = uuids(rng, n)
    return KalshiFills(t, contract, price, count, taker_yes, informed, p, mid, ids)


def _strict_us(t: np.ndarray) -> np.ndarray:
    """Sorted microsecond-multiple times made strictly increasing (ties pushed 1 us)."""
    if t.size < 2:
        return t
    us = t // 1_000
    ramp = np.arange(us.size, dtype=np.int64)
    return (np.maximum.accumulate(us - ramp) + ramp) * 1_000


def uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` version-4 UUID strings from the seeded generator."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return np.array([str(uuid.UUID(bytes=row.tobytes())) for row in raw], dtype=object)
