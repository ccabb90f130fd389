"""The THP-bloat study's table: RSS under THP `always` (and `always` with max_ptes_none=409) against `madvise`.

Reads the results folder of `experiments/thp-bloat.yaml` and prints, per allocator configuration, the
run's mean RSS (the tenant's replicas together) under each THP setting, the change against `madvise` in
percent, THP coverage, OOM kills (a kill restarts a replica with an empty heap, which lowers the mean RSS)
and PMD splits.

    clustersim sweep experiments/thp-bloat.yaml --out results/thp-bloat
    python experiments/thp_bloat.py results/thp-bloat
"""

from __future__ import annotations

import sys

import pandas as pd

import clustersim

ALLOCATOR, ENABLED, PTES = "tenants.0.allocator", "kernel.thp.enabled", "kernel.thp.max_ptes_none"


def setting(row: pd.Series) -> str:
    """`madvise`, `always` or `always+409` for one run."""
    ptes = row.get(PTES)
    return row[ENABLED] + ("" if pd.isna(ptes) else f"+{int(ptes)}")


def table(folder: str) -> pd.DataFrame:
    """One row per allocator configuration and THP setting: RSS, change against madvise, coverage, OOM kills."""
    runs = clustersim.load(folder).runs.copy()
    runs["allocator"] = runs[ALLOCATOR].astype(str).str.replace('"', "")
    if PTES not in runs:
        runs[PTES] = float("nan")
    runs["thp"] = runs.apply(setting, axis=1)
    columns = ["rss_bytes_mean", "thp_coverage", "oom_kills", "thp_split_pmd"]
    cells = runs.groupby(["allocator", "thp"])[columns].mean().reset_index()
    base = cells[cells["thp"] == "madvise"].set_index("allocator")["rss_bytes_mean"]
    cells["rss_GiB"] = cells["rss_bytes_mean"] / 2**30
    cells["vs_madvise_pct"] = 100 * (cells["rss_bytes_mean"] / cells["allocator"].map(base) - 1)
    return cells[["allocator", "thp", "rss_GiB", "vs_madvise_pct", "thp_coverage", "oom_kills", "thp_split_pmd"]]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    with pd.option_context("display.width", 200, "display.max_colwidth", 90, "display.precision", 3):
        print(table(argv[0]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
