"""The compiled loops mean what their Python source says: compiled and plain-Python runs give the same text.

The hot loops are compiled with numba (clustersim/jit.py). ``NUMBA_DISABLE_JIT=1`` runs the same functions as
Python; both runs of ``nojit_outputs.outputs()`` (kernel golden scenarios, legacy tcmalloc, jemalloc, glibc and
Temeraire syscall traces, the latency histogram, the workloads' live-unit table and hot-set hash) must agree line
for line.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
SCRIPT = ("import json, warnings, nojit_outputs\n"
          "warnings.simplefilter('ignore', RuntimeWarning)\n"   # uint64 wrap-around warns in plain Python
          "print(json.dumps(nojit_outputs.outputs()))\n")


def _start(disable_jit: bool) -> subprocess.Popen:
    path = [str(TESTS / "allocators"), str(TESTS / "kernel"), str(TESTS), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    env.pop("NUMBA_DISABLE_JIT", None)
    if disable_jit:
        env["NUMBA_DISABLE_JIT"] = "1"
    return subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> dict[str, list[str]]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out)


def test_the_compiled_loops_give_the_outputs_of_their_python_source():
    # Two fresh interpreters run the same scenarios, one compiled and one as plain Python (started together,
    # so the two run side by side): every output, line by line, is the same.
    compiled, plain = _start(disable_jit=False), _start(disable_jit=True)
    got_compiled, got_plain = _finish(compiled), _finish(plain)
    assert sorted(got_compiled) == sorted(got_plain)
    for name in sorted(got_compiled):
        if got_compiled[name] != got_plain[name]:
            diff = difflib.unified_diff(got_compiled[name], got_plain[name], "compiled", "NUMBA_DISABLE_JIT=1",
                                        lineterm="")
            raise AssertionError(f"{name} differs:\n" + "\n".join(itertools.islice(diff, 60)))
