"""Numba kernels of the Johansen estimator: regressor rows, small dense linear algebra, and
the reduced-rank regression from moment matrices.

Everything here works on tiny matrices (``K <= ~10`` series, a few lags), where LAPACK's
per-call overhead (workspace queries, copies to Fortran order) costs more than the
arithmetic; hence hand-written Cholesky, triangular solves, Gaussian elimination with
partial pivoting for the ``r x r`` normalisation block and a cyclic Jacobi eigensolver for
the ``K x K`` canonical-correlation matrix. The solver allocates nothing: its temporaries
are slabs of a caller-owned workspace (the rolling estimator keeps one for its lifetime),
indexed in full rather than through views, since at these sizes an allocation (~30 ns) or
a view's reference counting (~10 ns) is a noticeable share of a whole solve (~0.5 us at
``K = 2``). The same kernel serves the batch fit and the rolling step, so the two agree by
construction up to the rounding of the moments themselves.

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

Editing this module: the compiled steps of :mod:`elecflow.leadership.rolling` call these
kernels, and numba's on-disk cache (``cache=True``) keys each function on its *own* file
only; after changing a kernel's signature or the workspace layout here, delete the cache
(``find elecflow -name '*.nbi' -delete -o -name '*.nbc' -delete``) or touch rolling.py, or a
stale compiled step may run against the new layout.
"""

from __future__ import annotations

import math

import numba as nb

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

# Jacobi stops when the off-diagonal entries' squares sum to at most this fraction of the
# diagonal's (relative size 1e-17, below double rounding); the sweep cap is only a guard
# against non-finite input (a 10 x 10 matrix converges in < 10 sweeps). Beyond
# |theta| = JACOBI_SMALL_ANGLE_THETA a rotation is t = 1 / (2 theta), c = 1 exactly in doubles.
JACOBI_RTOL_SQ = 1e-34
JACOBI_MAX_SWEEPS = 60
JACOBI_SMALL_ANGLE_THETA = 1e8


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


# ----------------------------------------------------------------------------- workspace

# The solver's scratch matrices are slabs of one 3-d float array ``ws``, each used from its
# top-left corner, and always indexed in full (``ws[L0, i, j]``): a view of a slab would
# cost an atomic reference-count increment and decrement (~10 ns a view, ~0.4 us a solve).
# MZ: moments of the working regressors; L22, Y2: Cholesky factor of their short-run block
# and L22^{-1} M_2a; S: the partialled moments (blocks S00, S01, S11); L0, L1: Cholesky
# factors of S00 and S11; G = L1^{-1} S10 L0^{-T} and D = G'G; VEC: D's eigenvectors U;
# A = L0 U; PI_T = Pi'; GAM_T = [Gamma, mu]'; LU: the normalisation's elimination; ALPHA,
# BETA, SIGMA: the estimates; VECTORS: rows CA, CB (coefficients of the working regressors)
# and EIG (D's eigenvalues).
MZ, L22, Y2, S, L0, L1, G, D, VEC, A, PI_T, GAM_T, LU, ALPHA, BETA, SIGMA, VECTORS = range(17)
WORKSPACE_SLABS = 17
CA, CB, EIG = range(3)
# Rows of the int scratch ``iws``: source column of each working regressor, eigenvalue order.
SRC, ORDER = range(2)
INT_SCRATCH_ROWS = 2


def workspace_shapes(n_series: int, k_ar_diff: int, n_inside: int, n_outside: int,
                     ) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """Shapes of the float and int scratch of :func:`johansen_from_moments`: slabs of side
    ``q``, the number of working regressors (at least 3, for the slab of vectors)."""
    q = 2 * n_series + n_inside + n_series * k_ar_diff + n_outside
    side = max(q, 3)
    return (WORKSPACE_SLABS, side, side), (INT_SCRATCH_ROWS, q)


# ----------------------------------------------------------------------------- linalg
# Each works on slabs of ``ws``, named by index.


@nb.njit(cache=True)
def _cholesky(ws, a, start, n, out):  # pragma: no cover - numba
    """Lower Cholesky factor of the diagonal block ``ws[a, start:start + n, start:start + n]``
    into ``ws[out, :n, :n]``; False if not positive definite."""
    for j in range(n):
        ajj = ws[a, start + j, start + j]
        s = ajj
        for p in range(j):
            s -= ws[out, j, p] * ws[out, j, p]
        if not (s > PIVOT_RTOL * abs(ajj)) or not math.isfinite(s):
            return False
        d = math.sqrt(s)
        ws[out, j, j] = d
        inv_d = 1.0 / d
        for i in range(j + 1, n):
            v = ws[a, start + i, start + j]
            for p in range(j):
                v -= ws[out, i, p] * ws[out, j, p]
            ws[out, i, j] = v * inv_d
        for i in range(j):
            ws[out, i, j] = 0.0
    return True


