# Every target bootstraps .venv when it is missing or older than pyproject.toml,
# so `make book` and `make test` each work first on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fairlib-installed
# CPU build of torch used when no NVIDIA GPU is present: it avoids a multi-GB CUDA download.
# TORCH_CPU is tried from the configured pip index first, then from PyTorch's CPU index.
TORCH_CPU ?= torch==2.13.0+cpu
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup test book bench gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	    echo "NVIDIA GPU found: installing the default (CUDA) build of torch"; \
	    $(BIN)/pip install --quiet "torch>=2.2"; \
	elif $(BIN)/python -c "import torch" 2>/dev/null; then \
	    echo "torch already installed in $(VENV)"; \
	else \
	    echo "No NVIDIA GPU: installing the CPU build of torch ($(TORCH_CPU))"; \
	    $(BIN)/pip install --quiet "$(TORCH_CPU)" 2>/dev/null \
	    || $(BIN)/pip install --quiet --index-url $(TORCH_CPU_INDEX) "torch>=2.2"; \
	fi
	$(BIN)/pip install --quiet -e ".[book,test]"
	@touch $@

test: $(STAMP)
	$(BIN)/python -m pytest

# Executes every chapter (teaching profile) and builds book/_build/html; the runner
# builds in a staging folder and swaps it in only on success.
book: $(STAMP)
	$(BIN)/fairlib build --profile teach --jobs 2

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_meta.py
	$(BIN)/python benchmarks/bench_study.py
	$(BIN)/python benchmarks/bench_study.py --epochs 24

# On a machine with CUDA: the device tests, bench_metrics, bench_meta and chapter 1 (full
# profile) on the GPU, one summary table, non-zero exit on any failure (under 5 minutes).
# Without CUDA: one line saying so, exit 0.
gpu-check: $(STAMP)
	@$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf book/_build book/_build_student book/*.staging .pytest_cache
