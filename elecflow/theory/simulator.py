"""Simulator of informed option trading built from the Arrow-Debreu/Kyle equilibrium.

The market
----------
One underlying, one expiry, M option contracts (calls and puts across strikes). There are
K "stories" about the terminal price ``S_T``: under story k, ``log S_T ~ N(meanlog_k,
sdlog_k^2)`` (lognormal states, the parametrisation of :mod:`elecflow.mixture`). For the
election K = 2 and the stories are the Trump and Harris states of docs/states.md
(:meth:`LognormalStories.election` takes them from the synthetic universe); generally any
K lognormal stories (volatility, level, skew signals ...). Contract j pays ``phi_j(S_T)``;
its expected discounted payoff under story k is the Black-76 price on the story's law,
``Pi[k, j]`` (a K x M matrix).

The contracts are the paper's securities, with the payoffs ``Pi`` in place of the state
distributions ``eta`` (footnote 15: the results hold for any payoff function) and the
noise traders in the *option* markets: noise order flow ``eps_j ~ N(0, sigma_j^2)``
contracts per period in contract j. :class:`PayoffKyleModel` is :class:`ADKyleModel`
with that one generalisation (real payoffs instead of distributions), so the insider's
demand is the library's corrected equilibrium: in closed form (K = 2 always, or stories in
the regular-simplex class (*), uniform prior)::

    W*_k = (alpha*(K) / sqrt(g)) Sigma^2 Pi' Q e_k,     g from Q (Pi Sigma^2 Pi') Q = g Q,

for K = 2 ``W*_1 = -W*_2 = alpha* Sigma^2 (Pi_1 - Pi_2) / (sqrt(2) tau)`` with ``tau^2 =
sum_j sigma_j^2 (Pi_1j - Pi_2j)^2``: the insider buys the contracts that pay more under his
story, in proportion to the payoff difference and to the noise variance; numerically
otherwise (non-uniform prior, e.g. an election probability other than 1/2, or generic
K >= 3 stories). Eq. (37) as printed is not used (docs/theory.md, "What holds").

Each period t = 0 .. T-1 is one play of the paper's one-shot game:

1. the true story ``s_t``: fixed for the session (the election: one outcome, drawn from the
   prior or given) or redrawn from the prior every period (``redraw_story=True``);
2. the insider sends ``W*(. | s_t)``, noise traders ``eps_t``; the market maker sees the net
   signed flow ``omega_t = W*(. | s_t) + eps_t`` in every contract (rounded to whole
   contracts with ``integer_orders``: the rounding is part of the noise);
3. the market maker prices every contract at its posterior expected payoff, ``P(omega_t) =
   Pi' q(omega_t)`` (Theorem 4.1, Cor. 7.8). For the election this is the two-lognormal
   mixture price (:func:`elecflow.mixture.lognormal_mixture_call`) with the posterior Trump
   weight ``q_1``: the pricing kernel *is* the de-mixing model of docs/states.md.

The market maker does not carry his posterior from one period to the next: each period
starts from the prior ``pi0`` again (a dynamic equilibrium, in which he learns across
periods and the insider spreads his trading over time, is outside the paper). Given the
story, prices are therefore i.i.d. over periods, and the quote before the first period is
the prior price ``pi0' Pi``. The stories' laws are held fixed during the session (no time
decay, no move of the underlying): the session is short against the time to expiry.

Which Lambda is "theoretical"
-----------------------------
The price-impact matrix at order flow ``omega`` is ``Lambda(omega) = dP/domega = Pi' C(omega)
c' Pi`` (Cor. 5.2 with ``W~ = Sigma^2 Pi' c``, ``C = diag q - q q'``). The *theoretical*
matrix of this module is its expectation given the story, ``E[Lambda | s_k]``
(:meth:`OptionMarketModel.theoretical_impact`, from ``ADKyleModel.expected_impact``). In the
closed-form case it is ::

    E[Lambda | s_k]_ij = (alpha*(K) / sqrt(g)) E[ Cov_q(Pi_i, Pi_j) | s_k ],

eq. (38) with the corrected constant ``alpha*/sqrt(g)`` in place of the printed ``(1 -
1/K) alpha* / sqrt(sigma_i sigma_j)`` (:meth:`OptionMarketModel.paper_impact`). Both are
proportional to the posterior payoff covariance, so they have the same sign pattern, but
the printed constant has the wrong units here (dollars^2 per root-contract instead of
dollars per contract) and is not invariant to rescaling the payoffs; for constant sigma the
two differ by one scalar. (Stated on Arrow-Debreu states with noise in each state's market,
Cor. 7.5 gives the same shape between options, ``phi_i' Lambda_AD phi_j``, with ``g``
computed from the states: only the scalar depends on where the noise traders are.)

The regression of eq. (45) estimates it exactly: given the story, ``omega ~ N(W*_k,
Sigma^2)`` is Gaussian, and Stein's lemma gives ``Cov(P(omega), omega | s_k) = E[Lambda |
s_k] Sigma^2``, so the population slope of ``dp_t`` on ``omega_t`` *with an intercept* is
``E[Lambda | s_k]`` (``dp_t = P(omega_t) - P(omega_{t-1})``: the lagged price is independent of
``omega_t``). When the story is redrawn every period, the flows mix K Gaussians and the slope
is instead ``(Lbar Sigma^2 + Cov_k(E[P|s_k], W*_k)) (Sigma^2 + Cov_k(W*_k))^{-1}``
(:meth:`OptionMarketModel.regression_impact`): the informed flow's own variation across
stories enters, and it is *not* the prior average ``Lbar`` of eq. (38).

Files
-----
:func:`write_option_market` writes the session in the vendors' formats
(docs/theory.md, "Simulator and streaming estimator"):

- quotes as a ThetaData snapshot file, ``thetadata/<ROOT>_<EXP>_<DATE>.csv`` (raw fields,
  read by the repository's ``thetadata_raw`` reader) or ``.parquet`` (the formatted
  variant, ``thetadata_formatted``): one snapshot of every contract before the session and
  after each period, bid/ask around the model price;
- trades as ``thetadata_trades/<ROOT>_<EXP>_<DATE>.csv``: ThetaData's option trade tick
  fields (v2 ``hist/option/trade``) with the contract columns of its bulk responses, plus one
  column that no vendor file has, ``side`` (``B``/``S``: the aggressor, i.e. the sign of the
  period's net flow). One print per contract and period with non-zero net flow, at the batch
  price; ``sum(side * size)`` per contract and period is ``omega``;
- ground truth under ``ground_truth/`` (stories, insider and noise orders, posterior, the
  model's matrices), which the repository's discovery skips.

Deterministic from ``seed`` (independent streams for the stories, the noise and the
cosmetic quote fields). Library layer: numpy/scipy/pyarrow.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from elecflow.calendar import NS_PER_SECOND, utc_ns
from elecflow.mixture import lognormal_mixture_call, lognormal_mixture_put
from elecflow.theory.model import ADKyleModel, validated_noise_and_prior

__all__ = [
    "LognormalStories",
    "PayoffKyleModel",
    "OptionMarketModel",
    "OptionMarketSimulation",
    "simulate_option_market",
    "write_option_market",
    "THETADATA_QUOTE_COLUMNS",
    "OPTION_TRADE_COLUMNS",
    "DEFAULT_RATE",
]

DEFAULT_RATE = 0.0483           # the synthetic day's risk-free rate (elecflow.synth.config)
DEFAULT_NOISE_SD = 20.0         # noise-trader flow, contracts per period per contract
MS_PER_DAY = 86_400_000
THETADATA_QUOTE_COLUMNS = ("root", "exp", "strike", "right", "date", "ms_of_day", "bid_size", "bid_exchange", "bid",
                           "bid_condition", "ask_size", "ask_exchange", "ask", "ask_condition")
# ThetaData's option trade ticks (v2 hist/option/trade) behind the contract columns of its bulk
# responses; `side` is ours. The contract expiry is `expiration`, not the quote files' `exp`:
# with `exp` the file would share 5 of the 7 columns by which discovery recognises ThetaData
# quote files, be taken for one and rejected for lacking bid/ask.
OPTION_TRADE_COLUMNS = ("root", "expiration", "strike", "right", "ms_of_day", "sequence", "ext_condition1",
                        "ext_condition2", "ext_condition3", "ext_condition4", "condition", "size", "exchange", "price",
                        "condition_flags", "price_flags", "volume_type", "records_back", "date", "side")
TRADE_CONDITION = 0             # opaque, the same on every print (one kind of trade here)
EXT_CONDITION_NONE = 255        # ThetaData fills unused extended conditions; OPRA reports none for options


# ---------------------------------------------------------------------------------- stories


@dataclass(frozen=True)
class LognormalStories:
    """K lognormal laws of ``S_T``: story k has ``log S_T ~ N(meanlogs[k], sdlogs[k]^2)``.

    ``sdlogs`` are total to expiry (not annualised), as in :mod:`elecflow.mixture`;
    ``discount`` is ``e^{-r tau}``. ``names`` label the stories (default ``s1..sK``).
    """

    meanlogs: np.ndarray
    sdlogs: np.ndarray
    discount: float = 1.0
    names: tuple[str, ...] = ()

    def __post_init__(self):
        mu = np.asarray(self.meanlogs, dtype=np.float64).copy()
        s = np.asarray(self.sdlogs, dtype=np.float64).copy()
        if mu.ndim != 1 or s.shape != mu.shape:
            raise ValueError(f"meanlogs and sdlogs must be 1-d of the same length (got {mu.shape}, {s.shape})")
        if mu.size < 2:
            raise ValueError("need at least K = 2 stories")
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(s))):
            raise ValueError("meanlogs and sdlogs must be finite")
        if np.any(s <= 0):
            raise ValueError("sdlogs must be > 0")
        if np.unique(np.stack([mu, s], axis=1), axis=0).shape[0] < mu.size:
            raise ValueError("two stories have the same law: they cannot be told apart")
        if not (math.isfinite(self.discount) and 0 < self.discount <= 1.5):
            raise ValueError(f"discount must be in (0, 1.5] (got {self.discount!r})")
        names = tuple(self.names) if self.names else tuple(f"s{k + 1}" for k in range(mu.size))
        if len(names) != mu.size:
            raise ValueError(f"names must have K = {mu.size} entries")
        mu.setflags(write=False)
        s.setflags(write=False)
        object.__setattr__(self, "meanlogs", mu)
        object.__setattr__(self, "sdlogs", s)
        object.__setattr__(self, "names", names)

    @property
    def K(self) -> int:
        return self.meanlogs.size

    @property
    def means(self) -> np.ndarray:
        """``E[S_T | s_k]``."""
        return np.exp(self.meanlogs + 0.5 * self.sdlogs**2)

    def forward(self, weights=None) -> float:
        """Mean of ``S_T`` under the mixture ``weights`` (default: equal weights)."""
        w = np.full(self.K, 1.0 / self.K) if weights is None else np.asarray(weights, dtype=np.float64)
        return float(w @ self.means)

    def option_payoffs(self, strikes, is_call) -> np.ndarray:
        """``Pi[k, j]``: discounted expected payoff of contract j under story k (K x M)."""
        K_ = np.asarray(strikes, dtype=np.float64)
        c = np.broadcast_to(np.asarray(is_call, dtype=bool), K_.shape)
        if K_.ndim != 1 or K_.size < 1:
            raise ValueError("strikes must be a non-empty 1-d array")
        if not (np.all(np.isfinite(K_)) and np.all(K_ > 0)):
            raise ValueError("strikes must be finite and > 0")
        out = np.empty((self.K, K_.size))
        for k in range(self.K):
            args = ([1.0], [self.meanlogs[k]], [self.sdlogs[k]], self.discount)
            out[k] = np.where(c, lognormal_mixture_call(K_, *args), lognormal_mixture_put(K_, *args))
        return out

    @classmethod
    def election(cls, symbol: str, tau: float = 10.0 / 365.0, *, q: float = 0.5, rate: float = DEFAULT_RATE,
                 spot: float | None = None) -> "LognormalStories":
        """The Trump and Harris states of ``symbol`` as the synthetic universe defines them.

        Forward ``F = S e^{(r - d) tau}`` (S the reference price unless ``spot``), state means
        ``m_T = F e^{gamma(1-q)}/D, m_H = F e^{-gamma q}/D`` (``gamma`` the election loading;
        mixture mean F at weight ``q``), state vols from ``elecflow.synth.options.state_vols``,
        ``sdlog = vol sqrt(tau)``, ``meanlog = log m - sdlog^2/2`` (docs/synthetic-day.md).
        Story 0 is Trump, story 1 Harris.
        """
        from elecflow import universe as U
        from elecflow.synth.options import state_means, state_vols

        if not (math.isfinite(tau) and tau > 0):
            raise ValueError("tau must be finite and > 0")
        if not 0.0 < q < 1.0:
            raise ValueError(f"q must be in (0, 1) (got {q!r})")
        inst = U.get(symbol)
        S = inst.ref_price if spot is None else float(spot)
        if not (math.isfinite(S) and S > 0):
            raise ValueError("spot must be finite and > 0")
        F = S * math.exp((rate - inst.dividend_yield) * tau)
        gamma = U.effective_election_loadings()[symbol]
        m_T, m_H = (float(m) for m in state_means(F, q, gamma))
        vols = np.array(state_vols(symbol))
        sd = vols * math.sqrt(tau)
        mu = np.log(np.array([m_T, m_H])) - 0.5 * sd * sd
        return cls(mu, sd, math.exp(-rate * tau), ("trump", "harris"))


# ---------------------------------------------------------------------------------- model


class PayoffKyleModel(ADKyleModel):
    """:class:`ADKyleModel` for securities with arbitrary real expected payoffs.

    ``payoffs[k, j]`` is what security j pays in expectation under story k (for options:
    the story's discounted option price). The paper's results hold for any payoff function
    (footnote 15) and so does the library's reduction to the exposure game
    (``elecflow.theory.equilibrium``): the demand, posterior, pricing kernel and impact
    matrices of the parent class apply unchanged. Only the parent's check that the rows be
    probability distributions is replaced by a check that they be finite reals.
    """

    def __init__(self, payoffs, sigma=1.0, prior=None, *, samples: int = 2**13, seed: int = 0):
        e = np.asarray(payoffs, dtype=np.float64)
        if e.ndim != 2:
            raise ValueError(f"payoffs must be a K x M matrix (got {e.ndim} dimensions)")
        K, N = e.shape
        if K < 2 or N < 1:
            raise ValueError(f"payoffs need K >= 2 stories and M >= 1 securities (got {K} x {N})")
        if not np.all(np.isfinite(e)):
            raise ValueError("payoffs must be finite")
        if np.all(e == e[0]):
            raise ValueError("every story pays the same: there is nothing to be informed about")
        s, p = validated_noise_and_prior(sigma, prior, K, N, samples, "M")
        # the parent's state, set exactly as ADKyleModel.__init__ sets it
        self._eta, self._sigma, self._prior = e.copy(), s.copy(), p.copy()
        for a in (self._eta, self._sigma, self._prior):
            a.setflags(write=False)
        self._samples, self._seed = int(samples), int(seed)

    def __repr__(self) -> str:
        kind = "symmetric" if self.symmetric else "general"
        return f"PayoffKyleModel(K={self.K}, M={self.N}, {kind})"


class OptionMarketModel:
    """Options on one underlying as the securities of the equilibrium model.

    Parameters
    ----------
    stories : LognormalStories
        The K laws of ``S_T``.
    strikes, is_call : array_like (M,)
        The contracts (any order; :meth:`election` builds call/put pairs by strike).
    sigma : float or array_like (M,)
        Noise-trader flow sd per contract and period, in contracts (> 0).
    prior : array_like (K,), optional
        The market maker's prior (uniform if omitted).
    samples, seed
        For the numerical equilibrium (non-uniform prior, generic K >= 3 stories).
    """

    def __init__(self, stories: LognormalStories, strikes, is_call, sigma=DEFAULT_NOISE_SD, prior=None, *,
                 samples: int = 2**13, seed: int = 0):
        if not isinstance(stories, LognormalStories):
            raise ValueError("stories must be a LognormalStories")
        k = np.asarray(strikes, dtype=np.float64)
        c = np.asarray(is_call)
        if k.ndim != 1 or c.shape != k.shape:
            raise ValueError(f"strikes and is_call must be 1-d of the same length (got {k.shape}, {c.shape})")
        if c.dtype != bool:
            raise ValueError("is_call must be boolean")
        pairs = set(zip(np.round(k * 1000).astype(np.int64).tolist(), c.tolist()))
        if len(pairs) != k.size:
            raise ValueError("contracts must be distinct (strike, right) pairs")
        self.stories = stories
        self.strikes = k.copy()
        self.is_call = c.copy()
        for a in (self.strikes, self.is_call):
            a.setflags(write=False)
        self.payoffs = stories.option_payoffs(self.strikes, self.is_call)
        self.payoffs.setflags(write=False)
        self.kyle = PayoffKyleModel(self.payoffs, sigma, prior, samples=samples, seed=seed)

    @classmethod
    def election(cls, symbol: str, *, n_strikes: int = 10, tau: float = 10.0 / 365.0, q: float = 0.5,
                 rate: float = DEFAULT_RATE, spot: float | None = None, sigma=DEFAULT_NOISE_SD,
                 strike_range: float = 0.15, **kwargs) -> "OptionMarketModel":
        """The call and put at each of the ``n_strikes`` listed strikes nearest the forward
        (ordered by strike, call first), with the two election states of ``symbol`` as the
        stories and prior ``(q, 1 - q)``; ``q = 1/2`` gives the closed-form equilibrium."""
        from elecflow import universe as U
        from elecflow.synth.options import strike_grid

        if int(n_strikes) != n_strikes or n_strikes < 1:
            raise ValueError("n_strikes must be an integer >= 1")
        stories = LognormalStories.election(symbol, tau, q=q, rate=rate, spot=spot)
        S = U.get(symbol).ref_price if spot is None else float(spot)
        grid = strike_grid(symbol, S, strike_range)
        F = stories.forward([q, 1.0 - q])
        if grid.size < n_strikes:
            raise ValueError(f"only {grid.size} listed strikes within {strike_range:.0%} of spot (asked {n_strikes})")
        near = np.sort(grid[np.argsort(np.abs(grid - F), kind="stable")[:n_strikes]])
        strikes = np.repeat(near, 2)
        is_call = np.tile([True, False], near.size)
        return cls(stories, strikes, is_call, sigma, [q, 1.0 - q], **kwargs)

    # ------------------------------------------------------------------------ primitives

    @property
    def K(self) -> int:
        return self.kyle.K

    @property
    def M(self) -> int:
        return self.kyle.N

    @property
    def sigma(self) -> np.ndarray:
        return self.kyle.sigma

    @property
    def prior(self) -> np.ndarray:
        return self.kyle.prior

    @property
    def prior_prices(self) -> np.ndarray:
        """The quote before any order flow: ``pi0' Pi``."""
        return self.prior @ self.payoffs

    def contract_labels(self) -> list[str]:
        return [f"{'C' if c else 'P'}{k:g}" for k, c in zip(self.strikes, self.is_call)]

    def straddle_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(call_index, put_index)`` of every strike that has both a call and a put."""
        calls = {round(k * 1000): i for i, (k, c) in enumerate(zip(self.strikes, self.is_call)) if c}
        puts = {round(k * 1000): i for i, (k, c) in enumerate(zip(self.strikes, self.is_call)) if not c}
        common = sorted(set(calls) & set(puts))
        return (np.array([calls[k] for k in common], dtype=np.int64),
                np.array([puts[k] for k in common], dtype=np.int64))

    # ----------------------------------------------------------------------- equilibrium

    def demand(self) -> np.ndarray:
        """Equilibrium insider orders (M x K): column k under story k (the corrected equilibrium)."""
        return self.kyle.demand()

    def prescribed_weights(self, k: int) -> np.ndarray:
        """The theory's leg weights ``w^(m)`` for story k (footnote 35): the equilibrium
        demand ``W*(. | s_k)`` scaled to ``sum |w| = 1``."""
        if not (int(k) == k and 0 <= k < self.K):
            raise ValueError(f"story index k must be in [0, {self.K}) (got {k!r})")
        w = self.kyle.demand()[:, int(k)]
        return w / np.sum(np.abs(w))

    def posterior(self, omega) -> np.ndarray:
        return self.kyle.posterior(omega)

    def prices(self, omega) -> np.ndarray:
        """``P(omega) = Pi' q(omega)``: ((M,) or (n, M))."""
        return self.kyle.prices(omega)

    def theoretical_impact(self, k: int | None = None) -> np.ndarray:
        """``E[Lambda | s_k]`` (prior average for ``k=None``): eq. (38) with the corrected constant."""
        return self.kyle.expected_impact(k)

    def paper_impact(self, k: int | None = None) -> np.ndarray:
        """Eq. (38) as printed: ``(1 - 1/K) alpha* E[Cov(Pi_i, Pi_j | omega)] / sqrt(sigma_i sigma_j)``."""
        return self.kyle.paper_impact(k)

    def regression_impact(self, k: int | None = None) -> np.ndarray:
        """Population slope of eq. (45) (with intercept) on the simulator's data.

        Story fixed at ``k``: ``E[Lambda | s_k]`` (Stein's lemma). ``k=None`` (story redrawn
        from the prior every period): ``(Lbar Sigma^2 + C_PW) (Sigma^2 + C_WW)^{-1}`` with
        ``Lbar`` the prior-average impact, ``C_PW = Cov_k(E[P | s_k], W*_k)`` and ``C_WW =
        Cov_k(W*_k)`` over the prior.
        """
        if k is not None:
            return self.theoretical_impact(k)
        eq = self.kyle.equilibrium
        pi = self.prior
        W = eq.demand                                       # (M, K)
        EP = eq.mean_posterior @ self.payoffs               # (K, M): E[P | s_k]
        dP = EP - pi @ EP
        dW = W.T - pi @ W.T
        C_PW = (dP * pi[:, None]).T @ dW
        C_WW = (dW * pi[:, None]).T @ dW
        S2 = np.diag(self.sigma**2)
        lbar = self.theoretical_impact(None)
        return np.linalg.solve((S2 + C_WW).T, (lbar @ S2 + C_PW).T).T

    def __repr__(self) -> str:
        return f"OptionMarketModel(K={self.K}, M={self.M}, {'symmetric' if self.kyle.symmetric else 'general'})"


# ------------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class OptionMarketSimulation:
    """A simulated session. Periods t = 0..T-1; quote snapshots s = 0..T (s = 0 before the
    session, s = t + 1 after period t). Contract j is ``model.strikes[j], model.is_call[j]``.

    Arrays: ``stories`` (T,) true story per period; ``insider_orders``, ``noise_orders``,
    ``order_flow`` (T, M) signed, ``order_flow = insider + noise``; ``posterior`` (T, K);
    ``prices`` (T+1, M) the market maker's prices (row 0 the prior price); ``bid``, ``ask``,
    ``bid_size``, ``ask_size``, ``bid_exchange``, ``ask_exchange`` (T+1, M) the quotes;
    ``trade_price``, ``trade_exchange`` (T, M) (NaN / -1 where no flow); ``quote_ms``
    (T+1,), ``trade_ms`` (T,) New York ms of day on ``date``; ``quote_time_ns``,
    ``trade_time_ns`` the same in UTC ns.
    """

    model: OptionMarketModel
    root: str
    underlying: str
    expiry: dt.date
    date: dt.date
    seed: int
    integer_orders: bool
    redraw_story: bool
    stories: np.ndarray
    insider_orders: np.ndarray
    noise_orders: np.ndarray
    order_flow: np.ndarray
    posterior: np.ndarray
    prices: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    bid_exchange: np.ndarray
    ask_exchange: np.ndarray
    trade_price: np.ndarray
    trade_exchange: np.ndarray
    quote_ms: np.ndarray
    trade_ms: np.ndarray
    quote_time_ns: np.ndarray
    trade_time_ns: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def n_periods(self) -> int:
        return self.stories.size

    @property
    def n_contracts(self) -> int:
        return self.model.M

    @property
    def price_changes(self) -> np.ndarray:
        """``dp_t = P(omega_t) - P(omega_{t-1})`` (T, M): the regressand of eq. (45)."""
        return np.diff(self.prices, axis=0)

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.bid + self.ask)

    @property
    def session_story(self) -> int | None:
        """The story of the whole session, or None when it was redrawn every period."""
        return None if self.redraw_story else int(self.stories[0])

    @cached_property
    def theoretical_impact(self) -> np.ndarray:
        """``E[Lambda | s]`` for the session's story (prior average when redrawn)."""
        return self.model.theoretical_impact(self.session_story)

    @cached_property
    def regression_impact(self) -> np.ndarray:
        """What eq. (45) estimates on this design (= ``theoretical_impact`` for a fixed story)."""
        return self.model.regression_impact(self.session_story)

    def contract_symbols(self) -> list[str]:
        """OCC-style codes, e.g. ``SPY241115C00580000`` (as the vendor readers build them)."""
        yymmdd = self.expiry.strftime("%y%m%d")
        return [f"{self.root}{yymmdd}{'C' if c else 'P'}{int(round(k * 1000)):08d}"
                for k, c in zip(self.model.strikes, self.model.is_call)]


