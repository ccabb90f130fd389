"""BestFitFreeList: free page ranges with address-ordered best fit and coalescing of neighbours.

The free-span structure of tcmalloc's legacy page heap (a set ordered by (length, address) for large spans,
tcmalloc/page_heap.cc) and of dlmalloc/glibc large bins. Each range carries a ``dirty`` flag meaning "may
still hold backed pages"; merging ORs the flags, so a release pass can skip ranges known to be clean.

Left out: tcmalloc's exact-size lists for short spans (they also give best fit) and its normal/returned split
(here one range can mix backed and released pages; the page states say which).
"""

from __future__ import annotations

from bisect import bisect_left, insort

# Ranges are ordered by one int key, length << _START_BITS | start: the same order as (length, start) tuples,
# but bisect compares machine-size ints instead of tuples. Page indices stay below 2**40 (4 PiB of heap).
_START_BITS = 40
_START_MASK = (1 << _START_BITS) - 1


class BestFitFreeList:
    """Free ranges of a page index space. Costs O(log n) search plus a list insert per operation."""

    def __init__(self) -> None:
        self._keys: list[int] = []               # sorted length << _START_BITS | start
        self._len_at: dict[int, int] = {}         # start -> length
        self._start_of_end: dict[int, int] = {}   # end -> start
        self._clean: set[int] = set()             # starts of ranges known to hold no backed pages
        self.free_pages = 0

    def __len__(self) -> int:
        return len(self._len_at)

    def _add(self, start: int, n: int, dirty: bool) -> None:
        insort(self._keys, n << _START_BITS | start)
        self._len_at[start] = n
        self._start_of_end[start + n] = start
        if not dirty:
            self._clean.add(start)
        self.free_pages += n

    def _drop(self, start: int) -> tuple[int, bool]:
        n = self._len_at.pop(start)
        del self._start_of_end[start + n]
        dirty = True
        if self._clean and start in self._clean:
            self._clean.remove(start)
            dirty = False
        keys = self._keys
        del keys[bisect_left(keys, n << _START_BITS | start)]
        self.free_pages -= n
        return n, dirty

    def insert(self, start: int, n: int, dirty: bool = True) -> tuple[int, int]:
        """Add the free range [start, start+n), merged with free neighbours; returns the merged range."""
        prev = self._start_of_end.get(start)
        if prev is not None:
            pn, pd = self._drop(prev)
            start, n, dirty = prev, n + pn, dirty or pd
        if start + n in self._len_at:
            nn, nd = self._drop(start + n)
            n, dirty = n + nn, dirty or nd
        self._add(start, n, dirty)
        return start, n

    def take_best_fit(self, n: int) -> int | None:
        """Remove the smallest free range of at least ``n`` pages (lowest address on ties); its head is
        returned and the tail stays free. None when nothing fits."""
        keys = self._keys
        i = bisect_left(keys, n << _START_BITS)
        if i == len(keys):
            return None
        start = keys[i] & _START_MASK
        length, dirty = self._drop(start)
        if length > n:
            self._add(start + n, length - n, dirty)
        return start

    def take_largest(self) -> tuple[int, int]:
        """Remove the longest free range (highest address on ties): (start, length)."""
        start = self._keys[-1] & _START_MASK
        return start, self._drop(start)[0]

    def take_range(self, start: int) -> tuple[int, bool]:
        """Remove the free range starting at ``start``: (length, dirty)."""
        return self._drop(start)

    def start_ending_at(self, end: int) -> int | None:
        """Start of the free range that ends exactly at ``end``, if any."""
        return self._start_of_end.get(end)

    def length_at(self, start: int) -> int:
        return self._len_at[start]

    def dirty_ranges(self) -> list[tuple[int, int]]:
        """(start, length) of ranges that may hold backed pages, in address order."""
        clean = self._clean
        return sorted([item for item in self._len_at.items() if item[0] not in clean])

    def ranges(self) -> list[tuple[int, int]]:
        """All free (start, length), in address order."""
        return sorted(self._len_at.items())

    def mark_clean(self, start: int) -> None:
        """Record that the range at ``start`` holds no backed pages any more."""
        assert start in self._len_at
        self._clean.add(start)
