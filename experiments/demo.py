"""`make demo`: the quick-start run, then the founding debate as a sweep, its two figures and its table.

1. configs/quickstart.yaml: two service tenants on two swapless nodes; prints the run's summary.
2. experiments/demo.yaml: a tcmalloc service fleet on swapless or zram nodes releasing with MADV_DONTNEED,
   MADV_FREE or the proposed MADV_SPLITTABLE, two seeds each; writes figures/demo-thp-coverage.png and
   figures/demo-p99.png from the stored results and prints the mean of each cell over seeds.
Results go to results/ (resumable: a second `make demo` reuses finished runs).

    python experiments/demo.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import clustersim
from clustersim.experiments.metrics import METRICS
from clustersim.figures.plot import plot

ROOT = Path(__file__).resolve().parent.parent
SWAP, MADVISE = "nodes.0.swap.kind", "tenants.0.allocator.madvise"
TABLE = ("thp_coverage", "latency_p99_ms", "latency_p999_ms", "rss_bytes_mean", "lazyfree_bytes_mean",
         "faults_4k", "reclaim_stall_s")


def quickstart() -> None:
    print("== configs/quickstart.yaml: one run ==")
    # The demo owns results/quickstart: a second `make demo` replaces the first one's run.
    result = clustersim.run(ROOT / "configs/quickstart.yaml", out=ROOT / "results/quickstart", force=True)
    for key, value in result.summary.items():
        label, unit, scale = _metric(key)
        print(f"  {label:<34} {value * scale:12.4g} {unit}")
    print(result.tenants[["tenant", "thp_coverage", "latency_p99_ms", "rss_bytes_mean"]].to_string(index=False))


def debate() -> int:
    print("\n== experiments/demo.yaml: swapless vs zram x DONTNEED / FREE / SPLITTABLE, 2 seeds ==")
    out = ROOT / "results/demo"
    report = clustersim.sweep(ROOT / "experiments/demo.yaml", out, workers=2)
    figures = ROOT / "figures"
    plot(out, x=MADVISE, y="thp_coverage", hue=SWAP, kind="bar", out=figures / "demo-thp-coverage.png")
    plot(out, x=MADVISE, y="latency_p99_ms", hue=SWAP, kind="bar", out=figures / "demo-p99.png")
    runs = clustersim.load(out).runs
    cells = runs[runs["status"] == "ok"].groupby([SWAP, MADVISE], sort=False)[list(TABLE)].mean()
    for key in TABLE:
        label, unit, scale = _metric(key)
        cells[key] *= scale
        cells = cells.rename(columns={key: f"{label} ({unit})"})
    print(cells.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"figures: {figures / 'demo-thp-coverage.png'}, {figures / 'demo-p99.png'}")
    return report.exit_status


def _metric(key: str) -> tuple[str, str, float]:
    meta = METRICS.get(key)
    return (meta.label, meta.unit, meta.scale) if meta else (key, "", 1.0)


if __name__ == "__main__":
    quickstart()
    sys.exit(debate())