@nb.njit(cache=True)
def _forward(ws, lower, n, b, ncol):  # pragma: no cover - numba
    """In place ``b[:n, :ncol] <- lower^{-1} b`` (slabs ``lower`` and ``b``)."""
    for i in range(n):
        inv_diag = 1.0 / ws[lower, i, i]
        for c in range(ncol):
            v = ws[b, i, c]
            for p in range(i):
                v -= ws[lower, i, p] * ws[b, p, c]
            ws[b, i, c] = v * inv_diag


@nb.njit(cache=True)
def _backward_t(ws, lower, n, b, ncol):  # pragma: no cover - numba
    """In place ``b[:n, :ncol] <- lower^{-T} b`` (slabs ``lower`` and ``b``)."""
    for i in range(n - 1, -1, -1):
        inv_diag = 1.0 / ws[lower, i, i]
        for c in range(ncol):
            v = ws[b, i, c]
            for p in range(i + 1, n):
                v -= ws[lower, p, i] * ws[b, p, c]
            ws[b, i, c] = v * inv_diag


@nb.njit(cache=True)
def _jacobi_eigen(ws, a, n, vec):  # pragma: no cover - numba
    """Eigen-decomposition of the symmetric ``a[:n, :n]`` (upper triangle read): the
    eigenvalues end on its diagonal (unordered; the strict upper triangle is destroyed),
    the eigenvectors in the columns of ``vec`` (slabs ``a`` and ``vec``).

    Cyclic Jacobi (Rutishauser's rotation formulas, as in Numerical Recipes' ``jacobi``),
    sweeping until the off-diagonal part is below the rounding of the matrix; eigenvectors
    orthogonal to working precision. At the solver's ``K x K`` sizes the cost is the
    dependent divisions and square roots of ~1.5 n^2 rotations; measured against Householder
    tridiagonalisation plus implicit QL (EISPACK tred2/tql2, which this replaced): 3x faster
    at 2 x 2, 1.8x at 3 x 3, 1.3x at 5 x 5.
    """
    diag_sq = 0.0
    for i in range(n):
        diag_sq += ws[a, i, i] * ws[a, i, i]
        for j in range(n):
            ws[vec, i, j] = 0.0
        ws[vec, i, i] = 1.0
    # a rotation by an entry this small moves nothing representable: skip it
    negligible = 1e-20 * math.sqrt(diag_sq)
    for _ in range(JACOBI_MAX_SWEEPS):
        off_sq = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                off_sq += ws[a, p, q] * ws[a, p, q]
        if not off_sq > JACOBI_RTOL_SQ * diag_sq:
            return
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = ws[a, p, q]
                if not abs(apq) > negligible:
                    continue
                # t = tan of the smaller angle that zeroes a[p, q]
                theta = 0.5 * (ws[a, q, q] - ws[a, p, p]) / apq
                if abs(theta) > JACOBI_SMALL_ANGLE_THETA:
                    # the late sweeps' tiny angles: t = 1 / (2 theta) and c = 1 to within
                    # 1 / (4 theta^2) < 3e-17, i.e. exactly in doubles, without the two
                    # dependent square roots and divisions (~10% of the solve at K = 5)
                    t = 0.5 / theta
                    c = 1.0
                    s = t
                else:
                    t = 1.0 / (abs(theta) + math.sqrt(theta * theta + 1.0))
                    if theta < 0.0:
                        t = -t
                    c = 1.0 / math.sqrt(t * t + 1.0)
                    s = t * c
                ws[a, p, p] -= t * apq
                ws[a, q, q] += t * apq
                ws[a, p, q] = 0.0
                for k in range(p):
                    g = ws[a, k, p]
                    h = ws[a, k, q]
                    ws[a, k, p] = c * g - s * h
                    ws[a, k, q] = s * g + c * h
                for k in range(p + 1, q):
                    g = ws[a, p, k]
                    h = ws[a, k, q]
                    ws[a, p, k] = c * g - s * h
                    ws[a, k, q] = s * g + c * h
                for k in range(q + 1, n):
                    g = ws[a, p, k]
                    h = ws[a, q, k]
                    ws[a, p, k] = c * g - s * h
                    ws[a, q, k] = s * g + c * h
                for k in range(n):
                    g = ws[vec, k, p]
                    h = ws[vec, k, q]
                    ws[vec, k, p] = c * g - s * h
                    ws[vec, k, q] = s * g + c * h


