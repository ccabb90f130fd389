"""4.5's MADV_FREE on a swapless node is MADV_DONTNEED: the same faults, the same footprint.

Rientjes in the 2015 thread (docs/literature.md section 1): MADV_FREE "wouldn't help at all in a swapless
environment". Linux 4.5 freed lazily only with swap (lazyfree pages sat on the anon LRU), so without swap
madvise_free fell back to zapping. Measured: 4 KiB faults of the FREE fleet over the DONTNEED fleet's.
"""

from clustersim.experiments.validation import Claim, cell
from clustersim.figures.plot import plot

MADVISE = "tenants.0.allocator.madvise"


def measure(ctx) -> float:
    results = ctx.sweep("thread_4_5_free_is_dontneed.yaml")
    plot(ctx.out / "thread_4_5_free_is_dontneed", x=MADVISE, y="faults_4k", hue=MADVISE, kind="bar",
         out=ctx.figure)
    return cell(results, "faults_4k", {MADVISE: "free"}) / cell(results, "faults_4k", {MADVISE: "dontneed"})


CLAIM = Claim(
    name="thread_4_5_free_is_dontneed",
    source="linux-mm MADV_FREE thread (2015), Rientjes; Linux 4.5",
    statement="On a swapless Linux 4.5 node MADV_FREE behaves exactly as MADV_DONTNEED.",
    published=1.0, low=0.99, high=1.01, unit="x (FREE faults / DONTNEED faults)",
    band="the kernel runs the same code path for both, so with the same seeds the counts are equal; 1% "
         "is left for nothing but rounding",
    measure=measure,
    lacks="a lazyfree path that does not need swap on the 4.5 profile would break this",
)
