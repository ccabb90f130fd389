"""Sweep files and their expansion into a deterministic list of validated runs.

A sweep names a base run file and the axes to vary: ``grid`` (Cartesian product; a list of grids is a
union, to skip meaningless combinations as scikit-learn's ParameterGrid does), ``zip`` (lists advanced
together), ``sample`` (Sobol, Latin hypercube or plain random points from scipy.stats.qmc) and ``seeds``.
Axes are key paths into the base config (``tenants.0.allocator.madvise``). Expansion sorts keys, so the
same file always gives the same runs in the same order.

Seeds: with ``seeds: n`` and base seed ``s`` (the base config's ``seed``), replication ``i`` runs with
``int(numpy.random.SeedSequence(s).spawn(n)[i].generate_state(1)[0])``. Spawned children are independent
streams by construction and child ``i`` does not depend on ``n``, so raising ``n`` later keeps the earlier
replications. ``seeds: [..]`` uses the listed seeds as they are.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from clustersim.units import UnitError, parse_duration, parse_size

from .config import Section, config_hash, read_yaml, resolved, validate_config
from .errors import ConfigError, key_path, problem, pydantic_lines
from .keypath import KeyPathError, apply_overrides
from .schema import SEED_MAX

Axis = dict[str, list[Any]]
FIXED_KEYS = ("seed",)  # varied by ``seeds``, never by an axis


def _finite_or_text(value: Any) -> Any:
    """A sample bound: a finite number, or a size or duration string (read when the type is known)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | None):
        raise PydanticCustomError("bound", "a number, or a size or duration string")
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite", "a finite number")
    return value


Bound = Annotated[Any, BeforeValidator(_finite_or_text)]


