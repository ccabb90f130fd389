"""The founding debate on one node: what MADV_DONTNEED, MADV_FREE and MADV_SPLITTABLE do to a THP heap.

An allocator-like process faults a 256 MiB THP heap, releases every other 64 KiB (as tcmalloc's scavenger
does), then reuses it. We print THP coverage (AnonHugePages / Rss), Rss, LazyFree and memory.current after
each step, swapless, on linux-6.12 with the MADV_SPLITTABLE proposal, then squeeze the memcg with a
neighbour to show what each advice gives back under pressure.

    python experiments/kernel_demo.py
"""

from __future__ import annotations

import numpy as np

from clustersim.kernel import MADV, Node

MIB = 1 << 20
HEAP = 256 * MIB
STRIDE, PIECE = 128 * 1024, 64 * 1024


def row(step: str, p, cg, seconds: float) -> str:
    s = p.smaps
    cov = s["AnonHugePages"] / s["Rss"] if s["Rss"] else 0.0
    return (f"  {step:<34} THP {cov:6.1%}  Rss {s['Rss'] / MIB:6.1f}M  LazyFree {s['LazyFree'] / MIB:6.1f}M  "
            f"memcg {cg.current / MIB:6.1f}M  cost {seconds * 1e3:8.3f} ms")


def scenario(advice: MADV) -> None:
    node = Node(memory="1G", profile="linux-6.12", seed=0, thp={"enabled": "madvise"},
                proposals=["madv_splittable"])
    cg = node.cgroup("svc", max="400M")
    p = node.spawn(cgroup="svc", name="tcmalloc")
    heap = p.mmap(HEAP, advice=MADV.HUGEPAGE)
    offs = np.arange(0, HEAP, STRIDE)
    lens = np.full(len(offs), PIECE)
    print(f"MADV_{advice.name}:")
    print(row("fault the heap", p, cg, p.touch(heap)))
    print(row(f"release {len(offs)} x 64K", p, cg, p.madvise_many(heap, offs, lens, advice)))
    reuse = p.madvise_many(heap, offs, lens, MADV.UNSPLITTABLE) if advice == MADV.SPLITTABLE else 0.0
    print(row("reuse the released ranges", p, cg, reuse + p.touch_many(heap, offs, lens)))
    p.madvise_many(heap, offs, lens, advice)
    node.advance("60s")
    print(row("release again, 60 s of khugepaged", p, cg, 0.0))
    neighbour = node.spawn(cgroup="svc", name="neighbour")
    spill = neighbour.mmap(200 * MIB)
    cost = neighbour.touch(spill)
    print(row("neighbour faults 200M (pressure)", p, cg, 0.0)
          + f"  neighbour {"alive" if neighbour.alive else "OOM-killed"}, its faults took {cost * 1e3:.1f} ms")
    print(f"  lost data on reuse: {1 - p.read(heap, 0, PIECE):.0%} of a released piece reads zero; "
          f"thp_split_pmd {node.vmstat['thp_split_pmd']}, thp_split_page {node.vmstat['thp_split_page']}, "
          f"oom_kill {node.vmstat['oom_kill']}")
    node.check()


def main() -> None:
    print(__doc__.split("\n\n")[1].replace("\n", " "), "\n")
    for advice in (MADV.DONTNEED, MADV.FREE, MADV.SPLITTABLE):
        scenario(advice)
        print()


if __name__ == "__main__":
    main()
