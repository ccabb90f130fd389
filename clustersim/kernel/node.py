"""Node: one Linux machine's memory management, and Cgroup, the handle for a memcg's control files.

Builds the node's state (`mm.MM`: physical memory, the page table, memcgs, swap, tunables, counters), hands
it to the mechanisms (reclaim, khugepaged, compaction) and exposes the observation files with Linux names
(vmstat, meminfo, memory.current/stat/events). `advance()` lets time pass: the slab pool follows the load,
khugepaged wakes every scan_sleep, kswapd reclaims below the low watermark, kcompactd compacts proactively.
"""

from __future__ import annotations

import numpy as np

from ..units import HPAGE_PAGES, PAGE_SIZE
from . import compaction, khugepaged, psi, slab, slowpath, vmscan
from .costs import Costs
from .errors import KernelError, duration_arg, size_arg
from .invariants import check_node
from .memcg import EVENTS, INF, LIMITS, Memcg, MemcgTree, memcg_stat, no_internal_process, parse_limit
from .mm import MM
from .page_alloc import PhysMem, default_min_free_kbytes
from .pagetable import CACHE, LAZY, PageTable
from .profiles import DEFAULT_PROFILE, make_profile
from .settings import SwapSettings, THPSettings, VMSettings, check_node_memory
from .swap import SwapDevice
from .task import Process


