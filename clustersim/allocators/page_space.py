"""PageSpace: an allocator's heap as one page index space, with its belief about every 4 KiB page.

The heap VMAs an allocator mmapped are stitched into one index space of 4 KiB pages. Each page has one
``PageState`` (in use, free and backed, released, lazyfree, queued by MADV_SPLITTABLE, never touched), kept
in a numpy array with per-vhp (2 MiB slot) counts of each state: ranges.py changes them a batch at a time
in compiled loops, statistics and placement policies read them, and nothing walks pages in Python. This is
the bookkeeping half of ``HeapAllocator`` (base.py), which adds the syscalls; it is a base class so that
the allocator models read their page arrays as their own attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from clustersim.kernel.task import RangeBatch
from clustersim.units import HPAGE_PAGES

from .ranges import Runs, as_pages, count_in, move, split_by_vma, transition


class PageState(IntEnum):
    """The allocator's belief about one 4 KiB page of its heap."""

    IN_USE = 0        # handed to the application
    FREE_BACKED = 1   # free inside the allocator, still resident (fragmentation slack)
    RELEASED = 2      # free and returned with MADV_DONTNEED: the next touch faults
    LAZYFREE = 3      # free and returned with MADV_FREE: a plain touch reuses it unless reclaim took it
    QUEUED = 4        # free and returned with MADV_SPLITTABLE: needs MADV_UNSPLITTABLE before reuse
    FRESH = 5         # mapped but never touched (counted as released: nothing backs it)
    UNMAPPED = 6      # outside any VMA (holes in the page index space)


_NCOLS = 8  # columns of the per-vhp count matrix; 7 states padded to 8
REUSED = (PageState.RELEASED, PageState.LAZYFREE, PageState.QUEUED)   # free, not backed by the allocator
HOLES = (*REUSED, PageState.FRESH)                                   # what keeps a vhp from being whole


@dataclass
class _Segment:
    start_page: int
    npages: int
    region: object


class PageSpace:
    """The page index space of a heap: page states, per-vhp and total counts, and the VMAs behind it."""

    def _init_pages(self) -> None:
        # One state byte per page and a count per (vhp, state): ranges.py's compiled loops change both,
        # statistics and placement policies read them.
        self._state = np.full(HPAGE_PAGES * 64, PageState.UNMAPPED, dtype=np.int8)
        self._vhp_counts = np.zeros((64, _NCOLS), dtype=np.int64)
        self._vhp_counts[:, PageState.UNMAPPED] = HPAGE_PAGES
        self._totals = [0] * _NCOLS
        self._top_page = 0
        self._mapped_pages = 0
        self._segments: list[_Segment] = []
        self._seg_bounds = np.empty((2, 0), dtype=np.int64)   # first and end page of each VMA, ascending

    @property
    def nvhp(self) -> int:
        """vhps in the page index space (mapped or not)."""
        return self._top_page // HPAGE_PAGES

    def _ensure_capacity(self, npages: int) -> None:
        cap = len(self._state)
        if npages <= cap:
            return
        new_cap = max(npages, 2 * cap)
        state = np.full(new_cap, PageState.UNMAPPED, dtype=np.int8)
        state[:cap] = self._state
        counts = np.zeros((new_cap // HPAGE_PAGES, _NCOLS), dtype=np.int64)
        counts[:, PageState.UNMAPPED] = HPAGE_PAGES
        counts[: len(self._vhp_counts)] = self._vhp_counts
        self._state, self._vhp_counts = state, counts

    def _add_vma(self, region: object, npages: int) -> int:
        """Append the new VMA ``region`` of ``npages`` (a multiple of 512) as fresh pages; returns its start."""
        start = self._top_page
        self._ensure_capacity(start + npages)
        self._top_page = start + npages
        self._state[start:start + npages] = PageState.FRESH
        vhps = slice(start // HPAGE_PAGES, (start + npages) // HPAGE_PAGES)
        self._vhp_counts[vhps, PageState.UNMAPPED] = 0
        self._vhp_counts[vhps, PageState.FRESH] = HPAGE_PAGES
        self._totals[PageState.FRESH] += npages
        self._mapped_pages += npages
        self._segments.append(_Segment(start, npages, region))
        self._seg_bounds = np.append(self._seg_bounds, [[start], [start + npages]], axis=1)
        return start

    def _per_region(self, starts, lengths) -> RangeBatch:
        """Split page ranges by VMA into byte offsets and lengths per region, VMAs in address order. A range
        over a VMA boundary is cut into one piece per VMA, listed after the ranges that fit whole, as the
        kernel would see separate calls."""
        vmas, off, ln, counts = split_by_vma(as_pages(starts), as_pages(lengths), self._seg_bounds)
        segments = self._segments
        return RangeBatch([segments[k].region for k in vmas.tolist()], off, ln, counts.tolist())

    def _transition(self, starts: Sequence[int], lengths: Sequence[int],
                    new_state: int) -> tuple[list[int], Runs]:
        """Move the pages of the ranges to ``new_state``, keeping per-vhp and total counts; returns how many
        pages left each state and the runs (start, pages, old state) they came from, in range order."""
        moved, runs = transition(self._state, self._vhp_counts, starts, lengths, new_state)
        totals = self._totals
        for st, k in enumerate(moved):
            totals[st] -= k
        totals[new_state] += sum(moved)
        return moved, runs

    def _move(self, starts: Sequence[int], lengths: Sequence[int], old_state: int, new_state: int) -> None:
        """``_transition`` for ranges whose pages are all in ``old_state``."""
        n = move(self._state, self._vhp_counts, starts, lengths, old_state, new_state)
        self._totals[old_state] -= n
        self._totals[new_state] += n

    def free_backed_in(self, starts: Sequence[int], lengths: Sequence[int]) -> list[int]:
        """Free-and-backed pages in each range [starts[i], starts[i] + lengths[i]).

        The whole 2 MiB slots a range covers are read from the per-vhp counts; only its ragged ends are read
        page by page, so a long free range costs little more than a short one.
        """
        return count_in(self._state, self._vhp_counts, starts, lengths, PageState.FREE_BACKED)

    def pages_in(self, state: PageState) -> int:
        """Heap pages currently in ``state``."""
        return self._totals[state]

    def vhp_counts(self, state: PageState) -> np.ndarray:
        """Per-vhp page counts in ``state`` (a view; do not modify)."""
        return self._vhp_counts[: self.nvhp, state]

    def _hugepage_share(self) -> float:
        """Resident heap in vhps with nothing released or untouched, over all resident heap.

        Every vhp below the top is mapped, so its resident and hole pages add up to a whole vhp: a vhp with
        no holes is one whose resident count is HPAGE_PAGES, and holds exactly that many resident pages.
        """
        t = self._totals
        total = t[PageState.IN_USE] + t[PageState.FREE_BACKED] + t[PageState.QUEUED]
        if total == 0:
            return 0.0
        c = self._vhp_counts[: self.nvhp]
        resident = c[:, PageState.IN_USE] + c[:, PageState.FREE_BACKED]
        resident += c[:, PageState.QUEUED]
        return float(np.count_nonzero(resident == HPAGE_PAGES) * HPAGE_PAGES) / total
