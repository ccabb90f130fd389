"""Seeded syscall scenarios for the golden timelines, and their rendering as text.

Each scenario runs a fixed, seeded mix of syscalls on a small node; ``timeline`` renders what happened as
lines: every call's returned value or error in call order (with a marker per step), then the end state -
vmstat, every memcg's counters and events, every process's fault and stall counts, the pageblock counters and
every page-table row (per-row facts, and the 512 page states and pageblocks run-length encoded). Values are
written with repr, so floats are exact to the last bit. The tests compare these lines with the fixtures in
``golden/``; ``test_no_jit_equivalence`` compares them between compiled and plain-Python runs.
"""

from __future__ import annotations

import numpy as np
from kernel_helpers import MB

from clustersim.allocators import make_allocator
from clustersim.kernel import MADV, KernelError, Node
from clustersim.workloads import HeapDemand

# One letter per page state, in the order of clustersim.kernel.pagetable (NONE, ZERO, DATA, LAZY, SWAP,
# QUEUED, CACHE).
STATE_LETTERS = "-zdlsqc"
ROW_FIELDS = ("region", "memcg", "advice", "pt", "pt_block", "pmd", "full", "folio", "fmapped", "deferred",
              "npres", "active", "atime")
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


class Recorder:
    """Everything a call returns or raises, in call order, with step markers between the calls."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def call(self, fn, *args) -> None:
        try:
            self.lines.append(f"{fn.__name__} -> {fn(*args)!r}")
        except KernelError as err:
            self.lines.append(f"{fn.__name__} -> {err.errno}: {err}")

    def mark(self, text: str) -> None:
        self.lines.append(f"## {text}")


def _ranges(rng: np.random.Generator, region, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k page-aligned ranges of 16 KiB - 512 KiB inside the region, unsorted, possibly overlapping."""
    lengths = rng.integers(4, 129, size=k) * 4096
    lengths = np.minimum(lengths, region.length)
    offsets = rng.integers(0, (region.length - lengths) // 4096 + 1) * 4096
    return offsets.astype(np.int64), lengths.astype(np.int64)


def _batch(rng: np.random.Generator, regions) -> list:
    picked = rng.choice(len(regions), size=int(rng.integers(1, len(regions) + 1)), replace=False)
    return [(regions[i], *_ranges(rng, regions[i], int(rng.integers(1, 12)))) for i in sorted(picked)]


def scenario(config: dict) -> tuple[Node, Recorder]:
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
    rec.mark("warm start")
    for i in (0, 2, 3):   # a warm start: half of the mappings of two processes, all of the unlimited one
        for r in regions[i]:
            rec.call(procs[i].touch, r, 0, r.length if i == 3 else r.length // 2)
    for step in range(30):
        rec.mark(f"step {step} t={node.time!r}")
        for p, rs in zip(procs, regions, strict=True):
            _one_step(rng, rec, p, rs, madv, step)
        node.advance(0.5)
        if step % 10 == 9:
            node.check()
    return node, rec


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


def allocator_scenario() -> tuple[Node, Recorder]:
    """The fleet's call pattern in small: tcmalloc and temeraire heaps in memcgs, 12 one-second ticks."""
    node = Node(memory="1G", seed=3, thp={"enabled": "madvise", "scan_sleep": "2s"},
                swap={"kind": "zram", "size": "256M"}, proposals=["madv_splittable"])
    rng = np.random.default_rng(4)
    rec = Recorder()
    heaps = []
    for i, kind in enumerate(("tcmalloc", "temeraire", "tcmalloc", "temeraire")):
        node.cgroup(f"s{i}", max="250M" if i < 2 else "max")
        p = node.spawn(cgroup=f"s{i}")
        alloc = make_allocator(kind, p, hugepage_advice="hugepage", release_rate=2 << 20)
        demand = HeapDemand("tcmalloc/beta", 256 << 20, 8 << 20, rng, min_span_bytes=256 << 10)
        ev = demand.initial()
        rec.call(alloc.alloc, ev.alloc_ids, ev.alloc_bytes)
        heaps.append((alloc, demand))
    for t in range(12):
        rec.mark(f"tick {t}")
        for alloc, demand in heaps:
            ev = demand.step(float(t), 1.0)
            rec.call(alloc.alloc, ev.alloc_ids, ev.alloc_bytes)
            rec.call(alloc.free, ev.free_ids)
            rec.call(alloc.background, float(t))
        node.advance(1.0)
    return node, rec


def rle(values) -> str:
    """Run-length encoding, ``value*count`` per run (``value`` alone for a run of one)."""
    values = list(values)
    out, i = [], 0
    while i < len(values):
        j = i
        while j < len(values) and values[j] == values[i]:
            j += 1
        out.append(f"{values[i]}*{j - i}" if j - i > 1 else f"{values[i]}")
        i = j
    return " ".join(out)


def end_state(node: Node) -> list[str]:
    """The node's end state, one fact per line: vmstat, memcgs, processes, pageblocks, page-table rows."""
    lines = ["# vmstat"] + [f"{k} {v!r}" for k, v in sorted(node.vmstat.items())]
    lines.append("# memcgs")
    for m in node.memcgs.all:
        lines.append(f"memcg {m.path!r} usage={m.usage!r} peak={m.peak!r} swap_usage={m.swap_usage!r} "
                     f"swap_peak={m.swap_peak!r}")
        lines.append(f"  events_local {sorted(m.events_local.items())!r}")
        lines.append(f"  counters {sorted(m.counters.items())!r}")
    lines.append("# processes")
    for p in node.procs:
        lines.append(f"proc pid={p.pid} alive={p.alive!r} faults_4k={p.faults_4k!r} faults_thp={p.faults_thp!r} "
                     f"faults_major={p.faults_major!r} madvise_calls={p.madvise_calls!r} stall_s={p.stall_s!r} "
                     f"stall_by_kind={sorted(p.stall_by_kind.items())!r}")
    phys = node.phys
    lines += ["# pageblocks",
              f"nr_free={phys.nr_free!r} nfree_blocks={phys.nfree_blocks!r} swap_used={node.swap.used!r}",
              f"used {rle(phys.used.tolist())}", f"unmov {rle(phys.unmov.tolist())}",
              f"thp {rle(phys.thp.astype(int).tolist())}"]
    lines.append(f"# page table: {node.pt.nrows} rows; states {STATE_LETTERS} = none zero data lazy swap queued cache")
    pt = node.pt
    for i in range(pt.nrows):
        facts = " ".join(f"{name}={getattr(pt, name)[i].item()!r}" for name in ROW_FIELDS)
        lines.append(f"row {i} {facts} cnt={pt.cnt[i].tolist()}")
        lines.append(f"  state {rle(STATE_LETTERS[s] for s in pt.state[i].tolist())}")
        lines.append(f"  block {rle(pt.block[i].tolist())}")
    return lines


def timeline(node: Node, rec: Recorder) -> list[str]:
    """The calls in order, then the end state."""
    return ["# calls", *rec.lines, *end_state(node)]
