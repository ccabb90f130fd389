"""From 4.12 MADV_FREE is lazy without swap: reusing released memory costs no page fault.

Micay in the 2015 thread (docs/literature.md section 1): MADV_FREE "completely avoids page faults when
there's no memory pressure"; Shaohua Li's 4.12 series moved lazyfree pages to the file LRU so this holds
without swap. Measured: 4 KiB faults of the FREE fleet over the DONTNEED fleet's, on a node with room.
"""

from clustersim.experiments.validation import Claim, cell
from clustersim.figures.plot import plot

MADVISE = "tenants.0.allocator.madvise"


def measure(ctx) -> float:
    results = ctx.sweep("thread_4_12_free_reuses_without_faults.yaml")
    plot(ctx.out / "thread_4_12_free_reuses_without_faults", x=MADVISE, y="faults_4k", hue=MADVISE,
         kind="bar", out=ctx.figure)
    return cell(results, "faults_4k", {MADVISE: "free"}) / cell(results, "faults_4k", {MADVISE: "dontneed"})


CLAIM = Claim(
    name="thread_4_12_free_reuses_without_faults",
    source="linux-mm MADV_FREE thread (2015), Micay; Linux 4.12",
    statement="Without memory pressure, memory released with MADV_FREE is reused without page faults.",
    published=0.0, low=0.0, high=0.05, unit="x (FREE faults / DONTNEED faults)",
    band="'completely avoids page faults': reuse faults vanish; up to 5% of DONTNEED's faults are left for "
         "the first touches of heap growth, which both fleets pay",
    measure=measure,
    lacks="lazyfree reuse that faults (e.g. a profile that drops lazyfree pages eagerly)",
)