class SampleParam(Section):
    """One sampled parameter: a range (``low``, ``high``, ``scale``, ``type``) or categorical ``values``."""

    CHOICES: ClassVar = {"scale": ("linear", "log"), "type": ("float", "int", "size", "duration")}
    low: Bound = None
    high: Bound = None
    scale: str = "linear"
    type: str = "float"
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_values(self) -> SampleParam:
        if self.values is not None:
            if not self.values or self.low is not None or self.high is not None:
                raise ValueError("either a non-empty 'values' list or 'low' and 'high', not both")
            return self
        lo, hi = self.bounds()
        if not lo <= hi or (self.scale == "log" and lo <= 0):
            raise ValueError(f"low <= high{' and low > 0 for scale log' if self.scale == 'log' else ''}")
        return self

    def bounds(self) -> tuple[float, float]:
        if self.low is None or self.high is None:
            raise ValueError("'low' and 'high' (or 'values')")
        try:
            return _number(self.low, self.type), _number(self.high, self.type)
        except (UnitError, ValueError, TypeError) as exc:
            raise ValueError(f"numbers of type {self.type} ({exc})") from None

    def value(self, u: float) -> Any:
        """The parameter value at the unit-interval coordinate ``u``."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        lo, hi = self.bounds()
        integer = self.type in ("int", "size")
        if self.scale == "log":
            x = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
            return min(max(round(x), math.ceil(lo)), math.floor(hi)) if integer else x
        if integer:
            return min(math.floor(lo + u * (hi - lo + 1)), math.floor(hi))
        return lo + u * (hi - lo)


def _number(value: Any, kind: str) -> float:
    if kind == "size":
        return float(parse_size(value))
    if kind == "duration":
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


class Sample(Section):
    """``n`` points drawn by ``method`` over the parameters (dimensions in sorted key order)."""

    CHOICES: ClassVar = {"method": ("sobol", "lhs", "random")}
    BOUNDS: ClassVar = {"n": (1, None), "seed": (0, None)}
    method: str = "sobol"
    n: int = 8
    seed: int = 0
    params: dict[str, SampleParam] = Field(min_length=1)


class SweepSpec(Section):
    """A sweep file: base run, fixed ``set`` overrides, axes and seeds."""

    AXES: ClassVar[tuple[str, ...]] = ("grid", "zip", "sample")
    name: str = "sweep"
    base: str | dict[str, Any]
    set: dict[str, Any] = Field(default_factory=dict)
    seeds: int | list[int] = 1
    grid: Axis | list[Axis] = Field(default_factory=dict)
    zip: Axis | list[Axis] = Field(default_factory=list)
    sample: Sample | None = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int) and value < 1:
            raise PydanticCustomError("bounds", "a count >= 1 or a list of seeds >= 0")
        if isinstance(value, list) and (not value or min(value) < 0 or max(value) > SEED_MAX
                                        or len(set(value)) != len(value)):
            raise PydanticCustomError("bounds", "a non-empty list of distinct seeds in [0, 2^63-1]")
        return value

    @field_validator("grid", "zip")
    @classmethod
    def _non_empty(cls, value: Axis | list[Axis]) -> Axis | list[Axis]:
        if isinstance(value, list) and not value:
            raise PydanticCustomError("empty", "at least one mapping of key path -> values (or leave the key out)")
        for axis in _as_list(value):
            if not axis or any(not values for values in axis.values()):
                raise PydanticCustomError("empty", "key paths each with a non-empty list of values")
        return value


@dataclass(frozen=True)
class ExpandedRun:
    """One run of a sweep: where it sits in the expansion, its parameters, seed and resolved config."""

    run_id: str
    point: int
    replicate: int
    params: dict[str, Any]
    seed: int
    config_hash: str
    config: dict[str, Any]


def run_id(chash: str, seed: int) -> str:
    """The identity of a run: the pair (config hash, seed), shortened."""
    return hashlib.sha256(f"{chash}:{seed}".encode()).hexdigest()[:16]


def replication_seeds(base_seed: int, seeds: int | Sequence[int]) -> list[int]:
    """Seeds of the replications: spawned from the base seed for a count, or the list as given."""
    if not isinstance(seeds, int):
        return [int(s) for s in seeds]
    children = np.random.SeedSequence(base_seed).spawn(seeds)
    return [int(child.generate_state(1)[0]) for child in children]


def load_sweep(source: str | Path | Mapping[str, Any]) -> tuple[SweepSpec, dict[str, Any]]:
    """The validated sweep spec and its base run config (raw mapping, base path resolved)."""
    where = Path(source).parent if isinstance(source, str | Path) else Path.cwd()
    data = read_yaml(source, "sweep file") if isinstance(source, str | Path) else dict(source)
    try:
        spec = SweepSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise ConfigError(pydantic_lines(exc.errors(), data), "sweep file") from None
    base = _read_base(spec.base, where, source) if isinstance(spec.base, str) else dict(spec.base)
    _check_axis_keys(spec)
    return spec, base


SWEEP_ONLY_KEYS = ("base", "grid", "zip", "sample", "seeds", "set")


def _read_base(base: str, where: Path, source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The run file ``base`` names (relative to the sweep file); every way it can be wrong names ``base``."""
    path = where / base
    if isinstance(source, str | Path) and path.resolve() == Path(source).resolve():
        raise ConfigError([problem(("base",), base, "a run file, not this sweep file")], "sweep file")
    if path.is_dir():
        raise ConfigError([problem(("base",), base, "a run file, not a folder")], "sweep file")
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        why = "; ".join(exc.problems)
        raise ConfigError([problem(("base",), base, f"a readable run file ({why})")], "sweep file") from None
    sweep_keys = sorted(set(data) & set(SWEEP_ONLY_KEYS))
    if sweep_keys:
        raise ConfigError([problem(("base",), base, f"a run file, not a sweep file (it has {', '.join(sweep_keys)})")],
                          "sweep file")
    return data


def _check_axis_keys(spec: SweepSpec) -> None:
    """Every axis key appears once over all axes and none is a key the sweep sets itself."""
    problems, seen = [], set(spec.set)
    for axis, keys in _axis_keys(spec):
        for key in keys:
            if key in FIXED_KEYS or key in seen:
                why = "vary seeds with 'seeds'" if key in FIXED_KEYS else "a key no other axis or 'set' uses"
                problems.append(problem((axis, key), key, why))
            seen.add(key)
    for i, group in enumerate(_as_list(spec.zip)):
        lengths = {len(v) for v in group.values()}
        if len(lengths) > 1:
            sizes = {k: len(v) for k, v in group.items()}
            problems.append(problem(("zip", i), sizes, "lists of equal length"))
    if problems:
        raise ConfigError(problems, "sweep file")


def _axis_keys(spec: SweepSpec) -> list[tuple[str, list[str]]]:
    grids = _as_list(spec.grid)
    out = [("grid", sorted(set().union(*grids)))] if grids else []
    out += [("zip", sorted(k for g in _as_list(spec.zip) for k in g))]
    return [*out, ("sample", sorted(spec.sample.params))] if spec.sample else out


