"""Configuration errors, reported all at once and each as ``key.path: value -> what is allowed``.

Invalid input must fail before any work, with a message a user can act on without reading the code: the key
path (list items by index, as ``tenants.0.allocator.madvise``), the value found and what would be accepted.
This module turns pydantic's error records into that form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

# How pydantic's built-in error types read in our messages; ``{...}`` fields come from the error's ctx.
_ALLOWED_BY_TYPE: dict[str, str] = {
    "missing": "required",
    "int_parsing": "an integer",
    "int_type": "an integer (not 1.0 or true)",
    "finite_number": "a finite number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "too_short": "at least {min_length} item(s)",
    "greater_than_equal": ">= {ge}",
    "less_than_equal": "<= {le}",
    "greater_than": "> {gt}",
    "literal_error": "one of {expected}",
    "union_tag_invalid": "one of {expected_tags}",
}


class ConfigError(ValueError):
    """One or more problems in a run or sweep file; ``problems`` lists them, one line each."""

    def __init__(self, problems: Sequence[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self._text())

    def _text(self) -> str:
        head = f"{len(self.problems)} problem(s) in {self.source}:"
        return "\n  ".join([head, *self.problems])


def key_path(loc: Iterable[Any]) -> str:
    """``('tenants', 0, 'heap')`` -> ``tenants.0.heap``; the empty path is the document root."""
    return ".".join(str(part) for part in loc) or "(top level)"


def show_value(value: Any, limit: int = 60) -> str:
    """A short, readable rendering of an offending value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def problem(loc: Iterable[Any], value: Any, allowed: str) -> str:
    """The one-line form every problem takes."""
    return f"{key_path(loc)}: {show_value(value)} -> {allowed}"


def describe_pydantic(err: dict[str, Any], allowed_keys: Sequence[str] | None = None) -> str:
    """The 'what is allowed' part for one pydantic error record."""
    kind = err["type"]
    if kind == "extra_forbidden":
        keys = ", ".join(allowed_keys or ())
        return f"not a key here; allowed keys: {keys}" if keys else "not a key here"
    template = _ALLOWED_BY_TYPE.get(kind)
    if kind == "string_type" and isinstance(err.get("input"), bool):
        # YAML 1.1, which PyYAML follows, reads unquoted yes/no/on/off (any case) as booleans.
        return "a string (unquoted yes, no, on and off are YAML booleans: quote it: 'off')"
    if template is None:
        return str(err.get("msg", kind)).removeprefix("Value error, ")
    ctx = {k: _plain(v) for k, v in (err.get("ctx") or {}).items()}
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return str(err.get("msg", kind))


def _plain(value: Any) -> str:
    return str(value).replace("'", "")


# Labels pydantic puts in an error's path for a union member or a dict key; never a user's key.
_MEMBER_LABEL = re.compile(r"^(int|str|float|bool|none|list\[.*\]|dict\[.*\]|function-\w+\[.*\]|.*\[.*\])$")


def clean_loc(loc: Iterable[Any], raw: Any, tags: frozenset[str] = frozenset()) -> tuple[Any, ...]:
    """The user's key path of an error: union-member labels, union tags and ``[key]`` removed.

    A step is dropped only where the data has no such key, so a user's key named like a label stays.
    """
    out: list[Any] = []
    node = raw
    for step in loc:
        absent = not (isinstance(node, Mapping) and step in node)
        if step == "[key]" or (absent and isinstance(step, str) and (step in tags or _MEMBER_LABEL.match(step))):
            continue
        out.append(step)
        node = _child(node, step)
    return tuple(out)


def _child(node: Any, step: Any) -> Any:
    try:
        return node[step]
    except (KeyError, IndexError, TypeError):
        return None


def pydantic_lines(errors: Iterable[dict[str, Any]], raw: Any, tags: frozenset[str] = frozenset(),
                   allowed_keys: Callable[[tuple[Any, ...]], Sequence[str]] | None = None,
                   skip: Callable[[tuple[Any, ...], str], bool] | None = None) -> list[str]:
    """One ``path: value -> allowed`` line per key path; a union's alternatives are joined by ``or``."""
    found: dict[tuple[Any, ...], tuple[Any, list[str]]] = {}
    for err in errors:
        loc = clean_loc(err["loc"], raw, tags)
        if skip is not None and skip(loc, err["type"]):
            continue
        value = "(missing)" if err["type"] == "missing" else err.get("input")
        if err["type"] == "union_tag_invalid":   # the bad value is the section's ``kind``: name that key
            loc, value = (*loc, "kind"), (err.get("ctx") or {}).get("tag", value)
        keys = allowed_keys(loc) if allowed_keys and err["type"] == "extra_forbidden" else None
        allowed = found.setdefault(loc, (value, []))[1]
        text = describe_pydantic(err, keys)
        if text not in allowed:
            allowed.append(text)
    return [problem(loc, value, " or ".join(allowed)) for loc, (value, allowed) in found.items()]
