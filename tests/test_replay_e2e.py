"""End to end: a short synthetic window in vendor formats -> ``elecflow replay --mode sim``
-> outputs, checked against the generator's ground truth (counts, times, prices)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from elecflow.adapters.synthetic import write_synthetic_day
from elecflow.cli import main
from elecflow.synth.config import SyntheticDayConfig
from elecflow.synth.options import mixture_price

STREAMS = ("quotes", "trades", "nbbo_1s", "option_quotes", "kalshi_trades")


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> Path:
    """09:25-10:35 New York: the open, with Kalshi, two option chains (one with root BRKB).

    Without the simulated informed option market (``impact_underlyings``, XLF by default): its
    quotes would enter the chain checks below, whose truth is the chains' mixture; it has its
    own end-to-end test against its own truth (tests/test_impact_graph.py)."""
    root = tmp_path_factory.mktemp("day")
    cfg = SyntheticDayConfig(start_et="09:25", end_et="10:35", option_underlyings=["SPY", "BRK.B"],
                             impact_underlyings=[])
    write_synthetic_day(cfg, root / "data", progress=False)
    return root / "data"


@pytest.fixture(scope="module")
def replay(day, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    assert main(["replay", "--mode", "sim", "--data", str(day), "--out", str(out), "--no-progress"]) == 0
    return out


def _manifest(day: Path) -> dict:
    return json.loads((day / "manifest.json").read_text())


def test_counts_reconcile_with_the_generator(day, replay):
    manifest = _manifest(day)
    summary = json.loads((replay / "run_summary.json").read_text())
    assert summary["reconciles"] is True
    for stream in STREAMS:
        assert summary["replayed"][stream] == manifest["clean_rows"][stream], stream
        assert pq.read_table(replay / stream).num_rows == manifest["clean_rows"][stream], stream
        totals = summary["ingest"]["totals"][stream]
        assert totals["rejected"] == manifest["defects"][stream], stream
        assert totals["read"] == manifest["clean_rows"][stream] + sum(manifest["defects"][stream].values())
    quarantine = pq.read_table(replay / "quarantine.parquet")
    assert quarantine.num_rows == sum(sum(d.values()) for d in manifest["defects"].values())
    clock = pq.read_table(replay / "replay_clock")
    for stream in STREAMS:  # the clock's last row counts every event
        assert clock.column(stream)[-1].as_py() == manifest["clean_rows"][stream]


def test_outputs_are_time_ordered_and_inside_the_window(replay):
    lo = np.datetime64("2024-11-05T14:25", "ns").astype(np.int64)  # 09:25 New York
    hi = np.datetime64("2024-11-05T15:35", "ns").astype(np.int64)
    for stream in STREAMS:
        t = pq.read_table(replay / stream, columns=["time"]).column("time").cast(pa.int64()).to_numpy()
        assert np.all(np.diff(t) >= 0), stream
        # 1 s NBBO rows are labelled with the right end of their second: the last is at the end
        assert t.min() >= lo and (t.max() < hi or stream == "nbbo_1s" and t.max() == hi), stream


def test_trades_are_exactly_the_true_prints(day, replay):
    truth = pq.read_table(day / "ground_truth" / "trades_truth.parquet")
    out = pq.read_table(replay / "trades")
    key = lambda t, ts, px: sorted(zip(t.column("symbol").to_pylist(), t.column("trade_id").to_pylist(),  # noqa: E731
                                       t.column(ts).cast(pa.int64()).to_pylist(), t.column(px).to_pylist()))
    assert key(out, "time", "price") == key(truth, "sip_timestamp", "price")
    # the ISO flag decoded from condition ids equals the generator's
    iso_out = dict(zip(zip(out.column("symbol").to_pylist(), out.column("trade_id").to_pylist()),
                       out.column("is_iso").to_pylist()))
    iso_true = dict(zip(zip(truth.column("symbol").to_pylist(), truth.column("trade_id").to_pylist()),
                        truth.column("is_iso").to_pylist()))
    assert iso_out == iso_true


def test_kalshi_fills_are_the_true_fills(day, replay):
    truth = pq.read_table(day / "ground_truth" / "kalshi_truth.parquet").sort_by([("time", "ascending")])
    out = pq.read_table(replay / "kalshi_trades")
    rows = lambda t, scale: sorted(zip(t.column("time").cast(pa.int64()).to_pylist(),  # noqa: E731
                                       t.column("contract").to_pylist(),
                                       np.round(t.column("price").to_numpy() * scale).astype(int).tolist(),
                                       t.column("count").to_pylist()))
    assert rows(out, 100) == rows(truth, 1)  # dollars out, cents in the truth file


def test_one_second_nbbo_file_agrees_with_the_quotes_file(replay):
    """Two vendor files, two readers: the 1 s NBBO must equal the last quote in [T-1s, T)."""
    quotes = pq.read_table(replay / "quotes", columns=["time", "symbol", "bid_price", "ask_price"])
    nbbo = pq.read_table(replay / "nbbo_1s")
    for symbol in ("SPY", "BRK.B", "DJT"):
        q = quotes.filter(pc.equal(quotes.column("symbol"), symbol))
        n = nbbo.filter(pc.equal(nbbo.column("symbol"), symbol))
        qt = q.column("time").cast(pa.int64()).to_numpy()
        nt = n.column("time").cast(pa.int64()).to_numpy()
        assert np.all(nt % 1_000_000_000 == 0)
        # index of the last quote strictly before T
        idx = np.searchsorted(qt, nt, side="left") - 1
        assert np.all(idx >= 0) and np.all(qt[idx] >= nt - 1_000_000_000)
        np.testing.assert_array_equal(q.column("bid_price").to_numpy()[idx], n.column("bid_price").to_numpy())
        np.testing.assert_array_equal(q.column("ask_price").to_numpy()[idx], n.column("ask_price").to_numpy())


def test_option_quotes_bracket_the_true_mixture_price(day, replay):
    truth = pq.read_table(day / "ground_truth" / "options_truth.parquet").to_pylist()
    by_key = {(r["underlying"], r["time"]): r for r in truth}
    out = pq.read_table(replay / "option_quotes").to_pylist()
    assert {r["underlying"] for r in out} == {"SPY", "BRK.B"}
    assert all(r["contract"].startswith("BRKB") for r in out if r["underlying"] == "BRK.B")
    inside = 0
    for r in out:
        t = by_key[(r["underlying"], r["time"])]  # snapshot times map exactly (New York ms -> UTC)
        price = mixture_price(r["strike"], t["T"], t["discount_factor"], t["q"], t["mean_trump"], t["sigma_trump"],
                              t["mean_harris"], t["sigma_harris"], r["right"] == "C")
        inside += r["bid"] - 1e-9 <= price <= r["ask"] + 1e-9
    assert inside / len(out) > 0.99


def test_the_same_files_renamed_as_a_users_data_give_the_same_outputs(day, replay, tmp_path):
    user = tmp_path / "vendor"
    renames = {
        "polygon/us_stocks_sip/quotes_v1/2024/11/2024-11-05.csv.gz": "taq/nbbo_quotes_20241105.csv.gz",
        "polygon/us_stocks_sip/trades_v1/2024/11/2024-11-05.csv.gz": "taq/prints.csv.gz",
        "nbbo_1s/2024-11-05.parquet": "second_bars/all_us.parquet",
        "thetadata/SPY_20241115_20241105.csv": "opra/spy.csv",
        "thetadata/BRKB_20241115_20241105.csv": "opra/berkshire.csv",
        "kalshi/trade_data_2024-11-05.json": "prediction/kalshi_day1.json",
    }
    for src, dst in renames.items():
        (user / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(day / src, user / dst)
    out = tmp_path / "out"
    assert main(["replay", "--mode", "sim", "--data", str(user), "--out", str(out), "--no-progress"]) == 0
    for stream in STREAMS:
        assert pq.read_table(out / stream).equals(pq.read_table(replay / stream)), stream


def test_window_flags_cut_the_replay_and_count_skipped_rows(day, tmp_path):
    out = tmp_path / "out"
    assert main(["replay", "--mode", "sim", "--data", str(day), "--out", str(out), "--start", "10:00",
                 "--end", "10:05", "--no-progress"]) == 0
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["reconciles"]
    t = pq.read_table(out / "trades", columns=["time"]).column("time").cast(pa.int64()).to_numpy()
    assert t.min() >= np.datetime64("2024-11-05T15:00", "ns").astype(np.int64)
    assert t.max() < np.datetime64("2024-11-05T15:05", "ns").astype(np.int64)
    assert summary["ingest"]["totals"]["trades"]["skipped"]["outside_window"] > 0


def test_a_killed_run_leaves_only_readable_parquet_files(day, tmp_path):
    """Kill -9 a paced replay mid-run: every Parquet file where readers look is complete."""
    out = tmp_path / "out"
    cfg = tmp_path / "run.toml"
    cfg.write_text("[replay]\npart_minutes = 1.0\n")
    proc = subprocess.Popen([sys.executable, "-m", "elecflow.cli", "replay", "--config", str(cfg), "--data", str(day),
                             "--out", str(out), "--mode", "paced", "--speed", "120", "--no-dashboard",
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        clock_dir = out / "replay_clock"
        while time.monotonic() < deadline and len(list(clock_dir.glob("part-*.parquet"))) < 3:
            time.sleep(0.1)
        assert len(list(clock_dir.glob("part-*.parquet"))) >= 3, "replay did not get going"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    files = [p for p in out.rglob("*.parquet") if ".inprogress" not in p.parts]
    assert files
    for path in files:
        pq.read_table(path)  # raises on a truncated file
    assert not (out / "run_summary.json").exists()  # the run did not finish


@pytest.mark.slow
def test_the_embedded_day_replays_in_sim_mode_from_the_cli(tmp_path, monkeypatch):
    """``elecflow replay --mode sim --out DIR`` with no data: generate on first use (the day and
    its five baseline normal days), replay the whole default day with every layer, and
    reconcile with the generator's manifest. Slow since the leadership, factor and impact
    layers: 6-8 minutes on 2 cores (it was 30 s)."""
    monkeypatch.chdir(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "elecflow.cli", "replay", "--mode", "sim", "--out", "out",
                           "--no-progress"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    assert "counts reconcile" in proc.stdout
    manifest = json.loads(next((tmp_path / "replay_data").glob("*/manifest.json")).read_text())
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert summary["reconciles"]
    assert summary["replayed"] == manifest["clean_rows"]
    # a second run reuses the generated day
    again = subprocess.run([sys.executable, "-m", "elecflow.cli", "replay", "--mode", "sim", "--out", "out2",
                            "--no-progress", "--start", "15:59", "--end", "16:00"], capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0 and "generating" not in again.stdout


def _as_csp_sees_it(table: pa.Table) -> dict:
    """Columns as numpy, with times truncated to microseconds: csp hands Python nodes
    microsecond datetimes, so the streaming nodes see these times."""
    cols = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.schema.names}
    cols["time"] = table.column("time").cast(pa.int64()).to_numpy() // 1000 * 1000
    return cols


def test_streaming_bars_in_the_graph_equal_the_batch_computation(replay):
    from elecflow.microstructure import BAR_COLUMNS, minute_bars, sign_trades, signing_eligible

    quotes = _as_csp_sees_it(pq.read_table(replay / "quotes"))
    trades = _as_csp_sees_it(pq.read_table(replay / "trades"))
    signs = sign_trades(trades["time"], trades["price"], quotes["time"], quotes["bid_price"], quotes["ask_price"],
                        eligible=signing_eligible(trades["condition_mask"], trades["correction"]),
                        trade_group=trades["symbol"], quote_group=quotes["symbol"], method="lee_ready")
    batch = minute_bars(quotes, trades, signs)
    out = pq.read_table(replay / "bars_1m").sort_by([("bucket", "ascending"), ("ticker", "ascending")])
    assert out.num_rows == batch["ticker"].size > 0
    for name in BAR_COLUMNS:
        got = out.column(name)
        got = got.cast(pa.int64()).to_numpy() if name == "bucket" else got.to_numpy(zero_copy_only=False)
        want = batch[name]
        if got.dtype.kind == "f":
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
            np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-12, atol=0, err_msg=name)
        else:
            assert list(got) == list(want), name


def test_the_graphs_one_second_sample_equals_the_vendor_file(replay):
    sampled = pq.read_table(replay / "nbbo_1s_sampled")
    vendor = pq.read_table(replay / "nbbo_1s")
    assert sampled.num_rows == vendor.num_rows > 0
    assert sampled.equals(vendor.select(sampled.schema.names))


def test_the_graphs_option_densities_match_the_true_mixture(day, replay):
    """rnd_curve rows of SPY near 10:00 against the generator's two-lognormal mixture."""
    from elecflow.synth.options import mixture_density

    curve = pq.read_table(replay / "rnd_curve").to_pandas()
    summary = pq.read_table(replay / "rnd_summary").to_pandas()
    truth = pq.read_table(day / "ground_truth" / "options_truth.parquet").to_pandas()
    assert set(summary["underlying"]) == {"SPY", "BRK.B"}
    assert (summary["forward_method"] == "parity_carry").mean() > 0.95  # parity in spot units x the spot now
    spy = curve[curve["underlying"] == "SPY"]
    target = np.datetime64("2024-11-05T15:00:30", "ns").astype(np.int64)  # 10:00:30 New York
    times = spy["time"].astype("int64").unique()
    t = times[np.argmin(np.abs(times - target))]
    rows = spy[spy["time"].astype("int64") == t]
    tr = truth[truth["underlying"] == "SPY"]
    tr = tr.iloc[np.argmin(np.abs(tr["time"].astype("int64").to_numpy() - t))]
    strikes = rows["strike"].to_numpy()
    true_density = mixture_density(strikes, tr["T"], tr["q"], tr["mean_trump"], tr["sigma_trump"], tr["mean_harris"],
                                   tr["sigma_harris"])
    h = strikes[1] - strikes[0]
    l1 = np.sum(np.abs(rows["density"].to_numpy() - true_density)) * h
    assert l1 <= 0.05
    s = summary[(summary["underlying"] == "SPY") & (summary["time"].astype("int64") == t)].iloc[0]
    assert abs(s["mean"] / tr["forward"] - 1) <= 0.002
    assert abs(s["forward"] / tr["forward"] - 1) <= 0.001


