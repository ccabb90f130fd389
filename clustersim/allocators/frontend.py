"""The object-level frontend over page-level heaps: partly used spans, per-CPU/thread caches, several arenas.

The page-level models (tcmalloc.py, huge_page_aware_allocator.py, jemalloc.py) place whole spans and, alone,
model a dense heap: every span fully packed with live objects and every page of it written at hand-out. Real
heaps are sparser, for three reasons this module adds on top of them, each off by default (docs/model.md,
"Sparse heaps", says why and gives every default with its source):

- **Partly used spans** (``span_occupancy`` u). A small-object span is handed out whole but holds objects
  only in part: tcmalloc's central free lists keep spans with free objects (tcmalloc/central_freelist.h), and
  jemalloc's bins keep non-full slabs (src/bin.c). The live objects of a unit of n spans then occupy
  ceil(n / u) spans, and the application writes in each span only the pages its objects fill, from the
  span's first page (jemalloc's slab bitmap hands out the lowest free region first, bitmap_sfu). Untouched
  pages cost nothing under THP ``madvise``/``never``; under ``always`` the kernel backs the whole 2 MiB of a
  vhp at its first write (kernel/fault.py), so they become zero-filled subpages of a THP.
- **Object caches** (``ObjectCache``): tcmalloc's per-CPU caches (at most ``kMaxCpuCacheSize``, 1.5 MiB per
  CPU, tcmalloc/common.h) and jemalloc's thread caches (opt.tcache) hold freed small objects instead of
  returning them to their spans. A freed small-object unit enters its cache and is returned to the page
  heap only when newer frees push the cache over its bound (oldest first); its pages stay resident and
  unavailable to the page heap meanwhile.
- **Several heaps** (``backends``): jemalloc's arenas (arenas.py), each with its own extents and address
  space. Allocation unit ``id`` belongs to worker thread ``id mod k`` and so to arena ``id mod k`` (jemalloc
  binds each new thread to an unused arena while there are fewer threads than opt.narenas, and frees an
  extent to the arena that owns it, not the freeing thread's).

Left out: caches serving allocations (a unit freed into a cache is later flushed, not reused: the bytes a
cache holds and their residency are the real cache's, its reuse order is not), tcache GC and per-CPU cache
resizing (each cache stays at its bound once full), the transfer caches, and objects freed inside a live span
(a span's written pages are fixed at hand-out: the high-water mark of its objects).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from clustersim.units import PAGE_SIZE

from .base import AllocatorStats, HeapAllocator
from .options import Option
from .span_table import SpanTable

# Objects up to tcmalloc's kMaxSize (256 KiB, tcmalloc/common.h) live in size-class spans; larger ones get a
# span of their own (the demand's large classes), which is their one object and is written whole.
SMALL_SPAN_MAX_BYTES = 256 * 1024
TCMALLOC_CPU_CACHE_BYTES = 3 * 512 * 1024   # kMaxCpuCacheSize = 1.5 MiB (tcmalloc/common.h, 8 KiB pages)

OCCUPANCY = Option(1.0, "1: every small-object span full (the dense model); real spans are partly used "
                   "(tcmalloc central free lists, jemalloc non-full slabs); no published fleet mean",
                   lo=0.05, hi=1.0)
TCMALLOC_FRONTEND_OPTIONS: dict[str, Option] = {
    "span_occupancy": OCCUPANCY,
    "cpu_caches": Option(0, "0: no per-CPU caches; tcmalloc has one per CPU the process runs on",
                         lo=0, hi=4096, integer=True),
    "cpu_cache_size": Option(TCMALLOC_CPU_CACHE_BYTES, "kMaxCpuCacheSize (tcmalloc/common.h): 1.5 MiB",
                             lo=0, hi=1 << 30, integer=True),
}


# ----------------------------------------------------------------------------------- partly used spans

def occupied_units(unit_bytes: np.ndarray, object_span_bytes: np.ndarray,
                   occupancy: float) -> tuple[np.ndarray, np.ndarray]:
    """(bytes handed out, spans) for units whose live objects fill ``unit_bytes`` at occupancy u.

    A unit of n small-object spans of S bytes takes ceil(n / u) spans; a large span (S > 256 KiB) is one
    object and is unchanged.
    """
    small = object_span_bytes <= SMALL_SPAN_MAX_BYTES
    live_spans = unit_bytes // object_span_bytes
    spans = np.where(small, -(-live_spans // occupancy).astype(np.int64), live_spans)
    spans = np.maximum(spans, live_spans)   # float rounding never shrinks a unit
    return spans * object_span_bytes, spans


def striped_runs(starts: np.ndarray, spans: np.ndarray, span_pages: np.ndarray,
                 live_pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The page runs written in units placed at ``starts``: unit i is ``spans[i]`` spans of ``span_pages[i]``
    pages holding ``live_pages[i]`` written pages, spread evenly (the first spans one page more), each span's
    share from its first page. Runs of zero pages are dropped."""
    per_span, extra = np.divmod(live_pages, spans)
    unit = np.repeat(np.arange(len(starts)), spans)
    first_span = np.cumsum(spans) - spans
    j = np.arange(len(unit)) - first_span[unit]   # span index inside its unit
    lengths = per_span[unit] + (j < extra[unit])
    run_starts = starts[unit] + j * span_pages[unit]
    keep = lengths > 0
    return run_starts[keep], lengths[keep]


