"""Burn-in benchmark: seconds of wall time per simulated hour of a node's aged start (fleet/background.py).

A 12 GiB node whose services read a 20 GiB file set at 50 MiB/s, with four 512 MiB churn jobs at a time
(experiments/aged-node.yaml's node), burned in for ``--minutes`` simulated minutes in 10 s ticks; then the
same aged state taken from the in-memory cache (a deep copy). Reports the files read, the jobs run, wall
seconds per simulated hour, and the cache hit's wall time. Each repetition starts from an empty cache.

    python benchmarks/background_bench.py [--minutes 20] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from clustersim.fleet import background
from clustersim.kernel import Node

SETTINGS = {"file_set": 20 << 30, "file_rate": 50 << 20, "cgroup": "system.slice", "burn_in_tick": 10.0,
            "churn_jobs": 4, "churn_size": 512 << 20, "churn_lifetime": 600.0, "churn_hugepage": False}


def once(minutes: float) -> dict[str, float]:
    background.clear_cache()
    kernel = {"memory": "12G", "seed": np.random.SeedSequence(1), "thp": {"enabled": "madvise"}}
    settings = {**SETTINGS, "burn_in": minutes * 60.0}
    t0 = time.perf_counter()
    node, bg = background.start(Node(**kernel), kernel, {}, settings)
    burn = time.perf_counter() - t0
    t1 = time.perf_counter()
    background.start(Node(**kernel), kernel, {}, settings)
    hit = time.perf_counter() - t1
    background.clear_cache()
    return {"wall_s": burn, "s_per_sim_hour": burn * 60.0 / minutes,
            "jobs_run": bg.jobs_run, "cache_hit_s": hit, "free_pageblocks": node.phys.free_blocks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    once(1.0)   # warm-up: compiles the hot loops on a machine's first run
    for k in range(args.repeat):
        r = once(args.minutes)
        print(f"run {k + 1}: {args.minutes:g} simulated min in {r['wall_s']:.1f} s wall = "
              f"{r['s_per_sim_hour']:.0f} s per simulated hour; {r['jobs_run']} jobs; cache hit "
              f"{r['cache_hit_s']:.2f} s; {r['free_pageblocks']} free pageblocks after")


if __name__ == "__main__":
    main()
