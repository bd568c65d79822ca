"""Rolling Johansen VECM from incremental sufficient statistics (library layer).

A window of the last ``window`` observations (rows of levels, e.g. one per second of engine
time on a 1-second grid) moves by one row per :meth:`RollingVECM.update`. The estimator keeps

* the last ``window`` levels (a double buffer: always one contiguous block),
* the regressor rows ``w_t = [dy_t | y_{t-1} - c | dy_{t-1..t-k} | 1 | tau_t]`` of the
  ``T = window - k_ar_diff - 1`` equations in the window (a ring buffer),
* their cross-product matrix ``M = sum_t w_t w_t'`` (``m x m``, ``m = 2K + K k + 2``).

A step adds the new equation's outer product and subtracts the one leaving
(``M += w_new w_new' - w_old w_old'``, O(m^2)), then solves the reduced-rank regression from
``M`` alone (:func:`elecflow.leadership._kernels.johansen_from_moments`: partialling out
the short-run regressors, a small symmetric eigenproblem, a few small solves) - no pass over
the window's data. Push and solve run in one compiled call on preallocated state (no
allocation per step; the fit returned is a read-only view into a block of packed results);
:meth:`RollingVECM.update_many` runs many steps in one compiled loop (same results bit for
bit). The window-relative trend (statsmodels restarts ``t`` at every window) and the level
reference ``c`` are exact linear reparametrisations handled by the solver, so the result
equals :func:`elecflow.leadership.fit_vecm` on the same ``window`` rows.

Drift. Adding and removing in floating point accumulates rounding in ``M``. Every
``recompute_every`` steps (default: ``window``, so the amortised cost stays O(m^2) per
step), and when the window first fills, ``M`` is recomputed from the level buffer with a
fresh level reference ``c`` (the window's mean) and trend origin (the window's centre);
between recomputations the levels are measured from ``c``, which keeps the sums well scaled
when prices sit far from zero. With ``recompute_every=0`` the estimator never recomputes
(only for measuring the drift).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from elecflow.leadership import _kernels as _k
from elecflow.leadership.vecm import (
    VECMFit,
    as_levels,
    check_int,
    check_model,
    failure_message,
    fit_fields,
    make_fit,
    parse_deterministic,
    w_width,
    wrap_params,
)

__all__ = ["RollingVECM", "rolling_fits"]

# The int state is 2-d: the solver's int scratch rows, then row ``_COUNTERS``: the mutable
# counters, then the fixed configuration - so that one numba call per step receives
# everything in a handful of arguments (each array argument costs ~50 ns of dispatch).
_COUNTERS = _k.INT_SCRATCH_ROWS
_N_BUF, _ABS_BUF0, _HEAD, _COUNT, _SINCE, _SEEN, _REBUILDS = range(7)
_WINDOW, _K_AR_DIFF, _RANK, _CO, _CI, _LO, _LI, _RECOMPUTE = range(7, 15)
_N_COUNTERS = 15
# The float workspace: the solver's slabs, then the moments M and a slab of vectors (rows:
# the newest regressor row, the level reference c, the trend origin in column 0).
_MW = _k.WORKSPACE_SLABS
_VECTORS = _k.WORKSPACE_SLABS + 1
_NEW_ROW, _SHIFT, _ORIGIN = range(3)
_NOT_READY = -1
_OK = _k.OK
_new_object = object.__new__
# Fits returned by update() are read-only views into blocks of this many packed results: a
# view (~60 ns) costs a fraction of a fresh array made read-only (~270 ns); a kept fit keeps
# its block alive.
_OUT_BLOCK_ROWS = 32


@nb.njit(cache=True)
def _rebuild(levels_buf, rows, mw, counters, vectors):  # pragma: no cover - numba
    """Fresh level reference and trend origin; rows refilled from the levels; M from scratch."""
    n_series = levels_buf.shape[1]
    n_eq = rows.shape[0]
    window = counters[_WINDOW]
    n_buf = counters[_N_BUF]
    p = counters[_K_AR_DIFF] + 1
    first_level = n_buf - window
    shift = vectors[_SHIFT]
    for i in range(n_series):
        acc = 0.0
        for r in range(first_level, n_buf):
            acc += levels_buf[r, i]
        shift[i] = acc / window
    first_eq = first_level + p
    # trend origin at the window's centre: |tau| <= n_eq / 2 until the next rebuild
    origin = float(counters[_ABS_BUF0] + first_eq) + 0.5 * (n_eq - 1)
    vectors[_ORIGIN, 0] = origin
    tau_first = (counters[_ABS_BUF0] + first_eq) - origin
    _k.fill_rows(levels_buf, first_eq, n_eq, counters[_K_AR_DIFF], shift, tau_first, rows)
    _k.cross_products(rows, mw)
    counters[_HEAD] = 0
    counters[_SINCE] = 0
    counters[_REBUILDS] += 1


@nb.njit(cache=True)
def _step(levels_buf, rows, ws, istate, y_new, out, out_row,
          solve):  # pragma: no cover - numba
    """Append one row of levels, update the moments and (``solve``) estimate into
    ``out[out_row]``.

    Returns ``NON_FINITE_ROW`` (nothing changed), ``_NOT_READY`` (window not full, or no
    solve requested) or the solver's status.
    """
    n_series = levels_buf.shape[1]
    for i in range(n_series):
        if not math.isfinite(y_new[i]):
            return _k.NON_FINITE_ROW
    counters = istate[_COUNTERS]
    mw = ws[_MW]
    vectors = ws[_VECTORS]
    shift = vectors[_SHIFT]
    capacity = levels_buf.shape[0]
    n_eq, width = rows.shape
    window = counters[_WINDOW]
    k_ar_diff = counters[_K_AR_DIFF]
    p = k_ar_diff + 1
    n_buf = counters[_N_BUF]
    if n_buf == capacity:
        # double buffer: keep the newest window - 1 rows at the front (amortised O(K))
        keep = window - 1
        for r in range(keep):
            for i in range(n_series):
                levels_buf[r, i] = levels_buf[capacity - keep + r, i]
        counters[_ABS_BUF0] += capacity - keep
        n_buf = keep
    for i in range(n_series):
        levels_buf[n_buf, i] = y_new[i]
    n_buf += 1
    counters[_N_BUF] = n_buf
    counters[_SEEN] += 1
    if counters[_SEEN] == 1:
        for i in range(n_series):  # provisional level reference until the first rebuild
            shift[i] = y_new[i]
        vectors[_ORIGIN, 0] = 0.0
    if counters[_SEEN] < p + 1:
        return _NOT_READY
    newest = n_buf - 1
    # the new regressor row goes to row _NEW_ROW of the vectors slab
    _k.fill_rows(levels_buf, newest, 1, k_ar_diff, shift,
                 (counters[_ABS_BUF0] + newest) - vectors[_ORIGIN, 0], vectors)
    w_new = vectors[_NEW_ROW]
    count = counters[_COUNT]
    if count == n_eq:
        head = counters[_HEAD]
        for a in range(width):  # M += w_new w_new' - w_old w_old'
            wa_new = w_new[a]
            wa_old = rows[head, a]
            for b in range(width):
                mw[a, b] += wa_new * w_new[b] - wa_old * rows[head, b]
        for a in range(width):
            rows[head, a] = w_new[a]
        counters[_HEAD] = (head + 1) % n_eq
        counters[_SINCE] += 1
        recompute = counters[_RECOMPUTE]
        if recompute > 0 and counters[_SINCE] >= recompute:
            _rebuild(levels_buf, rows, mw, counters, vectors)
    else:
        for a in range(width):
            rows[count, a] = w_new[a]
            for b in range(width):
                mw[a, b] += w_new[a] * w_new[b]
        count += 1
        counters[_COUNT] = count
        if count == n_eq:  # first full window: start from well-centred moments
            _rebuild(levels_buf, rows, mw, counters, vectors)
    if count < n_eq or not solve:
        return _NOT_READY
    abs_first_level = counters[_ABS_BUF0] + n_buf - window
    trend_offset = vectors[_ORIGIN, 0] - abs_first_level + 1.0
    return _k.johansen_from_moments(mw, float(n_eq), n_series, k_ar_diff, counters[_RANK],
                                    counters[_CO], counters[_CI], counters[_LO],
                                    counters[_LI], shift, trend_offset, float(n_eq),
                                    out[out_row], ws, istate)


@nb.njit(cache=True)
def _step_many(levels_buf, rows, ws, istate, y_rows, out, status):  # pragma: no cover - numba
    """:func:`_step` with a solve for every row of ``y_rows`` (finite, checked by the caller);
    results in ``out[i]`` and ``status[i]``."""
    for i in range(y_rows.shape[0]):
        status[i] = _step(levels_buf, rows, ws, istate, y_rows[i], out, i, True)


class RollingVECM:
    """Johansen VECM over a moving window, one observation per step.

    Parameters
    ----------
    n_series : int >= 1
        ``K``, the number of series (values in every row).
    window : int
        Rows of levels in the window (what :func:`fit_vecm` would be given); with the
        engine on a 1-second grid, ``window`` seconds. Equations per window:
        ``window - k_ar_diff - 1``.
    k_ar_diff, coint_rank, deterministic
        As in :func:`elecflow.leadership.fit_vecm`. Default ``"ci"``: quotes of one value
        differ by a stationary basis with a non-zero mean and do not drift over a window
        of seconds; and with a constant the levels are estimated relative to a reference,
        which keeps the moments well conditioned (see :mod:`elecflow.leadership.vecm`).
    recompute_every : int or None
        Rebuild the moments from the buffer every this many steps (``None``: ``window``;
        ``0``: never).

    :meth:`update` appends a row and returns the fit of the current window (``None``
    until the window is full, or when the window is degenerate, e.g. a series did not move
    at all; :attr:`last_error` then says why). :meth:`push` only updates the moments;
    :meth:`fit` solves for the current window (``ValueError`` when degenerate).
    """

    def __init__(self, n_series: int, window: int, k_ar_diff: int = 1, coint_rank: int = 1,
                 deterministic: str = "ci", recompute_every: int | None = None):
        self.n_series = check_int(n_series, "n_series", 1)
        window = check_int(window, "window", 2)
        self.det = parse_deterministic(deterministic)
        self.k_ar_diff, self.coint_rank = check_model(window, self.n_series, k_ar_diff,
                                                      coint_rank, self.det)
        self.window = window
        if recompute_every is None:
            recompute_every = window
        self.recompute_every = check_int(recompute_every, "recompute_every", 0)
        self.nobs = window - self.k_ar_diff - 1
        width = w_width(self.n_series, self.k_ar_diff)
        self._levels = np.zeros((2 * window, self.n_series))
        self._rows = np.zeros((self.nobs, width))
        # slabs of side ``width``: the moments need it, the solver's are no wider
        self._ws = np.zeros((_VECTORS + 1, width, width))
        solver_ints = _k.workspace_shapes(self.n_series, self.k_ar_diff, self.det.n_inside,
                                          self.det.n_outside)[1][1]
        self._istate = np.zeros((_COUNTERS + 1, max(solver_ints, _N_COUNTERS)),
                                dtype=np.int64)
        self._counters = self._istate[_COUNTERS]
        self._counters[_WINDOW:_N_COUNTERS] = (
            window, self.k_ar_diff, self.coint_rank, int(self.det.const_outside),
            int(self.det.const_inside), int(self.det.trend_outside),
            int(self.det.trend_inside), self.recompute_every)
        p1 = self.n_series + self.det.n_inside
        p2 = self.n_series * self.k_ar_diff + self.det.n_outside
        self._out_size = _k.packed_size(self.n_series, self.coint_rank, p1, p2)
        self._new_out_block()
        self._row_shape = (self.n_series,)
        self._fit_fields = fit_fields(self.n_series, self.coint_rank, self.k_ar_diff,
                                      self.det, self.nobs)
        self.last_error: str | None = None

    @property
    def n_seen(self) -> int:
        """Rows received so far."""
        return int(self._counters[_SEEN])

    @property
    def n_rebuilds(self) -> int:
        """How many times the moments were recomputed from the buffer."""
        return int(self._counters[_REBUILDS])

    @property
    def ready(self) -> bool:
        """Whether the window is full."""
        return int(self._counters[_COUNT]) == self.nobs

    def _new_out_block(self) -> None:
        self._out = np.empty((_OUT_BLOCK_ROWS, self._out_size))
        self._out_readonly = self._out.view()
        self._out_readonly.flags.writeable = False
        self._out_next = 0

    def _shape_error(self, row: np.ndarray) -> ValueError:
        return ValueError(f"y_row must be a vector of {self.n_series} values (got shape "
                          f"{row.shape})")

    def _no_fit(self, status: int) -> None:
        """A step without a fit: raise for a rejected (non-finite) row, record a solver
        failure in :attr:`last_error`; nothing for a window not yet full."""
        if status == _k.NON_FINITE_ROW:
            raise ValueError("y_row contains NaN or infinite values; skip or fill the row "
                             "before updating")
        if status != _NOT_READY:
            self.last_error = failure_message(status)

    def push(self, y_row) -> None:
        """Append one row of levels (``n_series`` finite values) and update the moments."""
        row = np.asarray(y_row, dtype=np.float64)
        if row.shape != self._row_shape:
            raise self._shape_error(row)
        status = _step(self._levels, self._rows, self._ws, self._istate, row, self._out, 0,
                       False)
        if status != _NOT_READY:
            self._no_fit(status)

    def update(self, y_row) -> VECMFit | None:
        """Append a row and estimate the current window in the same compiled call.

        Returns ``None`` until the window is full, or when the window is degenerate
        (:attr:`last_error` says why). Raises ``ValueError`` on a NaN/inf or misshapen row
        (the state is then unchanged). The fit's ``params`` is a read-only view into a block
        shared with neighbouring steps' fits.
        """
        row = np.asarray(y_row, dtype=np.float64)
        if row.shape != self._row_shape:
            raise self._shape_error(row)
        slot = self._out_next
        status = _step(self._levels, self._rows, self._ws, self._istate, row, self._out, slot,
                       True)
        if status != _OK:
            self._no_fit(status)
            return None
        fit = _new_object(VECMFit)  # wrap_params, inlined on the hot path
        attributes = fit.__dict__
        attributes.update(self._fit_fields)
        attributes["params"] = self._out_readonly[slot]
        if slot + 1 == _OUT_BLOCK_ROWS:
            self._new_out_block()
        else:
            self._out_next = slot + 1
        self.last_error = None
        return fit

    def update_many(self, rows) -> list[VECMFit | None]:
        """:meth:`update` for each row of ``rows`` (``n x K``), in one compiled loop.

        The same results as calling :meth:`update` row by row (bit for bit), without the
        per-row Python call: the form for replays and backtests. ``None`` entries as in
        :meth:`update`; :attr:`last_error` describes the last row. The fits' ``params`` are
        views into one read-only block. NaN/inf anywhere raises ``ValueError`` before any
        row is applied.
        """
        levels = as_levels(rows, "rows")
        if levels.shape[1] != self.n_series:
            raise ValueError(f"rows must have {self.n_series} columns (got {levels.shape[1]})")
        n_rows = levels.shape[0]
        out = np.empty((n_rows, self._out_size))
        status = np.empty(n_rows, dtype=np.int64)
        _step_many(self._levels, self._rows, self._ws, self._istate, levels, out, status)
        out.flags.writeable = False
        fits: list[VECMFit | None] = []
        self.last_error = None
        for i in range(n_rows):
            code = int(status[i])
            if code == _OK:
                fits.append(wrap_params(out[i], self._fit_fields))
                self.last_error = None
            else:
                fits.append(None)
                self._no_fit(code)
        return fits

    def fit(self) -> VECMFit:
        """Estimate the current window from the moments (``ValueError`` if not full or
        degenerate)."""
        if not self.ready:
            raise ValueError(f"the window is not full yet: {self.n_seen} of {self.window} rows")
        out = np.empty(self._out_size)
        n_buf = int(self._counters[_N_BUF])
        abs_first_level = int(self._counters[_ABS_BUF0]) + n_buf - self.window
        # statsmodels' outside trend is (window index of y_t) + 1 = tau + offset
        trend_offset = self._ws[_VECTORS, _ORIGIN, 0] - abs_first_level + 1.0
        det = self.det
        status = _k.johansen_from_moments(
            self._ws[_MW], float(self.nobs), self.n_series, self.k_ar_diff, self.coint_rank,
            int(det.const_outside), int(det.const_inside), int(det.trend_outside),
            int(det.trend_inside), self._ws[_VECTORS, _SHIFT], trend_offset,
            float(self.nobs), out, self._ws, self._istate)
        return make_fit(status, out, self.n_series, self.coint_rank, self.k_ar_diff, det,
                        self.nobs)

    def window_levels(self) -> np.ndarray:
        """A copy of the levels in the current window (oldest first), for checks."""
        n_buf = int(self._counters[_N_BUF])
        return self._levels[max(0, n_buf - self.window):n_buf].copy()

    def reset(self) -> None:
        """Forget all data (same configuration)."""
        for arr in (self._levels, self._rows, self._ws):
            arr[...] = 0.0
        self._counters[:_WINDOW] = 0
        self.last_error = None


def rolling_fits(y, window: int, k_ar_diff: int = 1, coint_rank: int = 1,
                 deterministic: str = "ci", recompute_every: int | None = None) -> list:
    """The fit of every full window of ``y``, oldest first (``None`` where degenerate):
    entry ``i`` is the window ending at row ``window - 1 + i``."""
    levels = as_levels(y)
    roll = RollingVECM(levels.shape[1], window, k_ar_diff, coint_rank, deterministic,
                       recompute_every)
    return roll.update_many(levels)[window - 1:]
