"""Temeraire at realistic load: one 64 GiB swapless node with 16 Temeraire services of 3 GiB heaps at the
default churn (one heap turnover a minute), 1 s ticks.

Runs a few simulated minutes, scales the wall time to seconds per simulated node-hour and divides it by the
allocation units (spans placed plus spans freed) to give microseconds per unit; ``--profile`` then runs the
same case under cProfile and prints the 15 functions with the most own time, then the cumulative time of
the allocator's batch hooks and of the kernel entries they and the fleet make.

A short warm-up fleet runs first so that numba's compilation (once per machine, then cached on disk) is not
timed.

    python benchmarks/temeraire_bench.py [--minutes 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time

from clustersim.allocators import HugePageAwareAllocator
from clustersim.experiments.config import load_config
from clustersim.fleet import Fleet

PROCESSES = 16
# (module path suffix, function) pairs whose cumulative time the profile reports
ENTRIES = [("allocators/base.py", "alloc"), ("allocators/base.py", "free"),
           ("allocators/base.py", "background"), ("huge_page_aware_allocator.py", "_place_batch"),
           ("huge_page_aware_allocator.py", "_unplace_batch"), ("kernel/task.py", "touch_batch"),
           ("kernel/task.py", "madvise_batch"), ("kernel/task.py", "access_batch"), ("kernel/task.py", "mmap"),
           ("kernel/node.py", "advance"), ("workloads/demand.py", "step"), ("fleet/agents.py", "_serve")]


def config(duration: str, procs: int = PROCESSES) -> dict:
    """One swapless 64 GiB node, ``procs`` Temeraire services of 3 GiB heaps, default churn and options."""
    return {"name": "temeraire-bench", "seed": 1, "duration": duration, "tick": "1s",
            "nodes": [{"name": "n", "count": 1, "memory": "64G", "swap": {"kind": "none"}}],
            "tenants": [{"name": "svc", "replicas": procs, "allocator": {"kind": "temeraire"},
                         "workload": {"kind": "service", "heap": "3G"}}]}


class UnitCounter:
    """Counts the spans handed to and taken back from every Temeraire heap (wraps alloc and free)."""

    def __init__(self) -> None:
        self.units = 0
        self._alloc, self._free = HugePageAwareAllocator.alloc, HugePageAwareAllocator.free

    def __enter__(self) -> UnitCounter:
        counter, alloc, free = self, self._alloc, self._free

        def counted_alloc(heap, span_ids, span_bytes):
            counter.units += len(span_ids)
            return alloc(heap, span_ids, span_bytes)

        def counted_free(heap, span_ids):
            counter.units += len(span_ids)
            return free(heap, span_ids)

        HugePageAwareAllocator.alloc, HugePageAwareAllocator.free = counted_alloc, counted_free
        return self

    def __exit__(self, *exc) -> None:
        HugePageAwareAllocator.alloc, HugePageAwareAllocator.free = self._alloc, self._free


def run(duration: str, procs: int = PROCESSES) -> tuple[float, float, int]:
    """(wall seconds, simulated seconds, allocation units) of one fleet run."""
    cfg = load_config(config(duration, procs))
    gc.collect()
    with UnitCounter() as counter:
        start = time.perf_counter()
        fleet = Fleet(cfg)
        fleet.run()
        wall = time.perf_counter() - start
    return wall, fleet.duration_s, counter.units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=5, help="simulated minutes per run (default 5)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile top-15 (own time)")
    args = parser.parse_args()
    wall, _, _ = run("30s", procs=2)
    print(f"warm-up (compiles on a machine's first run, then loads the cache): {wall:.1f} s")
    wall, sim, units = run(f"{args.minutes}m")
    print(f"1 node x {PROCESSES} Temeraire services, 3 GiB heaps, {sim / 60:.0f} simulated min: {wall:.1f} s wall")
    print(f"  {wall * 3600 / sim:.1f} s per simulated node-hour; {units:,} allocation units "
          f"({units / sim:,.0f} per simulated s); {wall / units * 1e6:.2f} us per unit (all of the tick)")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(f"{args.minutes}m")
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(15)
        print(f"{'cumulative s':>12} {'calls':>8}  function")
        for (path, _, name), (_, calls, _, cumulative, _) in sorted(stats.stats.items()):
            if any(path.endswith(suffix) and name == fn for suffix, fn in ENTRIES):
                print(f"{cumulative:12.2f} {calls:8d}  {path.rsplit('clustersim/', 1)[-1]}:{name}")


if __name__ == "__main__":
    main()
