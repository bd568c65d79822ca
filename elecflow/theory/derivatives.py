"""The option specialisation: states are prices of an underlying, portfolios are option books.

Replication (eq. 7, completed)
------------------------------
On a grid of states ``x_0 < ... < x_{N-1}`` any Arrow-Debreu portfolio ``W`` is the payoff
of the piecewise-linear function through ``(x_j, W_j)``, and that function is a bond, the
underlying and options struck at its kinks (the discrete Carr-Madan expansion around an
at-the-money state ``x_a``, 0 < a < N-1)::

    W(x) = W_a                                  bonds
         + s_R (x - x_a)                        underlying, financed at x_a
         + (s_R - s_L) (x_a - x)_+              one at-the-money put
         + sum_{0<j<a} kappa_j (x_j - x)_+      out-of-the-money puts
         + sum_{a<j<N-1} kappa_j (x - x_j)_+    out-of-the-money calls

with ``s_L, s_R`` the slopes left and right of ``x_a`` and ``kappa_j`` the change of slope
at ``x_j``: N instruments for N states. The paper's eq. (7) has only the underlying and
the out-of-the-money options struck at grid states; on the grid the put struck at ``x_0``
and the call struck at ``x_{N-1}`` pay nothing, and every instrument pays 0 at ``x_a``, so
(7) spans only portfolios with ``W(x_a) = 0`` and a common slope on both sides of
``x_a``: the bond and the at-the-money put complete it. :func:`replicate` returns the
book, :meth:`Replication.payoff` evaluates it.

Examples 7.1-7.3 and Figure 7
-----------------------------
:func:`example_signals` builds the paper's binary examples on a price grid (discretised
exactly by cell probabilities, conditioned on the grid): a mean signal (two normals,
equal variance, Example 7.1), a volatility signal (equal mean, Example 7.2) and a
skewness signal (mirror-image skew-normals with equal mean and variance, Example 7.3).

:func:`insider_smile` is Figure 7: the high-volatility story is true, the market maker's
prices are the posterior mixture of the two stories (K = 2: the log-odds are
``N(alpha*^2, 2 alpha*^2)`` under the true signal, ``alpha* = sqrt(2)``, whatever the
distributions and noise), each mixture is turned into Black implied volatilities, and the
smile is their expectation over order flow, by Gauss-Hermite quadrature over the log-odds
instead of the paper's 1,000 simulations. The states are the continuum of prices (the
limit of Remark 3.2), so each story's option prices are Black prices and the kernel's are
their posterior mixture. We use lognormal stories with the same mean (the forward): an
informed market maker would then quote a flat smile, and all the curvature is induced by
the insider's partially revealed information. (With normal stories, as in Example 7.2,
Black volatilities of a normal law are skewed even under full information.) The smile is
convex near the money and concave in the wings, where it flattens towards (and stays
below) the true volatility: a mixture of lognormal prices cannot imply more than its
largest volatility.

Library layer: numpy/scipy (and elecflow.options for implied volatilities).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from elecflow.options import black_implied_vol, black_price

__all__ = [
    "Replication",
    "replicate",
    "discretise",
    "example_signals",
    "sign_pattern",
    "option_payoffs",
    "SmileResult",
    "insider_smile",
    "smile_curvature",
]


# ------------------------------------------------------------------------------ replication


@dataclass(frozen=True)
class Replication:
    """An option book replicating an Arrow-Debreu portfolio on a state grid.

    ``bonds`` pay 1 in every state; ``underlying`` units pay ``x - atm``; option ``m`` pays
    ``quantities[m] * (strikes[m] - x)_+`` (put) or ``(x - strikes[m])_+`` (call).
    """

    atm: float
    bonds: float
    underlying: float
    strikes: np.ndarray
    quantities: np.ndarray
    is_call: np.ndarray

    def payoff(self, x) -> np.ndarray:
        """The book's payoff at prices ``x``."""
        x = np.asarray(x, dtype=np.float64)
        out = self.bonds + self.underlying * (x - self.atm)
        for k, n, c in zip(self.strikes, self.quantities, self.is_call):
            out = out + n * (np.maximum(x - k, 0.0) if c else np.maximum(k - x, 0.0))
        return out


