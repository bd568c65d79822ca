"""Election sensitivities of options and underlyings, and the Kalshi hedge of a book.

At fixed state densities (the two fitted lognormal states of an underlying held still) only
the Trump probability ``p`` moves. With state means ``m_T, m_H``, sdlogs ``s_T, s_H``,
discount ``DF`` and undiscounted Black-76 prices ``B_i(K) = Black(m_i, K, s_i)`` of each state:

* forward ``F(p) = p m_T + (1 - p) m_H``, so ``dF/dp = m_T - m_H``;
* spot (a share held today): ``S = (S/F) F`` with the carry ratio ``S/F = e^{-(r - q) tau}``
  held fixed, so ``dS/dp = (S/F)(m_T - m_H)``; without a spot the ratio defaults to ``DF``
  (no dividend yield; the error is ``q tau``, about 3e-4 for a 1 % yield over ten days);
* any European option ``V(K) = DF [p B_T(K) + (1 - p) B_H(K)]``, so
  ``dV/dp = DF [B_T(K) - B_H(K)]`` (linear in ``p``: exact, not a first-order statement);
* the implied vol at a fixed strike, from ``V = DF Black(F(p), K, sigma_K(p))``:
  ``d sigma_K/dp = (dV/dp - DF Delta_F dF/dp) / vega_K`` with the Black forward delta
  ``Delta_F`` (``N(d1)`` call, ``N(d1) - 1`` put) and vega at ``sigma_K``;
* the ATM vol (strike ``K = F(p)``, moving with the forward), from
  ``DF F (2 N(sigma sqrt(tau)/2) - 1) = V(F(p); p)``:
  ``d sigma_ATM/dp = ([B_T - B_H] + [p dB_T/dK + (1-p) dB_H/dK - (2 N(sigma sqrt(tau)/2) - 1)] dF/dp)
  / (F phi(sigma sqrt(tau)/2) sqrt(tau))`` at ``K = F``, with ``dB/dK = -N(d2)`` for calls.

A Kalshi presidential contract ("DJT" contract: pays $1 if Trump wins) is worth ``p``, so its
``d value/dp = 1``; a book with election delta ``Delta_E = sum_j quantity_j multiplier_j dV_j/dp``
(dollars per unit of probability) is neutralised by ``n = -Delta_E`` contracts (``n < 0``: sell
YES, i.e. buy ``|n|`` NO contracts, whose ``d value/dp = -1``).

Position file (CSV, one header line; lines starting with ``#`` and blank lines ignored)::

    underlying,expiry,strike,right,quantity,multiplier
    SPY,2024-11-15,575,C,20,100
    SPY,,,,-1000,
    KALSHI,,,,5000,

The first row is an option (expiry YYYY-MM-DD, strike > 0, right C/P), the second the
underlying itself (1000 shares short: right, expiry and strike empty), the third Kalshi
Trump-wins contracts already held.

``underlying`` and ``quantity`` (signed, negative = short) are required columns; ``expiry``,
``strike``, ``right`` and ``multiplier`` are optional columns (``multiplier`` defaults to 100 for
options and 1 for shares and Kalshi contracts). Rights ``C``/``CALL``/``P``/``PUT`` in any case.
Unknown columns and bad cells raise :class:`PositionFileError` naming the file, line and column.
See ``docs/states.md`` and ``examples/positions.csv``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from elecflow.mixture import lognormal_mixture_call, lognormal_mixture_put
from elecflow.options import black_implied_vol, black_price

__all__ = [
    "ElectionStates",
    "Position",
    "PositionFileError",
    "ExposureLine",
    "HedgeReport",
    "forward_sensitivity",
    "spot_sensitivity",
    "option_price",
    "option_sensitivity",
    "option_iv_sensitivity",
    "atm_iv",
    "atm_iv_sensitivity",
    "read_positions",
    "election_exposure",
    "KALSHI_UNDERLYING",
]

KALSHI_UNDERLYING = "KALSHI"  # position-file name of the Kalshi Trump-wins contract
_INV_SQRT_2PI = 0.3989422804014326779399460599343818684758586311649
_COLUMNS = ("underlying", "expiry", "strike", "right", "quantity", "multiplier")
_REQUIRED = ("underlying", "quantity")
_RIGHTS = {"C": True, "CALL": True, "P": False, "PUT": False}


# --------------------------------------------------------------------------- states


@dataclass(frozen=True)
class ElectionStates:
    """The two state densities of one underlying (one expiry) and the probability ``p``.

    ``spot_per_forward`` is the carry ratio ``S/F`` (default: ``discount``, i.e. no dividend
    yield). ``expiry`` (optional) is checked against option positions.
    """

    underlying: str
    probability: float
    mean_trump: float
    sdlog_trump: float
    mean_harris: float
    sdlog_harris: float
    discount: float
    tau: float
    expiry: dt.date | None = None
    spot_per_forward: float | None = None

    def __post_init__(self):
        for name in ("mean_trump", "sdlog_trump", "mean_harris", "sdlog_harris", "discount", "tau"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{self.underlying}: {name} must be finite and > 0 (got {v!r})")
        if not (math.isfinite(self.probability) and 0.0 <= self.probability <= 1.0):
            raise ValueError(f"{self.underlying}: probability must be in [0, 1] (got {self.probability!r})")
        if self.spot_per_forward is not None and not (math.isfinite(self.spot_per_forward)
                                                      and self.spot_per_forward > 0):
            raise ValueError(f"{self.underlying}: spot_per_forward must be finite and > 0")

    @classmethod
    def from_fit(cls, fit, underlying: str = "", probability: float | None = None,
                 expiry: dt.date | None = None, spot: float | None = None) -> ElectionStates:
        """From an identified, labelled :class:`~elecflow.states.StateFit`.

        ``probability`` defaults to the fit's Kalshi probability, else its Trump probability
        (mode A: the fixed weight). ``spot`` sets the carry ratio ``spot / forward``.
        """
        if not fit.success or not fit.identified:
            raise ValueError(f"{underlying or 'fit'}: states not identified ({fit.identification_reason})")
        t = fit.trump_index
        if t is None:
            raise ValueError(f"{underlying or 'fit'}: Trump state undetermined (label {fit.label!r})")
        p = probability
        if p is None:
            p = fit.kalshi_probability if math.isfinite(fit.kalshi_probability) else fit.trump_probability
        return cls(underlying=underlying, probability=float(p), mean_trump=float(fit.mean[t]),
                   sdlog_trump=float(fit.sdlog[t]), mean_harris=float(fit.mean[1 - t]),
                   sdlog_harris=float(fit.sdlog[1 - t]), discount=float(fit.discount), tau=float(fit.tau),
                   expiry=expiry, spot_per_forward=None if spot is None else float(spot) / float(fit.forward))

    @property
    def forward(self) -> float:
        return self.probability * self.mean_trump + (1.0 - self.probability) * self.mean_harris

    @property
    def carry_ratio(self) -> float:
        return self.discount if self.spot_per_forward is None else self.spot_per_forward

    def _mixture(self):
        w = np.array([self.probability, 1.0 - self.probability])
        s = np.array([self.sdlog_trump, self.sdlog_harris])
        mu = np.log([self.mean_trump, self.mean_harris]) - 0.5 * s * s
        return w, mu, s


def forward_sensitivity(states: ElectionStates) -> float:
    """``dF/dp = m_T - m_H`` (dollars per unit of probability)."""
    return states.mean_trump - states.mean_harris


def spot_sensitivity(states: ElectionStates) -> float:
    """``dS/dp = (S/F)(m_T - m_H)``: one share's election delta."""
    return states.carry_ratio * forward_sensitivity(states)


