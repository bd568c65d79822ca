"""The project's readers on the synthetic day: every injected defect, and nothing else, is
quarantined with the reason the manifest names, and the counts reconcile per stream."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from elecflow.adapters.ingest import IngestFilter, ingest
from elecflow.adapters.synthetic import write_synthetic_day
from elecflow.adapters.vendors import discover
from elecflow.synth.config import SyntheticDayConfig


@pytest.mark.parametrize("variant", [
    dict(option_format="raw", kalshi_format="daily_report"),
    dict(option_format="formatted", kalshi_format="rest", option_underlyings=["BRK.B", "TSLA"]),
])
def test_reader_quarantines_exactly_the_injected_rows(tmp_path, variant):
    cfg = SyntheticDayConfig(seed=5, start_et="15:50", end_et="16:10", defects_per_kind=4,
                             kalshi_expected_trades=100_000, **variant)
    data = tmp_path / "data"
    manifest = write_synthetic_day(cfg, data, progress=False)
    sources, unknown = discover(data)
    assert unknown == []
    assert sorted(str(s.path.relative_to(data)) for s in sources) == sorted(f["path"] for f in manifest["files"])
    report = ingest(sources, tmp_path / "stage", tmp_path / "quarantine.parquet", IngestFilter())
    totals = report.totals()
    for stream, clean in manifest["clean_rows"].items():
        t = totals.get(stream, {"accepted": 0, "rejected": Counter(), "skipped": Counter()})
        assert t["accepted"] == clean, stream
        assert dict(t["rejected"]) == manifest["defects"][stream], stream
        assert not t["skipped"]
    q = pq.read_table(tmp_path / "quarantine.parquet").to_pandas()
    got = {(Path(f).relative_to(data).as_posix(), int(r) - 1, why)
           for f, r, why in zip(q.source_file, q.row_number, q.reason)}
    expected = {(d["path"], d["row"], d["reason"]) for d in manifest["defect_rows"]}
    assert got == expected
