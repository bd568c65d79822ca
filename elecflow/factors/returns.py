"""Factor returns each second from the universe's 1 s NBBO mids.

At each 1 s label ``T`` (the vendor's right-end label: a row at ``T`` is the last quote in
``[T - 1 s, T)``) the stocks that quoted in that second have a new mid; every other stock's
mid is carried forward (its return this second is 0, and its move shows up, whole, at its
next row). With ``r_i = mid_i(T) / mid_i(prev) - 1``::

    F_k(T) = sum_i W_ki r_i(T) - r_f dt(T) sum_i W_ki

``dt`` is the time since the previous label in years (ACT/365) and ``r_f`` the continuous
rate: the market's weights sum to 1, so ``MKT-RF`` is the market's excess return; the
long-short weights sum to 0, so no rate enters them. ``F`` is the return of portfolios
rebalanced to ``W`` each second; compounding these gives the longer-interval returns. A
stock's first mid only sets its reference (no return). ``coverage`` is the share of the
market's weight whose stocks have a mid.

:class:`FactorReturnBuilder` (streaming, one second at a time) and
:func:`factor_returns_batch` (all seconds at once, vectorised) compute the same numbers
(tested equal up to the order of summation). Library layer: numpy only.
"""

from __future__ import annotations

import numpy as np

from elecflow.factors.weights import FactorWeights

__all__ = ["FactorReturnBuilder", "factor_returns_batch", "SECONDS_PER_YEAR"]

SECONDS_PER_YEAR = 365.0 * 86_400.0  # ACT/365 for the risk-free leg
NS_PER_SECOND = 1_000_000_000


def _last_per_key(keys: np.ndarray) -> np.ndarray:
    """Positions of the last occurrence of each key (a later row of the same stock wins)."""
    rev = keys[::-1]
    _, first_in_rev = np.unique(rev, return_index=True)
    return np.sort(keys.size - 1 - first_in_rev)


class FactorReturnBuilder:
    """Streaming factor returns: call :meth:`step` once per 1 s label with that second's rows.

    ``step(label_ns, idx, mid)``: ``idx`` are column indices into ``weights.tickers`` (rows
    of other tickers are the caller's to drop), ``mid`` the rows' mids. Labels must increase.
    Returns ``(F, coverage)``: the ``K`` factor returns of the second and the market-weight
    coverage after it.
    """

    def __init__(self, weights: FactorWeights, risk_free_rate: float = 0.0):
        if not np.isfinite(risk_free_rate):
            raise ValueError(f"risk_free_rate must be finite, got {risk_free_rate!r}")
        self.weights = weights
        self.W = np.ascontiguousarray(weights.matrix)
        self.rate = float(risk_free_rate)
        self._sums = self.W.sum(axis=1)
        self._last = np.full(weights.size, np.nan)
        self._r = np.zeros(weights.size)
        self._label: int | None = None
        self.seconds = 0

    @property
    def last_label(self) -> int | None:
        return self._label

    def step(self, label_ns: int, idx: np.ndarray, mid: np.ndarray) -> tuple[np.ndarray, float]:
        label_ns = int(label_ns)
        if self._label is not None and label_ns <= self._label:
            raise ValueError(f"labels must increase: {label_ns} after {self._label}")
        idx = np.asarray(idx, dtype=np.int64)
        mid = np.asarray(mid, dtype=np.float64)
        if idx.shape != mid.shape:
            raise ValueError("idx and mid must have the same shape")
        if idx.size and (idx.min() < 0 or idx.max() >= self.weights.size):
            raise ValueError("ticker index out of range")
        if idx.size > 1 and np.unique(idx).size != idx.size:
            keep = _last_per_key(idx)
            idx, mid = idx[keep], mid[keep]
        r = self._r
        r[:] = 0.0
        prev = self._last[idx]
        known = np.isfinite(prev)
        r[idx[known]] = mid[known] / prev[known] - 1.0
        self._last[idx] = mid
        F = self.W @ r
        if self._label is not None and self.rate:
            F = F - self.rate * ((label_ns - self._label) / NS_PER_SECOND / SECONDS_PER_YEAR) * self._sums
        self._label = label_ns
        self.seconds += 1
        coverage = float(self.W[0, np.isfinite(self._last)].sum())
        return F, coverage


def factor_returns_batch(label_ns: np.ndarray, idx: np.ndarray, mid: np.ndarray, weights: FactorWeights,
                         risk_free_rate: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All seconds at once: rows (label, ticker index, mid) sorted by label.

    Returns ``(labels, F, coverage)``: the distinct labels, the ``(T, K)`` factor returns and
    the coverage after each label -- what :class:`FactorReturnBuilder` gives when fed the same
    rows second by second (equal up to the order of summation). Memory grows with the rows,
    not with seconds x stocks: each row's return is taken against the same stock's previous
    row, and the weighted returns are summed per label.
    """
    label_ns = np.asarray(label_ns, dtype=np.int64)
    idx = np.asarray(idx, dtype=np.int64)
    mid = np.asarray(mid, dtype=np.float64)
    if not (label_ns.shape == idx.shape == mid.shape):
        raise ValueError("label_ns, idx and mid must have the same shape")
    if label_ns.size and np.any(np.diff(label_ns) < 0):
        raise ValueError("rows must be sorted by label")
    if idx.size and (idx.min() < 0 or idx.max() >= weights.size):
        raise ValueError("ticker index out of range")
    labels, t_index = np.unique(label_ns, return_inverse=True)
    T, N = labels.size, weights.size
    keep = _last_per_key(t_index * N + idx)  # a later row of the same stock and second wins
    t_index, idx, mid = t_index[keep], idx[keep], mid[keep]
    order = np.lexsort((t_index, idx))  # by stock, then time
    t_s, i_s, m_s = t_index[order], idx[order], mid[order]
    r = np.zeros(m_s.size)
    same = np.zeros(m_s.size, dtype=bool)
    same[1:] = i_s[1:] == i_s[:-1]
    r[same] = m_s[same] / m_s[np.flatnonzero(same) - 1] - 1.0
    W = np.ascontiguousarray(weights.matrix)
    K = W.shape[0]
    F = np.empty((T, K))
    for k in range(K):
        F[:, k] = np.bincount(t_s, weights=r * W[k, i_s], minlength=T)
    if risk_free_rate and T > 1:
        dt_years = np.diff(labels) / NS_PER_SECOND / SECONDS_PER_YEAR
        F[1:] -= risk_free_rate * dt_years[:, None] * W.sum(axis=1)[None, :]
    first = ~same
    coverage = np.cumsum(np.bincount(t_s[first], weights=W[0, i_s[first]], minlength=T))
    return labels, F, coverage