# ----------------------------------------------------------------------------------- object caches

class ObjectCache:
    """Freed small-object units held by ``ncaches`` bounded caches (per CPU or per thread), oldest flushed.

    Unit ``id`` goes to cache ``id mod ncaches``. Each cache holds at most ``capacity_bytes``; ``push``
    returns the units that no longer fit, oldest first per cache, to be freed to the page heap.
    """

    def __init__(self, ncaches: int, capacity_bytes: int) -> None:
        if ncaches < 1 or capacity_bytes < 0:
            raise ValueError(f"ncaches={ncaches} must be >= 1 and capacity_bytes={capacity_bytes} >= 0")
        self.ncaches, self.capacity_bytes = ncaches, capacity_bytes
        self._ids = np.empty(0, dtype=np.int64)     # held units, oldest first
        self._bytes = np.empty(0, dtype=np.int64)   # their objects' bytes (what the bound counts)
        self._placed = np.empty(0, dtype=np.int64)  # the span bytes they keep from the page heap

    @property
    def held_bytes(self) -> int:
        """Bytes of objects held in all caches."""
        return int(self._bytes.sum())

    @property
    def held_span_bytes(self) -> int:
        """Span bytes the held units keep from the page heaps (their objects' bytes over occupancy)."""
        return int(self._placed.sum())

    def per_cache_bytes(self) -> np.ndarray:
        """Bytes held by each cache."""
        return np.bincount(self._ids % self.ncaches, weights=self._bytes, minlength=self.ncaches)

    def push(self, ids: np.ndarray, nbytes: np.ndarray, placed: np.ndarray | None = None) -> np.ndarray:
        """Cache freed units (in free order); returns the ids flushed to make every cache fit its bound."""
        placed = np.concatenate([self._placed, nbytes if placed is None else placed])
        ids = np.concatenate([self._ids, ids])
        nbytes = np.concatenate([self._bytes, nbytes])
        # Newest first within each cache: a unit stays while the bytes newer than it plus its own fit.
        cache = ids % self.ncaches
        order = np.lexsort((-np.arange(len(ids)), cache))
        c, b = cache[order], nbytes[order]
        total = np.cumsum(b)
        group_start = np.searchsorted(c, c, side="left")
        newer_and_own = total - np.concatenate([[0], total])[group_start]
        keep = np.zeros(len(ids), dtype=bool)
        keep[order] = newer_and_own <= self.capacity_bytes
        self._ids, self._bytes, self._placed = ids[keep], nbytes[keep], placed[keep]
        return ids[~keep]


# ----------------------------------------------------------------------------------- the frontend

