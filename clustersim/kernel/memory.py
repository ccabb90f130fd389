"""Mapping and unmapping pages: the one place where page table, pageblocks, charges and swap change together.

Mirrors what mm/memory.c (zap_pte_range, do_anonymous_page) and mm/rmap.c do to the counters. Every caller
that changes page states goes through these helpers, so pages are conserved and charges equal usage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..jit import njit
from ..units import HPAGE_PAGES
from .pagetable import CACHE, IS_PRESENT, NONE, SWAP, uniq, uniq_rows

if TYPE_CHECKING:
    from .node import Node


def unique_rows(flat: np.ndarray) -> np.ndarray:
    """Sorted distinct rows of flat page indices."""
    return uniq_rows(flat)


class charging:
    """Charge memcgs with the change in footprint and swap of ``rows`` made inside the ``with`` block.

    A class rather than a @contextmanager generator: it wraps every fault and zap, where the generator's
    set-up cost was a visible share of a small call. Nothing is charged if the block raises.
    """

    __slots__ = ("fp", "node", "rows", "sw")

    def __init__(self, node: Node, rows: np.ndarray) -> None:
        self.node, self.rows = node, rows

    def __enter__(self) -> None:
        pt = self.node.pt
        self.fp, self.sw = _snapshot(pt.folio, pt.npres, pt.fmapped, pt.pt, pt.cnt, self.rows)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return
        node, pt, rows, fp, sw = self.node, self.node.pt, self.rows, self.fp, self.sw
        owner, pages, swap_pages = _deltas(pt.folio, pt.npres, pt.fmapped, pt.pt, pt.cnt, pt.memcg, rows, fp, sw)
        if owner >= 0:   # the common case: the rows of one task's mappings
            _charge(node, owner, pages, swap_pages)
            return
        memcgs = pt.memcg[rows]   # fp and sw now hold the per-row changes
        for m_idx in uniq(memcgs[(fp != 0) | (sw != 0)]):
            sel = memcgs == m_idx
            _charge(node, int(m_idx), int(fp[sel].sum()), int(sw[sel].sum()))


@njit
def _snapshot(folio, npres, fmapped, has_pt, cnt, rows):
    """Footprint (as PageTable.footprint) and swapped pages of each row."""
    fp = np.empty(rows.shape[0], dtype=np.int64)
    sw = np.empty(rows.shape[0], dtype=np.int64)
    for i in range(rows.shape[0]):
        r = rows[i]
        fp[i] = (HPAGE_PAGES if folio[r] >= 0 else 0) + npres[r] - fmapped[r] + has_pt[r]
        sw[i] = cnt[r, SWAP]
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


def _charge(node: Node, m_idx: int, pages: int, swap_pages: int) -> None:
    m = node.memcgs.all[m_idx]
    if pages:
        node.memcgs.charge(m, pages)
    if swap_pages:
        node.memcgs.charge_swap(m, swap_pages)


def map_pages(node: Node, flat: np.ndarray, state: int, blocks: np.ndarray, *, all_none: bool = False) -> None:
    """Make NONE/SWAP pages of PTE-mapped rows present in ``state`` on the given pageblocks.

    ``all_none``: the caller knows no page is SWAP (REQUIRES), so no swap slot is looked for.
    """
    pt = node.pt
    if all_none:
        pt.move_states(flat, NONE, state)
    else:
        old = pt.set_states(flat, state)
        was_swap = old == SWAP
        if was_swap.any():
            node.swap.release(node, flat[was_swap])
    pt.flat_block[flat] = blocks


def unmap_pages(node: Node, flat: np.ndarray, new_state: int = NONE) -> np.ndarray:
    """Zap pages to NONE (or SWAP): free their memory, or keep it in the folio until the folio is free.

    Returns the old states. 4 KiB pages go back to their pageblocks at once; subpages of a folio stay
    allocated in it (the deferred-split case) until none of them is mapped, when the folio is freed.
    """
    pt = node.pt
    rows = flat // HPAGE_PAGES
    old = pt.set_states(flat, new_state)
    present = IS_PRESENT[old]
    blocks = pt.flat_block[flat]
    of_folio = present & (blocks == pt.folio[rows])
    loose = present & ~of_folio
    if loose.any():
        node.phys.free_pages(blocks[loose])
    pt.flat_block[flat[present]] = -1
    if new_state == NONE:
        was_swap = old == SWAP
        if was_swap.any():
            node.swap.release(node, flat[was_swap])
    if of_folio.any():
        folio_rows, k = uniq(rows[of_folio], return_counts=True)
        pt.fmapped[folio_rows] -= k.astype(np.int32)
        free_folios(node, folio_rows[pt.fmapped[folio_rows] == 0])
    return old


def free_folios(node: Node, rows: np.ndarray) -> None:
    """Free the THP folios of rows that map none of their pages any more."""
    if len(rows) == 0:
        return
    pt = node.pt
    assert not pt.fmapped[rows].any(), "freeing a folio that still maps pages"
    node.phys.free_blocks_thp(pt.folio[rows])
    pt.folio[rows] = -1
    pt.pmd[rows] = False
    pt.deferred[rows] = False


def ensure_page_tables(node: Node, rows: np.ndarray) -> None:
    """Allocate a PTE table (an unmovable page) for rows that have none."""
    pt = node.pt
    need = rows[~pt.pt[rows]]
    if len(need) == 0:
        return
    blocks = node.phys.alloc_pages(len(need), movable=False)
    if len(blocks) < len(need):
        raise MemoryError("no page for a page table")  # callers reserve memory first
    pt.pt[need] = True
    pt.pt_block[need] = blocks


def free_page_tables(node: Node, rows: np.ndarray) -> None:
    """Free PTE tables of rows (munmap/exit: free_pgtables)."""
    pt = node.pt
    has = rows[pt.pt[rows]]
    if len(has) == 0:
        return
    node.phys.free_pages(pt.pt_block[has], movable=False)
    pt.pt[has] = False
    pt.pt_block[has] = -1


def lru_add(node: Node, rows: np.ndarray, *, active: bool = False) -> None:
    """Note an access: recency for reclaim order. New anon pages start inactive (Linux 5.9+). ``rows`` may
    repeat a row."""
    node.pt.atime[rows] = node.time
    if active:
        node.pt.active[rows] = True


def is_file_row(node: Node, rows: np.ndarray) -> np.ndarray:
    """True for rows of page-cache mappings."""
    return node.pt.cnt[rows, CACHE] > 0
