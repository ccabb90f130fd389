"""Page reclaim: kswapd, direct reclaim, memcg limit reclaim and memory.reclaim, with memcg protection.

Follows mm/vmscan.c (Linux 6.x, classic LRU): priorities 12 down to 0, at each one every memcg of the target
subtree scans lru_size >> priority, reduced for memcgs above their effective protection in proportion to the
protected share (apply_proportional_protection), skipping memcgs below memory.min and, until a second pass,
below memory.low (that pass records memory.events `low`). Within a memcg: the inactive file list (page
cache and, since 4.12, lazyfree pages) goes first while it has pages to scan at this priority (cache_trim
mode); otherwise anon pages go to swap if a device has room and swappiness allows; then the memcg-aware
shrinkers (deferred split, underused THP, MADV_SPLITTABLE queue) scan their objects in proportion. THPs are
split before swap-out. LRU order is per vhp: inactive before active, oldest access first (one accessed bit
per PMD, as for a THP). Left out: MGLRU, refault-distance activation, writeback throttling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES
from .huge_memory import defer_split, shrink_deferred, shrink_underused, split_folio, split_pmd, underused_limit
from .memcg import Memcg, MemcgTree
from .memory import charging, unmap_pages
from .mm import MM
from .pagetable import CACHE, DATA, LAZY, QUEUED, SWAP, ZERO, row_total, state_mask, uniq, uniq_rows

DEF_PRIORITY = 12          # include/linux/mmzone.h: reclaim starts scanning lru_size >> 12
SWAP_CLUSTER_MAX = 32      # include/linux/swap.h: pages reclaim works on per batch
DEFAULT_SEEKS = 2          # include/linux/shrinker.h: a shrinker's default cost to recreate an object
MAX_RECLAIM_RETRIES = 16   # mm/internal.h: reclaim rounds without progress before OOM or memory.reclaim's EAGAIN


@dataclass
class ScanControl:
    """One reclaim invocation (struct scan_control)."""

    root: Memcg
    nr_to_reclaim: int
    may_swap: bool = True
    is_global: bool = False
    memcg_low_reclaim: bool = False
    memcg_low_skipped: bool = False
    nr_reclaimed: int = 0
    nr_scanned: int = 0
    cost_s: float = 0.0
    # memcg idx -> its rows in LRU order. Reclaim changes no row's recency (only accesses and faults do),
    # so the order found at the first priority holds for every later one of the same invocation.
    lru: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.nr_reclaimed >= self.nr_to_reclaim


def shrink(mm: MM, root: Memcg, nr_to_reclaim: int, *, may_swap: bool = True,
           is_global: bool = False) -> ScanControl:
    """Reclaim ``nr_to_reclaim`` pages from ``root``'s subtree; retries below memory.low if it must."""
    sc = ScanControl(root, nr_to_reclaim, may_swap, is_global)
    rows_by_memcg = _rows_by_memcg(mm, root)
    mm.memcgs.compute_protection(root)
    _priorities(mm, sc, rows_by_memcg)
    if not sc.done and sc.memcg_low_skipped:
        sc.memcg_low_reclaim = True
        _priorities(mm, sc, rows_by_memcg)
    return sc


def _rows_by_memcg(mm: MM, root: Memcg) -> dict[int, np.ndarray]:
    """The rows reclaim can act on of each memcg in ``root``'s subtree that owns rows, ascending.

    Only rows with present pages or a THP folio are kept: reclaim takes present pages, and its shrinkers
    act on folios, and nothing in one invocation adds pages to a row, so the rows left out would only be
    scanned for nothing (a heap's VMA reserves several times the rows it maps). A memcg whose rows are
    all left out keeps an empty entry: it is still visited, for its protection checks and events.
    """
    pt = mm.pt
    member = np.zeros(len(mm.memcgs.all), dtype=np.bool_)
    member[[m.idx for m in root.subtree()]] = True
    rows, bounds, owns = _group_rows(pt.memcg, pt.npres, pt.folio, pt.nrows, member)
    return {int(i): rows[bounds[i]:bounds[i + 1]] for i in np.flatnonzero(owns)}


@njit
def _group_rows(memcg, npres, folio, nrows, member):
    """Rows below ``nrows`` of the ``member`` memcgs with present pages or a folio, grouped by memcg (a
    counting sort, ascending within each group): (rows, group bounds by memcg index, memcgs owning rows)."""
    nm = member.shape[0]
    owns = np.zeros(nm, dtype=np.bool_)
    bounds = np.zeros(nm + 1, dtype=np.int64)
    for r in range(nrows):
        m = memcg[r]
        if m >= 0 and member[m]:
            owns[m] = True
            if npres[r] > 0 or folio[r] >= 0:
                bounds[m + 1] += 1
    for i in range(nm):
        bounds[i + 1] += bounds[i]
    fill = bounds[:nm].copy()
    rows = np.empty(bounds[nm], dtype=np.int64)
    for r in range(nrows):
        m = memcg[r]
        if m >= 0 and member[m] and (npres[r] > 0 or folio[r] >= 0):
            rows[fill[m]] = r
            fill[m] += 1
    return rows, bounds, owns