def replicate(W, x, atm_index: int) -> Replication:
    """Bond + underlying + puts below / calls above ``x[atm_index]`` replicating ``W`` on ``x``.

    Parameters
    ----------
    W : array_like (N,)
        Arrow-Debreu holdings (the portfolio's payoff in each state).
    x : array_like (N,)
        Strictly increasing state prices, N >= 3.
    atm_index : int
        The at-the-money state, ``0 < atm_index < N - 1``.
    """
    w = np.asarray(W, dtype=np.float64)
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 1 or xs.size < 3 or w.shape != xs.shape:
        raise ValueError("W and x must be 1-d of the same length >= 3")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(w))):
        raise ValueError("W and x must be finite")
    if np.any(np.diff(xs) <= 0):
        raise ValueError("states x must be strictly increasing")
    a = int(atm_index)
    if not 0 < a < xs.size - 1:
        raise ValueError(f"atm_index must be an interior state, 0 < a < {xs.size - 1} (got {atm_index})")
    slopes = np.diff(w) / np.diff(xs)              # slope on [x_j, x_{j+1}]
    kinks = np.diff(slopes)                        # change of slope at x_1 .. x_{N-2}
    s_left, s_right = slopes[a - 1], slopes[a]
    strikes, qty, calls = [xs[a]], [s_right - s_left], [False]
    for j in range(1, xs.size - 1):
        if j < a:
            strikes.append(xs[j]), qty.append(kinks[j - 1]), calls.append(False)
        elif j > a:
            strikes.append(xs[j]), qty.append(kinks[j - 1]), calls.append(True)
    return Replication(float(xs[a]), float(w[a]), float(s_right), np.array(strikes), np.array(qty),
                       np.array(calls, dtype=bool))


def option_payoffs(x, strikes, is_call) -> np.ndarray:
    """Payoff matrix (N states x m options) of calls/puts struck at ``strikes``."""
    xs = np.asarray(x, dtype=np.float64)[:, None]
    k = np.asarray(strikes, dtype=np.float64)[None, :]
    c = np.broadcast_to(np.asarray(is_call, dtype=bool), k.shape)
    return np.where(c, np.maximum(xs - k, 0.0), np.maximum(k - xs, 0.0))


# ------------------------------------------------------------------------------- examples


def discretise(dist, x) -> np.ndarray:
    """Probabilities of a continuous law on the grid ``x``: the mass of each cell between
    midpoints (the end cells reach half a spacing beyond the grid), renormalised, i.e. the
    law conditioned on the grid's range. The result sums to 1."""
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 1 or xs.size < 2 or np.any(np.diff(xs) <= 0):
        raise ValueError("x must be a strictly increasing 1-d grid")
    mid = 0.5 * (xs[1:] + xs[:-1])
    edges = np.concatenate([[xs[0] - (mid[0] - xs[0])], mid, [xs[-1] + (xs[-1] - mid[-1])]])
    # differences of the CDF lose the far tails to cancellation; use the survival function there
    cdf, sf = dist.cdf(edges), dist.sf(edges)
    mass = np.where(edges[1:] <= dist.median(), np.diff(cdf), -np.diff(sf))
    mass = np.clip(mass, 0.0, None)
    if not mass.sum() > 0:
        raise ValueError("the law has no mass on the grid")
    return mass / mass.sum()


def _skewnorm_with(shape: float, mean: float, sd: float):
    """A skew-normal law with shape ``shape`` rescaled to the given mean and sd."""
    d = shape / math.sqrt(1.0 + shape * shape)
    m0 = d * math.sqrt(2.0 / math.pi)
    s0 = math.sqrt(1.0 - m0 * m0)
    scale = sd / s0
    return stats.skewnorm(shape, loc=mean - scale * m0, scale=scale)


