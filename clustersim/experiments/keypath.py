"""Key paths into nested configs: ``tenants.0.allocator.madvise`` names one value, list items by index.

Overrides (``--set key.path=value``), sweep axes and fake-simulation conditions all address config values
this way. A path may pass through mappings that the file leaves out (a config names only what it changes),
so setting creates them; it may not invent list items, because a list's length is part of the model (the
number of node groups or tenants).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml


class KeyPathError(KeyError):
    """A key path that does not lead to a value; the message names the path and the step that failed."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "bad key path"


def split_path(path: str) -> list[str | int]:
    """``'nodes.1.swap.kind'`` -> ``['nodes', 1, 'swap', 'kind']``; digits address list items."""
    if not isinstance(path, str) or not path or any(part == "" for part in path.split(".")):
        raise KeyPathError(f"{path!r} is not a key path; write keys joined by dots, like tenants.0.heap")
    return [int(part) if part.isdigit() else part for part in path.split(".")]


def get_path(data: Any, path: str, default: Any = KeyError) -> Any:
    """The value at ``path``; ``default`` if given and the path leads nowhere."""
    node = data
    for step in split_path(path):
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            if default is KeyError:
                raise KeyPathError(f"{path}: no value at {step!r}") from None
            return default
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with ``value`` at ``path``; missing mappings on the way are created."""
    out = copy.deepcopy(data)
    steps = split_path(path)
    node: Any = out
    for i, step in enumerate(steps[:-1]):
        node = _descend(node, step, steps[i + 1], path)
    _assign(node, steps[-1], value, path)
    return out


def _descend(node: Any, step: str | int, next_step: str | int, path: str) -> Any:
    if isinstance(node, list):
        _check_index(node, step, path)
        return node[step]  # type: ignore[index]
    if not isinstance(node, dict):
        raise KeyPathError(f"{path}: {step!r} is inside a value that is not a mapping or list")
    if node.get(step) is None:
        if isinstance(next_step, int):
            raise KeyPathError(f"{path}: there is no list at {step!r} to index")
        node[step] = {}
    return node[step]


def _assign(node: Any, step: str | int, value: Any, path: str) -> None:
    if isinstance(node, list):
        _check_index(node, step, path)
    elif not isinstance(node, dict):
        raise KeyPathError(f"{path}: cannot set {step!r} inside a value that is not a mapping or list")
    node[step] = copy.deepcopy(value)


def _check_index(node: list[Any], step: str | int, path: str) -> None:
    if not isinstance(step, int) or step >= len(node):
        raise KeyPathError(f"{path}: {step!r} is not an index of a list of {len(node)} item(s)")


def parse_override(text: str) -> tuple[str, Any]:
    """``'tenants.0.allocator.madvise=free'`` -> ``('tenants.0.allocator.madvise', 'free')``.

    The value is read with ``yaml.safe_load``, so ``5`` is a number, ``[a, b]`` a list and ``{k: v}`` a
    mapping; YAML 1.1 reads ``yes``/``no``/``on``/``off`` as booleans, so quote those to keep a string.
    """
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise KeyPathError(f"{text!r} is not an override; write key.path=value")
    return path.strip(), yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every ``path -> value`` of ``overrides`` set, in sorted path order."""
    out = copy.deepcopy(dict(data))
    for path in sorted(overrides):
        out = set_path(out, path, overrides[path])
    return out