def _state_prices(states: ElectionStates, strike, is_call):
    """Undiscounted Black prices of the Trump and Harris states (tau = 1, vol = sdlog)."""
    b_t = black_price(states.mean_trump, strike, 1.0, states.sdlog_trump, is_call)
    b_h = black_price(states.mean_harris, strike, 1.0, states.sdlog_harris, is_call)
    return b_t, b_h


def option_price(states: ElectionStates, strike, is_call) -> np.ndarray:
    """``DF [p B_T(K) + (1 - p) B_H(K)]`` (vectorised over strikes / flags)."""
    w, mu, s = states._mixture()
    strike, is_call = np.broadcast_arrays(np.asarray(strike, dtype=np.float64), np.asarray(is_call, dtype=bool))
    call = lognormal_mixture_call(strike, w, mu, s, states.discount)
    put = lognormal_mixture_put(strike, w, mu, s, states.discount)
    return np.where(is_call, call, put)


def option_sensitivity(states: ElectionStates, strike, is_call) -> np.ndarray:
    """``dV/dp = DF [B_T(K) - B_H(K)]`` per option (dollars per unit of probability)."""
    b_t, b_h = _state_prices(states, strike, is_call)
    return states.discount * (b_t - b_h)


def option_iv_sensitivity(states: ElectionStates, strike, is_call) -> np.ndarray:
    """``d sigma_K / dp`` of the implied vol at a fixed strike (vol units per unit of p)."""
    K = np.asarray(strike, dtype=np.float64)
    c = np.broadcast_to(np.asarray(is_call, dtype=bool), np.broadcast_shapes(K.shape, np.shape(is_call)))
    F, DF, tau = states.forward, states.discount, states.tau
    iv = black_implied_vol(option_price(states, K, c), F, K, tau, c, DF)
    sd = iv * math.sqrt(tau)
    d1 = (np.log(F / K) + 0.5 * sd * sd) / sd
    delta_f = np.where(c, ndtr(d1), ndtr(d1) - 1.0)
    vega = DF * F * np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI * math.sqrt(tau)
    return (option_sensitivity(states, K, c) - DF * delta_f * forward_sensitivity(states)) / vega


