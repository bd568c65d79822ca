"""Factor exposures of the 40 instruments: prior-informed betas, rolling variance decomposition.

**Intervals.** Betas are estimated on interval returns (``interval_seconds``, default 60 s):
at one second the slower instruments' quotes have not caught up with the market yet (their
quoted mids adjust with half-lives up to 30 s), so one-second betas of slow names are a
fraction of their true exposure (the Epps effect). Interval ``j`` covers the 1 s labels
``(b_j - D, b_j]`` on the UTC epoch grid; an asset's interval return is ``mid(b_j) /
mid(b_{j-1}) - 1`` (mids carried forward), a factor's is its 1 s returns compounded.

**Dimson betas.** ``y_j = sum_{l=0..L} b_l' F_{j-l} + e_j`` (``dimson_lags`` = L, default 1):
the lagged terms pick up the part of a slow quote's response that spills into the next
interval; the *total* beta on a factor is ``sum_l b_l``. No intercept (intraday drifts are
nil and an intercept only adds noise). The first ``L`` intervals of a run use zeros for the
lags they do not have.

**Prior and intraday update.** The regression's sufficient statistics start from the
baseline days' (``prior_weight`` x their sums, :mod:`elecflow.factors.baseline`) and are
updated each interval with exponential forgetting, ``S <- lam S + x x'`` with ``lam =
2^(-D / half-life)`` (``beta_halflife_hours``, default 6.5: one regular session halves the
weight of everything before it, prior included). Betas ``b = S_xx^{-1} S_xy`` per asset, once it has
``min_intervals`` effective intervals (prior included; default 20).

**Decomposition.** Realised variances per interval (means of squares; intraday means are nil
and removing a short window's sample mean only adds noise): over the last ``window_intervals``
intervals, with the current betas ``b``, ``total = mean(y^2)``, ``systematic = mean((b'x)^2)``,
``idiosyncratic = mean((y - b'x)^2)``; ``systematic_share = sys / (sys + idio)``. Per regime
(:func:`regime_of`: pre-open, regular, close, after-hours) the same are accumulated from
the start of the regime with *one-step-ahead* betas (those before the interval's own update),
so the regime figures are out of sample. ``idio_ratio`` compares the regime's idiosyncratic
variance with the baseline's in the same regime, both with the fixed prior betas.

:class:`IntervalAggregator` + :class:`FactorModel` are the streaming path (what the graph's
node owns); :func:`interval_returns_batch`, :func:`ew_betas_batch` and
:func:`rolling_decomposition_batch` are independent batch computations they are tested
against. Library layer: numpy only.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np

from elecflow.calendar import NS_PER_SECOND, ns_to_ny
from elecflow.factors.baseline import BaselineStats, RegimeStats, solve_betas
from elecflow.factors.weights import FF_FACTORS
from elecflow.leadership.regimes import RegimeCalendar, regime_name

__all__ = ["FactorModelSettings", "IntervalAggregator", "ClosedInterval", "FactorModel", "FactorStep",
           "regime_of", "interval_end", "dimson_regressors", "interval_returns_batch", "ew_betas_batch",
           "rolling_decomposition_batch"]


@dataclass(frozen=True)
class FactorModelSettings:
    interval_seconds: float = 60.0
    dimson_lags: int = 1
    beta_halflife_hours: float = 6.5
    window_intervals: int = 30
    prior_weight: float = 1.0
    ridge: float = 1e-10
    min_intervals: float = 20.0  # effective intervals (prior included) before an instrument's betas exist

    def __post_init__(self):
        if not (self.interval_seconds >= 1 and float(self.interval_seconds).is_integer()):
            raise ValueError(f"interval_seconds must be a whole number of seconds >= 1, got {self.interval_seconds}")
        if not (0 <= self.dimson_lags <= 10):
            raise ValueError(f"dimson_lags must be in 0..10, got {self.dimson_lags}")
        if not self.beta_halflife_hours > 0:
            raise ValueError(f"beta_halflife_hours must be positive, got {self.beta_halflife_hours}")
        if self.window_intervals < 2:
            raise ValueError(f"window_intervals must be >= 2, got {self.window_intervals}")
        if self.prior_weight < 0:
            raise ValueError(f"prior_weight must be >= 0, got {self.prior_weight}")
        if self.min_intervals < 1:
            raise ValueError(f"min_intervals must be >= 1, got {self.min_intervals}")

    @property
    def interval_ns(self) -> int:
        return int(self.interval_seconds) * NS_PER_SECOND

    @property
    def forgetting(self) -> float:
        return 0.5 ** (self.interval_seconds / (self.beta_halflife_hours * 3600.0))


# --------------------------------------------------------------------------- regimes


@functools.lru_cache(maxsize=64)
def _calendar(date: dt.date) -> RegimeCalendar:
    return RegimeCalendar(date)


def regime_of(label_ns: int) -> str:
    """Regime of the 1 s label (or interval end) ``label_ns``: the leadership analysis's regime
    calendar (:mod:`elecflow.leadership.regimes`: the sessions with the last half hour of the
    regular session split off as ``close``) at the instant just before the label, on its New
    York date: ``pre_open``, ``regular``, ``close``, ``after_hours``, ``results_night``, ``closed``."""
    t = int(label_ns) - 1
    return regime_name(_calendar(ns_to_ny(t).date()).regime_of(t))


def interval_end(label_ns: int, interval_ns: int) -> int:
    """End ``b`` of the interval ``(b - D, b]`` holding the label (multiples of D on the epoch grid)."""
    return -((-int(label_ns)) // interval_ns) * interval_ns


def dimson_regressors(F: np.ndarray, lags: int) -> np.ndarray:
    """``(J, K)`` interval factor returns -> ``(J, K (lags + 1))`` rows ``[F_j, F_{j-1}, ...]``
    (zeros before the first interval)."""
    F = np.asarray(F, dtype=np.float64)
    J, K = F.shape
    X = np.zeros((J, K * (lags + 1)))
    for l in range(lags + 1):
        X[l:, l * K:(l + 1) * K] = F[: J - l]
    return X


# --------------------------------------------------------------------------- interval aggregation


@dataclass
class ClosedInterval:
    end_ns: int
    factor_return: np.ndarray  # (K,) compounded
    asset_return: np.ndarray  # (A,) NaN where the asset had no mid at either end
    factor_seconds: int  # 1 s factor returns in the interval


class IntervalAggregator:
    """Streaming interval returns from 1 s factor returns and asset mids (labels non-decreasing).

    Asset rows labelled ``T`` must arrive before the factor return labelled ``T`` (the graph
    emits a second's factor returns just after that second's rows); an interval
    ``(b - D, b]`` closes when a factor return labelled ``b`` arrives, or when anything labelled
    after ``b`` does. Intervals with no data at all are not emitted: their moves fall into the
    next interval with data, for assets and factors alike (both are measured from the last mids).
    """

    def __init__(self, n_assets: int, n_factors: int, interval_ns: int):
        self.interval_ns = int(interval_ns)
        self._mid = np.full(n_assets, np.nan)
        self._start = np.full(n_assets, np.nan)
        self._growth = np.ones(n_factors)
        self._end: int | None = None
        self._seconds = 0
        self._has_data = False

    def _close_through(self, label_ns: int, out: list) -> None:
        """Close the open interval if it ends before ``label_ns``; open the one holding the label."""
        end = interval_end(label_ns, self.interval_ns)
        if self._end is None:
            self._end = end
            return
        if end <= self._end:
            return
        if self._has_data:
            self._emit(out)
        self._end = end

    def _emit(self, out: list) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            y = self._mid / self._start - 1.0
        out.append(ClosedInterval(self._end, self._growth - 1.0, y, self._seconds))
        self._start = self._mid.copy()
        self._growth = np.ones_like(self._growth)
        self._seconds = 0
        self._has_data = False

    def on_assets(self, label_ns: int, idx: np.ndarray, mid: np.ndarray) -> list[ClosedInterval]:
        out: list[ClosedInterval] = []
        self._close_through(label_ns, out)
        self._mid[np.asarray(idx, dtype=np.int64)] = mid
        self._has_data = True
        return out

    def on_factors(self, label_ns: int, F: np.ndarray) -> list[ClosedInterval]:
        out: list[ClosedInterval] = []
        self._close_through(label_ns, out)
        self._growth *= 1.0 + np.asarray(F, dtype=np.float64)
        self._seconds += 1
        self._has_data = True
        if int(label_ns) == self._end:
            self._emit(out)
            self._end += self.interval_ns
        return out


def interval_returns_batch(factor_labels: np.ndarray, F: np.ndarray, asset_labels: np.ndarray,
                           asset_idx: np.ndarray, asset_mid: np.ndarray, n_assets: int, interval_ns: int
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch counterpart of :class:`IntervalAggregator`: ``(ends, F_int (J, K), Y (J, A))``.

    Factor returns ``F`` (T, K) at ``factor_labels``; asset rows (label, index, mid) sorted by
    label. Only intervals holding at least one factor return or asset row are returned.
    """
    factor_labels = np.asarray(factor_labels, dtype=np.int64)
    asset_labels = np.asarray(asset_labels, dtype=np.int64)
    f_end = -((-factor_labels) // interval_ns) * interval_ns
    a_end = -((-asset_labels) // interval_ns) * interval_ns
    ends = np.union1d(f_end, a_end)
    J, K = ends.size, F.shape[1]
    growth = np.ones((J, K))
    np.multiply.at(growth, np.searchsorted(ends, f_end), 1.0 + F)
    # each asset's mid in force at each end: its last row with label <= end
    Y = np.full((J, n_assets), np.nan)
    for a in range(n_assets):
        sel = asset_idx == a
        if not sel.any():
            continue
        lab, mid = asset_labels[sel], np.asarray(asset_mid, dtype=np.float64)[sel]
        pos = np.searchsorted(lab, ends, side="right") - 1
        at_end = np.where(pos >= 0, mid[np.maximum(pos, 0)], np.nan)
        prev = np.concatenate(([np.nan], at_end[:-1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            Y[:, a] = at_end / prev - 1.0
    return ends, growth - 1.0, Y


# --------------------------------------------------------------------------- the model


@dataclass
class FactorStep:
    """What one interval's update gives (arrays over assets unless noted)."""

    end_ns: int
    regime: str
    x: np.ndarray  # (p,) regressors
    betas: np.ndarray  # (A, p) after the update
    total_betas: np.ndarray  # (A, K): sum over lags
    systematic_return: np.ndarray  # one-step-ahead b_prev' x
    window_total: np.ndarray
    window_systematic: np.ndarray
    window_idiosyncratic: np.ndarray
    window_intervals: np.ndarray
    regime_total: np.ndarray
    regime_systematic: np.ndarray
    regime_idiosyncratic: np.ndarray
    regime_intervals: np.ndarray
    baseline_idiosyncratic: np.ndarray  # per interval, this regime, fixed prior betas (NaN without baseline)
    idio_ratio: np.ndarray  # regime idio (prior betas) / baseline idio
    idio_var: np.ndarray  # EW residual variance per interval (ex-ante, for tracking errors)
    warm: np.ndarray  # bool: betas defined


class FactorModel:
    """Streaming betas and decomposition of ``symbols`` on the factors (see the module docstring)."""

    def __init__(self, symbols, settings: FactorModelSettings = FactorModelSettings(),
                 baseline: BaselineStats | None = None, factors: tuple[str, ...] = FF_FACTORS):
        self.symbols = tuple(symbols)
        self.factors = tuple(factors)
        self.settings = settings
        A, K, L = len(self.symbols), len(self.factors), settings.dimson_lags
        self.p = p = K * (L + 1)
        self.lam = settings.forgetting
        self.xx = np.zeros((A, p, p))
        self.xy = np.zeros((A, p))
        self.yy = np.zeros(A)
        self.n = np.zeros(A)
        self.prior_betas: np.ndarray | None = None
        self._baseline_idio: dict[str, np.ndarray] = {}
        if baseline is not None:
            if baseline.symbols != self.symbols or baseline.factors != self.factors \
                    or baseline.interval_seconds != settings.interval_seconds or baseline.dimson_lags != L:
                raise ValueError("baseline statistics were computed for other symbols, factors, interval or lags")
            pooled = baseline.pooled()
            w = settings.prior_weight
            self.xx, self.xy, self.yy, self.n = w * pooled.xx, w * pooled.xy, w * pooled.yy, w * pooled.n
            self.prior_betas = baseline.prior_betas(settings.ridge)
            self._baseline_idio = {r: st.residual_variance(self.prior_betas) for r, st in baseline.regimes.items()}
        self._betas = self._solve()
        self._lags = np.zeros(K * L)
        W = settings.window_intervals
        self._wx = np.zeros((W, p))
        self._wy = np.zeros((W, A))
        self._wm = np.zeros((W, A))
        self._wpos = 0
        self._wfill = 0
        self._steps = 0
        self.wxx = np.zeros((A, p, p))
        self.wxy = np.zeros((A, p))
        self.wyy = np.zeros(A)
        self.wn = np.zeros(A)
        self.wcross = np.zeros((A, A))  # sum y y' over the window (missing returns as 0)
        self._regimes: dict[str, np.ndarray] = {}  # name -> (6, A): n, y2, sys2, e2, e2_prior, n_prior

    @property
    def betas(self) -> np.ndarray:
        return self._betas

    @property
    def window_fill(self) -> int:
        """Intervals in the rolling window so far (at most ``window_intervals``)."""
        return self._wfill

    def total_betas(self, betas: np.ndarray | None = None) -> np.ndarray:
        b = self._betas if betas is None else betas
        K = len(self.factors)
        return b.reshape(b.shape[0], -1, K).sum(axis=1)

    def regressors(self, F: np.ndarray) -> np.ndarray:
        return np.concatenate((np.asarray(F, dtype=np.float64), self._lags))

    def step(self, end_ns: int, F: np.ndarray, y: np.ndarray, regime: str | None = None) -> FactorStep:
        """One interval: factor returns ``F`` (K,), asset returns ``y`` (A,; NaN = missing)."""
        F = np.asarray(F, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if F.shape != (len(self.factors),) or y.shape != (len(self.symbols),):
            raise ValueError(f"expected F of shape ({len(self.factors)},) and y of ({len(self.symbols)},)")
        regime = regime_of(end_ns) if regime is None else regime
        x = self.regressors(F)
        m = np.isfinite(y)
        y0 = np.where(m, y, 0.0)
        mf = m.astype(np.float64)

        # one-step-ahead quantities (betas before this interval's update)
        b_prev = self._betas
        sys_prev = b_prev @ x
        e_prev = y - sys_prev
        acc = self._regimes.setdefault(regime, np.zeros((6, len(self.symbols))))
        ok = m & np.isfinite(sys_prev)
        acc[0] += ok
        acc[1] += np.where(ok, y0 * y0, 0.0)
        acc[2] += np.where(ok, sys_prev * sys_prev, 0.0)
        acc[3] += np.where(ok, e_prev * e_prev, 0.0)
        if self.prior_betas is not None:
            e0 = y - self.prior_betas @ x
            ok0 = m & np.isfinite(e0)
            acc[4] += np.where(ok0, e0 * e0, 0.0)
            acc[5] += ok0

        # exponentially weighted update of the sufficient statistics, then the betas
        lam = self.lam
        xxT = np.outer(x, x)
        self.xx *= lam
        self.xx += mf[:, None, None] * xxT[None]
        self.xy *= lam
        self.xy += y0[:, None] * x[None, :]
        self.yy = lam * self.yy + y0 * y0
        self.n = lam * self.n + mf
        self._betas = b = self._solve()

        # rolling window of the last W intervals
        W = self.settings.window_intervals
        pos = self._wpos
        if self._wfill == W:
            xo, yo, mo = self._wx[pos], self._wy[pos], self._wm[pos]
            self.wxx -= mo[:, None, None] * np.outer(xo, xo)[None]
            self.wxy -= yo[:, None] * xo[None, :]
            self.wyy -= yo * yo
            self.wn -= mo
            self.wcross -= np.outer(yo, yo)
        else:
            self._wfill += 1
        self._wx[pos], self._wy[pos], self._wm[pos] = x, y0, mf
        self.wxx += mf[:, None, None] * xxT[None]
        self.wxy += y0[:, None] * x[None, :]
        self.wyy += y0 * y0
        self.wn += mf
        self.wcross += np.outer(y0, y0)
        self._wpos = (pos + 1) % W
        self._steps += 1
        if self._steps % W == 0:  # rebuild from the buffer: no drift from adding and removing
            self._rebuild_window()

        with np.errstate(invalid="ignore", divide="ignore"):
            wsys = np.einsum("ap,apq,aq->a", b, self.wxx, b)
            widio = self.wyy - 2.0 * np.einsum("ap,ap->a", b, self.wxy) + wsys
            wn = np.where(self.wn > 0, self.wn, np.nan)
            rn = np.where(acc[0] > 0, acc[0], np.nan)
            rn0 = np.where(acc[5] > 0, acc[5], np.nan)
            base = self._baseline_idio.get(regime, np.full(len(self.symbols), np.nan))
            idio_ew = (self.yy - 2.0 * np.einsum("ap,ap->a", b, self.xy)
                       + np.einsum("ap,apq,aq->a", b, self.xx, b)) / np.where(self.n > 0, self.n, np.nan)
            step = FactorStep(
                end_ns=int(end_ns), regime=regime, x=x, betas=b, total_betas=self.total_betas(b),
                systematic_return=sys_prev,
                window_total=self.wyy / wn, window_systematic=wsys / wn,
                window_idiosyncratic=np.maximum(widio, 0.0) / wn,
                window_intervals=self.wn.copy(),
                regime_total=acc[1] / rn, regime_systematic=acc[2] / rn, regime_idiosyncratic=acc[3] / rn,
                regime_intervals=acc[0].copy(),
                baseline_idiosyncratic=base, idio_ratio=(acc[4] / rn0) / base,
                idio_var=np.maximum(idio_ew, 0.0), warm=np.all(np.isfinite(b), axis=1))
        # lags for the next interval
        K = len(self.factors)
        if self._lags.size:
            self._lags = np.concatenate((F, self._lags[:-K]))
        return step

    def _solve(self) -> np.ndarray:
        """Betas from the current statistics; NaN rows until an instrument has ``min_intervals``
        effective intervals (a regression of 5 x (lags + 1) coefficients on a handful of
        intervals would be noise, however invertible the ridge makes it)."""
        b = solve_betas(self.xx, self.xy, self.settings.ridge)
        b[self.n < self.settings.min_intervals] = np.nan
        return b

    def _rebuild_window(self) -> None:
        X, Y, M = self._wx[: self._wfill], self._wy[: self._wfill], self._wm[: self._wfill]
        self.wxx = np.einsum("ja,jp,jq->apq", M, X, X)
        self.wxy = np.einsum("ja,jp->ap", Y, X)
        self.wyy = np.sum(Y * Y, axis=0)
        self.wn = M.sum(axis=0)
        self.wcross = Y.T @ Y

    def regime_summary(self) -> dict[str, dict[str, np.ndarray]]:
        """Per regime: intervals and realised variances per interval so far (one-step-ahead),
        and the idiosyncratic variance with the fixed prior betas against the baseline's."""
        out = {}
        for name, acc in self._regimes.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                n = np.where(acc[0] > 0, acc[0], np.nan)
                n0 = np.where(acc[5] > 0, acc[5], np.nan)
                base = self._baseline_idio.get(name, np.full(len(self.symbols), np.nan))
                out[name] = {"intervals": acc[0].copy(), "total": acc[1] / n, "systematic": acc[2] / n,
                             "idiosyncratic": acc[3] / n, "idiosyncratic_prior_betas": acc[4] / n0,
                             "baseline_idiosyncratic": base, "idio_ratio": (acc[4] / n0) / base}
        return out


# --------------------------------------------------------------------------- batch references


def ew_betas_batch(X: np.ndarray, Y: np.ndarray, lam: float, prior: RegimeStats | None = None,
                   prior_weight: float = 1.0, ridge: float = 1e-10) -> np.ndarray:
    """Betas after each interval, ``(J, A, p)``, from the explicitly weighted data: observation
    ``t`` has weight ``lam^(j - t)`` at step ``j`` and the prior ``prior_weight lam^(j + 1)``."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    J, A = Y.shape
    p = X.shape[1]
    out = np.empty((J, A, p))
    M = np.isfinite(Y).astype(float)
    Y0 = np.where(M > 0, Y, 0.0)
    for j in range(J):
        w = lam ** (j - np.arange(j + 1))
        xx = np.einsum("t,ta,tp,tq->apq", w, M[: j + 1], X[: j + 1], X[: j + 1])
        xy = np.einsum("t,ta,tp->ap", w, Y0[: j + 1], X[: j + 1])
        if prior is not None:
            xx = xx + prior_weight * lam ** (j + 1) * prior.xx
            xy = xy + prior_weight * lam ** (j + 1) * prior.xy
        out[j] = solve_betas(xx, xy, ridge)
    return out


def rolling_decomposition_batch(X: np.ndarray, Y: np.ndarray, B: np.ndarray, window: int
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(total, systematic, idiosyncratic)``, each ``(J, A)``: realised variances per interval over
    the last ``window`` intervals at each step ``j``, with that step's betas ``B[j]`` (A, p)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    J, A = Y.shape
    tot, sys, idio = (np.full((J, A), np.nan) for _ in range(3))
    for j in range(J):
        lo = max(0, j - window + 1)
        for a in range(A):
            y = Y[lo: j + 1, a]
            ok = np.isfinite(y)
            if not ok.any():
                continue
            s = X[lo: j + 1][ok] @ B[j, a]
            tot[j, a] = np.mean(y[ok] ** 2)
            sys[j, a] = np.mean(s ** 2)
            idio[j, a] = np.mean((y[ok] - s) ** 2)
    return tot, sys, idio
