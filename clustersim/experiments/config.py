"""The run file: one YAML document describing a fleet, its kernel, memcg trees and tenants.

Every key has a documented default, so a config names only what it changes; unknown keys are errors
(``extra="forbid"``). Sizes, durations and rates accept the strings of ``clustersim.units`` and are stored
resolved, in bytes, seconds and bytes per second, so the resolved config (``model_dump(mode="json")``) is
plain data that hashes, pickles and re-validates to itself. Allowed values live in one table per model
(``CHOICES``, ``BOUNDS``), checked by one validator, as scikit-learn's ``_parameter_constraints`` are.
Checks that span several keys (placement, proposals, memcg ordering) are in ``checks.py``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from clustersim.kernel.costs import Costs
from clustersim.kernel.settings import THP_DEFRAG, THP_ENABLED, THPSettings, VMSettings
from clustersim.units import UnitError, parse_duration, parse_rate, parse_size
from clustersim.workloads import list_profiles
from clustersim.workloads.tenants import DEFAULT_TLB_SENSITIVITY

from .errors import ConfigError, describe_pydantic, problem
from .keypath import KeyPathError, apply_overrides, parse_override

PROFILES = ("linux-4.5", "linux-4.12", "linux-6.1", "linux-6.12")  # oldest first: checks compare by index
PROPOSALS = ("madv_splittable", "madv_free_undo", "lazy_free_split")

# Default slowdown of a request when none of its heap is THP-backed (factor 1 + s * (1 - coverage)).
# The default TLB sensitivity and the profile names belong to the workload package; one source each.
TLB_SENSITIVITY_DEFAULT = DEFAULT_TLB_SENSITIVITY
WORKLOAD_PROFILES: dict[str, tuple[str, ...]] = {
    source: tuple(n.partition("/")[2] for n in list_profiles() if n.startswith(source + "/"))
    for source in dict.fromkeys(n.partition("/")[0] for n in list_profiles())
}
COST_NAMES = tuple(f.name for f in dataclass_fields(Costs))
# Span grouping quantum: small spans of one class born in the same tick are one allocation unit of at
# least this size (workloads.md). 256 KiB keeps about 64 births per tick for a heap turning over 16 MiB/s.
SPAN_QUANTUM_DEFAULT = 256 << 10


# ---- unit-bearing field types --------------------------------------------------------------------------

def _unit(parse: Any, allowed: str) -> BeforeValidator:
    def convert(value: Any) -> Any:
        try:
            return parse(value)
        except (UnitError, TypeError):
            raise PydanticCustomError("unit", allowed) from None
    return BeforeValidator(convert)


def _limit(value: Any) -> Any:
    if value is None or value == "max":
        return None
    try:
        return parse_size(value)
    except (UnitError, TypeError):
        raise PydanticCustomError("unit", "a size like '4G', or 'max' for no limit") from None


_PER = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def _frequency(value: Any) -> float:
    """Events per second from a number or ``'N/s'``, ``'N/m'``, ``'N/h'``."""
    count, per = [*str(value).split("/", 1), "s"][:2] if isinstance(value, str) else (value, "s")
    try:
        rate = float(count) / _PER[per.strip().lower()]
    except (KeyError, ValueError, TypeError):
        raise PydanticCustomError("unit", "a number of events per second, or like '2/h', '1/m'") from None
    if isinstance(value, bool) or not math.isfinite(rate) or rate < 0:
        raise PydanticCustomError("unit", "a finite number of events per second >= 0")
    return rate


Size = Annotated[int, _unit(parse_size, "a size >= 0 like '4K', '200M', '64GiB', or bytes")]
Duration = Annotated[float, _unit(parse_duration, "a duration >= 0 like '250ms', '10s', '5m', or seconds")]
Rate = Annotated[float, _unit(parse_rate, "a rate >= 0 like '10MiB/s', or bytes per second")]
Limit = Annotated[int | None, BeforeValidator(_limit)]
Frequency = Annotated[float, BeforeValidator(_frequency)]


# ---- the table-checked base ----------------------------------------------------------------------------

class Section(BaseModel):
    """A config mapping: unknown keys rejected, allowed values in ``CHOICES`` and ``BOUNDS`` (inclusive)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)
    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {}
    BOUNDS: ClassVar[dict[str, tuple[float | None, float | None]]] = {}

    @field_validator("*")
    @classmethod
    def _check_tables(cls, value: Any, info: Any) -> Any:
        name = info.field_name
        if name in cls.CHOICES:
            _check_choice(value, cls.CHOICES[name])
        if name in cls.BOUNDS and value is not None:
            _check_bounds(value, *cls.BOUNDS[name])
        return value


