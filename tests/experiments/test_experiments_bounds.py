"""The schema's allowed values are the kernel's and the allocators' own: check rejects what they would.

Bounds and defaults are declared once, beside the mechanism (clustersim.kernel.settings, profiles, costs;
each allocator's OPTIONS). These tests pin the schema to those tables, so the two cannot drift, and run the
values just past each bound through both ``clustersim check`` and the layer below.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from clustersim.allocators import ALLOCATORS, make_allocator
from clustersim.allocators.registry import (
    FRONTEND_OPTIONS,
    SECTION_KEYWORDS,
    SECTION_SWITCHES,
    options_from_section,
    section_options,
)
from clustersim.cli import main
from clustersim.experiments import ConfigError, load_config
from clustersim.experiments.config import (
    Glibc,
    Jemalloc,
    KernelConfig,
    NodeGroup,
    SwapDisk,
    SwapZram,
    SwapZswap,
    Tcmalloc,
    Temeraire,
    ThpConfig,
    VmConfig,
)
from clustersim.experiments.sections import SWAP_DEVICE_SIZE_DEFAULT, Bounds
from clustersim.kernel import KernelError, Node
from clustersim.kernel.costs import COST_NAMES, Costs
from clustersim.kernel.profiles import DEFAULT_PROFILE, PROFILES, PROPOSALS
from clustersim.kernel.settings import NODE_MEMORY_MIN_BYTES, PAGEBLOCK_BYTES, SWAP_TUNABLES, THP_TUNABLES, VM_TUNABLES

SECTIONS = {"tcmalloc": Tcmalloc, "temeraire": Temeraire, "jemalloc": Jemalloc, "glibc": Glibc}


def check(tmp_path: Path, capsys: Any, data: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    code = main(["check", str(path)])
    return code, capsys.readouterr().err


# ---- check rejects what the kernel and the allocators would --------------------------------------------

@pytest.mark.parametrize("kind", ["zram", "zswap"])
def test_check_rejects_a_compression_ratio_the_kernel_rejects(kind: str, tmp_path: Path, capsys: Any) -> None:
    # 25:1 passed the schema once and then failed inside the kernel's SwapSettings.
    swap = {"kind": kind, "size": "1G", "compression_ratio": 25}
    code, err = check(tmp_path, capsys, {"nodes": [{"swap": swap}]})
    assert code == 2 and "nodes.0.swap.compression_ratio: 25 -> in [1, 20]" in err
    with pytest.raises(KernelError, match=re.escape("swap.compression_ratio=25")):
        Node(memory="128M", swap=swap)


def test_check_rejects_a_kernel_share_the_kernel_rejects(tmp_path: Path, capsys: Any) -> None:
    code, err = check(tmp_path, capsys, {"kernel": {"vm": {"kernel_share": 0.495}}})
    assert code == 2 and "kernel.vm.kernel_share: 0.495 -> in [0, 0.49]" in err
    with pytest.raises(KernelError, match=re.escape("vm.kernel_share=0.495")):
        Node(memory="128M", vm={"kernel_share": 0.495})


@pytest.mark.parametrize("memory", ["129M", "100M", "126M"])
def test_check_rejects_node_memory_that_is_not_whole_pageblocks_of_at_least_128m(memory: str, tmp_path: Path,
                                                                                 capsys: Any) -> None:
    code, err = check(tmp_path, capsys, {"nodes": [{"memory": memory}]})
    assert code == 2 and f"nodes.0.memory: '{memory}' -> a multiple of 2M and at least 128M" in err
    with pytest.raises(KernelError, match="multiple of 2M and at least 128M"):
        Node(memory=memory)


def test_the_smallest_node_memory_is_128m_in_whole_2m_pageblocks() -> None:
    assert (PAGEBLOCK_BYTES, NODE_MEMORY_MIN_BYTES) == (2 << 20, 128 << 20)
    NodeGroup(memory="128M")
    NodeGroup(memory="130M")


@pytest.mark.parametrize(("allocator", "key", "value", "allowed"), [
    ({"kind": "jemalloc"}, "dirty_decay_ms", -2, ">= -1"),
    ({"kind": "jemalloc"}, "muzzy_decay_ms", -5, ">= -1"),
    ({"kind": "glibc"}, "mmap_threshold", "64M", "in [0, 32M]"),
])
def test_check_rejects_an_allocator_option_out_of_its_bound(allocator: dict[str, Any], key: str, value: Any,
                                                             allowed: str, tmp_path: Path, capsys: Any) -> None:
    data = {"tenants": [{"allocator": {**allocator, key: value}, "workload": {"heap": "1G"}}]}
    code, err = check(tmp_path, capsys, data)
    assert code == 2 and f"tenants.0.allocator.{key}: {value!r} -> {allowed}" in err
    keyword = SECTION_KEYWORDS[allocator["kind"]][key]
    with pytest.raises(ValueError, match=keyword):
        make_allocator(allocator["kind"], None, **{keyword: value})


def _past_bounds(table: dict) -> list[tuple[str, Any]]:
    """(key, value) just outside each declared bound of a kernel table."""
    out = []
    for key, t in table.items():
        step = 1 if t.kind in ("int", "size") else 0.01
        if t.hi is not None:
            out.append((key, t.hi + step))
        if t.lo is not None:
            out.append((key, t.lo if t.lo_open else t.lo - step))
    return out


@pytest.mark.parametrize(("section", "key", "value"), [
    *(("thp", k, v) for k, v in _past_bounds(THP_TUNABLES)),
    *(("vm", k, v) for k, v in _past_bounds(VM_TUNABLES)),
    *(("swap", k, v) for k, v in _past_bounds(SWAP_TUNABLES)),
])
def test_every_value_past_a_kernel_bound_is_rejected_by_both_schema_and_kernel(section: str, key: str,
                                                                              value: Any) -> None:
    if section == "swap":
        swap = {"kind": "zswap", "size": "1G", key: value}
        data, kwargs, path = {"nodes": [{"swap": swap}]}, {"swap": swap}, f"nodes.0.swap.{key}:"
    else:
        data, kwargs, path = {"kernel": {section: {key: value}}}, {section: {key: value}}, f"kernel.{section}.{key}:"
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert any(line.startswith(path) for line in info.value.problems), info.value.problems
    with pytest.raises(KernelError, match=re.escape(f"{section}.{key}")):
        Node(memory="128M", **kwargs)


# ---- the schema's bounds and defaults are the declared tables -------------------------------------------

def _field_default(section: type, key: str) -> Any:
    return section.model_fields[key].default


@pytest.mark.parametrize(("section", "table"), [(ThpConfig, THP_TUNABLES), (VmConfig, VM_TUNABLES),
                                                (SwapDisk, SWAP_TUNABLES), (SwapZram, SWAP_TUNABLES),
                                                (SwapZswap, SWAP_TUNABLES)])
def test_kernel_sections_take_defaults_choices_and_bounds_from_the_kernel_tables(section: type,
                                                                                 table: dict) -> None:
    keys = [k for k in section.model_fields if k != "kind"]
    assert set(keys) <= set(table)
    if section in (ThpConfig, VmConfig):
        assert keys == list(table)
    for key in keys:
        t = table[key]
        default = SWAP_DEVICE_SIZE_DEFAULT if section.__name__.startswith("Swap") and key == "size" else t.default
        assert _field_default(section, key) == default, key
        assert section.CHOICES.get(key, ()) == t.choices, key
        expected = Bounds(t.lo, t.hi, t.lo_open) if t.lo is not None or t.hi is not None else None
        assert section.BOUNDS.get(key) == expected, key


def test_kernel_profiles_proposals_and_costs_are_the_kernels() -> None:
    assert KernelConfig.CHOICES == {"profile": PROFILES, "proposals": PROPOSALS}
    assert _field_default(KernelConfig, "profile") == DEFAULT_PROFILE
    assert inspect.signature(Node).parameters["profile"].default == DEFAULT_PROFILE
    assert tuple(Costs.__dataclass_fields__) == COST_NAMES


@pytest.mark.parametrize("kind", sorted(SECTIONS))
def test_allocator_sections_take_defaults_choices_and_bounds_from_the_allocators_options(kind: str) -> None:
    section, options = SECTIONS[kind], section_options(kind)
    for key, option in options.items():
        assert _field_default(section, key) == option.default, key
        assert section.CHOICES.get(key, ()) == option.choices, key
        expected = Bounds(option.lo, option.hi) if option.lo is not None or option.hi is not None else None
        assert section.BOUNDS.get(key) == expected, key
    for key, switch in SECTION_SWITCHES.items():
        if key in section.model_fields:
            assert _field_default(section, key) is (switch.option.default == switch.on), key


@pytest.mark.parametrize("kind", sorted(SECTIONS))
def test_every_section_key_translates_and_a_default_section_gives_the_constructor_defaults(kind: str) -> None:
    opts = options_from_section(SECTIONS[kind]().model_dump(), None)
    defaults = {k: p.default for k, p in inspect.signature(ALLOCATORS[kind]).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    # the frontend's options (frontend.py, arenas.py) are keywords of make_allocator, not of the model
    defaults |= {k: o.default for k, o in FRONTEND_OPTIONS.get(kind, {}).items()}
    # jemalloc's madvise is the run file's common release advice (dontneed); its constructor's own
    # muzzy_advice default is jemalloc's lazy purge (free), unused while muzzy_decay_ms is 0.
    differ = {k for k in opts if opts[k] != defaults[k]}
    assert differ == ({"muzzy_advice"} if kind == "jemalloc" else set())


@pytest.mark.parametrize("kind", sorted(ALLOCATORS))
def test_each_allocator_constructor_takes_its_defaults_from_its_options_table(kind: str) -> None:
    cls = ALLOCATORS[kind]
    params = {k: p.default for k, p in inspect.signature(cls).parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY and k != "clock"}
    assert params == {k: o.default for k, o in cls.OPTIONS.items()}
    for option in cls.OPTIONS.values():
        assert option.source, kind