def example_signals(kind: str, n_states: int = 161, center: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, eta)`` for the paper's binary examples on a price grid ``center -/+ 40``.

    ``kind``:
      - ``"mean"`` (Example 7.1): N(center + 5, 8^2) vs N(center - 5, 8^2);
      - ``"volatility"`` (Example 7.2): N(center, 12^2) vs N(center, 6^2);
      - ``"skew"`` (Example 7.3): skew-normals with shape +4 and -4, both with mean
        ``center`` and sd 10 (mirror images).

    Signal 1 (row 0) is the high-mean / high-volatility / right-skewed story.
    """
    if n_states < 11:
        raise ValueError("n_states must be >= 11")
    x = np.linspace(center - 40.0, center + 40.0, int(n_states))
    if kind == "mean":
        laws = (stats.norm(center + 5.0, 8.0), stats.norm(center - 5.0, 8.0))
    elif kind == "volatility":
        laws = (stats.norm(center, 12.0), stats.norm(center, 6.0))
    elif kind == "skew":
        laws = (_skewnorm_with(4.0, center, 10.0), _skewnorm_with(-4.0, center, 10.0))
    else:
        raise ValueError(f"kind must be 'mean', 'volatility' or 'skew' (got {kind!r})")
    return x, np.stack([discretise(d, x) for d in laws])


def sign_pattern(values, rel_tol: float = 1e-3) -> str:
    """The signs of ``values`` along the grid as a string of runs, e.g. ``"+-+"``; entries
    below ``rel_tol`` times the largest magnitude are ignored (tails)."""
    v = np.asarray(values, dtype=np.float64)
    big = np.abs(v) > rel_tol * np.max(np.abs(v))
    signs = np.where(v[big] > 0, "+", "-")
    return "".join(s for i, s in enumerate(signs) if i == 0 or s != signs[i - 1])


# ---------------------------------------------------------------------------------- smile


@dataclass(frozen=True)
class SmileResult:
    """Figure 7's smile: ``log_moneyness`` = log(K / F), ``mean_iv`` = E[IV] over order flow,
    ``iv_true`` the flat volatility of the true story, ``alpha`` the equilibrium constant."""

    log_moneyness: np.ndarray
    mean_iv: np.ndarray
    true_vol: float
    alt_vol: float
    alpha: float


def insider_smile(true_vol: float, alt_vol: float = 0.15, *, maturity: float = 1.0, forward: float = 1.0,
                  log_moneyness=None, nodes: int = 64) -> SmileResult:
    """Expected Black implied volatility across strikes when the insider knows the
    high-volatility story (Figure 7; see the module docstring for the specification).

    The state space is the continuum of prices (the limit of Remark 3.2): each story is a
    lognormal law with mean ``forward``, so its option prices are Black prices, and the
    equilibrium price of an option is the posterior mixture of the two.

    Parameters
    ----------
    true_vol, alt_vol : float
        Volatilities (annualised) of the true and of the alternative lognormal story.
    maturity, forward : float
        Option maturity in years and forward (= mean of both stories); rates are zero.
    log_moneyness : array_like, optional
        ``log(K / F)`` of the strikes (default -0.6 .. 0.6 by 0.02).
    nodes : int
        Gauss-Hermite nodes over the posterior log-odds.
    """
    for name, v in (("true_vol", true_vol), ("alt_vol", alt_vol), ("maturity", maturity), ("forward", forward)):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be finite and > 0")
    k = np.arange(-0.6, 0.6001, 0.02) if log_moneyness is None else np.asarray(log_moneyness, dtype=np.float64)
    if k.ndim != 1 or not np.all(np.isfinite(k)):
        raise ValueError("log_moneyness must be a finite 1-d array")
    from elecflow.theory.canonical import equilibrium_alpha  # K = 2: alpha* = sqrt(2)

    a = equilibrium_alpha(2).value
    strikes = forward * np.exp(k)
    otm_call = strikes >= forward                               # both stories have mean = forward
    prices = np.stack([black_price(forward, strikes, maturity, v, otm_call) for v in (true_vol, alt_vol)])
    z, w = np.polynomial.hermite_e.hermegauss(int(nodes))
    w = w / w.sum()
    q1 = special.expit(a * a + math.sqrt(2.0) * a * z)          # posterior weight of the true story
    mix = q1[:, None] * prices[0][None, :] + (1.0 - q1)[:, None] * prices[1][None, :]
    iv = black_implied_vol(mix, forward, strikes[None, :], maturity, otm_call[None, :])
    return SmileResult(k, w @ iv, float(true_vol), float(alt_vol), a)


def smile_curvature(log_moneyness, iv, half_width: float = 0.3) -> float:
    """Quadratic coefficient of a least-squares fit ``iv = a + b k + c k^2`` over
    ``|k| <= half_width`` (the curvature measure of footnote 37)."""
    k = np.asarray(log_moneyness, dtype=np.float64)
    v = np.asarray(iv, dtype=np.float64)
    sel = (np.abs(k) <= half_width) & np.isfinite(v)
    if sel.sum() < 3:
        raise ValueError("need at least 3 finite points within half_width")
    c = np.polyfit(k[sel], v[sel], 2)
    return float(c[0])
