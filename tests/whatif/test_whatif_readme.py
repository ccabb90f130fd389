"""The README's plan file example and the shipped what-if studies validate as written."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from clustersim.experiments.config import load_config
from clustersim.whatif.configdiff import diff
from clustersim.whatif.planfile import load_plan

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_readme_plan_example_validates_with_an_inline_base():
    section = README[README.index("### Capacity planning: plan"):]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    example["base"] = yaml.safe_load((ROOT / "experiments/compare-dontneed.yaml").read_text())
    example["base"]["nodes"][0]["swap"] = {"kind": "none"}     # a size would not fit swap kind none
    example["slo"] = [{**slo, "tenant": "web"} if "tenant" in slo else slo for slo in example["slo"]]
    plan = load_plan(example)
    assert len(plan.alternatives) == 9 and plan.spec.search.key == "tenants.0.replicas"


def test_the_shipped_studies_validate():
    plan = load_plan(ROOT / "experiments/plan-swap-density.yaml")
    assert len(plan.alternatives) == 9
    assert {s.describe() for s in plan.spec.slo} == {"latency_p99_ms[web] <= 15", "oom_kills <= 0"}
    assert plan.base["nodes"][0]["memory"] == "64G"
    a, b = ROOT / "experiments/compare-dontneed.yaml", ROOT / "experiments/compare-splittable.yaml"
    load_config(a), load_config(b)
    assert [d.path for d in diff(a, b)] == ["name", "tenants.0.allocator.madvise"]
