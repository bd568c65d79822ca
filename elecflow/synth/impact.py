"""The synthetic day's informed option market (issue 7): signed option trades and quotes of
chosen underlyings, simulated from the Arrow-Debreu/Kyle equilibrium with the two election
states as the signals (:mod:`elecflow.theory.simulator`), plus the theoretical impact matrix
as ground truth.

For each underlying of ``config.impact_underlyings``:

- the contracts: calls and puts at ``impact_strikes`` listed strikes spread evenly over the
  forward ``+/- impact_strike_range`` (a whole number of listed increments apart). Not the
  strikes nearest the forward, which ``OptionMarketModel.election`` would take: every period
  the market maker prices at his posterior, so the chain's forward swings between the
  Harris and the Trump state means (XLF: 42.4 and 50.3 around 46.3), and the 25-delta points
  of footnote 37's smile curvature must stay inside the strikes. Ten strikes on XLF's $0.50
  grid span +/- 5 %: kappa was undefined at 57 % of the snapshots with +/- 10 %, at none
  with the default +/- 15 % (strikes 39.5-53 every 1.5), and the error of eq. (45) was the
  same (8.6 % over a session);
- the model: :func:`elecflow.impact_stream.election_option_model` (the universe's reference
  price, uniform prior: the closed-form equilibrium; time to expiry from the session's
  first period), the function the replay graph uses for its prescribed portfolios;
- the story: the insider knows tonight's result: Trump (story 0) if the day's true
  probability ends at or above 1/2 at 06:00 ET on 11-06, else Harris. It is fixed for the
  session;
- the session: the regular session 09:30-16:00 ET cut to the generated window, one period
  every ``impact_period_seconds``, the first snapshot at the session's first period
  boundary; every event lies inside the window.

Own random stream per underlying (``stream(seed, "impact", index)``), so the 40 instruments'
files are byte-identical with or without it. Library layer: no file I/O (the writer,
``elecflow.adapters.synthetic``, calls :func:`elecflow.theory.simulator.write_option_market`).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from elecflow import universe as U
from elecflow.calendar import Session, session_window, utc_ns
from elecflow.impact import portfolio_cross_impact, straddle_cross_impact, wing_cross_impact
from elecflow.impact_stream import ContractSet, election_option_model
from elecflow.options import time_to_expiry
from elecflow.synth.options import strike_grid

__all__ = ["impact_strikes", "simulate_impact_market", "impact_truth", "session_story"]


def impact_strikes(symbol: str, forward: float, n: int, strike_range: float) -> np.ndarray:
    """``n`` listed strikes evenly spaced over ``forward * (1 -/+ strike_range)``.

    The spacing is a whole multiple of the listed increment near the forward (at least
    one), and the strikes are centred on the forward.
    """
    if int(n) != n or n < 2:
        raise ValueError("impact_strikes needs n >= 2")
    spot = U.get(symbol).ref_price
    grid = strike_grid(symbol, spot, max(0.15, 1.5 * strike_range))
    near = np.sort(grid[np.argsort(np.abs(grid - forward), kind="stable")[:5]])
    inc = float(np.min(np.diff(near)))                 # the listed increment at the money
    step = max(1, round(2.0 * strike_range * forward / (n - 1) / inc)) * inc
    first = round((forward - step * (n - 1) / 2.0) / inc) * inc
    strikes = np.round(first + step * np.arange(n), 6)
    if strikes[0] <= 0:
        raise ValueError(f"{symbol}: impact_strike_range {strike_range} reaches non-positive strikes")
    return strikes


def session_story(final_probability: float) -> int:
    """The informed story: 0 (Trump) if the day's probability resolves at or above 1/2."""
    return 0 if final_probability >= 0.5 else 1