class Frontend:
    """The application-facing allocator over ``backends`` (page-level heaps), with the module's mechanisms.

    Args:
        backends: one page-level heap, or one per jemalloc arena (unit ``id`` goes to ``id mod len``).
        span_occupancy: u in [0.05, 1], the share of a small-object span its live objects fill.
        cache: freed small-object units held back from the page heaps; None: no caches.
    """

    reads_object_spans = True

    def __init__(self, backends: Sequence[HeapAllocator], *, span_occupancy: float = OCCUPANCY.default,
                 cache: ObjectCache | None = None) -> None:
        if not backends:
            raise ValueError("backends: a frontend needs at least one page-level heap")
        self.backends = list(backends)
        self.kind = self.backends[0].kind
        self.process = self.backends[0].process
        self.span_occupancy = OCCUPANCY.check(span_occupancy, "span_occupancy")
        self.cache = cache
        self._small = SpanTable()   # live small-object units and their bytes, while caches are on
        self._batch: tuple[np.ndarray, np.ndarray] | None = None   # (spans, span pages) of the call
        self._live_pages = np.empty(0, dtype=np.int64)              # written pages per unit of the call
        if self.span_occupancy < 1.0:
            for b in self.backends:
                b.written_runs = self._written_runs

    # ----------------------------------------------------------------------------------- routing

    def _route(self, ids: np.ndarray) -> list[np.ndarray]:
        """Masks of the ids owned by each backend."""
        if len(self.backends) == 1:
            return [np.ones(len(ids), dtype=bool)]
        owner = ids % len(self.backends)
        return [owner == k for k in range(len(self.backends))]

    def _written_runs(self, starts: np.ndarray, npages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hook for the backends' hand-out: the pages the live objects of the placed units fill."""
        spans, span_pages = self._batch
        live = self._live_pages
        return striped_runs(starts, spans, span_pages, np.minimum(live, npages))

    # ----------------------------------------------------------------------------------- public API

    def alloc(self, span_ids: np.ndarray, span_bytes: np.ndarray, object_span_bytes=None) -> float:
        """Allocate units of live objects (``span_bytes``, made of spans of ``object_span_bytes``)."""
        ids = np.asarray(span_ids, dtype=np.int64)
        nbytes = np.asarray(span_bytes, dtype=np.int64)
        obj = nbytes if object_span_bytes is None else np.asarray(object_span_bytes, dtype=np.int64)
        placed, spans = (occupied_units(nbytes, obj, self.span_occupancy) if self.span_occupancy < 1.0
                         else (nbytes, nbytes // obj))
        if self.cache is not None:
            small = obj <= SMALL_SPAN_MAX_BYTES
            zeros = np.zeros(int(small.sum()), dtype=np.int64)
            order = np.argsort(ids[small], kind="stable")
            # the table's page column holds the unit's span bytes, its byte column the objects' bytes
            self._small.add(ids[small][order], zeros, placed[small][order], nbytes[small][order])
        seconds = 0.0
        for backend, mine in zip(self.backends, self._route(ids), strict=True):
            if not mine.any():
                continue
            self._batch = (spans[mine], obj[mine] // PAGE_SIZE)
            self._live_pages = nbytes[mine] // PAGE_SIZE
            seconds += backend.alloc(ids[mine], placed[mine])
        self._batch = None
        return seconds

    def free(self, span_ids: np.ndarray) -> float:
        """Free units: small-object units go to their cache first, what it flushes goes to the page heaps."""
        ids = np.asarray(span_ids, dtype=np.int64)
        if self.cache is not None and len(ids):
            rows, small = self._small.find(ids)
            _, small_placed, small_bytes = self._small.take(rows[small])
            flushed = self.cache.push(ids[small], small_bytes, small_placed)
            ids = np.concatenate([ids[~small], flushed])
        seconds = 0.0
        for backend, mine in zip(self.backends, self._route(ids), strict=True):
            seconds += backend.free(ids[mine])
        return seconds

    def access(self, span_ids: np.ndarray) -> float:
        ids = np.asarray(span_ids, dtype=np.int64)
        return sum(b.access(ids[m]) for b, m in zip(self.backends, self._route(ids), strict=True))

    def background(self, now_s: float) -> float:
        return sum(b.background(now_s) for b in self.backends)

    @property
    def cached_bytes(self) -> int:
        """Bytes of freed units held in caches (in use for the page heaps, free for the application)."""
        return 0 if self.cache is None else self.cache.held_span_bytes

    @property
    def in_use_bytes(self) -> int:
        return sum(b.in_use_bytes for b in self.backends) - self.cached_bytes

    @property
    def free_backed_bytes(self) -> int:
        return sum(b.free_backed_bytes for b in self.backends) + self.cached_bytes

    def stats(self) -> AllocatorStats:
        """The backends' views summed; cached units count as free and backed."""
        parts = [b.stats() for b in self.backends]
        resident = [s.in_use_bytes + s.free_backed_bytes + s.queued_bytes for s in parts]
        calls: Counter[str] = Counter()
        for s in parts:
            calls.update(s.madvise_calls_by_advice)
        total = sum(resident)
        return AllocatorStats(
            in_use_bytes=self.in_use_bytes, free_backed_bytes=self.free_backed_bytes,
            released_bytes=sum(s.released_bytes for s in parts), lazyfree_bytes=sum(s.lazyfree_bytes for s in parts),
            queued_bytes=sum(s.queued_bytes for s in parts), mapped_bytes=sum(s.mapped_bytes for s in parts),
            requested_bytes=sum(s.requested_bytes for s in parts),
            untouched_bytes=sum(s.untouched_bytes for s in parts),
            hugepage_share=(sum(s.hugepage_share * r for s, r in zip(parts, resident, strict=True)) / total
                            if total else 0.0),
            madvise_calls=sum(s.madvise_calls for s in parts), madvise_calls_by_advice=dict(sorted(calls.items())),
            undo_lost_pages=sum(s.undo_lost_pages for s in parts),
            fallbacks=tuple(sorted({f for s in parts for f in s.fallbacks})),
        )


def tcmalloc_frontend(backend: HeapAllocator, *, cpu_caches: int = 0,
                      cpu_cache_size: int = TCMALLOC_CPU_CACHE_BYTES,
                      span_occupancy: float = OCCUPANCY.default) -> Frontend:
    """tcmalloc's frontend over its page heap (legacy or Temeraire): ``cpu_caches`` per-CPU caches of
    ``cpu_cache_size`` bytes each, and partly used spans in the central free lists."""
    opts = TCMALLOC_FRONTEND_OPTIONS
    cpu_caches = opts["cpu_caches"].check(cpu_caches, "cpu_caches")
    cpu_cache_size = opts["cpu_cache_size"].check(cpu_cache_size, "cpu_cache_size")
    cache = ObjectCache(cpu_caches, cpu_cache_size) if cpu_caches else None
    return Frontend([backend], span_occupancy=span_occupancy, cache=cache)
