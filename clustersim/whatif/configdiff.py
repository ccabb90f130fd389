"""What differs between two configurations: their resolved configs compared key path by key path.

Both sides are resolved first (every default filled, units in bytes and seconds), so ``heap: 1G`` and
``heap: 1024M`` are the same and a default written out equals a default left out. Mappings are walked key
by key and lists item by item (``tenants.0.allocator.madvise``); a key or item on one side only shows as
absent on the other.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .sources import Source, resolve_side

ABSENT = "(absent)"


@dataclass(frozen=True)
class Difference:
    """One key path whose resolved value differs: A's value and B's (``ABSENT`` where a side has none)."""

    path: str
    a: Any
    b: Any

    def line(self) -> str:
        return f"{self.path}: {_show(self.a)} -> {_show(self.b)}"


def diff(a: Source, b: Source) -> list[Difference]:
    """The differences of A's and B's resolved configs, in key-path order (mappings sorted, lists by index)."""
    return list(differences(resolve_side(a, "A"), resolve_side(b, "B")))


def differences(a: Any, b: Any, path: tuple[Any, ...] = ()) -> Iterator[Difference]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            yield from differences(a.get(key, ABSENT), b.get(key, ABSENT), (*path, key))
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            yield from differences(a[i] if i < len(a) else ABSENT, b[i] if i < len(b) else ABSENT, (*path, i))
    elif a != b or type(a) is not type(b):
        yield Difference(".".join(str(p) for p in path) or "(top level)", a, b)


def _show(value: Any) -> str:
    return value if value == ABSENT else repr(value)
