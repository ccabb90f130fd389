"""Every citation in the code and the docs resolves to a page of this repository.

Code, docstrings, test names and docs cite the Linux rules as ``K<n>`` (docs/linux-rules.md), the
measurements as ``calibration N`` / ``calibration scenario N`` (docs/calibration.md), published figures as
``literature.md section N`` (docs/literature.md). This test scans clustersim/, tests/, docs/ and README.md
and fails on a cited label without its heading and on citations of files outside the repository (design
notes, kernel-rule lists and calibration reports kept elsewhere).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCANNED = [*sorted((ROOT / "clustersim").rglob("*.py")), *sorted((ROOT / "tests").rglob("*.py")),
           *sorted(DOCS.glob("*.md")), ROOT / "README.md"]
# Material that lives outside the repository: a citation of it cannot be followed by a reader.
OUTSIDE = ("DESIGN", "kernel-rules", "reference/", "../reference", "calibration-linux-",
           "lkml-2015-madv-free-thread")
K_RULE = re.compile(r"(?<![\w])K(\d{1,2})(?!\w)")
CALIBRATION = re.compile(r"[Cc]alibration(?:\.md)?,? (?:scenario |result )?(\d+)\b")
LITERATURE = re.compile(r"literature\.md,? section (\d+)\b")


def _headings(page: str, pattern: str) -> set[int]:
    return {int(m.group(1)) for m in re.finditer(pattern, (DOCS / page).read_text(), re.MULTILINE)}


RULES = _headings("linux-rules.md", r"^## K(\d+)\b")
CALIBRATIONS = _headings("calibration.md", r"^## (\d+)\.")
LITERATURE_SECTIONS = _headings("literature.md", r"^## (\d+)\.")


def _texts():
    for path in SCANNED:
        if path.resolve() != Path(__file__).resolve():
            yield path.relative_to(ROOT).as_posix(), path.read_text()


def _where(rel: str, text: str, pos: int) -> str:
    return f"{rel}:{text.count(chr(10), 0, pos) + 1}"


def _problems() -> list[str]:
    found = []
    for rel, text in _texts():
        for word in OUTSIDE:
            found += [f"{_where(rel, text, m.start())}: cites {word!r}, which is not in the repository"
                      for m in re.finditer(re.escape(word), text)]
        for pattern, known, page in ((K_RULE, RULES, "docs/linux-rules.md"),
                                     (CALIBRATION, CALIBRATIONS, "docs/calibration.md"),
                                     (LITERATURE, LITERATURE_SECTIONS, "docs/literature.md")):
            found += [f"{_where(rel, text, m.start())}: {m.group(0)!r} has no heading in {page}"
                      for m in pattern.finditer(text) if int(m.group(1)) not in known]
    return found


def test_the_docs_pages_have_the_headings_citations_use():
    # The pages exist and number what the code cites: rules K1-K22, calibration results, literature sections.
    assert set(range(1, 23)) == RULES
    assert set(range(1, 8)) == CALIBRATIONS
    assert LITERATURE_SECTIONS


def test_every_citation_resolves_to_a_page_of_the_repository():
    # Scan the sources and docs: each K-rule, calibration result and literature section cited has its
    # heading, and nothing points outside the repository.
    problems = _problems()
    if problems:
        pytest.fail(f"{len(problems)} unresolved citation(s):\n" + "\n".join(problems), pytrace=False)
