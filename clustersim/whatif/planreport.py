"""``report.md`` of a plan: the best value per alternative, its binding SLO, surprises and assumptions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from clustersim.experiments.metrics import metric

from .planfile import Plan

if TYPE_CHECKING:
    from .planner import PlanResult


def markdown_table(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A GitHub markdown table of ``frame`` (numbers to 4 significant digits, NaN as a dash)."""
    columns = list(columns if columns is not None else frame.columns)
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for _, row in frame.iterrows()]
    return "\n".join([head, rule, *body])


def cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.0f}" if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def report_md(spec: Plan, result: PlanResult) -> str:
    """The plan's report as markdown."""
    s = spec.spec
    goal = "largest" if s.search.goal == "max" else "smallest"
    lines = [f"# Plan `{s.name}`", "",
             f"Search: `{s.search.key}` over {s.search.low}..{s.search.high}, the {goal} value meeting every "
             f"SLO, per alternative; {_seed_count(s.seeds)} seed(s) per probed value.", "",
             "SLOs (every one must hold):", ""]
    lines += [f"- `{slo.describe()}`" for slo in s.slo]
    lines += ["", "## Best value per alternative", "", _best_table(spec, result.best), ""]
    lines += _binding(spec, result.best)
    lines += ["", "## Non-monotone results", ""]
    if result.nonmonotone.empty:
        lines.append("None found: every probed value denser than a failing one failed too.")
    else:
        lines.append("A value passed although a less dense one failed; the answer stays below the first failure:")
        lines += ["", markdown_table(result.nonmonotone)]
    lines += ["", "## Assumptions", "", *_assumptions(spec), "",
              f"{len(result.probes)} probe rows ({result.runs} runs: {result.executed} run now, "
              f"{result.reused} complete before); every run in `runs/`.", ""]
    return "\n".join(lines)


def _seed_count(seeds: int | list[int]) -> int:
    return seeds if isinstance(seeds, int) else len(seeds)


def _best_table(spec: Plan, best: pd.DataFrame) -> str:
    labels = list(dict.fromkeys(slo.label for slo in spec.spec.slo))
    shown = best.copy()
    for slo in spec.spec.slo:
        shown[slo.label] = best[slo.label] * metric(slo.metric).scale
    names = {label: f"{label} ({metric(label.split('[')[0]).unit}, mean at best)" for label in labels}
    shown = shown.rename(columns={**names, "next_value": "next value (fails)"})
    columns = [*spec.keys, "best_value", "next value (fails)", "binding_slo", *names.values()]
    return markdown_table(shown, columns)


def _binding(spec: Plan, best: pd.DataFrame) -> list[str]:
    out = []
    for _, row in best.iterrows():
        what = ", ".join(f"{k}={row[k]}" for k in spec.keys) or "the base config"
        if math.isnan(row["best_value"]):
            out.append(f"- {what}: even {spec.spec.search.key}={_end(spec, 'least')} fails ({row['binding_slo']}).")
        elif row["at_limit"]:
            out.append(f"- {what}: every value up to {_end(spec, 'most')} passes; the answer may lie beyond "
                       "the range.")
        else:
            out.append(f"- {what}: {row['best_value']:.0f}; at {row['next_value']:.0f} "
                       f"`{row['binding_slo']}` fails.")
    return out


def _end(spec: Plan, which: str) -> int:
    s = spec.spec.search
    least = s.low if s.goal == "max" else s.high
    most = s.high if s.goal == "max" else s.low
    return least if which == "least" else most


def _assumptions(spec: Plan) -> list[str]:
    s = spec.spec.search
    denser = "larger" if s.goal == "max" else "smaller"
    return [
        f"- The SLOs get worse as the knob gets denser ({denser} values): values that were not probed are "
        "judged by that assumption. The search brackets by doubling from the least dense end, probes the "
        "next bracket value past the first failure (to catch a non-monotone result), then bisects; the value "
        "after the answer is always probed and fails.",
        "- An SLO holds at a value when it holds in every seed, or with `quantile: q` in at least "
        "ceil(q x seeds) of them. The seeds are the same at every value (spawned from the base seed), so "
        "values are compared on common random numbers.",
        "- A run that failed counts as missing every SLO; so does a metric that is NaN (no requests served).",
        "- Metrics at best are means over the seeds; `probes.parquet` holds every seed's value.",
    ]