def _priorities(mm: MM, sc: ScanControl, rows_by_memcg: dict[int, np.ndarray]) -> None:
    for priority in range(DEF_PRIORITY, -1, -1):
        for m in sc.root.subtree():
            rows = rows_by_memcg.get(m.idx)
            if rows is None:
                continue
            protection = _protection(sc, m)
            if protection is None:
                continue
            _shrink_memcg(mm, sc, m, rows, priority, protection)
            if sc.done:
                return


def _protection(sc: ScanControl, m: Memcg) -> float | None:
    """Pages of m that reclaim must respect now, or None to skip m (mem_cgroup_below_min/low)."""
    if m is sc.root:
        return 0.0
    if m.usage <= m.emin:
        return None
    if m.usage <= m.elow:
        if not sc.memcg_low_reclaim:
            sc.memcg_low_skipped = True
            return None
        MemcgTree.event(m, "low")
    return m.emin if sc.memcg_low_reclaim or m.elow <= m.emin else m.elow


def _scan_target(size: int, priority: int, usage: int, protection: float) -> int:
    """get_scan_count(): lru_size >> priority, less the protected share for a protected memcg."""
    if protection > 0:
        cgroup_size = max(usage, protection)
        size = int(size - size * protection / (cgroup_size + 1))
        size = max(size, SWAP_CLUSTER_MAX)
    return size >> priority


def _shrink_memcg(mm: MM, sc: ScanControl, m: Memcg, rows: np.ndarray, priority: int,
                  protection: float) -> None:
    pt = mm.pt
    want = sc.nr_to_reclaim - sc.nr_reclaimed
    file_states = (CACHE, LAZY) if _lazy_on_file_lru(mm, sc) else (CACHE,)
    file_size = pt.state_total(rows, file_states)
    nr_file = _scan_target(file_size, priority, m.usage, protection)
    if nr_file > 0:
        _reclaim_file(mm, sc, m, rows, min(nr_file, max(want, SWAP_CLUSTER_MAX)), file_states)
    elif _may_swap(mm, sc, m):
        anon_size = pt.state_total(rows, (DATA, ZERO))
        nr_anon = _scan_target(anon_size, priority, m.usage, protection)
        if sc.is_global and mm.vm.swappiness == 0 and file_size > 0:
            nr_anon = 0
        if nr_anon > 0:
            _swap_out(mm, sc, m, rows, min(nr_anon, max(want, SWAP_CLUSTER_MAX)))
    _shrink_slab(mm, sc, rows, priority)   # shrink_node_memcgs(): LRU then slab, for every memcg visited


def _lazy_on_file_lru(mm: MM, sc: ScanControl) -> bool:
    """Since 4.12 lazyfree pages sit on the inactive file LRU; in 4.5 they need anon scanning (swap)."""
    if not mm.profile.lazyfree_needs_swap:
        return True
    return sc.may_swap and mm.swap.enabled


def _may_swap(mm: MM, sc: ScanControl, m: Memcg) -> bool:
    return sc.may_swap and mm.swap.enabled and mm.swap.free > 0 and mm.memcgs.swap_room(m) > 0 \
        and (mm.vm.swappiness > 0 or not sc.is_global)


def _lru_order(mm: MM, rows: np.ndarray) -> np.ndarray:
    """Rows in reclaim order: inactive before active, then least recently accessed first."""
    return lru_rows(np.asarray(rows, dtype=np.int64), mm.pt.atime, mm.pt.active)


@njit
def lru_rows(rows, atime, active):
    """``rows`` sorted as rows[np.lexsort((atime[rows], active[rows]))]: a stable sort by access time, then
    the inactive rows before the active ones, each in that order (ties stay in the given order)."""
    order = np.argsort(atime[rows], kind="mergesort")
    out = np.empty_like(rows)
    k = 0
    for want_active in (False, True):
        for j in order:
            if active[rows[j]] == want_active:
                out[k] = rows[j]
                k += 1
    return out


def _take(mm: MM, sc: ScanControl, m: Memcg, rows: np.ndarray, states: tuple[int, ...], n: int) -> np.ndarray:
    """Flat indices of the first ``n`` pages in ``states`` of m's ``rows``, walking them in LRU order."""
    pt = mm.pt
    if m.idx not in sc.lru:
        sc.lru[m.idx] = _lru_order(mm, rows)
    chosen = _first_rows(pt.cnt, sc.lru[m.idx], state_mask(states), n)
    return np.sort(pt.pages_in_state(chosen, states, limit=n))   # the batch, taken in LRU order


