"""Node: one Linux machine's memory management, and Cgroup, the handle for a memcg's control files.

Wires physical memory, the page table, memcgs, swap, reclaim, khugepaged and compaction, and exposes the
observation files with Linux names (vmstat, meminfo, memory.current/stat/events). `advance()` lets time pass:
khugepaged wakes every scan_sleep, kswapd reclaims below the low watermark, kcompactd compacts proactively.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..units import HPAGE_PAGES, PAGE_SIZE
from . import compaction, khugepaged, vmscan
from .costs import Costs
from .errors import KernelError, duration_arg, size_arg
from .memcg import EVENTS, LIMITS, Memcg, MemcgTree, parse_limit
from .page_alloc import PhysMem, default_min_free_kbytes
from .pagetable import ADV_HUGEPAGE, CACHE, LAZY, PageTable
from .profiles import make_profile
from .settings import SwapSettings, THPSettings, VMSettings
from .swap import SwapDevice
from .task import Process, Region, unmap_all_rows

VMSTAT_KEYS = (
    "thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge", "thp_collapse_alloc",
    "thp_collapse_alloc_failed", "thp_split_pmd", "thp_split_page", "thp_deferred_split_page",
    "thp_underused_split_page", "thp_swpout_fallback", "pglazyfree", "pglazyfreed", "pswpin", "pswpout",
    "compact_stall", "compact_success", "compact_fail", "pgmigrate_success", "pgscan_kswapd",
    "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "allocstall", "oom_kill", "workingset_refault_anon",
    "workingset_refault_file", "khugepaged_full_scans", "madvise_calls", "splittable_reclaimed")
KCOMPACTD_INTERVAL_S = 0.5   # HPAGE_FRAG_CHECK_INTERVAL_MSEC: proactive compaction checks every 500 ms


class Node:
    """One machine: memory, kernel profile and tunables, memcgs, processes and the page cache."""

    def __init__(self, memory: int | str = "1G", profile: str = "linux-6.12", seed=0, thp: dict | None = None,
                 swap: dict | None = None, vm: dict | None = None, proposals=(), costs: dict | None = None):
        total = size_arg("memory", memory)
        if total < 64 * HPAGE_PAGES * PAGE_SIZE or total % (HPAGE_PAGES * PAGE_SIZE):
            raise KernelError("EINVAL", f"memory={memory!r} must be a multiple of 2M and at least 128M")
        self.profile = make_profile(profile, list(proposals))
        self.thp = THPSettings.build(thp)
        self.vm = VMSettings.build(vm)
        self.costs = Costs.build(costs)
        swap_settings = SwapSettings.build(swap)
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.rng = np.random.default_rng(seq)
        self.time = 0.0
        self.vmstat: Counter = Counter({k: 0 for k in VMSTAT_KEYS})
        self.cpu_s: Counter = Counter()
        total_pages = total // PAGE_SIZE
        min_kb = self.vm.min_free_kbytes or default_min_free_kbytes(total)
        self.phys = PhysMem(total_pages, min_kb, self.vm.watermark_scale_factor)
        self.phys.reserve_kernel(int(total_pages * self.vm.kernel_share), self.rng)
        self._boot_used = self.phys.used.copy()
        self.pt = PageTable()
        self.memcgs = MemcgTree()
        self.swap = SwapDevice(swap_settings, total_pages)
        self.regions: dict[int, Region] = {}
        self.files: dict[str, Region] = {}
        self.procs: list[Process] = []
        self._next_ids = {"pid": 1, "region": 0}
        self.next_khugepaged = self.thp.scan_sleep
        self.next_kcompactd = KCOMPACTD_INTERVAL_S
        self.khugepaged_cursor = 0
        self._khugepaged_regions: set[int] = set()
        self.thp_disabled_pids: set[int] = set()   # tasks with PR_SET_THP_DISABLE set, kept by Process

    # --- cgroups and tasks ---------------------------------------------------------------------------
    def cgroup(self, path: str = "", **settings) -> Cgroup:
        """Create ``path`` (its parent must exist) or update it; no settings returns the existing one."""
        unknown = set(settings) - set(LIMITS) - {"oom_group"}
        if unknown:
            raise KernelError("EINVAL", f"cgroup settings {sorted(unknown)} unknown; allowed: "
                                        f"{', '.join((*LIMITS, 'oom_group'))}")
        key = path.strip("/")
        m = self.memcgs.by_path.get(key)
        if m is None:
            if not settings and key:
                raise KernelError("ENOENT", f"cgroup {path!r} does not exist; pass settings to create it")
            m = self.memcgs.create(key)
        if settings and m is self.memcgs.root:
            raise KernelError("EINVAL", "the root cgroup has no memory.min/low/high/max files")
        for name, value in settings.items():
            if name == "oom_group":
                if not isinstance(value, bool):
                    raise KernelError("EINVAL", f"oom_group={value!r} must be true or false")
                m.oom_group = value
            else:
                setattr(m, name, parse_limit(name, value))
        return Cgroup(self, m)

    def spawn(self, cgroup: str | None = None, name: str = "", oom_score_adj: int = 0, threads: int = 1) -> Process:
        """Start a process in ``cgroup`` (the root when None)."""
        m = self.memcgs.get(cgroup or "")
        pid = self._next_ids["pid"]
        self._next_ids["pid"] += 1
        p = Process(self, pid, name or f"task{pid}", m, oom_score_adj, threads)
        self.procs.append(p)
        return p

    # --- mappings (called by Process) ------------------------------------------------------------------
    def map_region(self, proc: Process | None, npages: int, kind: str = "anon", memcg: Memcg | None = None
                   ) -> Region:
        nvhp = -(-npages // HPAGE_PAGES)
        start = self.pt.alloc_rows(nvhp)
        rid = self._next_ids["region"]
        self._next_ids["region"] += 1
        region = Region(rid, proc, start, nvhp, npages, kind)
        rows = region.rows
        self.pt.region[rows] = rid
        self.pt.memcg[rows] = (memcg or proc.memcg).idx
        self.pt.full[rows] = True
        if npages % HPAGE_PAGES:   # the last vhp ends inside the VMA: never PMD-mapped
            self.pt.full[rows[-1]] = False
        self.regions[rid] = region
        if proc is not None:
            proc.regions.append(region)
            if self.thp.enabled == "always":
                self._khugepaged_regions.add(rid)
        return region

    def unmap_region(self, region: Region) -> None:
        unmap_all_rows(self, region)
        self.pt.free_rows(region.start_row, region.nvhp)
        region.mapped = False
        self._khugepaged_regions.discard(region.id)
        del self.regions[region.id]

    def file_region(self, name: str, npages: int, memcg: Memcg) -> Region:
        """The page-cache region of file ``name``, grown to ``npages`` if needed."""
        region = self.files.get(name)
        if region is not None and region.npages >= npages:
            return region
        if region is not None:   # grow: a new, larger region; the cached pages are dropped and re-read
            self.unmap_region(region)
        region = self.map_region(None, npages, "file", memcg)
        region.ever_read = False
        self.pt.full[region.rows] = False
        self.files[name] = region
        return region

    def khugepaged_register(self, region: Region) -> None:
        """khugepaged_enter_vma(): MADV_HUGEPAGE (or enabled=always) puts the mm on khugepaged's list."""
        self._khugepaged_regions.add(region.id)

    def khugepaged_rows(self) -> np.ndarray:
        """Rows khugepaged walks: full vhps of registered VMAs that THP policy allows, in address order."""
        if self.thp.enabled == "never" or not self._khugepaged_regions:
            return np.empty(0, dtype=np.int64)
        rows = np.concatenate([self.regions[r].rows for r in sorted(self._khugepaged_regions)])
        from .huge_memory import vma_allows_thp
        return np.sort(rows[vma_allows_thp(self, rows)])

    def thp_disabled_rows(self, rows: np.ndarray, *, collapse: bool = False) -> np.ndarray:
        """PR_SET_THP_DISABLE of each row's owner (vma_thp_disabled()): True disables every VMA;
        "except_advised" spares MADV_HUGEPAGE VMAs and a forced collapse (MADV_COLLAPSE)."""
        out = np.zeros(len(rows), dtype=bool)
        if not self.thp_disabled_pids:
            return out
        owners = [r for r in self.regions.values() if r.proc is not None and r.proc.thp_disable is not False]
        if not owners:
            return out
        region = self.pt.region[rows]
        out = np.isin(region, [r.id for r in owners if r.proc.thp_disable is True])
        if not collapse:
            advised = self.pt.advice[rows] == ADV_HUGEPAGE
            out |= np.isin(region, [r.id for r in owners if r.proc.thp_disable == "except_advised"]) & ~advised
        return out

    # --- time ----------------------------------------------------------------------------------------
    def advance(self, duration: float | str) -> None:
        """Let ``duration`` pass: khugepaged scans, kswapd reclaims, kcompactd compacts, in time order."""
        end = self.time + duration_arg("duration", duration)
        while True:
            t = min(self.next_khugepaged, self.next_kcompactd, end)
            self.time = max(self.time, t)
            self.cpu_s["kswapd"] += vmscan.kswapd(self)
            if t >= self.next_khugepaged and t <= end:
                self.cpu_s["khugepaged"] += khugepaged.scan(self)
            if t >= self.next_kcompactd and t <= end:
                self.cpu_s["kcompactd"] += compaction.proactive(self)
                self.next_kcompactd = t + KCOMPACTD_INTERVAL_S
            if t >= end:
                break
        self.time = end

    # --- observations --------------------------------------------------------------------------------
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
        from .invariants import check_node
        check_node(self)


class Cgroup:
    """Handle on one memcg: memory.current/peak/stat/events/swap.current and memory.reclaim."""

    def __init__(self, node: Node, m: Memcg) -> None:
        self.node, self.memcg = node, m

    @property
    def path(self) -> str:
        return self.memcg.path

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
    def stat(self) -> dict[str, int]:
        """memory.stat of the subtree: sizes in bytes, event counters as counts."""
        from .invariants import memcg_stat
        return memcg_stat(self.node, self.memcg)

    def reclaim(self, nbytes: int | str) -> int:
        """memory.reclaim: reclaim from this subtree ignoring its own protection; EAGAIN if short."""
        want = size_arg("reclaim", nbytes) // PAGE_SIZE
        got = 0
        for _ in range(16):
            sc = vmscan.memcg_reclaim(self.node, self.memcg, want - got)
            got += sc.nr_reclaimed
            if got >= want or sc.nr_reclaimed == 0:
                break
        if got < want:
            raise KernelError("EAGAIN", f"memory.reclaim: reclaimed {got * PAGE_SIZE} of {want * PAGE_SIZE} bytes")
        return got * PAGE_SIZE




__all__ = ["Cgroup", "Node"]
