"""Streaming estimation of the multivariate price-impact system (eq. 45) and the cross-impact
statistics of Keller and Tseng's Section 8.

The regression
--------------
Over a configured set of M contracts, period t gives the vector of price changes ``dp_t``
(mid-quote changes) and the vector of signed net order imbalances ``omega_t`` (contracts
bought minus sold). Eq. (45) is the system ``dp_t = Lambda omega_t + u_t``: row i of
``Lambda`` is the response of contract i to order flow in every contract (diagonal: own
impact; off-diagonal: cross impact). Every equation has the same regressors, so the
equation-by-equation OLS fit *is* the multivariate (SUR/GLS) fit: with common regressors
GLS on the stacked system reduces to OLS equation by equation (Zellner), and the whole
matrix is one solve with the regressors' scatter matrix::

    Lambda_hat' = Cxx^{-1} Cxy,   Cxx = sum_t a_t a_t',   Cxy = sum_t a_t (dp_t - dp_bar)',   a_t = omega_t - omega_bar

with an intercept (default). The intercept is not cosmetic: in the model the insider's
orders have a non-zero mean given the story (``E[omega | s_k] = W*_k``), and without it the
fitted slope absorbs ``E[dp] - Lambda E[omega]``. In the Gaussian model the population
slope with intercept is exactly the expected impact matrix of eq. (38): given the story,
``omega ~ N(W*_k, Sigma^2)`` and Stein's lemma gives ``Cov(P(omega), omega) = E[dP/domega]
Sigma^2`` (see :mod:`elecflow.theory.simulator`).

Shrinkage for many contracts
----------------------------
With M contracts the slope needs the inverse of an M x M scatter matrix estimated from a
window of n periods; for M = 50-100 and windows of a few hundred periods it is noisy or
singular. We shrink the *regressor covariance* toward its own diagonal::

    A(delta) = (1 - delta) Cxx + delta diag(Cxx),       Lambda_hat' = A(delta)^{-1} Cxy,

i.e. keep every contract's flow variance and multiply the flow correlations by
``1 - delta``. Why this target and not a ridge ``Cxx + lambda I``:

- it is the model's own structure: noise traders trade independently across contracts, so
  given the story the population flow covariance is ``Sigma^2``, diagonal. Then
  ``A(delta)/n -> Sigma^2`` for *every* delta and the shrunk estimator stays consistent
  for Lambda: shrinkage buys variance reduction at no asymptotic cost when flows are
  independent. A ridge biases every slope toward zero (``Lambda Sigma^2 (Sigma^2 +
  lambda I)^{-1}``) for any fixed lambda, and is not invariant to the contracts' units;
- at ``delta = 0`` it is OLS (eq. 45); at ``delta = 1`` each column is the univariate slope
  of ``dp_i`` on ``omega_j`` alone (the contract-by-contract regressions of eq. 44
  extended to pairs). When flows *are* correlated (informed portfolios, a story that
  changes), those marginal slopes carry the simultaneity bias the paper warns about, so
  ``delta`` must be small when the sample correlations are real. Even with independent
  flows, large delta costs accuracy when the flows explain much of the price changes: the
  marginal slope of one flow leaves the others' contributions in its residual.

The intensity (``shrinkage=``):

- ``"gcv"`` (default): the delta minimising generalised cross-validation of the whole
  system, ``sum_i RSS_i(delta)/Syy_i / (n - 1 - tr(A^{-1} Cxx))^2`` (every contract's
  equation weighted by its own price variance, so each counts equally). In the
  eigenbasis of the flow correlation matrix every delta costs O(M), so the search is
  exact and cheap. It targets what the slopes are for, predicting price changes from
  flows, and goes to 0 (OLS) as the window grows;
- ``"lw"``: the Ledoit-Wolf-type intensity that is optimal *for the covariance matrix*
  with this target (Schäfer and Strimmer 2005, target "D": diagonal, unequal variances),
  ``sum_{i != j} Var_hat(r_ij) / sum_{i != j} r_ij^2`` clipped to [0, 1], ``r_ij`` the
  sample flow correlations and ``Var_hat(r_ij)`` their sampling variance from the fourth
  moments of the flows. With independent flows it tends to 1 at every window length (the
  sample correlations are all noise), so it returns the marginal slopes: measured on the
  simulator it is 15-40 % less accurate than OLS and GCV once the window holds a few
  times M periods (docs/theory.md). Kept for comparison;
- a number in [0, 1]: a fixed intensity (0 = OLS).

Standard errors
---------------
For a linear estimator ``Lambda_hat_i' = A^{-1} sum_t a_t dp_ti`` (``a_t`` the centred flow),
conditional on the flows and treating delta as fixed, ``Cov(Lambda_hat_ij, Lambda_hat_kl) =
S_ik V_jl`` with ``V = A^{-1} Cxx A^{-1}`` (``= Cxx^{-1}`` at delta = 0) and ``S`` the
residual covariance, estimated by the residual scatter over ``n - 1 - tr(A^{-1} Cxx)``
degrees of freedom (``n - 1 - M`` for OLS: the effective number of fitted slopes falls
with shrinkage). These are the classical (homoskedastic) errors of the multivariate
regression; :meth:`ImpactEstimate.stderr_of` gives the error of any linear function of
Lambda (the cross-impact statistics below), which needs the full ``S`` and ``V``. The bias
of the shrunk estimator is not in them (zero under independent flows, see above). On the
simulator's data the residuals are heteroskedastic (the pricing kernel is nonlinear);
docs/theory.md reports the measured coverage.

Streaming
---------
:class:`RollingImpactRegression` keeps the sufficient statistics of its window (sums, the
three scatter matrices, and for ``"lw"`` the fourth-moment matrices ``sum (z*z)(z*z)'``
and ``sum (z*z) z'``), adding the new period and removing the one leaving the window with a
fused numba kernel (O(M^2) per period, independent of the window). Sums are kept relative
to a reference point (the first observation, then the window mean at every refresh), so
centring does not cancel digits, and every ``refresh_every`` updates (default: once per
window) they are recomputed exactly from the ring buffer, so rounding from add/remove cannot
accumulate. An expanding window keeps no buffer: its reference stays the first observation. The estimate
is computed on demand (O(M^3): one symmetric eigendecomposition of the flow correlation
matrix, which serves the GCV search and the solve) and equals the batch fit
:func:`fit_impact` on the same window to about 1e-12 relative (tested at 1e-8).

Cross-impact statistics (Section 8)
-----------------------------------
- :func:`straddle_cross_impact` (footnote 34): ``CI^strad = Lambda_{C,P} + Lambda_{P,C}`` for
  the call and put of a straddle.
- :func:`portfolio_cross_impact` (footnote 35): ``CI^(m) = sum_{a != b in legs} w_a (Lambda_ab +
  Lambda_ba) w_b`` for the theory's leg weights ``w`` (the equilibrium informed demand of
  the story: the library's corrected equilibrium, not eq. (37) as printed, see
  ``OptionMarketModel.prescribed_weights``). The sum runs over *ordered*
  pairs, so a unit-weight straddle gives twice footnote 34's statistic.
- :func:`wing_cross_impact` (footnote 37): the average symmetrised cross impact between two
  wings, ``mean_{a in low, b in high} (Lambda_ab + Lambda_ba)``.
- :func:`smile_curvature` (footnote 37): ``kappa = (sigma_IV(-Delta) + sigma_IV(+Delta))/2 -
  sigma_IV(0)`` at a fixed delta (or the quadratic coefficient of IV on log-moneyness).

Library layer: numpy/scipy/numba only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from scipy import optimize
from scipy.special import ndtr

__all__ = [
    "ImpactEstimate",
    "RollingImpactRegression",
    "fit_impact",
    "straddle_cross_impact",
    "portfolio_cross_impact",
    "wing_cross_impact",
    "straddle_gradient",
    "portfolio_gradient",
    "wing_gradient",
    "smile_curvature",
]

# a contract whose flow variance in the window is below this fraction of the largest one is
# treated as untraded (its column of Lambda is NaN) instead of making the solve singular
_ACTIVE_TOL = 1e-12


# ------------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class ImpactEstimate:
    """One fit of ``dp_t = c + Lambda omega_t + u_t`` over a window.

    Attributes
    ----------
    impact : (M, M)
        ``Lambda_hat``; row i = price of contract i, column j = order flow in contract j.
        Columns of contracts without flow variation in the window are NaN.
    stderr : (M, M)
        Standard errors of ``impact`` (module docstring); NaN when the degrees of freedom
        are exhausted.
    intercept : (M,)
    residual_cov : (M, M)
        ``S``: the residual covariance across contracts.
    coef_cov : (M, M)
        ``V = A^{-1} Cxx A^{-1}`` (regressor side): ``Cov(impact[i, j], impact[k, l]) =
        residual_cov[i, k] * coef_cov[j, l]``. Zero rows/columns for untraded contracts.
    shrinkage : float
        The delta used (0 = OLS).
    n : int
        Periods in the window.
    dof : float
        Residual degrees of freedom, ``n - intercept - tr(A^{-1} Cxx)``.
    r_squared : (M,)
        Per-equation R^2.
    active : (M,) bool
        Contracts whose flow varied in the window.
    ready : bool
        False when the window cannot identify the slopes (too few periods, singular
        scatter at delta = 0): every array is then NaN.
    """

    impact: np.ndarray
    stderr: np.ndarray
    intercept: np.ndarray
    residual_cov: np.ndarray
    coef_cov: np.ndarray
    shrinkage: float
    n: int
    dof: float
    r_squared: np.ndarray
    active: np.ndarray
    ready: bool

    @property
    def t_stats(self) -> np.ndarray:
        return self.impact / self.stderr

    def stderr_of(self, gradient) -> float | np.ndarray:
        """Standard error of the linear statistic ``sum_ij G_ij Lambda_ij``.

        ``Var = sum_{ijkl} G_ij G_kl S_ik V_jl = sum((G' S G) * V)``. ``gradient`` is (M, M)
        or a stack (P, M, M), giving a float or (P,).
        """
        G = np.asarray(gradient, dtype=np.float64)
        M = self.impact.shape[0]
        if G.shape[-2:] != (M, M) or G.ndim not in (2, 3):
            raise ValueError(f"gradient must be (M, M) or (P, M, M) with M = {M} (got {G.shape})")
        Gs = G if G.ndim == 3 else G[None]
        if not self.ready or not math.isfinite(self.dof) or self.dof <= 0:
            out = np.full(Gs.shape[0], np.nan)
        else:
            # sum_{ijkl} G_ij S_ik G_kl V_jl
            var = np.einsum("pij,ik,pkl,jl->p", Gs, self.residual_cov, Gs, self.coef_cov)
            out = np.sqrt(np.maximum(var, 0.0))
            # a statistic that needs the slope of an untraded contract is not identified
            untraded = np.any((Gs != 0) & ~self.active[None, None, :], axis=(1, 2))
            out = np.where(untraded, np.nan, out)
        return float(out[0]) if G.ndim == 2 else out

    def straddle(self, call_index, put_index) -> tuple[np.ndarray, np.ndarray]:
        """Footnote 34's statistic for each (call, put) pair, with standard errors."""
        val = straddle_cross_impact(self.impact, call_index, put_index)
        se = self.stderr_of(straddle_gradient(self.impact.shape[0], call_index, put_index))
        return val, np.asarray(se)

    def portfolio(self, weights) -> tuple[float | np.ndarray, float | np.ndarray]:
        """Footnote 35's ``CI^(m)`` for leg weights ``weights`` ((M,) or (P, M)), with standard errors."""
        return portfolio_cross_impact(self.impact, weights), self.stderr_of(portfolio_gradient(weights))

    def wing(self, low, high) -> tuple[float, float]:
        """Footnote 37's wing statistic with its standard error."""
        return wing_cross_impact(self.impact, low, high), self.stderr_of(
            wing_gradient(self.impact.shape[0], low, high))


def _nan_estimate(M: int, n: int, shrinkage: float) -> ImpactEstimate:
    nan_mm = np.full((M, M), np.nan)
    return ImpactEstimate(nan_mm, nan_mm.copy(), np.full(M, np.nan), nan_mm.copy(), nan_mm.copy(), shrinkage,
                          int(n), math.nan, np.full(M, np.nan), np.zeros(M, dtype=bool), False)


def _lw_shrinkage(n: int, Cxx: np.ndarray, F4: np.ndarray, nd: float) -> float:
    """Schäfer-Strimmer (2005) target-D intensity from the scatter ``Cxx`` and the fourth
    moments ``F4_ij = sum_t a_ti^2 a_tj^2`` of the (centred) flows."""
    M = Cxx.shape[0]
    if M < 2 or n < 3:
        return 1.0
    d = np.diag(Cxx)
    dd = np.outer(d, d)
    off = ~np.eye(M, dtype=bool)
    # r_ij^2 = s_ij^2 / (s_ii s_jj) (normalisation cancels); Var(s_ij) = n/nd^3 (F4 - Cxx^2/n)
    r2 = (Cxx * Cxx)[off] / dd[off]
    var_s = (n / nd**3) * np.maximum(F4 - Cxx * Cxx / n, 0.0)
    var_r = var_s[off] / (dd[off] / (nd * nd))
    den = float(r2.sum())
    if not den > 0.0:
        return 1.0
    return float(min(1.0, max(0.0, var_r.sum() / den)))


_GCV_GRID = np.concatenate([[0.0], np.logspace(-4, 0, 33)])


def _gcv_shrinkage(n_eff: float, lam: np.ndarray, bw: np.ndarray, c0: float) -> float:
    """delta minimising generalised cross-validation of the whole system.

    In the eigenbasis of the flow correlation matrix (eigenvalues ``lam``) the fit with
    intensity delta has per-direction factors ``f = 1/((1 - delta) lam + delta)``; the
    weighted residual sum of squares is ``c0 - sum_k (2 f_k - f_k^2 lam_k) bw_k`` and the
    effective number of slopes ``sum_k f_k lam_k``, so GCV(delta) = RSS / (n_eff - df)^2
    and its derivative cost O(M) per delta. The minimum is located on a grid (log-spaced
    toward 0) and refined as the root of the derivative (Brent): a root is determined to
    rounding precision, where the minimum of a flat criterion is not, so the streaming and
    the batch fit choose the same delta. RSS is evaluated as the OLS residual plus
    ``sum_k (1 - f_k lam_k)^2 / lam_k bw_k`` (the same number without the cancellation of
    the first form).
    """
    tol = 1e-12 * max(float(lam.max()), 1.0)
    pos = lam > tol
    base = c0 - float(np.sum(bw[pos] / lam[pos]))       # OLS residual on the non-null directions

    def parts(delta):
        den_f = (1.0 - delta) * lam + delta
        if np.any(den_f <= tol):
            return None
        f = 1.0 / den_f
        dof = n_eff - float(np.sum(f * lam))
        if dof <= 0.5:
            return None
        fl = f[pos] * lam[pos]
        rss = base + float(np.sum((1.0 - fl) ** 2 / lam[pos] * bw[pos])) - float(np.sum(2.0 * f[~pos] * bw[~pos]))
        d_rss = float(np.sum(2.0 * (1.0 - f * lam) * (1.0 - lam) * f * f * bw))
        d_dof = float(np.sum(lam * (1.0 - lam) * f * f))
        return max(rss, 0.0), dof, d_rss, d_dof

    def gcv(delta):
        pr = parts(delta)
        return math.inf if pr is None else pr[0] / (pr[1] * pr[1])

    def slope(delta):                                   # sign of d GCV / d delta
        rss, dof, d_rss, d_dof = parts(delta)
        return d_rss * dof - 2.0 * rss * d_dof

    # the whole grid at once: (grid, M) arrays
    den = (1.0 - _GCV_GRID[:, None]) * lam[None, :] + _GCV_GRID[:, None]
    ok = np.all(den > tol, axis=1)
    F = 1.0 / np.where(den > tol, den, 1.0)
    dofs = n_eff - (F * lam[None, :]).sum(axis=1)
    FL = F[:, pos] * lam[None, pos]
    rss = (base + ((1.0 - FL) ** 2 / lam[None, pos] * bw[None, pos]).sum(axis=1)
           - (2.0 * F[:, ~pos] * bw[None, ~pos]).sum(axis=1))
    ok &= dofs > 0.5
    values = np.where(ok, np.maximum(rss, 0.0) / np.where(ok, dofs, 1.0) ** 2, math.inf)
    if not np.any(np.isfinite(values)):
        return 1.0
    i = int(np.argmin(values))
    for lo, hi in ((i - 1, i), (i, i + 1)):
        if lo < 0 or hi >= _GCV_GRID.size or not (np.isfinite(values[lo]) and np.isfinite(values[hi])):
            continue
        a, b = _GCV_GRID[lo], _GCV_GRID[hi]
        sa, sb = slope(a), slope(b)
        if sa < 0.0 < sb:
            return float(optimize.brentq(slope, a, b, xtol=1e-15 * b, rtol=8.9e-16))
    return float(_GCV_GRID[i])


def _solve(n: int, Cxx, Cxy, Cyy, F4, mean_x, mean_y, shrinkage, intercept: bool) -> ImpactEstimate:
    """The estimator from centred (or, without intercept, raw) moments of one window.

    Works in the eigenbasis of the flows' correlation matrix ``R = D^{-1/2} Cxx D^{-1/2} =
    U diag(lam) U'``: ``A(delta) = D^{1/2} U diag((1 - delta) lam + delta) U' D^{1/2}``, so
    every delta costs O(M^2) once ``R`` is diagonalised (which GCV needs anyway).
    """
    M = Cxx.shape[0]
    fixed = None if isinstance(shrinkage, str) else float(shrinkage)
    p0 = 1 if intercept else 0
    min_n = p0 + (M + 1 if fixed == 0.0 else 2)
    if n < min_n:
        return _nan_estimate(M, n, math.nan if fixed is None else fixed)
    Cxx = 0.5 * (Cxx + Cxx.T)
    diag = np.diag(Cxx).copy()
    active = diag > _ACTIVE_TOL * max(float(diag.max()), 0.0)
    if not active.any():
        return _nan_estimate(M, n, math.nan if fixed is None else fixed)
    idx = np.flatnonzero(active)
    Ca = Cxx[np.ix_(idx, idx)]
    sd = np.sqrt(np.diag(Ca))
    Rm = Ca / np.outer(sd, sd)
    lam, U = np.linalg.eigh(0.5 * (Rm + Rm.T))
    lam = np.maximum(lam, 0.0)
    Cxy_a = Cxy[idx, :]
    B = U.T @ (Cxy_a / sd[:, None])                                 # (Ma, M)
    if fixed is not None:
        delta = fixed
    elif shrinkage == "lw":
        delta = _lw_shrinkage(n, Ca, F4[np.ix_(idx, idx)], float(n - 1) if intercept else float(n))
    else:                                                           # "gcv"
        syy = np.diag(Cyy)
        w = np.where(syy > 0, 1.0 / np.where(syy > 0, syy, 1.0), 0.0)  # each contract counts equally
        delta = _gcv_shrinkage(float(n - p0), lam, (B * B) @ w, float(np.sum(w * syy)))
    den_f = (1.0 - delta) * lam + delta
    if np.any(den_f <= 1e-12 * max(float(lam.max()), 1.0)):
        return _nan_estimate(M, n, delta)                           # singular flows at delta = 0
    f = 1.0 / den_f
    La = ((U * f[None, :]) @ B / sd[:, None]).T                     # (M, Ma): Lambda_hat on the active columns
    dof = float(n - p0 - np.sum(f * lam))
    Ruu = Cyy - B.T @ ((2.0 * f - f * f * lam)[:, None] * B)
    Ruu = 0.5 * (Ruu + Ruu.T)
    S = Ruu / dof if dof > 0 else np.full((M, M), np.nan)
    Vs = (U * (f * f * lam)[None, :]) @ U.T                         # A^{-1} Cxx A^{-1} in correlation units
    V_a = Vs / np.outer(sd, sd)
    impact = np.full((M, M), np.nan)
    impact[:, idx] = La
    V = np.zeros((M, M))
    V[np.ix_(idx, idx)] = V_a
    se = np.full((M, M), np.nan)
    se[:, idx] = np.sqrt(np.maximum(np.diag(S), 0.0)[:, None] * np.maximum(np.diag(V_a), 0.0)[None, :])
    intercept_v = (mean_y - La @ mean_x[idx]) if intercept else np.zeros(M)
    syy = np.diag(Cyy)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(syy > 0, 1.0 - np.diag(Ruu) / syy, np.nan)
    return ImpactEstimate(impact, se, intercept_v, S, V, float(delta), int(n), dof, r2, active, True)


def _check_shrinkage(shrinkage):
    if isinstance(shrinkage, str):
        if shrinkage not in ("gcv", "lw"):
            raise ValueError(f"shrinkage must be 'gcv', 'lw' or a number in [0, 1] (got {shrinkage!r})")
        return shrinkage
    s = float(shrinkage)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"shrinkage must be 'gcv', 'lw' or a number in [0, 1] (got {shrinkage!r})")
    return s


def fit_impact(dp, omega, *, shrinkage=0.0, intercept: bool = True) -> ImpactEstimate:
    """Batch fit of eq. (45) on a sample: ``dp`` and ``omega`` of shape (n, M).

    The reference for :class:`RollingImpactRegression` (same estimator, computed directly
    from the centred data). ``shrinkage``: a fixed delta in [0, 1] (0 = OLS, the default
    here), ``"gcv"`` or ``"lw"`` (module docstring).
    """
    Y = np.asarray(dp, dtype=np.float64)
    X = np.asarray(omega, dtype=np.float64)
    if X.ndim != 2 or Y.shape != X.shape:
        raise ValueError(f"dp and omega must both be (n, M) arrays of the same shape (got {Y.shape}, {X.shape})")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("dp and omega must be finite")
    shrinkage = _check_shrinkage(shrinkage)
    n, M = X.shape
    if n == 0:
        return _nan_estimate(M, 0, math.nan if isinstance(shrinkage, str) else shrinkage)
    mx, my = (X.mean(axis=0), Y.mean(axis=0)) if intercept else (np.zeros(M), np.zeros(M))
    Xc, Yc = X - mx, Y - my
    X2 = Xc * Xc
    return _solve(n, Xc.T @ Xc, Xc.T @ Yc, Yc.T @ Yc, X2.T @ X2, mx, my, shrinkage, intercept)


# ------------------------------------------------------------------------------ streaming


@nb.njit(cache=True)
def _rank_update(sx, sy, Sxx, Sxy, Syy, S4, S3, z_add, v_add, z_del, v_del, remove, fourth):  # pragma: no cover - numba
    """Add one period (and remove one) to the sums: one pass over the M x M matrices."""
    M = z_add.size
    for i in range(M):
        za, va = z_add[i], v_add[i]
        sx[i] += za
        sy[i] += va
        za2 = za * za
        if remove:
            zd, vd = z_del[i], v_del[i]
            sx[i] -= zd
            sy[i] -= vd
            zd2 = zd * zd
            for j in range(M):
                zaj, vaj, zdj, vdj = z_add[j], v_add[j], z_del[j], v_del[j]
                Sxx[i, j] += za * zaj - zd * zdj
                Sxy[i, j] += za * vaj - zd * vdj
                Syy[i, j] += va * vaj - vd * vdj
                if fourth:
                    S4[i, j] += za2 * zaj * zaj - zd2 * zdj * zdj
                    S3[i, j] += za2 * zaj - zd2 * zdj
        else:
            for j in range(M):
                zaj, vaj = z_add[j], v_add[j]
                Sxx[i, j] += za * zaj
                Sxy[i, j] += za * vaj
                Syy[i, j] += va * vaj
                if fourth:
                    S4[i, j] += za2 * zaj * zaj
                    S3[i, j] += za2 * zaj


class RollingImpactRegression:
    """Rolling (or expanding) estimator of eq. (45) with O(M^2) updates per period.

    Parameters
    ----------
    n_contracts : int
        M, the number of contracts (fixed order: column j of ``omega`` and of ``dp`` is
        contract j).
    window : int or None
        Periods kept; None = expanding (everything since the start or the last
        :meth:`reset`).
    shrinkage : "gcv", "lw" or float in [0, 1]
        Intensity of the shrinkage of the flow covariance toward its diagonal (module
        docstring): chosen by generalised cross-validation (default), Ledoit-Wolf-type, or
        fixed (0 is OLS).
    intercept : bool
        Fit an intercept per equation (default; see the module docstring for why).
    refresh_every : int, optional
        Recompute the sums exactly from the window's ring buffer every this many updates
        (default: the window length; never for an expanding window, which keeps no buffer).

    Use ``update(dp, omega)`` once per period and :meth:`estimate` (cached until the next
    update) when an estimate is wanted.
    """

    def __init__(self, n_contracts: int, window: int | None = None, *, shrinkage="gcv", intercept: bool = True,
                 refresh_every: int | None = None):
        if int(n_contracts) != n_contracts or n_contracts < 1:
            raise ValueError(f"n_contracts must be an integer >= 1 (got {n_contracts!r})")
        if window is not None and (int(window) != window or window < 2):
            raise ValueError(f"window must be None or an integer >= 2 (got {window!r})")
        if refresh_every is not None and (int(refresh_every) != refresh_every or refresh_every < 1):
            raise ValueError(f"refresh_every must be None or an integer >= 1 (got {refresh_every!r})")
        self.M = int(n_contracts)
        self.window = None if window is None else int(window)
        self.shrinkage = _check_shrinkage(shrinkage)
        self.intercept = bool(intercept)
        self.refresh_every = (self.window if refresh_every is None else int(refresh_every)) if self.window else None
        self._fourth = self.shrinkage == "lw"
        self.reset()

    def reset(self) -> None:
        """Forget every period."""
        M = self.M
        self._n = 0
        self._sx, self._sy = np.zeros(M), np.zeros(M)
        self._Sxx, self._Sxy, self._Syy = np.zeros((M, M)), np.zeros((M, M)), np.zeros((M, M))
        shape4 = (M, M) if self._fourth else (1, 1)
        self._S4, self._S3 = np.zeros(shape4), np.zeros(shape4)
        self._ref_x, self._ref_y = np.zeros(M), np.zeros(M)
        self._ref_set = not self.intercept        # without an intercept the sums must be raw
        if self.window:
            self._bx = np.zeros((self.window, M))
            self._by = np.zeros((self.window, M))
        self._head = 0                             # next slot of the ring buffer
        self._since_refresh = 0
        self._cache: ImpactEstimate | None = None
        self._updates = 0

    @property
    def n(self) -> int:
        """Periods currently in the window."""
        return self._n

    @property
    def updates(self) -> int:
        """Periods seen since the start (or the last reset)."""
        return self._updates

    def update(self, dp, omega) -> None:
        """Add one period: price changes ``dp`` and signed order flow ``omega`` (length M each)."""
        y = np.asarray(dp, dtype=np.float64)
        x = np.asarray(omega, dtype=np.float64)
        if x.shape != (self.M,) or y.shape != (self.M,):
            raise ValueError(f"dp and omega must have length {self.M} (got {y.shape}, {x.shape})")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("dp and omega must be finite (forward-fill quotes, use 0 for no flow)")
        if not self._ref_set:
            # centre the sums on the first observation: keeps raw sums small, so removing the
            # mean at estimate time does not cancel digits
            self._ref_x, self._ref_y = x.copy(), y.copy()
            self._ref_set = True
        z, v = x - self._ref_x, y - self._ref_y
        full = self.window is not None and self._n == self.window
        if full:
            zd, vd = self._bx[self._head] - self._ref_x, self._by[self._head] - self._ref_y
        else:
            zd, vd = z, v
        _rank_update(self._sx, self._sy, self._Sxx, self._Sxy, self._Syy, self._S4, self._S3, z, v, zd, vd,
                     full, self._fourth)
        if self.window:
            self._bx[self._head] = x
            self._by[self._head] = y
            self._head = (self._head + 1) % self.window
            if not full:
                self._n += 1
            self._since_refresh += 1
            if self._since_refresh >= self.refresh_every:
                self._refresh()
        else:
            self._n += 1
        self._updates += 1
        self._cache = None

    def _window_rows(self) -> tuple[np.ndarray, np.ndarray]:
        if self._n == self.window:
            order = np.r_[self._head:self.window, 0:self._head]
            return self._bx[order], self._by[order]
        return self._bx[:self._n], self._by[:self._n]

    def _refresh(self) -> None:
        """Recompute the sums exactly from the buffer, re-centred on the window mean."""
        X, Y = self._window_rows()
        if self.intercept:
            self._ref_x, self._ref_y = X.mean(axis=0), Y.mean(axis=0)
        Z, V = X - self._ref_x, Y - self._ref_y
        self._sx, self._sy = Z.sum(axis=0), V.sum(axis=0)
        self._Sxx, self._Sxy, self._Syy = Z.T @ Z, Z.T @ V, V.T @ V
        if self._fourth:
            Z2 = Z * Z
            self._S4, self._S3 = Z2.T @ Z2, Z2.T @ Z
        self._since_refresh = 0

    def _centred(self) -> tuple[np.ndarray, ...]:
        """Centred scatter matrices and fourth moments of the window from the shifted sums."""
        n = self._n
        sx, sy = self._sx, self._sy
        if not self.intercept:
            return self._Sxx, self._Sxy, self._Syy, self._S4, np.zeros(self.M), np.zeros(self.M)
        m, mv = sx / n, sy / n
        Cxx = self._Sxx - n * np.outer(m, m)
        Cxy = self._Sxy - n * np.outer(m, mv)
        Cyy = self._Syy - n * np.outer(mv, mv)
        F4 = self._S4
        if self._fourth:
            Q = np.diag(self._Sxx)
            S3 = self._S3                       # S3[i, j] = sum z_i^2 z_j
            mi, mj = m[:, None], m[None, :]
            F4 = (self._S4 - 2.0 * mj * S3 - 2.0 * mi * S3.T + (mj * mj) * Q[:, None] + (mi * mi) * Q[None, :]
                  + 4.0 * mi * mj * self._Sxx - 2.0 * mi * mj * mj * sx[:, None] - 2.0 * mi * mi * mj * sx[None, :]
                  + n * mi * mi * mj * mj)
        return Cxx, Cxy, Cyy, F4, self._ref_x + m, self._ref_y + mv

    def estimate(self) -> ImpactEstimate:
        """The fit on the current window (cached until the next update)."""
        if self._cache is None:
            if self._n == 0:
                self._cache = _nan_estimate(self.M, 0, math.nan if isinstance(self.shrinkage, str) else self.shrinkage)
            else:
                Cxx, Cxy, Cyy, F4, mx, my = self._centred()
                if not self._fourth:
                    F4 = np.zeros((self.M, self.M))
                self._cache = _solve(self._n, Cxx, Cxy, Cyy, F4, mx, my, self.shrinkage, self.intercept)
        return self._cache

    @property
    def impact(self) -> np.ndarray:
        """``Lambda_hat`` of the current window."""
        return self.estimate().impact

    def __repr__(self) -> str:
        w = "expanding" if self.window is None else f"window={self.window}"
        return f"RollingImpactRegression(M={self.M}, {w}, shrinkage={self.shrinkage!r}, n={self._n})"


# ------------------------------------------------------------------ cross-impact statistics


def _square(impact) -> np.ndarray:
    L = np.asarray(impact, dtype=np.float64)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"impact must be a square M x M matrix (got shape {L.shape})")
    return L


