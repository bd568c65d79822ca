"""The price-discovery shares of a small group in one compiled call (the per-step fast path).

:func:`elecflow.leadership.price_discovery_shares` is the reference: clear checks, numpy
calls, ~80 us for two or three markets, most of it per-call overhead of a dozen numpy
functions on 3 x 3 matrices. The rolling monitor computes the shares of every group at every
1-second step (for the per-regime averages), ~750,000 calls over the default day, so this
module computes the same quantities - psi from the SVD of alpha, the Hasbrouck shares over all
``K!`` orderings by Cholesky, the Lien-Shrestha factor from the eigendecomposition of the
correlation matrix, CS and ILS - inside one numba function (~3 us).

Same formulas, same order of operations where it matters (LAPACK's SVD and symmetric
eigensolver, as numpy uses; the Cholesky of a <= 6 x 6 matrix written out), so the results
agree with the reference to rounding (tested, 1e-12). Anything the reference would reject -
non-finite input, rank-deficient alpha or beta, an asymmetric or indefinite omega, alpha_perp
summing to zero - returns a status code, and :func:`small_shares` then calls the reference,
which raises its own, descriptive ``ValueError`` (or, on a borderline case, returns its
result): the fast path never decides an edge case differently.
"""

from __future__ import annotations

import itertools
import math

import numba as nb
import numpy as np

from elecflow.leadership.shares import price_discovery_shares

__all__ = ["small_shares", "MAX_MARKETS"]

MAX_MARKETS = 6  # K! orderings: 720 at K = 6
_OK = 0
_ORDERINGS = {k: np.array(list(itertools.permutations(range(k))), dtype=np.int64) for k in range(2, MAX_MARKETS + 1)}


@nb.njit(cache=True)
def _kernel(alpha, beta, omega, orderings, out):  # pragma: no cover - numba
    k = alpha.shape[0]
    for i in range(k):
        for j in range(k - 1):
            if not (np.isfinite(alpha[i, j]) and np.isfinite(beta[i, j])):
                return 1
        for j in range(k):
            if not np.isfinite(omega[i, j]):
                return 1
            if abs(omega[i, j] - omega[j, i]) > 1e-10 * abs(omega[j, i]):
                return 4
    u, sv, _ = np.linalg.svd(alpha)
    if sv[k - 2] <= 1e-12 * sv[0]:
        return 2
    _, svb, _ = np.linalg.svd(beta)
    if svb[k - 2] <= 1e-12 * svb[0]:
        return 2
    total = 0.0
    scale = 0.0
    for i in range(k):
        total += u[i, k - 1]
        scale += abs(u[i, k - 1])
    if abs(total) <= 1e-12 * scale:
        return 3
    psi = np.empty(k)
    for i in range(k):
        psi[i] = u[i, k - 1] / total
    sym = 0.5 * (omega + omega.T)
    denom = psi @ sym @ psi
    # Hasbrouck over every ordering: IS of the market in position j = (psi_perm' F)_j^2 / denom
    lo = np.full(k, np.inf)
    hi = np.full(k, -np.inf)
    perm = np.empty((k, k))
    chol = np.zeros((k, k))
    for o in range(orderings.shape[0]):
        order = orderings[o]
        for a in range(k):
            for b in range(k):
                perm[a, b] = sym[order[a], order[b]]
        for a in range(k):  # lower Cholesky factor, row by row
            for b in range(a + 1):
                acc = perm[a, b]
                for c in range(b):
                    acc -= chol[a, c] * chol[b, c]
                if a == b:
                    if acc <= 0.0:
                        return 4
                    chol[a, a] = math.sqrt(acc)
                else:
                    chol[a, b] = acc / chol[b, b]
        for b in range(k):  # loading of orthogonal innovation b
            acc = 0.0
            for a in range(b, k):
                acc += psi[order[a]] * chol[a, b]
            share = acc * acc / denom
            market = order[b]
            if share < lo[market]:
                lo[market] = share
            if share > hi[market]:
                hi[market] = share
    sd = np.sqrt(np.diag(sym))
    corr = sym / np.outer(sd, sd)
    eigval, eigvec = np.linalg.eigh(corr)
    if eigval[0] <= 0.0:
        return 4
    root = (eigvec * np.sqrt(eigval)) @ eigvec.T
    for j in range(k):
        acc = 0.0
        for i in range(k):
            acc += psi[i] * sd[i] * root[i, j]
        out[3, j] = acc * acc / denom
    n_zero = 0
    for j in range(k):
        out[0, j] = lo[j]
        out[1, j] = hi[j]
        out[2, j] = 0.5 * (lo[j] + hi[j])
        out[4, j] = psi[j]
        if psi[j] == 0.0:
            n_zero += 1
    lead_total = 0.0
    for j in range(k):
        if n_zero:
            out[5, j] = (1.0 if psi[j] == 0.0 else 0.0) / n_zero
        else:
            ratio = out[2, j] / psi[j]
            out[5, j] = ratio * ratio
            lead_total += out[5, j]
    if not n_zero:
        for j in range(k):
            out[5, j] /= lead_total
    return _OK


def small_shares(alpha, beta, omega) -> np.ndarray:
    """``6 x K`` array of (is_lower, is_upper, is_mid, mis, cs, ils) for ``2 <= K <= 6`` markets,
    equal to :func:`~elecflow.leadership.price_discovery_shares` with exact orderings; raises
    its ``ValueError`` on input it rejects."""
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    omega = np.ascontiguousarray(omega, dtype=np.float64)
    k = alpha.shape[0]
    if alpha.ndim == 2 and alpha.shape == beta.shape == (k, k - 1) and omega.shape == (k, k) and 2 <= k <= MAX_MARKETS:
        out = np.empty((6, k))
        if _kernel(alpha, beta, omega, _ORDERINGS[k], out) == _OK:
            return out
    ref = price_discovery_shares(alpha, beta, omega, exact_max_markets=MAX_MARKETS)
    return np.vstack([ref.is_lower, ref.is_upper, ref.is_midpoint, ref.mis, ref.cs, ref.ils])
