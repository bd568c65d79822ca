"""Independent, keyed random streams.

Every component draws from its own ``Generator(PCG64(SeedSequence(seed, spawn_key=key)))``
-- the same streams ``SeedSequence(seed).spawn`` would give, but addressed by a fixed key
instead of by spawn order. Keys name the component and, where it matters, the symbol's
position in :data:`elecflow.universe.SYMBOLS`, so changing one knob (the option
underlyings, the window, the Kalshi rate) never changes the draws of another component:
the equity path of a seed is the same whatever options are generated.

Normal (pre-election) days add the trading date to the key: ``stream(seed, component,
*key, day=date)`` uses ``spawn_key = (DAY_KEY, yyyymmdd, component, *key)``, so every
(seed, date) pair has its own independent streams, disjoint from the Election Day's
(whose keys, without ``day``, are unchanged).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

COMPONENTS: dict[str, int] = {
    "probability_diffusion": 1,
    "probability_jumps": 2,
    "efficient_prices": 3,
    "equity_flow": 4,  # key (4, symbol index)
    "options": 5,  # key (5, symbol index)
    "kalshi": 6,
    "defects": 7,  # key (7, stream number)
    "macro_news": 8,  # normal days: the common macro news path and its releases
    "idio_news": 9,  # normal days: key (9, symbol index), a stock's own news jumps
    "option_phases": 10,  # key (10, symbol index): each strike's quoting phase within the cadence
    # the broad factor universe (elecflow.synth.factor_universe)
    "factor_universe_design": 11,  # the stocks and the weights: keyed by seed only (same universe every day)
    "factor_universe_factors": 12,  # the FF factors' own shocks
    "factor_universe_names": 13,  # key (13, stock index, 0 = efficient-price shocks | 1 = quote presence)
    # the informed option market (elecflow.synth.impact): key (20, symbol index); 20 leaves room
    # below for the components being added alongside it
    "impact": 20,
    # etf_baskets="constituents": key (21, symbol index of the ETF whose premium it is), the
    # AR(1) premium of a basket ETF over its constituents' NAV (elecflow.synth.equities)
    "etf_premium": 21,
}
DAY_KEY = 100  # first spawn-key element of date-keyed (normal-day) streams


def stream(seed: int, component: str, *key: int, day: dt.date | None = None) -> np.random.Generator:
    """The generator of ``component`` (and sub-key, e.g. a symbol index) under ``seed``.

    ``day`` (normal days only) makes the stream depend on the trading date as well.
    """
    spawn_key = (COMPONENTS[component], *(int(k) for k in key))
    if day is not None:
        spawn_key = (DAY_KEY, int(day.strftime("%Y%m%d")), *spawn_key)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=spawn_key)))
