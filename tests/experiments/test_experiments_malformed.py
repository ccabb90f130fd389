"""Every malformed run or sweep file is rejected by ``check`` (or before a sweep starts) with exit 2.

Each case is a file a user could write; the message must name the key path the user wrote (never a
pydantic union label), the value, and what is allowed. These are the inputs that once passed ``check`` and
failed inside the run (NaN, zero intervals, float seeds, unsafe names, duplicate keys, huge nodes ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clustersim.cli import main

RUN_CASES: list[tuple[str, str, str]] = [
    # (case id, run file text, text the message must contain)
    ("nan-duration", "duration: .nan", "duration: nan -> a finite duration"),
    ("inf-rps", "tenants: [{workload: {rps: .inf}}]", "tenants.0.workload.rps: inf -> a finite number"),
    ("nan-kernel-share", "kernel: {vm: {kernel_share: .nan}}", "kernel.vm.kernel_share: nan -> a finite number"),
    ("inf-ratio", "nodes: [{swap: {kind: zram, compression_ratio: .inf}}]", "nodes.0.swap.compression_ratio: inf"),
    ("inf-heap", "tenants: [{workload: {heap: .inf}}]", "tenants.0.workload.heap: inf -> a finite size"),
    ("huge-node", "nodes: [{memory: 1000000T}]", "nodes.0.memory: "),
    ("node-not-pageblocks", "nodes: [{memory: 129M}]", "nodes.0.memory: '129M' -> a multiple of 2M"),
    ("node-too-small", "nodes: [{memory: 64M}]", "at least 128M"),
    ("scan-sleep-zero", "kernel: {thp: {scan_sleep: 0}}", "kernel.thp.scan_sleep: 0 -> > 0"),
    ("alloc-sleep-zero", "kernel: {thp: {alloc_sleep: 0s}}", "kernel.thp.alloc_sleep: '0s' -> > 0"),
    ("diurnal-period-zero", "tenants: [{workload: {diurnal: {period: 0}}}]", "tenants.0.workload.diurnal.period: 0"),
    ("restart-interval-zero", "tenants: [{workload: {restarts: {interval: 0}}}]",
     "tenants.0.workload.restarts.interval: 0 -> > 0"),
    ("sample-interval-zero", "sample_interval: 0", "sample_interval: 0 -> > 0"),
    ("heap-zero", "tenants: [{workload: {heap: 0}}]", "tenants.0.workload.heap: 0 -> >= 4K"),
    ("churn-zero", "tenants: [{workload: {churn: 0}}]", "tenants.0.workload.churn: 0 -> > 0"),
    ("median-zero", "tenants: [{workload: {service_time: {median: 0, p99: 1ms}}}]",
     "tenants.0.workload.service_time.median: 0 -> > 0"),
    ("startup-bytes-no-duration", "tenants: [{workload: {startup: {bytes: 1G}}}]",
     "tenants.0.workload.startup.duration: 0.0 -> > 0"),
    ("tick-zero", "tick: 0", "tick: 0 -> > 0"),
    ("seed-too-big", "seed: 9223372036854775808", "seed: 9223372036854775808 -> in [0, 2^63-1]"),
    ("seed-negative", "seed: -1", "seed: -1 -> in [0, 2^63-1]"),
    ("seed-float", "seed: 1.0", "seed: 1.0 -> an integer"),
    ("seed-bool", "seed: true", "seed: True -> an integer"),
    ("replicas-float", "tenants: [{replicas: 2.0}]", "tenants.0.replicas: 2.0 -> an integer"),
    ("count-bool", "nodes: [{count: true}]", "nodes.0.count: True -> an integer"),
    ("tenant-name-slash", "tenants: [{name: a/b}]", "tenants.0.name: 'a/b' -> a name of [A-Za-z0-9._-]"),
    ("tenant-name-dotdot", "tenants: [{name: '..'}]", "tenants.0.name: '..' -> a name"),
    ("tenant-name-nul", 'tenants: [{name: "a\\0b"}]', "tenants.0.name: "),
    ("tenant-name-empty", "tenants: [{name: ''}]", "tenants.0.name: '' -> a name"),
    ("tenant-name-yaml-bool", "tenants: [{name: off}]",
     "tenants.0.name: False -> a string (unquoted yes, no, on and off are YAML booleans: quote it: 'off')"),
    ("group-name-space", "nodes: [{name: 'a b'}]", "nodes.0.name: 'a b' -> a name"),
    ("cgroup-dotdot", "tenants: [{cgroup: ../escape}]", "tenants.0.cgroup: '../escape' -> a cgroup path"),
    ("cgroup-empty-part", "tenants: [{cgroup: a//b}]", "tenants.0.cgroup: 'a//b' -> a cgroup path"),
    ("cgroup-leading-slash", "tenants: [{cgroup: /abs}]", "tenants.0.cgroup: '/abs' -> a cgroup path"),
    ("cgroup-tree-key", "nodes: [{cgroups: {'a/../b': {}}}]", "nodes.0.cgroups.a/../b: 'a/../b' -> a cgroup path"),
    ("duplicate-key", "seed: 1\nseed: 2", "seed: 'seed' -> a key named once in its mapping (repeated on line 2)"),
    ("duplicate-nested-key", "kernel:\n  thp: {enabled: always, enabled: never}",
     "kernel.thp.enabled: 'enabled' -> a key named once"),
    ("unknown-cost", "kernel: {costs: {syscal_s: 1us}}", "kernel.costs.syscal_s: 'syscal_s' -> a cost name"),
    ("cost-nan", "kernel: {costs: {syscall_s: .nan}}", "kernel.costs.syscall_s: nan -> a finite duration"),
    ("swap-size-suffix", "nodes: [{swap: {kind: zram, size: 1}}]", "nodes.0.swap.size: 1 -> >= 4K"),
    ("mmap-threshold-suffix", "tenants: [{allocator: {kind: glibc, mmap_threshold: 64M}}]", "-> in [0, 32M]"),
    ("min-above-max", "tenants: [{limits: {min: 2G, max: 1G}}]", "tenants.0.limits.min: '2G' -> <= max (1G)"),
    ("placement-unknown-group", "tenants: [{placement: {nope: 1}}]", "tenants.0.placement.nope: 'nope'"),
    ("placement-bad", "tenants: [{placement: scatter}]", "tenants.0.placement: 'scatter' -> spread, pack"),
    ("allocator-kind-option", "tenants: [{allocator: {kind: jemalloc, release_rate: 1}}]",
     "tenants.0.allocator.release_rate: 1 -> not a key here"),
    ("swap-kind-option", "nodes: [{swap: {kind: zram, device: hdd}}]", "nodes.0.swap.device: 'hdd' -> not a key"),
    ("duplicate-tenant", "tenants: [{name: a}, {name: a}]", "tenants.1.name: 'a' -> a name not used"),
    ("not-a-mapping", "- 1\n- 2", "(top level): list -> a mapping of keys"),
]


def _check(tmp_path: Path, capsys: Any, text: str) -> tuple[int, str]:
    path = tmp_path / "run.yaml"
    path.write_text(text + "\n")
    code = main(["check", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in RUN_CASES], ids=[c[0] for c in RUN_CASES])
def test_check_rejects_a_malformed_run_file_naming_its_key(text: str, expected: str, tmp_path: Path,
                                                         capsys: Any) -> None:
    code, err = _check(tmp_path, capsys, text)
    assert code == 2, err
    assert expected in err
    assert "Traceback" not in err and ".int:" not in err and ".zram." not in err


def test_every_problem_of_a_file_is_listed_together(tmp_path: Path, capsys: Any) -> None:
    # A per-key problem in one tenant does not hide a cross-key problem in another, nor a second cost typo.
    text = ("seed: 1.5\nkernel: {costs: {a_s: 1s, b_s: 1s}}\n"
            "tenants: [{workload: {heap: 0}}, {limits: {low: 2G, high: 1G}}]")
    code, err = _check(tmp_path, capsys, text)
    assert code == 2
    for expected in ("seed: 1.5", "kernel.costs.a_s", "kernel.costs.b_s", "tenants.0.workload.heap",
                     "tenants.1.limits.low"):
        assert expected in err


SWEEP_CASES: list[tuple[str, str, str]] = [
    ("seeds-float", "base: base.yaml\nseeds: 1.5", "seeds: 1.5 -> an integer (not 1.0 or true) or a list"),
    ("seeds-too-big", "base: base.yaml\nseeds: [9223372036854775808]", "seeds: [9223372036854775808]"),
    ("grid-empty-list", "base: base.yaml\ngrid: []", "grid: [] -> at least one mapping"),
    ("grid-empty-values", "base: base.yaml\ngrid: {duration: []}", "grid: {'duration': []} -> key paths each"),
    ("zip-empty-values", "base: base.yaml\nzip: {duration: []}", "zip: {'duration': []}"),
    ("base-missing-key", "grid: {duration: [1, 2]}", "base: '(missing)' -> required"),
    ("base-folder", "base: .", "base: '.' -> a run file, not a folder"),
    ("base-absent-file", "base: nope.yaml", "base: 'nope.yaml' -> a readable run file"),
    ("base-is-itself", "base: sweep.yaml", "base: 'sweep.yaml' -> a run file, not this sweep file"),
    ("base-is-a-sweep", "base: other.yaml", "base: 'other.yaml' -> a run file, not a sweep file"),
    ("base-not-a-mapping", "base: list.yaml", "base: 'list.yaml' -> a readable run file"),
    ("sample-inf", "base: base.yaml\nsample: {params: {duration: {low: 1, high: .inf}}}",
     "sample.params.duration.high: inf -> a finite number"),
    ("grid-nan", "base: base.yaml\ngrid: {duration: [.nan]}", "duration: nan -> a finite duration"),
    ("grid-bad-name", "base: base.yaml\ngrid: {tenants.0.name: [a/b]}", "tenants.0.name: 'a/b' -> a name"),
    ("duplicate-key", "base: base.yaml\nseeds: 2\nseeds: 3", "seeds: 'seeds' -> a key named once"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in SWEEP_CASES], ids=[c[0] for c in SWEEP_CASES])
def test_a_malformed_sweep_file_is_rejected_before_any_run(text: str, expected: str, tmp_path: Path,
                                                          capsys: Any) -> None:
    (tmp_path / "base.yaml").write_text("duration: 5s\ntenants: [{name: web, workload: {heap: 64M}}]\n")
    (tmp_path / "other.yaml").write_text("base: base.yaml\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    (tmp_path / "sweep.yaml").write_text(text + "\n")
    code = main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err
    assert ".int:" not in err and "list[int]" not in err
    assert not (tmp_path / "out").exists()


def test_a_typo_repeated_over_a_grid_is_listed_once_with_its_count(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "base.yaml").write_text("duration: 5s\n")
    (tmp_path / "sweep.yaml").write_text(
        "base: base.yaml\ngrid: {kernel.thp.enabld: [never], tick: [0.5, 1], duration: [2, 3, 4, 5]}\n")
    code = main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out"), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("kernel.thp.enabld: 'never' -> not a key here") == 1
    assert "(in all 8 parameter points; first: run 0" in err
