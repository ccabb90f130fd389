"""What ``compare`` and ``diff`` accept as a side: a run file, a mapping, or a stored run or sweep folder.

A run file is read and validated as ``clustersim run`` reads it. A stored single run's folder gives the
resolved config its manifest recorded; a sweep's folder gives its one configuration (a sweep of several
configurations is refused, naming how many it holds). Every problem names the side (``A`` or ``B``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clustersim.experiments.config import load_config, resolved, validate_config
from clustersim.experiments.errors import ConfigError
from clustersim.experiments.results import MANIFEST, RUNS_FILE, SUMMARY_FILE
from clustersim.experiments.store import read_json

Source = str | Path | Mapping[str, Any]


def resolve_side(source: Source, side: str) -> dict[str, Any]:
    """The resolved, validated config of one side (``A`` or ``B``)."""
    if isinstance(source, Mapping):
        return resolved(_validated(dict(source), side))
    path = Path(source)
    if path.is_dir():
        return resolved(_validated(_stored_config(path, side), side))
    if not path.exists():
        raise ConfigError([problem((side,), str(source), "a run file or a stored run or sweep folder "
                                   "(nothing is there)")], "compare")
    try:
        return resolved(load_config(path))
    except ConfigError as exc:
        raise ConfigError([f"{side} ({path}): {p}" for p in exc.problems], "compare") from None


def problem(loc: tuple[str], path: str, allowed: str) -> str:
    """``A: 'path' -> allowed``, the path in full (a shortened path would not say which file)."""
    return f"{loc[0]}: {path!r} -> {allowed}"


def _validated(data: dict[str, Any], side: str) -> Any:
    try:
        return validate_config(data, side)
    except ConfigError as exc:
        raise ConfigError([f"{side}: {p}" for p in exc.problems], "compare") from None


def _stored_config(folder: Path, side: str) -> dict[str, Any]:
    manifest = read_json(folder / MANIFEST)
    if manifest is None:
        raise ConfigError([problem((side,), str(folder), f"a results folder with a readable {MANIFEST}")],
                          "compare")
    if (folder / SUMMARY_FILE).exists() and isinstance(manifest.get("config"), dict):
        return dict(manifest["config"])
    configs = manifest.get("configs")
    if (folder / RUNS_FILE).exists() and isinstance(configs, dict):
        if len(configs) != 1:
            raise ConfigError([problem((side,), str(folder), "a sweep folder of one configuration (this one "
                                       f"holds {len(configs)}; compare run files instead)")], "compare")
        config = dict(next(iter(configs.values())))
        return {**config, "seed": _first_seed(manifest)}
    raise ConfigError([problem((side,), str(folder), "a stored run or sweep folder")], "compare")


def _first_seed(manifest: Mapping[str, Any]) -> int:
    """The base seed a sweep's configs were stored without: the sweep file's base seed when it recorded one."""
    sweep = manifest.get("sweep") or {}
    base = sweep.get("base") if isinstance(sweep, Mapping) else None
    return int(base.get("seed", 0) or 0) if isinstance(base, Mapping) else 0
