"""User-space allocator models: policies over a process's heap that reach the kernel only through syscalls.

``make_allocator(kind, process, **options)`` builds one of: ``tcmalloc`` (legacy page heap), ``temeraire``
(tcmalloc's hugepage-aware allocator), ``jemalloc``, ``glibc``. Every model offers ``alloc``, ``free``,
``background`` and ``stats`` (see base.py).
"""

from __future__ import annotations

from .base import AllocatorStats, Collapse, HeapAllocator, HugepageAdvice, PageState, ReleaseAdvice
from .glibc import GlibcMalloc, MallocTrim
from .huge_page_aware_allocator import HugePageAwareAllocator
from .jemalloc import JemallocArena
from .registry import ALLOCATORS, allowed_options, make_allocator
from .tcmalloc import LegacyPageHeap

__all__ = [
    "ALLOCATORS",
    "AllocatorStats",
    "Collapse",
    "GlibcMalloc",
    "HeapAllocator",
    "HugePageAwareAllocator",
    "HugepageAdvice",
    "JemallocArena",
    "LegacyPageHeap",
    "MallocTrim",
    "PageState",
    "ReleaseAdvice",
    "allowed_options",
    "make_allocator",
]
