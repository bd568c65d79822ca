"""Baseline statistics: the regression's sufficient statistics on prior normal days.

For each regime (session) and asset, over the baseline days' intervals ``j`` of that regime::

    xx = sum_j x_j x_j'      xy = sum_j x_j y_j      yy = sum_j y_j^2      n = #intervals

with ``x_j`` the Dimson regressors (the factors' interval returns and their lags) and ``y_j``
the asset's interval return; intervals where the asset has no return are left out of its
sums. They give the prior betas (pooled over regimes), the baseline's idiosyncratic variance
per regime for any betas ``b`` -- ``(yy - 2 b'xy + b' xx b) / n`` -- and they serialise to plain
JSON (no pickle), so a day's statistics are computed once and cached.

Library layer: numpy only; the adapter (:mod:`elecflow.adapters.factors`) computes them
from files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RegimeStats", "BaselineStats", "accumulate", "solve_betas", "total_beta_standard_errors"]


@dataclass
class RegimeStats:
    xx: np.ndarray  # (A, p, p)
    xy: np.ndarray  # (A, p)
    yy: np.ndarray  # (A,)
    n: np.ndarray  # (A,) intervals

    @classmethod
    def zeros(cls, n_assets: int, p: int) -> "RegimeStats":
        return cls(np.zeros((n_assets, p, p)), np.zeros((n_assets, p)), np.zeros(n_assets), np.zeros(n_assets))

    def __add__(self, other: "RegimeStats") -> "RegimeStats":
        return RegimeStats(self.xx + other.xx, self.xy + other.xy, self.yy + other.yy, self.n + other.n)

    def residual_variance(self, betas: np.ndarray) -> np.ndarray:
        """Mean squared residual per interval of each asset for betas ``(A, p)`` (NaN without data)."""
        q = self.yy - 2.0 * np.einsum("ap,ap->a", betas, self.xy) + np.einsum("ap,apq,aq->a", betas, self.xx, betas)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, np.maximum(q, 0.0) / self.n, np.nan)

    def total_variance(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.yy / self.n, np.nan)

    def to_dict(self) -> dict:
        return {"xx": self.xx.tolist(), "xy": self.xy.tolist(), "yy": self.yy.tolist(), "n": self.n.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "RegimeStats":
        return cls(np.asarray(d["xx"], float), np.asarray(d["xy"], float), np.asarray(d["yy"], float),
                   np.asarray(d["n"], float))


@dataclass
class BaselineStats:
    """Sufficient statistics per regime over one or more baseline days."""

    symbols: tuple[str, ...]
    factors: tuple[str, ...]
    interval_seconds: float
    dimson_lags: int
    days: list[str] = field(default_factory=list)
    regimes: dict[str, RegimeStats] = field(default_factory=dict)

    @property
    def p(self) -> int:
        return len(self.factors) * (self.dimson_lags + 1)

    def compatible(self, other: "BaselineStats") -> bool:
        return (self.symbols == other.symbols and self.factors == other.factors
                and self.interval_seconds == other.interval_seconds and self.dimson_lags == other.dimson_lags)

    def merged(self, other: "BaselineStats") -> "BaselineStats":
        """The statistics of both sets of days (same symbols, factors and settings)."""
        if not self.compatible(other):
            raise ValueError("baseline statistics of different symbols, factors or settings cannot be merged")
        regimes = dict(self.regimes)
        for name, st in other.regimes.items():
            regimes[name] = regimes[name] + st if name in regimes else st
        return BaselineStats(self.symbols, self.factors, self.interval_seconds, self.dimson_lags,
                             self.days + other.days, regimes)

    def pooled(self) -> RegimeStats:
        """All regimes together (what the prior betas are fitted on)."""
        out = RegimeStats.zeros(len(self.symbols), self.p)
        for st in self.regimes.values():
            out = out + st
        return out

    def prior_betas(self, ridge: float = 1e-10) -> np.ndarray:
        """OLS betas ``(A, p)`` on all baseline intervals (NaN rows for assets without data)."""
        return solve_betas(self.pooled().xx, self.pooled().xy, ridge)

    def to_dict(self) -> dict:
        return {"symbols": list(self.symbols), "factors": list(self.factors), "interval_seconds": self.interval_seconds,
                "dimson_lags": self.dimson_lags, "days": list(self.days),
                "regimes": {k: v.to_dict() for k, v in self.regimes.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "BaselineStats":
        return cls(tuple(d["symbols"]), tuple(d["factors"]), float(d["interval_seconds"]), int(d["dimson_lags"]),
                   list(d["days"]), {k: RegimeStats.from_dict(v) for k, v in d["regimes"].items()})


def solve_betas(xx: np.ndarray, xy: np.ndarray, ridge: float = 1e-10) -> np.ndarray:
    """``(xx + ridge * tr(xx)/p * I)^{-1} xy`` per asset; NaN where ``xx`` is empty or singular.

    The tiny relative ridge only guards exact singularity (a regressor that never moved); it
    changes well-posed betas by about ``ridge`` relative.
    """
    A, p, _ = xx.shape
    out = np.full((A, p), np.nan)
    scale = np.trace(xx, axis1=1, axis2=2) / max(p, 1)
    ok = np.isfinite(scale) & (scale > 0)
    if not ok.any():
        return out
    M = xx[ok] + (ridge * scale[ok])[:, None, None] * np.eye(p)[None]
    try:
        out[ok] = np.linalg.solve(M, xy[ok][..., None])[..., 0]
    except np.linalg.LinAlgError:
        for i in np.flatnonzero(ok):
            try:
                out[i] = np.linalg.solve(xx[i] + ridge * scale[i] * np.eye(p), xy[i])
            except np.linalg.LinAlgError:
                pass
    return out


def total_beta_standard_errors(stats: RegimeStats, betas: np.ndarray, n_factors: int) -> np.ndarray:
    """Standard errors ``(A, K)`` of the total (lag-summed) betas of an OLS fit on ``stats``.

    ``Cov(b) = s^2 (X'X)^{-1}`` with ``s^2`` the residual variance on ``n - p`` degrees of
    freedom; the total beta on factor ``k`` sums the lag coefficients ``k, k + K, ...``.
    """
    A, p, _ = stats.xx.shape
    C = np.tile(np.eye(n_factors), p // n_factors)  # (K, p): sums the lags
    out = np.full((A, n_factors), np.nan)
    for a in range(A):
        if stats.n[a] <= p or not np.all(np.isfinite(betas[a])):
            continue
        b = betas[a]
        s2 = max(stats.yy[a] - 2 * b @ stats.xy[a] + b @ stats.xx[a] @ b, 0.0) / (stats.n[a] - p)
        cov = s2 * np.linalg.inv(stats.xx[a])
        out[a] = np.sqrt(np.maximum(np.diag(C @ cov @ C.T), 0.0))
    return out


def accumulate(stats: BaselineStats, X: np.ndarray, Y: np.ndarray, regimes: np.ndarray) -> None:
    """Add one day's intervals: ``X`` (J, p) regressors, ``Y`` (J, A) returns (NaN = missing),
    ``regimes`` (J,) regime names. Updates ``stats.regimes`` in place."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    regimes = np.asarray(regimes, dtype=object)
    if X.shape[0] != Y.shape[0] or regimes.shape[0] != X.shape[0] or X.shape[1] != stats.p \
            or Y.shape[1] != len(stats.symbols):
        raise ValueError(f"shapes: X {X.shape}, Y {Y.shape}, regimes {regimes.shape}; "
                         f"expected (J, {stats.p}), (J, {len(stats.symbols)}), (J,)")
    for name in sorted(set(regimes.tolist())):
        sel = regimes == name
        x, y = X[sel], Y[sel]
        m = np.isfinite(y)
        y0 = np.where(m, y, 0.0)
        st = RegimeStats(np.einsum("ja,jp,jq->apq", m.astype(float), x, x), np.einsum("ja,jp->ap", y0, x),
                         np.sum(y0 * y0, axis=0), m.sum(axis=0).astype(float))
        stats.regimes[name] = stats.regimes[name] + st if name in stats.regimes else st