def atm_iv(states: ElectionStates) -> float:
    """Implied vol of the call struck at the forward ``F(p)``."""
    F = states.forward
    return float(black_implied_vol(option_price(states, F, True), F, F, states.tau, True, states.discount))


def atm_iv_sensitivity(states: ElectionStates) -> float:
    """``d sigma_ATM / dp`` with the ATM strike moving with the forward (module docstring)."""
    p, F, tau = states.probability, states.forward, states.tau
    sigma = atm_iv(states)
    half = 0.5 * sigma * math.sqrt(tau)
    dF = forward_sensitivity(states)
    b_t, b_h = _state_prices(states, F, True)

    def dcall_dk(m, s):  # undiscounted Black call's strike derivative: -N(d2)
        return -float(ndtr((math.log(m / F) - 0.5 * s * s) / s))

    dk = p * dcall_dk(states.mean_trump, states.sdlog_trump) + (1 - p) * dcall_dk(states.mean_harris,
                                                                                    states.sdlog_harris)
    atm_slope = 2.0 * float(ndtr(half)) - 1.0  # d Black(F, F, sigma) / dF
    numerator = float(b_t - b_h) + (dk - atm_slope) * dF
    return numerator / (F * math.exp(-0.5 * half * half) * _INV_SQRT_2PI * math.sqrt(tau))


# --------------------------------------------------------------------------- positions


class PositionFileError(ValueError):
    """A bad position file; the message names the file, line and column."""


@dataclass(frozen=True)
class Position:
    """One line of a position file. ``right`` is ``"C"``, ``"P"`` or ``None`` (the underlying
    itself, or a Kalshi contract when ``underlying == "KALSHI"``)."""

    line: int
    underlying: str
    expiry: dt.date | None
    strike: float | None
    right: str | None
    quantity: float
    multiplier: float

    @property
    def kind(self) -> str:
        if self.right is not None:
            return "option"
        return "kalshi" if self.underlying == KALSHI_UNDERLYING else "underlying"


