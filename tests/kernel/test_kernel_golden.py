"""Golden digests: a fixed, seeded mix of syscalls gives exactly the results recorded from the reference code.

Guards refactors of the syscall paths (task, fault, memory, pagetable, page_alloc, slowpath, madvise) that must
not change any result: every page state and pageblock, the pageblock counters, vmstat, memcg counters and
events, and the seconds each call returned (compared by repr, so to the last bit). A digest that changes on
purpose (a modelling change, not a speed-up) is re-recorded by running this file with GOLDEN_PRINT=1.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from kernel_helpers import MB

from clustersim.allocators import make_allocator
from clustersim.kernel import MADV, KernelError, Node
from clustersim.workloads import HeapDemand

PAGE_ARRAYS = ("state", "block", "cnt", "npres", "region", "memcg", "pmd", "folio", "fmapped", "deferred", "pt",
               "pt_block", "advice", "full", "atime", "active")
MADVICES = (MADV.DONTNEED, MADV.FREE, MADV.SPLITTABLE, MADV.UNSPLITTABLE)
CONFIGS = {
    # THP on MADV_HUGEPAGE only (the fleet's setting), zram, a memcg over its max, one over its high.
    "madvise-zram": {"memory": "128M", "profile": "linux-6.12", "thp": {"enabled": "madvise", "scan_sleep": "1s"},
                     "swap": {"kind": "zram", "size": "96M"}},
    # THP everywhere with direct compaction, no swap: limits end in OOM kills.
    "always-noswap": {"memory": "128M", "profile": "linux-6.12", "thp": {"enabled": "always", "defrag": "always",
                                                       "scan_sleep": "1s"}},
    # Room for khugepaged to collapse and THP faults to succeed; only the memcg limits bind.
    "madvise-roomy": {"memory": "512M", "profile": "linux-6.12", "thp": {"enabled": "madvise", "scan_sleep": "1s"},
                      "swap": {"kind": "zram", "size": "96M"}},
    # MADV_FREE is DONTNEED without swap on 4.5.
    "linux-4.5": {"memory": "128M", "profile": "linux-4.5", "thp": {"enabled": "always", "scan_sleep": "2s"}},
}
GOLDEN = {
    "madvise-zram": "2f319997a19085bd696cf999ebf16b94454c445ec6391c387bcb967114a47f38",
    "always-noswap": "ad21cef9f4afe065b20468b56bb5cec33cb817957315169d48b56340bc4cd87b",
    "linux-4.5": "205a85cd058d20724832dd8762bf601bf7a5bbba4ce74b314f7c5c0317f95cba",
    "madvise-roomy": "b6b842ec71cd39d918d2508f44846a950814046e5b16bf37dd81a57765e035eb",
}
GOLDEN_ALLOCATORS = "d6050c822af4c0b216d0b5fd217282bb9ef1b742157fadb7321acc682cc34b5a"


class Recorder:
    """Everything a call returns or raises, in call order."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def call(self, fn, *args) -> None:
        try:
            self.log.append(repr(fn(*args)))
        except KernelError as err:
            self.log.append(f"{err.errno}: {err}")


