"""How closely a paced replay follows N x real time.

Replays a window of the embedded day at each speed with the dashboard on (the normal paced
configuration, no browser attached) and compares the csp graph's wall time with the ideal
``event seconds / speed``; the baseline is that ideal, computed in the same run. The pacing
node never runs ahead (it sleeps until each event's due time), so the drift is lateness:
how far the replay falls behind when events arrive faster than the graph can handle them
at that speed. Writes JSON (default benchmarks/results/pacing_accuracy.json).

    python benchmarks/pacing_accuracy.py [--window 10:00 10:10] [--speeds 60 600]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", nargs=2, default=["10:00", "10:10"], metavar=("START", "END"))
    parser.add_argument("--speeds", nargs="+", type=float, default=[60.0, 600.0])
    parser.add_argument("--json", type=Path, default=HERE / "results" / "pacing_accuracy.json")
    args = parser.parse_args()

    from elecflow.adapters.control import ReplayControl
    from elecflow.adapters.dashboard import DashboardServer
    from elecflow.adapters.vendors import discover
    from elecflow.cli import ensure_embedded_day
    from elecflow.config import ReplayConfig
    from elecflow.graphs.dashboard import create_default_tables
    from elecflow.graphs.run import run_replay

    data = ensure_embedded_day({}, None, quiet=True)
    sources, _ = discover(data)
    runs = []
    for speed in args.speeds:
        with tempfile.TemporaryDirectory() as tmp:
            config = ReplayConfig(mode="paced", speed=speed, start=args.window[0], end=args.window[1], data=data,
                                  out=Path(tmp), progress=False, port=0)
            control = ReplayControl()
            server = DashboardServer(port=0, control=control)
            create_default_tables(server)
            server.start()
            try:
                result = run_replay(config, sources, dashboard=server, control=control, log=lambda *_: None)
            finally:
                server.stop()
        ideal = result.sim_seconds / speed
        runs.append({
            "speed": speed,
            "event_seconds": result.sim_seconds,
            "events": result.events,
            "ideal_wall_seconds": round(ideal, 3),
            "graph_wall_seconds": round(result.graph_seconds, 3),
            "lateness_seconds": round(result.graph_seconds - ideal, 3),
            "achieved_speed": round(result.sim_seconds / result.graph_seconds, 2),
        })
        print(json.dumps(runs[-1]))
    report = {"benchmark": "pacing_accuracy", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "window_new_york": args.window, "runs": runs}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
