"""Independent, keyed random streams.

Every component draws from its own ``Generator(PCG64(SeedSequence(seed, spawn_key=key)))``
-- the same streams ``SeedSequence(seed).spawn`` would give, but addressed by a fixed key
instead of by spawn order. Keys name the component and, where it matters, the symbol's
position in :data:`elecflow.universe.SYMBOLS`, so changing one knob (the option
underlyings, the window, the Kalshi rate) never changes the draws of another component:
the equity path of a seed is the same whatever options are generated.
"""

from __future__ import annotations

import numpy as np

COMPONENTS: dict[str, int] = {
    "probability_diffusion": 1,
    "probability_jumps": 2,
    "efficient_prices": 3,
    "equity_flow": 4,  # key (4, symbol index)
    "options": 5,  # key (5, symbol index)
    "kalshi": 6,
    "defects": 7,  # key (7, stream number)
}


def stream(seed: int, component: str, *key: int) -> np.random.Generator:
    """The generator of ``component`` (and sub-key, e.g. a symbol index) under ``seed``."""
    spawn_key = (COMPONENTS[component], *(int(k) for k in key))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=spawn_key)))