def _session_bounds(date: dt.date, window_ns: tuple[int, int], period_ms: int) -> tuple[int, int] | None:
    """New York ms of day of the session's first snapshot and its number of periods, or None.

    Boundaries lie on the UTC epoch grid of the period, as the replay graph's period ends do
    (``elecflow.graphs.replay.next_grid_time``); the last snapshot lies strictly before the
    window's end.
    """
    regular = session_window(Session.REGULAR, date)
    lo, hi = max(regular.start_ns, window_ns[0]), min(regular.end_ns, window_ns[1])
    period_ns = period_ms * 1_000_000
    first = -(-lo // period_ns) * period_ns
    n = (hi - first - 1) // period_ns if hi > first else 0
    if n < 1:
        return None
    # ThetaData's ms_of_day is New York wall-clock time; no clock change falls in a session
    return int((first - utc_ns(date, dt.time(0, 0))) // 1_000_000), int(n)


def simulate_impact_market(symbol: str, *, date: dt.date, expiry: dt.date, window_ns: tuple[int, int],
                           period_seconds: float, n_strikes: int, strike_range: float, story: int, seed: int,
                           noise_sd: float = 20.0):
    """Simulate one underlying's informed option market for the session (module docstring).

    Returns an :class:`elecflow.theory.simulator.OptionMarketSimulation`, or None when the
    window holds no period of the regular session.
    """
    from elecflow.theory.simulator import simulate_option_market

    period_ms = int(round(period_seconds * 1000))
    bounds = _session_bounds(date, window_ns, period_ms)
    if bounds is None:
        return None
    start_ms, n_periods = bounds
    first_ns = utc_ns(date, dt.time(0, 0)) + start_ms * 1_000_000
    tau = time_to_expiry(first_ns, expiry)
    # the forward of the states' mixture at the uniform prior (what the model prices at)
    base = election_option_model(symbol, [U.get(symbol).ref_price] * 2, [True, False], tau)
    forward = base.stories.forward(base.prior)
    strikes = impact_strikes(symbol, forward, n_strikes, strike_range)
    model = election_option_model(symbol, np.repeat(strikes, 2), np.tile([True, False], strikes.size), tau,
                                  sigma=noise_sd)
    return simulate_option_market(model, n_periods, story=story, seed=seed, root=U.get(symbol).option_root,
                                  underlying=symbol, expiry=expiry, date=date, start_ms=start_ms,
                                  period_ms=period_ms)


def impact_truth(sim) -> tuple[dict, dict]:
    """Ground truth of one simulated underlying: a JSON-ready summary and a long table of the
    theoretical matrix (``contract_i, contract_j, impact, ...``) as column lists.

    The theoretical matrix is ``E[Lambda | s]`` for the session's story (what eq. (45) with an
    intercept estimates, Stein's lemma; docs/theory.md). The statistics are evaluated on it
    with the theory's prescribed weights and the same straddles and wings as the graph.
    """
    m = sim.model
    L = np.asarray(sim.theoretical_impact)
    contracts = sim.contract_symbols()
    cs = ContractSet(sim.underlying, sim.expiry, tuple(contracts), m.strikes, m.is_call)
    c, p, k = cs.straddle_pairs()
    low, high = cs.wings(0.25)
    weights = {name: m.prescribed_weights(i) for i, name in enumerate(m.stories.names)}
    summary = {
        "underlying": sim.underlying, "root": sim.root, "expiry": sim.expiry.isoformat(),
        "date": sim.date.isoformat(), "period_seconds": sim.params["period_ms"] / 1000.0,
        "n_periods": sim.n_periods, "first_snapshot_utc_ns": int(sim.quote_time_ns[0]),
        "last_snapshot_utc_ns": int(sim.quote_time_ns[-1]), "session_story": sim.session_story,
        "story_names": list(m.stories.names), "seed": sim.seed,
        "contracts": contracts, "labels": list(cs.labels), "strikes": m.strikes.tolist(), "is_call": m.is_call.tolist(),
        "noise_sd": m.sigma.tolist(), "theoretical_impact": L.tolist(),
        "straddle_strikes": k.tolist(), "straddle_cross_impact": straddle_cross_impact(L, c, p).tolist(),
        "prescribed_weights": {n: w.tolist() for n, w in weights.items()},
        "portfolio_cross_impact": {n: float(portfolio_cross_impact(L, w)) for n, w in weights.items()},
        "wing_low": [contracts[i] for i in low], "wing_high": [contracts[i] for i in high],
        "wing_cross_impact": float(wing_cross_impact(L, low, high)) if low.size and high.size else math.nan,
        "files": f"informed_options_{sim.root}.json (stories, demand, all matrices), "
                 f"informed_options_{sim.root}_flow.parquet, informed_options_{sim.root}_periods.parquet",
    }
    M = len(contracts)
    ii, jj = np.repeat(np.arange(M), M), np.tile(np.arange(M), M)
    table = {"underlying": [sim.underlying] * (M * M),
             "contract_i": [contracts[i] for i in ii], "contract_j": [contracts[j] for j in jj],
             "i": ii.tolist(), "j": jj.tolist(), "impact": L.ravel().tolist()}
    return summary, table
