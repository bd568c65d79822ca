"""The volatility smile as a Gaussian process in log-moneyness, with exact incremental updates.

Library layer: numpy/scipy/numba only, no I/O, no csp. Model, algebra, stability policy and
measured figures are in ``docs/smile.md``.

Model. Inputs ``x = k = log(K/F)`` of the out-of-the-money contracts, targets their implied
volatilities ``y``, heteroscedastic observation noise ``S = diag(sigma_IV^2)``, RBF kernel
``k(a, b) = s_f^2 exp(-(a - b)^2 / (2 l^2))`` and a *constant, non-zero* prior mean ``m``
(the IV level; the seed put a zero-mean prior on the IV level). With ``A = K + S = R^T R``
(``R`` upper triangular, the transposed Cholesky factor) and ``r = y - m``::

    alpha      = A^{-1} r                       (R^T v = r, R alpha = v)
    mean(x*)   = m + k*^T alpha
    var(x*)    = s_f^2 - || R^{-T} k* ||^2      (latent smile, observation noise excluded)
    log p(y)   = -v^T v / 2 - sum log R_kk - n log(2 pi) / 2

Incremental operations, each exact and O(n^2) (``n`` quotes):

* ``update(i, y=...)`` - a new target changes ``r`` only: ``alpha`` is re-solved with the
  current factor (two triangular solves, no accumulated error in ``alpha``).
* ``update(i, noise=...)`` - ``A`` changes by ``d e_i e_i^T``: a rank-one *update* of ``R``
  (Givens rotations) when the variance increases, a rank-one *downdate* (hyperbolic
  rotations, the mixed LINPACK form) when it decreases; rotations start at row ``i``.
* ``insert(x, y, noise)`` - a bordered Cholesky step (one triangular solve for the new
  column); the point is appended at the end of the internal order and its index returned.
* ``remove(i)`` - deleting row/column ``i``: the trailing block absorbs the removed row of
  ``R`` by a rank-one update (``R33'^T R33' = R33^T R33 + w w^T``, always well posed), then
  rows/columns close up.

Indices are positions in the internal order, with Python ``list`` semantics: ``insert``
appends and returns the new position, ``remove(i)`` shifts later positions down by one.

Stability. Every ``check_every`` incremental operations the normwise backward errors of the
factor (``||R^T R z - A z|| / (||A|| ||z||)`` on a fixed probe) and of the solve
(``||A alpha - r|| / (||A|| ||alpha|| + ||r||)``) are measured in O(n^2); above ``drift_tol``
the factor is recomputed from ``A`` (LAPACK). A downdate whose rotation would leave a
diagonal below ``sqrt(downdate_guard)`` of its old value (loss of positive definiteness or
of accuracy) is abandoned and the factor recomputed; if ``A`` itself is not numerically
positive definite a :class:`SmileGPError` is raised and the model is left as it was.
Optionally (``refactor_every``) the factor is recomputed on a fixed cadence. All
recomputations are counted.

Kernel hyperparameter changes (``set_hyperparameters``, ``refit_heuristics``,
``optimise_hyperparameters``) recompute the kernel and the factor, by design, counted in
``n_refits``. A change of the prior mean alone only re-solves ``alpha`` (O(n^2)).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from scipy import linalg, optimize

__all__ = [
    "SmileGP",
    "SmileGPError",
    "heuristic_hyperparameters",
    "rbf_kernel",
]

_LOG_2PI = math.log(2.0 * math.pi)


class SmileGPError(np.linalg.LinAlgError):
    """The noisy kernel matrix K + diag(noise) is not (numerically) positive definite."""


# --------------------------------------------------------------------------------------------
# numba kernels: the factor is stored as R (upper triangular, row-major, capacity x capacity);
# only the upper triangle of R[:n, :n] is ever read. K is the noise-free kernel, full storage.
# --------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def _kernel_fill(K, x, n, inv2l2, sf2):
    for i in range(n):
        K[i, i] = sf2
        xi = x[i]
        for j in range(i + 1, n):
            d = xi - x[j]
            v = sf2 * math.exp(-d * d * inv2l2)
            K[i, j] = v
            K[j, i] = v


@nb.njit(cache=True)
def _forward(R, n, start, v):
    """In place R^T v = b for rows >= start (v[:start] already solved, b[start:] in v[start:]
    already reduced by rows < start): row-oriented axpy on contiguous rows of R."""
    for k in range(start, n):
        vk = v[k] / R[k, k]
        v[k] = vk
        rr = R[k, k + 1:n]
        vv = v[k + 1:n]
        for j in range(n - k - 1):
            vv[j] -= vk * rr[j]


@nb.njit(cache=True, fastmath={"reassoc", "nsz", "contract"})
def _backward(R, n, v, alpha):
    """R alpha = v, row dot products (vectorised: summation order is free)."""
    for k in range(n - 1, -1, -1):
        rr = R[k, k + 1:n]
        aa = alpha[k + 1:n]
        s = 0.0
        for j in range(n - k - 1):
            s += rr[j] * aa[j]
        alpha[k] = (v[k] - s) / R[k, k]


@nb.njit(cache=True)
def _solve(R, n, r, v, alpha):
    """R^T v = r (forward), R alpha = v (backward)."""
    for k in range(n):
        v[k] = r[k]
    _forward(R, n, 0, v)
    _backward(R, n, v, alpha)


@nb.njit(cache=True)
def _resolve_from(R, n, i, r, v, alpha):
    """v and alpha after a change confined to rows/columns >= i of R and entries >= i of r:
    v[:i] is unchanged; v[i:] is recomputed with exactly the operations of a full forward
    solve (same order, so bit-identical to it), then alpha by a full backward solve."""
    for j in range(i, n):
        v[j] = r[j]
    vv = v[i:n]
    m = n - i
    for k in range(i):
        vk = v[k]
        rr = R[k, i:n]
        for j in range(m):
            vv[j] -= vk * rr[j]
    _forward(R, n, i, v)
    _backward(R, n, v, alpha)


@nb.njit(cache=True)
def _chol_update(R, n, start, w):
    """R^T R + w w^T (w zero before `start`), Givens rotations; w is overwritten."""
    for k in range(start, n):
        wk = w[k]
        if wk == 0.0:
            continue
        rkk = R[k, k]
        r = math.hypot(rkk, wk)
        c = r / rkk
        s = wk / rkk
        ic = rkk / r
        R[k, k] = r
        rr = R[k, k + 1:n]
        ww = w[k + 1:n]
        for j in range(n - k - 1):
            rkj = (rr[j] + s * ww[j]) * ic
            rr[j] = rkj
            ww[j] = c * ww[j] - s * rkj


@nb.njit(cache=True)
def _chol_downdate(R, n, start, w, guard):
    """R^T R - w w^T (w zero before `start`), hyperbolic rotations in the mixed (LINPACK-style)
    form: a = w_k / R_kk, c = sqrt((1 - a)(1 + a)), R_kk <- c R_kk, R_kj <- (R_kj - a w_j) / c,
    w_j <- c w_j - a R_kj. Returns -1, or the row at which c^2 <= guard (the new diagonal would
    fall to sqrt(guard) of the old one or below); R is then part-modified."""
    for k in range(start, n):
        wk = w[k]
        if wk == 0.0:
            continue
        rkk = R[k, k]
        a = wk / rkk
        c2 = (1.0 - a) * (1.0 + a)
        if not (c2 > guard):
            return k
        c = math.sqrt(c2)
        ic = 1.0 / c
        R[k, k] = rkk * c
        rr = R[k, k + 1:n]
        ww = w[k + 1:n]
        for j in range(n - k - 1):
            rkj = (rr[j] - a * ww[j]) * ic
            rr[j] = rkj
            ww[j] = c * ww[j] - a * rkj
    return -1


@nb.njit(cache=True)
def _noise_change(R, n, i, d, w, r, v, alpha, guard):
    """A += d e_i e_i^T: rank-one update (d > 0) or downdate (d < 0) with w = sqrt(|d|) e_i.
    w is zero above i, so rotations start at row i and rows < i (hence v[:i]) are unchanged;
    then the re-solve. Returns False, with R part-modified, if the downdate was abandoned.
    (Fusing the forward solve into the rotation pass was measured: no faster.)"""
    for j in range(i, n):
        w[j] = 0.0
    if d > 0.0:
        w[i] = math.sqrt(d)
        _chol_update(R, n, i, w)
    elif d < 0.0:
        w[i] = math.sqrt(-d)
        if _chol_downdate(R, n, i, w, guard) >= 0:
            return False
    _resolve_from(R, n, i, r, v, alpha)
    return True


@nb.njit(cache=True)
def _append(R, K, x, noise, n, xn, sn, inv2l2, sf2, w):
    """Bordered Cholesky: kernel column, R^T l = k, new diagonal. Writes row/column n of K and
    column n of R; returns d^2 = a_nn - l^T l (the caller commits only if it is > 0)."""
    for j in range(n):
        d = x[j] - xn
        kv = sf2 * math.exp(-d * d * inv2l2)
        K[j, n] = kv
        K[n, j] = kv
        w[j] = kv
    K[n, n] = sf2
    _forward(R, n, 0, w)
    ss = 0.0
    for j in range(n):
        ss += w[j] * w[j]
        R[j, n] = w[j]
    d2 = (sf2 + sn) - ss
    if d2 > 0.0:
        R[n, n] = math.sqrt(d2)
    return d2


@nb.njit(cache=True)
def _delete(R, K, x, y, noise, n, i, w):
    """Remove position i: the trailing block absorbs row i of R (rank-one update), then rows and
    columns of R, K and the vectors close up."""
    for j in range(i + 1, n):
        w[j] = R[i, j]
    _chol_update(R, n, i + 1, w)
    for r in range(i):
        for c in range(i, n - 1):
            R[r, c] = R[r, c + 1]
    for r in range(i, n - 1):
        for c in range(r, n - 1):
            R[r, c] = R[r + 1, c + 1]
    for r in range(n - 1):
        rs = r if r < i else r + 1
        for c in range(n - 1):
            cs = c if c < i else c + 1
            K[r, c] = K[rs, cs]
    for r in range(i, n - 1):
        x[r] = x[r + 1]
        y[r] = y[r + 1]
        noise[r] = noise[r + 1]


@nb.njit(cache=True)
def _drift(R, K, noise, n, r, alpha, z, t1, t2):
    """Normwise backward errors (inf-norms) of the factor on probe z and of the solve."""
    anorm = 0.0
    res = 0.0
    for i in range(n):
        s_alpha = noise[i] * alpha[i] - r[i]
        s_z = noise[i] * z[i]
        rowsum = noise[i]
        for j in range(n):
            kij = K[i, j]
            s_alpha += kij * alpha[j]
            s_z += kij * z[j]
            rowsum += abs(kij)
        anorm = max(anorm, rowsum)
        res = max(res, abs(s_alpha))
        t2[i] = s_z
    for k in range(n):  # t1 = R z
        s = 0.0
        for j in range(k, n):
            s += R[k, j] * z[j]
        t1[k] = s
    for k in range(n):  # t2 = A z - R^T (R z)
        tk = t1[k]
        for j in range(k, n):
            t2[j] -= R[k, j] * tk
    fres = 0.0
    znorm = 0.0
    anorm_alpha = 0.0
    rnorm = 0.0
    for i in range(n):
        fres = max(fres, abs(t2[i]))
        znorm = max(znorm, abs(z[i]))
        anorm_alpha = max(anorm_alpha, abs(alpha[i]))
        rnorm = max(rnorm, abs(r[i]))
    e_factor = fres / (anorm * znorm) if anorm * znorm > 0.0 else 0.0
    den = anorm * anorm_alpha + rnorm
    e_solve = res / den if den > 0.0 else 0.0
    return max(e_factor, e_solve)


# --------------------------------------------------------------------------------------------
# batch helpers
# --------------------------------------------------------------------------------------------


def rbf_kernel(a, b, lengthscale: float, signal_var: float) -> np.ndarray:
    """``signal_var * exp(-(a_i - b_j)^2 / (2 lengthscale^2))`` for 1-d arrays a, b."""
    a = np.asarray(a, dtype=float).reshape(-1)
    b = np.asarray(b, dtype=float).reshape(-1)
    d = a[:, None] - b[None, :]
    return signal_var * np.exp(-0.5 * (d / lengthscale) ** 2)


def heuristic_hyperparameters(x, y) -> tuple[float, float]:
    """The seed's heuristics: lengthscale = median |x_i - x_j| over pairs i < j, signal
    variance = Var(y) (population variance). Returns NaN for what the data cannot give
    (fewer than two points, all x equal, constant y)."""
    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    if x.size < 2:
        return math.nan, math.nan
    iu = np.triu_indices(x.size, 1)
    ell = float(np.median(np.abs(x[:, None] - x[None, :])[iu]))
    sf2 = float(np.var(y))
    return (ell if ell > 0.0 else math.nan), (sf2 if sf2 > 0.0 else math.nan)


def _as_vector(name: str, v, n: int | None = None) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if a.ndim == 0 and n is not None:
        a = np.full(n, float(a))
    a = a.reshape(-1) if a.ndim <= 1 else a
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {np.shape(v)}")
    if n is not None and a.size != n:
        raise ValueError(f"{name} has {a.size} values, expected {n}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values")
    return np.ascontiguousarray(a)


def _check_positive(name: str, v: float) -> float:
    v = float(v)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be finite and > 0, got {v!r}")
    return v


def _check_noise(v: float) -> float:
    v = float(v)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"noise variance must be finite and >= 0, got {v!r}")
    return v


class SmileGP:
    """Gaussian process smile in log-moneyness with exact O(n^2) incremental updates.

    Parameters
    ----------
    lengthscale, signal_var : RBF kernel hyperparameters (``l`` and ``s_f^2``).
    mean : constant prior mean (the IV level, not zero).
    check_every : drift check every this many incremental operations (0 disables).
    drift_tol : refactorise when the measured backward error exceeds this.
    refactor_every : also refactorise unconditionally every this many operations (None: only
        on drift, on an abandoned downdate, or on request).
    downdate_guard : abandon a downdate (and refactorise) when a rotation's
        ``c^2 = 1 - (w_k / R_kk)^2`` is at or below this.
    capacity : initial storage (grows by doubling).
    """

    def __init__(self, lengthscale: float, signal_var: float, mean: float = 0.0, *,
                 check_every: int = 256, drift_tol: float = 1e-12, refactor_every: int | None = None,
                 downdate_guard: float = 1e-6, capacity: int = 64):
        self.lengthscale = _check_positive("lengthscale", lengthscale)
        self.signal_var = _check_positive("signal_var", signal_var)
        self.mean = float(mean)
        if not math.isfinite(self.mean):
            raise ValueError(f"mean must be finite, got {mean!r}")
        self.check_every = int(check_every)
        self.drift_tol = float(drift_tol)
        self.refactor_every = None if refactor_every is None else int(refactor_every)
        self.downdate_guard = float(downdate_guard)
        self._n = 0
        self._alloc(max(int(capacity), 4))
        # counters
        self.n_fits = 0                 # explicit fit() calls
        self.n_refits = 0               # full refits from kernel hyperparameter changes
        self.n_refactorisations = 0     # factor recomputed from A (drift, periodic, fallback)
        self.n_downdate_fallbacks = 0   # downdates abandoned for a refactorisation
        self.n_drift_checks = 0
        self.n_incremental = 0          # update/insert/remove calls since construction
        self.last_drift = 0.0           # backward error measured at the last check
        self._since_check = 0
        self._since_refactor = 0

    # ---------------------------------------------------------------- storage
    def _alloc(self, cap: int) -> None:
        old = getattr(self, "_cap", 0)
        n = self._n
        R = np.zeros((cap, cap))
        K = np.zeros((cap, cap))
        vecs = {name: np.zeros(cap) for name in ("_x", "_y", "_s", "_r", "_v", "_alpha", "_w", "_t1", "_t2")}
        if old:
            R[:n, :n] = self._R[:n, :n]
            K[:n, :n] = self._K[:n, :n]
            for name in ("_x", "_y", "_s", "_r", "_v", "_alpha"):
                vecs[name][:n] = getattr(self, name)[:n]
        self._R, self._K = R, K
        for name, arr in vecs.items():
            setattr(self, name, arr)
        self._z = np.random.default_rng(20241105).uniform(-1.0, 1.0, cap)  # fixed drift probe
        self._cap = cap

    @property
    def n(self) -> int:
        return self._n

    def __len__(self) -> int:
        return self._n

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n].copy()

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n].copy()

    @property
    def noise(self) -> np.ndarray:
        return self._s[: self._n].copy()

    @property
    def alpha(self) -> np.ndarray:
        """(K + S)^{-1} (y - mean) in the internal order."""
        return self._alpha[: self._n].copy()

    def _index(self, i) -> int:
        n = self._n
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} points")
        return i

    # ---------------------------------------------------------------- batch
    def fit(self, x, y, noise) -> SmileGP:
        """Full fit on points ``x`` (log-moneyness), targets ``y`` (IV) and per-point noise
        variances ``noise`` (array, or a scalar for all points)."""
        x = _as_vector("x", x)
        n = x.size
        y = _as_vector("y", y, n)
        s = _as_vector("noise", noise, n)
        if np.any(s < 0.0):
            raise ValueError("noise variances must be >= 0")
        if n > self._cap:
            self._n = 0
            self._alloc(max(2 * n, 4))
        self._n = n
        self._x[:n] = x
        self._y[:n] = y
        self._s[:n] = s
        self._r[:n] = y - self.mean
        _kernel_fill(self._K, self._x, n, 0.5 / self.lengthscale**2, self.signal_var)
        self._factorise()
        self.n_fits += 1
        return self

    def _factorise(self) -> None:
        """R from A = K + diag(noise) by LAPACK, then alpha. Raises SmileGPError if A is not
        numerically positive definite (state then untouched apart from R, which the caller
        must restore)."""
        n = self._n
        self._since_check = 0
        self._since_refactor = 0
        if n == 0:
            return
        A = self._K[:n, :n].copy()
        A[np.diag_indices(n)] += self._s[:n]
        R, info = linalg.lapack.dpotrf(A, lower=0, clean=1, overwrite_a=1)
        if info != 0:
            raise SmileGPError(
                f"K + diag(noise) is not positive definite (leading minor {info} of {n}); "
                "duplicate log-moneyness with zero or tiny noise variance?")
        self._R[:n, :n] = R
        _solve(self._R, n, self._r, self._v, self._alpha)

    def refactorise(self) -> None:
        """Recompute the factor from K + diag(noise) (counted in n_refactorisations)."""
        self._factorise()
        self.n_refactorisations += 1

    # ---------------------------------------------------------------- incremental
    def update(self, i, y: float | None = None, noise: float | None = None) -> None:
        """One quote changed: new target and/or new noise variance at position ``i``. O(n^2)."""
        i = self._index(i)
        n = self._n
        if y is not None:
            y = float(y)
            if not math.isfinite(y):
                raise ValueError(f"y must be finite, got {y!r}")
        s_new = None if noise is None else _check_noise(noise)
        y_old = self._y[i]
        if y is not None:
            self._y[i] = y
            self._r[i] = y - self.mean
        if s_new is not None:
            s_old = self._s[i]
            self._s[i] = s_new
            if not _noise_change(self._R, n, i, s_new - s_old, self._w, self._r, self._v, self._alpha,
                                 self.downdate_guard):
                self.n_downdate_fallbacks += 1
                self._refactorise_or_restore(i, s_old, y_old)
        else:
            _resolve_from(self._R, n, i, self._r, self._v, self._alpha)
        self._after_op()

    def _refactorise_or_restore(self, i: int, s_old: float, y_old: float) -> None:
        try:
            self.refactorise()
        except SmileGPError as exc:
            s_req = self._s[i]
            self._s[i] = s_old
            self._y[i] = y_old
            self._r[i] = y_old - self.mean
            self._factorise()
            raise SmileGPError(
                f"noise variance {s_old!r} -> {s_req!r} at position {i} would make "
                f"K + diag(noise) lose positive definiteness; the model is unchanged ({exc})") from None

    def insert(self, x: float, y: float, noise: float) -> int:
        """Append one quote (bordered Cholesky, O(n^2)); returns its position."""
        x = float(x)
        y = float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"x and y must be finite, got {x!r}, {y!r}")
        s = _check_noise(noise)
        n = self._n
        if n + 1 > self._cap:
            self._alloc(2 * self._cap)
        d2 = _append(self._R, self._K, self._x, self._s, n, x, s, 0.5 / self.lengthscale**2,
                     self.signal_var, self._w)
        if not d2 > 0.0:
            raise SmileGPError(
                f"inserting x={x!r} with noise variance {s!r} makes K + diag(noise) not positive "
                "definite (a duplicate of an existing point with zero noise?); the model is unchanged")
        self._x[n] = x
        self._y[n] = y
        self._s[n] = s
        self._r[n] = y - self.mean
        self._n = n + 1
        _resolve_from(self._R, n + 1, n, self._r, self._v, self._alpha)
        self._after_op()
        return n

    def remove(self, i) -> None:
        """Delete the quote at position ``i`` (later positions shift down). O(n^2)."""
        i = self._index(i)
        n = self._n
        _delete(self._R, self._K, self._x, self._y, self._s, n, i, self._w)
        self._r[i:n - 1] = self._r[i + 1:n]
        self._n = n - 1
        _resolve_from(self._R, n - 1, i, self._r, self._v, self._alpha)
        self._after_op()

    def _after_op(self) -> None:
        self.n_incremental += 1
        self._since_check += 1
        self._since_refactor += 1
        if self.refactor_every is not None and self._since_refactor >= self.refactor_every:
            self.refactorise()
            return
        if self.check_every > 0 and self._since_check >= self.check_every:
            self._since_check = 0
            if self.check_drift() > self.drift_tol:
                self.refactorise()

    def check_drift(self) -> float:
        """Measure the backward error of the current factor and solve (O(n^2)); counted."""
        n = self._n
        self.n_drift_checks += 1
        if n == 0:
            self.last_drift = 0.0
        else:
            self.last_drift = float(_drift(self._R, self._K, self._s, n, self._r, self._alpha,
                                           self._z, self._t1, self._t2))
        return self.last_drift

    # ---------------------------------------------------------------- results
    def predict(self, x_star) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent smile (observation noise excluded)."""
        xs = _as_vector("x_star", x_star)
        if self._n == 0:
            return np.full(xs.size, self.mean), np.full(xs.size, self.signal_var)
        n = self._n
        ks = rbf_kernel(self._x[:n], xs, self.lengthscale, self.signal_var)  # n x m
        mu = self.mean + ks.T @ self._alpha[:n]
        V = linalg.solve_triangular(self._R[:n, :n], ks, trans="T", lower=False, check_finite=False)
        var = self.signal_var - np.einsum("ij,ij->j", V, V)
        return mu, np.maximum(var, 0.0)

    def predict_mean(self, x_star) -> np.ndarray:
        """Posterior mean only: ``mean + k_*^T alpha``, O(n m), without the O(n^2 m)
        triangular solve the variance needs (what a density refresh evaluates)."""
        xs = _as_vector("x_star", x_star)
        if self._n == 0:
            return np.full(xs.size, self.mean)
        n = self._n
        return self.mean + rbf_kernel(self._x[:n], xs, self.lengthscale, self.signal_var).T @ self._alpha[:n]

    def log_marginal_likelihood(self) -> float:
        """log N(y; mean, K + diag(noise))."""
        n = self._n
        if n == 0:
            return 0.0
        v = self._v[:n]
        return float(-0.5 * (v @ v) - np.log(np.diag(self._R[:n, :n])).sum() - 0.5 * n * _LOG_2PI)

    # ---------------------------------------------------------------- hyperparameters
    def set_hyperparameters(self, lengthscale: float | None = None, signal_var: float | None = None,
                            mean: float | None = None) -> None:
        """Change hyperparameters. A kernel change (lengthscale or signal_var) recomputes the
        kernel and the factor (counted in n_refits); a mean change alone re-solves alpha."""
        ell = self.lengthscale if lengthscale is None else _check_positive("lengthscale", lengthscale)
        sf2 = self.signal_var if signal_var is None else _check_positive("signal_var", signal_var)
        if mean is not None:
            m = float(mean)
            if not math.isfinite(m):
                raise ValueError(f"mean must be finite, got {mean!r}")
            self.mean = m
            n = self._n
            self._r[:n] = self._y[:n] - m
        if ell != self.lengthscale or sf2 != self.signal_var:
            old = (self.lengthscale, self.signal_var)
            self.lengthscale, self.signal_var = ell, sf2
            n = self._n
            try:
                _kernel_fill(self._K, self._x, n, 0.5 / ell**2, sf2)
                self._factorise()
            except SmileGPError:
                self.lengthscale, self.signal_var = old
                _kernel_fill(self._K, self._x, n, 0.5 / old[0]**2, old[1])
                self._factorise()
                raise
            self.n_refits += 1
        elif mean is not None and self._n:
            _solve(self._R, self._n, self._r, self._v, self._alpha)

    def refit_heuristics(self, update_mean: bool = False) -> tuple[float, float]:
        """The seed's heuristics on the current quotes (lengthscale = median pairwise |dk|,
        signal variance = Var(y)); optionally also mean = mean(y). Values the data cannot give
        (fewer than two points, degenerate spread) keep their current setting."""
        n = self._n
        ell, sf2 = heuristic_hyperparameters(self._x[:n], self._y[:n])
        ell = self.lengthscale if math.isnan(ell) else ell
        sf2 = self.signal_var if math.isnan(sf2) else sf2
        mean = float(np.mean(self._y[:n])) if (update_mean and n) else None
        self.set_hyperparameters(ell, sf2, mean)
        return self.lengthscale, self.signal_var

    def optimise_hyperparameters(self, optimise_mean: bool = False,
                                 lengthscale_bounds: tuple[float, float] = (1e-3, 10.0),
                                 signal_var_bounds: tuple[float, float] = (1e-8, 10.0)) -> float:
        """Maximise the log marginal likelihood over (log lengthscale, log signal_var) by
        L-BFGS-B with the analytic gradient, starting from the current values and from the
        heuristics; with ``optimise_mean`` the constant mean is profiled out in closed form
        (generalised least squares). O(n^3) per evaluation: for a slow cadence. Applies the
        optimum (one counted refit) and returns the new log marginal likelihood."""
        n = self._n
        if n < 2:
            return self.log_marginal_likelihood()
        x = self._x[:n].copy()
        y = self._y[:n].copy()
        s = self._s[:n].copy()
        D2 = (x[:, None] - x[None, :]) ** 2
        ones = np.ones(n)
        fixed_mean = self.mean

        def objective(theta):
            ell, sf2 = math.exp(theta[0]), math.exp(theta[1])
            K = sf2 * np.exp(-0.5 * D2 / ell**2)
            A = K.copy()
            A[np.diag_indices(n)] += s
            try:
                c = linalg.cho_factor(A, lower=False, check_finite=False)
            except np.linalg.LinAlgError:
                return 1e300, np.zeros(2), fixed_mean
            if optimise_mean:
                ai1 = linalg.cho_solve(c, ones, check_finite=False)
                aiy = linalg.cho_solve(c, y, check_finite=False)
                m = float(ones @ aiy / (ones @ ai1))
            else:
                m = fixed_mean
            r = y - m
            alpha = linalg.cho_solve(c, r, check_finite=False)
            lml = -0.5 * r @ alpha - np.log(np.diag(c[0])).sum() - 0.5 * n * _LOG_2PI
            W = np.outer(alpha, alpha) - linalg.cho_solve(c, np.eye(n), check_finite=False)
            g_ell = 0.5 * np.sum(W * K * D2) / ell**2
            g_sf2 = 0.5 * np.sum(W * K)
            return -lml, -np.array([g_ell, g_sf2]), m

        bounds = [tuple(np.log(lengthscale_bounds)), tuple(np.log(signal_var_bounds))]
        starts = [(self.lengthscale, self.signal_var)]
        h = heuristic_hyperparameters(x, y)
        if not any(math.isnan(v) for v in h):
            starts.append(h)
        best = None
        for ell0, sf20 in starts:
            t0 = np.clip(np.log([ell0, sf20]), [b[0] for b in bounds], [b[1] for b in bounds])
            res = optimize.minimize(lambda t: objective(t)[:2], t0, jac=True, method="L-BFGS-B",
                                    bounds=bounds)
            if best is None or res.fun < best.fun:
                best = res
        ell, sf2 = (float(v) for v in np.exp(best.x))
        m = objective(best.x)[2] if optimise_mean else None
        self.set_hyperparameters(ell, sf2, m)
        return self.log_marginal_likelihood()
