"""User-space allocator models: policies over a process's heap that reach the kernel only through syscalls.

``make_allocator(kind, process, **options)`` builds one of: ``tcmalloc`` (legacy page heap), ``temeraire``
(tcmalloc's hugepage-aware allocator), ``jemalloc``, ``glibc``. Every model offers ``alloc``, ``free``,
``background`` and ``stats`` (see base.py). Each declares its options once, in an ``OPTIONS`` table
(options.py); ``options_from_section`` turns a run file's allocator section into constructor keywords.
"""

from __future__ import annotations

from .base import AllocatorStats, HeapAllocator
from .glibc import GlibcMalloc, MallocTrim
from .huge_page_aware_allocator import HugePageAwareAllocator
from .jemalloc import JemallocArena
from .options import Collapse, HugepageAdvice, Option, ReleaseAdvice
from .page_space import PageState
from .registry import ALLOCATORS, allowed_options, make_allocator, options_from_section
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
    "Option",
    "PageState",
    "ReleaseAdvice",
    "allowed_options",
    "make_allocator",
    "options_from_section",
]