def read_positions(path) -> list[Position]:
    """Read a position file (format in the module docstring)."""
    path = Path(path)

    def err(line, column, problem):
        where = f"{path}:{line}" + (f": column '{column}'" if column else "")
        return PositionFileError(f"{where}: {problem}")

    try:
        text = path.read_text()
    except OSError as exc:
        raise PositionFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    rows = [(i + 1, line) for i, line in enumerate(text.splitlines())
            if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise PositionFileError(f"{path}: empty position file (no header line)")
    header_line, header_text = rows[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    for col in header:
        if col not in _COLUMNS:
            raise err(header_line, col, f"unknown column (expected some of {', '.join(_COLUMNS)})")
    for col in _REQUIRED:
        if col not in header:
            raise err(header_line, col, "required column missing")
    if len(set(header)) != len(header):
        raise err(header_line, None, "duplicate column names")

    out = []
    for line_no, line in rows[1:]:
        cells = next(csv.reader([line]))
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            raise err(line_no, None, f"{len(cells)} cells for {len(header)} columns")
        cell = {col: (cells[i].strip() if i < len(cells) else "") for i, col in enumerate(header)}
        out.append(_parse_row(cell, line_no, err))
    return out


def _parse_row(cell: dict, line_no: int, err) -> Position:
    underlying = cell.get("underlying", "").upper()
    if not underlying:
        raise err(line_no, "underlying", "empty")

    def number(col, positive=False):
        raw = cell.get(col, "")
        try:
            v = float(raw)
        except ValueError:
            raise err(line_no, col, f"not a number: {raw!r}") from None
        if not math.isfinite(v) or (positive and v <= 0):
            raise err(line_no, col, f"must be {'a positive' if positive else 'a finite'} number (got {raw!r})")
        return v

    if not cell.get("quantity", ""):
        raise err(line_no, "quantity", "empty")
    quantity = number("quantity")
    right_raw = cell.get("right", "").upper()
    if right_raw and right_raw not in _RIGHTS:
        raise err(line_no, "right", f"must be C, P, CALL, PUT or empty (got {cell['right']!r})")
    if right_raw:
        right = "C" if _RIGHTS[right_raw] else "P"
        if not cell.get("expiry", ""):
            raise err(line_no, "expiry", "an option needs an expiry (YYYY-MM-DD)")
        try:
            expiry = dt.date.fromisoformat(cell["expiry"])
        except ValueError:
            raise err(line_no, "expiry", f"not a YYYY-MM-DD date: {cell['expiry']!r}") from None
        if not cell.get("strike", ""):
            raise err(line_no, "strike", "an option needs a strike")
        strike = number("strike", positive=True)
        default_multiplier = 100.0
        if underlying == KALSHI_UNDERLYING:
            raise err(line_no, "right", "Kalshi contracts have no right (leave it empty)")
    else:
        right, expiry, strike = None, None, None
        for col in ("expiry", "strike"):
            if cell.get(col, ""):
                raise err(line_no, col, "must be empty for a share or Kalshi line (right empty)")
        default_multiplier = 1.0
    multiplier = number("multiplier", positive=True) if cell.get("multiplier", "") else default_multiplier
    return Position(line=line_no, underlying=underlying, expiry=expiry, strike=strike, right=right,
                    quantity=quantity, multiplier=multiplier)


# --------------------------------------------------------------------------- exposure


@dataclass
class ExposureLine:
    """One position's value and election delta (``dollar_delta`` = quantity x multiplier x
    ``dvalue_dp``, dollars per unit of probability)."""

    position: Position
    value: float  # per unit (one option / share / contract), dollars
    dvalue_dp: float  # per unit
    dollar_delta: float


@dataclass
class HedgeReport:
    """Election delta of a book and its Kalshi hedge.

    ``kalshi_contracts = -total_delta``: buy that many Trump-wins contracts (negative: sell YES
    / buy NO). ``total_delta`` is in dollars per unit of probability (divide by 100 for one
    percentage point).
    """

    lines: list[ExposureLine]
    by_underlying: dict[str, float]
    total_delta: float
    kalshi_contracts: float
    kalshi_contracts_rounded: int
    market_value: float
    notes: list = field(default_factory=list)


def election_exposure(positions, states: Mapping[str, ElectionStates],
                      probability: float | None = None) -> HedgeReport:
    """Election delta of ``positions`` (from :func:`read_positions`) given each underlying's
    :class:`ElectionStates`, and the number of Kalshi contracts that neutralises it.

    ``probability`` values Kalshi lines (default: the states' probability, when they agree).

    Raises
    ------
    ValueError
        When an underlying of the book has no states, or an option's expiry differs from the
        expiry of its underlying's states (when that is set); the message names the line.
    """
    lines, by_und = [], {}
    if probability is not None:
        kalshi_value = float(probability)
    else:
        ps = {st.probability for st in states.values()}
        kalshi_value = ps.pop() if len(ps) == 1 else math.nan
    for pos in positions:
        if pos.kind == "kalshi":
            value, dv = kalshi_value, 1.0
        else:
            st = states.get(pos.underlying)
            if st is None:
                raise ValueError(f"line {pos.line}: no election states for underlying {pos.underlying!r}")
            if pos.kind == "underlying":
                value, dv = st.carry_ratio * st.forward, spot_sensitivity(st)
            else:
                if st.expiry is not None and pos.expiry != st.expiry:
                    raise ValueError(f"line {pos.line}: {pos.underlying} expiry {pos.expiry} has no states "
                                     f"(states are for {st.expiry})")
                is_call = pos.right == "C"
                value = float(option_price(st, pos.strike, is_call))
                dv = float(option_sensitivity(st, pos.strike, is_call))
        delta = pos.quantity * pos.multiplier * dv
        lines.append(ExposureLine(position=pos, value=value, dvalue_dp=dv, dollar_delta=delta))
        by_und[pos.underlying] = by_und.get(pos.underlying, 0.0) + delta
    total = float(sum(x.dollar_delta for x in lines))
    mv = float(sum(x.position.quantity * x.position.multiplier * x.value for x in lines if math.isfinite(x.value)))
    return HedgeReport(lines=lines, by_underlying=by_und, total_delta=total, kalshi_contracts=-total,
                       kalshi_contracts_rounded=int(round(-total)), market_value=mv)
