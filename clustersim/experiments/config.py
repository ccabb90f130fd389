"""The run file: one YAML document describing a fleet, its kernel, memcg trees and tenants.

Reading, overriding, validating and hashing a run file, and pydantic's errors as key-path problems. The
sections are declared in sections.py (the table-checked base, units, kernel and nodes) and schema.py
(tenants and the run); they are re-exported here. The resolved config (``model_dump(mode="json")``) is plain
data that hashes, pickles and re-validates to itself. Checks that span several keys (placement, proposals,
memcg ordering) are in ``checks.py``, and so are the warnings of a valid config (``config_warnings``:
overcommitted node groups), which the command line prints.
"""

from __future__ import annotations

import copy
import hashlib
import json
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .checks import config_warnings, cross_check, section_checks
from .errors import ConfigError, pydantic_lines
from .keypath import KeyPathError, apply_overrides, parse_override
from .schema import (
    SPAN_QUANTUM_DEFAULT,
    TLB_SENSITIVITY_DEFAULT,
    UNION_TAGS,
    WORKLOAD_PROFILES,
    Allocator,
    AllocatorBase,
    Diurnal,
    Glibc,
    Jemalloc,
    Restarts,
    RunConfig,
    Senpai,
    ServiceTime,
    Spikes,
    Startup,
    Tcmalloc,
    Temeraire,
    Tenant,
    Workload,
)
from .sections import (
    Background,
    Duration,
    Frequency,
    KernelConfig,
    Limit,
    Memcg,
    NodeGroup,
    Rate,
    Section,
    Size,
    Swap,
    SwapDisk,
    SwapNone,
    SwapZram,
    SwapZswap,
    ThpConfig,
    VmConfig,
)
from .yamlfile import load_yaml

__all__ = [
    "SPAN_QUANTUM_DEFAULT", "TLB_SENSITIVITY_DEFAULT", "WORKLOAD_PROFILES", "Allocator", "AllocatorBase", "Background",
    "ConfigError", "Diurnal", "Duration", "Frequency", "Glibc", "Jemalloc", "KernelConfig", "Limit", "Memcg",
    "NodeGroup", "Rate", "Restarts", "RunConfig", "Section", "Senpai", "ServiceTime", "Size", "Spikes",
    "Startup", "Swap", "SwapDisk", "SwapNone", "SwapZram", "SwapZswap", "Tcmalloc", "Temeraire", "Tenant", "ThpConfig",
    "VmConfig", "Workload", "config_hash", "config_warnings", "deep_merge", "load_config", "raw_config",
    "read_yaml", "resolved", "validate_config",
]


def _inherit_defaults(data: Any) -> Any:
    """Merge the top-level kernel into each node group and name unnamed groups and tenants by index."""
    if not isinstance(data, Mapping):
        return data
    data = copy.deepcopy(dict(data))
    top = data.get("kernel") or {}
    nodes = data.get("nodes", [{}])
    if isinstance(nodes, list):
        data["nodes"] = [_inherit_group(g, top, i) for i, g in enumerate(nodes)]
    tenants = data.get("tenants")
    if isinstance(tenants, list):
        data["tenants"] = [{"name": f"tenant{i}", **t} if isinstance(t, Mapping) else t
                           for i, t in enumerate(tenants)]
    return data


def _inherit_group(group: Any, top: Any, index: int) -> Any:
    if not isinstance(group, Mapping):
        return group
    out = {"name": f"group{index}", **group}
    if isinstance(top, Mapping) and isinstance(group.get("kernel", {}), Mapping):
        out["kernel"] = deep_merge(top, group.get("kernel") or {})
    return out


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, mappings merged key by key; lists and scalars replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---- loading, resolving and hashing --------------------------------------------------------------------

