"""Study: an aged node's free pageblocks and THP coverage over its burn-in, then Temeraire's neighbour effect
on it (experiments/aged-node.yaml, docs/linux-rules.md K22).

1. The burn-in of the config's node (the same one its fleet runs start from, cached in memory): free
   pageblocks, blocks holding unmovable pages, mixed blocks, fragmentation score, page cache, slab and the
   churn jobs' THP coverage every 5 simulated minutes; then the same burn-in with jobs that advise
   MADV_HUGEPAGE (``churn_hugepage``), whose coverage shows what THPs a new job gets as the node ages;
   both written to <out>/burn_in.csv.
2. Four 10-minute runs: a never-releasing tcmalloc tenant beside two releasing neighbours, legacy tcmalloc or
   Temeraire, on a fresh node (burn_in 0) or the aged one; each tenant's THP coverage and p99 latency are
   written to <out>/neighbours.csv, and each run's results to <out>/<run>/. Nothing is written elsewhere.

    python experiments/aged_node.py --out results/aged-node
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd

import clustersim
from clustersim.experiments.config import load_config, read_yaml
from clustersim.fleet import background, build
from clustersim.kernel import Node

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "experiments/aged-node.yaml"
TEMERAIRE = {"kind": "temeraire", "madvise": "dontneed", "release_rate": 10 << 20, "hugepage_advice": True,
             "skip_subrelease_short": "60s", "skip_subrelease_long": "5m"}
SAMPLE_S = 300.0


def burn_in(raw: dict, hugepage: bool) -> tuple[pd.DataFrame, float]:
    """The burn-in of node 0 as the fleet builds it (same seed chain), sampled; returns (series, wall s)."""
    raw = copy.deepcopy(raw)
    raw["nodes"][0]["background"]["churn_hugepage"] = hugepage
    config = load_config(raw)
    node_seq = np.random.SeedSequence(config.seed).spawn(3)[1]
    kwargs = build.nodes(config, node_seq)[0]
    node = Node(**kwargs["kernel"])
    for path, settings in kwargs["cgroups"].items():
        node.cgroup(path, **settings)
    t0 = time.perf_counter()
    _, bg = background.start(node, kwargs["kernel"], kwargs["cgroups"], kwargs["background"], SAMPLE_S)
    return pd.DataFrame(bg.samples).assign(churn_hugepage=hugepage), time.perf_counter() - t0


def neighbour_runs(raw: dict, out: Path) -> pd.DataFrame:
    rows = []
    for node_state, burn in (("fresh", 0), ("aged", raw["nodes"][0]["background"]["burn_in"])):
        for neighbours in ("legacy", "temeraire"):
            cfg = copy.deepcopy(raw)
            cfg["nodes"][0]["background"]["burn_in"] = burn
            if neighbours == "temeraire":
                cfg["tenants"][1]["allocator"] = dict(TEMERAIRE)
            name = f"{node_state}-{neighbours}"
            cfg["name"] = name
            t0 = time.perf_counter()
            result = clustersim.run(cfg, out=out / name, force=True)
            wall = time.perf_counter() - t0
            for _, t in result.tenants.iterrows():
                rows.append({"node": node_state, "neighbours": neighbours, "tenant": t["tenant"],
                             "thp_coverage": t["thp_coverage"], "latency_p99_ms": t["latency_p99_ms"],
                             "rss_bytes_mean": t["rss_bytes_mean"], "wall_s": wall})
            print(f"  {name}: {wall:.0f} s wall", flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="results folder (created; nothing written elsewhere)")
    parser.add_argument("--burn-in-only", action="store_true", help="only part 1")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    raw = read_yaml(CONFIG)
    hours = raw_hours(raw)
    cols = ["time_s", "free_pageblocks", "unmovable_blocks", "mixed_blocks", "fragmentation_score",
            "cached_bytes", "slab_bytes", "churn_thp_coverage", "jobs_run"]
    frames = []
    for hugepage in (False, True):
        series, wall = burn_in(raw, hugepage)
        frames.append(series)
        print(f"== burn-in, churn_hugepage={hugepage}: {hours:g} simulated h in {wall:.0f} s wall "
              f"({wall / hours:.0f} s per simulated hour) ==")
        print(series[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    pd.concat(frames).to_csv(args.out / "burn_in.csv", index=False)
    if args.burn_in_only:
        return
    print("== neighbour effect: never-releasing tcmalloc beside legacy or Temeraire neighbours ==")
    table = neighbour_runs(raw, args.out)
    table.to_csv(args.out / "neighbours.csv", index=False)
    print(table.pivot_table(index="tenant", columns=["node", "neighbours"], values="thp_coverage")
          .to_string(float_format=lambda v: f"{v:.3f}"))


def raw_hours(raw: dict) -> float:
    return load_config(raw).nodes[0].background.burn_in / 3600.0


if __name__ == "__main__":
    main()
