"""simulate(): one fleet run from a resolved config, returning the tables of the results contract.

``run_shard`` runs one shard of a fleet (``layout.shards``) and returns its raw state; ``state.merge`` turns
the states of all shards into the tables. ``simulate`` is the serial run: the one shard of every node,
through the same two steps, so a serial run and a split one cannot diverge. ``shards``, ``run_shard`` and
``merge`` are what a run split over workers uses (``clustersim.experiments.sharded``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..results_contract import RunTables
from .layout import Shard, shards, whole
from .model import Fleet
from .state import ShardState, merge


def simulate(config, progress: Callable[[float, float], None] | None = None, seed: int | None = None
             ) -> RunTables:
    """Build the Fleet for ``config``, run it for its duration, and collect its results."""
    return merge([run_shard(config, whole(config), progress, seed)])


def run_shard(config, shard: Shard, progress: Callable[[float, float], None] | None = None,
              seed: int | None = None) -> ShardState:
    """Build only ``shard``'s nodes and processes, run them for the whole duration, return their state."""
    fleet = Fleet(config, seed=seed, shard=shard)
    fleet.run(progress)
    return fleet.state()


__all__ = ["merge", "run_shard", "shards", "simulate"]
