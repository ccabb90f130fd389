"""The validation suite: published claims, each run as an experiment and judged against a band set in advance.

A claim lives in its own module of a claims folder (the repository's ``experiments/validation/``): a
``CLAIM`` (``Claim``: where it was published, the published number, the band ``[low, high]`` with the reason
for it, written before any run) and a ``measure(ctx)`` function that runs the claim's sweep or kernel
scenario through ``Context`` and returns the measured number. The verdict is computed, never chosen:
``reproduced`` when ``low <= measured <= high``, ``not reproduced`` otherwise (the claim's ``lacks`` says
what the model lacks), ``not run: needs <feature>`` when the run needs a run-file key the schema does not
have yet. One cost table and one set of defaults serve every claim: a claim's files set only what its
source's setup fixes (kernel, allocator, workload), never a model constant.

``validate(claims_dir, out, quick)`` writes ``out/validation.parquet`` (columns COLUMNS), one figure per
claim under ``out/figures/`` and ``out/validation.md``; sweeps are stored under ``out/runs/<claim>/`` and
resume when run again. ``--quick`` shortens each sweep to its claim's ``quick_duration`` with one seed, and
applies its ``quick_set`` overrides (a shorter burn-in, say).
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .results import Results, load
from .schema import RunConfig
from .sweep import sweep

COLUMNS = ("claim", "source", "published", "measured", "low", "high", "verdict", "figure")
REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"


@dataclass(frozen=True)
class Claim:
    """One published claim and the band it is judged by, fixed before the run."""

    name: str
    source: str                       # paper, thread or issue, with the figure or table
    statement: str                    # the claim in one sentence
    published: float                  # the published number (NaN: the source gives a direction only)
    low: float
    high: float
    band: str                         # why the band is what it is
    unit: str
    measure: Callable[[Context], float] | None = None
    lacks: str = ""                   # what the model lacks (a caveat where the claim is reproduced)
    needs: tuple[str, ...] = ()       # run-file keys (dotted, list indices as 0) the run needs
    quick_duration: str = "60s"
    quick_set: Mapping[str, Any] = field(default_factory=dict)   # --quick ``set`` overrides (path -> value)

    def verdict(self, measured: float) -> str:
        if math.isnan(measured):
            return NOT_REPRODUCED
        return REPRODUCED if self.low <= measured <= self.high else NOT_REPRODUCED


@dataclass
class Context:
    """What a claim's ``measure`` may use: its folder, the run mode, sweeps and the figure path."""

    claim: Claim
    folder: Path                      # the claim module's folder (its sweep files)
    out: Path                         # this claim's results folder
    figure: Path                      # the figure's path without suffix
    quick: bool
    workers: int = 2
    notes: list[str] = field(default_factory=list)

    def sweep(self, filename: str) -> Results:
        """Run (or resume) the sweep file ``filename`` of the claim's folder; quick: one seed, short runs."""
        spec = yaml.safe_load((self.folder / filename).read_text())
        if self.quick:
            spec["seeds"] = 1
            spec.setdefault("set", {}).update({"duration": self.claim.quick_duration, **self.claim.quick_set})
        out = self.out / Path(filename).stem
        sweep(spec, out, workers=self.workers, progress=False)
        return load(out)


def cell(results: Results, metric: str, where: dict[str, Any]) -> float:
    """Mean of a summary ``metric`` over the ok runs whose parameters equal ``where`` (key path -> value)."""
    runs = results.runs[results.runs["status"] == "ok"]
    for key, value in where.items():
        runs = runs[runs[key] == value]
    return float(runs[metric].mean()) if len(runs) else math.nan


def tail_mean(results: Results, column: str, tenant: str, share: float = 0.1) -> float:
    """Mean over runs of a time-series field's mean over the last ``share`` of each run (steady state)."""
    series = results.timeseries[results.timeseries["tenant"] == tenant]
    if series.empty:
        return math.nan
    per_run = series.groupby(["run_id", "time_s"])[column].sum().reset_index()
    cut = per_run.groupby("run_id")["time_s"].transform(lambda t: t.max() - share * (t.max() - t.min()))
    return float(per_run[per_run["time_s"] >= cut].groupby("run_id")[column].mean().mean())


def missing_keys(needs: tuple[str, ...]) -> list[str]:
    """The keys of ``needs`` the run-file schema lacks (each a dotted path, list items as index 0)."""
    missing = []
    for key in needs:
        model: Any = RunConfig
        for part in key.split("."):
            if part.isdigit():
                continue
            fields = getattr(model, "model_fields", {})
            if part not in fields:
                missing.append(key)
                break
            annotation = fields[part].annotation
            model = _inner_model(annotation)
    return missing


def _inner_model(annotation: Any) -> Any:
    """The pydantic model inside ``list[Model]``, ``Model | None`` or ``Model``."""
    for arg in (*getattr(annotation, "__args__", ()), annotation):
        if hasattr(arg, "model_fields"):
            return arg
        inner = getattr(arg, "__args__", ())
        for a in inner:
            if hasattr(a, "model_fields"):
                return a
    return None


