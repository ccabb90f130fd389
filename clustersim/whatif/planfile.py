"""Plan files: a capacity-planning question as data, validated whole before any run.

A plan names a base run config, an integer knob to search (``search``: key path, ``low``, ``high``, and
``goal`` ``max`` for the largest value meeting every SLO or ``min`` for the smallest), the SLOs (``slo``:
a summary metric, optionally of one tenant, with a ``max`` or ``min`` bound and optionally a ``quantile``
over seeds) and the alternatives to compare (``alternatives``: a sweep-style ``grid`` or ``zip`` of key
paths). Every alternative at both ends of the search range is validated as a run config before the first
run, so a typo fails at once with its key path, value and what is allowed.

SLO rule over seeds: with n seeds, an SLO holds at a value when at least ``ceil(quantile * n)`` of the n
seeds meet its bound; with no quantile, every seed must (quantile 1). This is the quantile over seeds
taken as an observed value (numpy's ``inverted_cdf``): the ``q``-quantile of the seeds' values meets a
``max`` bound exactly when that many seeds do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from clustersim.experiments.config import Section, read_yaml, resolved, validate_config
from clustersim.experiments.errors import ConfigError, pydantic_lines
from clustersim.experiments.errors import problem as line
from clustersim.experiments.keypath import KeyPathError, apply_overrides, get_path
from clustersim.experiments.names import check_name
from clustersim.experiments.sweepfile import SWEEP_ONLY_KEYS, SweepSpec, grid_points, zip_points
from clustersim.results_contract import SUMMARY_KEYS

SOURCE = "plan file"
GOALS = ("max", "min")
PLAN_ONLY_KEYS = ("search", "slo", "alternatives")


class Slo(Section):
    """One service-level objective: ``metric`` (of ``tenant``, else fleet-wide) at most ``max`` or at least
    ``min``, in every seed or at ``quantile`` over seeds."""

    metric: str
    tenant: str | None = None
    max: float | None = None
    min: float | None = None
    quantile: float | None = None

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value not in SUMMARY_KEYS:
            raise PydanticCustomError("metric", "a summary metric: " + ", ".join(SUMMARY_KEYS))
        return value

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value)

    @field_validator("quantile")
    @classmethod
    def _quantile(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 < value <= 1.0:
            raise PydanticCustomError("bounds", "a quantile in (0, 1]")
        return value

    @model_validator(mode="after")
    def _one_bound(self) -> Slo:
        if (self.max is None) == (self.min is None):
            raise ValueError("exactly one of 'max' or 'min'")
        return self

    @property
    def label(self) -> str:
        """The column this SLO's metric has in result tables: ``metric`` or ``metric[tenant]``."""
        return self.metric if self.tenant is None else f"{self.metric}[{self.tenant}]"

    @property
    def bound(self) -> float:
        return float(self.max if self.max is not None else self.min)  # type: ignore[arg-type]

    def describe(self) -> str:
        """``latency_p99_ms[web] <= 20`` with `` (quantile 0.9)`` when it has one."""
        text = f"{self.label} {'<=' if self.max is not None else '>='} {self.bound:g}"
        return text if self.quantile is None else f"{text} (quantile {self.quantile:g})"

    def met(self, value: float) -> bool:
        """True when one seed's value meets the bound (NaN never does)."""
        if math.isnan(value):
            return False
        return value <= self.bound if self.max is not None else value >= self.bound

    def needed(self, seeds: int) -> int:
        """How many of ``seeds`` seeds must meet the bound."""
        share = 1.0 if self.quantile is None else self.quantile
        return max(1, math.ceil(share * seeds - 1e-9))

    def holds(self, values: Sequence[float]) -> bool:
        """The SLO rule over seeds (module docstring); no values never hold."""
        return bool(values) and sum(self.met(float(v)) for v in values) >= self.needed(len(values))


class Search(Section):
    """The integer knob and its range; ``goal`` max (largest value meeting every SLO) or min (smallest)."""

    CHOICES: ClassVar = {"goal": GOALS}
    key: str
    low: int
    high: int
    goal: str = "max"

    @model_validator(mode="after")
    def _range(self) -> Search:
        if self.low > self.high:
            raise ValueError(f"low <= high (low is {self.low}, high {self.high})")
        return self


Axis = dict[str, list[Any]]


class Alternatives(Section):
    """The choices compared: a sweep-style ``grid`` (list: union) and ``zip`` (lists advanced together)."""

    grid: Axis | list[Axis] = Field(default_factory=dict)
    zip: Axis | list[Axis] = Field(default_factory=list)

    @field_validator("grid", "zip")
    @classmethod
    def _non_empty(cls, value: Axis | list[Axis]) -> Axis | list[Axis]:
        if isinstance(value, list) and not value:
            raise PydanticCustomError("empty", "at least one mapping of key path -> values (or leave the key out)")
        if any(not axis or any(not isinstance(v, list) or not v for v in axis.values()) for axis in _as_list(value)):
            raise PydanticCustomError("empty", "key paths each with a non-empty list of values")
        return value


class PlanSpec(Section):
    """A plan file."""

    name: str = "plan"
    base: str | dict[str, Any]
    set: dict[str, Any] = Field(default_factory=dict)
    seeds: int | list[int] = 1
    search: Search
    slo: list[Slo] = Field(min_length=1)
    alternatives: Alternatives = Field(default_factory=Alternatives)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: int | list[int]) -> int | list[int]:
        return SweepSpec._seeds(value)


