"""jemalloc's arenas and thread caches: a frontend over several one-arena page heaps (jemalloc.py).

jemalloc 5.x multiplexes threads over ``opt.narenas`` arenas, four per CPU by default (one on a single CPU;
narenas_auto in src/jemalloc.c, documented under opt.narenas in jemalloc's manual). A new thread is bound to
an arena no thread uses while there is one (arena_choose_hard), so with no more threads than arenas each
thread has its own; every arena has its own extents, decay state and address space (it maps its own
memory), and an extent is freed back to the arena that owns it. Each thread also has a thread cache
(opt.tcache, on by default) of freed objects up to ``opt.tcache_max`` (32 KiB): a small bin holds up to
twice its slab's region count (opt.lg_tcache_nslots_mul = 1), kept within [opt.tcache_nslots_small_min,
opt.tcache_nslots_small_max] = [20, 200]; a large bin holds opt.tcache_nslots_large = 20 (src/tcache.c,
tcache_ncached_max_compute). ``tcache_bound_bytes`` is the sum of those bins at their fullest.

Here ``narenas`` is the number of arenas the process's threads use (min(threads, 4 x CPUs) in jemalloc):
unit ``id`` is allocated by thread ``id mod narenas`` in that thread's arena (frontend.py), and with
``tcache`` each thread caches its freed small-object units up to the bound.
"""

from __future__ import annotations

from math import gcd

from .frontend import OCCUPANCY, Frontend, ObjectCache
from .jemalloc import JemallocArena
from .options import Option, parse_switch

JEMALLOC_PAGE = 4096
TCACHE_MAX_BYTES = 32 * 1024                 # opt.tcache_max default (TCACHE_MAXCLASS_DEFAULT)
NSLOTS_SMALL_MIN, NSLOTS_SMALL_MAX = 20, 200  # opt.tcache_nslots_small_min / _max defaults
LG_NSLOTS_MUL = 1                            # opt.lg_tcache_nslots_mul default
NSLOTS_LARGE = 20                            # opt.tcache_nslots_large default
SMALL_MAX_BYTES = 14 * 1024                  # SC_SMALL_MAXCLASS with 4 KiB pages


def size_classes(limit: int) -> list[int]:
    """jemalloc's size classes up to ``limit`` bytes (LG_QUANTUM 4, four classes per doubling; 8 is tiny)."""
    sizes = [8, *range(16, 129, 16)]
    base = 128
    while sizes[-1] < limit:
        sizes += [base + k * base // 4 for k in range(1, 5)]
        base *= 2
    return [s for s in sizes if s <= limit]


def slab_regions(size: int) -> int:
    """Regions in a slab of ``size``: the slab is the least common multiple of page and size (sc.c slab_size)."""
    return JEMALLOC_PAGE // gcd(JEMALLOC_PAGE, size)


def ncached_max(size: int) -> int:
    """Slots of the tcache bin of ``size`` (tcache_ncached_max_compute)."""
    if size > SMALL_MAX_BYTES:
        return NSLOTS_LARGE
    candidate = slab_regions(size) << LG_NSLOTS_MUL
    candidate += candidate % 2
    return min(max(candidate, NSLOTS_SMALL_MIN), NSLOTS_SMALL_MAX)


def tcache_bound_bytes() -> int:
    """Bytes one thread cache holds with every bin full, jemalloc's defaults (about 4.4 MiB)."""
    return sum(ncached_max(s) * s for s in size_classes(TCACHE_MAX_BYTES))


JEMALLOC_FRONTEND_OPTIONS: dict[str, Option] = {
    "span_occupancy": OCCUPANCY,
    "narenas": Option(1, "1: one arena (the dense model); opt.narenas default 4 x CPUs, one per thread "
                      "while threads are fewer", lo=1, hi=4096, integer=True),
    "tcache": Option(False, "off; opt.tcache default on: a thread cache per arena's thread, bins bounded "
                     "by tcache_max 32 KiB and nslots 20..200 (src/tcache.c)"),
}


def jemalloc_frontend(process, *, narenas: int = 1, tcache: bool | str = False,
                      span_occupancy: float = OCCUPANCY.default, **arena_options) -> Frontend:
    """``narenas`` jemalloc arenas over ``process`` (each with ``arena_options``) behind one frontend."""
    narenas = JEMALLOC_FRONTEND_OPTIONS["narenas"].check(narenas, "narenas")
    cache = ObjectCache(narenas, tcache_bound_bytes()) if parse_switch(tcache, "tcache") else None
    arenas = [JemallocArena(process, **arena_options) for _ in range(narenas)]
    return Frontend(arenas, span_occupancy=span_occupancy, cache=cache)
