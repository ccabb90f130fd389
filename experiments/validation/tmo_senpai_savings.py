"""TMO's savings: senpai at its default pressure target takes 20-32% of a server's memory.

Weiner et al., TMO (ASPLOS'22; docs/literature.md section 8): in production senpai holds memory pressure at
about 0.17% (10 ms of `some` stall per 6 s) and saves 20-32% of memory across Meta's fleet. Here one tenant
runs with senpai's defaults and its twin without, each on its own zram node. Measured: 1 - the senpai
tenant's RSS over its twin's, over the last 10% of the run, in percent.
"""

from clustersim.experiments.validation import Claim, tail_mean
from clustersim.figures.claims import lines


def measure(ctx) -> float:
    results = ctx.sweep("tmo_senpai_savings.yaml")
    series = results.timeseries
    curves = {}
    for tenant in ("plain", "senpai"):
        rows = series[series["tenant"] == tenant].groupby("time_s")["rss_bytes"].mean()
        curves["memory.high" if tenant == "senpai" else "none"] = (list(rows.index), list(rows.values / 2**20))
    lines(curves, "time (s)", "RSS (MiB)", ctx.figure, legend_title="senpai")
    return 100 * (1 - tail_mean(results, "rss_bytes", "senpai") / tail_mean(results, "rss_bytes", "plain"))


CLAIM = Claim(
    name="tmo_senpai_savings",
    source="Weiner et al., TMO, ASPLOS 2022 (sections 1 and 5)",
    statement="senpai at its default pressure target saves 20-32% of memory.",
    published=26.0, low=20.0, high=32.0, unit="% of RSS saved",
    band="the published fleet range, 20-32%, as it stands; the published figure is its middle",
    measure=measure,
    lacks="workloads whose cold share and refault cost are fitted to Meta's fleet: the saving depends on how "
          "much of a heap is cold, which the model's access pattern (hot_share) sets, not the paper",
    quick_duration="600s",
)
