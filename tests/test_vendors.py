"""Vendor readers on small hand-written files, malformed rows included.

Each fixture row is annotated with the reason it must be quarantined for (or "ok"), so the
test states the contract row by row.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elecflow import conditions as cond
from elecflow.adapters.ingest import IngestFilter, ingest
from elecflow.adapters.vendors import (
    SourceFile,
    VendorFileError,
    check_source,
    discover,
    parse_iso_ns,
    read_canonical,
    sniff_format,
)

T0 = 1730816400_000_000_000  # 2024-11-05 14:20:00 UTC = 09:20 New York

QUOTE_HEADER = ("ticker,ask_exchange,ask_price,ask_size,bid_exchange,bid_price,bid_size,conditions,indicators,"
                "participant_timestamp,sequence_number,sip_timestamp,tape,trf_timestamp")
# (row, expected reason)
QUOTE_ROWS = [
    (f"AAPL,11,222.51,300,12,222.49,200,1,,{T0 - 50},1,{T0},3,", "ok"),
    (f"AAPL,11,222.51,300,12,222.49,200,1,,{T0 - 50},1,{T0},3,", "duplicate"),
    (f"AAPL,11,222.40,300,12,222.60,200,,,{T0 + 1},2,{T0 + 10},3,", "crossed_quote"),
    (f"AAPL,11,222.52,300,12,,200,,,{T0 + 1},3,{T0 + 20},3,", "nan_price"),
    (f"AAPL,11,222.52,300,12,-1,200,,,{T0 + 1},4,{T0 + 30},3,", "nonpositive_price"),
    (f"AAPL,11,222.52,-300,12,222.50,200,,,{T0 + 1},5,{T0 + 40},3,", "negative_size"),
    (f"AAPL,11,222.52,300,12,222.50,200,,,{T0 - 9},6,{T0 - 5},3,", "out_of_order"),
    (f"AAPL,11,abc,300,12,222.50,200,,,{T0 + 1},7,{T0 + 50},3,", "malformed_record"),
    (f",11,222.52,300,12,222.50,200,,,{T0 + 1},8,{T0 + 60},3,", "missing_value"),
    (f"AAPL,11,222.52,300,12,222.52,100,,,{T0 + 1},9,{T0 + 70},3,", "ok"),  # locked market is kept
    (f"MSFT,11,410.10,100,12,410.00,100,,,{T0 + 1},10,{T0 + 1},3,", "ok"),
    (f"ZZZZ,11,10.10,100,12,10.00,100,,,{T0 + 1},10,{T0 + 1},3,", "skip:out_of_universe"),
]

TRADE_HEADER = ("ticker,conditions,correction,exchange,id,participant_timestamp,price,sequence_number,sip_timestamp,"
                "size,tape,trf_id,trf_timestamp")
TRADE_ROWS = [
    (f'AAPL,"14,41",0,11,1,{T0},222.5,1,{T0 + 1},100,3,,', "ok"),
    (f"AAPL,,0,11,2,{T0},222.5,2,{T0 + 2},50,3,,", "ok"),
    (f"AAPL,99,0,11,3,{T0},222.5,3,{T0 + 3},50,3,,", "unknown_condition"),
    (f'AAPL,"14,x",0,11,4,{T0},222.5,4,{T0 + 4},50,3,,', "malformed_conditions"),
    (f"AAPL,,0,11,5,{T0},0,5,{T0 + 5},50,3,,", "nonpositive_price"),
    (f"AAPL,,0,11,6,{T0},222.5,6,{T0 + 6},-5,3,,", "negative_size"),
    (f"AAPL,,0,11,6,{T0},222.5,6,{T0 + 6},-5,3,,", "negative_size"),  # bad rows never count as duplicates
    (f"AAPL,12,1,11,7,{T0},222.5,7,{T0 + 7},10,3,,", "ok"),  # corrected trade: kept, flag carried
    (f"AAPL,12,1,11,7,{T0},222.5,7,{T0 + 7},10,3,,", "duplicate"),
    (f"AAPL,,0,11,8,{T0},222.5,8,{T0 + 3},10,3,,", "out_of_order"),
    (f"AAPL,63,0,11,9,{T0},222.5,9,{T0 + 9},10,3,,", "unknown_condition"),  # status indicator, not a sale condition
]


def _write_csv_gz(path: Path, header: str, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write(header + "\n")
        for row, _ in rows:
            fh.write(row + "\n")
    return path


def _expect(rows):
    accepted = sum(1 for _, r in rows if r == "ok")
    rejected: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for _, r in rows:
        if r.startswith("skip:"):
            skipped[r[5:]] = skipped.get(r[5:], 0) + 1
        elif r != "ok":
            rejected[r] = rejected.get(r, 0) + 1
    return accepted, rejected, skipped


def _run(tmp_path, sources, **filt):
    return ingest(sources, tmp_path / "staging", tmp_path / "quarantine.parquet",
                  IngestFilter(symbols=frozenset({"AAPL", "MSFT"}), **filt), batch_rows=3)


@pytest.fixture
def quotes_file(tmp_path):
    return _write_csv_gz(tmp_path / "q" / "2024-11-05.csv.gz", QUOTE_HEADER, QUOTE_ROWS)


@pytest.fixture
def trades_file(tmp_path):
    return _write_csv_gz(tmp_path / "t" / "2024-11-05.csv.gz", TRADE_HEADER, TRADE_ROWS)


def test_sniffing_recognises_formats_by_columns(quotes_file, trades_file):
    assert sniff_format(quotes_file) == ("polygon_quotes", [])
    assert sniff_format(trades_file) == ("polygon_trades", [])


@pytest.mark.parametrize("fixture,rows,stream", [("quotes_file", QUOTE_ROWS, "quotes"),
                                                 ("trades_file", TRADE_ROWS, "trades")])
def test_polygon_rows_are_accepted_or_quarantined_with_their_reason(tmp_path, request, fixture, rows, stream):
    path = request.getfixturevalue(fixture)
    fmt = "polygon_quotes" if stream == "quotes" else "polygon_trades"
    report = _run(tmp_path, [SourceFile(path, fmt)])
    counts = report.files[0]
    accepted, rejected, skipped = _expect(rows)
    assert counts.read == len(rows)
    assert counts.accepted == accepted
    assert dict(counts.rejected) == rejected
    assert dict(counts.skipped) == skipped
    assert counts.reconciles
    q = pq.read_table(report.quarantine_path)
    expected_rows = [i + 1 for i, (_, r) in enumerate(rows) if r not in ("ok",) and not r.startswith("skip:")]
    assert sorted(q.column("row_number").to_pylist()) == expected_rows
    by_row = dict(zip(q.column("row_number").to_pylist(), q.column("reason").to_pylist()))
    for i, (_, r) in enumerate(rows):
        if i + 1 in by_row:
            assert by_row[i + 1] == r
    # raw records are kept so a human can see what was wrong
    assert all(json.loads(r) for r in q.column("raw").to_pylist())
    staged = pa.concat_tables(pq.read_table(p) for p in report.partitions[stream])
    assert staged.num_rows == accepted


def test_trade_conditions_become_mask_and_iso_flag(tmp_path, trades_file):
    report = _run(tmp_path, [SourceFile(trades_file, "polygon_trades")])
    staged = pq.read_table(report.partitions["trades"][0]).to_pylist()
    first = staged[0]
    assert cond.ids_from_mask(first["condition_mask"]) == (14, 41)
    assert first["is_iso"] is True
    assert [r["is_iso"] for r in staged] == [True, False, False]
    assert staged[2]["correction"] == 1
    # SIP time T0 + 1 ns, kept to the nanosecond
    assert pq.read_table(report.partitions["trades"][0]).column("time").cast(pa.int64())[0].as_py() == T0 + 1


def test_quote_sizes_in_round_lots_are_converted(tmp_path, quotes_file):
    report = _run(tmp_path, [SourceFile(quotes_file, "polygon_quotes")], size_multiplier=100.0)
    aapl = [p for p in report.partitions["quotes"] if p.name.startswith("AAPL")][0]
    assert pq.read_table(aapl).column("bid_size").to_pylist()[0] == 20_000.0


def test_time_window_skips_rows_and_counts_them(tmp_path, quotes_file):
    report = _run(tmp_path, [SourceFile(quotes_file, "polygon_quotes")], start_ns=T0 + 15, end_ns=T0 + 65)
    counts = report.files[0]
    assert counts.reconciles
    assert counts.skipped["outside_window"] >= 4


def test_missing_file_and_missing_column_are_one_clear_error(tmp_path):
    with pytest.raises(VendorFileError, match="nope.csv.gz: file not found"):
        check_source(SourceFile(tmp_path / "nope.csv.gz", "polygon_quotes"))
    bad = _write_csv_gz(tmp_path / "data" / "quotes.csv.gz", QUOTE_HEADER.replace("bid_size,", "bidsize,"),
                        QUOTE_ROWS[:1])
    with pytest.raises(VendorFileError, match=r"quotes.csv.gz: looks like polygon_quotes but is missing required "
                                              r"column 'bid_size'"):
        discover(tmp_path / "data")
    with pytest.raises(VendorFileError, match=r"quotes.csv.gz: missing required column 'bid_size'"):
        check_source(SourceFile(bad, "polygon_quotes"))
    with pytest.raises(VendorFileError, match="does not exist"):
        discover(tmp_path / "missing-dir")


def test_nbbo_1s_parquet(tmp_path):
    path = tmp_path / "nbbo.parquet"
    ts = pa.array([T0, T0 + 10**9, T0 + 10**9, T0 + 2 * 10**9], pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    pq.write_table(pa.table({"symbol": ["AAPL", "AAPL", "MSFT", "AAPL"], "timestamp": ts,
                             "bid_price": [1.0, 1.1, 2.0, 1.3], "ask_price": [1.01, 1.0, 2.01, 1.31]}), path)
    assert sniff_format(path) == ("nbbo_1s", [])
    report = _run(tmp_path, [SourceFile(path, "nbbo_1s")])
    assert report.files[0].accepted == 3
    assert dict(report.files[0].rejected) == {"crossed_quote": 1}


THETA_HEADER = "root,exp,strike,right,date,ms_of_day,bid_size,bid_exchange,bid,bid_condition,ask_size,ask_exchange,ask,ask_condition"
THETA_ROWS = [
    ("SPY,20241115,580000,C,20241105,34200000,10,1,12.5,0,12,1,12.7,0", "ok"),
    ("SPY,20241115,580000,C,20241105,34260000,10,1,12.9,0,12,1,12.7,0", "option_bid_above_ask"),
    ("SPY,20241115,580000,C,20241105,34320000,-1,1,12.5,0,12,1,12.7,0", "negative_size"),
    ("SPY,20241115,700000,C,20241105,34200000,0,1,0,0,50,1,0.01,0", "ok"),  # zero bid far out
    ("BRKB,20241115,450000,P,20241105,34200000,5,1,3.1,0,5,1,3.3,0", "ok"),
    ("SPY,20241115,580000,X,20241105,34200000,5,1,3.1,0,5,1,3.3,0", "bad_right"),
]


def test_thetadata_raw_maps_contract_time_and_root(tmp_path):
    path = tmp_path / "SPY.csv"
    path.write_text(THETA_HEADER + "\n" + "\n".join(r for r, _ in THETA_ROWS) + "\n")
    assert sniff_format(path) == ("thetadata_raw", [])
    report = _run(tmp_path, [SourceFile(path, "thetadata_raw")])
    counts = report.files[0]
    accepted, rejected, _ = _expect(THETA_ROWS)
    assert (counts.accepted, dict(counts.rejected)) == (accepted, rejected)
    rows = pa.concat_tables(pq.read_table(p) for p in report.partitions["option_quotes"]).to_pylist()
    spy = [r for r in rows if r["underlying"] == "SPY"][0]
    # 34,200,000 ms after midnight New York = 09:30 EST = 14:30 UTC
    assert spy["time"] == dt.datetime(2024, 11, 5, 14, 30, tzinfo=dt.timezone.utc)
    assert spy["contract"] == "SPY241115C00580000"
    assert spy["strike"] == 580.0 and spy["expiry"] == dt.date(2024, 11, 15)
    brk = [r for r in rows if r["contract"].startswith("BRKB")][0]
    assert brk["underlying"] == "BRK.B" and brk["right"] == "P"


def test_thetadata_formatted_equals_raw(tmp_path):
    raw = tmp_path / "raw" / "SPY.csv"
    raw.parent.mkdir()
    raw.write_text(THETA_HEADER + "\n" + THETA_ROWS[0][0] + "\n" + THETA_ROWS[3][0] + "\n")
    fmt = tmp_path / "fmt" / "SPY.parquet"
    fmt.parent.mkdir()
    local = pa.array([dt.datetime(2024, 11, 5, 9, 30)] * 2, pa.timestamp("ms"))
    pq.write_table(pa.table({
        "symbol": ["SPY241115C00580000", "SPY241115C00700000"], "timestamp": local, "underlying": ["SPY", "SPY"],
        "expiration": pa.array([dt.date(2024, 11, 15)] * 2), "strike": [580.0, 700.0], "right": ["C", "C"],
        "bid": [12.5, 0.0], "ask": [12.7, 0.01], "bid_size": [10.0, 0.0], "ask_size": [12.0, 50.0],
        "bid_exchange": [1, 1], "ask_exchange": [1, 1]}), fmt)
    assert sniff_format(fmt) == ("thetadata_formatted", [])
    a = [b for b in read_canonical(SourceFile(raw, "thetadata_raw"))][0]
    b = [b for b in read_canonical(SourceFile(fmt, "thetadata_formatted"))][0]
    for col in ("time", "contract", "underlying", "expiry", "strike", "right", "bid", "ask", "bid_size", "ask_size"):
        assert list(a.columns[col]) == list(b.columns[col]), col


KALSHI_DAILY = [
    ({"ticker_name": "PRES-2024-DJT", "create_ts": "2024-11-05T14:32:10.123456Z", "contracts_traded": 12,
      "price": 58}, "ok"),
    ({"ticker_name": "PRES-2024-KH", "create_ts": "2024-11-05 14:32:11", "contracts_traded": 3, "price": 43}, "ok"),
    ({"ticker_name": "PRES-2024-DJT", "create_ts": "2024-11-05T14:32:12Z", "contracts_traded": 1}, "malformed_record"),
    ({"ticker_name": "PRES-2024-DJT", "create_ts": "2024-11-05T14:32:13Z", "contracts_traded": 1, "price": "58c"},
     "malformed_record"),
    ({"ticker_name": "PRES-2024-DJT", "create_ts": "2024-11-05T14:32:14Z", "contracts_traded": 1, "price": 100},
     "price_out_of_range"),
    ({"ticker_name": "PRES-2024-DJT", "create_ts": "yesterday", "contracts_traded": 1, "price": 50}, "bad_timestamp"),
    ({"ticker_name": "PRES-2024-DJT", "create_ts": "2024-11-05T14:32:15Z", "contracts_traded": 0, "price": 50},
     "nonpositive_count"),
    ({"ticker_name": "POPVOTE-24", "create_ts": "2024-11-05T14:32:16Z", "contracts_traded": 1, "price": 50},
     "skip:other_contract"),
    ("not a record", "malformed_record"),
]


def test_kalshi_daily_report(tmp_path):
    path = tmp_path / "trade_data_2024-11-05.json"
    path.write_text(json.dumps([r for r, _ in KALSHI_DAILY]))
    assert sniff_format(path) == ("kalshi_daily_report", [])
    report = _run(tmp_path, [SourceFile(path, "kalshi_daily_report")],
                  kalshi_contracts=frozenset({"PRES-2024-DJT", "PRES-2024-KH"}))
    counts = report.files[0]
    accepted, rejected, skipped = _expect(KALSHI_DAILY)
    assert (counts.accepted, dict(counts.rejected), dict(counts.skipped)) == (accepted, rejected, skipped)
    rows = pa.concat_tables(pq.read_table(p) for p in report.partitions["kalshi_trades"]).to_pylist()
    djt = [r for r in rows if r["contract"] == "PRES-2024-DJT"][0]
    assert djt["price"] == pytest.approx(0.58) and djt["count"] == 12 and djt["taker_side"] == ""
    assert djt["time"] == dt.datetime(2024, 11, 5, 14, 32, 10, 123456, tzinfo=dt.timezone.utc)


def test_kalshi_rest(tmp_path):
    trades = [
        {"trade_id": "a", "ticker": "PRES-2024-DJT", "count": 5, "yes_price": 60, "no_price": 40, "taker_side": "yes",
         "created_time": "2024-11-06T03:00:00.5Z"},
        {"trade_id": "b", "ticker": "PRES-2024-DJT", "count": 5, "yes_price": 60, "no_price": 41, "taker_side": "no",
         "created_time": "2024-11-06T03:00:01Z"},
        {"trade_id": "c", "ticker": "PRES-2024-DJT", "count": 5, "yes_price": 60, "no_price": 40,
         "taker_side": "maybe", "created_time": "2024-11-06T03:00:02Z"},
    ]
    path = tmp_path / "trades.json"
    path.write_text(json.dumps({"trades": trades, "cursor": ""}))
    assert sniff_format(path) == ("kalshi_rest", [])
    report = _run(tmp_path, [SourceFile(path, "kalshi_rest")])
    counts = report.files[0]
    assert counts.accepted == 1
    assert dict(counts.rejected) == {"inconsistent_prices": 1, "malformed_record": 1}
    row = pq.read_table(report.partitions["kalshi_trades"][0]).to_pylist()[0]
    assert (row["taker_side"], row["trade_id"], row["price"]) == ("yes", "a", 0.6)


def test_unparsable_json_file_is_a_clear_error(tmp_path):
    path = tmp_path / "trade_data_2024-11-05.json"
    path.write_text('[{"ticker_name": "PRES-2024-DJT", ')
    with pytest.raises(VendorFileError, match="trade_data_2024-11-05.json"):
        list(read_canonical(SourceFile(path, "kalshi_daily_report")))


@pytest.mark.parametrize("text,expected", [
    ("2024-11-05T14:32:10.123456789Z", 1730817130_123456789),
    ("2024-11-05 14:32:10", 1730817130_000000000),
    ("2024-11-05T09:32:10-05:00", 1730817130_000000000),
])
def test_parse_iso_ns(text, expected):
    assert parse_iso_ns(text) == expected
