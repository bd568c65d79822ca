"""Equities and ETFs: efficient prices, partially adjusted quotes, signed trades, 1 s NBBO.

Pure numerics: arrays in, arrays / pyarrow Tables out. Prices inside this module are
integers in units of 1e-4 dollars (``PX``), so every printed price has at most 4
decimals and ticks are exact.

Model (docs/synthetic-day.md, "Equities"):

* efficient log prices on the 1 s grid 04:00-20:00 ET: the factor model of
  :mod:`elecflow.universe` driven by the probability increments ``dp`` and Brownian
  shocks whose per-second vol is scaled by session (pre-open 0.35, regular 1, after-hours
  0.5 of the regular-hours vol); with ``etf_baskets="constituents"`` every unlevered ETF
  with constituents among our stocks is instead their basket (weights rescaled to sum to
  one) plus a stationary AR(1) premium (:func:`simulate_basket_premium`);
* quoted-mid target ``m`` = partial adjustment of the efficient log price ``x``:
  ``m_k = m_{k-1} + a (x_k - m_{k-1})`` with ``a = 1 - 2**(-1 / half_life_seconds)``;
* quotes: Poisson arrivals; at a quote in second ``[t_k, t_k+1)`` the mid target is
  ``exp(m_k)``; spread ``s >= 1`` tick; ``bid = round(P/tick - s/2)`` ticks, ``ask = bid + s``:
  never crossed, never locked;
* trades: Poisson arrivals priced against the last quote strictly before them; informed
  with probability ``informed_base + informed_gap * min(1, |x - m| / half-spread)``,
  trading in the direction of ``x - m``; ISO with a higher probability when informed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pyarrow as pa
from scipy.signal import lfilter

from elecflow import universe as U
from elecflow.calendar import ELECTION_DAY, NS_PER_SECOND, Session, session_of, session_window

PX = 10_000  # price units per dollar

# Per-second diffusive vol multiplier by session (of the regular-hours per-second vol).
VOL_SESSION_MULT = {Session.PRE_OPEN: 0.35, Session.REGULAR: 1.0, Session.AFTER_HOURS: 0.5}
# Arrival-rate multipliers by session (of the regular-hours rate).
QUOTE_SESSION_MULT = {Session.PRE_OPEN: 0.06, Session.REGULAR: 1.0, Session.AFTER_HOURS: 0.08}
TRADE_SESSION_MULT = {Session.PRE_OPEN: 0.04, Session.REGULAR: 1.0, Session.AFTER_HOURS: 0.06}
EXTENDED_SPREAD_MULT = 2.5  # quoted spreads outside regular hours
OPEN_BURST, CLOSE_BURST, BURST_DECAY_S = 1.5, 1.0, 900.0  # intraday U shape of arrival rates

# Polygon exchange ids (lit venues) and their weights for quotes and lit prints.
LIT_EXCHANGES = np.array([12, 11, 10, 19, 8, 21, 15, 7, 18, 2, 17, 1, 3, 9, 20], dtype=np.int64)
LIT_WEIGHTS = np.array([18, 14, 10, 10, 9, 8, 5, 4, 4, 3, 3, 3, 3, 3, 3], dtype=np.float64)
LIT_WEIGHTS /= LIT_WEIGHTS.sum()
TRF_EXCHANGE = 4  # FINRA ADF / TRF prints
TRF_IDS = np.array([201, 202, 203], dtype=np.int64)

# Polygon trade condition ids used here.
COND_FORM_T, COND_ISO, COND_ODD_LOT, COND_TTE = 12, 14, 37, 41
CONDITION_BITS = (COND_FORM_T, COND_ISO, COND_ODD_LOT, COND_TTE)

# Trade location codes (trades_truth ``location``).
LOC_TOUCH, LOC_INSIDE, LOC_MID = 0, 1, 2
LOCATION_NAMES = ("touch", "inside", "mid")

# The premium of a basket ETF over its constituents' NAV (etf_baskets="constituents"): log ETF
# minus log NAV, an AR(1) on the 1 s grid. Arbitrage closes a premium within tens of seconds.
# 0.5 bp is three SPY ticks, and its one-second innovations (0.1 bp) are small against a
# second's move (SPY ~0.8 bp): the premium is a transitory deviation that the ETF, not the NAV,
# corrects, so a larger one reads as the NAV leading (docs/synthetic-day.md, "Covered baskets").
PREMIUM_HALF_LIFE_SECONDS = 30.0
PREMIUM_SD = 0.5e-4  # stationary sd of the log premium


@dataclass
class EfficientPaths:
    """Efficient and target log prices of every symbol on the 1 s grid."""

    time_ns: np.ndarray  # (n,) int64
    symbols: tuple[str, ...]  # universe order (U.SYMBOLS)
    log_price: np.ndarray  # (n_sym, n) efficient log price x
    log_target: np.ndarray  # (n_sym, n) quoted-mid target m
    factors: tuple[str, ...]
    factor_log: np.ndarray  # (n_f, n) cumulative factor log paths, 0 at the start
    p: np.ndarray  # (n,) the common driver on the grid: true probability (normal day: macro news level)
    rebalance_index: int  # grid index of the leveraged ETFs' daily reset (16:00 ET)
    session: np.ndarray  # (n,) int8 session of each grid point
    date: dt.date = ELECTION_DAY  # the trading date of the grid (sessions are that date's)
    driver: str = "p"  # what ``p`` holds: "p" (election probability) or "macro" (normal-day news level)
    # etf_baskets="constituents": each covered ETF's log premium over its basket's NAV, (n,)
    basket_premia: dict[str, np.ndarray] = field(default_factory=dict)

    def row(self, symbol: str) -> int:
        return self.symbols.index(symbol)


def adjustment_coefficient(half_life_s: float) -> float:
    """Per-second partial-adjustment weight ``a`` for a half-life in seconds."""
    return 1.0 - 2.0 ** (-1.0 / half_life_s)


def partial_adjustment(x: np.ndarray, half_life_s: np.ndarray) -> np.ndarray:
    """``m_k = m_{k-1} + a (x_k - m_{k-1})``, ``m_0 = x_0``, row-wise (rows = symbols)."""
    x = np.atleast_2d(x)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        a = adjustment_coefficient(float(np.atleast_1d(half_life_s)[i]))
        out[i] = x[i, 0] + lfilter([a], [1.0, -(1.0 - a)], x[i] - x[i, 0])
    return out


def covered_etfs() -> tuple[str, ...]:
    """Unlevered ETFs with constituents among our stocks: the ones ``etf_baskets="constituents"``
    prices as baskets (the leveraged ETFs stay multiples of their index)."""
    return tuple(s for s in U.ETFS if U.INSTRUMENTS[s].constituent_weights and not U.INSTRUMENTS[s].leverage)


def basket_weights(etf: str) -> dict[str, float]:
    """Constituent weights of a covered ETF among our stocks, rescaled to sum to one."""
    weights = U.INSTRUMENTS[etf].constituent_weights
    total = sum(weights.values())
    return {s: w / total for s, w in weights.items()}


def premium_owner(etf: str) -> str:
    """The ETF whose premium ``etf`` carries: the first covered ETF with the same basket.

    IVV and VOO hold SPY's basket and carry SPY's premium, so the three S&P 500 trackers keep
    one efficient price in either mode and their group stays a test of the quote half-lives
    alone; every other covered ETF has a basket, and a premium, of its own.
    """
    weights = dict(U.INSTRUMENTS[etf].constituent_weights)
    return next(s for s in covered_etfs() if dict(U.INSTRUMENTS[s].constituent_weights) == weights)


def simulate_basket_premium(n: int, rng: np.random.Generator) -> np.ndarray:
    """A log premium on ``n`` grid seconds: ``pi_k = phi pi_{k-1} + e_k``, ``phi = 2**(-1/H)``.

    ``H = PREMIUM_HALF_LIFE_SECONDS``; ``e_k`` has sd ``PREMIUM_SD sqrt(1 - phi^2)`` and
    ``pi_0`` sd ``PREMIUM_SD``, so the path is stationary from its first second, with sd
    ``PREMIUM_SD`` in every session (arbitrage keeps ETFs near NAV whatever the session's vol).
    """
    phi = 2.0 ** (-1.0 / PREMIUM_HALF_LIFE_SECONDS)
    shocks = PREMIUM_SD * rng.standard_normal(n)
    shocks[1:] *= np.sqrt(1.0 - phi * phi)
    return lfilter([1.0], [1.0, -phi], shocks)


def basket_mode_loadings(loadings: Mapping[str, float]) -> dict[str, float]:
    """A per-symbol linear exposure (a d log S / d driver loading, or the loading on one shock)
    under ``etf_baskets="constituents"``: a covered ETF's is its basket's weighted mean of its
    constituents', a leveraged ETF's the multiple of its index's (instantaneous, as
    :func:`elecflow.universe.effective_election_loadings`); every other symbol's is unchanged."""
    out = dict(loadings)
    covered = set(covered_etfs())
    for sym in U.evaluation_order():
        inst = U.INSTRUMENTS[sym]
        if sym in covered:
            out[sym] = sum(w * out[j] for j, w in basket_weights(sym).items())
        elif inst.leverage and inst.leverage[0] in covered:
            out[sym] = inst.leverage[1] * out[inst.leverage[0]]
    return out


