"""Frontend benchmark: what partly used spans, object caches and jemalloc's arenas cost per allocation unit.

One process on a 16 GiB node (THP enabled=always, so unwritten pages are faulted as THPs) runs a 1 GiB
tcmalloc/beta heap churning 64 MiB/s in 256 KiB units: the initial heap, then ``--ticks`` one-second ticks of
alloc, free and background. Each configuration runs the same demand; reported: allocation units (allocs plus
frees), wall seconds of the allocator calls (kernel work included), and microseconds per unit, for the
page-level model alone and with each frontend mechanism on, after one short warm-up run of each.

    python benchmarks/frontend_bench.py [--ticks 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from clustersim.allocators import make_allocator
from clustersim.kernel import Node
from clustersim.workloads import HeapDemand

CONFIGS: dict[str, tuple[str, dict]] = {
    "tcmalloc dense": ("tcmalloc", {}),
    "tcmalloc span_occupancy=0.75": ("tcmalloc", {"span_occupancy": 0.75}),
    "tcmalloc cpu_caches=8": ("tcmalloc", {"cpu_caches": 8}),
    "jemalloc dense (1 arena)": ("jemalloc", {}),
    "jemalloc narenas=8": ("jemalloc", {"narenas": 8}),
    "jemalloc narenas=8 tcache span_occupancy=0.75": ("jemalloc", {"narenas": 8, "tcache": True,
                                                                  "span_occupancy": 0.75}),
}


def run(kind: str, options: dict, ticks: int, seed: int = 0) -> tuple[int, float]:
    """(allocation units handled, wall seconds inside the allocator calls) for one configuration."""
    node = Node(memory="16G", seed=seed, thp={"enabled": "always"}, swap={"kind": "none"})
    p = node.spawn(name="svc")
    alloc = make_allocator(kind, p, **options)
    demand = HeapDemand("tcmalloc/beta", 1 << 30, 64 << 20, np.random.default_rng(seed), min_span_bytes=256 << 10)
    spans = getattr(alloc, "reads_object_spans", False)
    units, wall = 0, 0.0
    events = [demand.initial()] + [None] * ticks
    for t, ev in enumerate(events):
        ev = ev or demand.step(float(t - 1), 1.0)
        start = time.perf_counter()
        alloc.alloc(ev.alloc_ids, ev.alloc_bytes, *((ev.alloc_span_bytes,) if spans else ()))
        alloc.free(ev.free_ids)
        alloc.background(float(t))
        wall += time.perf_counter() - start
        units += ev.n_events
        node.advance(1.0)
    return units, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=60)
    args = parser.parse_args()
    for kind, options in CONFIGS.values():   # warm-up: compile every jitted path before timing
        run(kind, options, 2)
    print(f"{'configuration':<48} {'units':>8} {'seconds':>9} {'us/unit':>9}")
    for name, (kind, options) in CONFIGS.items():
        units, wall = run(kind, options, args.ticks)
        print(f"{name:<48} {units:>8} {wall:>9.3f} {1e6 * wall / units:>9.1f}")


if __name__ == "__main__":
    main()
