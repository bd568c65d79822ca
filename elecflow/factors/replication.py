"""Minimum-norm ETF replication from factor betas (the seed's Appendix D, with its tracking error).

Given the factor betas ``L`` (``K x S``: K factors, S replicating stocks) and an ETF's betas
``beta`` (``K``), the weights ``w`` with the ETF's factor exposure, ``L w = beta``, form an
``(S - K)``-dimensional family when ``S > K``; the one of least Euclidean norm is ::

    w = L' (L L')^{-1} beta            (exact when L has full row rank K)

-- the minimum-norm solution, which ``numpy.linalg.lstsq`` and ``pinv(L) @ beta`` also return.
Only the factor exposure is matched: what is left of the weights is cash (``1 - sum w``).
With ``budget`` the weights must also sum to it (a row of ones is appended to ``L``), e.g.
``budget=1`` for a fully invested replica.

**Tracking error.** With matched exposures the systematic parts cancel, so the tracking
difference ``r_ETF - w' r`` is idiosyncratic: ex ante ``TE^2 = d_ETF + sum_j w_j^2 d_j`` under
independent idiosyncratic returns (``d`` their variances), and ex post the realised variance of
the tracking difference over a window, ``a' (sum_t y_t y_t') a / n`` with ``a = (1, -w)`` on
(ETF, stocks). A near-singular ``L L'`` (the stocks barely span a factor) makes the weights
large and the replica fragile; the condition number is reported and, above
``max_condition``, the solution falls back to the least-squares minimum-norm (pseudo-inverse)
one, which then leaves an exposure error.

Library layer: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Replication", "min_norm_replication", "ex_ante_tracking_variance", "realized_tracking_variance"]

DEFAULT_MAX_CONDITION = 1e10


@dataclass(frozen=True)
class Replication:
    weights: np.ndarray  # (S,)
    exposure_error: float  # max |L w - beta| (0 up to rounding when exact)
    condition: float  # condition number of L L' (with the budget row, if any)
    method: str  # "normal_equations" (the closed form) or "pseudo_inverse" (fallback)


def min_norm_replication(L: np.ndarray, beta: np.ndarray, budget: float | None = None,
                         max_condition: float = DEFAULT_MAX_CONDITION) -> Replication:
    """The minimum-norm weights with ``L w = beta`` (and ``sum w = budget`` if given)."""
    L = np.atleast_2d(np.asarray(L, dtype=np.float64))
    beta = np.asarray(beta, dtype=np.float64).ravel()
    if L.shape[0] != beta.size:
        raise ValueError(f"L has {L.shape[0]} factor rows but beta has {beta.size} entries")
    if not (np.all(np.isfinite(L)) and np.all(np.isfinite(beta))):
        raise ValueError("L and beta must be finite")
    if budget is not None:
        L = np.vstack([L, np.ones(L.shape[1])])
        beta = np.append(beta, float(budget))
    if L.shape[0] > L.shape[1]:
        raise ValueError(f"{L.shape[0]} constraints on {L.shape[1]} weights: need at least as many stocks as rows")
    G = L @ L.T
    cond = float(np.linalg.cond(G)) if G.size else 0.0
    if np.isfinite(cond) and cond <= max_condition:
        try:
            z = np.linalg.solve(G, beta)
            w = L.T @ z
            method = "normal_equations"
        except np.linalg.LinAlgError:
            w, method = np.linalg.lstsq(L, beta, rcond=None)[0], "pseudo_inverse"
    else:
        w, method = np.linalg.lstsq(L, beta, rcond=None)[0], "pseudo_inverse"
    err = float(np.max(np.abs(L @ w - beta))) if beta.size else 0.0
    return Replication(w, err, cond, method)


def ex_ante_tracking_variance(w: np.ndarray, etf_idio_var: float, stock_idio_var: np.ndarray) -> float:
    """``d_ETF + sum w_j^2 d_j``: the tracking variance if idiosyncratic returns are independent."""
    w = np.asarray(w, dtype=np.float64)
    return float(etf_idio_var + np.sum(w * w * np.asarray(stock_idio_var, dtype=np.float64)))


def realized_tracking_variance(w: np.ndarray, etf: int, stocks: np.ndarray, cross: np.ndarray, n: float) -> float:
    """Mean squared tracking difference over a window from its return cross-products.

    ``cross`` is ``sum_t y_t y_t'`` over the window (all assets), ``etf`` and ``stocks`` index it.
    """
    if n <= 0:
        return float("nan")
    a_idx = np.concatenate(([etf], np.asarray(stocks, dtype=np.int64)))
    a = np.concatenate(([1.0], -np.asarray(w, dtype=np.float64)))
    sub = cross[np.ix_(a_idx, a_idx)]
    return float(max(a @ sub @ a, 0.0) / n)
