"""glibc malloc, main arena (malloc/malloc.c): a brk heap with top trim, and mmapped large chunks.

The heap is one contiguous range growing upward (brk); chunks come from the bins (best fit) or are carved
from the *top* chunk. Freeing a chunk next to the top merges it into the top; when the top then exceeds
``trim_threshold`` the heap is trimmed to ``top_pad`` (systrim; modelled as MADV_DONTNEED of the trimmed
tail, since our kernel has no brk). Free memory below the top never returns to the kernel, except through
``malloc_trim`` (mtrim: MADV_DONTNEED of every whole free page inside free chunks, the page holding the
chunk header excepted), here an option run every background tick.

Chunks of at least ``mmap_threshold`` get their own mmap and are munmapped on free. With dynamic
thresholds (glibc's default), freeing an mmapped chunk larger than the threshold (and at most
DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB) raises mmap_threshold to its size and trim_threshold to twice that.

Left out: chunk headers and alignment inside pages, fastbins/tcache, non-main arenas (heap_trim),
M_MMAP_MAX, and the FASTBIN_CONSOLIDATION_THRESHOLD condition on trimming.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from clustersim.units import PAGE_SIZE, parse_size

from .base import HeapAllocator
from .best_fit import BestFitFreeList
from .options import BASE_OPTIONS, Option, named, parse_choice, parse_switch
from .page_space import PageState

MMAP_THRESHOLD_MAX = 32 * 1024 * 1024   # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit


class MallocTrim(StrEnum):
    """When malloc_trim(0) runs: never (glibc never calls it by itself) or every background tick."""

    OFF = "off"
    EVERY_TICK = "every_tick"


OPTIONS: dict[str, Option] = {
    "trim_threshold": Option(128 * 1024, "M_TRIM_THRESHOLD default (mallopt(3)), bytes", lo=0),
    "top_pad": Option(128 * 1024, "M_TOP_PAD default (mallopt(3)), bytes", lo=0),
    "mmap_threshold": Option(128 * 1024, "M_MMAP_THRESHOLD default; mallopt refuses more than "
                             "HEAP_MAX_SIZE / 2 = DEFAULT_MMAP_THRESHOLD_MAX", lo=0, hi=MMAP_THRESHOLD_MAX),
    "dynamic_thresholds": Option(True, "on: glibc adjusts both thresholds until one is set with mallopt"),
    "malloc_trim": named(MallocTrim, MallocTrim.OFF, "off: glibc never calls malloc_trim by itself"),
    **BASE_OPTIONS,
}


class GlibcMalloc(HeapAllocator):
    """glibc's main arena. Sizes are bytes or strings like '128K'."""

    kind = "glibc"
    OPTIONS = OPTIONS

    def __init__(self, process, *, trim_threshold: int | str = OPTIONS["trim_threshold"].default,
                 top_pad: int | str = OPTIONS["top_pad"].default,
                 mmap_threshold: int | str = OPTIONS["mmap_threshold"].default,
                 dynamic_thresholds: bool | str = OPTIONS["dynamic_thresholds"].default,
                 malloc_trim: str = OPTIONS["malloc_trim"].default,
                 release_advice: str = OPTIONS["release_advice"].default,
                 hugepage_advice: str = OPTIONS["hugepage_advice"].default,
                 collapse: str = OPTIONS["collapse"].default, clock=None) -> None:
        super().__init__(process, release_advice=release_advice, hugepage_advice=hugepage_advice,
                         collapse=collapse, clock=clock)
        self.trim_threshold_bytes = self._size(trim_threshold, "trim_threshold")
        self.top_pad_bytes = self._size(top_pad, "top_pad")
        self.mmap_threshold_bytes = self._size(mmap_threshold, "mmap_threshold")
        self.dynamic_thresholds = parse_switch(dynamic_thresholds, "dynamic_thresholds")
        self.malloc_trim = parse_choice(MallocTrim, malloc_trim, "malloc_trim")
        self.bins = BestFitFreeList()
        self.top = 0   # first page of the top chunk
        self.brk = 0   # end of the backed part of the heap (pages above it were trimmed or never used)
        self._top_moved = False

    @staticmethod
    def _size(value: int | str, name: str) -> int:
        return OPTIONS[name].check(parse_size(value, name), name)

    # ----------------------------------------------------------------------------------- placement

    def _direct_mask(self, nbytes: np.ndarray) -> np.ndarray:
        return nbytes >= self.mmap_threshold_bytes

    def _on_direct_free(self, nbytes: int) -> None:
        if self.dynamic_thresholds and self.mmap_threshold_bytes < nbytes <= MMAP_THRESHOLD_MAX:
            self.mmap_threshold_bytes = nbytes
            self.trim_threshold_bytes = 2 * nbytes

    def _place(self, npages: int) -> int:
        start = self.bins.take_best_fit(npages)
        if start is not None:
            return start
        if self.top + npages > self._top_page:
            self._grow_heap(self.top + npages - self._top_page)
        start = self.top
        self.top += npages
        self.brk = max(self.brk, self.top)
        return start

    def _unplace(self, start: int, npages: int) -> None:
        start, n = self.bins.insert(start, npages)
        if start + n == self.top:
            self.bins.take_range(start)
            self.top = start
            self._top_moved = True

    # ----------------------------------------------------------------------------------- trimming

    def _on_free_batch(self) -> float:
        if not self._top_moved:
            return 0.0
        self._top_moved = False
        if (self.brk - self.top) * PAGE_SIZE >= self.trim_threshold_bytes:
            return self.systrim(self.top_pad_bytes)
        return 0.0

    def systrim(self, pad_bytes: int) -> float:
        """Give back the top chunk beyond ``pad_bytes`` (sbrk(-extra)); returns seconds."""
        keep = self.top + -(-pad_bytes // PAGE_SIZE)
        if keep >= self.brk:
            return 0.0
        _, seconds = self.release_ranges(np.array([keep]), np.array([self.brk - keep]))
        self.brk = keep
        return seconds

    def _background(self, now_s: float, dt_s: float) -> float:
        return self.trim() if self.malloc_trim is MallocTrim.EVERY_TICK else 0.0

    def trim(self) -> float:
        """malloc_trim(0): release whole free pages inside free chunks, then trim the top to nothing."""
        seconds = self.systrim(0)
        ranges = [(s + 1, n - 1) for s, n in self.bins.dirty_ranges() if n > 1]
        if ranges:
            starts = np.array([s for s, _ in ranges], dtype=np.int64)
            lengths = np.array([n for _, n in ranges], dtype=np.int64)
            seconds += self.release_ranges(starts, lengths)[1]
            for s, _ in ranges:
                self.bins.mark_clean(s - 1)
        return seconds

    @property
    def top_free_backed_bytes(self) -> int:
        """Backed free bytes in the top chunk."""
        return int(np.count_nonzero(self._state[self.top:self.brk] == PageState.FREE_BACKED)) * PAGE_SIZE
