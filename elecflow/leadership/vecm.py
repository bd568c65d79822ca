"""Johansen maximum-likelihood VECM, lag-order selection and the trace test (library layer).

Model (Lütkepohl 2005, ch. 6-7; Johansen 1995), for ``K`` series ``y_t`` (rows of ``y``)::

    dy_t = alpha (beta' y_{t-1} + rho_c + rho_t t) + Gamma_1 dy_{t-1} + ... + Gamma_k dy_{t-k}
           + mu_c + mu_t t + u_t,            u_t ~ N(0, Sigma_u)

``alpha`` and ``beta`` are ``K x r`` (``r`` = cointegration rank), ``k`` = ``k_ar_diff``. The
deterministic terms use statsmodels' names: ``"n"`` none; ``"co"`` constant outside the
cointegration relation (``mu_c``); ``"ci"`` constant inside it (``rho_c``); ``"lo"`` linear
trend outside (``mu_t``); ``"li"`` linear trend inside (``rho_t``); combinations such as
``"colo"``, ``"coli"`` or ``"cili"`` (at most one constant and one trend). As in statsmodels
(and JMulTi), the trend outside counts ``t = 1, 2, ...`` with ``t = p + 1`` (``p = k + 1``) at
the first equation, the trend inside is that of ``t - 1``.

Estimation is Johansen's reduced-rank regression, computed from **moment matrices** only.
With ``Z0 = dy_t``, ``Z1 = [y_{t-1}; inside terms]``, ``Z2 = [lagged dy; outside terms]`` and
``M_ij = sum_t Z_i Z_j'``::

    S_ij = (M_ij - M_i2 M_22^{-1} M_2j) / T                      (partial out Z2)
    S_10 S_00^{-1} S_01 v = lambda S_11 v,   lambda_1 >= lambda_2 >= ...
    beta  = [v_1 .. v_r] normalised so its top r x r block is the identity
    alpha = S_01 beta (beta' S_11 beta)^{-1}
    [Gamma, mu] = (M_02 - alpha beta' M_12) M_22^{-1}
    Sigma_u = S_00 - alpha (beta' S_11 beta) alpha'              (ML: divisor T, no dof)
    llf = -T K/2 log(2 pi) - T/2 (log det S_00 + sum_{i<=r} log(1 - lambda_i)) - T K/2

These are statsmodels' ``VECM(...).fit(method="ml")`` quantities and layouts: ``alpha`` is
``K x r``; ``beta`` the ``K x r`` block of the levels, ``det_coef_coint`` the rows of the
inside terms (constant first, then trend); ``gamma = [Gamma_1 .. Gamma_k]`` is ``K x K k``
(columns of lag ``i`` ordered like the series); ``det_coef`` has the outside terms as columns
(constant first, then trend). The generalised eigenproblem is solved through the Cholesky
factors of ``S_00`` and ``S_11`` and a symmetric eigendecomposition, not by statsmodels'
non-symmetric ``eig``; after the normalisation of ``beta`` the results coincide.

Numerical conditioning. The moments are accumulated in *working coordinates*: levels
relative to a reference ``c`` and the trend relative to an origin and divided by a scale. That
is an exact reparametrisation whenever the model carries a constant that absorbs the shift
(levels: any constant; trend inside: any constant; trend outside: a constant outside); the
estimates are mapped back to statsmodels' coordinates exactly (``beta_orig = A11^{-T}
beta_work``, ``Gamma_orig = (Gamma_work - alpha beta_orig' A12) A22^{-1}`` for
``z_orig = A z_work``). Without such a constant (``"n"``, ``"lo"``, ``"li"``) the raw values
are used, as statsmodels does, and the problem itself is ill conditioned for prices far from
zero. Why it matters: moment (normal-equation) methods square the condition number, and for
prices near 500 moving by cents the partialled level moments ``M_11 - M_12 M_22^{-1} M_21``
cancel ~7 digits; statsmodels, which forms them from the raw levels, then deviates from the
exact estimate by ~1e-6 (relative), while the working coordinates keep ~1e-13
(``docs/leadership.md``).
The same numba kernel (:func:`elecflow.leadership._kernels.johansen_from_moments`) serves
:func:`fit_vecm` and the rolling estimator (:mod:`elecflow.leadership.rolling`).

Lag order: :func:`select_order` fits the levels VAR with ``p = k + 1 = 1 .. maxlags + 1``
lags on the common sample (the first ``maxlags + 1`` observations are presample) with the
model's deterministic terms and minimises AIC / BIC / HQ / FPE (Lütkepohl 2005, 4.3).

Rank: :func:`select_coint_rank` is the Johansen trace test, ``LR(r0) = -T sum_{i > r0}
log(1 - lambda_i)``, tested upwards from ``r0 = 0``; critical values from Osterwald-Lenum
(1992) (:data:`TRACE_CRITICAL_VALUES`, source below).

Library layer: numpy and numba only, no I/O. statsmodels is a test-only reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from elecflow.leadership import _kernels as _k

__all__ = [
    "DETERMINISTIC_TOKENS",
    "TRACE_CRITICAL_VALUES",
    "CointRankTest",
    "LagOrderSelection",
    "VECMFit",
    "fit_vecm",
    "select_coint_rank",
    "select_order",
]

#: statsmodels' names of the deterministic terms; a specification is ``"n"`` or a
#: concatenation of these (at most one constant and one trend).
DETERMINISTIC_TOKENS = ("co", "ci", "lo", "li")

# --------------------------------------------------------------------------------------
# Critical values of the trace test
# --------------------------------------------------------------------------------------

#: Asymptotic critical values of Johansen's trace statistic, Osterwald-Lenum, M. (1992),
#: "A note with quantiles of the asymptotic distribution of the maximum likelihood
#: cointegration rank test statistics", Oxford Bulletin of Economics and Statistics 54(3),
#: 461-472: Table 0 (no deterministic terms, ``"n"``), Table 1* (constant restricted to the
#: cointegration relation, ``"ci"``), Table 1 (unrestricted constant, ``"co"``), Table 2*
#: (restricted trend, unrestricted constant, ``"coli"``), Table 2 (unrestricted constant
#: and trend, ``"colo"``). ``{spec: {signif: (value for K - r0 = 1, ..., 11)}}``.
#: Transcription: the 95% and 99% columns as printed in the R package urca's ``ca.jo``
#: (Pfaff; Tables 1* and 2*) and in Stata's ``johans.ado`` (SSC S418701; all five tables);
#: Tables 1*, 1, 2* and 2 were compared entry by entry against a second, independent
#: transcription (identical). Table 0 rests on the ``johans.ado`` transcription only. The
#: tables were simulated (6,000 replications, T = 400), so the second decimal is noisy:
#: MacKinnon-Haug-Michelis (1999) put, e.g., 3.84 / 15.49 where Table 1 has 3.76 / 15.41.
TRACE_CRITICAL_VALUES: dict[str, dict[float, tuple[float, ...]]] = {
    "n": {
        0.05: (3.84, 12.53, 24.31, 39.89, 59.46, 82.49, 109.99, 141.20, 175.77, 212.67, 255.27),
        0.01: (6.51, 16.31, 29.75, 45.58, 66.52, 90.45, 119.80, 152.32, 187.31, 226.40, 269.81),
    },
    "ci": {
        0.05: (9.24, 19.96, 34.91, 53.12, 76.07, 102.14, 131.70, 165.58, 202.92, 244.15, 291.40),
        0.01: (12.97, 24.60, 41.07, 60.16, 84.45, 111.01, 143.09, 177.20, 215.74, 257.68, 307.64),
    },
    "co": {
        0.05: (3.76, 15.41, 29.68, 47.21, 68.52, 94.15, 124.24, 156.00, 192.89, 233.13, 277.71),
        0.01: (6.65, 20.04, 35.65, 54.46, 76.07, 103.18, 133.57, 168.36, 204.95, 247.18, 293.44),
    },
    "coli": {
        0.05: (12.25, 25.32, 42.44, 62.99, 87.31, 114.90, 146.76, 182.82, 222.21, 263.42, 310.81),
        0.01: (16.26, 30.45, 48.45, 70.05, 96.58, 124.75, 158.49, 196.08, 234.41, 279.07, 327.45),
    },
    "colo": {
        0.05: (3.74, 18.17, 34.55, 54.64, 77.74, 104.94, 136.61, 170.80, 208.97, 250.84, 295.99),
        0.01: (6.40, 23.46, 40.49, 61.24, 85.78, 114.36, 146.99, 182.51, 222.46, 263.94, 312.58),
    },
}


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deterministic:
    """A parsed deterministic specification (statsmodels' names, canonical order)."""

    const_outside: bool
    const_inside: bool
    trend_outside: bool
    trend_inside: bool

    @cached_property
    def name(self) -> str:
        parts = [tok for tok, on in (("co", self.const_outside), ("ci", self.const_inside),
                                     ("lo", self.trend_outside), ("li", self.trend_inside)) if on]
        return "".join(parts) or "n"

    @property
    def n_inside(self) -> int:
        return int(self.const_inside) + int(self.trend_inside)

    @property
    def n_outside(self) -> int:
        return int(self.const_outside) + int(self.trend_outside)

    @property
    def has_constant(self) -> bool:
        return self.const_outside or self.const_inside

    @property
    def has_trend(self) -> bool:
        return self.trend_outside or self.trend_inside


def parse_deterministic(deterministic) -> Deterministic:
    """Parse ``"n"`` or a concatenation of ``"co"``, ``"ci"``, ``"lo"``, ``"li"``."""
    if not isinstance(deterministic, str):
        raise ValueError(f"deterministic must be a string such as 'n', 'co', 'ci', 'colo' "
                         f"(got {deterministic!r})")
    spec = deterministic.strip().lower()
    if spec == "n":
        return Deterministic(False, False, False, False)
    tokens = [spec[i:i + 2] for i in range(0, len(spec), 2)]
    if not spec or len(spec) % 2 or any(t not in DETERMINISTIC_TOKENS for t in tokens):
        raise ValueError(f"unknown deterministic specification {deterministic!r}: use 'n' or a "
                         "combination of 'co', 'ci', 'lo', 'li' (statsmodels' names), e.g. 'colo'")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"deterministic specification {deterministic!r} repeats a term")
    det = Deterministic("co" in tokens, "ci" in tokens, "lo" in tokens, "li" in tokens)
    if det.const_outside and det.const_inside:
        raise ValueError(f"deterministic {deterministic!r}: choose one of 'co' and 'ci'")
    if det.trend_outside and det.trend_inside:
        raise ValueError(f"deterministic {deterministic!r}: choose one of 'lo' and 'li'")
    return det


