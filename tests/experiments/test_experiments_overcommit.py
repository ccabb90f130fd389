"""Overcommit is an experiment, not a mistake: heaps summing above a node's memory warn and run; a single heap
larger than a node's memory plus swap is an error. Also: a bad swap option names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from clustersim.cli import main
from clustersim.experiments.config import ConfigError, config_warnings, load_config

FAKE = "clustersim.experiments.fake:simulate"
G = 1 << 30


def test_heaps_summing_above_a_node_warn_with_group_and_ratio_and_the_config_loads() -> None:
    # 5 replicas spread over 2 nodes: 3 on one node, 3 x 6G = 18G on a 16G node: ratio 18/16 = 1.125 -> "1.12".
    config = load_config({"nodes": [{"name": "web", "count": 2, "memory": "16G"}],
                          "tenants": [{"replicas": 5, "workload": {"heap": "6G"}}]})
    [line] = config_warnings(config)
    assert line.startswith("nodes.0 (node group web): the heaps placed on one node sum to 18G, ratio 1.12 "
                           "of its memory (16G)")


def test_loads_add_over_tenants_and_only_overcommitted_groups_warn() -> None:
    # Explicit placement: group a (1 x 8G) holds 1 x 5G of t0 and 1 x 4G of t1 = 9G, ratio 1.125; group b
    # (1 x 16G) holds 1 x 5G of t0 = 5G and stays quiet.
    config = load_config({"nodes": [{"name": "a", "memory": "8G"}, {"name": "b", "memory": "16G"}],
                          "tenants": [{"replicas": 2, "placement": {"a": 1, "b": 1}, "workload": {"heap": "5G"}},
                                      {"replicas": 1, "placement": {"a": 1}, "workload": {"heap": "4G"}}]})
    [line] = config_warnings(config)
    assert line.startswith("nodes.0 (node group a): the heaps placed on one node sum to 9G, ratio 1.12")


def test_a_config_that_fits_has_no_warnings() -> None:
    # 2 replicas of 8G spread over 2 x 16G: 8G per node, ratio 0.5.
    config = load_config({"nodes": [{"count": 2, "memory": "16G"}],
                          "tenants": [{"replicas": 2, "workload": {"heap": "8G"}}]})
    assert config_warnings(config) == []


def test_packed_heaps_above_the_fleet_warn_naming_the_groups() -> None:
    # 3 packed replicas of 15G over 2 x 16G = 32G: 45G, ratio 45/32 = 1.40625 -> "1.41".
    config = load_config({"nodes": [{"name": "web", "count": 2, "memory": "16G"}],
                          "tenants": [{"replicas": 3, "placement": "pack", "workload": {"heap": "15G"}}]})
    [line] = config_warnings(config)
    assert line.startswith("tenants.0.placement (node groups web): 3 packed heaps of 15G sum to 45G, ratio 1.41")


@pytest.mark.parametrize("swap, ok", [({"kind": "none"}, False), ({"kind": "disk", "size": "2G"}, True),
                                      ({"kind": "zram", "size": "512M"}, False)])
def test_one_heap_above_memory_plus_swap_is_an_error(swap: dict[str, Any], ok: bool) -> None:
    # A 9G heap on an 8G node: an error without swap or with 512M of zram (8.5G), allowed with 2G of disk
    # swap (10G), where it runs overcommitted (ratio 9/8 = 1.125).
    data = {"nodes": [{"name": "n", "memory": "8G", "swap": swap}], "tenants": [{"workload": {"heap": "9G"}}]}
    if ok:
        assert config_warnings(load_config(data))[0].startswith("nodes.0 (node group n): the heaps placed on "
                                                                "one node sum to 9G, ratio 1.12")
        return
    with pytest.raises(ConfigError) as info:
        load_config(data)
    room = "8G" if swap["kind"] == "none" else "8.5G"
    assert info.value.problems == [f"tenants.0.workload.heap: '9G' -> at most {room} (memory plus swap of node "
                                   "group n): one heap larger than a node cannot run"]


def test_check_and_run_print_the_warning_on_stderr_and_go_on(tmp_path: Path, capsys: Any,
                                                             monkeypatch: Any) -> None:
    # `check` exits 0 with the resolved config on stdout; `run` (with the test stand-in simulation) runs.
    path = tmp_path / "over.yaml"
    path.write_text(yaml.safe_dump({"name": "over", "duration": "1m",
                                    "nodes": [{"name": "web", "count": 1, "memory": "16G"}],
                                    "tenants": [{"replicas": 2, "workload": {"heap": "10G"}}]}))
    assert main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "# config hash: " in out
    assert "warning: nodes.0 (node group web): the heaps placed on one node sum to 20G, ratio 1.25" in err
    monkeypatch.setenv("CLUSTERSIM_SIMULATE", FAKE)
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 0
    assert "ratio 1.25" in capsys.readouterr().err
    assert (tmp_path / "o" / "manifest.json").exists()


@pytest.mark.parametrize("swap, line", [
    ({"kind": "floppy"}, "nodes.0.swap.kind: 'floppy' -> one of none, disk, zram, zswap"),
    ("zram", "nodes.0.swap: 'zram' -> a mapping"),
    ({"kind": "zram", "compression_ratio": "x"}, "nodes.0.swap.compression_ratio: 'x' -> a number"),
])
def test_a_bad_swap_option_names_its_key(swap: Any, line: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"nodes": [{"swap": swap}]})
    assert info.value.problems == [line]
