"""Numba kernels of the Johansen estimator: regressor rows, small dense linear algebra, and
the reduced-rank regression from moment matrices.

Everything here works on tiny matrices (``K <= ~10`` series, a few lags), where LAPACK's
per-call overhead (workspace queries, copies to Fortran order) costs more than the
arithmetic; hence hand-written Cholesky, triangular solves, a partial-pivoting LU for the
``r x r`` normalisation block and a symmetric eigensolver (Householder tridiagonalisation
and implicit QL, EISPACK's tred2/tql2). Temporaries are small separate allocations:
carving them from one shared buffer was measured slower (aliasing defeats LLVM's register
allocation). The same kernel serves the batch fit and the rolling step, so the two agree
by construction up to the rounding of the moments themselves.

Regressor row ``w`` of the equation with ``y_t`` (length ``2K + K k + 2``)::

    [ dy_t (K) | y_{t-1} - c (K) | dy_{t-1}, ..., dy_{t-k} (K k) | 1 | tau_t ]

``c`` is a level reference and ``tau_t = t - origin`` the working trend (any origin). Both
the constant and the trend are always carried; the solver takes what the deterministic
specification needs and maps the working coordinates back to statsmodels' (see
:mod:`elecflow.leadership.vecm`).

Packed result (row-major blocks, in this order): ``alpha`` (K x r), ``beta_full``
(p1 x r, the levels block then the inside terms), ``gamma_full`` (K x p2, the lags then the
outside terms), ``sigma_u`` (K x K), the K largest eigenvalues, ``llf``; with
``p1 = K + #inside`` and ``p2 = K k + #outside``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# Status codes of the solver (0 = success).
OK = 0
SINGULAR_SHORT_RUN = 1   # moments of the short-run regressors (lags, outside terms)
SINGULAR_S00 = 2         # residual moments of dy
SINGULAR_S11 = 3         # residual moments of the levels (and inside terms)
SINGULAR_NORMALISATION = 4  # top r x r block of beta
NON_FINITE_ROW = 5       # the rolling step got NaN/inf
NON_FINITE_RESULT = 6    # numerically degenerate sample (overflow, 0/0)

# A Cholesky pivot that keeps less than this fraction of its diagonal entry is treated as
# zero: the matrix is singular to working precision (e.g. a series that never moved).
PIVOT_RTOL = 1e-13


def packed_size(n_series: int, rank: int, p1: int, p2: int) -> int:
    return n_series * rank + p1 * rank + n_series * p2 + n_series * n_series + n_series + 1


@nb.njit(cache=True)
def fill_rows(levels, first, n_rows, k_ar_diff, shift, tau_first, out):  # pragma: no cover
    """Rows ``out[j]`` for the equations with ``y_t = levels[first + j]``, ``j < n_rows``."""
    n_series = levels.shape[1]
    width = out.shape[1]
    for j in range(n_rows):
        t = first + j
        for i in range(n_series):
            out[j, i] = levels[t, i] - levels[t - 1, i]
            out[j, n_series + i] = levels[t - 1, i] - shift[i]
        col = 2 * n_series
        for lag in range(1, k_ar_diff + 1):
            for i in range(n_series):
                out[j, col] = levels[t - lag, i] - levels[t - lag - 1, i]
                col += 1
        out[j, width - 2] = 1.0
        out[j, width - 1] = tau_first + j


@nb.njit(cache=True)
def cross_products(rows, mw):  # pragma: no cover - numba
    """``mw = rows' rows`` by plain accumulation (one summation order for the batch fit and
    the rolling rebuilds; no BLAS threads for a skinny product)."""
    n_rows, width = rows.shape
    for a in range(width):
        for b in range(width):
            mw[a, b] = 0.0
    for t in range(n_rows):
        for a in range(width):
            wa = rows[t, a]
            for b in range(a, width):
                mw[a, b] += wa * rows[t, b]
    for a in range(width):
        for b in range(a):
            mw[a, b] = mw[b, a]


# ----------------------------------------------------------------------------- linalg


@nb.njit(cache=True)
def _cholesky(a, n, out):  # pragma: no cover - numba
    """Lower Cholesky factor of ``a[:n, :n]`` into ``out``; False if not positive definite."""
    for j in range(n):
        s = a[j, j]
        for p in range(j):
            s -= out[j, p] * out[j, p]
        if not (s > PIVOT_RTOL * abs(a[j, j])) or not math.isfinite(s):
            return False
        d = math.sqrt(s)
        out[j, j] = d
        for i in range(j + 1, n):
            v = a[i, j]
            for p in range(j):
                v -= out[i, p] * out[j, p]
            out[i, j] = v / d
        for i in range(j):
            out[i, j] = 0.0
    return True


@nb.njit(cache=True)
def _forward(lower, n, b, ncol):  # pragma: no cover - numba
    """In place ``b[:n, :ncol] <- lower^{-1} b``."""
    for c in range(ncol):
        for i in range(n):
            v = b[i, c]
            for p in range(i):
                v -= lower[i, p] * b[p, c]
            b[i, c] = v / lower[i, i]


@nb.njit(cache=True)
def _backward_t(lower, n, b, ncol):  # pragma: no cover - numba
    """In place ``b[:n, :ncol] <- lower^{-T} b``."""
    for c in range(ncol):
        for i in range(n - 1, -1, -1):
            v = b[i, c]
            for p in range(i + 1, n):
                v -= lower[p, i] * b[p, c]
            b[i, c] = v / lower[i, i]


@nb.njit(cache=True)
def _symmetric_eigen(a, n, vec, d, e):  # pragma: no cover - numba
    """Eigen-decomposition of the symmetric ``a[:n, :n]`` (not modified): eigenvalues
    ascending in ``d``, eigenvectors in the columns of ``vec``; ``e`` is scratch (n).

    Householder tridiagonalisation and the implicit QL iteration (EISPACK tred2/tql2, as
    in the public-domain JAMA port). Measured against a cyclic Jacobi solver: equal up to
    4 x 4, 30-35% faster at 5 x 5 and 6 x 6 (the ``K = 5`` cases).
    """
    for i in range(n):
        for j in range(n):
            vec[i, j] = a[i, j]
    for j in range(n):
        d[j] = vec[n - 1, j]
    # tridiagonalise (tred2)
    for i in range(n - 1, 0, -1):
        scale = 0.0
        h = 0.0
        for k in range(i):
            scale += abs(d[k])
        if scale == 0.0:
            e[i] = d[i - 1]
            for j in range(i):
                d[j] = vec[i - 1, j]
                vec[i, j] = 0.0
                vec[j, i] = 0.0
        else:
            for k in range(i):
                d[k] /= scale
                h += d[k] * d[k]
            f = d[i - 1]
            g = math.sqrt(h)
            if f > 0.0:
                g = -g
            e[i] = scale * g
            h -= f * g
            d[i - 1] = f - g
            for j in range(i):
                e[j] = 0.0
            for j in range(i):
                f = d[j]
                vec[j, i] = f
                g = e[j] + vec[j, j] * f
                for k in range(j + 1, i):
                    g += vec[k, j] * d[k]
                    e[k] += vec[k, j] * f
                e[j] = g
            f = 0.0
            for j in range(i):
                e[j] /= h
                f += e[j] * d[j]
            hh = f / (h + h)
            for j in range(i):
                e[j] -= hh * d[j]
            for j in range(i):
                f = d[j]
                g = e[j]
                for k in range(j, i):
                    vec[k, j] -= f * e[k] + g * d[k]
                d[j] = vec[i - 1, j]
                vec[i, j] = 0.0
        d[i] = h
    for i in range(n - 1):
        vec[n - 1, i] = vec[i, i]
        vec[i, i] = 1.0
        h = d[i + 1]
        if h != 0.0:
            for k in range(i + 1):
                d[k] = vec[k, i + 1] / h
            for j in range(i + 1):
                g = 0.0
                for k in range(i + 1):
                    g += vec[k, i + 1] * vec[k, j]
                for k in range(i + 1):
                    vec[k, j] -= g * d[k]
        for k in range(i + 1):
            vec[k, i + 1] = 0.0
    for j in range(n):
        d[j] = vec[n - 1, j]
        vec[n - 1, j] = 0.0
    vec[n - 1, n - 1] = 1.0
    e[0] = 0.0
    # diagonalise the tridiagonal matrix (tql2)
    for i in range(1, n):
        e[i - 1] = e[i]
    e[n - 1] = 0.0
    f = 0.0
    tst1 = 0.0
    eps = 2.0 ** -52
    for l in range(n):
        tst1 = max(tst1, abs(d[l]) + abs(e[l]))
        m = l
        while m < n - 1:
            if abs(e[m]) <= eps * tst1:
                break
            m += 1
        if m > l:
            for _ in range(200):
                g = d[l]
                p = (d[l + 1] - g) / (2.0 * e[l])
                r = math.hypot(p, 1.0)
                if p < 0:
                    r = -r
                d[l] = e[l] / (p + r)
                d[l + 1] = e[l] * (p + r)
                dl1 = d[l + 1]
                h = g - d[l]
                for i in range(l + 2, n):
                    d[i] -= h
                f += h
                p = d[m]
                c = 1.0
                c2 = c
                c3 = c
                el1 = e[l + 1]
                s = 0.0
                s2 = 0.0
                for i in range(m - 1, l - 1, -1):
                    c3 = c2
                    c2 = c
                    s2 = s
                    g = c * e[i]
                    h = c * p
                    r = math.hypot(p, e[i])
                    e[i + 1] = s * r
                    s = e[i] / r
                    c = p / r
                    p = c * d[i] - s * g
                    d[i + 1] = h + s * (c * g + s * d[i])
                    for k in range(n):
                        h = vec[k, i + 1]
                        vec[k, i + 1] = s * vec[k, i] + c * h
                        vec[k, i] = c * vec[k, i] - s * h
                p = -s * s2 * c3 * el1 * e[l] / dl1
                e[l] = s * p
                d[l] = c * p
                if abs(e[l]) <= eps * tst1:
                    break
        d[l] = d[l] + f
        e[l] = 0.0


@nb.njit(cache=True)
def _right_solve(top, r, b, nrow, lu, perm, x):  # pragma: no cover - numba
    """In place ``b[:nrow, :r] <- b top^{-1}`` (partial pivoting); False if singular.
    ``lu`` (r x r), ``perm`` (r, int) and ``x`` (r) are scratch."""
    # LU of top' (so that b top^{-1} = (top'^{-1} b')') on a copy
    for i in range(r):
        perm[i] = i
        for j in range(r):
            lu[i, j] = top[j, i]
    scale = 0.0
    for i in range(r):
        for j in range(r):
            scale = max(scale, abs(lu[i, j]))
    for col in range(r):
        piv = col
        for i in range(col + 1, r):
            if abs(lu[i, col]) > abs(lu[piv, col]):
                piv = i
        if not (abs(lu[piv, col]) > 1e-14 * scale):
            return False
        if piv != col:
            for j in range(r):
                tmp = lu[col, j]
                lu[col, j] = lu[piv, j]
                lu[piv, j] = tmp
            tmpi = perm[col]
            perm[col] = perm[piv]
            perm[piv] = tmpi
        for i in range(col + 1, r):
            f = lu[i, col] / lu[col, col]
            lu[i, col] = f
            for j in range(col + 1, r):
                lu[i, j] -= f * lu[col, j]
    for row in range(nrow):
        # solve top' x = b[row]' : P top' = L U
        for i in range(r):
            x[i] = b[row, perm[i]]
        for i in range(r):
            for p in range(i):
                x[i] -= lu[i, p] * x[p]
        for i in range(r - 1, -1, -1):
            for p in range(i + 1, r):
                x[i] -= lu[i, p] * x[p]
            x[i] /= lu[i, i]
        for i in range(r):
            b[row, i] = x[i]
    return True


# ----------------------------------------------------------------------------- solver


@nb.njit(cache=True)
def johansen_from_moments(mw, nobs, n_series, k_ar_diff, rank, co, ci, lo, li, shift,
                          trend_offset, trend_scale, out):  # pragma: no cover - numba
    """Johansen ML estimate from ``mw = sum_t w_t w_t'``; packed into ``out``.

    ``trend_offset``: statsmodels' outside trend is ``tau + trend_offset``; the working
    trend is ``tau / trend_scale``. Returns a status code (``OK`` = 0).
    """
    K = n_series
    r = rank
    i_one = mw.shape[0] - 2
    i_tau = mw.shape[0] - 1
    n_lag = K * k_ar_diff
    p1 = K + ci + li
    p2 = n_lag + co + lo
    n01 = K + p1
    q = n01 + p2
    h = trend_scale
    shift_level = ci == 1 or co == 1
    inside_offset = trend_offset - 1.0  # the inside trend is that of t - 1

    # --- working regressors z_i = a_i w[src_i] + b_i w[one] (at most two entries of w)
    src = np.empty(q, dtype=np.int64)
    order = np.empty(p1, dtype=np.int64)
    perm = np.empty(r, dtype=np.int64)
    ca = np.ones(q)
    cb = np.zeros(q)
    for i in range(K):
        src[i] = i                                   # dy_t
        src[K + i] = K + i                           # y_{t-1} - c
        if not shift_level:
            cb[K + i] = shift[i]                     # raw levels: no constant absorbs c
    pos = K + K
    if ci == 1:
        src[pos] = i_one
        pos += 1
    if li == 1:
        src[pos] = i_tau
        ca[pos] = 1.0 / h
        if not shift_level:
            cb[pos] = inside_offset / h
        pos += 1
    for j in range(n_lag):
        src[pos + j] = 2 * K + j
    pos += n_lag
    if co == 1:
        src[pos] = i_one
        pos += 1
    if lo == 1:
        src[pos] = i_tau
        ca[pos] = 1.0 / h
        if co == 0:
            cb[pos] = trend_offset / h
    mz = np.empty((q, q))
    for i in range(q):
        si = src[i]
        for j in range(i + 1):
            sj = src[j]
            v = ca[i] * ca[j] * mw[si, sj]
            if cb[j] != 0.0:
                v += ca[i] * cb[j] * mw[si, i_one]
            if cb[i] != 0.0:
                v += cb[i] * ca[j] * mw[i_one, sj]
                if cb[j] != 0.0:
                    v += cb[i] * cb[j] * mw[i_one, i_one]
            mz[i, j] = v
            mz[j, i] = v

    # --- partial out the short-run regressors: S = (M_aa - Y'Y) / T, Y = L22^{-1} M_2a
    l22 = np.empty((p2, p2))
    y2 = np.empty((p2, n01))
    s = np.empty((n01, n01))
    if p2 > 0:
        m22 = mz[n01:, n01:]
        if not _cholesky(m22, p2, l22):
            return SINGULAR_SHORT_RUN
        for i in range(p2):
            for j in range(n01):
                y2[i, j] = mz[n01 + i, j]
        _forward(l22, p2, y2, n01)
    for i in range(n01):
        for j in range(i + 1):
            v = mz[i, j]
            for p in range(p2):
                v -= y2[p, i] * y2[p, j]
            v /= nobs
            s[i, j] = v
            s[j, i] = v

    # --- S10 S00^{-1} S01 v = lambda S11 v via C = L1^{-1} S10 L0^{-T} (L0^{-1} S01 L1^{-T})
    l0 = np.empty((K, K))
    if not _cholesky(s, K, l0):
        return SINGULAR_S00
    s11 = np.empty((p1, p1))
    for i in range(p1):
        for j in range(p1):
            s11[i, j] = s[K + i, K + j]
    l1 = np.empty((p1, p1))
    if not _cholesky(s11, p1, l1):
        return SINGULAR_S11
    g = np.empty((K, p1))
    for i in range(K):
        for j in range(p1):
            g[i, j] = s[i, K + j]
    _forward(l0, K, g, p1)                 # L0^{-1} S01
    hm = np.empty((p1, K))
    for i in range(p1):
        for j in range(K):
            hm[i, j] = g[j, i]
    _forward(l1, p1, hm, K)                # L1^{-1} S10 L0^{-T}
    cmat = np.empty((p1, p1))
    for i in range(p1):
        for j in range(i + 1):
            v = 0.0
            for p in range(K):
                v += hm[i, p] * hm[j, p]
            cmat[i, j] = v
            cmat[j, i] = v
    vec = np.empty((p1, p1))
    lam_all = np.empty(p1)
    scratch = np.empty(p1)
    _symmetric_eigen(cmat, p1, vec, lam_all, scratch)
    # descending order of the eigenvalues (insertion sort: p1 is tiny)
    for i in range(p1):
        j = i
        while j > 0 and lam_all[order[j - 1]] < lam_all[i]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = i
    beta = np.empty((p1, r))
    for j in range(r):
        for i in range(p1):
            beta[i, j] = vec[i, order[j]]
    _backward_t(l1, p1, beta, r)           # raw eigenvectors of the pencil
    top = np.empty((r, r))
    lu = np.empty((r, r))
    xr = np.empty(r)
    for i in range(r):
        for j in range(r):
            top[i, j] = beta[i, j]
    if not _right_solve(top, r, beta, p1, lu, perm, xr):  # identity top block
        return SINGULAR_NORMALISATION

    # --- alpha = S01 beta B^{-1}, B = beta' S11 beta; Sigma = S00 - Q'Q, Q = Lb^{-1} (S01 beta)'
    s11b = np.empty((p1, r))
    for p in range(p1):
        for j in range(r):
            v = 0.0
            for c in range(p1):
                v += s11[p, c] * beta[c, j]
            s11b[p, j] = v
    bmat = np.empty((r, r))
    for i in range(r):
        for j in range(i + 1):
            v = 0.0
            for p in range(p1):
                v += beta[p, i] * s11b[p, j]
            bmat[i, j] = v
            bmat[j, i] = v
    lb = np.empty((r, r))
    if not _cholesky(bmat, r, lb):
        return SINGULAR_S11
    s01b_t = np.empty((r, K))       # (S01 beta)'
    for i in range(r):
        for j in range(K):
            v = 0.0
            for p in range(p1):
                v += s[j, K + p] * beta[p, i]
            s01b_t[i, j] = v
    alpha_t = np.empty((r, K))
    for i in range(r):
        for j in range(K):
            alpha_t[i, j] = s01b_t[i, j]
    _forward(lb, r, alpha_t, K)            # Q = Lb^{-1} (S01 beta)'
    sigma = np.empty((K, K))
    for i in range(K):
        for j in range(i + 1):
            v = s[i, j]
            for p in range(r):
                v -= alpha_t[p, i] * alpha_t[p, j]
            sigma[i, j] = v
            sigma[j, i] = v
    _backward_t(lb, r, alpha_t, K)         # B^{-1} (S01 beta)' = alpha'

    # --- [Gamma, mu]' = M22^{-1} (M_20 - M_21 beta alpha')  (working coordinates)
    gam_t = np.empty((p2, K))
    for i in range(p2):
        for j in range(K):
            v = mz[n01 + i, j]
            for p in range(p1):
                bp_alpha = 0.0
                for c in range(r):
                    bp_alpha += beta[p, c] * alpha_t[c, j]
                v -= mz[n01 + i, K + p] * bp_alpha
            gam_t[i, j] = v
    if p2 > 0:
        _forward(l22, p2, gam_t, K)
        _backward_t(l22, p2, gam_t, K)

    # --- back to statsmodels' coordinates (z_orig = A z_work; see vecm.py)
    #     beta_orig = A11^{-T} beta_work; Gamma_orig = (Gamma_work - alpha beta_orig' A12) A22^{-1}
    if li == 1:
        row_li = K + ci
        for j in range(r):
            beta[row_li, j] /= h
    if ci == 1:
        for j in range(r):
            v = beta[K, j]
            for i in range(K):
                v -= shift[i] * beta[i, j]
            if li == 1:
                v -= inside_offset * beta[K + 1, j]
            beta[K, j] = v
    if lo == 1:
        row_lo = n_lag + co
        for j in range(K):
            gam_t[row_lo, j] /= h
    if co == 1:
        row_co = n_lag
        for j in range(K):
            v = gam_t[row_co, j]
            if lo == 1:
                v -= trend_offset * gam_t[n_lag + 1, j]
            gam_t[row_co, j] = v
        if ci == 0:
            # shifts of the levels (and of an inside trend) land on the outside constant
            for c in range(r):
                shifted = 0.0
                for i in range(K):
                    shifted += shift[i] * beta[i, c]
                if li == 1:
                    shifted += inside_offset * beta[K, c]
                for j in range(K):
                    gam_t[row_co, j] -= alpha_t[c, j] * shifted

    # --- llf (Lütkepohl 2005, 7.2.20) and packing
    logdet00 = 0.0
    for i in range(K):
        logdet00 += 2.0 * math.log(l0[i, i])
    sum_log = 0.0
    for i in range(r):
        sum_log += math.log1p(-lam_all[order[i]])
    llf = -0.5 * nobs * (K * math.log(2.0 * math.pi) + logdet00 + sum_log + K)
    o = 0
    for i in range(K):
        for j in range(r):
            out[o] = alpha_t[j, i]
            o += 1
    for i in range(p1):
        for j in range(r):
            out[o] = beta[i, j]
            o += 1
    for i in range(K):
        for j in range(p2):
            out[o] = gam_t[j, i]
            o += 1
    for i in range(K):
        for j in range(K):
            out[o] = sigma[i, j]
            o += 1
    for i in range(K):
        out[o] = lam_all[order[i]] if i < p1 else 0.0
        o += 1
    out[o] = llf
    total = 0.0
    for i in range(o + 1):
        total += out[i]
    if not math.isfinite(total):
        return NON_FINITE_RESULT
    return OK
