"""A small multi-node fleet for the shard tests: two node groups, three tenants, small heaps, 90 s."""

from __future__ import annotations

import hashlib

from clustersim.results_contract import TABLES


def service(name: str, allocator: dict, replicas: int, **workload) -> dict:
    return {"name": name, "replicas": replicas, "allocator": allocator,
            "workload": {"profile": "tcmalloc/beta", "heap": "96M", "churn": "4MiB/s", "rps": 100, **workload}}


def small_fleet(duration: str = "90s") -> dict:
    """Five nodes in two groups (one with zram), a spread service, a spread cache and a batch tenant
    pinned to the second group: several tenants per node, pairs in both groups."""
    return {"name": "shards", "seed": 11, "duration": duration, "tick": "1s",
            "nodes": [{"name": "big", "count": 3, "memory": "1G"},
                      {"name": "small", "count": 2, "memory": "512M", "swap": {"kind": "zram", "size": "256M"}}],
            "tenants": [service("web", {"kind": "temeraire"}, 5),
                        service("cache", {"kind": "tcmalloc"}, 3, kind="cache"),
                        {**service("batch", {"kind": "jemalloc"}, 2, kind="batch"), "placement": {"small": 2}}]}


def digest(tables) -> str:
    """sha256 of the summary (repr of every value) and of every table written with full precision."""
    h = hashlib.sha256(repr(sorted(tables.summary.items())).encode())
    for name in TABLES:
        h.update(name.encode())
        h.update(getattr(tables, name).to_csv(index=False, float_format="%.17g").encode())
    return h.hexdigest()
