"""cgroup v2 memory controller: the memcg tree, hierarchical page counters, limits, protection, events,
memory.stat.

Follows Documentation/admin-guide/cgroup-v2.rst and mm/memcontrol.c, mm/page_counter.c (Linux 6.x):
usage is charged up the tree like page_counter; memory.events are hierarchical (memory_localevents off);
effective min/low come from page_counter.c effective_protection() with memory_recursiveprot off by default;
memory.stat is recounted from the page table with memory_stat_format()'s field names.
Left out: memory.swap.high, per-cpu charge batching (charges are exact), kmem accounting beyond page tables
and the zswap pool.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..units import HPAGE_PAGES, PAGE_SIZE
from .errors import KernelError, size_arg
from .mm import MM
from .pagetable import CACHE, DATA, LAZY, QUEUED, SWAP, ZERO
from .psi import PsiGroup

INF = float("inf")
LIMITS = ("min", "low", "high", "max", "swap_max", "zswap_max")
EVENTS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")
# memory.stat's event counters that the model counts where the event happens, charged to the memcg of the
# page (cgroup-v2.rst, memory.stat; mm/memcontrol.c memcg_vm_event_stat). Each also counts in /proc/vmstat,
# so over all memcgs they sum to the node's. pgscan_*/pgsteal_* are node-wide only in the model.
MEMCG_EVENTS = ("pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc", "thp_swpout_fallback",
                "workingset_refault_anon", "workingset_refault_file", "pswpin", "pswpout")
# memory.high: mm/memcontrol.c MEMCG_MAX_HIGH_DELAY_JIFFIES (2 s) and the HZ/100 floor below which no sleep.
HIGH_DELAY_CAP_S = 2.0
HIGH_DELAY_FLOOR_S = 0.010
MEMCG_CHARGE_BATCH = 64            # include/linux/memcontrol.h: pages charged per batch
MEMCG_DELAY_PRECISION_SHIFT = 20   # mm/memcontrol.c: overage = (usage - high) << 20 / high
MEMCG_DELAY_SCALING_SHIFT = 14     # mm/memcontrol.c: penalty = overage^2 * HZ >> 20 >> 14
# so the penalty is 2^(20 - 14) * f^2 seconds for f = (usage - high) / high
HIGH_DELAY_SCALE = float(2 ** (MEMCG_DELAY_PRECISION_SHIFT - MEMCG_DELAY_SCALING_SHIFT))


@dataclass(eq=False)
class Memcg:
    """One cgroup's memory controller state. Sizes are pages; limits may be INF ('max')."""

    idx: int
    path: str
    parent: Memcg | None
    children: list[Memcg] = field(default_factory=list)
    min: float = 0
    low: float = 0
    high: float = INF
    max: float = INF
    swap_max: float = INF
    zswap_max: float = INF
    oom_group: bool = False
    usage: int = 0
    peak: int = 0
    swap_usage: int = 0
    swap_peak: int = 0
    zswap_usage: int = 0
    events_local: Counter = field(default_factory=Counter)
    counters: Counter = field(default_factory=Counter)
    procs: list = field(default_factory=list)
    emin: float = 0
    elow: float = 0
    psi: PsiGroup = field(default_factory=PsiGroup)   # memory.pressure of the subtree (psi.py)

    chain: tuple[Memcg, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # A memcg never changes parent, so its ancestor chain is fixed at mkdir; every charge walks it.
        self.chain = (self, *self.parent.chain) if self.parent is not None else (self,)

    def ancestors(self) -> tuple[Memcg, ...]:
        """This memcg and every parent up to the root."""
        return self.chain

    def subtree(self) -> list[Memcg]:
        """This memcg and all descendants, parents first."""
        out, stack = [], [self]
        while stack:
            m = stack.pop()
            out.append(m)
            stack.extend(reversed(m.children))
        return out

    def is_ancestor_of(self, other: Memcg) -> bool:
        return any(a is self for a in other.ancestors())


def no_internal_process(m: Memcg, child: str = "") -> None:
    """cgroup v2's no-internal-process rule (cgroup-v2.rst, "No Internal Process Constraint").

    A non-root cgroup that distributes a domain controller to its children cannot hold processes. In this
    model every non-root cgroup enables the memory controller for its children, so a non-root cgroup holds
    either processes or children, never both: spawning into one with children is EBUSY, and so is a child
    of one with processes (Linux refuses the subtree_control write that would enable the controller). The
    root is exempt.
    """
    if m.parent is None:
        return
    if not child and m.children:
        raise KernelError("EBUSY", f"cgroup {m.path!r} has child cgroups with the memory controller; "
                                   "processes live in the leaves (no internal processes)")
    if child and any(p.alive for p in m.procs):
        raise KernelError("EBUSY", f"cgroup {child!r}: parent {m.path!r} holds processes; a cgroup with "
                                   "the memory controller on for its children cannot (no internal processes)")


class MemcgTree:
    """All memcgs of a node, the root at index 0."""

    def __init__(self) -> None:
        self.root = Memcg(0, "", None)
        self.by_path: dict[str, Memcg] = {"": self.root}
        self.all: list[Memcg] = [self.root]

    def get(self, path: str) -> Memcg:
        path = path.strip("/")
        if path not in self.by_path:
            raise KernelError("ENOENT", f"cgroup {path!r} does not exist")
        return self.by_path[path]

    def create(self, path: str) -> Memcg:
        """mkdir: a child of an existing cgroup, with the default (unlimited, unprotected) settings."""
        path = path.strip("/")
        if not path or any(part in ("", ".", "..") for part in path.split("/")):
            raise KernelError("EINVAL", f"cgroup path {path!r} is not a valid name")
        parent_path = path.rpartition("/")[0]
        if parent_path not in self.by_path:
            raise KernelError("ENOENT", f"cgroup {path!r}: parent {parent_path!r} does not exist")
        parent = self.by_path[parent_path]
        no_internal_process(parent, child=path)
        m = Memcg(len(self.all), path, parent)
        parent.children.append(m)
        self.by_path[path] = m
        self.all.append(m)
        return m

    # --- page_counter ------------------------------------------------------------------------------
    @staticmethod
    def charge(m: Memcg, n: int) -> None:
        """Charge (or with n < 0, uncharge) n pages to m and its ancestors."""
        for a in m.ancestors():
            a.usage += n
            a.peak = max(a.peak, a.usage)
            assert a.usage >= 0, f"memcg {a.path!r} usage below zero"

    @staticmethod
    def charge_swap(m: Memcg, n: int) -> None:
        for a in m.ancestors():
            a.swap_usage += n
            a.swap_peak = max(a.swap_peak, a.swap_usage)
            assert a.swap_usage >= 0

    @staticmethod
    def charge_zswap(m: Memcg, n: int) -> None:
        for a in m.ancestors():
            a.zswap_usage += n

    @staticmethod
    def over_max(m: Memcg, n: int) -> Memcg | None:
        """The highest memcg whose memory.max a charge of n pages would exceed, or None."""
        hit = None
        for a in m.ancestors():
            if a.usage + n > a.max:
                hit = a
        return hit

    @staticmethod
    def swap_room(m: Memcg) -> float:
        """Pages m may still swap under every ancestor's memory.swap.max."""
        return min(a.swap_max - a.swap_usage for a in m.ancestors())

    @staticmethod
    def event(m: Memcg, name: str) -> None:
        """memory.events are hierarchical: count in m, read summed over its subtree."""
        m.events_local[name] += 1

    def events(self, m: Memcg) -> dict[str, int]:
        total = Counter()
        for d in m.subtree():
            total.update(d.events_local)
        return {e: total.get(e, 0) for e in EVENTS}

    def stat_counter(self, m: Memcg, name: str) -> int:
        return sum(d.counters.get(name, 0) for d in m.subtree())

    # --- protection (mm/page_counter.c) --------------------------------------------------------------
    def compute_protection(self, root: Memcg, recursive: bool = False) -> None:
        """Effective min/low of every memcg below ``root``; the reclaim root's own protection is ignored."""
        root.emin = root.elow = 0
        stack = [root]
        while stack:
            parent = stack.pop()
            kids = parent.children
            if not kids:
                continue
            for attr, eattr in (("min", "emin"), ("low", "elow")):
                sib = sum(min(k.usage, getattr(k, attr)) for k in kids)
                p_eff = INF if parent is root else getattr(parent, eattr)
                for k in kids:
                    setattr(k, eattr, _effective(k.usage, parent.usage, getattr(k, attr), p_eff, sib,
                                                 recursive))
            stack.extend(kids)


def _effective(usage: int, parent_usage: int, setting: float, parent_eff: float, siblings: float,
               recursive: bool) -> float:
    """effective_protection(): claimed protection, scaled down when siblings overcommit the parent's."""
    protected = min(usage, setting)
    if siblings > parent_eff:
        return protected * parent_eff / siblings
    ep = protected
    if recursive and parent_eff != INF and parent_eff > siblings and parent_usage > siblings \
            and usage > protected:
        ep += (parent_eff - siblings) * (usage - protected) / (parent_usage - siblings)
    return ep


def high_penalty_s(usage: int, high: float, nr_pages: int) -> float:
    """mem_cgroup_handle_over_high() summed over the returns to user space of one call.

    The kernel charges in MEMCG_CHARGE_BATCH (64-page) batches and, on the return to user space after each,
    sleeps 64*f^2*HZ jiffies * batch/64 with f = (usage - high) / high, capped at 2 s, and not at all under
    10 ms. A call that charged ``nr_pages`` and left the memcg at ``usage`` crossed the overage in batches:
    the k-th batch ended at usage - over + 64k, where over = the pages it charged above high.
    """
    if high == INF or usage <= high or high <= 0:
        return 0.0
    over = min(nr_pages, usage - high)
    ends = usage - over + MEMCG_CHARGE_BATCH * np.arange(1, -(-over // MEMCG_CHARGE_BATCH) + 1)
    f = (np.minimum(ends, usage) - high) / high
    delay = np.minimum(HIGH_DELAY_SCALE * f * f, HIGH_DELAY_CAP_S)   # seconds (jiffies / HZ) per full batch
    return float(delay[delay > HIGH_DELAY_FLOOR_S].sum())


def parse_limit(key: str, value: object) -> float:
    """A memcg limit in pages: 'max' or None is unlimited; sizes round down to pages like the kernel."""
    if value is None or value == "max":
        return INF
    return size_arg(key, value) // PAGE_SIZE


def local_zswap(mm: MM, m: Memcg) -> int:
    """zswap pool pages charged to m's subtree."""
    sw = mm.swap
    if sw.kind != "zswap":
        return 0
    return sum(math.ceil(sw.pool_stored.get(d.idx, 0) / sw.ratio) for d in m.subtree())


def memcg_stat(mm: MM, m: Memcg) -> dict[str, int]:
    """memory.stat for m's subtree, sizes in bytes, Linux field names."""
    pt, n = mm.pt, mm.pt.nrows
    rows = np.flatnonzero(np.isin(pt.memcg[:n], [d.idx for d in m.subtree()]))
    c = pt.cnt[rows]
    is_file = c[:, CACHE] > 0
    anon_rows = rows[~is_file]
    anon_fp = np.where(pt.folio[anon_rows] >= 0, HPAGE_PAGES, pt.present(anon_rows))
    active = pt.active[rows]
    anon_plain = c[:, ZERO] + c[:, DATA] + c[:, QUEUED]
    lazy_on_file = not mm.profile.lazyfree_needs_swap
    lazy = c[:, LAZY]
    stat = {
        "anon": int(anon_fp.sum()),
        "file": int(c[:, CACHE].sum()),
        "anon_thp": int(pt.pmd[rows].sum()) * HPAGE_PAGES,
        "pagetables": int(pt.pt[rows].sum()),
        "swap": int(c[:, SWAP].sum()),
        "zswap": local_zswap(mm, m),
        "active_anon": int(anon_plain[active].sum()),
        "inactive_anon": int(anon_plain[~active].sum()) + (0 if lazy_on_file else int(lazy.sum())),
        "active_file": int(c[active, CACHE].sum()),
        "inactive_file": int(c[~active, CACHE].sum()) + (int(lazy.sum()) if lazy_on_file else 0),
        "lazyfree": int(lazy.sum()),
    }
    out = {k: v * PAGE_SIZE for k, v in stat.items()}
    for counter in MEMCG_EVENTS:
        out[counter] = mm.memcgs.stat_counter(m, counter)
    return out