@njit
def _first_rows(cnt, lru, mask, n):
    """The rows of ``lru`` (in that order) holding pages in the ``mask`` states, up to and including the one
    that brings their pages to ``n`` (all of them if they hold fewer; the first one if n <= 0): the walk
    down an LRU list stops once it has its batch, so the rows after it are never counted."""
    out = np.empty(lru.shape[0], dtype=np.int64)
    k, total = 0, 0
    for r in lru:
        have = row_total(cnt, r, mask)
        if have > 0:
            out[k] = r
            k += 1
            total += have
            if total >= n:
                break
    return out[:k]


def _reclaim_file(mm: MM, sc: ScanControl, m: Memcg, rows: np.ndarray, n: int, states: tuple[int, ...]) -> None:
    """Drop clean page cache and discard clean lazyfree pages (whole lazyfree THPs stay unsplit)."""
    pt = mm.pt
    flat = _take(mm, sc, m, rows, states, n)
    if len(flat) == 0:
        return
    touched = uniq_rows(flat)
    folio = touched[pt.folio[touched] >= 0]
    whole = folio[pt.cnt[folio, LAZY] == pt.present(folio)]
    partial = np.setdiff1d(folio, whole)
    if len(partial):   # lazy_free_split: part of a THP was freed lazily; split it only now
        split_folio(mm, partial)
        sc.cost_s += len(partial) * mm.costs.split_folio_reclaim_s
    if len(whole):
        flat = np.union1d(flat, pt.pages_in_state(whole, (LAZY,)))
    with charging(mm, touched):
        old = unmap_pages(mm, flat)
    lazy = int(np.count_nonzero(old == LAZY))
    mm.vmstat["pglazyfreed"] += lazy
    _count(m, "pglazyfreed", lazy)   # the rows are m's (_rows_by_memcg), so are their pages
    _account(mm, sc, len(flat))


def _swap_out(mm: MM, sc: ScanControl, m: Memcg, rows: np.ndarray, n: int) -> None:
    """Swap out the coldest anon pages of m; THPs are split first."""
    pt = mm.pt
    n = int(min(n, mm.swap.free, mm.memcgs.swap_room(m)))
    flat = _take(mm, sc, m, rows, (DATA, ZERO), n)
    if len(flat) == 0:
        return
    touched = uniq_rows(flat)
    folio = touched[pt.folio[touched] >= 0]
    if len(folio):
        split_folio(mm, folio)
        mm.vmstat["thp_swpout_fallback"] += len(folio)
        _count(m, "thp_swpout_fallback", len(folio))   # one event per folio
        sc.cost_s += len(folio) * mm.costs.split_folio_reclaim_s
    with charging(mm, touched):
        unmap_pages(mm, flat, SWAP)
        mm.swap.store(mm, m.idx, len(flat))
    mm.vmstat["pswpout"] += len(flat)
    _count(m, "pswpout", len(flat))
    sc.cost_s += mm.swap.swapout_cost_s(mm, len(flat))
    _account(mm, sc, len(flat))


