"""On 4.5 a zram device makes MADV_FREE lazy, where a swapless node frees at once.

The 2015 thread (docs/literature.md section 1): 4.5's lazyfree pages sat on the anon LRU and needed swap to
be kept; zram is a swap device, so the same allocator on a zram node keeps LazyFree memory. Measured: the
time-mean LazyFree of the zram fleet minus the swapless fleet's, MiB.
"""

from clustersim.experiments.validation import Claim, cell
from clustersim.figures.plot import plot

SWAP = "nodes.0.swap.kind"
MIB = float(1 << 20)


def measure(ctx) -> float:
    results = ctx.sweep("thread_zram_lets_free_be_lazy.yaml")
    plot(ctx.out / "thread_zram_lets_free_be_lazy", x=SWAP, y="lazyfree_bytes_mean", hue=SWAP, kind="bar",
         out=ctx.figure)
    zram = cell(results, "lazyfree_bytes_mean", {SWAP: "zram"})
    return (zram - cell(results, "lazyfree_bytes_mean", {SWAP: "none"})) / MIB


CLAIM = Claim(
    name="thread_zram_lets_free_be_lazy",
    source="linux-mm MADV_FREE thread (2015); Linux 4.5",
    statement="With zram, 4.5's MADV_FREE keeps released memory lazily; without swap it cannot.",
    published=float("nan"), low=1.0, high=float("inf"), unit="MiB of LazyFree (zram - swapless)",
    band="direction only: any LazyFree at all on zram (at least 1 MiB) against exactly none on the swapless "
         "node",
    measure=measure,
    lacks="lazyfree kept on a zram node under the 4.5 profile",
)
