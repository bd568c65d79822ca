"""The Kalshi denoiser inside the replay graph: equal to the batch filter, better than the
raw fills against the generator's true probability."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from elecflow.adapters.synthetic import write_synthetic_day
from elecflow.cli import main
from elecflow.kalshi import filter_kalshi_fills
from elecflow.synth.config import SyntheticDayConfig


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """The results night, 19:00 to 01:00 New York: most Kalshi fills, after-hours equities."""
    root = tmp_path_factory.mktemp("night")
    cfg = SyntheticDayConfig(start_et="19:00", end_et="01:00+1d", option_underlyings=["SPY"])
    write_synthetic_day(cfg, root / "data", progress=False)
    out = root / "out"
    assert main(["replay", "--mode", "sim", "--data", str(root / "data"), "--out", str(out), "--no-progress"]) == 0
    return root / "data", out


def test_graph_rows_equal_the_batch_filter(night):
    _, out = night
    fills = pq.read_table(out / "kalshi_trades")
    # csp hands nodes microsecond datetimes
    t = fills.column("time").cast(pa.int64()).to_numpy() // 1000 * 1000
    rows = pq.read_table(out / "kalshi_probability")
    fill_rows = rows.filter(pc.equal(rows.column("kind"), "fill"))
    grid_rows = rows.filter(pc.equal(rows.column("kind"), "grid"))
    grid_t = grid_rows.column("time").cast(pa.int64()).to_numpy()
    res, grid, _ = filter_kalshi_fills(t, fills.column("contract").to_pylist(), fills.column("price").to_numpy(),
                                       fills.column("count").to_numpy(), grid_ns=grid_t)
    assert fill_rows.num_rows == t.size > 1000
    np.testing.assert_array_equal(fill_rows.column("p").to_numpy(), res.p)
    np.testing.assert_array_equal(fill_rows.column("sd").to_numpy(), res.sd)
    np.testing.assert_array_equal(fill_rows.column("z").to_numpy(), res.z)
    np.testing.assert_array_equal(grid_rows.column("p").to_numpy(), grid[:, 0])
    np.testing.assert_array_equal(grid_rows.column("sd").to_numpy(), grid[:, 1])
    # the grid is every whole second from the first fill on
    assert np.all(np.diff(grid_t) == 1_000_000_000) and grid_t[0] > t[0]


def test_filtered_probability_beats_the_raw_fills_against_the_truth(night):
    data, out = night
    rows = pq.read_table(out / "kalshi_probability")
    fills = rows.filter(pc.and_(pc.equal(rows.column("kind"), "fill"), rows.column("warm")))
    truth = pq.read_table(data / "ground_truth" / "probability.parquet")
    truth_t = truth.column("time").cast(pa.int64()).to_numpy()
    p_true_at = lambda ns: truth.column("p_true").to_numpy()[np.searchsorted(truth_t, ns, side="right") - 1]  # noqa: E731
    t = fills.column("time").cast(pa.int64()).to_numpy()
    p_true = p_true_at(t)
    raw_rmse = np.sqrt(np.mean((fills.column("p_obs").to_numpy() - p_true) ** 2))
    filt = fills.column("p").to_numpy()
    sd = fills.column("sd").to_numpy()
    rmse = np.sqrt(np.mean((filt - p_true) ** 2))
    coverage = np.mean(np.abs(filt - p_true) <= 2 * sd)
    assert rmse < 0.8 * raw_rmse
    assert 0.85 <= coverage <= 0.995
    regimes = set(fills.column("regime").to_pylist())
    assert regimes <= {"calm", "moving", "shock"} and "calm" in regimes
