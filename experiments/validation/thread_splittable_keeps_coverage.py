"""MADV_SPLITTABLE keeps the heap on THPs when there is no memory pressure.

Rientjes in the 2015 thread (docs/literature.md section 1): with MADV_SPLITTABLE the released range is only
queued, so the heap stays "100%" backed by THPs until reclaim needs the memory. Measured: the time-mean THP
coverage of the SPLITTABLE fleet on a node with room, in percent.
"""

from clustersim.experiments.validation import Claim, cell
from clustersim.figures.plot import plot

MADVISE = "tenants.0.allocator.madvise"


def measure(ctx) -> float:
    results = ctx.sweep("thread_splittable_keeps_coverage.yaml")
    plot(ctx.out / "thread_splittable_keeps_coverage", x=MADVISE, y="thp_coverage", hue=MADVISE, kind="bar",
         out=ctx.figure)
    return 100 * cell(results, "thp_coverage", {MADVISE: "splittable"})


CLAIM = Claim(
    name="thread_splittable_keeps_coverage",
    source="linux-mm MADV_FREE thread (2015), Rientjes (MADV_SPLITTABLE proposal)",
    statement="Without memory pressure MADV_SPLITTABLE keeps the whole heap backed by THPs.",
    published=100.0, low=95.0, high=100.0, unit="% THP coverage",
    band="'backs 100% of the heap with thp': 5 points are left for the heap's growth faulted before "
         "khugepaged or a THP fault covers it",
    measure=measure,
    lacks="a SPLITTABLE path that splits on release",
)
