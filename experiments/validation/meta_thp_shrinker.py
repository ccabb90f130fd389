"""Meta's underused-THP shrinker: THP=always costs +7.7% memory over madvise; with the shrinker +2.4%.

Commit dafff3f4c850 ("mm: split underused THPs", Linux 6.12; docs/literature.md section 7): on Meta's
CPU-bound service THP=madvise used 54.6 GB, always 58.8 GB (+7.7%, +1.8% performance), always with the
shrinker at max_ptes_none=409 55.9 GB (+2.4%, +1.7%). The bloat comes from heaps that touch only part of
each hugepage; the run needs heaps with that sparsity (a sparse-heap workload knob).
"""

from clustersim.experiments.validation import Claim

CLAIM = Claim(
    name="meta_thp_shrinker",
    source="Linux commit dafff3f4c850 (mm: split underused THPs), cover letter table",
    statement="THP=always with the underused shrinker (max_ptes_none=409) uses +2.4% memory over madvise.",
    published=2.4, low=0.0, high=4.8, unit="% memory over THP=madvise",
    band="the published +2.4% with its own size as the spread: between no bloat and twice the published",
    needs=("tenants.0.workload.sparsity",),
    lacks="sparse heaps: allocations that touch only part of each hugepage",
)
