"""Loading and plotting results needs pandas and seaborn only: never the simulator or the config schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("mesa", "numba", "pydantic", "scipy", "clustersim.fleet", "clustersim.kernel", "clustersim.allocators",
         "clustersim.workloads")


def loaded_heavy(statement: str) -> set[str]:
    """The HEAVY packages in ``sys.modules`` after ``statement``, in a fresh interpreter on this checkout."""
    probe = (f"import json, sys\n{statement}\n"
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_probe_runs_this_checkout_and_sees_heavy_imports():
    # The probe itself: this checkout's clustersim is the one imported, and importing the fleet is seen.
    assert loaded_heavy(f"import clustersim; assert clustersim.__file__.startswith({str(ROOT)!r})") == set()
    assert {"mesa", "clustersim.fleet", "clustersim.kernel"} <= loaded_heavy("import clustersim.fleet")


@pytest.mark.parametrize("statement", [
    "import clustersim.experiments.results",
    "import clustersim; clustersim.load",
    "from clustersim.experiments import load, SUMMARY_KEYS, METRICS",
    "import clustersim.results_contract",
])
def test_loading_results_imports_neither_the_simulator_nor_the_config_schema(statement: str):
    assert loaded_heavy(statement) == set()


def test_plotting_imports_nothing_heavy_beyond_what_seaborn_itself_loads():
    # seaborn imports scipy.stats when it is installed; the figures add nothing of their own.
    assert loaded_heavy("import clustersim.figures.plot") <= loaded_heavy("import seaborn")
    assert not loaded_heavy("import clustersim.figures.plot") & {"mesa", "numba", "pydantic", "clustersim.fleet",
                                                                  "clustersim.kernel", "clustersim.allocators",
                                                                  "clustersim.workloads"}
