"""csp node for the denoised Kalshi election probability.

The state-space filter is :class:`elecflow.kalshi.KalshiProbabilityFilter`; this node owns
one in ``csp.state``, feeds it the DJT and KH fills and samples its prediction on a grid.
"""

from __future__ import annotations

import datetime as dt
import math

import csp
from csp import ts

from elecflow.graphs.replay import datetime_to_ns, next_grid_time
from elecflow.kalshi import CONTRACT_INDEX, KalshiProbabilityFilter
from elecflow.schema import KalshiProbability, KalshiTrade

NAN = math.nan


@csp.node
def kalshi_probability(fills: ts[KalshiTrade], grid: dt.timedelta, warmup_fills: int) -> ts[[KalshiProbability]]:
    """One row per election-contract fill and one per grid point after the first fill.

    At a grid time T the prediction uses the fills strictly before T (the same convention as
    the 1 s NBBO), so it is computed before a fill stamped exactly T is applied.
    """
    with csp.alarms():
        tick = csp.alarm(bool)
    with csp.state():
        s_filter = KalshiProbabilityFilter(warmup_fills=warmup_fills)
        s_regime = ""
        s_started = False
    with csp.start():
        csp.schedule_alarm(tick, next_grid_time(csp.now(), grid), True)
    rows = []
    if csp.ticked(tick):
        csp.schedule_alarm(tick, grid, True)
        if s_started:
            p, sd = s_filter.predict(datetime_to_ns(csp.now()))
            rows.append(KalshiProbability(time=csp.now(), kind="grid", contract="", raw_price=NAN, p_obs=NAN, p=p,
                                          sd=sd, z=NAN, regime=s_regime, jump_prob=NAN, warm=s_filter.warm))
    if csp.ticked(fills) and fills.contract in CONTRACT_INDEX:
        f = fills
        out = s_filter.update(datetime_to_ns(f.time), f.contract, f.price, f.count)
        s_started = True
        s_regime = out.regime
        rows.append(KalshiProbability(time=f.time, kind="fill", contract=f.contract, raw_price=f.price,
                                      p_obs=out.p_obs, p=out.p, sd=out.sd, z=out.z, regime=out.regime,
                                      jump_prob=out.jump_prob, warm=out.warm))
    if rows:
        return rows
