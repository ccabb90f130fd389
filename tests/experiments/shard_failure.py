"""A sharded fleet whose shards after the first fail at once: the run must fail and name the error."""

from __future__ import annotations

from clustersim.fleet.simulate import merge, shards
from clustersim.fleet.simulate import run_shard as fleet_run_shard

__all__ = ["merge", "run_shard", "shards"]


def run_shard(config, shard, progress=None, seed=None):
    if shard.nodes.start > 0:
        raise RuntimeError(f"injected failure in the shard starting at node {shard.nodes.start}")
    return fleet_run_shard(config, shard, progress, seed)
