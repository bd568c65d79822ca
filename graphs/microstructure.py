"""csp nodes for trade signing, per-minute microstructure bars and the 1 s NBBO sample.

The numerics live in :mod:`elecflow.microstructure`; these nodes own one streaming
estimator each in ``csp.state`` and convert ticks to calls and results to structs.
"""

from __future__ import annotations

import datetime as dt

import csp
from csp import ts

from elecflow.graphs.replay import datetime_to_ns, next_grid_time, ns_to_datetime
from elecflow.microstructure import MinuteBars, OneSecondNbbo, TradeSigner, counts_in_bars, is_signing_eligible
from elecflow.schema import EquityQuote, EquityTrade, MinuteBar, Nbbo1s



@csp.node
def minute_bars(quotes: ts[EquityQuote], trades: ts[EquityTrade], method: str, quote_delay_ns: int
                ) -> ts[[MinuteBar]]:
    """Sign each trade against the prevailing NBBO and accumulate 1-minute bars.

    Emits, at each minute boundary of engine time (and once at the end time, for the last
    open buckets), the bars of every ticker whose bucket just ended.
    """
    with csp.alarms():
        boundary = csp.alarm(bool)
        final = csp.alarm(bool)
    with csp.state():
        s_signer = TradeSigner(method=method, quote_delay_ns=quote_delay_ns)
        s_bars = MinuteBars()
    with csp.start():
        csp.schedule_alarm(boundary, next_grid_time(csp.now(), dt.timedelta(minutes=1)), True)
        csp.schedule_alarm(final, csp.engine_end_time(), True)
    if csp.ticked(quotes):
        q = quotes
        t = datetime_to_ns(q.time)
        s_signer.on_quote(q.symbol, t, q.bid_price, q.ask_price)
        s_bars.on_quote(q.symbol, t, q.bid_price, q.ask_price, q.bid_size, q.ask_size)
    if csp.ticked(trades):
        x = trades
        t = datetime_to_ns(x.time)
        sign = s_signer.on_trade(x.symbol, t, x.price, is_signing_eligible(x.condition_mask, x.correction))
        s_bars.on_trade(x.symbol, t, x.price, x.size, sign, x.is_iso, counts_in_bars(x.condition_mask, x.correction))
    rows = None
    if csp.ticked(boundary):
        csp.schedule_alarm(boundary, dt.timedelta(minutes=1), True)
        rows = s_bars.close(datetime_to_ns(csp.now()))
    if csp.ticked(final):
        rows = (rows or []) + s_bars.flush()
    if rows:
        return [MinuteBar(**{**row, "bucket": ns_to_datetime(row["bucket"])}) for row in rows]


@csp.node
def one_second_nbbo(quotes: ts[EquityQuote]) -> ts[[Nbbo1s]]:
    """The last quote of each symbol in [T - 1 s, T), emitted at each whole second T that had
    a quote (the vendor 1 s files' right-endpoint convention)."""
    with csp.alarms():
        second = csp.alarm(bool)
        final = csp.alarm(bool)
    with csp.state():
        s_sampler = OneSecondNbbo()
    with csp.start():
        csp.schedule_alarm(second, next_grid_time(csp.now(), dt.timedelta(seconds=1)), True)
        csp.schedule_alarm(final, csp.engine_end_time(), True)
    if csp.ticked(quotes):
        s_sampler.on_quote(quotes.symbol, datetime_to_ns(quotes.time), quotes.bid_price, quotes.ask_price)
    rows = None
    if csp.ticked(second):
        csp.schedule_alarm(second, dt.timedelta(seconds=1), True)
        rows = s_sampler.close(datetime_to_ns(csp.now()))
    if csp.ticked(final):
        rows = (rows or []) + s_sampler.flush()
    if rows:
        return [Nbbo1s(time=ns_to_datetime(t), symbol=sym, bid_price=bid, ask_price=ask) for t, sym, bid, ask in rows]


def microstructure_streams(quotes: ts[EquityQuote], trades: ts[EquityTrade], method: str = "lee_ready",
                           quote_delay_ns: int = 0) -> dict:
    """The computed microstructure output streams, by output name. Each ticks a list of
    structs: all the rows that become final at one engine time (a minute's bars of every
    ticker, a second's quotes of every symbol)."""
    return {
        "bars_1m": minute_bars(quotes, trades, method, quote_delay_ns),
        "nbbo_1s_sampled": one_second_nbbo(quotes),
    }