def _indices(M: int, index, name: str) -> np.ndarray:
    i = np.atleast_1d(np.asarray(index))
    if i.dtype.kind not in "iu" or i.ndim != 1:
        raise ValueError(f"{name} must be integer contract indices")
    if np.any((i < 0) | (i >= M)):
        raise ValueError(f"{name} must be in [0, {M})")
    return i.astype(np.int64)


def straddle_cross_impact(impact, call_index, put_index) -> np.ndarray:
    """Footnote 34: ``Lambda_{C,P} + Lambda_{P,C}`` for each (call, put) pair of a straddle.

    ``call_index`` and ``put_index`` are contract indices (scalars or equal-length arrays);
    returns an array of the pairs' statistics.
    """
    L = _square(impact)
    c = _indices(L.shape[0], call_index, "call_index")
    p = _indices(L.shape[0], put_index, "put_index")
    if c.shape != p.shape:
        raise ValueError("call_index and put_index must have the same length")
    if np.any(c == p):
        raise ValueError("a straddle needs two different contracts")
    return L[c, p] + L[p, c]


def straddle_gradient(M: int, call_index, put_index) -> np.ndarray:
    """``G`` with ``straddle_cross_impact = sum(G * Lambda)``: (P, M, M), one per pair."""
    c = _indices(M, call_index, "call_index")
    p = _indices(M, put_index, "put_index")
    if c.shape != p.shape:
        raise ValueError("call_index and put_index must have the same length")
    G = np.zeros((c.size, M, M))
    r = np.arange(c.size)
    G[r, c, p] += 1.0
    G[r, p, c] += 1.0
    return G


