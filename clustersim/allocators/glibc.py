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

from clustersim.jit import njit
from clustersim.units import PAGE_SIZE, parse_size

from .base import HeapAllocator
from .best_fit import BestFitFreeList, drop_run, insert_run, take_best_fit
from .options import BASE_OPTIONS, Option, named, parse_choice, parse_switch
from .page_space import PageState
from .sorted_blocks import view

MMAP_THRESHOLD_MAX = 32 * 1024 * 1024   # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TOP, BRK, TOP_MOVED = 0, 1, 2           # words of the heap's top state (``GlibcMalloc._heap``)


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
        # The top chunk starts at _heap[TOP]; _heap[BRK] ends the backed part of the heap (pages above it
        # were trimmed or never used); _heap[TOP_MOVED] is set when a free merged into the top.
        self._heap = np.zeros(3, dtype=np.int64)

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

    @property
    def top(self) -> int:
        """First page of the top chunk."""
        return int(self._heap[TOP])

    @property
    def brk(self) -> int:
        """End of the backed part of the heap."""
        return int(self._heap[BRK])

    def _place_batch(self, npages: np.ndarray) -> np.ndarray:
        starts = np.empty(len(npages), dtype=np.int64)
        done = 0
        while True:
            self.bins.reserve(len(npages) - done)
            done = _place_spans(self.bins.buf, self._heap, npages, starts, done, self._top_page)
            if done == len(npages):
                return starts
            self._grow_heap(self.top + int(npages[done]) - self._top_page)   # sbrk: extend the top

    def _unplace_batch(self, starts: np.ndarray, npages: np.ndarray) -> None:
        self.bins.reserve(len(starts))
        _free_spans(self.bins.buf, self._heap, starts, npages)

    # ----------------------------------------------------------------------------------- trimming

    def _on_free_batch(self) -> float:
        if not self._heap[TOP_MOVED]:
            return 0.0
        self._heap[TOP_MOVED] = 0
        if (self.brk - self.top) * PAGE_SIZE >= self.trim_threshold_bytes:
            return self.systrim(self.top_pad_bytes)
        return 0.0

    def systrim(self, pad_bytes: int) -> float:
        """Give back the top chunk beyond ``pad_bytes`` (sbrk(-extra)); returns seconds."""
        keep = self.top + -(-pad_bytes // PAGE_SIZE)
        if keep >= self.brk:
            return 0.0
        _, seconds = self.release_ranges(np.array([keep]), np.array([self.brk - keep]))
        self._heap[BRK] = keep
        return seconds

    def _background(self, now_s: float, dt_s: float) -> float:
        return self.trim() if self.malloc_trim is MallocTrim.EVERY_TICK else 0.0

    def trim(self) -> float:
        """malloc_trim(0): release whole free pages inside free chunks, then trim the top to nothing."""
        seconds = self.systrim(0)
        starts, lengths = self.bins.runs(dirty_only=True)
        inner = lengths > 1
        if inner.any():
            starts, lengths = starts[inner], lengths[inner]
            seconds += self.release_ranges(starts + 1, lengths - 1)[1]
            self.bins.mark_clean(starts)
        return seconds

    @property
    def top_free_backed_bytes(self) -> int:
        """Backed free bytes in the top chunk."""
        return int(np.count_nonzero(self._state[self.top:self.brk] == PageState.FREE_BACKED)) * PAGE_SIZE


@njit
def _place_spans(bins, heap, npages, out, first, top_page):
    """_int_malloc for spans ``first``, ``first + 1``, ... in order: the best-fitting free chunk from the
    bins, else carved from the top chunk (raising brk). Writes the starts to ``out``; returns the index of
    the first span the top cannot hold without more heap (len(npages) when all were placed)."""
    v = view(bins)
    for k in range(first, npages.shape[0]):
        n = npages[k]
        start = take_best_fit(v, n)
        if start < 0:
            if heap[TOP] + n > top_page:
                return k
            start = heap[TOP]
            heap[TOP] += n
            heap[BRK] = max(heap[BRK], heap[TOP])
        out[k] = start
    return npages.shape[0]


@njit
def _free_spans(bins, heap, starts, npages):
    """_int_free for each span in order: coalesce with free neighbours; a chunk that then borders the top
    merges into the top instead of entering a bin (and the free batch checks the trim threshold)."""
    v = view(bins)
    for k in range(starts.shape[0]):
        start, n = insert_run(v, starts[k], npages[k], True)
        if start + n == heap[TOP]:
            drop_run(v, start)
            heap[TOP] = start
            heap[TOP_MOVED] = 1