def test_the_graphs_election_states_match_the_generators_states(day, replay):
    """``election_states``: every minute, per chain, a mode A fit (Trump weight = the filtered
    Kalshi probability) and a mode B fit. On SPY the mode A states are the generator's: state
    means within 0.5 % of spot and state vols within 10 % at every minute (issue 5)."""
    states = pq.read_table(replay / "election_states").to_pandas()
    truth = pq.read_table(day / "ground_truth" / "options_truth.parquet").to_pandas()
    assert set(states.underlying) == {"SPY", "BRK.B"} and set(states["mode"]) == {"A", "B"}
    assert set(states.label) <= {"trump_upper", "trump_lower", "undetermined"}
    a = states[(states["mode"] == "A") & (states.underlying == "SPY")].copy()
    assert len(a) >= 60 and a.success.all() and a.identified.all()
    assert (a.message == "").all() and np.isfinite(a.kalshi_probability).all()
    np.testing.assert_allclose(a.trump_probability, a.kalshi_probability)  # mode A: the weight is Kalshi's
    a["minute"] = (a.time - pd.Timedelta(seconds=1)).dt.floor("min")  # fitted 1 s after the snapshot
    tr = truth[truth.underlying == "SPY"].assign(minute=lambda t: t.time.dt.floor("min"))
    m = a.merge(tr, on="minute", suffixes=("", "_true"))
    assert len(m) == len(a)
    assert ((m.trump_mean - m.mean_trump).abs() / m.spot_true).max() < 0.005
    assert ((m.harris_mean - m.mean_harris).abs() / m.spot_true).max() < 0.005
    assert (m.trump_vol / m.sigma_trump - 1).abs().max() < 0.10
    assert (m.harris_vol / m.sigma_harris - 1).abs().max() < 0.10
    b = states[states["mode"] == "B"]
    labelled = b[b.label != "undetermined"]
    assert np.isfinite(labelled.trump_probability).all()
    assert np.isnan(b[b.label == "undetermined"].trump_probability).all()  # no guess while undetermined
