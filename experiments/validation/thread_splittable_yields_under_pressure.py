"""MADV_SPLITTABLE gives its THPs up under pressure: reclaim splits the queued ranges and frees them.

Rientjes' proposal (docs/literature.md section 1): the queued ranges are split and freed only when memory
is needed. The thread gives no number, so the claim is a direction: when a page-cache reader fills the node,
the service's coverage falls below its value on a node with room. Measured: the drop in the service
tenant's time-mean THP coverage between an 8 GiB and a 2 GiB node, points.
"""

from clustersim.experiments.validation import Claim
from clustersim.figures.plot import plot

MEMORY = "nodes.0.memory"


def measure(ctx) -> float:
    results = ctx.sweep("thread_splittable_yields_under_pressure.yaml")
    plot(ctx.out / "thread_splittable_yields_under_pressure", x=MEMORY, y="thp_coverage", kind="bar",
         tenant="svc", out=ctx.figure)
    svc = results.tenants[results.tenants["tenant"] == "svc"]
    by_memory = svc.groupby(MEMORY)["thp_coverage"].mean()
    return 100 * (by_memory.loc["8G"] - by_memory.loc["2G"])

CLAIM = Claim(
    name="thread_splittable_yields_under_pressure",
    source="linux-mm MADV_FREE thread (2015), Rientjes (MADV_SPLITTABLE proposal)",
    statement="Under memory pressure MADV_SPLITTABLE'd ranges are split and reclaimed, so coverage falls.",
    published=float("nan"), low=5.0, high=100.0, unit="points of THP coverage lost",
    band="direction only (the thread gives no number): a drop of at least 5 points, above seed-to-seed "
         "noise of coverage at this heap size",
    measure=measure,
    lacks="reclaim of queued SPLITTABLE ranges under memcg pressure",
)
