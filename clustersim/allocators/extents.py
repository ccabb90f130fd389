"""ExtentSet: one of jemalloc's extent caches (dirty, muzzy or retained), src/ecache.c and src/eset.c.

Extents are kept in heaps per page-size class; ``first_fit(n)`` looks at every non-empty class large enough
for n (request rounded up to its class, as sz_psz_quantize_ceil does) and takes the lowest-address extent
among their heads (eset_first_fit: "first fit" by address); the leftover stays in the set. An LRU order
gives the purge order (ecache_evict takes the oldest). Size classes: 4 per doubling of pages.

Left out: delayed coalescing of dirty extents (coalesced eagerly here), opt.lg_extent_max_active_fit.
"""

from __future__ import annotations

from bisect import bisect_left, insort

# Page-size classes: 1, 2, 3, 4, then 4 per doubling (5, 6, 7, 8, 10, 12, 14, 16, 20, ...), as jemalloc's
# psz classes with LG_SIZE_CLASS_GROUP = 2.
CLASS_PAGES: tuple[int, ...] = (1, 2, 3, *((1 << lg) + k * (1 << lg) // 4 for lg in range(2, 48)
                                           for k in range(4)))


def class_floor(n: int) -> int:
    """Index of the largest class <= n (n >= 1), by arithmetic on n's top bits instead of a bisect."""
    if n < 4:
        return n - 1
    lg = n.bit_length() - 1
    return 3 + (lg - 2) * 4 + ((n >> (lg - 2)) & 3)


def class_ceil(n: int) -> int:
    """Index of the smallest class >= n."""
    c = class_floor(n)
    return c if CLASS_PAGES[c] == n else c + 1


class ExtentSet:
    """Free extents of one state, with address-first fit, coalescing and LRU eviction."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._len_at: dict[int, int] = {}         # start -> pages, in LRU order (oldest first)
        self._start_of_end: dict[int, int] = {}
        self._heads: dict[int, list[int]] = {}    # class -> sorted starts
        self._classes: list[int] = []             # non-empty classes, sorted
        self.npages = 0

    def __len__(self) -> int:
        return len(self._len_at)

    def _add(self, start: int, n: int) -> None:
        self._len_at[start] = n
        self._start_of_end[start + n] = start
        c = class_floor(n)
        heads = self._heads.get(c)
        if heads is None:
            heads = self._heads[c] = []
            insort(self._classes, c)
        insort(heads, start)
        self.npages += n

    def _drop(self, start: int) -> int:
        n = self._len_at.pop(start)
        del self._start_of_end[start + n]
        c = class_floor(n)
        heads = self._heads[c]
        del heads[bisect_left(heads, start)]
        if not heads:
            del self._heads[c]
            del self._classes[bisect_left(self._classes, c)]
        self.npages -= n
        return n

    def insert(self, start: int, n: int) -> tuple[int, int]:
        """Add an extent, merged with neighbours of this set; it becomes the newest. Returns the merge."""
        prev = self._start_of_end.get(start)
        if prev is not None:
            n += self._drop(prev)
            start = prev
        if start + n in self._len_at:
            n += self._drop(start + n)
        self._add(start, n)
        return start, n

    def first_fit(self, n: int) -> int | None:
        """Take ``n`` pages from the lowest-address extent among classes that surely fit; None if none."""
        classes = self._classes
        if not classes:
            return None
        i = bisect_left(classes, class_ceil(n))
        if i == len(classes):
            return None
        heads = self._heads
        start = min([heads[c][0] for c in classes[i:]])
        length = self._drop(start)
        if length > n:
            self._add(start + n, length - n)
        return start

    def evict_oldest(self) -> tuple[int, int]:
        """Remove the least recently inserted extent: (start, pages)."""
        start = next(iter(self._len_at))
        return start, self._drop(start)
