"""Price-discovery shares from a fitted VECM (library layer: numpy only).

Setting. ``K`` prices of one asset, VECM ``dp_t = alpha beta' p_{t-1} + sum_i Gamma_i
dp_{t-i} + e_t``, ``Var(e_t) = Omega``, with ``r = K - 1`` cointegration relations (one
common trend). The common-trend representation (Johansen 1991; Hasbrouck 1995)::

    p_t = Xi sum_{s <= t} e_s + stationary,
    Xi = beta_perp (alpha_perp' Gamma(1) beta_perp)^{-1} alpha_perp'

with ``Gamma(1) = I - sum_i Gamma_i`` (:func:`long_run_impact`). With one common trend
``alpha_perp`` and ``beta_perp`` are vectors, so ``Xi = c beta_perp alpha_perp'`` for a
scalar ``c``: **every row of Xi is proportional to alpha_perp'**. When ``beta' iota = 0``
(the relations are price differences, e.g. ``beta = (1, -1)'``) ``beta_perp`` is ``iota``
and all rows are equal to ``psi' = c alpha_perp'``, the loading of the efficient price.
The shares below are invariant to the scale of ``psi``, so they need neither ``Gamma`` nor
``beta`` beyond its rank: this module uses ``psi = alpha_perp`` normalised to sum to one,
which is the direction of the rows of ``Xi``. (With several common trends, ``r < K - 1``,
the rows of ``Xi`` are no longer proportional and no single efficient price exists: a
``ValueError`` is raised.)

* Component share (Gonzalo & Granger 1995; Booth et al. 1999; Baillie et al. 2002): the
  weights of the permanent component ``f_t = alpha_perp' p_t``, normalised to sum to one::

      CS_j = alpha_perp_j / sum_i alpha_perp_i        (K = 2: CS_1 = alpha_2 / (alpha_2 - alpha_1))

* Hasbrouck (1995) information share: with ``F`` the lower Cholesky factor of the
  covariance of the markets taken in some order, ``IS_j = ([psi' F]_j)^2 / (psi' Omega psi)``
  for the market in position ``j``. It depends on the ordering; the bounds are its minimum
  and maximum over orderings. Exact over all ``K!`` orderings up to
  ``exact_max_markets`` (default 6); above, over ``n_orderings`` random orderings plus the
  ``2K`` orderings that put each market first and last (the bounds of a pair), and the
  number evaluated is reported. For K = 2 (Baillie, Booth, Tse & Zabotina 2002, with
  ``gamma_j`` the CS and ``Omega = [[s1^2, rho s1 s2], [rho s1 s2, s2^2]]``)::

      IS_1 (market 1 first) = (g1 s1 + g2 rho s2)^2 / (g1^2 s1^2 + 2 g1 g2 rho s1 s2 + g2^2 s2^2)
      IS_1 (market 2 first) = (g1 s1 sqrt(1 - rho^2))^2 / (same denominator)

* Modified (order-invariant) information share, Lien & Shrestha (2009): the factor
  ``F* = V G Lambda^{1/2} G'`` of ``Omega`` (``V = diag`` of the standard deviations,
  ``G Lambda G'`` the eigendecomposition of the correlation matrix), i.e. ``V`` times the
  symmetric square root of the correlation matrix; ``MIS_j = ([psi' F*]_j)^2 / psi' Omega psi``.
  It treats the markets symmetrically, so permuting them permutes the shares.

* Information leadership share, Yan & Zivot (2010), Putnins (2013): for two markets
  ``IL_1 = |IS_1 / IS_2 * CS_2 / CS_1|``, ``IL_2 = 1 / IL_1``, ``ILS_j = IL_j / (IL_1 + IL_2)``,
  i.e. ``ILS_1 = (IS_1/CS_1)^2 / ((IS_1/CS_1)^2 + (IS_2/CS_2)^2)``, with ``IS`` the
  midpoint of the Hasbrouck bounds (as in Putnins 2013). For ``K > 2`` this module uses
  the same form, ``ILS_j = (IS_j/CS_j)^2 / sum_i (IS_i/CS_i)^2`` - our generalisation (it
  reduces to Putnins' for K = 2; the literature defines ILS for pairs). A market with
  ``CS_j = 0`` gets the whole leadership share (split equally among such markets).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PriceDiscoveryShares",
    "long_run_impact",
    "orthogonal_complement",
    "price_discovery_shares",
]


def orthogonal_complement(a: np.ndarray) -> np.ndarray:
    """An orthonormal basis ``(K, K - r)`` of the vectors orthogonal to the columns of
    ``a`` (``K x r``, full column rank), from its SVD."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] >= a.shape[0]:
        raise ValueError(f"need a K x r matrix with r < K (got shape {a.shape})")
    u, sv, _ = np.linalg.svd(a, full_matrices=True)
    if sv[-1] <= 1e-12 * sv[0]:
        raise ValueError("the matrix does not have full column rank, so its orthogonal "
                         "complement has the wrong dimension")
    return u[:, a.shape[1]:]