def _quotes(prices: np.ndarray, half_spread: float, tick: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Bid/ask around the model price: at least ``half_spread`` away, on the tick grid."""
    if tick is None:
        return np.maximum(prices - half_spread, 0.0), prices + half_spread
    # the 1e-9 keeps prices that sit on the grid from moving a tick through rounding noise
    bid = np.floor((prices - half_spread) / tick + 1e-9) * tick
    ask = np.ceil((prices + half_spread) / tick - 1e-9) * tick
    bid = np.round(np.maximum(bid, 0.0), 10)
    ask = np.round(np.maximum(ask, tick), 10)
    return bid, ask


def simulate_option_market(model: OptionMarketModel, n_periods: int, *, story: int | None = None,
                           redraw_story: bool = False, seed: int = 0, integer_orders: bool = True,
                           half_spread: float = 0.01, tick: float | None = 0.01, depth: float = 50.0,
                           root: str = "SIM", underlying: str | None = None, expiry: dt.date = dt.date(2024, 11, 15),
                           date: dt.date = dt.date(2024, 11, 5), start_ms: int = 34_200_000,
                           period_ms: int = 1_000) -> OptionMarketSimulation:
    """Simulate ``n_periods`` plays of the one-shot game (module docstring).

    Parameters
    ----------
    model : OptionMarketModel
    n_periods : int
        T >= 1.
    story : int, optional
        The session's true story (an election outcome). Default: drawn from the prior once.
    redraw_story : bool
        Draw a new story from the prior every period instead (``story`` must be None).
    seed : int
        Everything is deterministic in it.
    integer_orders : bool
        Round the net flow to whole contracts (needed to write trade files).
    half_spread, tick : float
        Quotes are ``bid = floor((P - h)/tick) tick`` (>= 0) and ``ask = ceil((P + h)/tick)
        tick`` (>= one tick); ``tick=None`` leaves them unrounded. Trades print at ``P``
        rounded to the tick (at least one tick).
    depth : float
        Mean quoted size (1 + Poisson(depth); a zero bid has size 0).
    root, underlying, expiry, date : contract identity and the session's date
        (``underlying`` defaults to ``root``).
    start_ms, period_ms : int
        New York ms of day of the opening snapshot and the period length; trades of
        period t print at ``start + t period + period/2``, its quote at ``start + (t+1) period``.
    """
    if not isinstance(model, OptionMarketModel):
        raise ValueError("model must be an OptionMarketModel")
    if int(n_periods) != n_periods or n_periods < 1:
        raise ValueError(f"n_periods must be an integer >= 1 (got {n_periods!r})")
    T, M, K = int(n_periods), model.M, model.K
    if redraw_story and story is not None:
        raise ValueError("story fixes the session's story; it cannot be combined with redraw_story")
    if story is not None and not (int(story) == story and 0 <= story < K):
        raise ValueError(f"story must be an integer in [0, {K}) (got {story!r})")
    if not (math.isfinite(half_spread) and half_spread >= 0):
        raise ValueError("half_spread must be finite and >= 0")
    if tick is not None and not (math.isfinite(tick) and tick > 0):
        raise ValueError("tick must be None or finite and > 0")
    if not (math.isfinite(depth) and depth >= 0):
        raise ValueError("depth must be finite and >= 0")
    if int(period_ms) != period_ms or period_ms < 2:
        raise ValueError("period_ms must be an integer >= 2 (trades print strictly between snapshots)")
    if int(start_ms) != start_ms or not 0 <= start_ms < MS_PER_DAY:
        raise ValueError("start_ms must be an integer ms of day in [0, 86400000)")
    last_ms = int(start_ms) + T * int(period_ms)
    if last_ms >= MS_PER_DAY:
        raise ValueError(f"the session runs past midnight ({T} periods of {period_ms} ms from {start_ms} ms): "
                         "use fewer or shorter periods")
    if not expiry > date:
        raise ValueError("expiry must be after the session's date")
    if not (isinstance(root, str) and root.isalnum() and root == root.upper()):
        raise ValueError(f"root must be an upper-case alphanumeric option root (got {root!r})")

    story_ss, noise_ss, cosmetic_ss = np.random.SeedSequence(int(seed)).spawn(3)
    rs, rn, rc = (np.random.default_rng(s) for s in (story_ss, noise_ss, cosmetic_ss))
    prior = model.prior
    if redraw_story:
        stories = rs.choice(K, size=T, p=prior)
    else:
        s = int(rs.choice(K, p=prior)) if story is None else int(story)
        stories = np.full(T, s, dtype=np.int64)
    W = model.demand()                                             # (M, K)
    insider = W[:, stories].T                                      # (T, M)
    omega = insider + rn.standard_normal((T, M)) * model.sigma[None, :]
    if integer_orders:
        omega = np.rint(omega)
    noise = omega - insider
    q = model.posterior(omega)                                     # (T, K)
    prices = np.vstack([model.prior_prices[None, :], q @ model.payoffs])
    bid, ask = _quotes(prices, half_spread, tick)

    from elecflow.synth.options import THETA_EXCHANGES

    shape = prices.shape
    bid_size = np.where(bid > 0, 1 + rc.poisson(depth, shape), 0).astype(np.int64)
    ask_size = (1 + rc.poisson(depth, shape)).astype(np.int64)
    bid_ex = rc.choice(THETA_EXCHANGES, size=shape)
    ask_ex = rc.choice(THETA_EXCHANGES, size=shape)
    traded = omega != 0
    tp = prices[1:]
    if tick is not None:
        tp = np.round(np.maximum(np.round(tp / tick) * tick, tick), 10)
    trade_price = np.where(traded, tp, np.nan)
    trade_ex = np.where(traded, rc.choice(THETA_EXCHANGES, size=(T, M)), -1)

    quote_ms = int(start_ms) + np.arange(T + 1, dtype=np.int64) * int(period_ms)
    trade_ms = int(start_ms) + np.arange(T, dtype=np.int64) * int(period_ms) + int(period_ms) // 2
    midnight = utc_ns(date, dt.time(0, 0))
    # ThetaData's ms_of_day is New York wall-clock time; UTC = midnight + ms only if the
    # clocks do not change between midnight and the end of the session
    for ms in (int(start_ms), int(quote_ms[-1])):
        wall = dt.time(ms // 3_600_000, (ms // 60_000) % 60, (ms // 1000) % 60)
        if utc_ns(date, wall) != midnight + (ms // 1000) * NS_PER_SECOND:
            raise ValueError(f"New York clocks change on {date} before the session ends: choose another date")

    def to_ns(ms):
        return midnight + ms * 1_000_000

    params = {"half_spread": float(half_spread), "tick": None if tick is None else float(tick),
              "depth": float(depth), "start_ms": int(start_ms), "period_ms": int(period_ms)}
    for a in (stories, insider, noise, omega, q, prices, bid, ask):
        a.setflags(write=False)
    return OptionMarketSimulation(
        model=model, root=root, underlying=root if underlying is None else underlying, expiry=expiry, date=date,
        seed=int(seed), integer_orders=bool(integer_orders), redraw_story=bool(redraw_story), stories=stories,
        insider_orders=insider, noise_orders=noise, order_flow=omega, posterior=q, prices=prices, bid=bid, ask=ask,
        bid_size=bid_size, ask_size=ask_size, bid_exchange=bid_ex, ask_exchange=ask_ex, trade_price=trade_price,
        trade_exchange=trade_ex, quote_ms=quote_ms, trade_ms=trade_ms, quote_time_ns=to_ns(quote_ms),
        trade_time_ns=to_ns(trade_ms), params=params)


# ---------------------------------------------------------------------------------- writer


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_csv(table: pa.Table, path: Path) -> None:
    """Header + unquoted rows (no field here holds a comma)."""
    def write(tmp):
        buf = pa.BufferOutputStream()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        tmp.write_bytes((",".join(table.column_names) + "\n").encode() + buf.getvalue().to_pybytes())

    _write_atomic(path, write)


def _write_parquet(table: pa.Table, path: Path) -> None:
    _write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def _contract_major(sim: OptionMarketSimulation, n_times: int) -> tuple[np.ndarray, np.ndarray]:
    """Row order of the vendor files: by strike, call before put, then time; returns the
    (time, contract) index of every row."""
    m = sim.model
    order = np.lexsort((~m.is_call, np.round(m.strikes * 1000).astype(np.int64)))
    contract = np.repeat(order, n_times)
    time = np.tile(np.arange(n_times), order.size)
    return time, contract


def write_option_market(sim: OptionMarketSimulation, out_dir, *, quote_format: str = "raw") -> dict[str, int]:
    """Write the session's quotes, trades and ground truth under ``out_dir`` (module docstring).

    ``quote_format``: ``"raw"`` (ThetaData fields, CSV) or ``"formatted"`` (the public
    project's variant, Parquet). Returns ``{relative path: rows}``. Files are written
    atomically (temporary name, then rename) and are byte-identical for equal inputs.
    """
    if quote_format not in ("raw", "formatted"):
        raise ValueError(f"quote_format must be 'raw' or 'formatted' (got {quote_format!r})")
    if not sim.integer_orders:
        raise ValueError("trade files need whole contracts: simulate with integer_orders=True")
    out = Path(out_dir)
    m = sim.model
    exp_i = int(sim.expiry.strftime("%Y%m%d"))
    date_i = int(sim.date.strftime("%Y%m%d"))
    strike_milli = np.round(m.strikes * 1000).astype(np.int64)
    right = np.where(m.is_call, "C", "P")
    stem = f"{sim.root}_{exp_i}_{date_i}"
    written: dict[str, int] = {}

    # ------------------------------------------------------------------ quotes
    ti, ci = _contract_major(sim, sim.quote_ms.size)
    if quote_format == "raw":
        n = ti.size
        table = pa.table({
            "root": pa.array([sim.root] * n, pa.string()),
            "exp": np.full(n, exp_i, dtype=np.int64),
            "strike": strike_milli[ci],
            "right": pa.array(right[ci].astype(object), pa.string()),
            "date": np.full(n, date_i, dtype=np.int64),
            "ms_of_day": sim.quote_ms[ti],
            "bid_size": sim.bid_size[ti, ci], "bid_exchange": sim.bid_exchange[ti, ci],
            "bid": sim.bid[ti, ci], "bid_condition": np.full(n, _theta_condition(), dtype=np.int64),
            "ask_size": sim.ask_size[ti, ci], "ask_exchange": sim.ask_exchange[ti, ci],
            "ask": sim.ask[ti, ci], "ask_condition": np.full(n, _theta_condition(), dtype=np.int64),
        })
        rel = f"thetadata/{stem}.csv"
        _write_csv(table.select(list(THETADATA_QUOTE_COLUMNS)), out / rel)
    else:
        symbols = np.array(sim.contract_symbols(), dtype=object)
        local = (np.datetime64(sim.date, "ms").astype(np.int64) + sim.quote_ms[ti]).astype("datetime64[ms]")
        table = pa.table({
            "symbol": pa.array(symbols[ci], pa.string()),
            "timestamp": pa.array(local, pa.timestamp("ms")),
            "underlying": pa.array([sim.underlying] * ti.size, pa.string()),
            "expiration": pa.array([sim.expiry] * ti.size, pa.date32()),
            "strike": m.strikes[ci], "right": pa.array(right[ci].astype(object), pa.string()),
            "bid": sim.bid[ti, ci], "ask": sim.ask[ti, ci],
            "bid_size": sim.bid_size[ti, ci], "ask_size": sim.ask_size[ti, ci],
            "bid_exchange": sim.bid_exchange[ti, ci], "ask_exchange": sim.ask_exchange[ti, ci],
        })
        rel = f"thetadata/{stem}.parquet"
        _write_parquet(table, out / rel)
    written[rel] = table.num_rows

    # ------------------------------------------------------------------ trades
    ti, ci = _contract_major(sim, sim.n_periods)
    flow = sim.order_flow[ti, ci]
    keep = flow != 0
    ti, ci, flow = ti[keep], ci[keep], flow[keep]
    n = ti.size
    ext = np.full(n, EXT_CONDITION_NONE, dtype=np.int64)
    zeros = np.zeros(n, dtype=np.int64)
    trades = pa.table({
        "root": pa.array([sim.root] * n, pa.string()),
        "expiration": np.full(n, exp_i, dtype=np.int64),
        "strike": strike_milli[ci],
        "right": pa.array(right[ci].astype(object), pa.string()),
        "ms_of_day": sim.trade_ms[ti],
        "sequence": np.arange(1, n + 1, dtype=np.int64),
        "ext_condition1": ext, "ext_condition2": ext, "ext_condition3": ext, "ext_condition4": ext,
        "condition": np.full(n, TRADE_CONDITION, dtype=np.int64),
        "size": np.abs(flow).astype(np.int64),
        "exchange": sim.trade_exchange[ti, ci].astype(np.int64),
        "price": sim.trade_price[ti, ci],
        "condition_flags": zeros, "price_flags": zeros, "volume_type": zeros, "records_back": zeros,
        "date": np.full(n, date_i, dtype=np.int64),
        "side": pa.array(np.where(flow > 0, "B", "S").astype(object), pa.string()),
    })
    rel = f"thetadata_trades/{stem}.csv"
    _write_csv(trades.select(list(OPTION_TRADE_COLUMNS)), out / rel)
    written[rel] = trades.num_rows

    # ------------------------------------------------------------------ ground truth
    T, M, K = sim.n_periods, m.M, m.K
    t_idx = np.repeat(np.arange(T), M)
    c_idx = np.tile(np.arange(M), T)
    symbols = np.array(sim.contract_symbols(), dtype=object)
    flow_table = pa.table({
        "period": t_idx.astype(np.int64), "contract": pa.array(symbols[c_idx], pa.string()),
        "story": sim.stories[t_idx].astype(np.int64),
        "insider_order": sim.insider_orders.ravel(), "noise_order": sim.noise_orders.ravel(),
        "order_flow": sim.order_flow.ravel(), "price_before": sim.prices[:-1].ravel(),
        "price_after": sim.prices[1:].ravel(),
    })
    rel = f"ground_truth/informed_options_{sim.root}_flow.parquet"
    _write_parquet(flow_table, out / rel)
    written[rel] = flow_table.num_rows
    periods = {"period": np.arange(T, dtype=np.int64), "trade_ms_of_day": sim.trade_ms,
               "quote_ms_of_day": sim.quote_ms[1:], "story": sim.stories.astype(np.int64)}
    for k in range(K):
        periods[f"posterior_{m.stories.names[k]}"] = sim.posterior[:, k]
    period_table = pa.table(periods)
    rel = f"ground_truth/informed_options_{sim.root}_periods.parquet"
    _write_parquet(period_table, out / rel)
    written[rel] = period_table.num_rows
    meta = {
        "root": sim.root, "underlying": sim.underlying, "expiry": sim.expiry.isoformat(),
        "date": sim.date.isoformat(), "seed": sim.seed, "n_periods": T, "redraw_story": sim.redraw_story,
        "session_story": sim.session_story, "story_names": list(m.stories.names),
        "meanlogs": m.stories.meanlogs.tolist(), "sdlogs": m.stories.sdlogs.tolist(),
        "discount": m.stories.discount, "prior": m.prior.tolist(), "contracts": sim.contract_symbols(),
        "strikes": m.strikes.tolist(), "is_call": m.is_call.tolist(), "noise_sd": m.sigma.tolist(),
        "payoffs": m.payoffs.tolist(), "demand": m.demand().tolist(),
        "equilibrium": m.kyle.equilibrium.method,
        "theoretical_impact": sim.theoretical_impact.tolist(),
        "regression_impact": sim.regression_impact.tolist(),
        "paper_impact": m.paper_impact(sim.session_story).tolist(),
        **sim.params,
    }
    rel = f"ground_truth/informed_options_{sim.root}.json"
    _write_atomic(out / rel, lambda tmp: tmp.write_text(json.dumps(meta, indent=1) + "\n"))
    written[rel] = 1
    return written


def _theta_condition() -> int:
    from elecflow.synth.options import THETA_CONDITION

    return int(THETA_CONDITION)
