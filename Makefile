# clustersim: `make demo` runs the main job, `make test` the test suite. Both create .venv first.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo plan-study plan-figure figures bench lint clean validate

setup: $(STAMP)

$(STAMP): pyproject.toml
	@PYTHON=$$(scripts/find-python) || exit 1; \
	  echo "using $$PYTHON"; \
	  [ -x $(PY) ] || $$PYTHON -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# On up to four cores: a fresh clone spends about as long compiling the hot loops (once per machine) as
# testing, and both spread over the cores; a worker holds up to 1.5 GB. TEST_WORKERS=1: one process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS)

demo: setup
	$(PY) experiments/demo.py

# The shipped capacity plan (README, Capacity planning: plan): runs what is not yet stored, then draws
# figures/plan-swap-density.png and prints the table; plan-figure only redraws from the stored results.
plan-study: setup
	$(PY) experiments/plan_study.py

plan-figure: setup
	$(PY) experiments/plan_study.py --draw-only

# Every figure the README shows or links, from its own runs (resumable): the demo's two, the shipped plan's,
# and the validation suite's (docs/validation.md and figures/validation/).
figures: demo plan-study validate

bench: setup
	$(PY) benchmarks/kernel_bench.py
	$(PY) benchmarks/fleet_bench.py --growth --memory
	$(PY) benchmarks/sweep_bench.py
	$(PY) benchmarks/background_bench.py

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache results

# The validation suite from a full run (resumable): docs/validation.md and figures/validation/.
validate: setup
	$(PY) -m clustersim validate --out results/validation --report docs/validation.md --figures figures/validation