def _check_pair(alpha, beta) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    if alpha.ndim == 1:
        alpha = alpha[:, None]
    if beta.ndim == 1:
        beta = beta[:, None]
    if alpha.ndim != 2 or beta.ndim != 2 or alpha.shape != beta.shape:
        raise ValueError(f"alpha and beta must both be K x r (got {alpha.shape} and "
                         f"{beta.shape}; pass the levels block of beta, not beta_full)")
    if not (np.all(np.isfinite(alpha)) and np.all(np.isfinite(beta))):
        raise ValueError("alpha and beta must be finite")
    return alpha, beta


def long_run_impact(alpha, beta, gamma=None) -> np.ndarray:
    """``Xi = beta_perp (alpha_perp' Gamma(1) beta_perp)^{-1} alpha_perp'`` (K x K).

    ``gamma`` is statsmodels' ``[Gamma_1 ... Gamma_k]`` (``K x K k``) or ``None`` for no
    lagged differences; ``Gamma(1) = I - sum_i Gamma_i``. ``Xi`` is the long-run effect of
    a unit innovation on the levels (Johansen 1991, Granger representation theorem).
    """
    alpha, beta = _check_pair(alpha, beta)
    n_markets, rank = alpha.shape
    gamma_one = np.eye(n_markets)
    if gamma is not None:
        gamma = np.asarray(gamma, dtype=np.float64)
        if gamma.ndim != 2 or gamma.shape[0] != n_markets or gamma.shape[1] % n_markets:
            raise ValueError(f"gamma must be K x (K k) with K = {n_markets} (got {gamma.shape})")
        gamma_one -= gamma.reshape(n_markets, -1, n_markets).sum(axis=1)
    a_perp = orthogonal_complement(alpha)
    b_perp = orthogonal_complement(beta)
    middle = a_perp.T @ gamma_one @ b_perp
    return b_perp @ np.linalg.solve(middle, a_perp.T)


@dataclass(frozen=True, eq=False)
class PriceDiscoveryShares:
    """Price-discovery shares of ``K`` markets (arrays of length ``K``, market order).

    ``psi``: ``alpha_perp`` normalised to sum to one (the direction of the rows of ``Xi``;
    equal to ``cs``). ``n_orderings``: Cholesky orderings evaluated for the IS bounds;
    ``exact``: whether they were all ``K!``.
    """

    is_lower: np.ndarray
    is_upper: np.ndarray
    mis: np.ndarray
    cs: np.ndarray
    ils: np.ndarray
    psi: np.ndarray
    n_orderings: int
    exact: bool

    @property
    def is_midpoint(self) -> np.ndarray:
        """Midpoint of the Hasbrouck bounds (sums to one for two markets)."""
        return 0.5 * (self.is_lower + self.is_upper)


def _hasbrouck_shares(psi: np.ndarray, omega: np.ndarray, orderings: np.ndarray) -> np.ndarray:
    """IS of every market under each ordering: ``(n_orderings, K)`` in market order."""
    permuted = omega[orderings[:, :, None], orderings[:, None, :]]
    try:
        factor = np.linalg.cholesky(permuted)
    except np.linalg.LinAlgError:
        raise ValueError("omega is not positive definite") from None
    loading = np.einsum("pk,pkj->pj", psi[orderings], factor)
    contributions = loading ** 2 / (psi @ omega @ psi)
    shares = np.empty_like(contributions)
    np.put_along_axis(shares, orderings, contributions, axis=1)
    return shares


