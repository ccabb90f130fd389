"""Mapping and unmapping pages: the one place where page table, pageblocks, charges and swap change together.

Mirrors what mm/memory.c (zap_pte_range, do_anonymous_page) and mm/rmap.c do to the counters. Every caller
that changes page states goes through these helpers, so pages are conserved and charges equal usage.
"""

from __future__ import annotations

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES
from .mm import MM
from .pagetable import CACHE, NONE, PRESENT_I32, SWAP, row_footprint, set_page, uniq


class charging:
    """Charge memcgs with the change in footprint and swap of ``rows`` made inside the ``with`` block.

    A class rather than a @contextmanager generator: it wraps every fault and zap, where the generator's
    set-up cost was a visible share of a small call. Nothing is charged if the block raises.
    """

    __slots__ = ("fp", "mm", "rows", "sw")

    def __init__(self, mm: MM, rows: np.ndarray) -> None:
        self.mm, self.rows = mm, rows

    def __enter__(self) -> None:
        pt = self.mm.pt
        self.fp, self.sw = _snapshot(pt.folio, pt.npres, pt.fmapped, pt.pt, pt.cnt, self.rows)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return
        mm, pt, rows, fp, sw = self.mm, self.mm.pt, self.rows, self.fp, self.sw
        owner, pages, swap_pages = _deltas(pt.folio, pt.npres, pt.fmapped, pt.pt, pt.cnt, pt.memcg, rows, fp, sw)
        if owner >= 0:   # the common case: the rows of one task's mappings
            _charge(mm, int(owner), int(pages), int(swap_pages))
            return
        memcgs = pt.memcg[rows]   # fp and sw now hold the per-row changes
        for m_idx in uniq(memcgs[(fp != 0) | (sw != 0)]):
            sel = memcgs == m_idx
            _charge(mm, int(m_idx), int(fp[sel].sum()), int(sw[sel].sum()))


@njit
def _snapshot(folio, npres, fmapped, has_pt, cnt, rows):
    """Footprint (as PageTable.footprint) and swapped pages of each row."""
    fp = np.empty(rows.shape[0], dtype=np.int64)
    sw = np.empty(rows.shape[0], dtype=np.int64)
    for i in range(rows.shape[0]):
        fp[i] = row_footprint(folio, npres, fmapped, has_pt, rows[i])
        sw[i] = cnt[rows[i], SWAP]
    return fp, sw


@njit
def _deltas(folio, npres, fmapped, has_pt, cnt, memcg, rows, fp, sw):
    """Turn the snapshot into per-row changes in place; returns (the one memcg owning every row, or -1 if
    several do, total footprint change, total swap change)."""
    owner, pages, swap_pages = -1, 0, 0
    after_fp, after_sw = _snapshot(folio, npres, fmapped, has_pt, cnt, rows)
    for i in range(rows.shape[0]):
        fp[i] = after_fp[i] - fp[i]
        sw[i] = after_sw[i] - sw[i]
        pages += fp[i]
        swap_pages += sw[i]
        m = memcg[rows[i]]
        owner = m if i == 0 else (owner if m == owner else -2)
    return (owner if owner >= 0 else -1), pages, swap_pages


def _charge(mm: MM, m_idx: int, pages: int, swap_pages: int) -> None:
    m = mm.memcgs.all[m_idx]
    if pages:
        mm.memcgs.charge(m, pages)
    if swap_pages:
        mm.memcgs.charge_swap(m, swap_pages)


def map_pages(mm: MM, flat: np.ndarray, state: int, blocks: np.ndarray, *, all_none: bool = False) -> None:
    """Make NONE/SWAP pages of PTE-mapped rows present in ``state`` on the given pageblocks.

    ``all_none``: the caller knows no page is SWAP (REQUIRES), so no swap slot is looked for.
    """
    pt = mm.pt
    if all_none:   # move_states(flat, NONE, state) and the blocks written in the same compiled pass
        _place_none(pt.flat_state, pt.cnt, pt.npres, PRESENT_I32, pt.flat_block, flat, state, blocks)
        return
    old = pt.set_states(flat, state)
    was_swap = old == SWAP
    if was_swap.any():
        mm.swap.release(mm, flat[was_swap])
    pt.flat_block[flat] = blocks


@njit
def _place_none(fs, cnt, npres, present, blk, flat, state, blocks):
    """NONE pages ``flat`` become ``state`` on ``blocks`` (PageTable.move_states, then the blocks)."""
    gain = present[state] - present[NONE]
    for i in range(flat.shape[0]):
        f = flat[i]
        r = f // HPAGE_PAGES
        cnt[r, NONE] -= 1
        cnt[r, state] += 1
        npres[r] += gain
        fs[f] = state
        blk[f] = blocks[i]


