"""Denoised option-implied election probability: a local-level filter of mode B weights.

Each state refresh of a chain (:func:`elecflow.states.fit_states`, mode B) measures the
weight of the upper mixture component with a standard error. Measured on the synthetic day
(docs/states.md), those measurements are unbiased and serially uncorrelated (lag-1
autocorrelation of the error below 0.1), but their spread is 1.2-3.8x the Jacobian standard
error, and for index ETFs it is as large as the whole session's move of the true probability
(sd 0.015): a minute-by-minute weight tracks the truth with correlation 0.64-0.83 only.

The filter treats the upper weight as a random walk observed in white noise::

    x_t = x_{t-1} + eta_t,        Var(eta_t) = q * dt_t      (dt in minutes)
    y_t = x_t + eps_t,            Var(eps_t) = lam * se_t^2

with ``q`` (the probability's variance per minute) and ``lam`` (how much the fit's own
standard errors understate the noise) estimated by penalised maximum likelihood
(prediction-error decomposition, the first observation conditioned on, i.e. a diffuse
start; a lognormal prior of one e-fold on ``sqrt(q)`` around 0.002 per root-minute keeps a
quiet hour from driving ``q`` to zero) over the observations so far, re-estimated every ``refit_every`` observations once
``min_fit_observations`` are in. Until then the documented starting values hold. The
estimate uses only the chain's own option fits: no Kalshi level or variance enters, so the
filtered option-implied probability stays an independent measurement beside Kalshi's.

:meth:`ImpliedProbabilityFilter.update` (streaming) and :func:`filter_upper_weight` (batch,
fixed parameters) share one kernel; with the parameters in force they agree to the last bit
(tested). Library layer: numpy/scipy/numba only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from scipy.optimize import minimize

__all__ = ["FilterParams", "ImpliedProbabilityFilter", "filter_upper_weight", "fit_filter_params"]

DEFAULT_STATE_SD_PER_MINUTE = 0.002  # starting q^(1/2): of the size measured for the 2024 session
DEFAULT_NOISE_SCALE = 1.0  # starting lam: the fit's standard errors at face value
_LOG_BOUNDS = ((math.log(1e-2), math.log(1e4)), (math.log(1e-12), math.log(1e-1)))  # (log lam, log q)


@dataclass(frozen=True)
class FilterParams:
    noise_scale: float = DEFAULT_NOISE_SCALE  # lam: measurement variance = lam * se^2
    state_var_per_minute: float = DEFAULT_STATE_SD_PER_MINUTE ** 2  # q

    def __post_init__(self):
        if not (self.noise_scale > 0 and self.state_var_per_minute > 0):
            raise ValueError("noise_scale and state_var_per_minute must be positive")


@nb.njit(cache=True)
def _kernel(t_min, y, se, lam, q, x, p, t_last, started, means, variances):  # pragma: no cover - numba
    """Run the filter over observations; returns (x, p, t_last, started, loglik). The first
    observation of a fresh filter sets the state (diffuse start) and adds nothing to the
    log-likelihood."""
    loglik = 0.0
    for i in range(y.size):
        r = lam * se[i] * se[i]
        if not started:
            x, p, t_last, started = y[i], r, t_min[i], True
        else:
            p += q * max(t_min[i] - t_last, 0.0)
            s = p + r
            v = y[i] - x
            loglik += -0.5 * (math.log(2.0 * math.pi * s) + v * v / s)
            k = p / s
            x += k * v
            p *= 1.0 - k
            t_last = t_min[i]
        means[i] = x
        variances[i] = p
    return x, p, t_last, started, loglik


def _validated(t_min, y, se):
    t, yy, ss = (np.ascontiguousarray(a, dtype=np.float64).ravel() for a in (t_min, y, se))
    if not (t.size == yy.size == ss.size):
        raise ValueError(f"t_min, y and se must have one length (got {t.size}, {yy.size}, {ss.size})")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(yy)) and np.all(np.isfinite(ss)) and np.all(ss > 0)):
        raise ValueError("times and weights must be finite and standard errors finite and positive")
    if np.any(np.diff(t) < 0):
        raise ValueError("observation times must be non-decreasing")
    return t, yy, ss


def filter_upper_weight(t_min, y, se, params: FilterParams = FilterParams()):
    """Batch filter with fixed parameters. ``t_min``: observation times in minutes; ``y``: upper
    weights; ``se``: their standard errors. Returns ``(means, sds, loglik)`` (filtered, i.e.
    causal: each uses observations up to its own time)."""
    t, yy, ss = _validated(t_min, y, se)
    means, variances = np.empty(yy.size), np.empty(yy.size)
    *_, loglik = _kernel(t, yy, ss, params.noise_scale, params.state_var_per_minute, 0.0, 0.0, 0.0, False,
                         means, variances)
    return means, np.sqrt(variances), float(loglik)


def fit_filter_params(t_min, y, se, start: FilterParams = FilterParams(),
                      prior_state_sd: float | None = DEFAULT_STATE_SD_PER_MINUTE,
                      prior_log_sd_sd: float = 1.0) -> FilterParams:
    """Penalised maximum-likelihood ``(noise_scale, state_var_per_minute)`` (L-BFGS-B on their
    logs, within wide bounds). ``log sqrt(q)`` has a normal prior centred on
    ``log(prior_state_sd)`` with sd ``prior_log_sd_sd`` (one e-fold); None: plain maximum
    likelihood."""
    t, yy, ss = _validated(t_min, y, se)
    if yy.size < 3:
        raise ValueError("at least 3 observations are needed to estimate the filter parameters")
    means, variances = np.empty(yy.size), np.empty(yy.size)
    if prior_state_sd is None:
        prior_log_sd, prior_log_sd_sd = 0.0, math.inf
    else:
        if not (prior_state_sd > 0 and prior_log_sd_sd > 0):
            raise ValueError("prior_state_sd and prior_log_sd_sd must be positive")
        prior_log_sd = math.log(prior_state_sd)

    def nll(theta):
        *_, ll = _kernel(t, yy, ss, math.exp(theta[0]), math.exp(theta[1]), 0.0, 0.0, 0.0, False, means, variances)
        # a lognormal prior on the state sd: over a quiet hour the likelihood's maximum sits at
        # q = 0 (the local-level "pile-up"), which freezes the filter exactly when the
        # probability starts to move again (measured: QQQ 120-200 minutes into the session)
        z = (0.5 * theta[1] - prior_log_sd) / prior_log_sd_sd
        return (-ll + 0.5 * z * z) if math.isfinite(ll) else 1e300

    x0 = np.clip([math.log(start.noise_scale), math.log(start.state_var_per_minute)],
                 [b[0] for b in _LOG_BOUNDS], [b[1] for b in _LOG_BOUNDS])
    res = minimize(nll, x0, method="L-BFGS-B", bounds=_LOG_BOUNDS)
    return FilterParams(noise_scale=float(math.exp(res.x[0])), state_var_per_minute=float(math.exp(res.x[1])))


class ImpliedProbabilityFilter:
    """Streaming filter of one chain's mode B upper weight (module docstring).

    ``update(t_min, weight_upper, se)`` adds one identified fit and returns the filtered upper
    weight and its sd; ``predict(t_min)`` gives them at a time without a new measurement.
    Parameters are re-estimated every ``refit_every`` observations once
    ``min_fit_observations`` are in, on the last ``max_fit_observations`` (older ones are
    dropped then, and only then); the state is re-run over the kept history with the new
    parameters, so the output always equals :func:`filter_upper_weight` on the kept history
    with the parameters in force.
    """

    def __init__(self, refit_every: int = 15, min_fit_observations: int = 30, max_fit_observations: int = 600,
                 params: FilterParams = FilterParams()):
        if refit_every < 1 or min_fit_observations < 3 or max_fit_observations < min_fit_observations:
            raise ValueError("need refit_every >= 1 and 3 <= min_fit_observations <= max_fit_observations")
        self.refit_every = int(refit_every)
        self.min_fit_observations = int(min_fit_observations)
        self.max_fit_observations = int(max_fit_observations)
        self.params = params
        self.n_refits = 0
        self._n_total = 0
        self._t: list[float] = []
        self._y: list[float] = []
        self._se: list[float] = []
        self._state = (0.0, 0.0, 0.0, False)  # x, p, t_last, started
        self._one = (np.empty(1), np.empty(1))

    @property
    def n_observations(self) -> int:
        return len(self._y)

    def update(self, t_min: float, weight_upper: float, se: float) -> tuple[float, float]:
        t, y, s = _validated([t_min], [weight_upper], [se])
        if self._t and t[0] < self._t[-1]:
            raise ValueError(f"observation at {t[0]} min is before the previous one ({self._t[-1]} min)")
        self._t.append(float(t[0]))
        self._y.append(float(y[0]))
        self._se.append(float(s[0]))
        self._n_total += 1
        n = self._n_total
        if n >= self.min_fit_observations and (n - self.min_fit_observations) % self.refit_every == 0:
            # history is trimmed only here, so between refits the state is always the batch
            # filter over the kept history with the parameters in force
            del self._t[:-self.max_fit_observations], self._y[:-self.max_fit_observations]
            del self._se[:-self.max_fit_observations]
            n = len(self._y)
            self.params = fit_filter_params(self._t, self._y, self._se, self.params)
            self.n_refits += 1
            means, variances = np.empty(n), np.empty(n)
            *state, _ = _kernel(np.array(self._t), np.array(self._y), np.array(self._se), self.params.noise_scale,
                                self.params.state_var_per_minute, 0.0, 0.0, 0.0, False, means, variances)
        else:
            *state, _ = _kernel(t, y, s, self.params.noise_scale, self.params.state_var_per_minute, *self._state,
                                *self._one)
        self._state = tuple(state)
        x, p = self._state[0], self._state[1]
        return float(x), float(math.sqrt(p))

    def predict(self, t_min: float) -> tuple[float, float]:
        """Filtered upper weight and sd at ``t_min`` (no new measurement); NaN before the first."""
        x, p, t_last, started = self._state
        if not started:
            return math.nan, math.nan
        return float(x), float(math.sqrt(p + self.params.state_var_per_minute * max(t_min - t_last, 0.0)))
