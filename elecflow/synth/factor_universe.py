"""The broad factor universe: a few hundred synthetic stocks with Fama-French structure.

Pure numerics, no I/O (docs/factors.md, "The synthetic universe"). The writer puts the
universe in the vendors' own formats next to the day's files: a 1-second NBBO file
(``symbol, timestamp, bid_price, ask_price``) and the factor portfolio weights as JSON
(factor -> ticker -> weight, the format of the public project the vendor notes describe).

**Latent factors.** The five Fama-French factors ``F = (MKT-RF, SMB, HML, RMW, CMA)`` are
tied to the day's existing factor paths ``G`` (the 12 factors of :mod:`elecflow.universe`,
which drive the 40 instruments) plus four shocks of their own ``u``::

    dF_k = sum_g A_kg dG_g + own_vol_k s(t) dW_k          (FF_DESIGN)

so the 40 instruments -- whose files do not change -- have a known exposure to the FF
factors: market through ``MKT``, size through ``SMALLCAP``, value through financials and
energy against tech, profitability and investment partly through tech, semis, utilities and
energy, and partly through shocks no instrument of the 40 loads on. On Election Day ``G``
carries the election jumps (``MKT`` loads 0.05 on p), on a normal day the macro news.

**Stocks.** Characteristics are drawn once per seed (the same universe every day), each
independently: market cap (lognormal, median $15 bn), book-to-market (lognormal, median
0.35), operating profitability (normal 0.25, sd 0.15) and asset growth (normal 0.07, sd
0.10). Independent draws keep the sorted portfolios close to pure; correlated
characteristics would mix the factors in every portfolio. Loadings start from the
standardised characteristics (``b_SMB = -z_size``, ``b_HML = z_bm``, ``b_RMW = z_op``,
``b_CMA = -z_inv``, ``b_MKT = 1 + 0.25 e``, each style loading plus ``0.2 e`` noise) and are then
mapped by ``B <- B E^{-1}`` with ``E = W B`` the exposure of the vendor's portfolios: after it,
**each factor portfolio has exactly unit exposure to its own latent factor and none to the
others** (``W B = I``). A latent factor is therefore the systematic return of its portfolio,
and the only gap between the portfolio and the truth is the portfolio's idiosyncratic noise
``W e`` and the quotes' microstructure. Log returns::

    dx_i = sum_k B_ik dF_k + idio_vol_i s(t) dW_i

**Factor portfolios** (Fama and French 2015, on this universe): size breakpoint at the
median market cap, characteristic breakpoints at the 30th and 70th percentiles, six
value-weighted portfolios per characteristic; ``HML = (SH + BH)/2 - (SL + BL)/2``, ``RMW``
and ``CMA`` likewise (robust minus weak, conservative minus aggressive), ``SMB`` the average
of the three sorts' small-minus-big, ``MKT`` the value-weighted market (weights sum to 1; the
long-short weights sum to 0 exactly).

**Quotes.** The quoted mid follows the efficient price with a short partial adjustment
(half-lives ~0.3 s: liquid names whose quotes catch up within the second). The 1 s NBBO row
at ``T`` exists when the stock quoted in ``[T - 1 s, T)`` (probability
``1 - exp(-rate)``, the rate shaped by session and the open/close U like the 40's) and
holds a bid and ask around ``exp(m)`` at the second's start, as the 40's 1 s rows do:
the return between rows labelled ``T - 1 s`` and ``T`` measures the efficient move over the
grid step ending at ``T - 1 s``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.signal import lfilter

from elecflow import universe as U
from elecflow.calendar import NS_PER_SECOND, Session
from elecflow.factors.weights import FF_FACTORS  # one definition: the vendor format's factor names
from elecflow.synth.rng import stream
from elecflow.synth.equities import (
    EXTENDED_SPREAD_MULT,
    QUOTE_SESSION_MULT,
    VOL_SESSION_MULT,
    EfficientPaths,
    _rate_profile,
    adjustment_coefficient,
)

CHARACTERISTICS: tuple[str, ...] = ("market_cap", "book_to_market", "profitability", "investment")

# dF_k = sum_g A_kg dG_g + own_vol_k s(t) dW_k. Annualised vols of the result (regular hours,
# diffusive): MKT-RF 0.13, SMB 0.12, HML 0.12, RMW 0.12, CMA 0.12.
FF_DESIGN: dict[str, tuple[dict[str, float], float]] = {
    "MKT-RF": ({"MKT": 1.0}, 0.0),
    "SMB": ({"SMALLCAP": 1.0, "TECH": -0.3}, 0.059),
    "HML": ({"FIN": 0.5, "ENERGY": 0.3, "TECH": -0.3}, 0.094),
    "RMW": ({"TECH": 0.3, "SEMI": -0.2}, 0.109),
    "CMA": ({"UTIL": 0.3, "ENERGY": 0.2, "SEMI": -0.2}, 0.099),
}

# Cross-sectional design of the stocks (see the module docstring).
MEDIAN_MARKET_CAP = 15e9
LOG_CAP_SD = 1.0
MEDIAN_BOOK_TO_MARKET, LOG_BM_SD = 0.35, 0.6
PROFITABILITY_MEAN, PROFITABILITY_SD = 0.25, 0.15
INVESTMENT_MEAN, INVESTMENT_SD = 0.07, 0.10
MARKET_LOADING_SD = 0.25
LOADING_NOISE_SD = 0.2
IDIO_VOL_MEDIAN = 0.16  # annualised; smaller stocks higher (exp(-0.2 z_size))
HALF_LIFE_MEDIAN = 0.3  # seconds
PRICE_MEDIAN, LOG_PRICE_SD = 150.0, 0.7
QUOTE_RATE_MEDIAN = 8.0  # regular-hours quotes per second; bigger stocks more
TICK = 0.01
SIZE_BREAKPOINT = 0.5  # median market cap
CHAR_BREAKPOINTS = (0.3, 0.7)


def ticker(index: int) -> str:
    """Synthetic ticker of universe stock ``index``: ``Z`` + three letters (ZAAA, ZAAB, ...).

    No instrument of the seed universe starts with Z, so the names cannot collide.
    """
    if not 0 <= index < 26 ** 3:
        raise ValueError(f"universe index {index} out of range (at most {26 ** 3} stocks)")
    a, rest = divmod(index, 26 * 26)
    b, c = divmod(rest, 26)
    return "Z" + chr(65 + a) + chr(65 + b) + chr(65 + c)


@dataclass
class UniverseDesign:
    """The stocks of the universe and the vendor's factor portfolios (same every day)."""

    tickers: tuple[str, ...]
    market_cap: np.ndarray  # dollars
    book_to_market: np.ndarray
    profitability: np.ndarray
    investment: np.ndarray
    groups: dict[str, np.ndarray]  # size S/B, bm L/M/H, op W/M/R, inv C/M/A (object arrays)
    weights: np.ndarray  # (5, N) factor portfolio weights, rows in FF_FACTORS order
    raw_exposure: np.ndarray  # (5, 5) W B of the loadings before the B E^{-1} map
    loadings: np.ndarray  # (N, 5): W @ loadings = I
    idio_vol: np.ndarray  # annualised
    half_life: np.ndarray  # seconds
    ref_price: np.ndarray  # dollars, start of every day
    quote_rate: np.ndarray  # regular-hours quotes per second
    spread_ticks: np.ndarray  # regular-hours quoted spread, ticks

    @property
    def size(self) -> int:
        return len(self.tickers)

    def weights_json(self) -> dict[str, dict[str, float]]:
        """The vendor format: factor -> ticker -> weight (zero weights left out)."""
        out = {}
        for k, name in enumerate(FF_FACTORS):
            row = self.weights[k]
            out[name] = {self.tickers[i]: float(row[i]) for i in np.flatnonzero(row != 0.0)}
        return out


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


