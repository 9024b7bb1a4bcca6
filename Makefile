# Set-up is shared by every target: a .venv at the repo root with the pinned requirements and
# this project installed in editable mode. The stamp file makes re-runs skip pip entirely.
PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
PIP := $(VENV_PYTHON) -m pip --disable-pip-version-check --no-input -q
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup kernels gemm-check demo test fuzz bench clean distclean

setup: $(STAMP)

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

# The requirements are installed first and the project with --no-deps, so only the pins decide
# which versions end up in the virtualenv.
$(STAMP): requirements.txt setup.py | $(VENV_PYTHON)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e .
	touch $@

# The Qg op library (quantize_graph/kernels/_qg_ops.so): `pip install -e .` builds it too; this
# rebuilds only what changed in kernels/cc (objects in build/qg_cpu).
kernels: $(STAMP)
	$(VENV_PYTHON) kernels/build_cpu.py

# TF-free check of the int8 GEMM core: every micro-kernel this CPU runs vs a scalar reference.
gemm-check:
	mkdir -p build
	g++ -std=c++17 -O3 -ffp-contract=off -Ikernels/cc/gemm kernels/cc/gemm/gemm_check.cc \
	  kernels/cc/gemm/qg_gemm.cc kernels/cc/gemm/qg_gemm_avx2.cc kernels/cc/gemm/qg_gemm_vnni.cc \
	  kernels/cc/gemm/qg_gemm_vnni_u8.cc kernels/cc/gemm/qg_gemm_amx.cc \
	  -o build/gemm_check
	./build/gemm_check

demo: $(STAMP)
	$(VENV_PYTHON) tools/demo.py

# Float vs eightbit (onednn, reference) on generated Inception-v3, then TF float, onednn, kernels,
# TFLite float and int8 side by side on four models (tools/bench_targets.py); docs/benchmarks.md.
bench: $(STAMP)
	$(VENV_PYTHON) tools/bench.py

test: $(STAMP) kernels
	$(VENV_PYTHON) -m pytest -q tests $(PYTEST_ARGS)

# tests/test_fuzz.py with ten times the CI's seeded cases (QG_FUZZ_SEED picks another seed).
fuzz: $(STAMP) kernels
	QG_FUZZ_SCALE=10 $(VENV_PYTHON) -m pytest -q -s tests/test_fuzz.py $(PYTEST_ARGS)

clean:
	rm -rf .cache/demo build dist .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info quantize_graph/kernels/_qg_ops.so

# CUDA: `make cuda` (GPU library variant) and `make gpu-test` (standalone GPU checks).
include kernels/cuda/cuda.mk
