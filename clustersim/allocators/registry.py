"""make_allocator: build an allocator model by kind name, rejecting unknown kinds and options."""

from __future__ import annotations

import inspect

from .base import HeapAllocator
from .glibc import GlibcMalloc
from .huge_page_aware_allocator import HugePageAwareAllocator
from .jemalloc import JemallocArena
from .tcmalloc import LegacyPageHeap

ALLOCATORS: dict[str, type[HeapAllocator]] = {
    "tcmalloc": LegacyPageHeap,
    "temeraire": HugePageAwareAllocator,
    "jemalloc": JemallocArena,
    "glibc": GlibcMalloc,
}


def allowed_options(kind: str) -> tuple[str, ...]:
    """The keyword options an allocator kind accepts."""
    params = inspect.signature(ALLOCATORS[kind].__init__).parameters
    return tuple(name for name, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)


def make_allocator(kind: str, process, **options) -> HeapAllocator:
    """The allocator ``kind`` over ``process``; a ValueError names an unknown kind or option."""
    if kind not in ALLOCATORS:
        raise ValueError(f"allocator kind {kind!r} is unknown; allowed: {', '.join(ALLOCATORS)}")
    allowed = allowed_options(kind)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{kind} allocator: unknown option(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(allowed)}")
    return ALLOCATORS[kind](process, **options)
