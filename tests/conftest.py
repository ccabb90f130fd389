"""Fixtures shared by every test directory: golden timelines kept as readable text files.

A golden test renders what a scenario did as lines of text (one call, event or observation per line) and
compares them with the file stored beside the test. A mismatch fails with a unified diff of the first
differing lines, so a reader sees which call went another way, not two hashes. A change that is meant is
recorded by running the tests with ``CLUSTERSIM_UPDATE_GOLDEN=1``: the fixtures are rewritten and each
rewriting test is skipped (never passed), so an update run cannot be mistaken for a green one.
"""

from __future__ import annotations

import difflib
import itertools
import os
from pathlib import Path

import pytest

UPDATE_ENV = "CLUSTERSIM_UPDATE_GOLDEN"
DIFF_LINES = 80


def check_text_fixture(path: Path, lines: list[str]) -> None:
    """Compare ``lines`` with the text fixture at ``path``; rewrite it and skip under CLUSTERSIM_UPDATE_GOLDEN."""
    if os.environ.get(UPDATE_ENV):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines))
        pytest.skip(f"fixture rewritten: {path.name}")
    if not path.exists():
        pytest.fail(f"{path} is missing; record it with {UPDATE_ENV}=1", pytrace=False)
    expected = path.read_text().splitlines()
    if lines != expected:
        diff = difflib.unified_diff(expected, lines, fromfile=f"{path.name} (recorded)", tofile="this run",
                                    lineterm="", n=3)
        shown = "\n".join(itertools.islice(diff, DIFF_LINES))
        pytest.fail(f"timeline differs from {path.name} (first {DIFF_LINES} diff lines):\n{shown}", pytrace=False)


@pytest.fixture
def golden_text():
    """The text-fixture comparison, as a fixture so every test directory can use it without an import."""
    return check_text_fixture
