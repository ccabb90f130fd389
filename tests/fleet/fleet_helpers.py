"""Small fleet configs for scenario tests: one node, a few hundred MiB of heap, a minute or a few."""

from __future__ import annotations

from clustersim.experiments.config import load_config
from clustersim.fleet import simulate


def service(name: str, allocator: dict, replicas: int = 2, heap: str = "512M", churn: str = "8MiB/s",
            **workload) -> dict:
    """A tcmalloc/beta service tenant with the given allocator options."""
    return {"name": name, "replicas": replicas, "allocator": allocator,
            "workload": {"profile": "tcmalloc/beta", "heap": heap, "churn": churn, "rps": 200, **workload}}


def fleet(tenants: list[dict], profile: str = "linux-6.12", proposals=(), memory: str = "4G",
          swap: dict | None = None, duration: str = "60s", seed: int = 3, thp: dict | None = None) -> dict:
    """One node of ``memory`` running ``tenants``."""
    return {"name": "test", "seed": seed, "duration": duration, "tick": "1s",
            "kernel": {"profile": profile, "proposals": list(proposals),
                       "thp": thp or {"enabled": "madvise"}},
            "nodes": [{"name": "n", "count": 1, "memory": memory, "swap": swap or {"kind": "none"}}],
            "tenants": tenants}


def run(config: dict, seed: int | None = None):
    """Run a config dict through the real fleet and return its RunTables."""
    return simulate(load_config(config), seed=seed)
