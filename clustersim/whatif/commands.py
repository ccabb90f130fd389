"""The ``plan``, ``compare`` and ``diff`` subcommands of the ``clustersim`` command.

    clustersim plan PLAN.yaml --out DIR [--workers N] [--dask ADDRESS|local] [--json]
    clustersim compare A B --seeds N [--out DIR] [--workers N] [--dask ADDRESS|local] [--json]
    clustersim diff A B [--json]

A and B are run files or stored run or sweep folders. Exit status as for the other commands: 0 on
success, 2 for invalid input (nothing run), 1 on a failed run; ``plan`` exits with the number of failed
runs (at most 100).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_EXIT_STATUS = 100


def add_parsers(sub: Any, common: argparse.ArgumentParser, positive_int: Callable[[str], int]) -> None:
    """Register the three subcommands on the ``clustersim`` parser's subparsers."""
    parser = sub.add_parser("plan", help="capacity plan: the densest value meeting every SLO, per alternative",
                            parents=[common])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the plan's folder (resumes an earlier plan)")
    _runner_args(parser, positive_int)
    parser.add_argument("--json", action="store_true", help="print the best table as JSON on stdout")
    parser.set_defaults(func=cmd_plan)

    parser = sub.add_parser("compare", help="run A and B on the same seeds and compare every metric",
                            parents=[common])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--seeds", type=positive_int, required=True, help="paired seeds, >= 1")
    parser.add_argument("--out", type=Path, help="folder for the runs, compare.parquet and compare.md")
    _runner_args(parser, positive_int)
    parser.add_argument("--json", action="store_true", help="print the table as JSON on stdout")
    parser.set_defaults(func=cmd_compare)

    parser = sub.add_parser("diff", help="the resolved configs' differences, key path by key path",
                            parents=[common])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--json", action="store_true", help="print the differences as JSON on stdout")
    parser.set_defaults(func=cmd_diff)


def _runner_args(parser: argparse.ArgumentParser, positive_int: Callable[[str], int]) -> None:
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="processes, >= 1 (1: in this process; default: core count)")
    parser.add_argument("--dask", metavar="ADDRESS|local", help="run on a Dask scheduler, or a LocalCluster")


def _notes(args: argparse.Namespace) -> Callable[[str], None] | None:
    return None if args.quiet or args.json else (lambda line: print(line, file=sys.stderr))


def cmd_plan(args: argparse.Namespace) -> int:
    from .planner import plan

    result = plan(args.plan, args.out, workers=args.workers, dask=args.dask, notes=_notes(args))
    if args.json:
        print(result.best.to_json(orient="records", indent=2))
    elif not args.quiet:
        print((args.out / "report.md").read_text())
        print(f"{result.runs} runs: {result.reused} already done, {result.executed} run now, "
              f"{result.failed} failed; results in {args.out}")
    return min(result.failed, MAX_EXIT_STATUS)


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, text_table

    table = compare(args.a, args.b, seeds=args.seeds, out=args.out, workers=args.workers, dask=args.dask)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    elif not args.quiet:
        print(text_table(table))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from .configdiff import diff

    found = diff(args.a, args.b)
    if args.json:
        print(json.dumps([{"path": d.path, "a": d.a, "b": d.b} for d in found], indent=2, default=str))
    elif not args.quiet:
        print("\n".join(d.line() for d in found) if found else "no differences")
    return 0
