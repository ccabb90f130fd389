"""Temeraire under its common name: tcmalloc's hugepage-aware allocator (see huge_page_aware_allocator.py).

The components live in modules named after tcmalloc's: huge_page_filler.py (HugePageFiller, PageTracker),
huge_region.py (HugeRegion), huge_cache.py (HugeCache, HugeAllocator), huge_page_aware_allocator.py.
"""

from __future__ import annotations

from .huge_page_aware_allocator import HugePageAwareAllocator

TemeraireAllocator = HugePageAwareAllocator

__all__ = ["HugePageAwareAllocator", "TemeraireAllocator"]
