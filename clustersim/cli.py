"""The ``clustersim`` command: run, check, sweep, plot, and the what-if commands plan, compare and diff.

    clustersim --version
    clustersim run CONFIG [--out DIR] [--force] [--set key.path=value ...] [--workers N] [--dask ADDRESS|local]
                          [--json]
    clustersim check CONFIG [--set key.path=value ...] [--json]
    clustersim sweep SWEEP.yaml --out DIR [--dry-run] [--workers N] [--dask ADDRESS|local] [--timeout S]
                                          [--rerun-failed] [--log FILE] [--json]
    clustersim plot DIR --x PARAM --y METRIC [--hue PARAM] [--col PARAM] --out FILE
                        [--kind line|bar|cdf|timeseries] [--style paper|screen] [--size one-column|two-column]
    clustersim plan PLAN.yaml --out DIR [--workers N] [--dask ADDRESS|local] [--json]
    clustersim compare A B --seeds N [--out DIR] [--workers N] [--dask ADDRESS|local] [--json]
    clustersim diff A B [--json]
    clustersim validate --out DIR [--quick] [--only CLAIM ...] [--report FILE [--figures DIR]]

Every command takes ``--quiet`` (only errors) and ``--progress`` (a progress bar even when stderr is not a
terminal; by default bars are drawn only on a terminal). ``python -m clustersim`` is the same command.

Errors are printed as messages, not tracebacks. Exit status: 0 on success; 2 for an invalid config, sweep,
results folder or argument (nothing was run, no folder created); 1 when a run fails; for ``sweep``, the
number of failed runs (at most 100); 130 when interrupted (run the same command again to resume a sweep).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from clustersim.whatif.commands import add_parsers as add_whatif_parsers

# The repository's claims folder (the validation suite); a checkout runs it from its root.
CLAIMS_DIR = Path(__file__).resolve().parent.parent / "experiments" / "validation"
EXIT_INVALID = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clustersim", description="Fleet memory-management simulator.")
    parser.add_argument("--version", action="version", version=f"clustersim {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _common_parser()
    _run_parser(sub.add_parser("run", help="run one config and store its results", parents=[common]))
    _check_parser(sub.add_parser("check", help="validate a config and print it resolved", parents=[common]))
    _sweep_parser(sub.add_parser("sweep", help="run a sweep file (resumes an earlier sweep in DIR)",
                                 parents=[common]))
    _plot_parser(sub.add_parser("plot", help="plot stored results (never re-runs)", parents=[common]))
    add_whatif_parsers(sub, common, _positive_int)
    _validate_parser(sub.add_parser("validate", help="run the validation suite's published claims",
                                    parents=[common]))
    return parser


def _version() -> str:
    try:
        return version("clustersim")
    except PackageNotFoundError:
        return "0+unknown"


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    common.add_argument("--progress", action="store_true", help="draw progress bars even off a terminal")
    return common


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not >= 1")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number of seconds > 0")
    return value


def _add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")


def _show_bar(args: argparse.Namespace) -> bool:
    """Progress bars on a terminal, or when asked for; never with --quiet or --json."""
    return not args.quiet and not getattr(args, "json", False) and (args.progress or sys.stderr.isatty())


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override one config value (YAML value; list items by index); repeatable")


def _run_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, help="results folder (default: results/<name>)")
    parser.add_argument("--force", action="store_true", help="replace an earlier run's results in the folder")
    _add_set(parser)
    parser.add_argument("--workers", type=_positive_int, default=None, help="processes to split the fleet's "
                        "nodes over, >= 1 (default 1: in this process; with --dask: core count)")
    parser.add_argument("--dask", metavar="ADDRESS|local", help="split the nodes over a Dask scheduler's "
                        "workers, or a LocalCluster")
    parser.add_argument("--json", action="store_true",
                        help="print the summary, tenants and tenant_groups as JSON instead of tables")
    parser.set_defaults(func=cmd_run)


def _check_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path)
    _add_set(parser)
    _add_json(parser, "the resolved config and its hash (or the problems)")
    parser.set_defaults(func=cmd_check)


def _sweep_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="results folder of the sweep")
    parser.add_argument("--dry-run", action="store_true", help="print the expanded runs and stop")
    parser.add_argument("--workers", type=_positive_int, default=None, help="processes, >= 1 (1: in this "
                        "process; default: core count)")
    parser.add_argument("--dask", metavar="ADDRESS|local", help="run on a Dask scheduler, or a LocalCluster")
    parser.add_argument("--timeout", type=_positive_seconds, default=None, metavar="S",
                        help="seconds a run may take, > 0")
    parser.add_argument("--rerun-failed", action="store_true", help="run again the runs that failed")
    parser.add_argument("--log", type=Path, metavar="FILE", help="append one JSON line per finished run")
    _add_json(parser, "the report (or, with --dry-run, the expanded runs)")
    parser.set_defaults(func=cmd_sweep)


def _plot_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path)
    parser.add_argument("--x", help="parameter on the x axis (key path as in the sweep file)")
    parser.add_argument("--y", help="metric (summary key)")
    parser.add_argument("--hue", help="parameter drawn as colours")
    parser.add_argument("--col", help="parameter drawn as columns of panels")
    parser.add_argument("--tenant", help="use this tenant's rows instead of fleet-wide results")
    parser.add_argument("--kind", choices=("line", "bar", "cdf", "timeseries"), default="line",
                        help="timeseries: --y is a time-series field, drawn over time with its band over seeds")
    parser.add_argument("--style", choices=("paper", "screen"), default="paper",
                        help="paper (default): print sizes and fonts, TrueType fonts embedded in the PDF")
    parser.add_argument("--size", choices=("one-column", "two-column"), default="one-column")
    parser.add_argument("--xlabel", help="x axis label instead of the label table's")
    parser.add_argument("--ylabel", help="y axis label instead of the label table's")
    parser.add_argument("--legend-title", help="legend title instead of the hue parameter's label")
    parser.add_argument("--out", type=Path, required=True, help="figure file; its stem gets .pdf and .png")
    parser.set_defaults(func=cmd_plot)


def _validate_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder for validation.parquet, figures, runs")
    parser.add_argument("--quick", action="store_true", help="one seed and short runs per claim (CI)")
    parser.add_argument("--claims", type=Path, default=CLAIMS_DIR, help="folder of claim files")
    parser.add_argument("--only", nargs="+", metavar="CLAIM", help="run only these claims")
    parser.add_argument("--workers", type=_positive_int, default=2)
    parser.add_argument("--report", type=Path, help="also write the report here (docs/validation.md)")
    parser.add_argument("--figures", type=Path, help="with --report: copy the claims' figures here")
    parser.set_defaults(func=cmd_validate)


# ---- commands ------------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from clustersim.experiments.config import load_config
    from clustersim.experiments.run import run
    from clustersim.experiments.store import safe_name

    config = load_config(args.config, args.overrides)
    _warn(config, args)
    out = args.out or Path("results") / safe_name(config.name)
    fmt = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]"
    with tqdm(total=config.duration, desc="simulated", bar_format=fmt, dynamic_ncols=True,
              disable=not _show_bar(args)) as bar:
        def progress(done_s: float, duration_s: float) -> None:
            bar.total = duration_s
            bar.update(max(0.0, done_s - bar.n))

        result = run(config, out, progress=progress, force=args.force, workers=args.workers, dask=args.dask)
    if not args.quiet or args.json:
        print_run(result, out, as_json=args.json)
    return 0


def print_run(result: Any, out: Path, as_json: bool = False) -> None:
    """The fleet summary and the tenant x node-group table; with ``as_json``, all of it as JSON on stdout."""
    from clustersim.experiments.report import results_json, tenant_groups_table

    if as_json:
        print(results_json(result.summary, result.tenants, result.tenant_groups))
        print(f"results in {out}", file=sys.stderr)
        return
    print(summary_table(result.summary))
    print(tenant_groups_table(result.tenant_groups))
    print(f"results in {out}")


def cmd_check(args: argparse.Namespace) -> int:
    import yaml

    from clustersim.experiments.config import config_hash, load_config, resolved

    config = load_config(args.config, args.overrides)
    _warn(config, args)
    if args.json:
        print(json.dumps({"config": resolved(config), "config_hash": config_hash(config)}, indent=2))
    elif not args.quiet:
        print(yaml.safe_dump(resolved(config), sort_keys=False), end="")
        print(f"# config hash: {config_hash(config)}")
        if not config.tenants:
            print("# no tenants: the nodes run idle")
    return 0


def _warn(config: Any, args: argparse.Namespace) -> None:
    """The config's warnings (overcommitted node groups) on stderr, unless --quiet; the command goes on."""
    from clustersim.experiments.config import config_warnings

    for line in [] if args.quiet else config_warnings(config):
        print(f"warning: {line}", file=sys.stderr)


