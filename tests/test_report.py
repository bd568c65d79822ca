"""``elecflow.report``: a short replay (09:30-10:00 New York, SPY and TLT chains, Kalshi) ->
state table CSV and PNG figures, checked against the ``election_states`` rows read back
independently (pandas), plus the clear errors for outputs the report cannot use."""

from __future__ import annotations

import csv
import math
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from elecflow.report import STATE_TABLE_COLUMNS, ReportError, load_outputs, state_table, write_report

UNDERLYINGS = ("SPY", "TLT")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXPECTED_COLUMNS = [
    "underlying", "time", "time_new_york", "success", "identified", "message", "label", "kalshi_probability",
    "spot", "forward", "tau", "trump_mean", "trump_expected_return", "trump_expected_return_se", "trump_vol",
    "trump_vol_se", "harris_mean", "harris_expected_return", "harris_expected_return_se", "harris_vol",
    "harris_vol_se", "rmse_vol_points", "option_label", "option_trump_probability", "option_trump_probability_se",
    "option_trump_probability_filtered",
    "probability_gap", "day_fits", "median_trump_expected_return", "median_trump_expected_return_se",
    "median_trump_vol", "median_trump_vol_se", "median_harris_expected_return", "median_harris_expected_return_se",
    "median_harris_vol", "median_harris_vol_se",
]
# CSV column -> election_states column (mode A row unless noted)
FROM_MODE_A = ["kalshi_probability", "spot", "forward", "tau", "trump_mean", "trump_expected_return",
               "trump_expected_return_se", "trump_vol", "trump_vol_se", "harris_mean", "harris_expected_return",
               "harris_expected_return_se", "harris_vol", "harris_vol_se", "rmse_vol_points"]
FROM_MODE_B = {"option_trump_probability": "trump_probability", "option_trump_probability_se": "trump_probability_se",
               "option_trump_probability_filtered": "trump_probability_filtered",
               "probability_gap": "probability_gap"}
MEDIANS = ["trump_expected_return", "trump_expected_return_se", "trump_vol", "trump_vol_se",
           "harris_expected_return", "harris_expected_return_se", "harris_vol", "harris_vol_se"]


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Path:
    from elecflow.adapters.synthetic import write_synthetic_day
    from elecflow.config import ReplayConfig
    from elecflow.graphs.run import resolve_sources, run_replay
    from elecflow.synth.config import SyntheticDayConfig

    root = tmp_path_factory.mktemp("report")
    # without the simulated informed option market (XLF by default): its chain would be a third
    # underlying of the report; it has its own test (tests/test_impact_graph.py)
    write_synthetic_day(SyntheticDayConfig(start_et="09:30", end_et="10:00", option_underlyings=list(UNDERLYINGS),
                                           impact_underlyings=[]), root / "data", progress=False)
    cfg = ReplayConfig(mode="sim", data=root / "data", out=root / "out", progress=False)
    run_replay(cfg, resolve_sources(cfg, log=lambda *a: None), log=lambda *a: None)
    return root / "out"


@pytest.fixture(scope="module")
def states(replay) -> pd.DataFrame:
    """election_states read back independently of elecflow.report."""
    return pq.read_table(replay / "election_states").to_pandas()


@pytest.fixture(scope="module")
def report(replay, tmp_path_factory) -> tuple[Path, list[Path]]:
    target = tmp_path_factory.mktemp("rep") / "report"
    return target, write_report(replay, target)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == EXPECTED_COLUMNS
        return list(reader)


def _float(text: str) -> float:
    return math.nan if text == "" else float(text)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _check_against_states(rows: list[dict[str, str]], states: pd.DataFrame, minute: pd.Timestamp) -> None:
    """Each CSV row equals the underlying's mode-A (and mode-B) row of ``minute``, exactly."""
    in_minute = states[states["time"].dt.floor("min") == minute]
    for row in rows:
        a = in_minute[(in_minute["underlying"] == row["underlying"]) & (in_minute["mode"] == "A")]
        b = in_minute[(in_minute["underlying"] == row["underlying"]) & (in_minute["mode"] == "B")]
        assert len(a) == 1 and len(b) == 1, row["underlying"]
        a, b = a.iloc[0], b.iloc[0]
        assert pd.Timestamp(row["time"]) == a["time"]
        assert pd.Timestamp(row["time_new_york"]) == a["time"]
        assert row["label"] == a["label"] and row["option_label"] == b["label"]
        assert row["success"] == str(bool(a["success"])).lower()
        assert row["identified"] == str(bool(a["identified"])).lower()
        for col in FROM_MODE_A:
            assert _same(_float(row[col]), float(a[col])), (row["underlying"], col)
        for col, src in FROM_MODE_B.items():
            assert _same(_float(row[col]), float(b[src])), (row["underlying"], col)
        day = states[(states["underlying"] == row["underlying"]) & (states["mode"] == "A") & states["success"]
                     & states["identified"]]
        assert int(row["day_fits"]) == len(day)
        for col in MEDIANS:
            assert _float(row[f"median_{col}"]) == pytest.approx(float(day[col].median()), rel=1e-12, abs=0)


def test_report_writes_every_file(report):
    target, written = report
    expected = {"state_table.csv", "state_returns.png"}
    expected |= {f"{kind}_{u}.png" for u in UNDERLYINGS for kind in ("states", "probability")}
    assert {p.name for p in written} == expected
    assert {p.name for p in target.iterdir()} == expected
    for path in written:
        if path.suffix != ".png":
            continue
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC, path.name
        assert data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 600 and height >= 400, path.name
        assert len(data) > 20_000, path.name  # drawn, not blank