def _check_choice(value: Any, allowed: tuple[Any, ...]) -> None:
    items = value if isinstance(value, list) else [value]
    if any(item not in allowed for item in items):
        what = "each one of" if isinstance(value, list) else "one of"
        raise PydanticCustomError("choice", f"{what} {', '.join(map(str, allowed))}")


def _check_bounds(value: float, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            text = f"in [{lo:g}, {hi:g}]"
        else:
            text = f">= {lo:g}" if lo is not None else f"<= {hi:g}"
        raise PydanticCustomError("bounds", text)


# ---- kernel --------------------------------------------------------------------------------------------

# Defaults are the kernel model's own (clustersim.kernel.settings), so the two cannot drift apart.
_THP, _VM = THPSettings(), VMSettings()


class ThpConfig(Section):
    """/sys/kernel/mm/transparent_hugepage: policy and khugepaged knobs (Linux defaults)."""

    CHOICES = {"enabled": THP_ENABLED, "defrag": THP_DEFRAG}
    BOUNDS = {"max_ptes_none": (0, 511), "max_ptes_swap": (0, 511), "pages_to_scan": (1, None)}
    enabled: str = _THP.enabled
    defrag: str = _THP.defrag
    max_ptes_none: int = _THP.max_ptes_none
    max_ptes_swap: int = _THP.max_ptes_swap
    pages_to_scan: int = _THP.pages_to_scan
    scan_sleep: Duration = _THP.scan_sleep
    alloc_sleep: Duration = _THP.alloc_sleep
    shrink_underused: bool = _THP.shrink_underused


class VmConfig(Section):
    """/proc/sys/vm knobs; ``min_free_kbytes`` None means the kernel's sqrt(lowmem * 16) formula."""

    BOUNDS = {"swappiness": (0, 200), "watermark_scale_factor": (1, 3000), "min_free_kbytes": (128, None),
              "kernel_share": (0.0, 0.49), "compaction_proactiveness": (0, 100)}
    swappiness: int = _VM.swappiness
    watermark_scale_factor: int = _VM.watermark_scale_factor
    min_free_kbytes: int | None = _VM.min_free_kbytes
    kernel_share: float = _VM.kernel_share
    compaction_proactiveness: int = _VM.compaction_proactiveness


class KernelConfig(Section):
    """A kernel profile (named bundle of semantics), proposal flags over it, and its tunables."""

    CHOICES = {"profile": PROFILES, "proposals": PROPOSALS}
    profile: str = "linux-6.12"
    proposals: list[str] = Field(default_factory=list)
    thp: ThpConfig = Field(default_factory=ThpConfig)
    vm: VmConfig = Field(default_factory=VmConfig)
    costs: dict[str, Duration] = Field(default_factory=dict)

    @field_validator("costs")
    @classmethod
    def _known_costs(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(COST_NAMES))
        if unknown:
            raise PydanticCustomError("choice", f"cost names from the kernel's table: {', '.join(COST_NAMES)}")
        return value

    def profile_at_least(self, profile: str) -> bool:
        return PROFILES.index(self.profile) >= PROFILES.index(profile)


# ---- memcg and swap ------------------------------------------------------------------------------------

class Memcg(Section):
    """cgroup v2 memory controller files of one cgroup; limits None mean 'max'."""

    min: Size = 0
    low: Size = 0
    high: Limit = None
    max: Limit = None
    swap_max: Limit = None
    zswap_max: Limit = None
    oom_group: bool = False


class SwapNone(Section):
    """No swap device: anonymous memory is not reclaimable."""

    kind: Literal["none"] = "none"


class SwapDisk(Section):
    """A swap partition on a disk; latency and bandwidth from the device preset."""

    CHOICES = {"device": ("nvme", "hdd")}
    BOUNDS = {"size": (4096, None)}
    kind: Literal["disk"] = "disk"
    size: Size = 8 << 30
    device: str = "nvme"


class SwapZram(Section):
    """A compressed RAM block device; compressed pages take node memory."""

    BOUNDS = {"size": (4096, None), "compression_ratio": (1.0, None)}
    kind: Literal["zram"] = "zram"
    size: Size = 8 << 30
    compression_ratio: float = 3.0


class SwapZswap(Section):
    """A compressed pool, capped at a share of RAM, in front of a disk swap device."""

    CHOICES = {"device": ("nvme", "hdd")}
    BOUNDS = {"size": (4096, None), "compression_ratio": (1.0, None), "max_pool_percent": (1, 100)}
    kind: Literal["zswap"] = "zswap"
    size: Size = 8 << 30
    device: str = "nvme"
    compression_ratio: float = 3.0
    max_pool_percent: int = 20


def _kind_of(default: str) -> Any:
    def tag(value: Any) -> str:
        kind = value.get("kind", default) if isinstance(value, Mapping) else getattr(value, "kind", default)
        return str(kind)
    return Discriminator(tag)


Swap = Annotated[
    Annotated[SwapNone, Tag("none")] | Annotated[SwapDisk, Tag("disk")]
    | Annotated[SwapZram, Tag("zram")] | Annotated[SwapZswap, Tag("zswap")],
    _kind_of("none"),
]


class NodeGroup(Section):
    """``count`` identical nodes: memory, swap, a memcg tree (path -> settings) and kernel overrides."""

    BOUNDS = {"count": (1, None), "memory": (2 << 20, None)}
    name: str = "group0"
    count: int = 1
    memory: Size = 16 << 30
    swap: Swap = Field(default_factory=SwapNone)
    cgroups: dict[str, Memcg] = Field(default_factory=dict)
    kernel: KernelConfig = Field(default_factory=KernelConfig)


# ---- allocators ----------------------------------------------------------------------------------------

class AllocatorBase(Section):
    """Options every allocator has: the release advice, MADV_HUGEPAGE on the heap, MADV_COLLAPSE use."""

    CHOICES = {"madvise": ("dontneed", "free", "splittable", "free_undo", "none")}
    madvise: str = "dontneed"
    hugepage_advice: bool = False
    collapse: bool = False


class Tcmalloc(AllocatorBase):
    """Legacy tcmalloc page heap, with the release strategies proposed in the 2015 thread."""

    kind: Literal["tcmalloc"] = "tcmalloc"
    release_rate: Rate = 0.0
    prefer_split_hugepages: bool = False
    prefer_long_spans: bool = False
    refault_discount: bool = False


class Temeraire(AllocatorBase):
    """tcmalloc's hugepage-aware allocator (OSDI 2021)."""

    kind: Literal["temeraire"] = "temeraire"
    release_rate: Rate = 0.0
    skip_subrelease_short: Duration = 60.0
    skip_subrelease_long: Duration = 300.0


class Jemalloc(AllocatorBase):
    """jemalloc 5.2+ decay-based purging."""

    CHOICES = {**AllocatorBase.CHOICES, "thp": ("default", "always", "never")}
    BOUNDS = {"dirty_decay_ms": (-1, None), "muzzy_decay_ms": (-1, None)}
    kind: Literal["jemalloc"] = "jemalloc"
    dirty_decay_ms: int = 10000
    muzzy_decay_ms: int = 0
    background_thread: bool = True
    thp: str = "default"


class Glibc(AllocatorBase):
    """glibc malloc: brk heap trimmed at the top, large blocks mmapped."""

    kind: Literal["glibc"] = "glibc"
    trim_threshold: Size = 128 << 10
    mmap_threshold: Size = 128 << 10
    malloc_trim: bool = False


Allocator = Annotated[
    Annotated[Tcmalloc, Tag("tcmalloc")] | Annotated[Temeraire, Tag("temeraire")]
    | Annotated[Jemalloc, Tag("jemalloc")] | Annotated[Glibc, Tag("glibc")],
    _kind_of("tcmalloc"),
]
UNION_TAGS = frozenset({"none", "disk", "zram", "zswap", "tcmalloc", "temeraire", "jemalloc", "glibc"})


# ---- workloads and tenants -----------------------------------------------------------------------------

class ServiceTime(Section):
    """Base request service time (lognormal through median and p99), before TLB factor and stalls."""

    median: Duration = 0.001
    p99: Duration = 0.010


class Diurnal(Section):
    """Heap and request-rate modulation: 1 + amplitude * sin(2 pi (t + phase) / period)."""

    BOUNDS = {"amplitude": (0.0, 1.0)}
    amplitude: float = 0.0
    period: Duration = 86400.0
    phase: Duration = 0.0


class Spikes(Section):
    """Transient extra bytes: ``rate`` spikes per second (or '2/h'), each ``size`` held for ``lifetime``."""

    rate: Frequency = 0.0
    size: Size = 0
    lifetime: Duration = 0.030


class Startup(Section):
    """A start-up phase of ``duration`` holding ``bytes`` extra, released when it ends."""

    duration: Duration = 0.0
    bytes: Size = 0


class Restarts(Section):
    """Planned restarts every ``interval`` (None: never); ``delay`` is also the restart delay after OOM."""

    interval: Duration | None = None
    delay: Duration = 10.0


class Workload(Section):
    """Demand of one process: heap from an allocation profile, churn, requests and file I/O."""

    CHOICES = {"kind": ("service", "batch", "cache", "filecache")}
    BOUNDS = {"rps": (0.0, None), "tlb_sensitivity": (0.0, 0.99), "hot_share": (0.0, 1.0),
              "span_quantum": (4096, 1 << 30)}
    kind: str = "service"
    profile: str = "tcmalloc/beta"
    heap: Size = 1 << 30
    churn: Rate = float(64 << 20)
    rps: float = 1000.0
    service_time: ServiceTime = Field(default_factory=ServiceTime)
    tlb_sensitivity: float = TLB_SENSITIVITY_DEFAULT
    hot_share: float = 0.2
    diurnal: Diurnal = Field(default_factory=Diurnal)
    spikes: Spikes = Field(default_factory=Spikes)
    startup: Startup = Field(default_factory=Startup)
    restarts: Restarts = Field(default_factory=Restarts)
    file_rate: Rate = 0.0
    file_set: Size = 0
    refill_rate: Rate = float(1 << 30)
    span_quantum: Size = SPAN_QUANTUM_DEFAULT

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        source, _, name = value.partition("/")
        if name not in WORKLOAD_PROFILES.get(source, ()):
            known = "; ".join(f"{src}/{{{','.join(names)}}}" for src, names in WORKLOAD_PROFILES.items())
            raise PydanticCustomError("choice", f"source/name, one of {known}")
        return value


class Tenant(Section):
    """``replicas`` processes of one service, each in its own memcg leaf ``<cgroup>/<name>-<i>``.

    ``placement`` is ``spread`` (round-robin over all nodes), ``pack`` (fill a node before the next) or a
    mapping node group name -> replica count.
    """

    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {}
    BOUNDS = {"replicas": (1, None)}
    PLACEMENTS: ClassVar[tuple[str, ...]] = ("spread", "pack")
    name: str = "tenant0"
    replicas: int = 1
    placement: str | dict[str, int] = "spread"
    cgroup: str = "workload.slice"
    limits: Memcg = Field(default_factory=Memcg)
    allocator: Allocator = Field(default_factory=Tcmalloc)
    workload: Workload = Field(default_factory=Workload)

    @field_validator("placement")
    @classmethod
    def _placement(cls, value: str | dict[str, int]) -> str | dict[str, int]:
        if isinstance(value, str) and value not in cls.PLACEMENTS:
            raise PydanticCustomError("choice", "spread, pack, or a mapping node group -> replica count")
        if isinstance(value, dict) and any(count < 0 for count in value.values()):
            raise PydanticCustomError("bounds", "replica counts >= 0")
        return value


class RunConfig(Section):
    """One simulated run: the fleet (node groups), its kernel, tenants, duration, tick and seed.

    Node groups inherit the top-level ``kernel`` block and override parts of it; the resolved config holds
    each group's full effective kernel, so a reader never needs to merge.
    """

    BOUNDS = {"seed": (0, None)}
    name: str = "run"
    seed: int = 0
    duration: Duration = 600.0
    tick: Duration = 1.0
    sample_interval: Duration | None = None
    kernel: KernelConfig = Field(default_factory=KernelConfig)
    nodes: list[NodeGroup] = Field(default_factory=lambda: [NodeGroup()], min_length=1)
    tenants: list[Tenant] = Field(default_factory=list)

    def group(self, name: str) -> NodeGroup:
        return next(g for g in self.nodes if g.name == name)


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
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc})"], what) from None
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
    from .checks import cross_check  # checks.py reads the models defined here

    merged = _inherit_defaults(data)
    try:
        config = RunConfig.model_validate(merged)
    except PydanticValidationError as exc:
        raise ConfigError(pydantic_problems(exc, merged), source) from None
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
    """One ``path: value -> allowed`` line per error, union tags removed, inherited duplicates dropped."""
    lines: list[str] = []
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors():
        loc = _clean_loc(err["loc"], raw)
        if _inherited_duplicate(loc, err["type"], seen):
            continue
        seen.add((*loc, err["type"]))
        value = "(missing)" if err["type"] == "missing" else err.get("input")
        keys = _allowed_keys(loc, raw) if err["type"] == "extra_forbidden" else None
        lines.append(problem(loc, value, describe_pydantic(err, keys)))
    return lines


def _clean_loc(loc: tuple[Any, ...], raw: Any) -> tuple[Any, ...]:
    """Drop the discriminated-union tags pydantic puts in paths (``allocator.jemalloc.thp``)."""
    out: list[Any] = []
    node = raw
    for step in loc:
        if isinstance(node, Mapping) and step not in node and step in UNION_TAGS:
            continue
        out.append(step)
        node = _child(node, step)
    return tuple(out)


def _inherited_duplicate(loc: tuple[Any, ...], kind: str, seen: set[tuple[Any, ...]]) -> bool:
    """An error in a node group's kernel that is the top-level kernel's error, inherited."""
    return len(loc) > 3 and loc[0] == "nodes" and loc[2] == "kernel" and ("kernel", *loc[3:], kind) in seen


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
