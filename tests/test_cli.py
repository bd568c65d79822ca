"""The command line: help, clear errors with non-zero exits, configuration precedence."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest

from elecflow.cli import main


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elecflow.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for word in ("replay", "generate"):
        assert word in proc.stdout
    proc = run_cli("replay", "--help")
    assert proc.returncode == 0
    for flag in ("--mode", "--speed", "--start", "--end", "--data", "--out", "--port"):
        assert flag in proc.stdout


def test_console_script_is_installed():
    proc = subprocess.run(["elecflow", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "replay" in proc.stdout


def test_missing_data_dir_is_one_clear_message(tmp_path, capsys):
    code = main(["replay", "--mode", "sim", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"elecflow: error: {tmp_path / 'nowhere'}: data directory does not exist"
    assert "Traceback" not in err


def test_missing_required_column_names_file_and_column(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    with gzip.open(data / "trades.csv.gz", "wt") as fh:
        fh.write("ticker,conditions,correction,exchange,id,participant_timestamp,sequence_number,sip_timestamp,"
                 "size,tape\n")
        fh.write("AAPL,,0,11,1,1,1,1730816400000000000,100,3\n")
    code = main(["replay", "--mode", "sim", "--data", str(data), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "trades.csv.gz" in err and "'price'" in err


@pytest.mark.parametrize("args,field", [
    (["--speed", "-3"], "speed"),
    (["--start", "25:99"], "start"),
    (["--start", "10:00", "--end", "09:00"], "end must be after start"),
])
def test_invalid_configuration_names_the_field(tmp_path, capsys, args, field):
    code = main(["replay", "--data", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert "invalid configuration" in err and field in err


def test_config_file_errors_name_the_field(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[replay]\nmode = "fast"\n')
    code = main(["replay", "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2 and "replay.mode" not in err and "mode" in err
    cfg.write_text('[replay]\nspeeed = 5\n')
    assert main(["replay", "--config", str(cfg)]) == 2
    assert "speeed" in capsys.readouterr().err


@pytest.mark.parametrize("text,expected", [
    ("09:30", "2024-11-05 14:30:00"),
    ("06:00+1", "2024-11-06 11:00:00"),
    ("2024-11-06T02:00", "2024-11-06 07:00:00"),
    ("2024-11-05T12:00:00+00:00", "2024-11-05 12:00:00"),
])
def test_window_bounds_are_new_york_time(text, expected):
    import datetime as dt

    from elecflow.config import parse_window_bound

    assert str(parse_window_bound(text, dt.date(2024, 11, 5))) == expected


def test_a_busy_dashboard_port_is_a_clear_error(tmp_path, capsys):
    import json
    import socket

    (tmp_path / "trade_data_2024-11-05.json").write_text(json.dumps([
        {"ticker_name": "PRES-2024-DJT", "create_ts": "2024-11-05T15:00:00Z", "contracts_traded": 1, "price": 58}]))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code = main(["replay", "--data", str(tmp_path), "--port", str(port), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and f"127.0.0.1:{port}" in err and "--port" in err