def fama_french_weights(market_cap: np.ndarray, book_to_market: np.ndarray, profitability: np.ndarray,
                        investment: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fama-French (2015) 2x3 factor portfolio weights on one cross-section.

    Returns ``(W, groups)``: ``W`` is (5, N) in :data:`FF_FACTORS` order (``MKT-RF`` the
    value-weighted market, weights summing to 1; the others long-short, summing to 0) and
    ``groups`` the bucket labels per stock.
    """
    cap = np.asarray(market_cap, dtype=float)
    n = cap.size
    if n < 12:
        raise ValueError(f"a 2x3 sort needs at least 12 stocks, got {n}")
    big = cap > np.quantile(cap, SIZE_BREAKPOINT)
    groups = {"size": np.where(big, "B", "S").astype(object)}
    W = np.zeros((5, n))
    W[0] = cap / cap.sum()

    def vw(mask: np.ndarray) -> np.ndarray:
        w = np.where(mask, cap, 0.0)
        total = w.sum()
        if total <= 0:
            raise ValueError("an empty 2x3 portfolio: too few stocks for the sort")
        return w / total

    smb = []
    # (characteristic, label of low/mid/high, sign: +1 if the long leg is the high group)
    sorts = (("bm", book_to_market, ("L", "M", "H"), +1), ("op", profitability, ("W", "M", "R"), +1),
             ("inv", investment, ("C", "M", "A"), -1))
    for k, (name, values, labels, sign) in enumerate(sorts):
        values = np.asarray(values, dtype=float)
        lo, hi = np.quantile(values, CHAR_BREAKPOINTS)
        low, high = values <= lo, values > hi
        mid = ~low & ~high
        groups[name] = np.select([low, high], [labels[0], labels[2]], labels[1]).astype(object)
        port = {(s, c): vw(sm & cm) for s, sm in (("S", ~big), ("B", big))
                for c, cm in (("L", low), ("M", mid), ("H", high))}
        long_leg, short_leg = ("H", "L") if sign > 0 else ("L", "H")
        W[2 + k] = (0.5 * (port["S", long_leg] + port["B", long_leg])
                    - 0.5 * (port["S", short_leg] + port["B", short_leg]))
        smb.append((port["S", "L"] + port["S", "M"] + port["S", "H"]) / 3.0
                   - (port["B", "L"] + port["B", "M"] + port["B", "H"]) / 3.0)
    W[1] = np.mean(smb, axis=0)
    return W, groups


def design_universe(n: int, rng: np.random.Generator) -> UniverseDesign:
    """Draw the ``n`` stocks, their characteristics, loadings and quoting, and the weights."""
    if n < 12:
        raise ValueError(f"the factor universe needs at least 12 stocks, got {n}")
    # fixed draw order: characteristics, loading noise, idio, half-lives, prices, rates, spreads
    z = rng.standard_normal((n, 4))
    cap = MEDIAN_MARKET_CAP * np.exp(LOG_CAP_SD * z[:, 0])
    bm = MEDIAN_BOOK_TO_MARKET * np.exp(LOG_BM_SD * z[:, 1])
    op = PROFITABILITY_MEAN + PROFITABILITY_SD * z[:, 2]
    inv = INVESTMENT_MEAN + INVESTMENT_SD * z[:, 3]
    z_size, z_bm, z_op, z_inv = (_zscore(v) for v in (np.log(cap), np.log(bm), op, inv))
    noise = rng.standard_normal((n, 5))
    B = np.column_stack([1.0 + MARKET_LOADING_SD * noise[:, 0], -z_size + LOADING_NOISE_SD * noise[:, 1],
                         z_bm + LOADING_NOISE_SD * noise[:, 2], z_op + LOADING_NOISE_SD * noise[:, 3],
                         -z_inv + LOADING_NOISE_SD * noise[:, 4]])
    W, groups = fama_french_weights(cap, bm, op, inv)
    raw = W @ B
    loadings = B @ np.linalg.inv(raw)  # W @ loadings = I: each portfolio is pure and unit
    idio = IDIO_VOL_MEDIAN * np.exp(-0.2 * z_size + 0.2 * rng.standard_normal(n))
    half_life = np.clip(HALF_LIFE_MEDIAN * np.exp(0.5 * rng.standard_normal(n)), 0.05, 5.0)
    price = np.round(np.clip(PRICE_MEDIAN * np.exp(LOG_PRICE_SD * rng.standard_normal(n)), 3.0, 1500.0), 2)
    rate = np.clip(QUOTE_RATE_MEDIAN * np.exp(0.5 * z_size + 0.2 * rng.standard_normal(n)), 0.3, 40.0)
    spread = np.maximum(1, np.rint(np.exp(0.5 - 0.4 * z_size + 0.3 * rng.standard_normal(n)))).astype(np.int64)
    return UniverseDesign(tuple(ticker(i) for i in range(n)), cap, bm, op, inv, groups, W, raw, loadings, idio,
                          half_life, price, rate, spread)


# --------------------------------------------------------------------------- design truths


def factor_map() -> tuple[np.ndarray, np.ndarray]:
    """``(A, own_vol)``: dF = A dG + own_vol s dW, A of shape (5, 12) in the universe's factor order."""
    g_index = {f: j for j, f in enumerate(U.FACTOR_NAMES)}
    A = np.zeros((len(FF_FACTORS), len(U.FACTOR_NAMES)))
    own = np.zeros(len(FF_FACTORS))
    for k, name in enumerate(FF_FACTORS):
        combo, vol = FF_DESIGN[name]
        for g, w in combo.items():
            A[k, g_index[g]] = w
        own[k] = vol
    return A, own


def latent_covariance() -> np.ndarray:
    """Annualised covariance of the latent FF factors (diffusive part, regular hours)."""
    A, own = factor_map()
    sigma_g = np.diag([f.vol ** 2 for f in U.FACTORS])
    return A @ sigma_g @ A.T + np.diag(own ** 2)


def instrument_betas() -> dict[str, np.ndarray]:
    """Population betas of each of the 40 instruments on the latent FF factors.

    ``beta_i = V_F^{-1} Cov(F, dx_i)`` with ``Cov(F, dx_i) = A Sigma_G e_i`` (``e_i`` the
    instrument's exposure to the 12 factors, :func:`elecflow.universe.shock_exposures`):
    the regression coefficients of the instrument's diffusive return on the five factors.
    The part of ``dx_i`` they do not explain (its tech, semis, rates... exposure outside the
    FF span, and its own noise) is idiosyncratic with respect to the FF model. Leveraged
    ETFs: instantaneous exposures at the rebalance point (multiple x index).
    """
    A, _ = factor_map()
    sigma_g = np.diag([f.vol ** 2 for f in U.FACTORS])
    v_inv = np.linalg.inv(latent_covariance())
    exposures = U.shock_exposures()
    out = {}
    for sym in U.SYMBOLS:
        e = np.array([exposures[sym].get(f, 0.0) for f in U.FACTOR_NAMES])
        out[sym] = v_inv @ (A @ sigma_g @ e)
    return out


def instrument_variances() -> dict[str, dict[str, float]]:
    """Annualised diffusive variance of each instrument split into FF-systematic and the rest."""
    betas = instrument_betas()
    v = latent_covariance()
    out = {}
    for sym in U.SYMBOLS:
        total = U.annual_vol(sym) ** 2
        systematic = float(betas[sym] @ v @ betas[sym])
        out[sym] = {"total": total, "systematic": systematic, "idiosyncratic": total - systematic}
    return out


def portfolio_betas(design: UniverseDesign) -> dict[str, np.ndarray]:
    """Population betas of the 40 on the vendor's factor *portfolios* (the estimator's target).

    A portfolio is its latent factor plus the weighted idiosyncratic noise of its stocks,
    ``P = F + W e``, so ``beta_P = Var(P)^{-1} V_F beta_F`` with ``Var(P) = V_F + W D W'``
    (``D`` the stocks' idiosyncratic variances): slightly attenuated latent betas.
    """
    v_f = latent_covariance()
    v_p = v_f + design.weights @ np.diag(design.idio_vol ** 2) @ design.weights.T
    m = np.linalg.solve(v_p, v_f)
    return {sym: m @ b for sym, b in instrument_betas().items()}


# --------------------------------------------------------------------------- one day


@dataclass
class UniverseDay:
    """One day of the universe: its 1 s NBBO rows (window) and the truth (full grid)."""

    design: UniverseDesign
    nbbo: pa.Table  # symbol, timestamp, bid_price, ask_price; sorted by timestamp, then symbol
    time_ns: np.ndarray  # (n,) the 1 s grid 04:00-20:00 ET
    factor_returns: np.ndarray  # (5, n - 1) latent dF per grid step (MKT-RF net of rf dt)
    portfolio_returns: np.ndarray  # (5, n - 1) the weights applied to the efficient simple returns


def simulate_universe_day(design: UniverseDesign, paths: EfficientPaths, window_ns: tuple[int, int],
                          risk_free_rate: float, rng_factors: np.random.Generator,
                          name_rng, chunk: int = 64) -> UniverseDay:
    """The universe on the day of ``paths`` (the 40's efficient paths, whose factor paths drive it).

    Simulated on the full 1 s grid of ``paths`` (so a window sees the same truth as the full
    day); 1 s NBBO rows are kept for seconds starting in ``window_ns``. ``name_rng(i)`` is
    stock ``i``'s generator. Stocks are processed ``chunk`` at a time to bound memory.
    """
    t = paths.time_ns
    n = t.size
    g_index = {f: j for j, f in enumerate(paths.factors)}
    dG = np.diff(paths.factor_log[[g_index[f] for f in U.FACTOR_NAMES]], axis=1)  # (12, n-1)
    step_mult = np.array([VOL_SESSION_MULT.get(Session(int(s)), 0.0) for s in range(5)])[paths.session[:-1]]
    sqrt_dt = np.sqrt(1.0 / U.SECONDS_PER_TRADING_YEAR)
    A, own = factor_map()
    dF = A @ dG + own[:, None] * sqrt_dt * step_mult * rng_factors.standard_normal((len(FF_FACTORS), n - 1))
    rf_step = risk_free_rate * np.diff(t) / NS_PER_SECOND / (365.0 * 86_400.0)  # ACT/365, per grid step

    # seconds whose quotes are kept: [grid[k], grid[k] + 1 s) with grid[k] in the window
    lo = int(np.searchsorted(t, window_ns[0], side="left"))
    hi = min(int(np.searchsorted(t, window_ns[1], side="left")), n - 1)
    secs = np.arange(lo, max(lo, hi))
    profile = _rate_profile(t[secs], paths.session[secs], QUOTE_SESSION_MULT, paths.date)
    extended = paths.session[secs] != Session.REGULAR

    N = design.size
    present = np.zeros((N, secs.size), dtype=bool)
    bid_c = np.zeros((N, secs.size), dtype=np.int32)  # cents
    ask_c = np.zeros((N, secs.size), dtype=np.int32)
    portfolio = np.zeros((len(FF_FACTORS), n - 1))
    tick_c = int(round(TICK * 100))
    for start in range(0, N, chunk):
        idx = np.arange(start, min(N, start + chunk))
        shocks = np.vstack([name_rng(int(i)).standard_normal(n - 1) for i in idx])
        dx = design.loadings[idx] @ dF + design.idio_vol[idx, None] * sqrt_dt * step_mult * shocks
        x = np.log(design.ref_price[idx])[:, None] + np.hstack([np.zeros((idx.size, 1)), np.cumsum(dx, axis=1)])
        portfolio += design.weights[:, idx] @ np.expm1(dx)
        m = np.empty_like(x)
        for r, i in enumerate(idx):
            a = adjustment_coefficient(float(design.half_life[i]))
            m[r] = x[r, 0] + lfilter([a], [1.0, -(1.0 - a)], x[r] - x[r, 0])
        if secs.size == 0:
            continue
        # presence of a quote in each second, then the last quote's prices (at the target m(k))
        quote_rng = [name_rng(int(i), 1) for i in idx]
        for r, i in enumerate(idx):
            u = quote_rng[r].random(secs.size)
            present[i] = u < -np.expm1(-design.quote_rate[i] * profile)
            spread = np.where(extended, np.rint(design.spread_ticks[i] * EXTENDED_SPREAD_MULT),
                              design.spread_ticks[i]).astype(np.int64)
            target_c = np.exp(m[r, secs]) * 100.0 / tick_c
            b = np.maximum(np.floor(target_c - spread / 2.0 + 0.5).astype(np.int64), 1)
            bid_c[i] = b * tick_c
            ask_c[i] = (b + spread) * tick_c
    portfolio[0] -= rf_step  # MKT-RF: excess of the market's return over the risk-free rate
    dF[0] -= rf_step

    # rows in time-major order: timestamp, then ticker (tickers are generated in sorted order)
    k_idx, i_idx = np.nonzero(present.T)
    label = t[secs[k_idx]] + NS_PER_SECOND  # right end of the second
    names = np.asarray(design.tickers, dtype=object)
    nbbo = pa.table({
        "symbol": pa.DictionaryArray.from_arrays(pa.array(i_idx.astype(np.int32)), pa.array(names.tolist()))
                    .cast(pa.string()),
        "timestamp": pa.array(label.astype(np.int64), pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "bid_price": pa.array(bid_c[i_idx, k_idx] / 100.0, pa.float64()),
        "ask_price": pa.array(ask_c[i_idx, k_idx] / 100.0, pa.float64()),
    })
    return UniverseDay(design, nbbo, t, dF, portfolio)


def factor_universe_day(seed: int, day: dt.date | None, size: int, risk_free_rate: float, paths: EfficientPaths,
                        window_ns: tuple[int, int]) -> UniverseDay:
    """The universe of ``seed`` on the day of ``paths``, from its own keyed streams.

    The design (stocks, weights) is keyed by the seed only, so every day shares it; the
    day's shocks are keyed by (seed, ``day``) on a normal day and by the seed on Election
    Day (``day=None``), like every other component (:mod:`elecflow.synth.rng`).
    """
    design = design_universe(size, stream(seed, "factor_universe_design"))
    return simulate_universe_day(design, paths, window_ns, risk_free_rate,
                                 stream(seed, "factor_universe_factors", day=day),
                                 lambda i, sub=0: stream(seed, "factor_universe_names", i, sub, day=day))


# --------------------------------------------------------------------------- truth tables


_UTC = pa.timestamp("ns", tz="UTC")
_LOADING_COLUMNS = ("mkt_rf", "smb", "hml", "rmw", "cma")


def universe_table(design: UniverseDesign) -> pa.Table:
    """``ground_truth/ff_universe.parquet``: one row per stock (characteristics, groups,
    loadings on the latent factors, the vendor weights, quoting design)."""
    cols = {"ticker": pa.array(list(design.tickers), pa.string()),
            "market_cap": design.market_cap, "book_to_market": design.book_to_market,
            "profitability": design.profitability, "investment": design.investment}
    for name in ("size", "bm", "op", "inv"):
        cols[f"{name}_group"] = pa.array(design.groups[name].tolist(), pa.string())
    for k, c in enumerate(_LOADING_COLUMNS):
        cols[f"loading_{c}"] = design.loadings[:, k]
    for k, c in enumerate(_LOADING_COLUMNS):
        cols[f"weight_{c}"] = design.weights[k]
    cols.update({"idio_vol": design.idio_vol, "half_life_seconds": design.half_life, "ref_price": design.ref_price,
                 "quote_rate": design.quote_rate, "spread_ticks": pa.array(design.spread_ticks, pa.int64())})
    return pa.table(cols)


def factor_returns_table(ud: UniverseDay, window_ns: tuple[int, int]) -> pa.Table:
    """``ground_truth/ff_factors.parquet``: per grid step inside the window (``time`` = the
    step's end) and factor, the latent return ``true_return`` and ``portfolio_return``, the
    vendor weights applied to the stocks' efficient simple returns (no quotes involved)."""
    t = ud.time_ns
    keep = np.flatnonzero((t[:-1] >= window_ns[0]) & (t[1:] <= window_ns[1]))
    nf = len(FF_FACTORS)
    return pa.table({
        "time": pa.array(np.repeat(t[1:][keep], nf), pa.int64()).cast(_UTC),
        "factor": pa.array(np.tile(np.array(FF_FACTORS, dtype=object), keep.size), pa.string()),
        "true_return": ud.factor_returns[:, keep].T.ravel(),
        "portfolio_return": ud.portfolio_returns[:, keep].T.ravel(),
    })


def model_json(design: UniverseDesign, risk_free_rate: float) -> dict:
    """``ground_truth/ff_model.json``: the factor design and the true betas of the 40."""
    A, own = factor_map()
    v = latent_covariance()
    betas, p_betas, variances = instrument_betas(), portfolio_betas(design), instrument_variances()
    return {
        "factors": list(FF_FACTORS),
        "construction": "dF = A dG + own_vol s(t) dW (G: the 12 factors of elecflow.universe); "
                        "stock dx_i = sum_k loading_ik dF_k + idio_vol_i s(t) dW_i; MKT-RF net of rf dt (ACT/365)",
        "factor_map": {f: dict(FF_DESIGN[f][0]) for f in FF_FACTORS},
        "own_vol": {f: float(own[k]) for k, f in enumerate(FF_FACTORS)},
        "latent_covariance_annual": v.tolist(),
        "latent_vol_annual": {f: float(np.sqrt(v[k, k])) for k, f in enumerate(FF_FACTORS)},
        "risk_free_rate": risk_free_rate,
        "universe_size": design.size,
        "portfolio_construction": "Fama-French 2015 2x3 sorts: size median, characteristics 30/70 percentiles, "
                                  "value-weighted; SMB the mean of the three sorts' small-minus-big",
        "raw_portfolio_exposure": design.raw_exposure.tolist(),
        "portfolio_exposure": (design.weights @ design.loadings).tolist(),
        "portfolio_noise_vol_annual": {f: float(np.sqrt(design.weights[k] ** 2 @ design.idio_vol ** 2))
                                       for k, f in enumerate(FF_FACTORS)},
        "instrument_betas": {s: dict(zip(FF_FACTORS, map(float, b))) for s, b in betas.items()},
        "instrument_portfolio_betas": {s: dict(zip(FF_FACTORS, map(float, b))) for s, b in p_betas.items()},
        "instrument_variance_annual": variances,
        "beta_definition": "instrument_betas: population regression of the instrument's diffusive return on the "
                           "latent factors; instrument_portfolio_betas: on the vendor portfolios (latent + W e)",
    }
