"""The seed study's universe: 20 stocks and 20 ETFs, with the synthetic day's design.

Pure data and small helpers. Reference prices are approximate closes of 2024-11-04
(rounded; they set levels only). Everything else -- loadings, vols, spreads, sizes,
arrival rates, adjustment half-lives -- is the *design* of the synthetic Election Day:
plausible magnitudes, not estimates.

Dynamics (see docs/synthetic-day.md). Over one step of the 1 s grid, with ``dp`` the change
of the true Trump-wins probability and ``dW`` independent Brownian increments::

    factor f:      dF_f = gamma_f dp + sigma_f(t) dW_f
    stock i:       dx_i = sum_f B_if dF_f + sum_j W_ij dx_j + gamma_i dp + sigma_i(t) dW_i
    basket ETF e:  dx_e = sum_f B_ef dF_f + sum_j W_ej dx_j            (exact basket)
    leveraged L:   S_L(t) = S_L(ref) * (1 + m * (S_I(t) / S_I(ref) - 1))  (daily reset)

where ``x = log price``. Factors are pure (independent of each other); market exposure of
a sector ETF comes from its explicit ``MKT`` weight. ``W_ij`` is non-zero for one stock
(GOOG follows GOOGL) and for ETFs (constituent weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

SECONDS_PER_TRADING_YEAR = 252 * 23_400  # annualised vols are per regular-hours second


@dataclass(frozen=True)
class Factor:
    """A latent factor: ``dF = election_loading * dp + vol dW`` (log units)."""

    name: str
    vol: float  # annualised
    election_loading: float  # d log / d p
    description: str


@dataclass(frozen=True)
class Instrument:
    """One stock or ETF of the universe and its synthetic-day design."""

    symbol: str  # as Polygon spells it (BRK.B)
    kind: str  # "stock" or "etf"
    ref_price: float  # ~ 2024-11-04 close, dollars
    tape: int  # 1 = NYSE listed (A), 2 = Arca/other (B), 3 = Nasdaq (C)
    dividend_yield: float  # continuous, annual
    # --- dynamics of the efficient log price
    election_loading: float = 0.0  # direct d log S / d p (stocks only)
    idio_vol: float = 0.0  # annualised idiosyncratic vol (stocks only)
    factor_loadings: Mapping[str, float] = field(default_factory=dict)
    constituent_weights: Mapping[str, float] = field(default_factory=dict)
    leverage: tuple[str, float] | None = None  # (index symbol, multiple)
    # --- microstructure design
    half_life: float = 5.0  # s, partial adjustment of the quoted mid to the efficient price
    spread_ticks: float = 1.0  # typical regular-hours quoted spread, ticks
    size_lots: float = 3.0  # typical displayed size at the NBBO, round lots of 100
    quote_rate: float = 1.0  # NBBO updates per second, regular hours
    trade_rate: float = 0.2  # prints per second, regular hours
    odd_lot_prob: float = 0.3  # share of uninformed prints below 100 shares
    tick: float = 0.01

    @property
    def option_root(self) -> str:
        """Option root symbol (OCC / ThetaData): dots dropped, BRK.B -> BRKB."""
        return self.symbol.replace(".", "")


FACTORS: tuple[Factor, ...] = (
    Factor("MKT", 0.13, 0.05, "US equity market"),
    Factor("TECH", 0.10, -0.01, "mega-cap technology, orthogonal to MKT"),
    Factor("SEMI", 0.20, 0.00, "semiconductors"),
    Factor("FIN", 0.10, 0.10, "large financials"),
    Factor("REGBANK", 0.18, 0.25, "regional banks"),
    Factor("ENERGY", 0.18, 0.08, "oil and gas"),
    Factor("SMALLCAP", 0.10, 0.08, "small caps beyond their market beta"),
    Factor("RATES", 0.14, -0.07, "long Treasury bond price (duration)"),
    Factor("CREDIT", 0.04, 0.01, "corporate credit spread (price)"),
    Factor("CHINA", 0.30, -0.10, "China large caps"),
    Factor("EMX", 0.12, -0.03, "emerging markets ex China"),
    Factor("UTIL", 0.14, -0.05, "utilities / clean power"),
)
FACTOR_NAMES: tuple[str, ...] = tuple(f.name for f in FACTORS)

_SPX_WEIGHTS = {
    "NVDA": 0.068, "AAPL": 0.070, "MSFT": 0.064, "AMZN": 0.036, "META": 0.025,
    "GOOGL": 0.020, "GOOG": 0.017, "BRK.B": 0.017, "AVGO": 0.017, "LLY": 0.015,
    "TSLA": 0.014, "JPM": 0.013, "XOM": 0.011,
}


def _s(symbol, price, tape, div, **kw) -> Instrument:
    return Instrument(symbol=symbol, kind="stock", ref_price=price, tape=tape, dividend_yield=div, **kw)


def _e(symbol, price, tape, div, **kw) -> Instrument:
    return Instrument(symbol=symbol, kind="etf", ref_price=price, tape=tape, dividend_yield=div, **kw)


_INSTRUMENTS: tuple[Instrument, ...] = (
    # ----------------------------------------------------------------- 20 stocks
    _s("NVDA", 136.05, 3, 0.0003, election_loading=0.00, idio_vol=0.30,
       factor_loadings={"MKT": 1.7, "SEMI": 1.0, "TECH": 0.5},
       half_life=1.0, spread_ticks=1, size_lots=8, quote_rate=4.55, trade_rate=1.44, odd_lot_prob=0.35),
    _s("TSLA", 242.84, 3, 0.0, election_loading=0.30, idio_vol=0.50, factor_loadings={"MKT": 1.8},
       half_life=1.2, spread_ticks=3, size_lots=2, quote_rate=4.55, trade_rate=1.32, odd_lot_prob=0.45),
    _s("AAPL", 222.01, 3, 0.0045, election_loading=-0.01, idio_vol=0.15,
       factor_loadings={"MKT": 1.0, "TECH": 0.8},
       half_life=1.5, spread_ticks=1, size_lots=3, quote_rate=2.6, trade_rate=0.6, odd_lot_prob=0.45),
    _s("MSFT", 408.46, 3, 0.0080, election_loading=0.00, idio_vol=0.14,
       factor_loadings={"MKT": 1.0, "TECH": 0.9},
       half_life=1.5, spread_ticks=3, size_lots=1.5, quote_rate=2.27, trade_rate=0.42, odd_lot_prob=0.6),
    _s("AMZN", 195.78, 3, 0.0, election_loading=0.01, idio_vol=0.22,
       factor_loadings={"MKT": 1.2, "TECH": 0.6},
       half_life=2.0, spread_ticks=1, size_lots=3, quote_rate=2.6, trade_rate=0.54, odd_lot_prob=0.45),
    _s("META", 560.00, 3, 0.0036, election_loading=0.01, idio_vol=0.25,
       factor_loadings={"MKT": 1.3, "TECH": 0.8},
       half_life=2.0, spread_ticks=8, size_lots=1, quote_rate=1.95, trade_rate=0.3, odd_lot_prob=0.7),
    _s("AMD", 139.80, 3, 0.0, election_loading=-0.01, idio_vol=0.38,
       factor_loadings={"MKT": 1.6, "SEMI": 1.0},
       half_life=2.5, spread_ticks=1, size_lots=3, quote_rate=2.6, trade_rate=0.48, odd_lot_prob=0.4),
    _s("GOOGL", 169.24, 3, 0.0047, election_loading=0.02, idio_vol=0.22,
       factor_loadings={"MKT": 1.1, "TECH": 0.8},
       half_life=2.5, spread_ticks=1, size_lots=3, quote_rate=1.95, trade_rate=0.42, odd_lot_prob=0.4),
    _s("LLY", 818.00, 1, 0.0065, election_loading=-0.02, idio_vol=0.25, factor_loadings={"MKT": 0.5},
       half_life=8.0, spread_ticks=25, size_lots=1, quote_rate=0.98, trade_rate=0.18, odd_lot_prob=0.8),
    _s("DJT", 33.94, 3, 0.0, election_loading=0.60, idio_vol=1.10, factor_loadings={"MKT": 0.8},
       half_life=6.0, spread_ticks=2, size_lots=4, quote_rate=1.95, trade_rate=0.6, odd_lot_prob=0.3),
    _s("PLTR", 41.40, 1, 0.0, election_loading=0.20, idio_vol=0.55,
       factor_loadings={"MKT": 1.6, "TECH": 0.5},
       half_life=5.0, spread_ticks=1, size_lots=10, quote_rate=2.6, trade_rate=0.72, odd_lot_prob=0.2),
    _s("BRK.B", 455.00, 1, 0.0, election_loading=0.04, idio_vol=0.10,
       factor_loadings={"MKT": 0.8, "FIN": 0.6},
       half_life=10.0, spread_ticks=6, size_lots=1, quote_rate=0.78, trade_rate=0.15, odd_lot_prob=0.6),
    _s("MSTR", 232.00, 3, 0.0, election_loading=0.35, idio_vol=0.80, factor_loadings={"MKT": 2.0},
       half_life=4.0, spread_ticks=8, size_lots=1, quote_rate=1.95, trade_rate=0.48, odd_lot_prob=0.5),
    _s("GOOG", 170.76, 3, 0.0047, idio_vol=0.01, constituent_weights={"GOOGL": 1.0},
       half_life=3.5, spread_ticks=1, size_lots=2, quote_rate=1.62, trade_rate=0.3, odd_lot_prob=0.4),
    _s("AVGO", 168.00, 3, 0.0125, election_loading=0.00, idio_vol=0.30,
       factor_loadings={"MKT": 1.5, "SEMI": 0.9},
       half_life=4.0, spread_ticks=2, size_lots=2, quote_rate=1.62, trade_rate=0.3, odd_lot_prob=0.45),
    _s("XOM", 118.90, 1, 0.0330, election_loading=0.06, idio_vol=0.14,
       factor_loadings={"MKT": 0.6, "ENERGY": 1.0},
       half_life=6.0, spread_ticks=1, size_lots=3, quote_rate=0.98, trade_rate=0.24, odd_lot_prob=0.4),
    _s("CEG", 225.00, 3, 0.0063, election_loading=-0.05, idio_vol=0.45,
       factor_loadings={"MKT": 1.0, "UTIL": 0.8},
       half_life=15.0, spread_ticks=15, size_lots=1, quote_rate=0.65, trade_rate=0.12, odd_lot_prob=0.6),
    _s("JPM", 219.80, 1, 0.0225, election_loading=0.20, idio_vol=0.15,
       factor_loadings={"MKT": 1.0, "FIN": 1.0},
       half_life=4.0, spread_ticks=2, size_lots=2, quote_rate=0.98, trade_rate=0.24, odd_lot_prob=0.45),
    _s("SMCI", 25.60, 3, 0.0, election_loading=0.00, idio_vol=1.20,
       factor_loadings={"MKT": 2.0, "SEMI": 0.8},
       half_life=12.0, spread_ticks=1, size_lots=6, quote_rate=1.62, trade_rate=0.54, odd_lot_prob=0.2),
    _s("SHW", 362.00, 1, 0.0079, election_loading=0.02, idio_vol=0.20, factor_loadings={"MKT": 0.9},
       half_life=30.0, spread_ticks=12, size_lots=1, quote_rate=0.39, trade_rate=0.06, odd_lot_prob=0.7),
    # ----------------------------------------------------------------- 20 ETFs
    _e("SPY", 569.81, 2, 0.0120, constituent_weights=_SPX_WEIGHTS, factor_loadings={"MKT": 0.50},
       half_life=0.5, spread_ticks=1, size_lots=5, quote_rate=5.2, trade_rate=1.32, odd_lot_prob=0.45),
    _e("QQQ", 486.00, 3, 0.0060,
       constituent_weights={"NVDA": 0.085, "AAPL": 0.085, "MSFT": 0.080, "AMZN": 0.055, "META": 0.050,
                            "AVGO": 0.050, "TSLA": 0.030, "GOOGL": 0.025, "GOOG": 0.024, "AMD": 0.012},
       factor_loadings={"MKT": 0.35, "TECH": 0.25},
       half_life=0.6, spread_ticks=1, size_lots=4, quote_rate=4.55, trade_rate=1.08, odd_lot_prob=0.45),
    _e("TLT", 92.40, 3, 0.0400, factor_loadings={"RATES": 1.0},
       half_life=3.0, spread_ticks=1, size_lots=12, quote_rate=1.62, trade_rate=0.3, odd_lot_prob=0.2),
    _e("IWM", 219.50, 2, 0.0110, factor_loadings={"MKT": 1.1, "SMALLCAP": 1.0},
       half_life=1.5, spread_ticks=1, size_lots=4, quote_rate=2.6, trade_rate=0.54, odd_lot_prob=0.3),
    _e("LQD", 108.50, 2, 0.0440, factor_loadings={"RATES": 0.5, "CREDIT": 0.6},
       half_life=8.0, spread_ticks=1, size_lots=8, quote_rate=0.65, trade_rate=0.09, odd_lot_prob=0.2),
    _e("IVV", 572.60, 2, 0.0125, constituent_weights=_SPX_WEIGHTS, factor_loadings={"MKT": 0.50},
       half_life=2.0, spread_ticks=2, size_lots=2, quote_rate=1.62, trade_rate=0.24, odd_lot_prob=0.5),
    _e("TQQQ", 70.50, 3, 0.0120, leverage=("QQQ", 3.0),
       half_life=1.0, spread_ticks=1, size_lots=12, quote_rate=1.95, trade_rate=0.6, odd_lot_prob=0.2),
    _e("HYG", 79.30, 2, 0.0580, factor_loadings={"RATES": 0.15, "CREDIT": 1.0, "MKT": 0.25},
       half_life=6.0, spread_ticks=1, size_lots=15, quote_rate=0.78, trade_rate=0.12, odd_lot_prob=0.2),
    _e("FXI", 32.10, 2, 0.0240, factor_loadings={"CHINA": 1.0, "MKT": 0.4},
       half_life=4.0, spread_ticks=1, size_lots=20, quote_rate=0.98, trade_rate=0.18, odd_lot_prob=0.15),
    _e("VUG", 383.00, 2, 0.0050,
       constituent_weights={"AAPL": 0.12, "MSFT": 0.11, "NVDA": 0.11, "AMZN": 0.065, "META": 0.045,
                            "GOOGL": 0.04, "GOOG": 0.035, "TSLA": 0.035, "LLY": 0.03, "AVGO": 0.03},
       factor_loadings={"MKT": 0.25, "TECH": 0.15},
       half_life=6.0, spread_ticks=6, size_lots=1, quote_rate=0.65, trade_rate=0.07, odd_lot_prob=0.6),
    _e("VOO", 523.90, 2, 0.0125, constituent_weights=_SPX_WEIGHTS, factor_loadings={"MKT": 0.50},
       half_life=2.5, spread_ticks=2, size_lots=2, quote_rate=1.3, trade_rate=0.3, odd_lot_prob=0.5),
    _e("XLF", 46.30, 2, 0.0150, constituent_weights={"BRK.B": 0.13, "JPM": 0.10},
       factor_loadings={"FIN": 0.77, "MKT": 0.80},
       half_life=3.0, spread_ticks=1, size_lots=20, quote_rate=0.98, trade_rate=0.21, odd_lot_prob=0.15),
    _e("SOXL", 29.90, 2, 0.0070, leverage=("SMH", 3.0),
       half_life=1.5, spread_ticks=1, size_lots=12, quote_rate=1.95, trade_rate=0.54, odd_lot_prob=0.2),
    _e("XLE", 90.00, 2, 0.0320, constituent_weights={"XOM": 0.23}, factor_loadings={"ENERGY": 0.77, "MKT": 0.45},
       half_life=4.0, spread_ticks=1, size_lots=6, quote_rate=0.78, trade_rate=0.15, odd_lot_prob=0.3),
    _e("DIA", 418.00, 2, 0.0160,
       constituent_weights={"SHW": 0.06, "MSFT": 0.07, "JPM": 0.036, "AAPL": 0.037, "AMZN": 0.03},
       factor_loadings={"MKT": 0.70},
       half_life=4.0, spread_ticks=4, size_lots=1, quote_rate=0.65, trade_rate=0.09, odd_lot_prob=0.6),
    _e("EEM", 44.30, 2, 0.0220, factor_loadings={"CHINA": 0.3, "EMX": 1.0, "MKT": 0.5},
       half_life=5.0, spread_ticks=1, size_lots=25, quote_rate=0.78, trade_rate=0.15, odd_lot_prob=0.15),
    _e("SMH", 245.00, 3, 0.0040, constituent_weights={"NVDA": 0.20, "AVGO": 0.08, "AMD": 0.05, "SMCI": 0.01},
       factor_loadings={"SEMI": 0.45, "MKT": 0.60},
       half_life=2.0, spread_ticks=5, size_lots=1, quote_rate=1.3, trade_rate=0.21, odd_lot_prob=0.5),
    _e("SQQQ", 7.80, 3, 0.0100, leverage=("QQQ", -3.0),
       half_life=1.2, spread_ticks=1, size_lots=40, quote_rate=1.62, trade_rate=0.48, odd_lot_prob=0.1),
    _e("XLU", 79.60, 2, 0.0290, constituent_weights={"CEG": 0.08}, factor_loadings={"UTIL": 0.92, "MKT": 0.40},
       half_life=6.0, spread_ticks=1, size_lots=8, quote_rate=0.65, trade_rate=0.12, odd_lot_prob=0.3),
    _e("KRE", 57.20, 2, 0.0280, factor_loadings={"REGBANK": 1.0, "MKT": 1.1, "FIN": 0.3},
       half_life=5.0, spread_ticks=1, size_lots=8, quote_rate=0.98, trade_rate=0.18, odd_lot_prob=0.2),
)

STOCKS: tuple[str, ...] = tuple(i.symbol for i in _INSTRUMENTS if i.kind == "stock")
ETFS: tuple[str, ...] = tuple(i.symbol for i in _INSTRUMENTS if i.kind == "etf")
SYMBOLS: tuple[str, ...] = STOCKS + ETFS  # fixed order: the index keys random streams
INSTRUMENTS: Mapping[str, Instrument] = MappingProxyType({i.symbol: i for i in _INSTRUMENTS})
KALSHI_CONTRACTS: tuple[str, ...] = ("PRES-2024-DJT", "PRES-2024-KH")


def get(symbol: str) -> Instrument:
    """The instrument of a symbol (Polygon spelling); ``KeyError`` names the symbol."""
    try:
        return INSTRUMENTS[symbol]
    except KeyError:
        raise KeyError(f"{symbol!r} is not in the seed universe") from None


def symbol_index(symbol: str) -> int:
    """Position of ``symbol`` in :data:`SYMBOLS` (stable key of its random streams)."""
    return SYMBOLS.index(get(symbol).symbol)


def symbol_from_option_root(root: str) -> str:
    """Option root -> Polygon symbol (BRKB -> BRK.B)."""
    for inst in _INSTRUMENTS:
        if inst.option_root == root:
            return inst.symbol
    raise KeyError(f"no instrument with option root {root!r}")


def evaluation_order() -> tuple[str, ...]:
    """Symbols in dependency order: every symbol after the symbols it is built from."""
    done: list[str] = []
    pending = list(SYMBOLS)
    while pending:
        progressed = False
        for sym in list(pending):
            inst = INSTRUMENTS[sym]
            deps = set(inst.constituent_weights) | ({inst.leverage[0]} if inst.leverage else set())
            if deps <= set(done):
                done.append(sym)
                pending.remove(sym)
                progressed = True
        if not progressed:  # pragma: no cover - static data
            raise ValueError(f"cyclic instrument definitions: {pending}")
    return tuple(done)


def effective_election_loadings() -> dict[str, float]:
    """Total d log S / d p per symbol (factors, constituents and direct loading).

    Exact for stocks and basket ETFs; for leveraged ETFs it is the instantaneous loading
    at the rebalance point (multiple x index loading).
    """
    gamma_f = {f.name: f.election_loading for f in FACTORS}
    out: dict[str, float] = {}
    for sym in evaluation_order():
        inst = INSTRUMENTS[sym]
        if inst.leverage:
            index, mult = inst.leverage
            out[sym] = mult * out[index]
            continue
        g = inst.election_loading
        g += sum(w * gamma_f[f] for f, w in inst.factor_loadings.items())
        g += sum(w * out[j] for j, w in inst.constituent_weights.items())
        out[sym] = g
    return {s: out[s] for s in SYMBOLS}


def shock_exposures() -> dict[str, dict[str, float]]:
    """Loading of each symbol's log return on the independent shocks of the model.

    Shocks are the factors (by name) and each stock's idiosyncratic shock (``idio:SYM``);
    leveraged ETFs get multiple x index exposures (instantaneous, at the rebalance point).
    """
    out: dict[str, dict[str, float]] = {}
    for sym in evaluation_order():
        inst = INSTRUMENTS[sym]
        exp: dict[str, float] = {}
        if inst.leverage:
            index, mult = inst.leverage
            exp = {k: mult * v for k, v in out[index].items()}
        else:
            for f, w in inst.factor_loadings.items():
                exp[f] = exp.get(f, 0.0) + w
            for j, w in inst.constituent_weights.items():
                for k, v in out[j].items():
                    exp[k] = exp.get(k, 0.0) + w * v
            if inst.idio_vol:
                exp[f"idio:{sym}"] = 1.0
        out[sym] = exp
    return {s: out[s] for s in SYMBOLS}


def annual_vol(symbol: str) -> float:
    """Annualised diffusive vol of a symbol's efficient log price in regular hours."""
    vols = {f.name: f.vol for f in FACTORS}
    vols.update({f"idio:{s}": INSTRUMENTS[s].idio_vol for s in STOCKS})
    return sum((w * vols[k]) ** 2 for k, w in shock_exposures()[get(symbol).symbol].items()) ** 0.5


def designed_leaders() -> list[str]:
    """Symbols ranked fastest-first by the half-life of their quote adjustment."""
    return sorted(SYMBOLS, key=lambda s: (INSTRUMENTS[s].half_life, symbol_index(s)))