def _ranges(rng: np.random.Generator, region, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k page-aligned ranges of 16 KiB - 512 KiB inside the region, unsorted, possibly overlapping."""
    lengths = rng.integers(4, 129, size=k) * 4096
    lengths = np.minimum(lengths, region.length)
    offsets = rng.integers(0, (region.length - lengths) // 4096 + 1) * 4096
    return offsets.astype(np.int64), lengths.astype(np.int64)


def _batch(rng: np.random.Generator, regions) -> list:
    picked = rng.choice(len(regions), size=int(rng.integers(1, len(regions) + 1)), replace=False)
    return [(regions[i], *_ranges(rng, regions[i], int(rng.integers(1, 12)))) for i in sorted(picked)]


def scenario(config: dict) -> tuple[Node, list]:
    """Four processes in three memcgs over 30 steps of random batches, with invalid calls mixed in."""
    madv = MADVICES if "madvise" in config["thp"]["enabled"] else MADVICES[:2]
    node = Node(seed=5, proposals=["madv_splittable"] if len(madv) == 4 else [], **config)
    node.cgroup("tight", max="28M")
    node.cgroup("soft", high="20M")
    node.cgroup("free", max="max")
    rng = np.random.default_rng(11)
    rec = Recorder()
    procs = [node.spawn(cgroup=cg, name=f"t{i}") for i, cg in enumerate(("tight", "tight", "soft", "free"))]
    procs[3].thp_disable = "except_advised"
    regions = []
    for i, p in enumerate(procs):
        sizes = ((6 * MB, 10 * MB + 12288, 16 * MB) if i == 1 else (32 * MB, 28 * MB + 12288, 24 * MB) if i == 3
                 else (4 * MB, 24 * MB))
        regions.append([p.mmap(s, MADV.HUGEPAGE if (i + j) % 2 == 0 else None) for j, s in enumerate(sizes)])
    for i in (0, 2, 3):   # a warm start: half of the mappings of two processes, all of the unlimited one
        for r in regions[i]:
            rec.call(procs[i].touch, r, 0, r.length if i == 3 else r.length // 2)
    for step in range(30):
        for p, rs in zip(procs, regions, strict=True):
            _one_step(rng, rec, p, rs, madv, step)
        node.advance(0.5)
        if step % 10 == 9:
            node.check()
    return node, rec.log


def _one_step(rng, rec: Recorder, p, rs, madv, step: int) -> None:
    op = int(rng.integers(0, 8))
    if op <= 2:
        rec.call(p.touch_batch, _batch(rng, rs))
    elif op == 3:
        r = rs[int(rng.integers(len(rs)))]
        rec.call(p.touch_many, r, *_ranges(rng, r, int(rng.integers(1, 20))))
    elif op == 4:
        r = rs[int(rng.integers(len(rs)))]
        rec.call(p.madvise_many, r, *_ranges(rng, r, int(rng.integers(1, 8))), madv[int(rng.integers(len(madv)))])
    elif op == 5:
        rec.call(p.access_batch, _batch(rng, rs))
    else:
        rec.call(p.madvise_batch, _batch(rng, rs), madv[int(rng.integers(len(madv)))])
    if step % 7 == 3:   # errors: a range past the end of the second mapping, an unaligned madvise offset
        bad = [(rs[0], np.array([0]), np.array([8192])), (rs[1], np.array([rs[1].length - 4096]), np.array([8192]))]
        rec.call(p.touch_batch, bad)
        rec.call(p.madvise_batch, [(rs[0], np.array([0, 4097]), np.array([4096, 4096])), *bad], MADV.DONTNEED)
        rec.call(p.touch, rs[0], 100, 5000)


def digest(node: Node, log: list) -> str:
    """sha256 over the page table up to nrows, pageblock counters, vmstat, memcg counters and the call log."""
    h = hashlib.sha256()
    n = node.pt.nrows
    for name in PAGE_ARRAYS:
        h.update(np.ascontiguousarray(getattr(node.pt, name)[:n]).tobytes())
    for arr in (node.phys.used, node.phys.unmov, node.phys.thp):
        h.update(arr.tobytes())
    h.update(repr((node.phys.nr_free, node.phys.nfree_blocks, node.swap.used, sorted(node.vmstat.items()))).encode())
    for m in node.memcgs.all:
        h.update(repr((m.path, m.usage, m.peak, m.swap_usage, m.swap_peak, sorted(m.events_local.items()),
                       sorted(m.counters.items()))).encode())
    for p in node.procs:
        h.update(repr((p.alive, p.faults_4k, p.faults_thp, p.faults_major, p.madvise_calls, p.stall_s,
                       sorted(p.stall_by_kind.items()))).encode())
    h.update("\n".join(log).encode())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_seeded_mix_of_syscalls_gives_the_recorded_digest(name):
    # Random touch/access/madvise batches over three or two mappings per process, with a memcg over its
    # max (reclaim, swap or OOM), one over its high (throttling), khugepaged every second, and invalid
    # calls whose errors are logged: the whole end state and every returned value hash to the recorded digest.
    node, log = scenario(CONFIGS[name])
    node.check()
    got = digest(node, log)
    if os.environ.get("GOLDEN_PRINT"):
        print(f'\n    "{name}": "{got}",')
    assert got == GOLDEN[name]


def allocator_scenario() -> tuple[Node, list]:
    """The fleet's call pattern in small: tcmalloc and temeraire heaps in memcgs, 12 one-second ticks."""
    node = Node(memory="1G", seed=3, thp={"enabled": "madvise", "scan_sleep": "2s"},
                swap={"kind": "zram", "size": "256M"}, proposals=["madv_splittable"])
    rng = np.random.default_rng(4)
    heaps, log = [], []
    for i, kind in enumerate(("tcmalloc", "temeraire", "tcmalloc", "temeraire")):
        node.cgroup(f"s{i}", max="250M" if i < 2 else "max")
        p = node.spawn(cgroup=f"s{i}")
        alloc = make_allocator(kind, p, hugepage_advice="hugepage", release_rate=2 << 20)
        demand = HeapDemand("tcmalloc/beta", 256 << 20, 8 << 20, rng, min_span_bytes=256 << 10)
        ev = demand.initial()
        log.append(repr(alloc.alloc(ev.alloc_ids, ev.alloc_bytes)))
        heaps.append((alloc, demand))
    for t in range(12):
        for alloc, demand in heaps:
            ev = demand.step(float(t), 1.0)
            log.append(repr((alloc.alloc(ev.alloc_ids, ev.alloc_bytes), alloc.free(ev.free_ids),
                             alloc.background(float(t)))))
        node.advance(1.0)
    return node, log


def test_allocator_driven_heaps_give_the_recorded_digest():
    # Four heaps, two of them capped by memory.max, allocate, free and release through touch_batch and
    # madvise_batch as the fleet does: end state and returned seconds hash to the recorded digest.
    node, log = allocator_scenario()
    node.check()
    got = digest(node, log)
    if os.environ.get("GOLDEN_PRINT"):
        print(f'\nGOLDEN_ALLOCATORS = "{got}"')
    assert got == GOLDEN_ALLOCATORS


def test_the_compiled_loops_give_the_digests_of_their_python_source():
    # The hot loops are compiled (clustersim/jit.py); run as plain Python (NUMBA_DISABLE_JIT=1) the same
    # scenarios must hash to the same recorded digests, or the compiled code does not mean what it says.
    script = ("import test_kernel_golden as g\n"
              "for name in sorted(g.CONFIGS):\n"
              "    print(name, g.digest(*g.scenario(g.CONFIGS[name])))\n"
              "print('allocators', g.digest(*g.allocator_scenario()))\n")
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1",
           "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = dict(line.split() for line in out.stdout.splitlines())
    assert got == {**GOLDEN, "allocators": GOLDEN_ALLOCATORS}