def unmap_pages(mm: MM, flat: np.ndarray, new_state: int = NONE) -> np.ndarray:
    """Zap distinct pages to NONE (or SWAP): free their memory, or keep it in the folio until the folio is
    free. Returns the old states.

    4 KiB pages go back to their pageblocks at once; subpages of a folio stay allocated in it (the
    deferred-split case) until none of them is mapped, when the folio is freed.
    """
    pt = mm.pt
    old, loose, swapped, folio_rows = _zap(pt.flat_state, pt.cnt, pt.npres, PRESENT_I32, pt.flat_block, pt.folio,
                                           pt.fmapped, flat, new_state)
    if len(loose):
        mm.phys.free_pages(loose)
    if new_state == NONE and len(swapped):
        mm.swap.release(mm, swapped)
    if len(folio_rows):
        free_folios(mm, folio_rows[pt.fmapped[folio_rows] == 0])
    return old


@njit
def _zap(fs, cnt, npres, present, blk, folio, fmapped, flat, new_state):
    """Set the pages' states (as PageTable.set_states) and unmap the present ones: (old states, blocks of
    4 KiB pages to free, pages that were swapped, sorted rows whose folio lost mapped subpages)."""
    old = np.empty(flat.shape[0], dtype=np.uint8)
    loose = np.empty(flat.shape[0], dtype=blk.dtype)
    swapped = np.empty(flat.shape[0], dtype=np.int64)
    rows = np.empty(flat.shape[0], dtype=np.int64)
    nloose = nswap = nrows = 0
    for i in range(flat.shape[0]):
        f = flat[i]
        r = f // HPAGE_PAGES
        o = old[i] = set_page(fs, cnt, npres, present, f, new_state)
        if o == SWAP:
            swapped[nswap] = f
            nswap += 1
        if not present[o]:
            continue
        if blk[f] == folio[r]:
            fmapped[r] -= 1
            rows[nrows] = r
            nrows += 1
        else:
            loose[nloose] = blk[f]
            nloose += 1
        blk[f] = -1
    return old, loose[:nloose], swapped[:nswap], np.unique(rows[:nrows])


def free_folios(mm: MM, rows: np.ndarray) -> None:
    """Free the THP folios of rows that map none of their pages any more."""
    if len(rows) == 0:
        return
    pt = mm.pt
    assert not pt.fmapped[rows].any(), "freeing a folio that still maps pages"
    mm.phys.free_blocks_thp(pt.folio[rows])
    pt.folio[rows] = -1
    pt.pmd[rows] = False
    pt.deferred[rows] = False


def ensure_page_tables(mm: MM, rows: np.ndarray) -> None:
    """Allocate a PTE table (an unmovable page) for rows that have none."""
    pt = mm.pt
    need = rows[~pt.pt[rows]]
    if len(need) == 0:
        return
    blocks = mm.phys.alloc_pages(len(need), movable=False)
    if len(blocks) < len(need):
        raise MemoryError("no page for a page table")  # callers reserve memory first
    pt.pt[need] = True
    pt.pt_block[need] = blocks


def free_page_tables(mm: MM, rows: np.ndarray) -> None:
    """Free PTE tables of rows (munmap/exit: free_pgtables)."""
    pt = mm.pt
    has = rows[pt.pt[rows]]
    if len(has) == 0:
        return
    mm.phys.free_pages(pt.pt_block[has], movable=False)
    pt.pt[has] = False
    pt.pt_block[has] = -1


def lru_add_pages(mm: MM, flat: np.ndarray) -> None:
    """lru_add() for the rows of pages ``flat`` (a row with many pages gets the same stamp)."""
    _stamp_rows(mm.pt.atime, flat, mm.time)


@njit
def _stamp_rows(atime, flat, t):
    for f in flat:
        atime[f // HPAGE_PAGES] = t


def lru_add_ranges(mm: MM, first: np.ndarray, n: np.ndarray) -> None:
    """lru_add_pages() for the pages of ranges (first flat page, page count): each row they cover."""
    _stamp_ranges(mm.pt.atime, first, n, mm.time)


@njit
def _stamp_ranges(atime, first, n, t):
    for i in range(first.shape[0]):
        if n[i] > 0:
            atime[first[i] // HPAGE_PAGES:(first[i] + n[i] - 1) // HPAGE_PAGES + 1] = t


def lru_add(mm: MM, rows: np.ndarray, *, active: bool = False) -> None:
    """Note an access: recency for reclaim order. New anon pages start inactive (Linux 5.9+). ``rows`` may
    repeat a row."""
    mm.pt.atime[rows] = mm.time
    if active:
        mm.pt.active[rows] = True


def is_file_row(mm: MM, rows: np.ndarray) -> np.ndarray:
    """True for rows of page-cache mappings."""
    return mm.pt.cnt[rows, CACHE] > 0
