"""The README's run-file reference agrees with the schema: every key, default, bound and choice.

The tables under "1. Run files" are parsed and each row is checked against the pydantic section it
documents: the key exists, the documented default parses to the schema's default, a documented range is the
section's declared bound (and a declared bound is documented), and a documented list of values is the
section's declared choices. A key of the schema missing from the README fails too, so the two cannot drift.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from clustersim.experiments.config import (
    Background,
    Glibc,
    Jemalloc,
    KernelConfig,
    Memcg,
    NodeGroup,
    RunConfig,
    Senpai,
    SwapDisk,
    SwapZram,
    SwapZswap,
    Tcmalloc,
    Temeraire,
    Tenant,
    ThpConfig,
    VmConfig,
    Workload,
)
from clustersim.units import parse_size

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

# heading of each table -> the section its bare keys belong to
TABLES: dict[str, type[BaseModel]] = {
    "Top level": RunConfig,
    "`kernel`": KernelConfig,
    "`nodes[i]`": NodeGroup,
    "`nodes[i].background`": Background,
    "memcg settings": Memcg,
    "`tenants[j]`": Tenant,
    "`tenants[j].workload`": Workload,
    "`tenants[j].senpai`": Senpai,
}
ALLOCATORS: dict[str, type[BaseModel]] = {"tcmalloc": Tcmalloc, "temeraire": Temeraire, "jemalloc": Jemalloc,
                                          "glibc": Glibc}
SUBSECTIONS = {(KernelConfig, "thp"): ThpConfig, (KernelConfig, "vm"): VmConfig}
SWAP_KINDS = (SwapDisk, SwapZram, SwapZswap)
# Rows whose default column is prose, not a value: the defaults are described in their own tables.
PROSE_DEFAULTS = {"kernel", "nodes", "tenants", "cgroups", "limits", "allocator", "workload", "name", "senpai"}
# Fields documented in prose rather than a table row.
PROSE_FIELDS = {(Tenant, "allocator"), (Tenant, "workload"), (NodeGroup, "swap")}   # swap: its `swap.*` rows


def table_rows(heading: str) -> list[list[str]]:
    """Cells of the first table after the ``####`` heading that starts with ``heading``."""
    start = re.search(rf"^#### {re.escape(heading)}.*$", README, re.M)
    assert start, f"README has no '#### {heading}' table"
    rows = []
    for line in README[start.end():].splitlines():
        if line.startswith("#"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows[1:]   # the header row


def without_notes(cell: str) -> str:
    """The cell without its parenthesised notes."""
    return re.sub(r"\([^)]*\)", "", cell)


def keys_of(cell: str) -> list[str]:
    """``\\`diurnal.amplitude\\`, \\`.period\\``` -> ['diurnal.amplitude', 'diurnal.period']."""
    keys: list[str] = []
    for name in re.findall(r"`([^`]+)`", without_notes(cell)):
        if name.startswith(".") and keys:
            name = keys[-1].rsplit(".", 1)[0] + name
        keys.append(name)
    return keys


def defaults_of(cell: str, n: int) -> list[str | None]:
    """The backticked default of each of ``n`` keys (one value for all, or one each); None where prose."""
    values = re.findall(r"`([^`]+)`", without_notes(cell))
    if len(values) == n:
        return values
    if len(values) >= 1:
        return [values[0]] * n
    return [None] * n


def resolve(section: type[BaseModel], key: str) -> tuple[type[BaseModel], str]:
    """The section and field a dotted key names within ``section``."""
    head, _, rest = key.partition(".")
    if not rest:
        return section, head
    sub = SUBSECTIONS.get((section, head))
    if sub is None:
        annotation = section.model_fields[head].annotation
        sub = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    assert sub is not None, f"README key {key!r}: {head!r} is not a section of {section.__name__}"
    return resolve(sub, rest)


def parsed(section: type[BaseModel], field: str, text: str) -> Any:
    """``text`` as the schema reads it for ``field`` (sizes, durations, rates, 'max')."""
    return getattr(section.model_validate({field: yaml.safe_load(text)}), field)


def documented_rows() -> list[tuple[type[BaseModel], str, str | None, str]]:
    """(section, field, default text, allowed/meaning text) of every row of every run-file table."""
    rows = []
    for heading, section in TABLES.items():
        for cells in table_rows(heading):
            keys = keys_of(cells[0])
            for key, default in zip(keys, defaults_of(cells[1], len(keys)), strict=True):
                if key.startswith("swap."):
                    for kind in SWAP_KINDS:
                        if key[5:] in kind.model_fields:
                            rows.append((kind, key[5:], default, cells[2]))
                    continue
                sub, field = resolve(section, key)
                rows.append((sub, field, None if key in PROSE_DEFAULTS else default, cells[2]))
    for kind, key_cell, default_cell, allowed in table_rows("`tenants[j].allocator`"):
        keys = keys_of(key_cell)
        for key, default in zip(keys, defaults_of(default_cell, len(keys)), strict=True):
            rows.append((ALLOCATORS[kind], key, default, allowed))
    return rows


ROWS = documented_rows()


@pytest.mark.parametrize(("section", "field", "default", "text"), ROWS,
                         ids=[f"{s.__name__}.{f}" for s, f, _, _ in ROWS])
def test_each_documented_key_exists_with_its_documented_default(section, field, default, text) -> None:
    assert field in section.model_fields, f"README documents {section.__name__}.{field}, which the schema lacks"
    if default is None or (field == "kind" and section in SWAP_KINDS):
        return
    assert parsed(section, field, default) == getattr(section(), field), (
        f"README default of {section.__name__}.{field} is {default!r}; the schema's is {getattr(section(), field)!r}")


NUM = r"-?[\d.]+(?:\^\d+(?:-1)?|[KMG])?"
RANGE = re.compile(rf"(?P<lo>{NUM})\.\.(?P<hi>{NUM})"
                   rf"|(?P<open>[\[(])(?P<lo2>{NUM}), (?P<hi2>{NUM})\]"
                   rf"|(?P<op>>=|>) ?(?P<lo3>{NUM})")


def number(text: str) -> float:
    """``2^30``, ``32M``, ``0.99`` as numbers."""
    if text[-1] in "KMG":
        return parse_size(text)
    base, _, power = text.partition("^")
    if power.endswith("-1"):   # 2^63-1: the largest signed 64-bit integer
        return int(base) ** int(power[:-2]) - 1
    return float(base) ** float(power) if power else float(text)


def documented_bound(text: str) -> tuple[float | None, float | None, bool] | None:
    """The first range the text states (``0..511``, ``[0, 0.49]``, ``>= 1``, ``> 0``), without ``{...}``."""
    m = RANGE.search(re.sub(r"\{[^}]*\}", "", text))
    if m is None:
        return None
    if m["lo"] is not None:
        return number(m["lo"]), number(m["hi"]), False
    if m["lo2"] is not None:
        return number(m["lo2"]), number(m["hi2"]), m["open"] == "("
    return number(m["lo3"]), None, m["op"] == ">"


NUMERIC_ROWS = [(s, f, t) for s, f, _, t in ROWS if s.BOUNDS.get(f) or documented_bound(t)]


@pytest.mark.parametrize(("section", "field", "text"), NUMERIC_ROWS,
                         ids=[f"{s.__name__}.{f}" for s, f, _ in NUMERIC_ROWS])
def test_documented_bounds_are_the_declared_bounds(section, field, text) -> None:
    declared = section.BOUNDS.get(field)
    documented = documented_bound(text)
    if declared is None:   # a bound its type enforces (durations > 0): the edges behave as documented
        assert_enforced(section, field, *documented)
        return
    assert documented is not None, f"{section.__name__}.{field} is bounded {tuple(declared)}; README says nothing"
    lo, hi, lo_open = documented
    name = f"{section.__name__}.{field}"
    assert (lo, hi) == (declared.lo, declared.hi), f"{name}: README {documented}, declared {declared}"
    if lo_open or getattr(declared, "lo_open", False):
        assert lo_open == declared.lo_open


def accepts(section: type[BaseModel], field: str, value: float) -> bool:
    try:
        section.model_validate({field: value})
    except ValidationError:
        return False
    return True


def assert_enforced(section: type[BaseModel], field: str, lo: float, hi: float | None, lo_open: bool) -> None:
    """A bound no table declares must still hold: ``lo`` accepted unless open, just below it rejected."""
    name = f"{section.__name__}.{field}"
    assert accepts(section, field, lo) != lo_open, f"{name}: README says {'>' if lo_open else '>='} {lo}"
    assert not accepts(section, field, lo - 1), f"{name}: {lo - 1} accepted, below README's bound {lo}"
    if hi is not None:
        assert accepts(section, field, hi) and not accepts(section, field, hi * 2 + 1), f"{name}: <= {hi}"


CHOICE_ROWS = [(s, f, t) for s, f, _, t in ROWS if f in s.CHOICES and f != "kind"]


@pytest.mark.parametrize(("section", "field", "text"), CHOICE_ROWS,
                         ids=[f"{s.__name__}.{f}" for s, f, _ in CHOICE_ROWS])
def test_documented_choices_are_the_declared_choices(section, field, text) -> None:
    documented = set(re.findall(r"`([^`]+)`", text))
    assert documented == {str(c) for c in section.CHOICES[field]}, f"{section.__name__}.{field}"


def test_every_schema_key_has_a_readme_row() -> None:
    documented = {(s, f) for s, f, _, _ in ROWS}
    sections = {*TABLES.values(), *ALLOCATORS.values(), ThpConfig, VmConfig, *SWAP_KINDS}
    missing = []
    for section in sections:
        for field, info in section.model_fields.items():
            nested = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
            common = section in ALLOCATORS.values() and field in ("kind", "madvise", "hugepage_advice", "collapse")
            if (section, field) in documented or nested or common or (section, field) in PROSE_FIELDS:
                continue
            missing.append(f"{section.__name__}.{field}")
    assert not missing, f"schema keys without a README row: {sorted(missing)}"