def _as_list(axis: Axis | list[Axis]) -> list[Axis]:
    return [axis] if isinstance(axis, dict) else list(axis)


def grid_points(grid: Axis | list[Axis]) -> list[dict[str, Any]]:
    """Cartesian product of each grid (keys sorted), grids in order; no grid is one empty point."""
    points: list[dict[str, Any]] = []
    for one in _as_list(grid) or [{}]:
        keys = sorted(one)
        combos = itertools.product(*(one[k] for k in keys))
        points += [dict(zip(keys, combo, strict=True)) for combo in combos]
    return points


def zip_points(groups: Axis | list[Axis]) -> list[dict[str, Any]]:
    """Each group's lists advanced together; several groups are crossed (in order)."""
    per_group = []
    for group in _as_list(groups):
        keys = sorted(group)
        length = len(group[keys[0]]) if keys else 0
        per_group.append([{k: group[k][i] for k in keys} for i in range(length)])
    return [_merge(*combo) for combo in itertools.product(*per_group)] if per_group else [{}]


def sample_points(sample: Sample | None) -> list[dict[str, Any]]:
    """``n`` points of ``sample`` (dimensions in sorted key order), reproducible from its seed."""
    if sample is None:
        return [{}]
    keys = sorted(sample.params)
    unit = unit_sample(sample.method, sample.n, len(keys), sample.seed)
    return [{k: sample.params[k].value(float(row[j])) for j, k in enumerate(keys)} for row in unit]


def unit_sample(method: str, n: int, dims: int, seed: int) -> np.ndarray:
    """``n`` points in the unit cube [0, 1)^dims."""
    from scipy.stats import qmc  # here, not at the top: worker processes never sample and skip its import

    rng = np.random.default_rng(seed)
    if method == "random":
        return rng.random((n, dims))
    if method == "sobol":
        engine: qmc.QMCEngine = qmc.Sobol(dims, scramble=True, rng=rng)
    else:
        engine = qmc.LatinHypercube(dims, rng=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Sobol balance warning when n is not a power of two
        return engine.random(n)


def _merge(*parts: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part)
    return out


def parameter_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every parameter point: grid x zip x sample, keys of each point sorted."""
    combos = itertools.product(grid_points(spec.grid), zip_points(spec.zip), sample_points(spec.sample))
    return [dict(sorted(_merge(*combo).items())) for combo in combos]


def expand(spec: SweepSpec, base: Mapping[str, Any]) -> list[ExpandedRun]:
    """Every run of the sweep, each validated; ConfigError names each invalid run's parameters."""
    base = apply_overrides(base, spec.set)
    seeds = replication_seeds(int(base.get("seed", 0) or 0), spec.seeds)
    runs, seen = [], set()
    problems: dict[str, list[tuple[int, dict[str, Any]]]] = {}   # problem line -> the runs it affects
    points = parameter_points(spec)
    for point, params in enumerate(points):
        try:
            config = validate_config(apply_overrides(base, params), f"run {point}")
        except (ConfigError, KeyPathError) as exc:
            for line in exc.problems if isinstance(exc, ConfigError) else [str(exc)]:
                problems.setdefault(line, []).append((point, params))
            continue
        runs += [r for r in _replications(config, spec.name, point, params, seeds) if r.run_id not in seen]
        seen.update(r.run_id for r in runs)
    if problems:
        raise ConfigError([_affected(line, where, len(points)) for line, where in problems.items()],
                          "sweep (no run was started)")
    return runs


def _affected(line: str, runs: list[tuple[int, dict[str, Any]]], total: int) -> str:
    """A problem once, with the runs it affects: the run itself, or how many and the first."""
    point, params = runs[0]
    if len(runs) == 1:
        return f"run {point} {_show(params)}: {line}"
    share = f"all {total}" if len(runs) == total else f"{len(runs)} of {total}"
    return f"{line} (in {share} parameter points; first: run {point} {_show(params)})"


def _replications(config: Any, name: str, point: int, params: dict[str, Any],
                  seeds: list[int]) -> list[ExpandedRun]:
    data = resolved(config)
    chash = config_hash(data)
    out = []
    for replicate, seed in enumerate(seeds):
        run_config = {**data, "name": f"{name}-{point}", "seed": seed}
        out.append(ExpandedRun(run_id(chash, seed), point, replicate, params, seed, chash, run_config))
    return out


def _show(params: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{key_path([k])}={v!r}" for k, v in params.items()) + "}"
