"""Kernel call benchmark: the fixed cost of one syscall batch as the fleet makes it.

A 64 GiB node (THP enabled=madvise) with 16 processes, each a legacy tcmalloc with MADV_HUGEPAGE advice and a
2 MiB/s release rate, driven by a 2 GiB tcmalloc/beta heap churning 8 MiB/s in 256 KiB units: the initial
heap, then 120 one-second ticks of alloc, free, background and node.advance. Reports the mean microseconds per
Process.touch_batch and Process.madvise_batch call (each wrapped with a timer) and the total wall time.

    python benchmarks/kernel_calls_bench.py [--ticks 120] [--procs 16]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

from clustersim.allocators import make_allocator
from clustersim.kernel import Node
from clustersim.kernel.task import Process
from clustersim.workloads import HeapDemand

TIMED = ("touch_batch", "madvise_batch")


def _timed(name: str, calls: dict[str, list[float]]):
    """Process.<name> wrapped to append its wall seconds to calls[name]."""
    inner = getattr(Process, name)

    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(self, *args, **kwargs)
        finally:
            calls[name].append(time.perf_counter() - start)
    return inner, wrapper


def run(ticks: int, nprocs: int, seed: int = 0) -> tuple[dict[str, list[float]], float]:
    """(seconds per call by method, total wall seconds) for one run."""
    calls: dict[str, list[float]] = defaultdict(list)
    saved = {}
    for name in TIMED:
        saved[name], wrapper = _timed(name, calls)
        setattr(Process, name, wrapper)
    try:
        start = time.perf_counter()
        node = Node(memory="64G", seed=seed, thp={"enabled": "madvise"})
        rng = np.random.default_rng(seed)
        heaps = []
        for i in range(nprocs):
            p = node.spawn(name=f"p{i}")
            alloc = make_allocator("tcmalloc", p, hugepage_advice="hugepage", release_rate=2 << 20)
            demand = HeapDemand("tcmalloc/beta", 2 << 30, 8 << 20, rng, min_span_bytes=256 << 10)
            ev = demand.initial()
            alloc.alloc(ev.alloc_ids, ev.alloc_bytes)
            heaps.append((alloc, demand))
        for t in range(ticks):
            for alloc, demand in heaps:
                ev = demand.step(float(t), 1.0)
                alloc.alloc(ev.alloc_ids, ev.alloc_bytes)
                alloc.free(ev.free_ids)
                alloc.background(float(t))
            node.advance(1.0)
        return calls, time.perf_counter() - start
    finally:
        for name, fn in saved.items():
            setattr(Process, name, fn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=120)
    parser.add_argument("--procs", type=int, default=16)
    args = parser.parse_args()
    calls, wall = run(args.ticks, args.procs)
    for name in TIMED:
        us = np.array(calls[name]) * 1e6
        if len(us):
            print(f"{name:>14}: {len(us):6d} calls, mean {us.mean():7.1f} us, median {np.median(us):7.1f} us, "
                  f"total {us.sum() / 1e6:6.2f} s")
    print(f"{'wall':>14}: {wall:.2f} s")


if __name__ == "__main__":
    main()