def test_csv_is_one_row_per_underlying_with_finite_mode_a_values(report):
    rows = _read_csv(report[0] / "state_table.csv")
    assert [r["underlying"] for r in rows] == list(UNDERLYINGS)
    for row in rows:
        assert row["success"] == "true" and row["identified"] == "true" and row["message"] == ""
        assert row["label"] in ("trump_upper", "trump_lower")
        for col in FROM_MODE_A + [f"median_{c}" for c in MEDIANS]:
            assert math.isfinite(_float(row[col])), (row["underlying"], col)
        assert float(row["trump_expected_return_se"]) > 0 and float(row["harris_vol_se"]) > 0
        assert 0 < float(row["kalshi_probability"]) < 1 and int(row["day_fits"]) >= 20
        # mode B's Trump probability is reported only once its states are labelled
        assert math.isnan(_float(row["option_trump_probability"])) == (row["option_label"] == "undetermined")


def test_csv_equals_the_states_at_the_last_fit_minute(report, states):
    fits = states[(states["mode"] == "A") & states["success"]]
    last_minute = fits["time"].max().floor("min")
    rows = _read_csv(report[0] / "state_table.csv")
    _check_against_states(rows, states, last_minute)


def test_at_selects_the_fits_of_that_minute(replay, states, tmp_path):
    written = write_report(replay, tmp_path / "r", at="09:45")
    rows = _read_csv(tmp_path / "r" / "state_table.csv")
    assert len(rows) == len(UNDERLYINGS) and len(written) == 2 + 2 * len(UNDERLYINGS)
    assert all(r["time_new_york"].startswith("2024-11-05T09:45:") for r in rows)
    _check_against_states(rows, states, pd.Timestamp("2024-11-05 14:45", tz="UTC"))
    # the library API agrees with the CSV (a pyarrow Table, no pandas in elecflow.report)
    table = state_table(load_outputs(replay).states, at="09:45")
    assert table.column_names == list(STATE_TABLE_COLUMNS)
    assert table.column("trump_expected_return").to_pylist() == [float(r["trump_expected_return"]) for r in rows]


def test_at_before_the_first_fit_or_unparseable_is_a_clear_error(replay, tmp_path):
    with pytest.raises(ReportError, match="no mode-A fit at or before 2024-11-05 09:00 New York"):
        write_report(replay, tmp_path / "r", at="09:00")
    with pytest.raises(ReportError, match="--at '25:99'"):
        write_report(replay, tmp_path / "r", at="25:99")
    assert not (tmp_path / "r").exists()  # nothing written on error


def test_missing_outputs_are_clear_errors(replay, tmp_path):
    with pytest.raises(ReportError, match="output directory does not exist") as err:
        write_report(tmp_path / "nowhere", tmp_path / "r")
    assert str(tmp_path / "nowhere") in str(err.value)
    # a replay without options: outputs but no election_states
    no_options = tmp_path / "no_options"
    shutil.copytree(replay / "kalshi_probability", no_options / "kalshi_probability")
    with pytest.raises(ReportError, match="no election_states dataset") as err:
        write_report(no_options, tmp_path / "r")
    assert str(no_options) in str(err.value) and "Traceback" not in str(err.value)
    # an election_states dataset with no mode-A fit (e.g. no Kalshi trades in the window)
    only_b = tmp_path / "only_b"
    (only_b / "election_states").mkdir(parents=True)
    table = pq.read_table(replay / "election_states")
    pq.write_table(table.filter(np.asarray(table.column("mode").to_pylist()) == "B"),
                   only_b / "election_states" / "part-00000.parquet")
    with pytest.raises(ReportError, match="no successful mode-A fit"):
        write_report(only_b, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_report_without_rnd_curve_or_kalshi_datasets(replay, tmp_path):
    """Only election_states: the densities go without the chain's curve, Kalshi's line comes
    from the fits' own kalshi_probability."""
    bare = tmp_path / "bare"
    shutil.copytree(replay / "election_states", bare / "election_states")
    written = write_report(bare)
    assert all(p.parent == bare / "report" for p in written)
    assert all(p.stat().st_size > 10_000 for p in written if p.suffix == ".png")
    assert len(written) == 2 + 2 * len(UNDERLYINGS)


def test_cli_report_errors_exit_2_without_traceback(tmp_path, capsys):
    """Once ``elecflow report`` is wired into the CLI: a missing dataset is one clear line."""
    from elecflow.cli import build_parser, main

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    if "report" not in sub.choices:
        pytest.skip("the report subcommand is not in elecflow.cli yet")
    tmp_path.joinpath("out").mkdir()
    assert main(["report", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("elecflow: error: ") and "election_states" in err and "Traceback" not in err


def test_report_runs_without_pandas(replay, tmp_path):
    """pandas is test-only: the report must work when it cannot be imported."""
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "pandas" or name.startswith("pandas."):
                    raise ImportError("pandas blocked")
        sys.meta_path.insert(0, Block())
        from elecflow.report import write_report
        print(len(write_report({str(replay)!r}, {str(tmp_path / "r")!r})))
        assert "pandas" not in sys.modules
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(2 + 2 * len(UNDERLYINGS))