def basket_mode_annual_vols() -> dict[str, float]:
    """Annualised regular-hours vol of each efficient log price under ``etf_baskets="constituents"``
    (the premium, stationary, adds none): :func:`elecflow.universe.annual_vol` with the baskets'
    shock exposures."""
    exposures = U.shock_exposures()
    vols = {f.name: f.vol for f in U.FACTORS}
    vols.update({f"idio:{s}": U.INSTRUMENTS[s].idio_vol for s in U.STOCKS})
    per_shock = {k: basket_mode_loadings({s: exposures[s].get(k, 0.0) for s in U.SYMBOLS}) for k in vols}
    return {s: float(np.sqrt(sum((per_shock[k][s] * v) ** 2 for k, v in vols.items()))) for s in U.SYMBOLS}


def simulate_efficient_prices(
    time_ns: np.ndarray, p: np.ndarray, rebalance_ns: int, rng: np.random.Generator, *,
    date: dt.date = ELECTION_DAY,
    factor_loadings: dict[str, float] | None = None,
    direct_loadings: dict[str, float] | None = None,
    extra_increments: dict[str, np.ndarray] | None = None,
    driver: str = "p",
    basket_premia: Mapping[str, np.ndarray] | None = None,
) -> EfficientPaths:
    """Efficient log prices of the universe on the 1 s grid ``time_ns`` given ``p`` on it.

    ``rebalance_ns`` is the daily reset of the leveraged ETFs (16:00 ET); before it their
    reference is the grid start (the previous close). ``date`` is the trading date whose
    sessions scale the vol.

    The common driver ``p`` enters factor ``f`` with ``factor_loadings[f]`` and stock ``i``
    directly with ``direct_loadings[i]``; by default these are the universe's election
    loadings (``p`` = the true probability). A normal day passes its macro news level and
    macro loadings instead, and each stock's own news jumps as ``extra_increments[sym]``
    (log increments per grid step, added to that stock's step like its idiosyncratic shock).

    ``basket_premia`` (``etf_baskets="constituents"``) maps covered ETFs to log premium paths
    on the grid: such an ETF is its basket plus the premium, ``x_e = log NAV_e + pi_e`` with
    ``d log NAV_e = sum_j basket_weights(e)_j dx_j`` and ``NAV_e`` at its reference price at the
    grid start; its factor loadings are not used. Other symbols, and ``rng``'s draws, are
    unchanged by it.
    """
    n = time_ns.size
    if basket_premia is not None and not set(basket_premia) <= set(covered_etfs()):
        raise ValueError(f"basket premia for {sorted(set(basket_premia) - set(covered_etfs()))}: only "
                         f"{', '.join(covered_etfs())} are priced as baskets of our stocks")
    sess = session_of(time_ns, date)
    step_mult = np.array([VOL_SESSION_MULT.get(Session(int(s)), 0.0) for s in range(5)])[sess[:-1]]
    dt_years = 1.0 / U.SECONDS_PER_TRADING_YEAR
    dp = np.diff(p)
    f_names = U.FACTOR_NAMES
    shocks = rng.standard_normal((len(f_names) + len(U.STOCKS), n - 1))
    d_f = np.empty((len(f_names), n - 1))
    for i, f in enumerate(U.FACTORS):
        gamma_f = f.election_loading if factor_loadings is None else factor_loadings.get(f.name, 0.0)
        d_f[i] = gamma_f * dp + f.vol * np.sqrt(dt_years) * step_mult * shocks[i]
    f_index = {f: i for i, f in enumerate(f_names)}
    stock_shock = {s: len(f_names) + i for i, s in enumerate(U.STOCKS)}

    dx: dict[str, np.ndarray] = {}
    levels: dict[str, np.ndarray] = {}
    rb = int(np.searchsorted(time_ns, rebalance_ns))
    for sym in U.evaluation_order():
        inst = U.INSTRUMENTS[sym]
        if inst.leverage:
            index, mult = inst.leverage
            s_i = np.exp(levels[index] - levels[index][0])  # index relative to its start
            lev = np.empty(n)
            ref_i = 1.0
            lev[: rb + 1] = 1.0 + mult * (s_i[: rb + 1] / ref_i - 1.0)
            if rb < n - 1:
                ref_i, ref_l = s_i[rb], lev[rb]
                lev[rb + 1:] = ref_l * (1.0 + mult * (s_i[rb + 1:] / ref_i - 1.0))
            levels[sym] = np.log(inst.ref_price) + np.log(lev)
            continue
        if basket_premia is not None and sym in basket_premia:
            premium = basket_premia[sym]
            nav_step = sum(w * dx[j] for j, w in basket_weights(sym).items())
            dx[sym] = nav_step + np.diff(premium)
            levels[sym] = np.log(inst.ref_price) + np.concatenate(([0.0], np.cumsum(nav_step))) + premium
            continue
        d = np.zeros(n - 1)
        for f, w in inst.factor_loadings.items():
            d += w * d_f[f_index[f]]
        for j, w in inst.constituent_weights.items():
            d += w * dx[j]
        gamma_i = inst.election_loading if direct_loadings is None else direct_loadings.get(sym, 0.0)
        if gamma_i:
            d += gamma_i * dp
        if inst.idio_vol:
            d += inst.idio_vol * np.sqrt(dt_years) * step_mult * shocks[stock_shock[sym]]
        if extra_increments is not None and sym in extra_increments:
            d += extra_increments[sym]
        dx[sym] = d
        levels[sym] = np.log(inst.ref_price) + np.concatenate(([0.0], np.cumsum(d)))
    log_price = np.vstack([levels[s] for s in U.SYMBOLS])
    half_lives = np.array([U.INSTRUMENTS[s].half_life for s in U.SYMBOLS])
    log_target = partial_adjustment(log_price, half_lives)
    factor_log = np.hstack([np.zeros((len(f_names), 1)), np.cumsum(d_f, axis=1)])
    return EfficientPaths(time_ns, U.SYMBOLS, log_price, log_target, f_names, factor_log, p, rb, sess, date, driver,
                          dict(basket_premia or {}))


