"""The memory-management state of one node: the data every mechanism module takes as its first argument.

Linux keeps its state in structs that the functions of mm/*.c take as arguments: `struct pglist_data` for a
node's memory, `struct mm_struct` and `struct vm_area_struct` (include/linux/mm_types.h) for address spaces,
`struct mem_cgroup` for memcgs, `struct vm_event_state` for /proc/vmstat. `MM` is that data for one node:
physical memory, the one page table holding every mapping's rows, the memcg tree, the swap device, the
tunables and kernel profile, the clock and the counters, and the daemons' timers. The mechanism modules
(fault, madvise, vmscan, khugepaged, ...) read and change it; `Node` builds it and is a facade over it.

`Task` is what the mechanisms need of a task (the fields of `struct task_struct` they read, and the stall
accounting they charge): `Process` provides it.

This module imports no other kernel module at run time, so every mechanism can import it; its field types
are named for type checkers only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .costs import Costs
    from .memcg import Memcg, MemcgTree
    from .page_alloc import PhysMem
    from .pagetable import PageTable
    from .profiles import Profile
    from .settings import THPSettings, VMSettings
    from .swap import SwapDevice
    from .vma import Region

VMSTAT_KEYS = (
    "thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge", "thp_collapse_alloc",
    "thp_collapse_alloc_failed", "thp_split_pmd", "thp_split_page", "thp_deferred_split_page",
    "thp_underused_split_page", "thp_swpout_fallback", "pglazyfree", "pglazyfreed", "pswpin", "pswpout",
    "compact_stall", "compact_success", "compact_fail", "pgmigrate_success", "pgscan_kswapd",
    "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "allocstall", "oom_kill", "workingset_refault_anon",
    "workingset_refault_file", "khugepaged_full_scans", "madvise_calls", "splittable_reclaimed")
KCOMPACTD_INTERVAL_S = 0.5   # HPAGE_FRAG_CHECK_INTERVAL_MSEC: proactive compaction checks every 500 ms


class Task(Protocol):
    """The part of a task the mechanisms use: identity, memcg, liveness, fault counters and stalls."""

    pid: int
    name: str
    memcg: Memcg
    regions: list[Region]
    alive: bool
    oom_score_adj: int
    threads: int
    faults_4k: int
    faults_thp: int
    faults_major: int
    vm_events: Counter   # the task's share of /proc/vmstat events Linux counts only node-wide

    @property
    def thp_disable(self) -> bool | str: ...

    def stall(self, seconds: float, kind: str) -> None: ...

    def kill(self) -> None: ...

    def rss_pages(self) -> int: ...

    def swap_pages(self) -> int: ...

    def pagetable_pages(self) -> int: ...


@dataclass(eq=False, repr=False)
class MM:
    """One node's memory-management state. Built by `Node`; changed by the mechanisms and the syscalls.

    ``regions`` maps a region id to every live mapping (task mappings and file page cache alike), ``files``
    a file name to its page-cache region. ``boot_used`` is each pageblock's used pages after boot (the
    kernel's own share), which the invariants recount against.
    """

    profile: Profile
    thp: THPSettings
    vm: VMSettings
    costs: Costs
    rng: np.random.Generator
    phys: PhysMem
    pt: PageTable
    memcgs: MemcgTree
    swap: SwapDevice
    boot_used: np.ndarray
    slab_blocks: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))   # slab.py's pages
    stack_blocks: dict[int, np.ndarray] = field(default_factory=dict)   # each live task's kernel stack pages
    time: float = 0.0
    vmstat: Counter = field(default_factory=lambda: Counter({k: 0 for k in VMSTAT_KEYS}))
    cpu_s: Counter = field(default_factory=Counter)          # daemons' CPU seconds: kswapd, khugepaged, kcompactd
    regions: dict[int, Region] = field(default_factory=dict)
    files: dict[str, Region] = field(default_factory=dict)
    procs: list[Task] = field(default_factory=list)
    next_pid: int = 1
    next_region_id: int = 0
    next_khugepaged: float = 0.0                              # khugepaged's next wake-up (seconds)
    next_kcompactd: float = KCOMPACTD_INTERVAL_S              # kcompactd's next proactive check (seconds)
    compact_considered: int = 0                               # direct compaction attempts since the last defer
    compact_defer_shift: int = 0                              # skip up to 1 << shift attempts after failures
    compact_deferred: int = 0                                 # direct compaction attempts skipped so far
    khugepaged_cursor: int = 0                                # first row of khugepaged's next scan
    khugepaged_regions: set[int] = field(default_factory=set)  # ids of VMAs on khugepaged's list
    thp_disabled_pids: set[int] = field(default_factory=set)   # tasks with PR_SET_THP_DISABLE set


__all__ = ["KCOMPACTD_INTERVAL_S", "MM", "VMSTAT_KEYS", "Task"]
