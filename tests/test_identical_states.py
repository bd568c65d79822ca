"""A generator run whose Trump and Harris states are identical (``option_states =
"identical"``: no election loading in the options) makes the replay graph's state fitter
say "not identified": the issue's control for inventing states. One hour, three chains
(an index ETF, the most election-loaded stock, and a long-bond ETF), Kalshi as usual."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

UNDERLYINGS = ["SPY", "DJT", "TLT"]


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    from elecflow.adapters.synthetic import write_synthetic_day
    from elecflow.config import ReplayConfig
    from elecflow.graphs.run import resolve_sources, run_replay
    from elecflow.synth.config import SyntheticDayConfig

    root = tmp_path_factory.mktemp("identical")
    write_synthetic_day(SyntheticDayConfig(start_et="09:30", end_et="10:30", option_underlyings=UNDERLYINGS,
                                           option_states="identical"), root / "data", progress=False)
    truth = pq.read_table(root / "data" / "ground_truth" / "options_truth.parquet").to_pandas()
    assert (truth.mean_trump == truth.mean_harris).all() and (truth.sigma_trump == truth.sigma_harris).all()
    cfg = ReplayConfig(mode="sim", data=root / "data", out=root / "out", progress=False)
    run_replay(cfg, resolve_sources(cfg, log=lambda *a: None), log=lambda *a: None)
    return pq.read_table(root / "out" / "election_states").to_pandas()


@pytest.mark.parametrize("underlying", UNDERLYINGS)
def test_identical_states_are_not_identified(states, underlying):
    rows = states[states.underlying == underlying]
    assert len(rows) >= 2 * 55  # both modes, every minute of the hour (the first may lack Kalshi)
    for mode in ("A", "B"):
        fits = rows[rows["mode"] == mode]
        assert fits.success.mean() > 0.9  # the fits run; they just find nothing to separate
        assert fits.identified.mean() <= 0.05, fits.identification_reason.value_counts().to_dict()
    b = rows[rows["mode"] == "B"]
    assert (b.label == "undetermined").all()  # no weight evidence from unidentified fits
    assert b.trump_probability.isna().all() and b.trump_probability_filtered.isna().all()