class Node:
    """One machine: memory, kernel profile and tunables, memcgs, processes and the page cache.

    A facade: the state is ``node.mm`` and the mechanism modules take it. The attributes ``profile``,
    ``thp``, ``vm``, ``costs``, ``rng``, ``time``, ``vmstat``, ``cpu_s``, ``phys``, ``pt``, ``memcgs``,
    ``swap``, ``regions``, ``files`` and ``procs`` are read-only views of ``node.mm``, observation
    conveniences for tests, benchmarks and metrics.
    """

    def __init__(self, memory: int | str = "1G", profile: str = DEFAULT_PROFILE, seed=0, thp: dict | None = None,
                 swap: dict | None = None, vm: dict | None = None, proposals=(), costs: dict | None = None):
        self.mm = _boot(check_node_memory(memory), profile, seed, thp, swap, vm, proposals, costs)

    # --- cgroups and tasks ---------------------------------------------------------------------------
    def cgroup(self, path: str = "", **settings) -> Cgroup:
        """mkdir ``path`` if it is missing (its parent must exist: ENOENT), then write ``settings``.

        A new cgroup has the defaults (no limits, no protection), as after mkdir. Writing memory.max or
        memory.high below the usage reclaims at once, and for memory.max OOM-kills if reclaim falls short.
        """
        unknown = set(settings) - set(LIMITS) - {"oom_group"}
        if unknown:
            raise KernelError("EINVAL", f"cgroup settings {sorted(unknown)} unknown; allowed: "
                                        f"{', '.join((*LIMITS, 'oom_group'))}")
        memcgs = self.mm.memcgs
        m = memcgs.by_path.get(path.strip("/"))
        if m is None:
            m = memcgs.create(path)
            m.psi = psi.PsiGroup.start(psi.now_ns(self.mm))
        if settings and m is memcgs.root:
            raise KernelError("EINVAL", "the root cgroup has no memory.min/low/high/max files")
        for name, value in settings.items():
            self._write(m, name, value)
        return Cgroup(self, m)

    def _write(self, m: Memcg, name: str, value: object) -> None:
        """One control-file write: memory.oom.group, or a limit (max and high act on the usage at once)."""
        if name == "oom_group":
            if not isinstance(value, bool):
                raise KernelError("EINVAL", f"oom_group={value!r} must be true or false")
            m.oom_group = value
            return
        pages = parse_limit(name, value)
        if name == "max":
            slowpath.memory_max_write(self.mm, m, pages)
        elif name == "high":
            slowpath.memory_high_write(self.mm, m, pages)
        else:
            setattr(m, name, pages)

    def spawn(self, cgroup: str | None = None, name: str = "", oom_score_adj: int = 0, threads: int = 1) -> Process:
        """Start a process in ``cgroup`` (the root when None)."""
        mm = self.mm
        m = mm.memcgs.get(cgroup or "")
        no_internal_process(m)
        psi.account(mm, m)   # the group's non-idle task set changes: account the time before
        pid = mm.next_pid
        mm.next_pid += 1
        p = Process(self, pid, name or f"task{pid}", m, oom_score_adj, threads)
        mm.procs.append(p)
        mm.cpu_s["kswapd"] += slab.alloc_stacks(mm, pid, threads)
        return p

    # --- time ----------------------------------------------------------------------------------------
    def advance(self, duration: float | str) -> None:
        """Let ``duration`` pass: khugepaged scans, kswapd reclaims, kcompactd compacts, in time order."""
        mm = self.mm
        end = mm.time + duration_arg("duration", duration)
        mm.cpu_s["kswapd"] += slab.resize(mm)
        while True:
            t = min(mm.next_khugepaged, mm.next_kcompactd, end)
            mm.time = max(mm.time, t)
            mm.cpu_s["kswapd"] += vmscan.kswapd(mm)
            if t >= mm.next_khugepaged and t <= end:
                mm.cpu_s["khugepaged"] += khugepaged.scan(mm)
            if t >= mm.next_kcompactd and t <= end:
                mm.cpu_s["kcompactd"] += compaction.kcompactd(mm, t)
            if t >= end:
                break
        mm.time = end

    # --- observations --------------------------------------------------------------------------------
    # Read-only views of the state, for tests, benchmarks and the fleet's metrics; the mechanisms take
    # `mm` itself.
    profile = property(lambda self: self.mm.profile, doc="The kernel profile (semantics and proposals).")
    thp = property(lambda self: self.mm.thp, doc="/sys/kernel/mm/transparent_hugepage tunables.")
    vm = property(lambda self: self.mm.vm, doc="/proc/sys/vm tunables.")
    costs = property(lambda self: self.mm.costs, doc="The cost table, seconds per operation.")
    rng = property(lambda self: self.mm.rng, doc="The node's random generator.")
    time = property(lambda self: self.mm.time, doc="Seconds since boot.")
    vmstat = property(lambda self: self.mm.vmstat, doc="/proc/vmstat counters.")
    cpu_s = property(lambda self: self.mm.cpu_s, doc="CPU seconds of kswapd, khugepaged and kcompactd.")
    phys = property(lambda self: self.mm.phys, doc="Physical memory: pageblocks and watermarks.")
    pt = property(lambda self: self.mm.pt, doc="The page table: one row per 2 MiB of every mapping.")
    memcgs = property(lambda self: self.mm.memcgs, doc="The memcg tree.")
    swap = property(lambda self: self.mm.swap, doc="The swap device.")
    regions = property(lambda self: self.mm.regions, doc="Every live mapping, by region id.")
    files = property(lambda self: self.mm.files, doc="Page-cache regions, by file name.")
    procs = property(lambda self: self.mm.procs, doc="Every task spawned, alive or not.")

    @property
    def pressure(self) -> dict[str, dict[str, float | int]]:
        """/proc/pressure/memory: some and full over every task of the node (psi.py)."""
        return psi.pressure(self.mm, self.memcgs.root)

    @property
    def free_pageblocks(self) -> int:
        return self.phys.free_blocks

    @property
    def meminfo(self) -> dict[str, int]:
        """/proc/meminfo fields in bytes."""
        pt, n = self.pt, self.pt.nrows
        anon_rows = pt.cnt[:n, CACHE] == 0
        anon = int(np.where(pt.folio[:n] >= 0, HPAGE_PAGES, pt.present(slice(0, n)))[anon_rows].sum())
        return {"MemTotal": self.phys.total_pages * PAGE_SIZE, "MemFree": self.phys.nr_free * PAGE_SIZE,
                "AnonPages": anon * PAGE_SIZE,
                "AnonHugePages": int(pt.pmd[:n].sum()) * HPAGE_PAGES * PAGE_SIZE,
                "Cached": int(pt.cnt[:n, CACHE].sum()) * PAGE_SIZE,
                "LazyFree": int(pt.cnt[:n, LAZY].sum()) * PAGE_SIZE,
                "PageTables": int(pt.pt[:n].sum()) * PAGE_SIZE,
                "SwapTotal": self.swap.capacity * PAGE_SIZE, "SwapFree": self.swap.free * PAGE_SIZE,
                "Zswap": self.swap.pool_pages() * PAGE_SIZE if self.swap.kind == "zswap" else 0}

    def check(self) -> None:
        """Raise AssertionError naming the first broken invariant (conservation, charges, counts)."""
        check_node(self.mm)


def _boot(total: int, profile: str, seed, thp: dict | None, swap: dict | None, vm: dict | None, proposals,
          costs: dict | None) -> MM:
    """The state of a node with ``total`` bytes just booted: tunables checked, the kernel's share reserved."""
    profile_ = make_profile(profile, list(proposals))
    thp_settings, vm_settings = THPSettings.build(thp), VMSettings.build(vm)
    cost_table, swap_settings = Costs.build(costs), SwapSettings.build(swap)
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rng = np.random.default_rng(seq)
    total_pages = total // PAGE_SIZE
    min_kb = vm_settings.min_free_kbytes or default_min_free_kbytes(total)
    phys = PhysMem(total_pages, min_kb, vm_settings.watermark_scale_factor)
    phys.reserve_kernel(int(total_pages * vm_settings.kernel_share), rng)
    return MM(profile=profile_, thp=thp_settings, vm=vm_settings, costs=cost_table, rng=rng, phys=phys,
              pt=PageTable(nblocks=phys.nblocks), memcgs=MemcgTree(), swap=SwapDevice(swap_settings, total_pages),
              boot_used=phys.used.copy(), next_khugepaged=thp_settings.scan_sleep)


