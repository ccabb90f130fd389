"""Getting memory for a task: zone watermarks, direct reclaim, memcg try_charge with memory.max/high, OOM.

Follows __alloc_pages_slowpath() (mm/page_alloc.c) and try_charge()/mem_cgroup_handle_over_high()
(mm/memcontrol.c). Allocations may take free memory down to the min watermark; below that the task reclaims
directly (allocstall) and, if nothing can be reclaimed, the global OOM killer runs. A charge above
memory.max reclaims from the memcg (event `max`) and, failing that, invokes the memcg OOM killer. Above
memory.high the charge succeeds; the task then reclaims the excess and sleeps per the kernel's penalty curve
(event `high`), and high never kills.

Writing memory.max or memory.high below the current usage acts at once, as memory_max_write() and
memory_high_write() (mm/memcontrol.c) do: reclaim from the memcg until usage fits, giving up after
MAX_RECLAIM_RETRIES rounds that reclaim nothing; for memory.max the OOM killer then kills (event `oom`) until
usage fits or nobody is left to kill. The write itself always succeeds.
"""

from __future__ import annotations

from .memcg import INF, Memcg, MemcgTree, high_penalty_s
from .mm import MM, Task
from .oom_kill import out_of_memory
from .vmscan import MAX_RECLAIM_RETRIES, SWAP_CLUSTER_MAX, direct_reclaim, memcg_reclaim


def reserve(mm: MM, p: Task, n: int) -> tuple[int, float]:
    """Make room for up to ``n`` new pages charged to p's memcg; returns (pages allowed now, stall seconds).

    Returns fewer pages than asked when only part fits after reclaim; 0 when the task was killed or no
    progress is possible at all.
    """
    stall = 0.0
    # try_charge() and the page allocator serve a fault one page at a time: once reclaim has run, any
    # page of room lets the charge go on, and only no room with no reclaim progress ends in the OOM killer.
    # Reclaiming in SWAP_CLUSTER_MAX batches below that is the model's batching, not a larger minimum.
    for _ in range(MAX_RECLAIM_RETRIES):
        if not p.alive:
            return 0, stall
        global_room = mm.phys.nr_free - mm.phys.wmark_min
        if global_room < min(n, SWAP_CLUSTER_MAX):
            sc = direct_reclaim(mm, n - max(global_room, 0))
            stall += sc.cost_s
            global_room = mm.phys.nr_free - mm.phys.wmark_min
            if global_room < 1:
                if sc.nr_reclaimed == 0 and not out_of_memory(mm, None):
                    return max(0, min(n, mm.phys.nr_free)), stall   # nothing to kill: dip into reserves
                continue
        memcg_room, over = _memcg_room(p, n)
        if memcg_room < min(n, SWAP_CLUSTER_MAX) and over is not None:
            MemcgTree.event(over, "max")
            sc = memcg_reclaim(mm, over, n - max(memcg_room, 0))
            stall += sc.cost_s
            memcg_room = _memcg_room(p, n)[0]
            if memcg_room < 1:
                if sc.nr_reclaimed == 0 and not out_of_memory(mm, over):
                    return 0, stall
                continue
            global_room = mm.phys.nr_free - mm.phys.wmark_min
        return int(min(n, global_room, memcg_room)), stall
    return 0, stall


def _memcg_room(p: Task, n: int):
    """Pages that still fit under every ancestor's memory.max, and the tightest memcg."""
    room, tight = INF, None
    for a in p.memcg.ancestors():
        if a.max - a.usage < room:
            room, tight = a.max - a.usage, a
    return (n if room == INF else int(room)), (tight if room < n else None)


def over_high(mm: MM, p: Task, nr_pages: int) -> float:
    """After a charge: reclaim above memory.high, then sleep the penalty if still over. Returns seconds."""
    stall = 0.0
    for a in p.memcg.ancestors():
        if a.high == INF or a.usage <= a.high:
            continue
        MemcgTree.event(a, "high")
        sc = memcg_reclaim(mm, a, int(a.usage - a.high))
        stall += sc.cost_s
        stall += high_penalty_s(a.usage, a.high, nr_pages)
    return stall


def memory_max_write(mm: MM, m: Memcg, max_pages: float) -> None:
    """memory_max_write(): set memory.max, then reclaim and, failing that, OOM-kill until usage fits."""
    m.max = max_pages
    retries = MAX_RECLAIM_RETRIES
    while m.usage > m.max:
        if retries:
            # a round that frees nothing (try_to_free_mem_cgroup_pages() returning 0) uses up a retry
            retries -= not _reclaimed(mm, m, m.max)
            continue
        if not out_of_memory(mm, m):   # counts the memcg's `oom` event, as memcg_memory_event(MEMCG_OOM)
            break


def memory_high_write(mm: MM, m: Memcg, high_pages: float) -> float:
    """memory_high_write(): set memory.high, then reclaim the excess; never kills. Returns the reclaim's
    CPU seconds, spent in the writer's context."""
    m.high = high_pages
    retries = MAX_RECLAIM_RETRIES
    cost_s = 0.0
    while m.usage > m.high:
        before = m.usage
        cost_s += memcg_reclaim(mm, m, int(m.usage - m.high)).cost_s
        if not m.usage < before:
            if not retries:
                break
            retries -= 1
    return cost_s


def _reclaimed(mm: MM, m: Memcg, limit: float) -> bool:
    """One reclaim round towards ``limit``; whether it lowered the usage (a zswap store charges part back)."""
    before = m.usage
    memcg_reclaim(mm, m, int(m.usage - limit))
    return m.usage < before
