"""Normal (pre-election) days of the synthetic generator: configuration, an unchanged Election
Day, the news model in place of the election signal, determinism per (seed, date), the
training-days helper, and the project's readers and replay on a date other than 11-05."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from elecflow import universe as U
from elecflow.adapters.ingest import IngestFilter, ingest
from elecflow.adapters.synthetic import write_synthetic_day, write_training_days
from elecflow.adapters.vendors import discover
from elecflow.calendar import NY
from elecflow.config import ReplayConfig
from elecflow.graphs.run import run_replay
from elecflow.synth.config import NORMAL_DAY_FIELDS, SyntheticDayConfig, normal_trading_days
from elecflow.synth.day import generate_day, normal_paths, progress_units
from elecflow.synth.normal import MACRO_FACTOR_LOADINGS, news_stocks

DATE = dt.date(2024, 10, 8)  # a Tuesday, EDT (UTC-4)
OTHER = dt.date(2024, 10, 10)  # a Thursday with the CPI release at 08:30
WINDOW = dict(start_et="09:25", end_et="09:45")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _normal(date=DATE, **kw) -> SyntheticDayConfig:
    return SyntheticDayConfig(day_kind="normal", trading_date=date, **{**WINDOW, **kw})


@pytest.fixture(scope="module")
def normal_day(tmp_path_factory):
    out = tmp_path_factory.mktemp("normal") / "data"
    manifest = write_synthetic_day(_normal(seed=11), out, progress=False)
    return out, manifest


# --------------------------------------------------------------------------- configuration


def test_configuration_of_normal_and_election_days():
    default = SyntheticDayConfig()
    assert default.day_kind == "election" and default.trading_date == dt.date(2024, 11, 5)
    assert default.option_underlyings  # election day keeps its options

    cfg = SyntheticDayConfig(day_kind="normal", trading_date="2024-10-08")
    assert (cfg.start_et, cfg.end_et) == (dt.datetime(2024, 10, 8, 4), dt.datetime(2024, 10, 8, 20))
    assert cfg.option_underlyings == []  # no options unless asked for
    cfg = _normal(start_et="09:30", end_et="16:00:30", option_underlyings=["SPY"])
    assert cfg.start_et == dt.datetime(2024, 10, 8, 9, 30) and cfg.end_et == dt.datetime(2024, 10, 8, 16, 0, 30)
    assert cfg.option_underlyings == ["SPY"]
    assert SyntheticDayConfig(day_kind="normal", trading_date=DATE, start_et="2024-10-08T10:00").start_et.hour == 10
    # the manifest form rebuilds the configuration, for both kinds
    assert SyntheticDayConfig(**cfg.manifest_dump()) == cfg
    assert SyntheticDayConfig(**default.manifest_dump()) == default
    assert not set(NORMAL_DAY_FIELDS) & set(default.manifest_dump())

    bad = [
        (dict(day_kind="normal"), "before the election"),  # 2024-11-05 is not a normal day
        (dict(day_kind="normal", trading_date="2024-11-06"), "before the election"),
        (dict(day_kind="normal", trading_date="2024-10-12"), "Saturday"),
        (dict(day_kind="normal", trading_date="2024-09-02"), "holiday"),  # Labor Day
        (dict(day_kind="normal", trading_date="2024-07-03"), "early-close"),
        (dict(day_kind="normal", trading_date="2022-10-10"), "start at"),
        (dict(trading_date="2024-10-08"), "election day's trading_date is 2024-11-05"),
        (dict(day_kind="normal", trading_date="2024-10-08", end_et="20:30"), "<= 2024-10-08T20:00"),
        (dict(day_kind="normal", trading_date="2024-10-08", start_et="03:00"), "2024-10-08T04:00 <="),
        (dict(day_kind="normal", trading_date="2024-10-08", start_et="2024-10-09T09:30"), "start_et < end_et"),
        (dict(day_kind="normal", trading_date="2024-10-08", option_expiry="2024-10-08"), "option_expiry"),
        (dict(day_kind="sunday"), "day_kind"),
        (dict(day_kind="normal", trading_date="2024-10-08", idio_news_per_day=-1), "idio_news_per_day"),
    ]
    for kw, message in bad:
        with pytest.raises(ValidationError, match=message):
            SyntheticDayConfig(**kw)
    days = normal_trading_days("2024-08-30", "2024-09-06")
    assert days == [dt.date(2024, 8, 30), dt.date(2024, 9, 3), dt.date(2024, 9, 4), dt.date(2024, 9, 5),
                    dt.date(2024, 9, 6)]


# --------------------------------------------------------------------------- the Election Day is unchanged

# Digests of the default configuration's 09:30-09:40 output (decompressed CSV, so independent
# of the gzip build; JSON text is stable too). The equity and Kalshi files are as written
# *before* normal days were added; manifest and params were re-pinned when option chains got
# wing strikes (two new settings in the manifest, new strike counts in params).
ELECTION_BASELINE = {
    "polygon/us_stocks_sip/quotes_v1/2024/11/2024-11-05.csv.gz":
        "03fb1eccfd2241ce4838f2a72526221500d182db8d5b859e129e4a5c554aa811",
    "polygon/us_stocks_sip/trades_v1/2024/11/2024-11-05.csv.gz":
        "88be9b59a9d94e5b63d43db2b2f07833e7046844e64c43612e7fefbd9865e7a9",
    "kalshi/trade_data_2024-11-05.json": "7e14f34cc976f1204f8747397628e53f2c5a8661081b1fa291653319fa9f648c",
    # re-pinned for option_states, then for the factor universe (its knob in generated_with, its
    # files in a "factor_universe" section and its truth files in ground_truth_files) and the
    # informed option market (its impact_* knobs in generated_with, its XLF quote and trade files in
    # files, the option_trades stream in defects / clean_rows / reasons_by_stream, an
    # "impact_markets" section and its truth files; every other pinned file unchanged)
    "manifest.json": "2987f56fd1eb831c217adee0e961c2e65a943b6dbd1b8484569e41112b84f342",
    "ground_truth/params.json": "8134024b1bddad6c3a355bb890d40704797b92c47a7ac8b62f5ea986649f9a35",
}


def test_default_election_output_is_unchanged(tmp_path):
    window = dict(start_et="09:30", end_et="09:40")
    default, explicit = tmp_path / "default", tmp_path / "explicit"
    write_synthetic_day(SyntheticDayConfig(**window), default, progress=False)
    write_synthetic_day(SyntheticDayConfig(day_kind="election", trading_date=dt.date(2024, 11, 5), **window),
                        explicit, progress=False)
    assert _hashes(default) == _hashes(explicit)
    for rel, digest in ELECTION_BASELINE.items():
        data = (default / rel).read_bytes()
        if rel.endswith(".gz"):
            data = gzip.decompress(data)
        assert hashlib.sha256(data).hexdigest() == digest, rel
    manifest = json.loads((default / "manifest.json").read_text())
    assert "day_kind" not in manifest and "trading_date" not in manifest  # absent = election, 11-05


# --------------------------------------------------------------------------- a normal day's files


def test_normal_day_files_layout_and_times(normal_day):
    out, manifest = normal_day
    assert manifest["day_kind"] == "normal" and manifest["trading_date"] == "2024-10-08"
    assert manifest["generated_with"]["day_kind"] == "normal"
    paths = sorted(f["path"] for f in manifest["files"])
    assert paths == ["nbbo_1s/2024-10-08.parquet", "polygon/us_stocks_sip/quotes_v1/2024/10/2024-10-08.csv.gz",
                     "polygon/us_stocks_sip/trades_v1/2024/10/2024-10-08.csv.gz"]
    assert not (out / "kalshi").exists() and not (out / "thetadata").exists()
    assert manifest["clean_rows"]["kalshi_trades"] == 0 and manifest["clean_rows"]["option_quotes"] == 0
    truth = sorted(p.name for p in (out / "ground_truth").iterdir())
    assert truth == ["efficient_prices.parquet", "factors.parquet", "ff_factors.parquet", "ff_model.json",
                     "ff_universe.parquet", "news.parquet", "options_truth.parquet", "params.json",
                     "trades_truth.parquet"]

    lo = pd.Timestamp("2024-10-08 09:25", tz=NY).value  # 13:25 UTC (EDT)
    hi = pd.Timestamp("2024-10-08 09:45", tz=NY).value
    for rel in paths[1:]:
        frame = pd.read_csv(out / rel, usecols=["ticker", "sip_timestamp"])
        assert set(frame.ticker) == set(U.SYMBOLS), rel  # all 40 symbols
        t = frame.sip_timestamp.to_numpy()
        assert t.min() >= lo and t.max() < hi, rel
    nbbo = pq.read_table(out / paths[0]).to_pandas()
    assert set(nbbo.symbol) == set(U.SYMBOLS)
    assert nbbo.timestamp.min() > pd.Timestamp("2024-10-08 13:25", tz="UTC")
    assert nbbo.timestamp.max() <= pd.Timestamp("2024-10-08 13:45", tz="UTC")

    params = json.loads((out / "ground_truth/params.json").read_text())
    assert params["day_kind"] == "normal" and params["trading_date"] == "2024-10-08"
    assert "probability" not in params and params["kalshi"] is None
    assert all(i["election_loading_effective"] == 0.0 for i in params["equities"]["instruments"].values())
    tt = pq.read_table(out / "ground_truth/trades_truth.parquet").to_pandas()
    assert len(tt) == manifest["clean_rows"]["trades"] and set(tt.true_side) == {-1, 1}
    assert tt.informed.any() and tt.is_iso.any()
    # the same flow mechanics as on Election Day: ISO far more frequent on informed prints
    assert tt[tt.informed].is_iso.mean() > 4 * tt[~tt.informed].is_iso.mean()
    factors = pq.read_table(out / "ground_truth/factors.parquet").to_pandas()
    assert set(factors.factor) == set(MACRO_FACTOR_LOADINGS) | {"MACRO"}
    eff = pq.read_table(out / "ground_truth/efficient_prices.parquet", columns=["time"]).column("time")
    assert eff[0].as_py() == dt.datetime(2024, 10, 8, 13, 25, tzinfo=dt.timezone.utc)


def test_news_replaces_the_election_signal():
    cfg = _normal(seed=3)
    paths, news = normal_paths(cfg)
    assert paths.driver == "macro" and paths.date == DATE
    np.testing.assert_array_equal(paths.p, news.level)  # the driver is the macro news level, not a probability
    assert paths.factors[-1] == "MACRO" and np.array_equal(paths.factor_log[-1], news.level)
    f = {name: np.diff(paths.factor_log[i]) for i, name in enumerate(paths.factors)}
    regular = paths.session[:-1] == 2
    dt_years = 1.0 / U.SECONDS_PER_TRADING_YEAR
    # MKT = 1.0 x macro news + its own diffusion: nothing else (no election path)
    resid = f["MKT"] - MACRO_FACTOR_LOADINGS["MKT"] * f["MACRO"]
    assert resid[regular].std() / (0.13 * np.sqrt(dt_years)) == pytest.approx(1.0, abs=0.03)
    # DJT = 0.8 MKT + idiosyncratic diffusion + its own news; no election loading
    x = np.diff(paths.log_price[paths.row("DJT")])
    resid = x - 0.8 * f["MKT"] - news.idio["DJT"]
    assert resid[regular].std() / (1.10 * np.sqrt(dt_years)) == pytest.approx(1.0, abs=0.03)
    assert abs(np.corrcoef(resid[regular], f["MACRO"][regular])[0, 1]) < 0.03
    # scheduled releases of the date are there (CPI on 2024-10-10 at 08:30 ET)
    _, news_cpi = normal_paths(_normal(OTHER, seed=3))
    labels = {e["label"]: e for e in news_cpi.events if e["kind"] == "release"}
    assert {"CPI (Sep)", "initial jobless claims", "10:00 data release"} <= set(labels)
    cpi_ns = pd.Timestamp("2024-10-10 08:30", tz=NY).value
    assert labels["CPI (Sep)"]["grid_time_utc_ns"] == cpi_ns
    assert set(news.idio) == set(news_stocks()) and "GOOG" not in news.idio


def test_progress_units_match_the_ticks():
    for cfg in (_normal(start_et="09:30", end_et="09:31"),
                _normal(start_et="10:00", end_et="10:01", option_underlyings=["SPY"], option_snapshot_seconds=30)):
        ticks = []
        day = generate_day(cfg, ticks.append)
        assert len(ticks) == progress_units(cfg)
        assert day.probability is None and day.kalshi is None and day.is_normal


# --------------------------------------------------------------------------- determinism per (seed, date)


def test_same_date_and_seed_is_byte_identical_other_dates_and_seeds_differ(tmp_path, normal_day):
    out, _ = normal_day
    again = tmp_path / "again"
    write_synthetic_day(_normal(seed=11), again, progress=False)
    assert _hashes(again) == _hashes(out)

    other_seed = tmp_path / "seed"
    write_synthetic_day(_normal(seed=12), other_seed, progress=False)
    a, b = _hashes(out), _hashes(other_seed)
    assert set(a) == set(b)
    assert all(a[p] != b[p] for p in a if p != "ground_truth/options_truth.parquet")  # (empty table)

    other_date = tmp_path / "date"
    write_synthetic_day(_normal(OTHER, seed=11), other_date, progress=False)
    c = _hashes(other_date)
    assert "polygon/us_stocks_sip/trades_v1/2024/10/2024-10-10.csv.gz" in c
    # same time of day, another date: different prices, flow and news
    t_a = pq.read_table(out / "ground_truth/trades_truth.parquet").to_pandas()
    t_c = pq.read_table(other_date / "ground_truth/trades_truth.parquet").to_pandas()
    assert len(t_a) != len(t_c) or not np.array_equal(t_a.price.to_numpy(), t_c.price.to_numpy())
    e_a = pq.read_table(out / "ground_truth/efficient_prices.parquet").column("log_efficient_price").to_numpy()
    e_c = pq.read_table(other_date / "ground_truth/efficient_prices.parquet").column("log_efficient_price").to_numpy()
    assert e_a.shape == e_c.shape and not np.allclose(e_a, e_c)


# --------------------------------------------------------------------------- the project's readers


def test_replay_of_a_normal_day_reconciles(normal_day, tmp_path):
    out, manifest = normal_day
    config = ReplayConfig(mode="sim", data=out, out=tmp_path / "replay", progress=False, date=DATE)
    sources, unknown = discover(out)
    assert unknown == []
    result = run_replay(config, sources, log=lambda *_: None)
    assert result.reconciles()
    for stream in ("quotes", "trades", "nbbo_1s"):
        assert result.replayed[stream] == manifest["clean_rows"][stream], stream
        assert dict(result.ingest.totals()[stream]["rejected"]) == manifest["defects"][stream], stream
    assert result.replayed.get("kalshi_trades", 0) == 0 and result.replayed.get("option_quotes", 0) == 0
    assert result.start.date() == DATE  # engine time (naive UTC) on the trading date
    # HH:MM windows refer to ReplayConfig.date (default 2024-11-05): with the date, a sub-window
    windowed = ReplayConfig(mode="sim", data=out, out=tmp_path / "w", progress=False, date=DATE,
                            start="09:30", end="09:40")
    assert windowed.window_utc() == (dt.datetime(2024, 10, 8, 13, 30), dt.datetime(2024, 10, 8, 13, 40))
    result = run_replay(windowed, sources, log=lambda *_: None)
    assert result.reconciles() and 0 < result.replayed["trades"] < manifest["clean_rows"]["trades"]
    trades = pq.read_table(tmp_path / "w" / "trades", columns=["time"]).column("time").cast(pa.int64()).to_numpy()
    assert trades.min() >= pd.Timestamp("2024-10-08 13:30", tz="UTC").value
    assert trades.max() < pd.Timestamp("2024-10-08 13:40", tz="UTC").value


@pytest.mark.parametrize("variant", [dict(option_format="raw"), dict(option_format="formatted")])
def test_reader_on_a_normal_day_with_options(tmp_path, variant):
    cfg = _normal(seed=4, start_et="15:55", end_et="16:05", option_underlyings=["SPY", "BRK.B"],
                  defects_per_kind=2, **variant)
    data = tmp_path / "data"
    manifest = write_synthetic_day(cfg, data, progress=False)
    option_files = [f["path"] for f in manifest["files"] if f["format"].startswith("thetadata")]
    ext = "csv" if variant["option_format"] == "raw" else "parquet"
    assert sorted(option_files) == [f"thetadata/BRKB_20241115_20241008.{ext}", f"thetadata/SPY_20241115_20241008.{ext}"]
    sources, unknown = discover(data)
    assert unknown == []
    report = ingest(sources, tmp_path / "stage", tmp_path / "quarantine.parquet", IngestFilter())
    totals = report.totals()
    for stream, clean in manifest["clean_rows"].items():
        t = totals.get(stream, {"accepted": 0, "rejected": Counter(), "skipped": Counter()})
        assert t["accepted"] == clean, stream
        assert dict(t["rejected"]) == manifest["defects"][stream], stream
        assert not t["skipped"], stream
    truth = pq.read_table(data / "ground_truth/options_truth.parquet").to_pandas()
    assert truth.time.min() == pd.Timestamp("2024-10-08 15:55", tz=NY)
    assert np.allclose(truth.q, cfg.p_start)  # the election is still ahead: q held at p_start
    # the reader's New York -> UTC conversion of the vendor's local times lands on the trading date (EDT)
    staged = pa.concat_tables([pq.read_table(f, columns=["time"]) for f in report.partitions["option_quotes"]])
    t = staged.column("time").cast(pa.int64()).to_numpy()
    assert t.size == manifest["clean_rows"]["option_quotes"]
    assert t.min() == pd.Timestamp("2024-10-08 19:55", tz="UTC").value
    assert t.max() < pd.Timestamp("2024-10-08 20:00", tz="UTC").value  # last snapshot before the 16:00 close


# --------------------------------------------------------------------------- many days


def test_write_training_days(tmp_path):
    dates = ["2024-10-07", dt.date(2024, 10, 8)]
    folders = write_training_days(dates, tmp_path / "train", seed=5, progress=False, start_et="10:00",
                                  end_et="10:02", defects_per_kind=0)
    assert folders == [tmp_path / "train" / "2024-10-07", tmp_path / "train" / "2024-10-08"]
    for folder, day in zip(folders, ("2024-10-07", "2024-10-08")):
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["trading_date"] == day and manifest["seed"] == 5
        assert (folder / f"nbbo_1s/{day}.parquet").exists()
    before = {p: p.stat().st_mtime_ns for p in folders[0].rglob("*") if p.is_file()}
    again = write_training_days(dates, tmp_path / "train", seed=5, progress=False, start_et="10:00",
                                end_et="10:02", defects_per_kind=0)
    assert again == folders
    assert {p: p.stat().st_mtime_ns for p in folders[0].rglob("*") if p.is_file()} == before  # reused
    # one bad date fails before anything is written
    with pytest.raises(ValidationError, match="Saturday"):
        write_training_days(["2024-10-09", "2024-10-12"], tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="sets day_kind"):
        write_training_days(["2024-10-09"], tmp_path / "bad", progress=False, day_kind="election")