def _weights(weights, M: int | None = None) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim not in (1, 2) or (M is not None and w.shape[-1] != M):
        raise ValueError(f"weights must be (M,) or (P, M){'' if M is None else f' with M = {M}'} (got {w.shape})")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite")
    return w


def portfolio_cross_impact(impact, weights) -> float | np.ndarray:
    """Footnote 35: ``CI^(m) = sum_{a != b} w_a (Lambda_ab + Lambda_ba) w_b`` (ordered pairs).

    ``weights`` over all M contracts (zero outside the portfolio's legs), (M,) for one
    portfolio or (P, M) for several. Equals ``2 (w' Lambda w - sum_a w_a^2 Lambda_aa)``.
    """
    L = _square(impact)
    w = _weights(weights, L.shape[0])
    W = np.atleast_2d(w)
    quad = np.einsum("pa,ab,pb->p", W, L, W)
    diag = (W * W) @ np.diag(L)
    out = 2.0 * (quad - diag)
    return float(out[0]) if w.ndim == 1 else out


def portfolio_gradient(weights) -> np.ndarray:
    """``G`` with ``portfolio_cross_impact = sum(G * Lambda)``: ``G_ab = 2 w_a w_b`` off the diagonal."""
    w = _weights(weights)
    W = np.atleast_2d(w)
    G = 2.0 * W[:, :, None] * W[:, None, :]
    idx = np.arange(W.shape[1])
    G[:, idx, idx] = 0.0
    return G[0] if w.ndim == 1 else G