# --------------------------------------------------------------------------- arrivals


def _rate_profile(time_ns: np.ndarray, session: np.ndarray, session_mult: dict,
                  date: dt.date = ELECTION_DAY) -> np.ndarray:
    """Relative arrival rate per grid second (1 = regular-hours base rate) on trading date ``date``."""
    mult = np.array([session_mult.get(Session(int(s)), 0.0) for s in range(5)])[session]
    reg = session == Session.REGULAR
    if reg.any():
        regular = session_window(Session.REGULAR, date)
        t_reg = time_ns[reg]
        since_open = (t_reg - regular.start_ns) / NS_PER_SECOND
        to_close = (regular.end_ns - t_reg) / NS_PER_SECOND
        mult = mult.copy()
        mult[reg] *= 1.0 + OPEN_BURST * np.exp(-since_open / BURST_DECAY_S) + CLOSE_BURST * np.exp(
            -to_close / BURST_DECAY_S)
    return mult


def poisson_times(sec_ns: np.ndarray, rate: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Event times (strictly increasing ns) of a Poisson process, piecewise constant per second.

    Returns ``(times, second_index)`` where ``second_index`` points into ``sec_ns``.
    """
    counts = rng.poisson(rate)
    sec_idx = np.repeat(np.arange(sec_ns.size), counts)
    offsets = rng.integers(0, NS_PER_SECOND, size=sec_idx.size)
    times = sec_ns[sec_idx] + offsets
    order = np.argsort(times, kind="stable")
    times, sec_idx = times[order], sec_idx[order]
    return strictly_increasing(times), sec_idx


def strictly_increasing(t: np.ndarray) -> np.ndarray:
    """Smallest change making a sorted int array strictly increasing (ties pushed by 1 ns)."""
    if t.size < 2:
        return t
    ramp = np.arange(t.size, dtype=np.int64)
    return np.maximum.accumulate(t - ramp) + ramp


# --------------------------------------------------------------------------- per-symbol flow


@dataclass
class FlowParams:
    """Knobs of quote/trade generation (the day's configuration supplies them)."""

    intensity_scale: float
    informed_base: float
    informed_gap: float
    iso_prob_informed: float
    iso_prob_uninformed: float
    tte_given_iso: float = 0.6  # P(condition 41 | ISO)
    tte_given_plain: float = 0.002  # P(condition 41 | not ISO)


@dataclass
class SymbolFlow:
    """Clean quotes and trades of one symbol (before defects), plus trade truth."""

    symbol: str
    # quotes
    q_time: np.ndarray
    q_participant: np.ndarray
    q_bid: np.ndarray  # PX units
    q_ask: np.ndarray
    q_bid_size: np.ndarray
    q_ask_size: np.ndarray
    q_bid_exchange: np.ndarray
    q_ask_exchange: np.ndarray
    q_seq: np.ndarray
    # trades
    t_time: np.ndarray
    t_participant: np.ndarray
    t_trf_time: np.ndarray  # -1 when not a TRF print
    t_price: np.ndarray  # PX units
    t_size: np.ndarray
    t_exchange: np.ndarray
    t_trf_id: np.ndarray  # -1 when not a TRF print
    t_cond_mask: np.ndarray  # bit i <=> condition id i
    t_seq: np.ndarray
    t_id: np.ndarray
    t_side: np.ndarray  # +1 buyer-initiated, -1 seller-initiated
    t_informed: np.ndarray
    t_iso: np.ndarray
    t_location: np.ndarray


def generate_symbol_flow(
    symbol: str,
    paths: EfficientPaths,
    window_ns: tuple[int, int],
    params: FlowParams,
    rng: np.random.Generator,
) -> SymbolFlow:
    """Quotes and trades of one symbol in ``window_ns`` (intersected with the grid)."""
    inst = U.get(symbol)
    row = paths.row(symbol)
    grid = paths.time_ns
    lo = int(np.searchsorted(grid, window_ns[0], side="left"))
    hi = int(np.searchsorted(grid, window_ns[1], side="left"))  # seconds [grid[k], grid[k]+1s) with grid[k] < end
    hi = min(hi, grid.size - 1)  # the last grid point (20:00) starts no second
    secs = np.arange(lo, hi)
    sec_ns = grid[secs]
    sess = paths.session[secs]
    tick = int(round(inst.tick * PX))

    # ---- quotes
    q_rate = inst.quote_rate * params.intensity_scale * _rate_profile(sec_ns, sess, QUOTE_SESSION_MULT, paths.date)
    q_time, q_sec = poisson_times(sec_ns, q_rate, rng)
    nq = q_time.size
    k = secs[q_sec]  # grid index of each quote's second
    q_ext = paths.session[k] != Session.REGULAR
    target = np.exp(paths.log_target[row, k])
    base_spread = inst.spread_ticks * np.where(q_ext, EXTENDED_SPREAD_MULT, 1.0)
    spread = np.maximum(1, np.rint(base_spread * np.exp(0.35 * rng.standard_normal(nq)))).astype(np.int64)
    bid_ticks = np.floor(target * PX / tick - spread / 2.0 + 0.5).astype(np.int64)
    bid_ticks = np.maximum(bid_ticks, 1)
    q_bid = bid_ticks * tick
    q_ask = (bid_ticks + spread) * tick
    lots_mean = np.where(q_ext, np.maximum(1.0, inst.size_lots / 3.0), inst.size_lots)
    q_bid_size = 100 * rng.geometric(1.0 / np.maximum(lots_mean, 1.0))
    q_ask_size = 100 * rng.geometric(1.0 / np.maximum(lots_mean, 1.0))
    q_bid_ex = rng.choice(LIT_EXCHANGES, size=nq, p=LIT_WEIGHTS)
    q_ask_ex = rng.choice(LIT_EXCHANGES, size=nq, p=LIT_WEIGHTS)
    q_participant = q_time - _latency(rng, nq)

    # ---- trades
    t_rate = inst.trade_rate * params.intensity_scale * _rate_profile(sec_ns, sess, TRADE_SESSION_MULT, paths.date)
    t_time, t_sec = poisson_times(sec_ns, t_rate, rng)
    qi = np.searchsorted(q_time, t_time, side="left") - 1  # last quote strictly before
    ok = qi >= 0
    t_time, t_sec, qi = t_time[ok], t_sec[ok], qi[ok]
    nt = t_time.size
    kt = secs[t_sec]
    bid, ask = q_bid[qi], q_ask[qi]
    mid2 = bid + ask  # 2 x mid, PX units
    half = (ask - bid) / 2.0
    gap = paths.log_price[row, kt] - paths.log_target[row, kt]
    half_log = half / (mid2 / 2.0)
    p_inf = params.informed_base + params.informed_gap * np.minimum(1.0, np.abs(gap) / half_log)
    informed = rng.random(nt) < np.minimum(p_inf, 1.0)
    rand_side = np.where(rng.random(nt) < 0.5, 1, -1)
    side = np.where(informed & (gap != 0), np.sign(gap).astype(np.int64), rand_side).astype(np.int8)
    iso = rng.random(nt) < np.where(informed, params.iso_prob_informed, params.iso_prob_uninformed)
    u = rng.random(nt)
    loc = np.where(informed, np.select([u < 0.85, u < 0.95], [LOC_TOUCH, LOC_INSIDE], LOC_MID),
                   np.select([u < 0.70, u < 0.83], [LOC_TOUCH, LOC_INSIDE], LOC_MID)).astype(np.int8)
    loc[iso] = LOC_TOUCH
    frac = rng.uniform(0.2, 0.8, nt)
    inside = np.rint(mid2 / 2.0 + side * frac * half).astype(np.int64)
    price = np.select([loc == LOC_TOUCH, loc == LOC_INSIDE], [np.where(side > 0, ask, bid), inside], mid2 // 2)
    t_ext = paths.session[kt] != Session.REGULAR
    odd_p = np.where(informed, inst.odd_lot_prob * 0.5, inst.odd_lot_prob)
    odd_p = np.where(t_ext, np.minimum(0.9, odd_p * 1.3), odd_p)
    odd_p = np.where(iso, 0.1 * odd_p, odd_p)
    odd = rng.random(nt) < odd_p
    lot_mean = np.where(iso, 4.0, 2.0)
    size = np.where(odd, rng.integers(1, 100, nt), 100 * rng.geometric(1.0 / lot_mean))
    # venue: ISO prints are lit; at-the-touch prints mostly lit; inside/mid prints mostly TRF
    trf = np.where(loc == LOC_TOUCH, rng.random(nt) < 0.25, rng.random(nt) < 0.9) & ~iso
    exchange = np.where(trf, TRF_EXCHANGE, rng.choice(LIT_EXCHANGES, size=nt, p=LIT_WEIGHTS))
    # lit venues cannot print sub-penny: move such prints off-exchange
    subpenny = (price % tick) != 0
    trf |= subpenny & ~iso
    exchange = np.where(trf, TRF_EXCHANGE, exchange)
    trf_id = np.where(trf, rng.choice(TRF_IDS, size=nt), -1)
    t_participant = t_time - _latency(rng, nt)
    trf_time = np.where(trf, t_time - (t_time - t_participant) * 3 // 10, -1)  # participant < trf < sip
    tte = iso & (rng.random(nt) < params.tte_given_iso) | ~iso & (rng.random(nt) < params.tte_given_plain)
    mask = ((np.int64(1) << COND_FORM_T) * t_ext + (np.int64(1) << COND_ISO) * iso
            + (np.int64(1) << COND_ODD_LOT) * (size < 100) + (np.int64(1) << COND_TTE) * tte).astype(np.int64)

    # ---- one sequence-number space per ticker, shared by quotes and trades, gaps of 4+
    both = np.concatenate((q_time, t_time))
    order = np.argsort(both, kind="stable")
    seq_sorted = 1000 + np.cumsum(4 * rng.integers(1, 4, both.size))
    seq = np.empty(both.size, dtype=np.int64)
    seq[order] = seq_sorted
    return SymbolFlow(
        symbol,
        q_time, q_participant, q_bid, q_ask, q_bid_size, q_ask_size, q_bid_ex, q_ask_ex, seq[:nq],
        t_time, t_participant, trf_time, price.astype(np.int64), size.astype(np.int64), exchange.astype(np.int64),
        trf_id.astype(np.int64), mask, seq[nq:], np.arange(1, nt + 1, dtype=np.int64),
        side, informed, iso, loc,
    )


def _latency(rng: np.random.Generator, n: int) -> np.ndarray:
    """Participant -> SIP latency in ns: 20 us + exponential(mean 300 us)."""
    return 20_000 + rng.exponential(300_000, n).astype(np.int64)


# --------------------------------------------------------------------------- 1 s NBBO


def nbbo_1s(symbols: list[str], times: list[np.ndarray], bids: list[np.ndarray], asks: list[np.ndarray]) -> pa.Table:
    """1 s downsampled NBBO: the last quote in ``[T - 1 s, T)`` labelled ``T``.

    One row per symbol and second that had a quote, sorted by timestamp then symbol.
    Inputs are per-symbol clean quotes sorted by time (prices in PX units).
    """
    out_sym, out_t, out_b, out_a = [], [], [], []
    for i, (t, b, a) in enumerate(zip(times, bids, asks)):
        if t.size == 0:
            continue
        sec = t // NS_PER_SECOND
        last = np.flatnonzero(np.diff(sec, append=sec[-1] + 1) != 0)
        out_sym.append(np.full(last.size, i, dtype=np.int32))
        out_t.append((sec[last] + 1) * NS_PER_SECOND)
        out_b.append(b[last])
        out_a.append(a[last])
    if not out_t:
        sym_idx = np.zeros(0, np.int32)
        t_all = np.zeros(0, np.int64)
        b_all = a_all = np.zeros(0, np.int64)
    else:
        sym_idx, t_all = np.concatenate(out_sym), np.concatenate(out_t)
        b_all, a_all = np.concatenate(out_b), np.concatenate(out_a)
    names = np.asarray(symbols, dtype=object)
    rank = np.argsort(np.argsort(names.astype(str)))  # symbol order within a timestamp
    order = np.lexsort((rank[sym_idx], t_all))
    return pa.table({
        "symbol": pa.array(names[sym_idx][order], pa.string()),
        "timestamp": pa.array(t_all[order], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "bid_price": pa.array(b_all[order] / PX, pa.float64()),
        "ask_price": pa.array(a_all[order] / PX, pa.float64()),
    })
