"""Per-tenant truth and the (tenant, node group) table: a tenant's kernel counts are its own (its memcg leaves'
memory.stat and its tasks' split counts, docs/kernel.md Event counters), and every summary key is also
reported per node group the tenant runs in."""

from __future__ import annotations

import pytest
from fleet_helpers import fleet, run, service

import clustersim
from clustersim.results_contract import SUMMARY_KEYS, TENANT_GROUP_KEYS

# Counts whose tenant value is the sum over its node groups, and whose fleet value is the sum over tenants
# where Linux counts per memcg (thp_collapse_alloc) or the model per task (the others).
COUNTS = ("faults_4k", "faults_thp", "thp_split_pmd", "thp_collapse_alloc", "madvise_calls", "oom_kills")
OWN_EVENTS = ("thp_split_pmd", "thp_collapse_alloc")


@pytest.fixture(scope="module")
def lkml2015():
    """configs/lkml2015.yaml for 30 s: three tenants (DONTNEED, FREE, SPLITTABLE) on the same four nodes, each
    spread over the swapless and the zram group."""
    return clustersim.run("configs/lkml2015.yaml", overrides=["duration=30s"])


def test_tenants_on_the_same_nodes_count_their_own_splits_and_collapses(lkml2015):
    # Every tenant has two replicas on each node. Before, each showed the nodes' vmstat totals, the same for
    # all three. Now MADV_SPLITTABLE, which only queues pages (docs/kernel.md, madvise by profile: no zap, no
    # split at the call), shows 0 PMD splits, while DONTNEED and FREE (DONTNEED without swap on linux-4.5)
    # split THPs at partial releases; the three sum to the fleet's vmstat.
    t = lkml2015.tenants.set_index("tenant")
    assert t.loc["splittable", "thp_split_pmd"] == 0
    assert t.loc["dontneed", "thp_split_pmd"] > 1000 and t.loc["free", "thp_split_pmd"] > 1000
    assert t.loc["dontneed", "thp_split_pmd"] != t.loc["free", "thp_split_pmd"]
    for key in OWN_EVENTS:
        assert t[key].sum() == lkml2015.summary[key], key
    assert lkml2015.summary["thp_split_pmd"] > 0


def test_lkml2015_separates_the_swapless_and_the_zram_group(lkml2015):
    # linux-4.5's MADV_FREE is lazy only with swap (docs/kernel.md, madvise by profile): in the zram group the
    # FREE tenant's released pages stay resident as LazyFree and are reused without a fault (0 faults_4k); in
    # the swapless group the same call is DONTNEED, so nothing is LazyFree and every reuse faults. DONTNEED
    # behaves alike in both groups.
    g = lkml2015.tenant_groups.set_index(list(TENANT_GROUP_KEYS))
    assert list(g.index) == [(t, grp) for t in ("dontneed", "free", "splittable") for grp in ("swapless", "zram")]
    assert list(lkml2015.tenant_groups.columns) == [*TENANT_GROUP_KEYS, *SUMMARY_KEYS]
    assert g.loc[("free", "swapless"), "lazyfree_bytes_mean"] == 0
    assert g.loc[("free", "zram"), "lazyfree_bytes_mean"] > 1 << 20
    assert g.loc[("free", "swapless"), "faults_4k"] > 10_000
    assert g.loc[("free", "zram"), "faults_4k"] == 0
    assert g.loc[("dontneed", "swapless"), "faults_4k"] > 10_000 and g.loc[("dontneed", "zram"), "faults_4k"] > 10_000


def test_a_tenants_counts_are_the_sum_of_its_node_groups(lkml2015):
    # Counters add over the groups; so do time-mean sizes (the tenant's total is the sum of its groups' totals
    # at every tick).
    t = lkml2015.tenants.set_index("tenant")
    by_tenant = lkml2015.tenant_groups.groupby("tenant")
    for key in COUNTS:
        assert (by_tenant[key].sum() == t[key]).all(), key
    for key in ("rss_bytes_mean", "allocator_free_bytes_mean", "lazyfree_bytes_mean"):
        assert by_tenant[key].sum().to_numpy() == pytest.approx(t[key].to_numpy(), rel=1e-12), key


def test_with_one_node_group_each_tenant_groups_row_is_its_tenants_row():
    # One node, two tenants: the (tenant, node group) rows hold exactly the tenants' numbers, key for key.
    out = run(fleet([service("dn", {"kind": "tcmalloc", "madvise": "dontneed", "release_rate": "4MiB/s"}),
                     service("free", {"kind": "tcmalloc", "madvise": "free", "release_rate": "4MiB/s"})],
                    duration="20s"))
    groups = out.tenant_groups
    assert list(groups["node_group"]) == ["n", "n"]
    assert groups.drop(columns="node_group").equals(out.tenants)