def price_discovery_shares(alpha, beta, omega, *, exact_max_markets: int = 6,
                           n_orderings: int = 2000, seed: int = 0) -> PriceDiscoveryShares:
    """Hasbrouck IS bounds, Lien-Shrestha MIS, Gonzalo-Granger CS and Putnins' ILS.

    Parameters
    ----------
    alpha, beta : array_like, K x (K - 1)
        Loadings and cointegration vectors (levels block, statsmodels' ``fit.alpha`` and
        ``fit.beta``) of a VECM with one common trend.
    omega : array_like, K x K
        Innovation covariance (``fit.sigma_u``), symmetric positive definite.
    exact_max_markets : int
        Up to this many markets the IS bounds run over all ``K!`` orderings.
    n_orderings, seed : int
        Above that, the number of random orderings sampled (plus each market first and
        last) and the seed of the generator (results are reproducible).

    Raises
    ------
    ValueError
        Shapes, non-finite values, ``r != K - 1``, rank-deficient ``alpha``/``beta``,
        ``omega`` not symmetric positive definite, or ``alpha_perp`` summing to zero (then
        the component shares are undefined).
    """
    alpha, beta = _check_pair(alpha, beta)
    n_markets, rank = alpha.shape
    if n_markets < 2:
        raise ValueError("price discovery needs at least two markets")
    if rank != n_markets - 1:
        raise ValueError(
            f"the shares need exactly one common trend, i.e. coint_rank = K - 1 = "
            f"{n_markets - 1} (got {rank}): with {n_markets - rank} common trends the rows "
            "of the long-run impact matrix differ and there is no single efficient price")
    omega = np.asarray(omega, dtype=np.float64)
    if omega.shape != (n_markets, n_markets) or not np.all(np.isfinite(omega)):
        raise ValueError(f"omega must be a finite {n_markets} x {n_markets} matrix "
                         f"(got shape {omega.shape})")
    if not np.allclose(omega, omega.T, rtol=1e-10, atol=0.0):
        raise ValueError("omega must be symmetric")
    omega = 0.5 * (omega + omega.T)
    orthogonal_complement(beta)  # checks beta's rank
    a_perp = orthogonal_complement(alpha)[:, 0]
    total = a_perp.sum()
    if abs(total) <= 1e-12 * np.abs(a_perp).sum():
        raise ValueError("alpha_perp sums to zero: the component shares are undefined "
                         "(the markets' adjustments cancel)")
    psi = a_perp / total

    if n_markets <= exact_max_markets:
        orderings = np.array(list(itertools.permutations(range(n_markets))), dtype=np.int64)
        exact = True
    else:
        rng = np.random.default_rng(seed)
        sampled = np.argsort(rng.random((n_orderings, n_markets)), axis=1)
        extremes = []
        for j in range(n_markets):
            others = [i for i in range(n_markets) if i != j]
            extremes.append([j] + others)
            extremes.append(others + [j])
        orderings = np.vstack([np.array(extremes, dtype=np.int64), sampled])
        exact = False
    shares = _hasbrouck_shares(psi, omega, orderings)
    is_lower = shares.min(axis=0)
    is_upper = shares.max(axis=0)

    sd = np.sqrt(np.diag(omega))
    corr = omega / np.outer(sd, sd)
    eigval, eigvec = np.linalg.eigh(corr)
    if eigval[0] <= 0.0:
        raise ValueError("omega is not positive definite")
    factor = sd[:, None] * (eigvec * np.sqrt(eigval)) @ eigvec.T
    mis = (psi @ factor) ** 2 / (psi @ omega @ psi)

    cs = psi.copy()
    midpoint = 0.5 * (is_lower + is_upper)
    zero_cs = cs == 0.0
    if zero_cs.any():
        ils = zero_cs / zero_cs.sum()
    else:
        leadership = (midpoint / cs) ** 2
        ils = leadership / leadership.sum()
    return PriceDiscoveryShares(is_lower=is_lower, is_upper=is_upper, mis=mis, cs=cs, ils=ils,
                                psi=psi, n_orderings=len(orderings), exact=exact)
