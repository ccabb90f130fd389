"""`make plan-study`: the shipped capacity plan, its figure and its table for the README.

Runs experiments/plan-swap-density.yaml into results/plan-swap-density (resumable: runs complete there are
not run again), then copies its figure to figures/plan-swap-density.png and prints the best table as the
README shows it. With --draw-only it runs nothing and redraws the figure and table from the stored
results.

    python experiments/plan_study.py [--draw-only] [--workers N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

import clustersim
from clustersim.figures.planplot import plot_plan
from clustersim.whatif.planfile import load_plan
from clustersim.whatif.planreport import markdown_table

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "experiments/plan-swap-density.yaml"
OUT = ROOT / "results/plan-swap-density"
FIGURE = ROOT / "figures/plan-swap-density.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draw-only", action="store_true", help="redraw from stored results, run nothing")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    spec = load_plan(PLAN)
    if not args.draw_only:
        start = time.perf_counter()
        result = clustersim.plan(PLAN, OUT, workers=args.workers, notes=lambda line: print(line, file=sys.stderr))
        print(f"{result.runs} runs ({result.executed} run now) in {time.perf_counter() - start:.0f} s wall")
    slos = [(s.label, s.metric, s.bound) for s in spec.spec.slo]
    plot_plan(OUT, spec.spec.search.key, slos, spec.keys, OUT / "plan.png")
    shutil.copyfile(OUT / "plan.png", FIGURE)
    best = pd.read_parquet(OUT / "best.parquet")
    print(markdown_table(best, [*spec.keys, "best_value", "next_value", "binding_slo",
                                *dict.fromkeys(s.label for s in spec.spec.slo)]))
    print(f"figure: {FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