@nb.njit(cache=True)
def _normalise(ws, b, r, nrow, work):  # pragma: no cover - numba
    """In place ``b[:nrow, :r] <- b T^{-1}``, ``T = b[:r, :r]`` (so the top block becomes the
    identity); False if ``T`` is singular. Gaussian elimination with partial pivoting on
    ``[T' | b']`` in slab ``work`` (``r x (r + nrow)``): the row operations of an LU of ``T'``
    applied to all right-hand sides at once, so no permutation needs keeping."""
    width = r + nrow
    for i in range(r):
        for j in range(r):
            ws[work, i, j] = ws[b, j, i]
        for j in range(nrow):
            ws[work, i, r + j] = ws[b, j, i]
    scale = 0.0
    for i in range(r):
        for j in range(r):
            scale = max(scale, abs(ws[work, i, j]))
    for col in range(r):
        piv = col
        for i in range(col + 1, r):
            if abs(ws[work, i, col]) > abs(ws[work, piv, col]):
                piv = i
        if not (abs(ws[work, piv, col]) > 1e-14 * scale):
            return False
        if piv != col:
            for j in range(col, width):
                tmp = ws[work, col, j]
                ws[work, col, j] = ws[work, piv, j]
                ws[work, piv, j] = tmp
        for i in range(col + 1, r):
            f = ws[work, i, col] / ws[work, col, col]
            for j in range(col + 1, width):
                ws[work, i, j] -= f * ws[work, col, j]
    for i in range(r - 1, -1, -1):
        inv_diag = 1.0 / ws[work, i, i]
        for row in range(nrow):
            v = ws[work, i, r + row]
            for p in range(i + 1, r):
                v -= ws[work, i, p] * ws[b, row, p]
            ws[b, row, i] = v * inv_diag
    return True


# ----------------------------------------------------------------------------- solver