def as_levels(y, name: str = "y") -> np.ndarray:
    """``y`` as a C-contiguous float64 ``(n_obs, n_series)`` array of finite values."""
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n_obs, n_series), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no series (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); drop or fill those "
                         "rows before estimating")
    return np.ascontiguousarray(arr)


def check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer (got {value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum} (got {value})")
    return int(value)


def check_model(n_obs: int, n_series: int, k_ar_diff, coint_rank, det: Deterministic,
                ) -> tuple[int, int]:
    """Validate lags and rank against the data size; returns ``(k_ar_diff, coint_rank)``."""
    k = check_int(k_ar_diff, "k_ar_diff", 0)
    r = check_int(coint_rank, "coint_rank", 0)
    if not 1 <= r <= n_series:
        raise ValueError(f"coint_rank must be between 1 and the number of series {n_series} "
                         f"(got {r})")
    n_regressors = n_series * (k + 1) + det.n_inside + det.n_outside
    nobs = n_obs - k - 1
    if nobs <= n_regressors:
        raise ValueError(
            f"too few observations: {n_obs} rows leave {nobs} equations after the "
            f"{k + 1} presample rows of k_ar_diff={k}, but each equation has {n_regressors} "
            f"regressors; need at least {n_regressors + k + 2} rows")
    return k, r


# --------------------------------------------------------------------------------------
# The fitted model
# --------------------------------------------------------------------------------------


def w_width(n_series: int, k_ar_diff: int) -> int:
    """Length of a regressor row ``w`` (see :mod:`elecflow.leadership._kernels`)."""
    return 2 * n_series + n_series * k_ar_diff + 2


_STATUS_MESSAGES = {
    _k.SINGULAR_SHORT_RUN: "the moments of the lagged differences and outside terms are singular",
    _k.SINGULAR_S00: "the residual moments of the differences are singular",
    _k.SINGULAR_S11: "the residual moments of the levels (and inside terms) are singular",
    _k.SINGULAR_NORMALISATION: "the top r x r block of beta is singular, so beta cannot be "
                               "normalised to an identity top block (reorder the series)",
    _k.NON_FINITE_RESULT: "the estimate is not finite (numerically degenerate sample)",
}


@dataclass(frozen=True, eq=False, repr=False)
class VECMFit:
    """Johansen ML estimate of a VECM, in statsmodels' conventions (module docstring).

    The parameters live in one read-only vector ``params`` (cheap to create on every rolling
    step); the named blocks are views into it:

    * ``alpha`` (K x r) loadings; ``beta`` (K x r) with an identity top ``r x r`` block;
    * ``det_coef_coint`` (#inside x r): rows constant, then trend (statsmodels splits them
      off ``beta`` the same way; ``beta_full`` stacks the two);
    * ``gamma`` (K x K k) = ``[Gamma_1 ... Gamma_k]``; ``det_coef`` (K x #outside): columns
      constant, then trend;
    * ``sigma_u`` (K x K), the ML residual covariance (divisor ``nobs``, no dof correction);
    * ``eigenvalues``: the ``K`` largest squared canonical correlations, descending;
    * ``llf``; ``nobs`` = number of equations (rows minus ``k_ar_diff + 1``).
    """

    params: np.ndarray
    n_series: int
    coint_rank: int
    k_ar_diff: int
    n_inside: int
    n_outside: int
    nobs: int
    deterministic: str

    @cached_property
    def _layout(self) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
        return params_layout(self.n_series, self.coint_rank, self.k_ar_diff, self.n_inside,
                             self.n_outside)

    def _block(self, index: int) -> np.ndarray:
        start, stop, shape = self._layout[index]
        return self.params[start:stop].reshape(shape)

    @property
    def alpha(self) -> np.ndarray:
        return self._block(0)

    @property
    def beta_full(self) -> np.ndarray:
        """``beta`` stacked over ``det_coef_coint``: the full cointegration vectors."""
        return self._block(1)

    @property
    def beta(self) -> np.ndarray:
        return self._block(1)[: self.n_series]

    @property
    def det_coef_coint(self) -> np.ndarray:
        return self._block(1)[self.n_series:]

    @property
    def gamma(self) -> np.ndarray:
        return self._block(2)[:, : self.n_series * self.k_ar_diff]

    @property
    def det_coef(self) -> np.ndarray:
        return self._block(2)[:, self.n_series * self.k_ar_diff:]

    @property
    def sigma_u(self) -> np.ndarray:
        return self._block(3)

    @property
    def eigenvalues(self) -> np.ndarray:
        return self._block(4)

    @property
    def llf(self) -> float:
        return float(self.params[-1])

    @property
    def pi(self) -> np.ndarray:
        """``Pi = alpha beta'`` (levels block)."""
        return self.alpha @ self.beta.T

    @property
    def gamma_lags(self) -> np.ndarray:
        """``Gamma_1 .. Gamma_k`` as an array ``(k, K, K)``."""
        K = self.n_series
        return self.gamma.reshape(K, self.k_ar_diff, K).transpose(1, 0, 2).copy()

    def __repr__(self) -> str:
        return (f"VECMFit(K={self.n_series}, coint_rank={self.coint_rank}, "
                f"k_ar_diff={self.k_ar_diff}, deterministic={self.deterministic!r}, "
                f"nobs={self.nobs}, llf={self.llf:.6g})")


def params_layout(n_series: int, coint_rank: int, k_ar_diff: int, n_inside: int,
                  n_outside: int) -> tuple[tuple[int, int, tuple[int, ...]], ...]:
    """``(start, stop, shape)`` of the blocks of :attr:`VECMFit.params`: alpha, beta_full,
    gamma_full, sigma_u, eigenvalues (``llf`` is the last entry)."""
    K, r = n_series, coint_rank
    p1 = K + n_inside
    p2 = K * k_ar_diff + n_outside
    blocks, start = [], 0
    for shape in ((K, r), (p1, r), (K, p2), (K, K), (K,)):
        stop = start + math.prod(shape)
        blocks.append((start, stop, shape))
        start = stop
    return tuple(blocks)


def fit_fields(n_series: int, coint_rank: int, k_ar_diff: int, det: Deterministic,
               nobs: int) -> dict:
    """The instance attributes of a :class:`VECMFit` but ``params``, with the block layout
    already in place (what every fit of one configuration shares)."""
    return dict(n_series=n_series, coint_rank=coint_rank, k_ar_diff=k_ar_diff,
                n_inside=det.n_inside, n_outside=det.n_outside, nobs=nobs,
                deterministic=det.name,
                _layout=params_layout(n_series, coint_rank, k_ar_diff, det.n_inside,
                                      det.n_outside))


def solve_from_moments(mw: np.ndarray, nobs: int, n_series: int, k_ar_diff: int,
                       coint_rank: int, det: Deterministic, shift: np.ndarray,
                       trend_offset: float, trend_scale: float) -> VECMFit:
    """Run the kernel on the moments; singular moment matrices raise ``ValueError``."""
    p1 = n_series + det.n_inside
    p2 = n_series * k_ar_diff + det.n_outside
    out = np.empty(_k.packed_size(n_series, coint_rank, p1, p2))
    ws_shape, iws_shape = _k.workspace_shapes(n_series, k_ar_diff, det.n_inside,
                                              det.n_outside)
    status = _k.johansen_from_moments(
        mw, float(nobs), n_series, k_ar_diff, coint_rank, int(det.const_outside),
        int(det.const_inside), int(det.trend_outside), int(det.trend_inside), shift,
        float(trend_offset), float(trend_scale), out, np.empty(ws_shape),
        np.empty(iws_shape, dtype=np.int64))
    return make_fit(status, out, n_series, coint_rank, k_ar_diff, det, nobs)


def failure_message(status: int) -> str:
    """Why the solver failed with ``status``."""
    return (f"{_STATUS_MESSAGES.get(status, f'solver status {status}')}: a series is constant "
            "or the series are collinear over the sample, or the deterministic terms "
            "duplicate each other")


def make_fit(status: int, out: np.ndarray, n_series: int, coint_rank: int, k_ar_diff: int,
             det: Deterministic, nobs: int) -> VECMFit:
    """Wrap a packed kernel result (or raise ``ValueError`` for a failed status)."""
    if status != _k.OK:
        raise ValueError(failure_message(status))
    out.flags.writeable = False
    return wrap_params(out, fit_fields(n_series, coint_rank, k_ar_diff, det, nobs))


def wrap_params(params: np.ndarray, fields: dict) -> VECMFit:
    """``VECMFit`` of a read-only packed result and :func:`fit_fields`.

    Equivalent to ``VECMFit(params, ...)`` - a frozen dataclass's ``__init__`` is one
    ``object.__setattr__`` per field - at a third of the cost (the rolling hot path); the
    precomputed layout spares every fit its first block access's layout computation.
    """
    fit = object.__new__(VECMFit)
    attributes = fit.__dict__
    attributes.update(fields)
    attributes["params"] = params
    return fit


def batch_moments(y: np.ndarray, k_ar_diff: int,
                  ) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    """Moments of a whole sample in well-conditioned working coordinates.

    Returns ``(mw, shift, trend_offset, trend_scale, nobs)``: levels relative to their mean,
    the working trend centred on the sample and scaled to ``[-1/2, 1/2]``.
    """
    n_obs, n_series = y.shape
    p = k_ar_diff + 1
    nobs = n_obs - p
    shift = y.mean(axis=0)
    tau_first = -(nobs - 1) / 2.0
    rows = np.empty((nobs, w_width(n_series, k_ar_diff)))
    _k.fill_rows(y, p, nobs, k_ar_diff, shift, tau_first, rows)
    mw = np.empty((rows.shape[1], rows.shape[1]))
    _k.cross_products(rows, mw)
    # statsmodels' outside trend of the first equation is p + 1
    trend_offset = p + 1 - tau_first
    return mw, shift, trend_offset, float(max(nobs, 1)), nobs


def fit_vecm(y, k_ar_diff: int = 1, coint_rank: int = 1, deterministic: str = "n") -> VECMFit:
    """Johansen maximum-likelihood VECM (statsmodels' ``VECM(...).fit()`` equivalent).

    Parameters
    ----------
    y : array_like, (n_obs, K)
        Levels, one column per series, oldest row first (finite values).
    k_ar_diff : int >= 0
        Number of lagged differences ``k`` (VAR order in levels minus one).
    coint_rank : int, 1 <= r <= K
        Cointegration rank.
    deterministic : str
        ``"n"``, ``"co"``, ``"ci"``, ``"lo"``, ``"li"`` or a combination (``"colo"``,
        ``"coli"``, ``"cili"``...), statsmodels' names.

    Returns
    -------
    VECMFit

    Raises
    ------
    ValueError
        NaN/inf in ``y``, an unknown deterministic string, a rank outside ``1..K``, too few
        observations for the lags and terms, or singular moment matrices.
    """
    levels = as_levels(y)
    det = parse_deterministic(deterministic)
    n_obs, n_series = levels.shape
    k, r = check_model(n_obs, n_series, k_ar_diff, coint_rank, det)
    mw, shift, trend_offset, trend_scale, nobs = batch_moments(levels, k)
    return solve_from_moments(mw, nobs, n_series, k, r, det, shift, trend_offset, trend_scale)


# --------------------------------------------------------------------------------------
# Lag order
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LagOrderSelection:
    """Lag orders (``k_ar_diff``, i.e. VAR order minus one) chosen by each criterion.

    ``criteria[name][k]`` is the criterion of ``k_ar_diff = k`` (``k = 0 .. maxlags``), all on
    the same ``nobs`` equations.
    """

    aic: int
    bic: int
    hqic: int
    fpe: int
    criteria: dict[str, np.ndarray]
    nobs: int
    maxlags: int
    deterministic: str


def select_order(y, maxlags: int, deterministic: str = "n") -> LagOrderSelection:
    """Choose ``k_ar_diff`` by AIC, BIC (Schwarz), Hannan-Quinn and FPE.

    The levels VAR with ``p = k + 1`` lags (``k = 0 .. maxlags``) and the model's deterministic
    terms (a constant if ``"co"`` or ``"ci"``, a trend if ``"lo"`` or ``"li"``) is fitted by OLS
    on the common sample ``t = maxlags + 2, ..., n_obs`` (1-based), so every order sees the
    same ``T`` equations. With ``Sigma`` the ML residual covariance, ``n = p K^2 + K d`` the
    free parameters (``d`` deterministic terms) and ``m = K p + d``::

        AIC = log det Sigma + 2 n / T        BIC = log det Sigma + log(T) n / T
        HQ  = log det Sigma + 2 log(log T) n / T
        FPE = ((T + m) / (T - m))^K det Sigma

    (Lütkepohl 2005, 4.3). statsmodels' ``vecm.select_order`` always adds an intercept to
    the VAR (even for ``"n"`` and ``"lo"``) and counts the constant twice when the model has
    one: that shifts each criterion by a constant and leaves the chosen orders unchanged
    whenever the model has a constant.
    """
    levels = as_levels(y)
    det = parse_deterministic(deterministic)
    maxlags = check_int(maxlags, "maxlags", 0)
    n_obs, n_series = levels.shape
    n_det = int(det.has_constant) + int(det.has_trend)
    nobs = n_obs - maxlags - 1
    largest = n_series * (maxlags + 1) + n_det
    if nobs <= largest:
        raise ValueError(f"too few observations for maxlags={maxlags}: {n_obs} rows leave "
                         f"{nobs} equations but the largest VAR has {largest} regressors")
    start = maxlags + 1
    target = levels[start:]
    deterministic_cols = []
    if det.has_constant:
        deterministic_cols.append(np.ones(nobs))
    if det.has_trend:
        # statsmodels' trend: 1 + the row's 0-based index in the whole sample
        deterministic_cols.append(np.arange(start, n_obs, dtype=np.float64) + 1.0)
    names = ("aic", "bic", "hqic", "fpe")
    crit = {name: np.empty(maxlags + 1) for name in names}
    for k in range(maxlags + 1):
        p = k + 1
        lagged = [levels[start - lag:n_obs - lag] for lag in range(1, p + 1)]
        x = np.column_stack(deterministic_cols + lagged)
        coef, *_ = np.linalg.lstsq(x, target, rcond=None)
        resid = target - x @ coef
        sigma = resid.T @ resid / nobs
        sign, logdet = np.linalg.slogdet(sigma)
        if sign <= 0:
            raise ValueError("the residual covariance of a VAR is singular: the series are "
                             "collinear or constant over the sample")
        n_free = p * n_series ** 2 + n_series * n_det
        crit["aic"][k] = logdet + 2.0 * n_free / nobs
        crit["bic"][k] = logdet + math.log(nobs) * n_free / nobs
        crit["hqic"][k] = logdet + 2.0 * math.log(math.log(nobs)) * n_free / nobs
        df_model = n_series * p + n_det
        crit["fpe"][k] = ((nobs + df_model) / (nobs - df_model)) ** n_series * math.exp(logdet)
    chosen = {name: int(np.argmin(crit[name])) for name in names}
    return LagOrderSelection(criteria=crit, nobs=nobs, maxlags=maxlags,
                             deterministic=det.name, **chosen)


# --------------------------------------------------------------------------------------
# Cointegration rank
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CointRankTest:
    """Johansen trace test, tested upwards from ``r0 = 0``.

    ``trace_stats[r0]`` tests ``H0: rank <= r0`` against ``rank <= K`` and
    ``critical_values[r0]`` is its critical value; ``rank`` is the first ``r0`` not rejected
    (``K`` if all are).
    """

    rank: int
    trace_stats: np.ndarray
    critical_values: np.ndarray
    eigenvalues: np.ndarray
    nobs: int
    signif: float
    deterministic: str


def select_coint_rank(y, k_ar_diff: int, deterministic: str = "co",
                      signif: float = 0.05) -> CointRankTest:
    """Cointegration rank by the Johansen trace test.

    ``deterministic`` selects Johansen's case and its Osterwald-Lenum table: ``"n"`` (no
    terms), ``"ci"`` (restricted constant), ``"co"`` (unrestricted constant), ``"coli"``
    (restricted trend) or ``"colo"`` (unrestricted trend). ``signif`` is 0.05 or 0.01;
    at most 11 series. The eigenvalues are those of :func:`fit_vecm` with the same
    specification, so ``"co"`` gives statsmodels' ``select_coint_rank(y, 0, k_ar_diff)``
    statistics and ``"n"`` those of ``det_order=-1`` (statsmodels' statistics differ for
    ``k_ar_diff = 0``, where its ``coint_johansen`` pairs ``dy_t`` with ``y_t``).
    """
    levels = as_levels(y)
    det = parse_deterministic(deterministic)
    if det.name not in TRACE_CRITICAL_VALUES:
        raise ValueError(f"no trace-test critical values for deterministic {deterministic!r}; "
                         f"use one of {sorted(TRACE_CRITICAL_VALUES)}")
    table = TRACE_CRITICAL_VALUES[det.name]
    if signif not in table:
        raise ValueError(f"signif must be one of {sorted(table)} (got {signif!r})")
    n_obs, n_series = levels.shape
    if n_series > len(table[signif]):
        raise ValueError(f"critical values are tabulated for at most {len(table[signif])} "
                         f"series (got {n_series})")
    k, _ = check_model(n_obs, n_series, k_ar_diff, 1, det)
    mw, shift, trend_offset, trend_scale, nobs = batch_moments(levels, k)
    fit = solve_from_moments(mw, nobs, n_series, k, 1, det, shift, trend_offset, trend_scale)
    lam = np.clip(fit.eigenvalues, 0.0, 1.0 - 1e-300)
    log_one_minus = np.log1p(-lam)
    trace = np.array([-nobs * log_one_minus[r0:].sum() for r0 in range(n_series)])
    crit = np.array([table[signif][n_series - r0 - 1] for r0 in range(n_series)])
    rejected = trace > crit
    rank = int(np.argmin(rejected)) if not rejected.all() else n_series
    return CointRankTest(rank=rank, trace_stats=trace, critical_values=crit,
                         eigenvalues=fit.eigenvalues, nobs=nobs, signif=signif,
                         deterministic=det.name)