@dataclass(frozen=True)
class Plan:
    """A validated plan: the spec, its base config (raw mapping, ``set`` applied) and its alternatives."""

    spec: PlanSpec
    base: dict[str, Any]
    alternatives: list[dict[str, Any]]

    @property
    def keys(self) -> list[str]:
        """The alternatives' key paths, sorted."""
        return sorted({k for alt in self.alternatives for k in alt})


def load_plan(source: str | Path | Mapping[str, Any]) -> Plan:
    """Read and validate a plan file (or mapping); ConfigError lists every problem before any run."""
    where = Path(source).parent if isinstance(source, str | Path) else Path.cwd()
    data = read_yaml(source, SOURCE) if isinstance(source, str | Path) else dict(source)
    try:
        spec = PlanSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise ConfigError(pydantic_lines(exc.errors(), data), SOURCE) from None
    raw = read_base(spec.base, where, source) if isinstance(spec.base, str) else dict(spec.base)
    try:
        base = apply_overrides(raw, spec.set)
    except KeyPathError as exc:
        raise ConfigError([line(("set",), spec.set, str(exc))], SOURCE) from None
    alternatives = [{**g, **z} for g in grid_points(spec.alternatives.grid)
                    for z in zip_points(spec.alternatives.zip)]
    _check_keys(spec)
    _check_runs(spec, base, alternatives)
    return Plan(spec, base, alternatives)


def read_base(base: str, where: Path, source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The run file ``base`` names, relative to the plan file; every way it can be wrong names ``base``."""
    path = where / base
    if isinstance(source, str | Path) and path.resolve() == Path(source).resolve():
        raise ConfigError([line(("base",), base, "a run file, not this plan file")], SOURCE)
    if path.is_dir():
        raise ConfigError([line(("base",), base, "a run file, not a folder")], SOURCE)
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise ConfigError([line(("base",), base, f"a readable run file ({'; '.join(exc.problems)})")],
                          SOURCE) from None
    foreign = sorted(set(data) & {*SWEEP_ONLY_KEYS, *PLAN_ONLY_KEYS})
    if foreign:
        raise ConfigError([line(("base",), base, f"a run file (it has {', '.join(foreign)})")], SOURCE)
    return data


def _check_keys(spec: PlanSpec) -> None:
    """The search key and every alternative key appear once, never in ``set``, never ``seed``."""
    problems, seen = [], set(spec.set)
    keys = [(("search", "key"), spec.search.key)]
    keys += [(("alternatives", axis, k), k) for axis in ("grid", "zip")
             for group in _as_list(getattr(spec.alternatives, axis)) for k in sorted(group)]
    for loc, key in keys:
        if key == "seed":
            problems.append(line(loc, key, "a config key; seeds are set by 'seeds'"))
        elif key in seen:
            problems.append(line(loc, key, "a key no other alternative axis, 'search' or 'set' uses"))
        seen.add(key)
    for i, group in enumerate(_as_list(spec.alternatives.zip)):
        if len({len(v) for v in group.values()}) > 1:
            problems.append(line(("alternatives", "zip", i), {k: len(v) for k, v in group.items()},
                                 "lists of equal length"))
    if problems:
        raise ConfigError(problems, SOURCE)


def _as_list(axis: Axis | list[Axis]) -> list[Axis]:
    return [axis] if isinstance(axis, dict) else list(axis)


def _check_runs(spec: PlanSpec, base: dict[str, Any], alternatives: list[dict[str, Any]]) -> None:
    """Every alternative validates at ``low`` and ``high``; the key holds an integer; SLO tenants exist."""
    problems: list[str] = []
    search = spec.search
    try:
        held = get_path(resolved(validate_config(base, "base")), search.key, None)
    except (ConfigError, KeyPathError):
        held = None           # the base's own problems are reported with the alternatives' below
    if held is not None and (isinstance(held, bool) or not isinstance(held, int)):
        raise ConfigError([line(("search", "key"), search.key, "a key path to an integer of the run config "
                                f"(it holds {held!r})")], SOURCE)
    for i, alt in enumerate(alternatives):
        for end in ("low", "high"):
            where = f"alternative {i} {_show(alt)} at search.{end}={getattr(search, end)}"
            try:
                config = validate_config(apply_overrides(base, {**alt, search.key: getattr(search, end)}), where)
            except (ConfigError, KeyPathError) as exc:
                problems += [f"{where}: {p}" for p in getattr(exc, "problems", [str(exc)])]
                continue
            problems += _check_config(spec, resolved(config), i)
        if problems:
            break
    if problems:
        raise ConfigError(sorted(set(problems), key=problems.index), f"{SOURCE} (no run was started)")


def _check_config(spec: PlanSpec, data: dict[str, Any], alt: int) -> list[str]:
    out = []
    value = get_path(data, spec.search.key, None)
    if isinstance(value, bool) or not isinstance(value, int):
        out.append(line(("search", "key"), spec.search.key,
                        f"a key path to an integer of the run config (it holds {value!r})"))
    tenants = [t["name"] for t in data.get("tenants", [])]
    for j, slo in enumerate(spec.slo):
        if slo.tenant is not None and slo.tenant not in tenants:
            out.append(line(("slo", j, "tenant"), slo.tenant,
                            f"a tenant of the run config: {', '.join(tenants) or '(none)'}"))
    return out


def _show(params: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + "}"