def _shrink_slab(mm: MM, sc: ScanControl, rows: np.ndarray, priority: int) -> None:
    """Memcg-aware shrinkers: do_shrink_slab() scans freeable * 4 / seeks >> priority objects."""
    pt = mm.pt
    deferred, underused, queued = _slab_freeable(pt.deferred, pt.folio, pt.cnt, rows, underused_limit(mm))
    shrinkers = (
        (deferred, lambda k: shrink_deferred(mm, rows, k)),
        (underused, lambda k: shrink_underused(mm, rows, k)),
        (queued, lambda k: zap_splittable(mm, rows, k)),
    )
    for freeable, scan in shrinkers:
        if freeable == 0:
            continue
        nr = max(1, (freeable * 4 // DEFAULT_SEEKS) >> priority)
        freed = scan(min(nr, freeable))
        if freed:
            _account(mm, sc, freed)


@njit
def _slab_freeable(deferred, folio, cnt, rows, zero_limit):
    """The three shrinkers' objects among ``rows`` in one pass: folios queued for deferred split, underused
    folios (more than ``zero_limit`` zero-filled subpages, as underused_rows) and rows with queued pages."""
    n_deferred = n_underused = n_queued = 0
    for r in rows:
        n_deferred += deferred[r]
        n_underused += folio[r] >= 0 and cnt[r, ZERO] > zero_limit
        n_queued += cnt[r, QUEUED] > 0
    return n_deferred, n_underused, n_queued


def zap_splittable(mm: MM, rows: np.ndarray, limit: int) -> int:
    """Reclaim the MADV_SPLITTABLE queue like MADV_DONTNEED: zap queued pages, splitting partial THPs."""
    pt = mm.pt
    queued = rows[pt.cnt[rows, QUEUED] > 0]
    queued = queued[np.argsort(pt.atime[queued], kind="stable")][:limit]
    if len(queued) == 0:
        return 0
    before = int(pt.footprint(queued).sum())
    partial = queued[(pt.folio[queued] >= 0) & (pt.cnt[queued, QUEUED] < HPAGE_PAGES)]
    split_pmd(mm, partial)
    defer_split(mm, partial)
    flat = pt.pages_in_state(queued, (QUEUED,))
    with charging(mm, queued):
        unmap_pages(mm, flat)
    mm.vmstat["splittable_reclaimed"] += len(flat)
    return before - int(pt.footprint(queued).sum())


def _account(mm: MM, sc: ScanControl, pages: int) -> None:
    sc.nr_reclaimed += pages
    sc.nr_scanned += pages
    sc.cost_s += pages * mm.costs.reclaim_page_s


def _count(m: Memcg, counter: str, k: int) -> None:
    """Count ``k`` events of one memcg (none recorded for zero, as _count_memcg records none)."""
    if k:
        m.counters[counter] += k


def _count_memcg(mm: MM, flat: np.ndarray, counter: str) -> None:
    """Count an event per page, in the memcg charged for each page's row."""
    if len(flat) == 0:
        return
    memcgs = mm.pt.memcg[flat // HPAGE_PAGES]
    for m_idx, k in zip(*uniq(memcgs, return_counts=True), strict=True):
        mm.memcgs.all[int(m_idx)].counters[counter] += int(k)


# --- the three callers -------------------------------------------------------------------------------
def kswapd(mm: MM) -> float:
    """Background reclaim when free memory is below the low watermark, up to the high one."""
    phys = mm.phys
    if phys.nr_free >= phys.wmark_low:
        return 0.0
    sc = shrink(mm, mm.memcgs.root, phys.wmark_high - phys.nr_free, is_global=True)
    mm.vmstat["pgscan_kswapd"] += sc.nr_scanned
    mm.vmstat["pgsteal_kswapd"] += sc.nr_reclaimed
    return sc.cost_s


def direct_reclaim(mm: MM, nr_pages: int) -> ScanControl:
    """Reclaim in the allocating task: counted as allocstall, its time is the task's stall."""
    mm.vmstat["allocstall"] += 1
    sc = shrink(mm, mm.memcgs.root, max(nr_pages, SWAP_CLUSTER_MAX), is_global=True)
    mm.vmstat["pgscan_direct"] += sc.nr_scanned
    mm.vmstat["pgsteal_direct"] += sc.nr_reclaimed
    return sc


def memcg_reclaim(mm: MM, m: Memcg, nr_pages: int, *, may_swap: bool = True) -> ScanControl:
    """try_to_free_mem_cgroup_pages(): reclaim within m's subtree (limit hit or memory.reclaim)."""
    sc = shrink(mm, m, max(nr_pages, SWAP_CLUSTER_MAX) if nr_pages > 0 else 0, may_swap=may_swap)
    mm.vmstat["pgscan_direct"] += sc.nr_scanned
    return sc


def pageout_range(mm: MM, p, flat: np.ndarray) -> float:
    """MADV_PAGEOUT (5.4+): reclaim exactly these pages: discard lazyfree, swap anon if a device has room."""
    pt = mm.pt
    rows = uniq_rows(flat)
    sc = ScanControl(p.memcg, len(flat))
    split_folio(mm, rows[pt.folio[rows] >= 0])
    st = pt.flat_state[flat]
    lazy = flat[st == LAZY]
    with charging(mm, rows):
        unmap_pages(mm, lazy)
    mm.vmstat["pglazyfreed"] += len(lazy)
    _count_memcg(mm, lazy, "pglazyfreed")
    _account(mm, sc, len(lazy))
    if _may_swap(mm, sc, p.memcg):
        anon = flat[(st == DATA) | (st == ZERO)]
        anon = anon[: int(min(len(anon), mm.swap.free, mm.memcgs.swap_room(p.memcg)))]
        with charging(mm, rows):
            unmap_pages(mm, anon, SWAP)
            mm.swap.store(mm, p.memcg.idx, len(anon))
        mm.vmstat["pswpout"] += len(anon)
        _count_memcg(mm, anon, "pswpout")
        sc.cost_s += mm.swap.swapout_cost_s(mm, len(anon))
        _account(mm, sc, len(anon))
    return sc.cost_s
