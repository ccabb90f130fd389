"""Directional results the 2015 linux-mm thread predicts, each on a small fleet.

Sources: the 2015 linux-mm thread "[PATCH 0/8] MADV_FREE support" (docs/literature.md section 1; Rientjes:
MADV_FREE "wouldn't help at all in a swapless environment" on 4.5, SPLITTABLE "backs 100% of the heap with
thp" without pressure; Micay: FREE "completely avoids page faults when there's no memory pressure"), and
Temeraire (OSDI'21, docs/literature.md section 2) for the neighbour effect.
"""

from __future__ import annotations

import pytest
from fleet_helpers import fleet, run, service

TCMALLOC = {"kind": "tcmalloc", "hugepage_advice": True, "release_rate": "4MiB/s"}


def _with(madvise: str) -> dict:
    return {**TCMALLOC, "madvise": madvise}


def test_free_on_swapless_linux_4_5_is_exactly_dontneed():
    # 4.5's MADV_FREE needed swap: on a swapless node the kernel runs it as DONTNEED, so the fleet's
    # coverage, footprint and fault counts come out identical to a DONTNEED fleet.
    dontneed = run(fleet([service("svc", _with("dontneed"))], profile="linux-4.5")).summary
    free = run(fleet([service("svc", _with("free"))], profile="linux-4.5")).summary
    for key in ("thp_coverage", "rss_bytes_mean", "faults_4k", "faults_thp", "thp_split_pmd"):
        assert free[key] == pytest.approx(dontneed[key], rel=1e-9), key
    assert free["lazyfree_bytes_mean"] == 0


def test_free_on_linux_4_12_reuses_without_faults():
    # 4.12+: released pages stay mapped as lazyfree; without pressure reuse is a dirty-bit update, not a
    # fault. The DONTNEED fleet refaults every reused 4 KiB page.
    dontneed = run(fleet([service("svc", _with("dontneed"))], profile="linux-4.12")).summary
    free = run(fleet([service("svc", _with("free"))], profile="linux-4.12")).summary
    assert dontneed["faults_4k"] > 10_000
    assert free["faults_4k"] <= 0.01 * dontneed["faults_4k"]
    assert free["lazyfree_bytes_mean"] > 0
    assert free["rss_bytes_mean"] >= dontneed["rss_bytes_mean"]   # lazyfree pages still count in Rss


def test_splittable_keeps_the_heap_on_thps_without_pressure():
    # SPLITTABLE only queues the range: no zap, no split, so a tcmalloc heap that releases continuously stays
    # (nearly) 100% THP-backed, while the DONTNEED heap loses its hugepages to PMD splits.
    dontneed = run(fleet([service("svc", _with("dontneed"))])).summary
    split = run(fleet([service("svc", _with("splittable"))], proposals=["madv_splittable"])).summary
    assert split["thp_coverage"] >= 0.98
    assert split["thp_split_pmd"] == 0
    assert dontneed["thp_coverage"] <= split["thp_coverage"] - 0.2


def _neighbours(kind: str, seed: int) -> dict:
    grow = {"startup": {"duration": "200s"}}
    tenants = [
        service("neighbour", {"kind": kind, "hugepage_advice": True, "release_rate": "16MiB/s"}, heap="768M",
                churn="16MiB/s", diurnal={"amplitude": 0.5, "period": "120s"}),
        service("norelease", {"kind": "tcmalloc", "hugepage_advice": True, "release_rate": 0}, replicas=1,
                heap="768M", churn="16MiB/s", **grow),
    ]
    return fleet(tenants, memory="3G", duration="300s", seed=seed, thp={"enabled": "madvise", "defrag": "never"})


@pytest.mark.parametrize("seed", [1, 2])
def test_a_tenant_that_never_releases_gains_coverage_when_its_neighbour_becomes_hugepage_aware(seed):
    # Temeraire's 1% fleet experiment: binaries with release OFF went from 44.3% to 67.3% hugepage coverage
    # only because their neighbours fragmented physical memory less. Here a non-releasing tenant grows its
    # heap while two neighbours churn and release: legacy tcmalloc's scattered DONTNEEDs leave few free
    # pageblocks, Temeraire releases whole hugepages.
    legacy = run(_neighbours("tcmalloc", seed)).tenants.set_index("tenant")
    aware = run(_neighbours("temeraire", seed)).tenants.set_index("tenant")
    assert aware.loc["norelease", "thp_coverage"] >= legacy.loc["norelease", "thp_coverage"] + 0.03
    assert aware.loc["neighbour", "thp_coverage"] > legacy.loc["neighbour", "thp_coverage"]
