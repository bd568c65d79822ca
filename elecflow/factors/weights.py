"""Factor portfolio weights: the vendor's JSON format, validated, as a matrix.

The format (``../shared/notes/vendor-formats.md``, "Fama-French factor weights") is one JSON
object: factor name -> ticker -> weight, e.g. ::

    {"MKT-RF": {"AAPL": 0.061, ...}, "SMB": {"ZAAB": 0.0065, "ZAAC": -0.0031, ...}, ...}

``MKT-RF`` is the value-weighted market: its weights sum to 1 and the risk-free leg is not a
ticker. ``SMB``, ``HML``, ``RMW``, ``CMA`` are long-short: each leg sums to one, so the weights
sum to zero. A factor's return over an interval is therefore a weighted sum of the stocks'
*returns* ``sum_i w_i (r_i - r_f dt)``; dividing a weighted sum of price *levels* by the sum of
the weights (what the seed project did) divides by zero for every long-short factor.

Library layer: no I/O (the adapter reads the file and passes the parsed object).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = ["FF_FACTORS", "FactorWeights", "FactorWeightsError"]

FF_FACTORS: tuple[str, ...] = ("MKT-RF", "SMB", "HML", "RMW", "CMA")
MARKET_FACTOR = "MKT-RF"
SUM_TOLERANCE = 1e-6  # |sum of weights - target|: 1 for the market, 0 for long-short factors


class FactorWeightsError(ValueError):
    """The weights object is not the vendor format, or its sums are wrong (message says which)."""


@dataclass(frozen=True)
class FactorWeights:
    """Weights as a dense ``(K, N)`` matrix: rows :data:`FF_FACTORS`, columns ``tickers`` (sorted)."""

    factors: tuple[str, ...]
    tickers: tuple[str, ...]
    matrix: np.ndarray

    @classmethod
    def from_mapping(cls, obj, *, tolerance: float = SUM_TOLERANCE) -> "FactorWeights":
        """Validate the parsed JSON object and build the matrix.

        Requires exactly the five Fama-French factors, string tickers, finite numeric
        weights, ``MKT-RF`` summing to 1 and every other factor summing to 0 within
        ``tolerance``. A ticker missing from a factor has weight 0 in it.
        """
        if not isinstance(obj, Mapping):
            raise FactorWeightsError(f"factor weights must be an object of factor -> ticker -> weight, "
                                     f"got {type(obj).__name__}")
        names = list(obj)
        missing = [f for f in FF_FACTORS if f not in obj]
        extra = [f for f in names if f not in FF_FACTORS]
        if missing or extra:
            raise FactorWeightsError("factor weights must define exactly " + ", ".join(FF_FACTORS)
                                     + (f"; missing {', '.join(missing)}" if missing else "")
                                     + (f"; unknown {', '.join(map(str, extra))}" if extra else ""))
        tickers: set[str] = set()
        for f in FF_FACTORS:
            legs = obj[f]
            if not isinstance(legs, Mapping) or not legs:
                raise FactorWeightsError(f"{f}: expected a non-empty object of ticker -> weight")
            for t, w in legs.items():
                if not isinstance(t, str) or not t:
                    raise FactorWeightsError(f"{f}: ticker {t!r} is not a non-empty string")
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                    raise FactorWeightsError(f"{f}: weight of {t} is {w!r}, not a finite number")
            tickers.update(legs)
        order = tuple(sorted(tickers))
        index = {t: i for i, t in enumerate(order)}
        W = np.zeros((len(FF_FACTORS), len(order)))
        for k, f in enumerate(FF_FACTORS):
            for t, w in obj[f].items():
                W[k, index[t]] = float(w)
        out = cls(FF_FACTORS, order, W)
        sums = out.sums()
        for k, f in enumerate(FF_FACTORS):
            target = 1.0 if f == MARKET_FACTOR else 0.0
            if abs(sums[k] - target) > tolerance:
                kind = "the market's weights must sum to 1" if f == MARKET_FACTOR else \
                    "long-short weights must sum to 0 (a factor is a weighted sum of returns, never of levels)"
                raise FactorWeightsError(f"{f}: weights sum to {sums[k]:.9g}; {kind}")
        return out

    def sums(self) -> np.ndarray:
        """Sum of each factor's weights (1 for the market, 0 for the long-short factors)."""
        return self.matrix.sum(axis=1)

    @property
    def size(self) -> int:
        return len(self.tickers)

    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tickers)}