def read_yaml(path: str | Path, what: str = "run file") -> dict[str, Any]:
    """A YAML mapping from ``path`` (``yaml.safe_load`` only); unreadable input becomes a ConfigError."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"], what) from None
    try:
        data, duplicates = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc})"], what) from None
    if duplicates:
        raise ConfigError(duplicates, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): {type(data).__name__} -> a mapping of keys"], what)
    return data


def raw_config(source: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The unvalidated config mapping of a file or mapping, with ``key.path=value`` overrides applied."""
    data = read_yaml(source) if isinstance(source, str | Path) else copy.deepcopy(dict(source))
    try:
        pairs = dict(parse_override(text) for text in overrides)
        return apply_overrides(data, pairs)
    except KeyPathError as exc:
        raise ConfigError([f"--set {exc}"]) from None


def validate_config(data: Mapping[str, Any], source: str = "config") -> RunConfig:
    """A RunConfig from a raw mapping, or one ConfigError listing every problem."""
    merged = _inherit_defaults(data)
    try:
        config = RunConfig.model_validate(merged)
    except PydanticValidationError as exc:
        raise ConfigError([*pydantic_problems(exc, merged), *section_checks(merged)], source) from None
    problems = cross_check(config)
    if problems:
        raise ConfigError(problems, source)
    return config


def load_config(source: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> RunConfig:
    """Read, override and validate a run file (path) or mapping; raises ConfigError before any work."""
    name = str(source) if isinstance(source, str | Path) else "config"
    return validate_config(raw_config(source, overrides), name)


def resolved(config: RunConfig) -> dict[str, Any]:
    """The resolved config as plain JSON-ready data: every default filled, units in bytes and seconds."""
    return config.model_dump(mode="json")


HASH_EXCLUDES = ("name", "seed")


def config_hash(config: RunConfig | Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of the resolved config.

    ``name`` and ``seed`` are left out: the hash names the simulated system, so replications of one
    configuration share it and a run is identified by the pair (config hash, seed).
    """
    data = resolved(config) if isinstance(config, RunConfig) else dict(config)
    body = {k: v for k, v in data.items() if k not in HASH_EXCLUDES}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


# ---- pydantic errors as key-path problems ---------------------------------------------------------------

def pydantic_problems(exc: PydanticValidationError, raw: Mapping[str, Any]) -> list[str]:
    """One ``path: value -> allowed`` line per key path, union tags removed, inherited duplicates dropped."""
    seen: set[tuple[Any, ...]] = set()

    def inherited(loc: tuple[Any, ...], kind: str) -> bool:
        """An error in a node group's kernel that is the top-level kernel's error, inherited."""
        dup = len(loc) > 3 and loc[0] == "nodes" and loc[2] == "kernel" and ("kernel", *loc[3:], kind) in seen
        seen.add((*loc, kind))
        return dup

    return pydantic_lines(exc.errors(), raw, UNION_TAGS, lambda loc: _allowed_keys(loc, raw), inherited)


def _child(node: Any, step: Any) -> Any:
    try:
        return node[step]
    except (KeyError, IndexError, TypeError):
        return None


def _allowed_keys(loc: tuple[Any, ...], raw: Any) -> list[str]:
    """The keys the model at ``loc[:-1]`` accepts, found by walking the model types alongside the data."""
    typ: Any = RunConfig
    node = raw
    for step in loc[:-1]:
        typ = _unwrap(typ, node)
        if isinstance(typ, type) and issubclass(typ, BaseModel):
            field = typ.model_fields.get(str(step))
            typ = field.annotation if field else None
        elif get_origin(typ) in (list, dict):
            typ = get_args(typ)[-1]
        else:
            return []
        node = _child(node, step)
    typ = _unwrap(typ, node)
    return sorted(typ.model_fields) if isinstance(typ, type) and issubclass(typ, BaseModel) else []


def _unwrap(typ: Any, node: Any) -> Any:
    """Strip Annotated/Optional and pick the union member whose ``kind`` matches the data."""
    while get_origin(typ) is Annotated:
        typ = get_args(typ)[0]
    if get_origin(typ) not in (Union, types.UnionType):
        return typ
    members = [_unwrap(m, node) for m in get_args(typ) if m is not type(None)]
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    kind = node.get("kind") if isinstance(node, Mapping) else None
    match = [m for m in models if "kind" in m.model_fields and m.model_fields["kind"].default == kind]
    return (match or models or members)[0]
