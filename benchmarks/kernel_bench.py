"""Kernel benchmark: fault, release and re-touch a big heap through the syscall API, then let khugepaged run.

A node with 16 processes of 3 GiB THP-eligible heaps per 64 GiB: fault everything, MADV_DONTNEED every
other 64 KiB with madvise_many, touch it again, MADV_FREE the same ranges, touch again, then advance 120 s
(khugepaged, kswapd). Run swapless and with zram, at 16, 64 and 256 GiB (processes scale with memory) to
show the cost is linear in node size. Target: the 64 GiB run under 5 s wall on one core. A 4 GiB warm-up
runs first: the hot loops are compiled on a machine's first run (then loaded from the on-disk cache).

    python benchmarks/kernel_bench.py [--sizes 16 64 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from clustersim.kernel import MADV, Node

GIB = 1 << 30
HEAP = 3 * GIB
STRIDE, PIECE = 128 << 10, 64 << 10


def run(node_gib: int, swap: dict) -> dict[str, float]:
    node = Node(memory=f"{node_gib}G", seed=0, thp={"enabled": "always"}, swap=swap)
    nproc = max(1, node_gib * 16 // 64)
    offs = np.arange(0, HEAP, STRIDE, dtype=np.int64)
    lens = np.full(len(offs), PIECE, dtype=np.int64)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    procs = [node.spawn(name=f"p{i}") for i in range(nproc)]
    regions = [p.mmap(HEAP) for p in procs]
    _phase(phases, "fault", t0, lambda: [p.touch(r) for p, r in zip(procs, regions, strict=True)])
    _phase(phases, "dontneed", t0, lambda: [p.madvise_many(r, offs, lens, MADV.DONTNEED)
                                           for p, r in zip(procs, regions, strict=True)])
    _phase(phases, "retouch", t0, lambda: [p.touch_many(r, offs, lens) for p, r in zip(procs, regions, strict=True)])
    _phase(phases, "free", t0, lambda: [p.madvise_many(r, offs, lens, MADV.FREE)
                                       for p, r in zip(procs, regions, strict=True)])
    _phase(phases, "retouch2", t0, lambda: [p.touch_many(r, offs, lens) for p, r in zip(procs, regions, strict=True)])
    _phase(phases, "advance120s", t0, lambda: node.advance("120s"))
    phases["total"] = time.perf_counter() - t0
    phases["thp_coverage"] = node.meminfo["AnonHugePages"] / max(1, node.meminfo["AnonPages"])
    return phases


def _phase(phases: dict, name: str, t0: float, fn) -> None:
    start = time.perf_counter()
    fn()
    phases[name] = time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256])
    args = parser.parse_args()
    print(f"warm-up (compiles the hot loops on a machine's first run): {run(4, {'kind': 'none'})['total']:.1f} s")
    print(f"{'node':>6} {'swap':>5} {'procs':>5} {'fault':>7} {'dontneed':>8} {'retouch':>7} {'free':>6} "
          f"{'retouch2':>8} {'adv120s':>7} {'total s':>8} {'s/GiB':>7}")
    for gib in args.sizes:
        for label, swap in (("none", {"kind": "none"}), ("zram", {"kind": "zram", "size": f"{gib // 4}G"})):
            r = run(gib, swap)
            print(f"{gib:>5}G {label:>5} {max(1, gib * 16 // 64):>5} {r['fault']:7.2f} {r['dontneed']:8.2f} "
                  f"{r['retouch']:7.2f} {r['free']:6.2f} {r['retouch2']:8.2f} {r['advance120s']:7.2f} "
                  f"{r['total']:8.2f} {r['total'] / gib:7.3f}")


if __name__ == "__main__":
    main()