def tenant_mean(results, tenant: str, metric: str, key: str, needle: str) -> float:
    """Mean ``metric`` of ``tenant`` over a sweep's ok runs whose column ``key`` contains ``needle`` (NaN if
    none): a claim's number from the runs of one alternative."""
    runs = results.runs[(results.runs["status"] == "ok") & results.runs[key].astype(str).str.contains(needle)]
    rows = results.tenants[(results.tenants["tenant"] == tenant) & results.tenants["run_id"].isin(runs["run_id"])]
    return float(rows[metric].mean()) if len(rows) else float("nan")


def load_claims(folder: Path) -> list[tuple[Claim, Path]]:
    """Every ``CLAIM`` of the claims folder's modules, in file name order."""
    claims = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"clustersim_claims.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        claim = getattr(module, "CLAIM", None)
        if claim is not None:
            claims.append((claim, path.parent))
    return claims


def run_claim(claim: Claim, folder: Path, out: Path, quick: bool, workers: int) -> dict[str, Any]:
    """One row of the table: run the claim (unless a key it needs is missing), measure, judge."""
    figure = out / "figures" / claim.name
    row = {"claim": claim.name, "source": claim.source, "published": claim.published, "measured": math.nan,
           "low": claim.low, "high": claim.high, "figure": ""}
    missing = missing_keys(claim.needs)
    if missing or claim.measure is None:
        need = ", ".join(missing) if missing else "a measure"
        return {**row, "verdict": f"not run: needs {need}"}
    figure.parent.mkdir(parents=True, exist_ok=True)
    ctx = Context(claim, folder, out / "runs" / claim.name, figure, quick, workers)
    measured = float(claim.measure(ctx))
    png = figure.with_suffix(".png")
    return {**row, "measured": measured, "verdict": claim.verdict(measured),
            "figure": str(png.relative_to(out)) if png.exists() else ""}


def validate(claims_dir: str | Path, out: str | Path, *, quick: bool = False, workers: int = 2,
             only: list[str] | None = None, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run every claim of ``claims_dir``; write out/validation.parquet and out/validation.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, timings = [], {}
    claims = load_claims(Path(claims_dir))
    for claim, folder in claims:
        if only and claim.name not in only:
            continue
        start = time.monotonic()
        rows.append(run_claim(claim, folder, out, quick, workers))
        timings[claim.name] = time.monotonic() - start
        if progress is not None:
            progress(f"{claim.name}: {rows[-1]['verdict']} ({timings[claim.name]:.0f} s)")
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table.to_parquet(out / "validation.parquet", index=False)
    (out / "validation.md").write_text(report(table, {c.name: c for c, _ in claims}, quick))
    return table


def report(table: pd.DataFrame, claims: dict[str, Claim], quick: bool, figures: str = "figures") -> str:
    """docs/validation.md: each claim with its band and reason, measured value, verdict and figure."""
    mode = "a quick run (`clustersim validate --quick`: one seed, short runs)" if quick else "a full run"
    lines = ["# Validation: published results reproduced", "",
             f"Generated by `make validate` (`clustersim validate`) from {mode}; do not edit by hand. Each claim's",
             "band was written down with its reason in its file under `experiments/validation/` before the run;",
             "the verdict is computed as low <= measured <= high. Claims the model cannot run yet say what they",
             "need; a claim says what the model lacks where that matters, reproduced or not.", "",
             "| claim | source | published | measured | band | verdict |", "|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        c = claims[r.claim]
        lines.append(f"| [{r.claim}](#{r.claim.replace('_', '-')}) | {c.source} | {_num(r.published)} {c.unit} | "
                     f"{_num(r.measured)} | [{_num(r.low)}, {_num(r.high)}] | {r.verdict} |")
    for r in table.itertuples(index=False):
        c = claims[r.claim]
        lines += ["", f"## {r.claim}", "", f"{c.statement} ({c.source})", "",
                  f"- published: {_num(r.published)} {c.unit}; band [{_num(r.low)}, {_num(r.high)}]: {c.band}",
                  f"- measured: {_num(r.measured)} {c.unit}; verdict: **{r.verdict}**"]
        if c.lacks:   # shown either way: a number inside its band can still come from the wrong mechanism
            label = "what the model lacks" if r.verdict == NOT_REPRODUCED else "caveat, what the model lacks"
            lines.append(f"- {label}: {c.lacks}")
        if r.figure:
            name = Path(r.figure).name
            lines += ["", f"![{r.claim}]({figures}/{name})"]
    return "\n".join(lines) + "\n"


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


__all__ = ["COLUMNS", "Claim", "Context", "cell", "load_claims", "missing_keys", "report", "run_claim",
           "tail_mean", "validate"]