class Cgroup:
    """Handle on one memcg: memory.current/peak/stat/events/swap.current and memory.reclaim."""

    def __init__(self, node: Node, m: Memcg) -> None:
        self.node, self.memcg = node, m

    @property
    def path(self) -> str:
        return self.memcg.path

    # memory.min/low/high/max, memory.swap.max and memory.zswap.max as they read back: bytes, or "max"
    min = property(lambda self: _limit_bytes(self.memcg.min), doc="memory.min")
    low = property(lambda self: _limit_bytes(self.memcg.low), doc="memory.low")
    high = property(lambda self: _limit_bytes(self.memcg.high), doc="memory.high")
    max = property(lambda self: _limit_bytes(self.memcg.max), doc="memory.max")
    swap_max = property(lambda self: _limit_bytes(self.memcg.swap_max), doc="memory.swap.max")
    zswap_max = property(lambda self: _limit_bytes(self.memcg.zswap_max), doc="memory.zswap.max")

    @property
    def current(self) -> int:
        return self.memcg.usage * PAGE_SIZE

    @property
    def peak(self) -> int:
        return self.memcg.peak * PAGE_SIZE

    @property
    def swap_current(self) -> int:
        return self.memcg.swap_usage * PAGE_SIZE

    @property
    def swap_peak(self) -> int:
        return self.memcg.swap_peak * PAGE_SIZE

    @property
    def events(self) -> dict[str, int]:
        return self.node.memcgs.events(self.memcg)

    @property
    def events_local(self) -> dict[str, int]:
        return {e: self.memcg.events_local.get(e, 0) for e in EVENTS}

    @property
    def procs(self) -> list[Process]:
        return [p for p in self.memcg.procs if p.alive]

    @property
    def pressure(self) -> dict[str, dict[str, float | int]]:
        """memory.pressure of the subtree: {"some"|"full": {avg10, avg60, avg300 (percent), total (µs)}}."""
        return psi.pressure(self.node.mm, self.memcg)

    @property
    def stat(self) -> dict[str, int]:
        """memory.stat of the subtree: sizes in bytes, event counters as counts."""
        return memcg_stat(self.node.mm, self.memcg)

    def reclaim(self, nbytes: int | str) -> int:
        """memory.reclaim: reclaim from this subtree ignoring its own protection; EAGAIN if short."""
        return self._reclaim(nbytes)[0]

    def _reclaim(self, nbytes: int | str) -> tuple[int, float]:
        want = size_arg("reclaim", nbytes) // PAGE_SIZE
        got, cost_s = 0, 0.0
        for _ in range(vmscan.MAX_RECLAIM_RETRIES):   # memory_reclaim(), mm/memcontrol.c
            sc = vmscan.memcg_reclaim(self.node.mm, self.memcg, want - got)
            got, cost_s = got + sc.nr_reclaimed, cost_s + sc.cost_s
            if got >= want or sc.nr_reclaimed == 0:
                break
        if got < want:
            err = KernelError("EAGAIN", f"memory.reclaim: reclaimed {got * PAGE_SIZE} of {want * PAGE_SIZE} bytes")
            err.cost_s = cost_s
            raise err
        return got * PAGE_SIZE, cost_s

    def write(self, name: str, value: int | str) -> float:
        """Write memory.high (``high``) or memory.reclaim (``reclaim``) as a userspace controller does.

        Returns the CPU seconds of the reclaim the write ran: Linux reclaims in the writing task's context
        (memory_high_write(), memory_reclaim(), mm/memcontrol.c), so a controller pays for it. A
        memory.reclaim that falls short raises EAGAIN with that CPU in the error's ``cost_s``.
        """
        if name == "reclaim":
            return self._reclaim(value)[1]
        if name != "high":
            raise KernelError("EINVAL", f"Cgroup.write({name!r}): high or reclaim; other files via Node.cgroup")
        return slowpath.memory_high_write(self.node.mm, self.memcg, parse_limit("high", value))



def _limit_bytes(pages: float) -> int | str:
    """A limit as its control file reads: bytes, or "max" when unlimited."""
    return "max" if pages == INF else int(pages) * PAGE_SIZE


__all__ = ["Cgroup", "Node"]