def cmd_sweep(args: argparse.Namespace) -> int:
    from clustersim.experiments.sweep import plan, sweep

    if args.dry_run:
        table = plan(args.sweep, args.out)
        states = table["state"].value_counts().to_dict() if len(table) else {}
        if args.json:
            print(table.to_json(orient="records", indent=2))
        elif not args.quiet:
            print(table.to_string(index=False))
            print(f"{len(table)} runs ({', '.join(f'{n} {s}' for s, n in sorted(states.items()))})")
        return 0
    notes = None if args.quiet or args.json else (lambda line: print(line, file=sys.stderr))
    report = sweep(args.sweep, args.out, workers=args.workers, dask=args.dask, timeout=args.timeout,
                   rerun_failed=args.rerun_failed, progress=_show_bar(args), notes=notes, log_file=args.log)
    if args.json:
        print(json.dumps(sweep_json(report), indent=2, default=str))
    elif not args.quiet:
        print(f"{report.total} runs: {report.reused} already done, {report.executed} run now, "
              f"{report.failed} failed; results in {report.out}")
        _print_runs("slowest runs", report.slowest(), ["wall_s"])
        _print_runs("failed runs", report.failures(), ["error"])
    return report.exit_status


def sweep_json(report: Any) -> dict[str, Any]:
    """A sweep's report as plain data: counts, the runs redone and why, each run's outcome."""
    columns = [c for c in ("run_id", "point", "replicate", "seed", "status", "error", "wall_s")
               if c in report.runs.columns]
    return {"out": str(report.out), "total": report.total, "reused": report.reused,
            "executed": report.executed, "failed": report.failed, "redone": report.redone,
            "exit_status": report.exit_status,
            "runs": json.loads(report.runs[columns].to_json(orient="records"))}


