"""The ``elecflow`` command line (the top layer: composes graphs and adapters).

    elecflow replay                      # embedded Election Day, paced 60x, dashboard
    elecflow replay --mode sim --out DIR # as fast as possible, Parquet outputs only
    elecflow replay --data DIR           # your own vendor files
    elecflow generate --out DIR          # write the synthetic day in vendor formats
    elecflow report OUT [--to DIR]       # PNG figures and a CSV of a replay's election states
    elecflow theory figures --to DIR     # Figures 2-7 of "Arrow-Debreu Meets Kyle" (docs/theory.md)
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import tomllib
from pathlib import Path

from pydantic import ValidationError

DEFAULT_DATA_HOME = Path("replay_data")


class UsageError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _config_error(exc: ValidationError) -> UsageError:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{where}: {err['msg']}")
    return UsageError("invalid configuration: " + "; ".join(parts))


def _load_file(path: Path | None) -> dict:
    if path is None:
        return {}
    if not path.exists():
        raise UsageError(f"{path}: configuration file not found")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc


def _overrides(args: argparse.Namespace, names: list[str]) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


# ---------------------------------------------------------------------------------- generate


def _synthetic_config(file_cfg: dict, overrides: dict):
    from elecflow.synth.config import SyntheticDayConfig

    try:
        return SyntheticDayConfig(**{**file_cfg.get("synthetic", {}), **overrides})
    except ValidationError as exc:
        raise _config_error(exc) from exc


def cmd_generate(args: argparse.Namespace) -> int:
    from elecflow.adapters.synthetic import write_synthetic_day

    cfg = _synthetic_config(_load_file(args.config), _synth_overrides(args))
    out = args.out or DEFAULT_DATA_HOME / f"synthetic-2024-11-05-seed{cfg.seed}"
    manifest = write_synthetic_day(cfg, Path(out), progress=not args.quiet)
    rows = sum(f["rows"] for f in manifest["files"])
    print(f"wrote {len(manifest['files'])} vendor files ({rows:,} rows) and ground truth to {out}")
    return 0


def _synth_overrides(args: argparse.Namespace) -> dict:
    out = _overrides(args, ["seed"])
    if getattr(args, "underlyings", None):
        out["option_underlyings"] = [u.strip() for u in args.underlyings.split(",") if u.strip()]
    if getattr(args, "snapshot_seconds", None) is not None:
        out["option_snapshot_seconds"] = args.snapshot_seconds
    if getattr(args, "intensity", None) is not None:
        out["intensity_scale"] = args.intensity
    for src, dst in (("gen_start", "start_et"), ("gen_end", "end_et")):
        if getattr(args, src, None) is not None:
            out[dst] = getattr(args, src)
    return out


def ensure_embedded_day(file_cfg: dict, seed: int | None, quiet: bool) -> Path:
    """The embedded synthetic day, generated on first use (about half a minute)."""
    from elecflow.adapters.synthetic import write_synthetic_day

    cfg = _synthetic_config(file_cfg, {"seed": seed} if seed is not None else {})
    target = DEFAULT_DATA_HOME / f"synthetic-2024-11-05-seed{cfg.seed}"
    manifest = target / "manifest.json"
    if not manifest.exists():
        print(f"first run: generating the synthetic Election Day into {target} ...", flush=True)
        write_synthetic_day(cfg, target, progress=not quiet)
    elif json.loads(manifest.read_text()).get("generated_with") != cfg.manifest_dump():
        # a day written by an older generator (different settings): replaying it would
        # silently disagree with the ground truth this version expects
        print(f"the synthetic day in {target} was generated with other settings: regenerating ...", flush=True)
        write_synthetic_day(cfg, target, progress=not quiet)
    return target


# ------------------------------------------------------------------------------------ replay

REPLAY_FLAGS = ["mode", "speed", "date", "start", "end", "data", "out", "dashboard", "host", "port",
                "exit_when_done", "size_unit", "signing_method", "quote_delay_ms", "positions"]


def cmd_replay(args: argparse.Namespace) -> int:
    from elecflow.adapters.control import ReplayControl
    from elecflow.config import ReplayConfig
    from elecflow.graphs.run import format_counts, resolve_sources, run_replay

    file_cfg = _load_file(args.config)
    values = {**file_cfg.get("replay", {}), **_overrides(args, REPLAY_FLAGS)}
    if args.no_progress:
        values["progress"] = False
    try:
        config = ReplayConfig(**values)
    except ValidationError as exc:
        raise _config_error(exc) from exc
    if config.data is None:
        config = config.model_copy(update={"data": ensure_embedded_day(file_cfg, args.seed, args.no_progress)})
        if config.factors and config.factor_settings.baseline is None:  # its baseline days, like the day itself
            config.factor_settings.generate_baseline = True
            if config.factor_settings.baseline_days:
                # before the dashboard starts, like the day itself: a first run would otherwise
                # show an empty page for the minute the five normal days take to generate
                from elecflow.adapters.factors import ensure_synthetic_baseline

                ensure_synthetic_baseline(config.data, config.date, config.factor_settings.baseline_days,
                                          progress=not args.no_progress)
    if config.positions is not None:
        from elecflow.hedge import PositionFileError, read_positions

        try:
            read_positions(config.positions)  # fail before the replay, naming file, line and column
        except (PositionFileError, OSError) as exc:
            raise UsageError(str(exc)) from exc
    sources = resolve_sources(config)
    for s in sources:
        print(f"  {s.format:<20} {s.path}")

    control = ReplayControl()
    server = None
    if config.dashboard_enabled:
        from elecflow.adapters.dashboard import DashboardServer
        from elecflow.graphs.dashboard import CLOCK_KEY, CLOCK_TABLE, create_default_tables

        server = DashboardServer(host=config.host, port=config.port, control=control)
        create_default_tables(server)
        # the clock table's state column follows the replay (paused, finished) even while the
        # engine, which writes the other columns, is blocked or done
        control.add_listener(lambda state: server.update(CLOCK_TABLE, [{"key": CLOCK_KEY, "state": state}]))
        try:
            server.start()  # prints the URL
        except OSError as exc:
            raise UsageError(f"cannot serve the dashboard on {config.host}:{config.port} ({exc.strerror}); "
                             "choose another --port (0 = any free port) or --no-dashboard") from exc
    try:
        result = run_replay(config, sources, dashboard=server, control=control)
        print(format_counts(result))
        rate = result.events / result.graph_seconds if result.graph_seconds else float("nan")
        print(f"replayed {result.events:,} events of {result.sim_seconds / 3600:.1f} h in {result.graph_seconds:.1f} s "
              f"({rate:,.0f} events/s, {result.sim_seconds / result.graph_seconds:,.0f}x real time); "
              f"outputs in {result.out_dir}/")
        if server is not None and not config.exit_when_done:
            print(f"replay finished; the dashboard stays up at {server.url} -- Ctrl-C to exit", flush=True)
            _wait_for_interrupt()
    finally:
        if server is not None:
            server.stop()
    return 0 if result.reconciles() else 3


def _wait_for_interrupt() -> None:
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


# ------------------------------------------------------------------------------------ report


def cmd_report(args: argparse.Namespace) -> int:
    from elecflow.report import ReportError, write_report

    target = args.to if args.to is not None else args.out / "report"
    try:
        written = write_report(args.out, target, at=args.at)
    except ReportError as exc:
        raise UsageError(str(exc)) from exc
    for path in written:
        print(f"  {path}")
    print(f"wrote {len(written)} report files to {target}")
    return 0


# ------------------------------------------------------------------------------------ theory


def cmd_theory_figures(args: argparse.Namespace) -> int:
    from elecflow.theory.figures import write_figures

    if args.k_max < 3:
        raise UsageError(f"--k-max must be >= 3 (got {args.k_max})")
    written = write_figures(args.to, k_max=args.k_max, progress=not args.no_progress)
    for path in written:
        print(f"  {path}")
    print(f"wrote {len(written)} files to {args.to}")
    return 0


def _add_theory_parser(sub) -> None:
    th = sub.add_parser("theory", help="the 'Arrow-Debreu Meets Kyle' equilibrium model (docs/theory.md)")
    th_sub = th.add_subparsers(dest="theory_command", required=True)
    fg = th_sub.add_parser("figures", help="recompute Figures 2-7 as PNG, with a CSV of the plotted values")
    fg.add_argument("--to", type=Path, required=True, metavar="DIR", help="directory to write the files into")
    fg.add_argument("--k-max", type=int, default=100, help="largest number of signals in Figures 2 and 6 (default 100)")
    fg.add_argument("--no-progress", action="store_true", help="no progress bar")
    fg.set_defaults(func=cmd_theory_figures)


# -------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elecflow", description=__doc__.split("\n\n")[0].strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Run 'elecflow COMMAND --help' for the options of a command.")
    parser.add_argument("--traceback", action="store_true", help="show Python tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)

    rp = sub.add_parser("replay", help="replay vendor files (default: the embedded Election Day) through the graph")
    rp.add_argument("--config", type=Path, help="TOML file with [replay] and [synthetic] tables")
    rp.add_argument("--mode", choices=["paced", "sim"], help="paced (default, N x real time) or sim (max speed)")
    rp.add_argument("--speed", type=float, help="multiple of real time for paced mode (default 60)")
    rp.add_argument("--date", help="trading date (YYYY-MM-DD) that HH:MM in --start/--end refer to "
                                   "(default 2024-11-05)")
    rp.add_argument("--start", help="window start, HH:MM New York time on --date (+1 = next day) or ISO datetime "
                                    "(default: 09:25 when paced, the first event in sim mode)")
    rp.add_argument("--end", help="window end (exclusive), same forms")
    rp.add_argument("--data", type=Path, help="directory of vendor files (found by their columns)")
    rp.add_argument("--out", type=Path, help="output directory (default ./out)")
    rp.add_argument("--dashboard", action=argparse.BooleanOptionalAction, default=None,
                    help="serve the live dashboard (default: on when paced, off in sim)")
    rp.add_argument("--host", help="dashboard bind address (default 127.0.0.1)")
    rp.add_argument("--port", type=int, help="dashboard port (default 8080; 0 = any free port)")
    rp.add_argument("--exit-when-done", action="store_true", default=None,
                    help="stop the dashboard when the replay ends")
    rp.add_argument("--size-unit", choices=["shares", "round_lots"], help="unit of Polygon size columns")
    rp.add_argument("--signing", dest="signing_method", choices=["lee_ready", "tick", "emo"],
                    help="trade signing rule for the order-flow features (default lee_ready)")
    rp.add_argument("--quote-delay-ms", dest="quote_delay_ms", type=float,
                    help="sign trades against the quote in force this long before them (default 0)")
    rp.add_argument("--positions", help="position file (CSV, docs/states.md) whose election delta is shown with its "
                                        "Kalshi hedge, e.g. examples/positions.csv")
    rp.add_argument("--seed", type=int, help="seed of the embedded synthetic day (default 20241105)")
    rp.add_argument("--no-progress", action="store_true", help="no progress bars")
    rp.set_defaults(func=cmd_replay)

    gp = sub.add_parser("generate", help="write the synthetic Election Day in vendor formats with ground truth")
    gp.add_argument("--config", type=Path, help="TOML file with a [synthetic] table")
    gp.add_argument("--out", type=Path, help="output directory (default replay_data/synthetic-2024-11-05-seedN)")
    gp.add_argument("--seed", type=int, help="random seed (default 20241105)")
    gp.add_argument("--underlyings", help="comma-separated option underlyings (default SPY,QQQ,IWM,TLT,DJT,TSLA)")
    gp.add_argument("--snapshot-seconds", type=float, help="option snapshot cadence (default 60)")
    gp.add_argument("--intensity", type=float, help="scale of quote and trade arrival rates (default 1)")
    gp.add_argument("--start", dest="gen_start", help="window start, HH:MM New York time")
    gp.add_argument("--end", dest="gen_end", help="window end, HH:MM New York time (next day allowed as +1d)")
    gp.add_argument("--quiet", action="store_true", help="no progress bars")
    gp.set_defaults(func=cmd_generate)

    rep = sub.add_parser("report", help="write PNG figures and a CSV of the election states of a replayed day")
    rep.add_argument("out", type=Path, metavar="OUT", help="output directory of elecflow replay (its --out)")
    rep.add_argument("--to", type=Path, metavar="DIR", help="directory to write the report into (default OUT/report)")
    rep.add_argument("--at", metavar="HH:MM", help="time of the densities and the table: HH:MM New York time on "
                                                   "the replayed date (+1 = next day) or ISO datetime "
                                                   "(default: the last minute with fits)")
    rep.set_defaults(func=cmd_report)

    _add_theory_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from elecflow.adapters.vendors import VendorFileError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, VendorFileError) as exc:
        if args.traceback:
            raise
        print(f"elecflow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
