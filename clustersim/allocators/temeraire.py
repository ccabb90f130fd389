"""Temeraire under its common name: tcmalloc's hugepage-aware allocator (see huge_page_aware_allocator.py).

The components live in modules named after tcmalloc's: huge_page_filler.py (HugePageFiller) over
page_tracker.py (PageTracker), huge_page_subrelease.py (subrelease and its demand record), huge_region.py
(HugeRegion), huge_cache.py (HugeCache, HugeAllocator) over huge_allocator.py (their range sets),
huge_page_placement.py (the compiled batch calls) and huge_page_aware_allocator.py (the allocator).
"""

from __future__ import annotations

from .huge_page_aware_allocator import HugePageAwareAllocator

TemeraireAllocator = HugePageAwareAllocator

__all__ = ["HugePageAwareAllocator", "TemeraireAllocator"]
