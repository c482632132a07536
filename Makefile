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

.PHONY: setup test book bench clean

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

# Build into a scratch folder and swap it in only on success, so a failed build never
# replaces the last good HTML.
book: $(STAMP)
	rm -rf book/_build_next
	$(BIN)/jupyter-book build book --path-output book/_build_next --warningiserror --nitpick --keep-going
	rm -rf book/_build
	mv book/_build_next/_build book/_build
	rm -rf book/_build_next
	@echo "Book: book/_build/html/index.html"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_metrics.py

clean:
	rm -rf book/_build book/_build_next .pytest_cache
