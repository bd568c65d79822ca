"""Option chains priced off a two-lognormal (Trump / Harris) risk-neutral mixture.

Under the pricing measure the terminal price ``S_T`` of an underlying has the density::

    f(s) = q * LN(s; mu_T, sigma_T^2 T) + (1 - q) * LN(s; mu_H, sigma_H^2 T)

with ``q`` the true Trump-wins probability at the snapshot, ``LN(s; mu, v)`` the density of
``exp(N(mu, v))``, state means ``m_s = exp(mu_s + sigma_s^2 T / 2)`` and the forward
``F = S exp((r - d) T)``. State means follow the underlying's election loading ``gamma``
(``d log S / d p``): the Trump state is ``exp(gamma (1 - q))`` and the Harris state
``exp(-gamma q)`` away from today, normalised so the mixture mean is the forward::

    m_T = F e^{gamma (1-q)} / D,   m_H = F e^{-gamma q} / D,   D = q e^{gamma (1-q)} + (1-q) e^{-gamma q}
    =>  q m_T + (1 - q) m_H = F.

Prices are the mixture of two Black-76 prices (European exercise, discount ``e^{-rT}``)::

    C(K) = e^{-rT} [ q Black(m_T, K, sigma_T) + (1 - q) Black(m_H, K, sigma_H) ],

so put-call parity ``C - P = e^{-rT} (F - K)`` holds exactly. The synthetic options are
European by construction (the listed ones are American; see docs/synthetic-day.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from elecflow import universe as U
from elecflow.calendar import NS_PER_SECOND

PX = 10_000  # price units per dollar
YEAR_NS = 365.0 * 86_400 * NS_PER_SECOND  # ACT/365 year fraction
PENNY_EVERYWHERE = frozenset({"SPY", "QQQ", "IWM"})  # penny increments at all premiums
INDEX_LIKE = frozenset({"SPY", "QQQ", "IWM", "IVV", "VOO", "DIA", "TLT"})
THETA_EXCHANGES = np.array([1, 5, 6, 7, 9, 11, 42, 43, 46, 47, 60, 65, 69], dtype=np.int64)  # opaque codes
THETA_CONDITION = 50  # opaque vendor quote condition, the same on every row
ELECTION_WEEK_VOL_PREMIUM = 1.2
STATE_VOL_TRUMP, STATE_VOL_HARRIS = 0.9, 1.1  # multiples of the base vol


# --------------------------------------------------------------------------- pricing


def black76(F, K, T, sigma, df, is_call):
    """Black-76 price of a European option on a forward ``F`` (broadcasting arrays)."""
    F, K, T, sigma, df = (np.asarray(a, dtype=np.float64) for a in (F, K, T, sigma, df))
    sd = sigma * np.sqrt(T)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(F / K) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    call = df * (F * ndtr(d1) - K * ndtr(d2))
    put = df * (K * ndtr(-d2) - F * ndtr(-d1))
    return np.where(is_call, call, put)


def state_means(F, q, gamma):
    """State-conditional means ``(m_T, m_H)`` with ``q m_T + (1 - q) m_H = F``."""
    F, q = np.asarray(F, dtype=np.float64), np.asarray(q, dtype=np.float64)
    up, down = np.exp(gamma * (1.0 - q)), np.exp(-gamma * q)
    d = q * up + (1.0 - q) * down
    return F * up / d, F * down / d


def mixture_price(K, T, df, q, m_T, sigma_T, m_H, sigma_H, is_call):
    """Price under the two-lognormal mixture: the ``q``-mixture of two Black-76 prices."""
    return q * black76(m_T, K, T, sigma_T, df, is_call) + (1.0 - q) * black76(m_H, K, T, sigma_H, df, is_call)


def mixture_density(s, T, q, m_T, sigma_T, m_H, sigma_H):
    """Risk-neutral density of ``S_T`` (the mixture of the two lognormals)."""
    s = np.asarray(s, dtype=np.float64)

    def ln_pdf(m, sig):
        v = sig * sig * T
        mu = np.log(m) - 0.5 * v
        return np.exp(-((np.log(s) - mu) ** 2) / (2 * v)) / (s * np.sqrt(2 * np.pi * v))

    return q * ln_pdf(m_T, sigma_T) + (1.0 - q) * ln_pdf(m_H, sigma_H)


def state_vols(symbol: str) -> tuple[float, float]:
    """Annualised vols ``(sigma_T, sigma_H)`` of the two states of an underlying."""
    base = max(U.annual_vol(symbol), 0.08) * ELECTION_WEEK_VOL_PREMIUM
    return STATE_VOL_TRUMP * base, STATE_VOL_HARRIS * base


# --------------------------------------------------------------------------- listing


def strike_grid(symbol: str, spot: float, strike_range: float, wing_log_range: float = 0.0) -> np.ndarray:
    """Listed strikes (dollars): a dense core within ``spot * (1 -/+ strike_range)`` and
    sparse wings out to ``spot * exp(-/+ wing_log_range)`` when that reaches further.

    Core increments: $0.5 below $50; $1 below $200; above $200, $1 (index-like ETFs) or
    $2.5 (others) within 10 % of spot and $5 beyond. Wing increments grow with the strike
    (the smallest of 0.5, 1, 2.5, 5, 10, 25, 50 that is at least 5 % of it), as listed
    far-out strikes do; wings give a volatile name (DJT, TSLA) strikes where its
    risk-neutral mass is, which a fixed percentage band around spot does not.
    """
    lo, hi = spot * (1.0 - strike_range), spot * (1.0 + strike_range)

    def multiples(inc, a, b):
        return np.arange(np.ceil(a / inc - 1e-9), np.floor(b / inc + 1e-9) + 1) * inc

    if spot < 50:
        k = multiples(0.5, lo, hi)
    elif spot < 200:
        k = multiples(1.0, lo, hi)
    else:
        inner = 1.0 if symbol in INDEX_LIKE else 2.5
        k = np.concatenate((multiples(5.0, lo, hi), multiples(inner, max(lo, spot * 0.9), min(hi, spot * 1.1))))
    wing_lo, wing_hi = spot * np.exp(-wing_log_range), spot * np.exp(wing_log_range)
    k = np.concatenate((k, _wing_strikes(wing_lo, lo), _wing_strikes(hi, wing_hi)))
    k = np.unique(np.round(k, 3))
    return k[k > 0]


_WING_INCREMENTS = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0)


def _wing_strikes(lo: float, hi: float) -> np.ndarray:
    """Strikes in ``(lo, hi)`` spaced by the listed increment for their level (>= 5 % of K)."""
    out = []
    K = lo
    while True:
        inc = next((i for i in _WING_INCREMENTS if i >= 0.05 * K), _WING_INCREMENTS[-1])
        K = (np.floor(K / inc + 1e-9) + 1.0) * inc
        if K >= hi - 1e-9:
            return np.asarray(out, dtype=np.float64)
        out.append(K)


def wing_log_range(symbol: str, T: float, n_sd: float) -> float:
    """Half-width in log-moneyness that holds the chain's risk-neutral mass: the election
    jump ``|gamma|`` plus ``n_sd`` standard deviations of the wider state to expiry."""
    if n_sd <= 0.0:
        return 0.0
    gamma = abs(U.effective_election_loadings()[symbol])
    return gamma + n_sd * max(state_vols(symbol)) * np.sqrt(T)


def listed_strikes(symbol: str, T: float, strike_range: float, strike_sds: float) -> np.ndarray:
    """The strikes listed for ``symbol``'s expiry ``T`` years after the first snapshot."""
    return strike_grid(symbol, U.get(symbol).ref_price, strike_range, wing_log_range(symbol, T, strike_sds))