def wing_cross_impact(impact, low, high) -> float:
    """Footnote 37's ``CI^wing``: the mean of ``Lambda_ab + Lambda_ba`` over a in the low
    wing and b in the high wing (contract indices)."""
    L = _square(impact)
    return float(np.sum(wing_gradient(L.shape[0], low, high) * L))


def wing_gradient(M: int, low, high) -> np.ndarray:
    lo = _indices(M, low, "low")
    hi = _indices(M, high, "high")
    if np.intersect1d(lo, hi).size:
        raise ValueError("the two wings must not share contracts")
    G = np.zeros((M, M))
    share = 1.0 / (lo.size * hi.size)
    np.add.at(G, (lo[:, None], hi[None, :]), share)
    np.add.at(G, (hi[None, :], lo[:, None]), share)
    return G


# ---------------------------------------------------------------------------------- smile


def smile_curvature(strikes, iv, forward: float, tau: float, *, delta: float = 0.25, method: str = "delta",
                    half_width: float = 0.3) -> float:
    """Smile curvature ``kappa_t`` of footnote 37 for one maturity.

    ``method="delta"`` (default): ``kappa = (sigma(-Delta) + sigma(+Delta)) / 2 - sigma(0)``,
    where ``sigma(+Delta)`` is the implied volatility at the strike whose (forward, Black)
    call delta is ``Delta`` (an out-of-the-money call), ``sigma(-Delta)`` at the strike whose
    put delta is ``-Delta`` (an out-of-the-money put), and ``sigma(0)`` at the forward
    (log-moneyness 0). The smile is interpolated linearly in log-moneyness between the
    given points (no extrapolation: NaN if a target strike or the forward is outside the
    quoted range); the delta strikes solve ``N(d1(k, sigma(k))) = Delta`` (resp. ``1 -
    Delta``) with the interpolated smile, so they move with the smile.

    ``method="quadratic"``: the coefficient ``c`` of ``iv = a + b k + c k^2`` fitted on
    ``|k| <= half_width`` (as :func:`elecflow.theory.derivatives.smile_curvature`).

    Parameters
    ----------
    strikes, iv : array_like (n,)
        Strikes (> 0) and their implied volatilities (NaN entries are dropped).
    forward, tau : float
        Forward of the maturity and its time to expiry in years (> 0).
    delta : float
        In (0, 0.5); 0.25 is the market's usual 25-delta.
    """
    K = np.asarray(strikes, dtype=np.float64)
    v = np.asarray(iv, dtype=np.float64)
    if K.ndim != 1 or v.shape != K.shape:
        raise ValueError(f"strikes and iv must be 1-d of the same length (got {K.shape}, {v.shape})")
    if not (math.isfinite(forward) and forward > 0 and math.isfinite(tau) and tau > 0):
        raise ValueError("forward and tau must be finite and > 0")
    if np.any(~np.isfinite(K)) or np.any(K <= 0):
        raise ValueError("strikes must be finite and > 0")
    k = np.log(K / forward)
    if method == "quadratic":
        from elecflow.theory.derivatives import smile_curvature as quadratic_curvature

        return quadratic_curvature(k, v, half_width)
    if method != "delta":
        raise ValueError(f"method must be 'delta' or 'quadratic' (got {method!r})")
    if not 0.0 < delta < 0.5:
        raise ValueError(f"delta must be in (0, 0.5) (got {delta!r})")
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 3:
        return math.nan
    k, v = k[ok], v[ok]
    order = np.argsort(k)
    k, v = k[order], v[order]
    if np.any(np.diff(k) == 0):
        raise ValueError("strikes must be distinct")
    if not k[0] <= 0.0 <= k[-1]:
        return math.nan
    sq = math.sqrt(tau)

    def sigma(x):
        return float(np.interp(x, k, v))

    def call_delta_gap(x, target):
        s = sigma(x)
        return float(ndtr((-x + 0.5 * s * s * tau) / (s * sq))) - target

    def solve(target):
        a, b = call_delta_gap(k[0], target), call_delta_gap(k[-1], target)
        if not a * b < 0:
            return math.nan
        return optimize.brentq(call_delta_gap, k[0], k[-1], args=(target,), xtol=1e-12)

    k_call, k_put = solve(delta), solve(1.0 - delta)
    if not (math.isfinite(k_call) and math.isfinite(k_put)):
        return math.nan
    return 0.5 * (sigma(k_put) + sigma(k_call)) - sigma(0.0)
