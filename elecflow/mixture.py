"""Closed-form prices, density and distribution function of a mixture of lognormals.

The terminal price ``S_T`` has the density::

    f(s) = sum_i w_i LN(s; mu_i, s_i^2),   w_i >= 0,  sum_i w_i = 1,

where ``LN(s; mu, s^2)`` is the density of ``exp(N(mu, s^2))``: ``meanlogs`` are the ``mu_i`` and
``sdlogs`` the ``s_i`` of ``log S_T`` in each component (total to expiry, not annualised). With
``E_i = exp(mu_i + s_i^2 / 2)`` the component means, European options with discount factor
``DF = e^{-r tau}`` are the weighted sums of Black-76 prices on the component means::

    C(K) = DF sum_i w_i [E_i N(d1_i) - K N(d2_i)],     P(K) = DF sum_i w_i [K N(-d2_i) - E_i N(-d1_i)],
    d1_i = (mu_i + s_i^2 - log K) / s_i,  d2_i = d1_i - s_i,

so put-call parity ``C - P = DF (E[S_T] - K)`` holds with the mixture mean
``E[S_T] = sum_i w_i E_i`` (:func:`lognormal_mixture_mean`; the forward when the mixture is a
risk-neutral density). Puts are evaluated directly, not through parity, so far
out-of-the-money puts keep their relative accuracy. This is the model of the R package RND
(Hamidieh, ``price.mln.option`` / ``dmln``) for any number of components; ``tests/test_mixture.py``
checks it against quadrature and the package's published example.

Broadcasting: the components lie along the **last** axis of ``weights``, ``meanlogs`` and
``sdlogs`` (which broadcast against each other); the strike (or ``x``) and ``discount``
broadcast against the remaining leading axes. A 1-d parameter set with strikes of shape
``(n,)`` gives shape ``(n,)``; parameters of shape ``(m, 2)`` with strikes ``(n, 1)`` give
``(n, m)``. Library layer: numpy/scipy only, no I/O.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

__all__ = [
    "lognormal_mixture_call",
    "lognormal_mixture_put",
    "lognormal_mixture_pdf",
    "lognormal_mixture_cdf",
    "lognormal_mixture_mean",
    "WEIGHT_SUM_TOL",
]

WEIGHT_SUM_TOL = 1e-9  # |sum(weights) - 1| allowed
_INV_SQRT_2PI = 0.3989422804014326779399460599343818684758586311649


def _components(weights, meanlogs, sdlogs):
    """Validated float64 parameter arrays broadcast to one shape ``(..., n_components)``."""
    w, mu, s = (np.asarray(a, dtype=np.float64) for a in (weights, meanlogs, sdlogs))
    if w.ndim == 0 or mu.ndim == 0 or s.ndim == 0:
        raise ValueError("weights, meanlogs and sdlogs need a component axis (the last axis)")
    try:
        w, mu, s = np.broadcast_arrays(w, mu, s)
    except ValueError as exc:
        raise ValueError(f"weights, meanlogs and sdlogs do not broadcast: {exc}") from None
    if w.shape[-1] == 0:
        raise ValueError("the mixture has no components")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(mu)) and np.all(np.isfinite(s))):
        raise ValueError("weights, meanlogs and sdlogs must be finite")
    if np.any(w < 0.0):
        raise ValueError(f"weights must be >= 0 (got min {float(w.min())!r})")
    total = w.sum(axis=-1)
    if np.any(np.abs(total - 1.0) > WEIGHT_SUM_TOL):
        worst = float(total.ravel()[np.argmax(np.abs(total - 1.0).ravel())])
        raise ValueError(f"weights must sum to 1 within {WEIGHT_SUM_TOL:g} (got {worst!r})")
    if np.any(s <= 0.0):
        raise ValueError(f"sdlogs must be > 0 (got min {float(s.min())!r})")
    return w, mu, s


def _points(x, name: str, allow_zero: bool):
    x = np.asarray(x, dtype=np.float64)
    if np.any(np.isnan(x)):
        raise ValueError(f"{name} must not be NaN")
    if np.any(x < 0.0) or (not allow_zero and np.any(x == 0.0)):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}")
    return x


def _discount(discount):
    df = np.asarray(discount, dtype=np.float64)
    if not (np.all(np.isfinite(df)) and np.all(df > 0.0)):
        raise ValueError("discount must be finite and > 0")
    return df


def _d1_d2(strike, mu, s):
    """``d1, d2`` with the strike on a new last axis; ``log 0 = -inf`` gives ``N(d) = 1``."""
    with np.errstate(divide="ignore"):
        log_k = np.log(strike)[..., None]
    d2 = (mu - log_k) / s
    return d2 + s, d2


def lognormal_mixture_mean(weights, meanlogs, sdlogs) -> np.ndarray:
    """Mixture mean ``E[S_T] = sum_i w_i exp(mu_i + s_i^2 / 2)`` (reduces the last axis)."""
    w, mu, s = _components(weights, meanlogs, sdlogs)
    return np.sum(w * np.exp(mu + 0.5 * s * s), axis=-1)


def lognormal_mixture_call(strike, weights, meanlogs, sdlogs, discount=1.0) -> np.ndarray:
    """Price of a European call under a lognormal mixture.

    Parameters
    ----------
    strike : array_like, >= 0
        Strikes (a zero strike gives the discounted mean).
    weights, meanlogs, sdlogs : array_like, components on the last axis
        Component probabilities (>= 0, summing to 1 within ``WEIGHT_SUM_TOL``), means and
        standard deviations (> 0) of ``log S_T`` in each component.
    discount : array_like, > 0
        ``DF = e^{-r tau}``.

    Returns
    -------
    numpy.ndarray
        ``DF sum_i w_i [E_i N(d1_i) - K N(d2_i)]``, shape ``broadcast(strike, discount,
        params[..., 0])``.

    Raises
    ------
    ValueError
        On invalid weights, sdlogs, discount or strikes.
    """
    w, mu, s = _components(weights, meanlogs, sdlogs)
    k, df = _points(strike, "strike", allow_zero=True), _discount(discount)
    d1, d2 = _d1_d2(k, mu, s)
    mean_i = np.exp(mu + 0.5 * s * s)
    undiscounted = np.sum(w * (mean_i * ndtr(d1) - k[..., None] * ndtr(d2)), axis=-1)
    return df * undiscounted


def lognormal_mixture_put(strike, weights, meanlogs, sdlogs, discount=1.0) -> np.ndarray:
    """Price of a European put under a lognormal mixture (same arguments as the call).

    ``DF sum_i w_i [K N(-d2_i) - E_i N(-d1_i)]``, evaluated directly (not by parity).
    """
    w, mu, s = _components(weights, meanlogs, sdlogs)
    k, df = _points(strike, "strike", allow_zero=True), _discount(discount)
    d1, d2 = _d1_d2(k, mu, s)
    mean_i = np.exp(mu + 0.5 * s * s)
    undiscounted = np.sum(w * (k[..., None] * ndtr(-d2) - mean_i * ndtr(-d1)), axis=-1)
    return df * undiscounted


def lognormal_mixture_pdf(x, weights, meanlogs, sdlogs) -> np.ndarray:
    """Density of ``S_T`` at ``x >= 0`` (0 at ``x = 0``)."""
    w, mu, s = _components(weights, meanlogs, sdlogs)
    x = _points(x, "x", allow_zero=True)
    positive = x > 0.0
    safe = np.where(positive, x, 1.0)
    z = (np.log(safe)[..., None] - mu) / s
    dens = np.sum(w * np.exp(-0.5 * z * z) / s, axis=-1) * _INV_SQRT_2PI / safe
    return np.where(positive, dens, 0.0)


def lognormal_mixture_cdf(x, weights, meanlogs, sdlogs) -> np.ndarray:
    """Distribution function ``P(S_T <= x)`` at ``x >= 0``."""
    w, mu, s = _components(weights, meanlogs, sdlogs)
    x = _points(x, "x", allow_zero=True)
    with np.errstate(divide="ignore"):
        z = (np.log(x)[..., None] - mu) / s
    return np.sum(w * ndtr(z), axis=-1)