@nb.njit(cache=True)
def johansen_from_moments(mw, nobs, n_series, k_ar_diff, rank, co, ci, lo, li, shift,
                          trend_offset, trend_scale, out, ws, iws):  # pragma: no cover - numba
    """Johansen ML estimate from ``mw = sum_t w_t w_t'``; packed into ``out``.

    ``trend_offset``: statsmodels' outside trend is ``tau + trend_offset``; the working
    trend is ``tau / trend_scale``. ``ws`` and ``iws`` are float and int scratch, at least
    of the shapes :func:`workspace_shapes` gives (caller-owned: no allocation per call).
    Returns a status code (``OK`` = 0).

    The canonical correlations come from the ``K x K`` matrix ``D = G'G``,
    ``G = L1^{-1} S10 L0^{-T}`` (``S00 = L0 L0'``, ``S11 = L1 L1'``): it has the nonzero
    eigenvalues of the ``p1 x p1`` ``G G'`` of the textbook pencil, and for its eigenvectors
    ``u_j`` the pencil's (unnormalised) are ``b_j = L1^{-T} G u_j``. With ``U = [u_1..u_r]``
    and ``A = L0 U`` the rest follows without further solves: ``b' S11 b = Lambda_r`` and
    ``S01 b = A Lambda_r``, so ``alpha b' = A b'``, i.e. ``alpha = A T'`` for the normalised
    ``beta = b T^{-1}`` (``T`` = top ``r x r`` block of ``b``), and
    ``Sigma_u = S00 - A Lambda_r A'``.
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
    if (ws.shape[0] < WORKSPACE_SLABS or min(ws.shape[1], ws.shape[2]) < max(q, 3)
            or iws.shape[0] < INT_SCRATCH_ROWS or iws.shape[1] < q):
        raise ValueError("johansen_from_moments: workspace too small")

    # --- working regressors z_i = a_i w[src_i] + b_i w[one] (at most two entries of w)
    for i in range(q):
        ws[VECTORS, CA, i] = 1.0
        ws[VECTORS, CB, i] = 0.0
    for i in range(K):
        iws[SRC, i] = i                              # dy_t
        iws[SRC, K + i] = K + i                      # y_{t-1} - c
        if not shift_level:
            ws[VECTORS, CB, K + i] = shift[i]        # raw levels: no constant absorbs c
    pos = K + K
    if ci == 1:
        iws[SRC, pos] = i_one
        pos += 1
    if li == 1:
        iws[SRC, pos] = i_tau
        ws[VECTORS, CA, pos] = 1.0 / h
        if not shift_level:
            ws[VECTORS, CB, pos] = inside_offset / h
        pos += 1
    for j in range(n_lag):
        iws[SRC, pos + j] = 2 * K + j
    pos += n_lag
    if co == 1:
        iws[SRC, pos] = i_one
        pos += 1
    if lo == 1:
        iws[SRC, pos] = i_tau
        ws[VECTORS, CA, pos] = 1.0 / h
        if co == 0:
            ws[VECTORS, CB, pos] = trend_offset / h
    for i in range(q):
        si = iws[SRC, i]
        ai = ws[VECTORS, CA, i]
        bi = ws[VECTORS, CB, i]
        for j in range(i + 1):
            sj = iws[SRC, j]
            aj = ws[VECTORS, CA, j]
            bj = ws[VECTORS, CB, j]
            v = ai * aj * mw[si, sj]
            if bj != 0.0:
                v += ai * bj * mw[si, i_one]
            if bi != 0.0:
                v += bi * aj * mw[i_one, sj]
                if bj != 0.0:
                    v += bi * bj * mw[i_one, i_one]
            ws[MZ, i, j] = v
            ws[MZ, j, i] = v

    # --- partial out the short-run regressors: S = (M_aa - Y'Y) / T, Y = L22^{-1} M_2a
    if p2 > 0:
        if not _cholesky(ws, MZ, n01, p2, L22):
            return SINGULAR_SHORT_RUN
        for i in range(p2):
            for j in range(n01):
                ws[Y2, i, j] = ws[MZ, n01 + i, j]
        _forward(ws, L22, p2, Y2, n01)
    inv_nobs = 1.0 / nobs
    for i in range(n01):
        for j in range(i + 1):
            v = ws[MZ, i, j]
            for p in range(p2):
                v -= ws[Y2, p, i] * ws[Y2, p, j]
            v *= inv_nobs
            ws[S, i, j] = v
            ws[S, j, i] = v

    # --- canonical correlations: D = G'G, G = L1^{-1} S10 L0^{-T}
    if not _cholesky(ws, S, 0, K, L0):
        return SINGULAR_S00
    if not _cholesky(ws, S, K, p1, L1):
        return SINGULAR_S11
    for j in range(K):                     # G <- S10 L0^{-T}, column by column
        inv_diag = 1.0 / ws[L0, j, j]
        for i in range(p1):
            v = ws[S, K + i, j]
            for p in range(j):
                v -= ws[G, i, p] * ws[L0, j, p]
            ws[G, i, j] = v * inv_diag
    _forward(ws, L1, p1, G, K)             # G <- L1^{-1} S10 L0^{-T}
    for i in range(K):
        for j in range(i, K):
            v = 0.0
            for p in range(p1):
                v += ws[G, p, i] * ws[G, p, j]
            ws[D, i, j] = v
    _jacobi_eigen(ws, D, K, VEC)
    for i in range(K):
        ws[VECTORS, EIG, i] = ws[D, i, i]
    # descending order of the eigenvalues (insertion sort: K is tiny)
    for i in range(K):
        j = i
        while j > 0 and ws[VECTORS, EIG, iws[ORDER, j - 1]] < ws[VECTORS, EIG, i]:
            iws[ORDER, j] = iws[ORDER, j - 1]
            j -= 1
        iws[ORDER, j] = i

    # --- b = L1^{-T} G U (into beta), A = L0 U; alpha = A T', Pi' = b A', Sigma = S00 - A Lambda A'
    for i in range(p1):
        for j in range(r):
            col = iws[ORDER, j]
            v = 0.0
            for p in range(K):
                v += ws[G, i, p] * ws[VEC, p, col]
            ws[BETA, i, j] = v
    _backward_t(ws, L1, p1, BETA, r)
    for i in range(K):
        for j in range(r):
            col = iws[ORDER, j]
            v = 0.0
            for p in range(i + 1):
                v += ws[L0, i, p] * ws[VEC, p, col]
            ws[A, i, j] = v
    for i in range(K):
        for j in range(r):
            v = 0.0
            for c in range(r):
                v += ws[A, i, c] * ws[BETA, j, c]
            ws[ALPHA, i, j] = v
    for i in range(p1):
        for j in range(K):
            v = 0.0
            for c in range(r):
                v += ws[BETA, i, c] * ws[A, j, c]
            ws[PI_T, i, j] = v
    for i in range(K):
        for j in range(i + 1):
            v = ws[S, i, j]
            for c in range(r):
                v -= ws[A, i, c] * ws[VECTORS, EIG, iws[ORDER, c]] * ws[A, j, c]
            ws[SIGMA, i, j] = v
            ws[SIGMA, j, i] = v
    if not _normalise(ws, BETA, r, p1, LU):  # identity top block
        return SINGULAR_NORMALISATION

    # --- [Gamma, mu]' = M22^{-1} (M_20 - M_21 Pi') = L22^{-T} (Y_0 - Y_1 Pi') (working coords)
    for i in range(p2):
        for j in range(K):
            v = ws[Y2, i, j]
            for p in range(p1):
                v -= ws[Y2, i, K + p] * ws[PI_T, p, j]
            ws[GAM_T, i, j] = v
    _backward_t(ws, L22, p2, GAM_T, K)

    # --- back to statsmodels' coordinates (z_orig = A z_work; see vecm.py)
    #     beta_orig = A11^{-T} beta_work; Gamma_orig = (Gamma_work - alpha beta_orig' A12) A22^{-1}
    if li == 1:
        row_li = K + ci
        for j in range(r):
            ws[BETA, row_li, j] /= h
    if ci == 1:
        for j in range(r):
            v = ws[BETA, K, j]
            for i in range(K):
                v -= shift[i] * ws[BETA, i, j]
            if li == 1:
                v -= inside_offset * ws[BETA, K + 1, j]
            ws[BETA, K, j] = v
    if lo == 1:
        row_lo = n_lag + co
        for j in range(K):
            ws[GAM_T, row_lo, j] /= h
    if co == 1:
        row_co = n_lag
        for j in range(K):
            v = ws[GAM_T, row_co, j]
            if lo == 1:
                v -= trend_offset * ws[GAM_T, n_lag + 1, j]
            ws[GAM_T, row_co, j] = v
        if ci == 0:
            # shifts of the levels (and of an inside trend) land on the outside constant
            for c in range(r):
                shifted = 0.0
                for i in range(K):
                    shifted += shift[i] * ws[BETA, i, c]
                if li == 1:
                    shifted += inside_offset * ws[BETA, K, c]
                for j in range(K):
                    ws[GAM_T, row_co, j] -= ws[ALPHA, j, c] * shifted

    # --- llf (Lütkepohl 2005, 7.2.20) and packing
    # log(det S00 prod_{i<=r} (1 - lambda_i)) as one log of the product (a log costs
    # ~20 ns); as a sum of logs only if the product leaves the normal range
    det = 1.0
    for i in range(K):
        det *= ws[L0, i, i] * ws[L0, i, i]
    for i in range(r):
        det *= 1.0 - ws[VECTORS, EIG, iws[ORDER, i]]
    if 1e-300 < det < 1e300:
        log_det = math.log(det)
    else:
        log_det = 0.0
        for i in range(K):
            log_det += 2.0 * math.log(ws[L0, i, i])
        for i in range(r):
            log_det += math.log1p(-ws[VECTORS, EIG, iws[ORDER, i]])
    llf = -0.5 * nobs * (K * math.log(2.0 * math.pi) + log_det + K)
    o = 0
    for i in range(K):
        for j in range(r):
            out[o] = ws[ALPHA, i, j]
            o += 1
    for i in range(p1):
        for j in range(r):
            out[o] = ws[BETA, i, j]
            o += 1
    for i in range(K):
        for j in range(p2):
            out[o] = ws[GAM_T, j, i]
            o += 1
    for i in range(K):
        for j in range(K):
            out[o] = ws[SIGMA, i, j]
            o += 1
    for i in range(K):
        out[o] = ws[VECTORS, EIG, iws[ORDER, i]]
        o += 1
    out[o] = llf
    finite = True
    for i in range(o + 1):  # no serial chain of additions, no overflow of a finite sum
        finite &= math.isfinite(out[i])
    if not finite:
        return NON_FINITE_RESULT
    return OK
