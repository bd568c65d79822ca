"""Shared by the benchmark scripts: the machine a result was measured on, and an atomic
JSON write (a killed run never leaves a half-written result file)."""

from __future__ import annotations

import json
import platform
from pathlib import Path


def machine_info() -> dict:
    return {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor()}


def write_result(out: dict, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2))
    tmp.replace(path)
