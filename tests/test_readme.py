"""The README's examples run as written: its kernel example and every config it names exist and validate."""

from __future__ import annotations

import re
from pathlib import Path

from clustersim.experiments.config import load_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_kernel_example_runs_and_shows_the_pmd_split():
    code = re.search(r"```python\n(from clustersim.kernel.*?)```", README, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)   # our own documentation, not untrusted input
    node, p = scope["node"], scope["p"]
    assert node.vmstat["thp_split_pmd"] == 1
    assert p.smaps["AnonHugePages"] == 127 * 2 * 1024 * 1024 or node.vmstat["thp_collapse_alloc"] > 0


def test_every_config_the_readme_names_validates():
    names = set(re.findall(r"`((?:configs|experiments)/[\w./-]+\.yaml)`", README))
    assert "configs/quickstart.yaml" in names
    for name in sorted(names):
        if name.startswith("configs/"):
            load_config(ROOT / name)
        else:
            assert (ROOT / name).is_file(), name