def option_tick(symbol: str, price: np.ndarray) -> np.ndarray:
    """Quote increment in PX units: a penny, or a nickel at premiums of $3+ outside penny-everywhere names."""
    if symbol in PENNY_EVERYWHERE:
        return np.full(np.shape(price), 100, dtype=np.int64)
    return np.where(np.asarray(price) >= 3.0, 500, 100).astype(np.int64)


# --------------------------------------------------------------------------- chain


@dataclass
class OptionChain:
    """Snapshots of one underlying's chain, rows sorted by strike, right, time."""

    symbol: str
    # rows
    strike_milli: np.ndarray  # int64, thousandths of a dollar
    is_call: np.ndarray  # bool
    time_ns: np.ndarray  # snapshot time, UTC ns
    bid: np.ndarray  # PX units
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    bid_exchange: np.ndarray
    ask_exchange: np.ndarray
    theo: np.ndarray  # mixture price, dollars
    # per snapshot truth
    snap_ns: np.ndarray
    spot: np.ndarray
    forward: np.ndarray
    q: np.ndarray
    T: np.ndarray
    m_trump: np.ndarray
    m_harris: np.ndarray
    sigma_trump: float
    sigma_harris: float
    gamma: float
    rate: float
    dividend_yield: float


def generate_option_chain(
    symbol: str,
    snap_ns: np.ndarray,
    spot: np.ndarray,
    q: np.ndarray,
    rate: float,
    expiry_ns: int,
    strike_range: float,
    rng: np.random.Generator,
    strike_sds: float = 0.0,
    quote_offset_ms: np.ndarray | None = None,
    spot_at: Callable[[np.ndarray], np.ndarray] | None = None,
    q_at: Callable[[np.ndarray], np.ndarray] | None = None,
    end_ns: int | None = None,
    listing_ns: int | None = None,
    identical_states: bool = False,
) -> OptionChain:
    """Quotes of every listed strike of ``symbol`` once per snapshot interval (vectorised).

    Without ``quote_offset_ms`` every contract is quoted at the snapshot instants (an
    interval-snapshot feed). With it, strike ``i`` (its call and put together, so put-call
    parity pairs stay synchronous) is quoted at ``snap + quote_offset_ms[i]``, priced at
    that instant from ``spot_at`` and ``q_at`` (functions of UTC ns): a tick-level feed
    thinned to one quote per contract per interval, whose consumer sees a few contracts
    change at a time. Quotes at or after ``end_ns`` are dropped. ``identical_states``
    gives both states the same mean and vol (no election loading in the options): a
    control on which the state fitter must say "not identified". The truth fields (spot,
    forward, q, state means) are always at the snapshot instants. The listed strikes depend
    on the time to expiry at ``listing_ns`` (the day's open; default the first snapshot), not
    on the generated window.
    """
    inst = U.get(symbol)
    d = inst.dividend_yield
    gamma = U.effective_election_loadings()[symbol]
    sig_T, sig_H = state_vols(symbol)
    if identical_states:  # a control chain: both states one lognormal, the options carry no election
        gamma, sig_T = 0.0, 0.5 * (sig_T + sig_H)
        sig_H = sig_T
    T = (expiry_ns - snap_ns) / YEAR_NS
    F = spot * np.exp((rate - d) * T)
    df = np.exp(-rate * T)
    m_T, m_H = state_means(F, q, gamma)
    t_list = listing_ns if listing_ns is not None else (int(snap_ns[0]) if snap_ns.size else expiry_ns)
    strikes = listed_strikes(symbol, (expiry_ns - t_list) / YEAR_NS, strike_range, strike_sds)
    nk, ns = strikes.size, snap_ns.size

    # quote instants and the market at them, axes (strike, snapshot)
    if quote_offset_ms is None:
        t_q = np.broadcast_to(snap_ns[None, :], (nk, ns))
        T_q, F_q, df_q, q_q, mT_q, mH_q = (a[None, :] for a in (T, F, df, q, m_T, m_H))
    else:
        if spot_at is None or q_at is None:
            raise ValueError("staggered quotes need spot_at and q_at")
        t_q = snap_ns[None, :] + np.asarray(quote_offset_ms, dtype=np.int64)[:, None] * 1_000_000
        T_q = (expiry_ns - t_q) / YEAR_NS
        F_q = spot_at(t_q) * np.exp((rate - d) * T_q)
        df_q = np.exp(-rate * T_q)
        q_q = q_at(t_q)
        mT_q, mH_q = state_means(F_q, q_q, gamma)

    # axes (strike, right, snapshot): C before P, as the rows are sorted
    K = strikes[:, None, None]
    is_call = np.array([True, False])[None, :, None]
    theo = mixture_price(K, T_q[:, None, :], df_q[:, None, :], q_q[:, None, :], mT_q[:, None, :], sig_T,
                         mH_q[:, None, :], sig_H, is_call)
    theo = np.maximum(theo, 0.0)
    sd = 0.5 * (sig_T + sig_H) * np.sqrt(T_q)[:, None, :]
    k_std = np.abs(np.log(K / F_q[:, None, :])) / sd
    a0 = 0.01 if symbol in PENNY_EVERYWHERE else 0.02 + 0.0005 * inst.ref_price / 10.0
    half = np.maximum(0.005, a0 + 0.002 * theo) * (1.0 + 0.1 * np.minimum(k_std, 8.0))
    shape = (nk, 2, ns)
    half = half * np.exp(0.15 * rng.standard_normal(shape))
    tick = option_tick(symbol, theo)
    bid = np.floor((theo - half) * PX / tick) * tick
    ask = np.ceil((theo + half) * PX / tick) * tick
    bid = np.where(bid < tick, 0, bid).astype(np.int64)
    ask = np.maximum(ask, 100).astype(np.int64)
    depth = 10.0 + 190.0 * np.exp(-k_std / 2.0)
    bid_size = np.where(bid > 0, 1 + rng.poisson(np.broadcast_to(depth, shape)), 0).astype(np.int64)
    ask_size = (1 + rng.poisson(np.broadcast_to(depth, shape))).astype(np.int64)
    bid_ex = rng.choice(THETA_EXCHANGES, size=shape)
    ask_ex = rng.choice(THETA_EXCHANGES, size=shape)

    strike_milli = np.rint(strikes * 1000).astype(np.int64)
    time_ns = np.broadcast_to(t_q[:, None, :], shape).ravel()
    keep = time_ns < end_ns if end_ns is not None else slice(None)
    return OptionChain(
        symbol=symbol,
        strike_milli=np.broadcast_to(strike_milli[:, None, None], shape).ravel()[keep],
        is_call=np.broadcast_to(is_call, shape).ravel()[keep],
        time_ns=time_ns[keep],
        bid=bid.ravel()[keep], ask=ask.ravel()[keep], bid_size=bid_size.ravel()[keep],
        ask_size=ask_size.ravel()[keep], bid_exchange=bid_ex.ravel()[keep], ask_exchange=ask_ex.ravel()[keep],
        theo=theo.ravel()[keep],
        snap_ns=snap_ns, spot=spot, forward=F, q=q, T=T, m_trump=m_T, m_harris=m_H,
        sigma_trump=sig_T, sigma_harris=sig_H, gamma=gamma, rate=rate, dividend_yield=d,
    )