def _print_runs(title: str, runs: pd.DataFrame, extra: list[str]) -> None:
    if runs.empty:
        return
    fixed = {"point", "replicate", "seed", "config_hash", "status", "error", "wall_s", "host"}
    from clustersim.experiments.metrics import SUMMARY_KEYS

    params = [c for c in runs.columns if c not in fixed and c not in SUMMARY_KEYS]
    print(f"\n{title}:")
    print(runs[[*params, "seed", *extra]].to_string(index=False, max_colwidth=80))


def cmd_plot(args: argparse.Namespace) -> int:
    from clustersim.figures.plot import plot

    paths = plot(args.results, x=args.x, y=args.y, hue=args.hue, col=args.col, out=args.out,
                 kind=args.kind, tenant=args.tenant, style=args.style, size=args.size, xlabel=args.xlabel,
                 ylabel=args.ylabel, legend_title=args.legend_title)
    if not args.quiet:
        print("\n".join(str(p) for p in paths))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from clustersim.experiments.validation import load_claims, report, validate

    say = None if args.quiet else print
    table = validate(args.claims, args.out, quick=args.quick, workers=args.workers, only=args.only, progress=say)
    if args.report is not None:
        figures = args.figures or args.report.parent / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        for name in table["figure"]:
            if name:
                for suffix in (".png", ".pdf"):
                    source = (args.out / name).with_suffix(suffix)
                    (figures / source.name).write_bytes(source.read_bytes())
        claims = {c.name: c for c, _ in load_claims(args.claims)}
        link = os.path.relpath(figures, args.report.parent)
        args.report.write_text(report(table, claims, args.quick, figures=link))
    if not args.quiet:
        print(table[["claim", "measured", "low", "high", "verdict"]].to_string(index=False))
    return 0


def summary_table(summary: dict[str, float]) -> str:
    """Summary values in their display units, one per line."""
    from clustersim.experiments.metrics import metric

    rows = []
    for key, value in summary.items():
        shown = metric(key)
        rows.append(f"  {key:<28} {value * shown.scale:>14.6g}  {shown.unit}")
    return "\n".join(["summary:", *rows])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(RESUME_MESSAGE, file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _report_error(exc, getattr(args, "json", False))


RESUME_MESSAGE = "interrupted; run the same command again to resume"


def _report_error(exc: Exception, as_json: bool = False) -> int:
    from clustersim.experiments.errors import ConfigError

    if isinstance(exc, ConfigError):
        if as_json:
            print(json.dumps({"error": "invalid", "source": exc.source, "problems": exc.problems}, indent=2))
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"error: {type(exc).__name__}: {exc}" if not _plain(exc) else f"error: {exc}", file=sys.stderr)
    return EXIT_FAILED


def _plain(exc: Any) -> bool:
    from clustersim.experiments.run import RunFailed
    from clustersim.experiments.worker import SimulateUnavailable

    return isinstance(exc, RunFailed | SimulateUnavailable | FileNotFoundError | ValueError)


if __name__ == "__main__":
    sys.exit(main())
