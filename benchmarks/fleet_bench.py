"""Fleet benchmark: one 64 GiB node with 16 service processes for a simulated hour at 1 s ticks, then
fleets of 1..100 such nodes for ten simulated minutes; reports wall time, agent-steps per second and how
time grows with nodes and processes.

The hot loops are compiled by numba on first use and cached on disk, so the first run on a machine pays
the compilation once. A small warm-up fleet runs first and its time is reported separately; the timed runs
then measure the simulator, not the compiler.

    python benchmarks/fleet_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import time

from clustersim.experiments.config import load_config
from clustersim.fleet import Fleet


def config(nodes: int, procs_per_node: int, duration: str) -> dict:
    """A swapless fleet of 64 GiB nodes, each running ``procs_per_node`` Temeraire/tcmalloc services."""
    half = procs_per_node // 2
    tenant = {"cgroup": "workload.slice", "placement": "spread",
              "workload": {"kind": "service", "profile": "tcmalloc/beta", "heap": "1G", "churn": "4MiB/s",
                           "rps": 1000}}
    return {"name": "bench", "seed": 1, "duration": duration, "tick": "1s",
            "kernel": {"thp": {"enabled": "madvise"}},
            "nodes": [{"name": "n", "count": nodes, "memory": "64G"}],
            "tenants": [
                {**tenant, "name": "hugepage-aware", "replicas": nodes * half,
                 "allocator": {"kind": "temeraire", "hugepage_advice": True, "release_rate": "2MiB/s"}},
                {**tenant, "name": "legacy", "replicas": nodes * (procs_per_node - half),
                 "allocator": {"kind": "tcmalloc", "hugepage_advice": True, "release_rate": "2MiB/s"}},
            ]}


def measure(nodes: int, procs: int, duration: str) -> tuple[float, float, float]:
    """(wall seconds, simulated seconds, process-steps per wall second)."""
    cfg = load_config(config(nodes, procs, duration))
    gc.collect()   # the previous run's fleet is freed here, not inside this run's timing
    start = time.perf_counter()
    fleet = Fleet(cfg)
    fleet.run()
    wall = time.perf_counter() - start
    steps = len(fleet.processes) * fleet.duration_s / fleet.tick_s
    return wall, fleet.duration_s, steps / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (for a smoke check)")
    args = parser.parse_args()
    hour = "10m" if args.quick else "1h"
    wall, _, _ = measure(1, 2, "30s")
    print(f"warm-up (compiles the hot loops on a machine's first run, then loads them): {wall:.1f} s")
    wall, sim, rate = measure(1, 16, hour)
    print(f"1 node x 16 processes, {sim / 60:.0f} simulated min: {wall:.1f} s wall, {rate:,.0f} process-steps/s")
    print(f"{'nodes':>5} {'procs':>6} {'wall s':>8} {'steps/s':>10} {'s per node':>10}")
    for nodes in ((1, 2, 4) if args.quick else (1, 10, 100)):
        wall, _, rate = measure(nodes, 16, "2m" if args.quick else "10m")
        print(f"{nodes:>5} {nodes * 16:>6} {wall:8.1f} {rate:10,.0f} {wall / nodes:10.2f}")
    for procs in (4, 8, 16, 32):
        wall, _, rate = measure(1, procs, "2m" if args.quick else "10m")
        print(f"{1:>5} {procs:>6} {wall:8.1f} {rate:10,.0f} {wall / procs:10.3f} s per process")


if __name__ == "__main__":
    main()
