"""The per-minute feature table of the dashboard: row conversion and burst publishing."""

from __future__ import annotations

import datetime as dt
import math

import csp

from elecflow.graphs.dashboard import BARS_TABLE, TABLE_SCHEMAS, bar_row, publish_bars
from elecflow.schema import MinuteBar

T0 = dt.datetime(2024, 11, 5, 14, 31)


def _bar(ticker: str, flow: float, rsprd: float = 0.0001) -> MinuteBar:
    return MinuteBar(ticker=ticker, bucket=T0, log_mid=math.log(100.0), quote_updates=5, avg_rsprd=rsprd,
                     pct_trades_iso=0.25, pct_volume_iso=0.5, total_flow_non_iso=flow / 2, total_flow_iso=flow / 2,
                     num_trades=4, num_trades_iso=1, total_volume=400.0, total_flow=flow,
                     iso_flow_intensity=float("nan"), microprice=100.01, microprice_var=1e-6)


def test_bar_row_matches_the_table_schema_and_makes_nan_null():
    row = bar_row(_bar("AAPL", 1000.0))
    # every column but p_up, which the up-move classifier fills by partial updates
    assert set(row) == set(TABLE_SCHEMAS[BARS_TABLE]) - {"p_up"}
    assert row["bucket"] == int((T0 - dt.datetime(1970, 1, 1)).total_seconds() * 1000)
    assert row["avg_rsprd_bps"] == 1.0
    assert row["iso_flow_intensity"] is None  # NaN is not valid JSON for perspective


class Recorder:
    def __init__(self):
        self.calls = []

    def update(self, table, rows):
        self.calls.append((table, [r["ticker"] for r in rows]))


def test_a_minute_burst_is_published_whole_in_one_update():
    server = Recorder()

    @csp.graph
    def g():
        bursts = csp.curve([MinuteBar], [(T0, [_bar("AAPL", 1.0), _bar("MSFT", -2.0), _bar("SPY", 3.0)]),
                                         (T0 + dt.timedelta(minutes=1), [_bar("AAPL", 4.0)])])
        publish_bars(server, bursts)

    csp.run(g, starttime=T0, endtime=T0 + dt.timedelta(minutes=2))
    assert server.calls == [(BARS_TABLE, ["AAPL", "MSFT", "SPY"]), (BARS_TABLE, ["AAPL"])]


def test_up_move_scores_are_partial_rows_of_the_bars_table():
    from elecflow.graphs.dashboard import upmove_row
    from elecflow.schema import UpMoveScore

    assert upmove_row(UpMoveScore(ticker="SPY", bucket=T0, p_up=0.61)) == {"ticker": "SPY", "p_up": 0.61}
