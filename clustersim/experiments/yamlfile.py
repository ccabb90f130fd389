"""Reading run and sweep files: YAML's safe subset, and a mapping that names a key twice is an error.

PyYAML's ``safe_load`` keeps the last of two equal keys silently (the YAML 1.2 spec requires keys of a
mapping to be unique, section 3.2.1.1), so a file whose second ``seed:`` overrides the first would run a
config its author did not read. ``UniqueKeyLoader`` refuses duplicates; ``duplicate_keys`` walks the
composed document first so that every duplicate is reported, each with its key path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import problem


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises on a key repeated in one mapping."""

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def duplicate_keys(node: Node | None, path: tuple[Any, ...] = ()) -> Iterator[str]:
    """A problem line for every key named twice in a mapping of the composed document."""
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else str(key_node.start_mark)
            if key in seen and key != "<<":
                line = key_node.start_mark.line + 1
                yield problem((*path, key), key, f"a key named once in its mapping (repeated on line {line})")
            seen.add(key)
            yield from duplicate_keys(value, (*path, key))
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            yield from duplicate_keys(item, (*path, i))


def load_yaml(text: str) -> tuple[Any, list[str]]:
    """The document in ``text`` and the duplicate-key problems (the document is None when there are any)."""
    problems = list(duplicate_keys(yaml.compose(text, Loader=UniqueKeyLoader)))
    if problems:
        return None, problems
    return yaml.load(text, Loader=UniqueKeyLoader), []
