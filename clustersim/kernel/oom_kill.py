"""The OOM killer, global and per memcg (mm/oom_kill.c, cgroup-v2.rst memory.oom.group).

Badness is the task's RSS + swap + page tables plus oom_score_adj * total pages / 1000; -1000 is never
chosen. With memory.oom.group set on the victim's memcg or an ancestor inside the OOM domain, the whole
highest such group dies, except tasks with oom_score_adj -1000. A killed task frees everything it held.
"""

from __future__ import annotations

from .memcg import Memcg, MemcgTree
from .mm import MM, Task

OOM_SCORE_ADJ_MIN = -1000   # include/uapi/linux/oom.h: never chosen
OOM_SCORE_ADJ_MAX = 1000    # include/uapi/linux/oom.h: chosen first


def badness(mm: MM, p: Task) -> float:
    """oom_badness(): pages the task would free, adjusted by oom_score_adj."""
    if p.oom_score_adj <= OOM_SCORE_ADJ_MIN or not p.alive:
        return float("-inf")
    return p.rss_pages() + p.swap_pages() + p.pagetable_pages() \
        + p.oom_score_adj * mm.phys.total_pages / 1000.0


def out_of_memory(mm: MM, domain: Memcg | None) -> list[Task]:
    """Kill the worst task in ``domain`` (a memcg) or on the whole node (None); returns who died."""
    scope = domain.subtree() if domain is not None else mm.memcgs.root.subtree()
    if domain is not None:
        MemcgTree.event(domain, "oom")
    candidates = [p for m in scope for p in m.procs if p.alive]
    scored = [(badness(mm, p), -p.pid, p) for p in candidates]
    scored = [s for s in scored if s[0] != float("-inf")]
    if not scored:
        return []
    victim = max(scored, key=lambda s: (s[0], s[1]))[2]
    group = _oom_group(victim.memcg, domain)
    victims = [victim]
    if group is not None:
        # oom_kill_process() kills the victim, then every member of the group; the victim still holds
        # its mm then, so __oom_kill_process() counts it a second time (test_memcg_oom_group_score_events
        # reads oom_kill 3 after two deaths).
        victims += [p for m in group.subtree() for p in m.procs
                    if p.alive and p.oom_score_adj > OOM_SCORE_ADJ_MIN]
        MemcgTree.event(group, "oom_group_kill")
    for p in victims:
        MemcgTree.event(p.memcg, "oom_kill")
        mm.vmstat["oom_kill"] += 1
        p.kill()
    return list(dict.fromkeys(victims))


def _oom_group(m: Memcg, domain: Memcg | None) -> Memcg | None:
    """mem_cgroup_get_oom_group(): the highest memcg with oom.group set between m and the domain."""
    group = None
    for a in m.ancestors():
        if a.oom_group:
            group = a
        if a is domain:
            break
    return group
