"""A fleet split into shards (contiguous node ranges) merges into the serial run's tables, bit for bit."""

from __future__ import annotations

import pandas as pd
import pytest
from shard_helpers import digest, small_fleet

from clustersim.experiments.config import load_config
from clustersim.fleet.layout import shards, split_points
from clustersim.fleet.model import Fleet
from clustersim.fleet.simulate import run_shard, simulate
from clustersim.fleet.state import merge
from clustersim.results_contract import TABLES


@pytest.fixture(scope="module")
def config():
    return load_config(small_fleet())


@pytest.fixture(scope="module")
def serial(config):
    return simulate(config)


@pytest.mark.parametrize("count", [2, 3])
def test_shards_merge_into_the_serial_tables_bit_for_bit(config, serial, count):
    parts = shards(config, count)
    assert len(parts) == count
    merged = merge([run_shard(config, part) for part in reversed(parts)])   # any completion order
    assert digest(merged) == digest(serial)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(merged, name), getattr(serial, name), check_exact=True)
    assert repr(merged.summary) == repr(serial.summary)


def test_a_shard_builds_only_its_own_nodes_and_replicas_seeded_by_their_fleet_position(config):
    whole, (first, second) = Fleet(config), shards(config, 2)
    part = Fleet(config, shard=second)
    names = [(n.group, n.index) for n in whole.nodes]
    assert [(n.group, n.index) for n in part.nodes] == names[second.nodes.start:]
    theirs = whole.nodes[second.nodes.start:]
    assert [p.name for p in part.processes] == [p.name for p in whole.processes if p.node in theirs]
    # the same kernel and demand streams as the same node and replica of the whole fleet
    assert part.nodes[0].kernel.rng.random() == whole.nodes[second.nodes.start].kernel.rng.random()
    mine = {p.name: p for p in whole.processes}
    for p in part.processes:
        assert p.prng.random() == mine[p.name].prng.random()
    assert len(first.placed) + len(second.placed) == len(whole.processes)


def test_shards_are_contiguous_non_empty_and_balanced_by_weight():
    # Weights 5,1,1,1,5,1 (total 14) in 2 shards: the first boundary is where the running sum reaches 7.
    assert split_points([5, 1, 1, 1, 5, 1], 2) == [0, 3, 6]
    assert split_points([1, 1, 1], 5) == [0, 1, 2, 3]          # never more shards than nodes
    assert split_points([10, 1, 1, 1], 4) == [0, 1, 2, 3, 4]   # every shard keeps at least one node
    assert split_points([4], 1) == [0, 1]
