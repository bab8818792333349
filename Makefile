# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo-out

# A CPU build of PyTorch, where the machine has one on disk, lets one test run vd's Keras code
# under KERAS_BACKEND=torch; without it that test skips. (PyPI's default torch is a multi-GB CUDA build.)
TORCH_WHEEL ?= $(firstword $(wildcard /opt/wheels/torch-*+cpu-cp3*.whl))

.PHONY: install demo test test-fast bench clean tools

install: $(VENV)/.installed

# Idempotent: rebuilds only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# Debian's ffmpeg makes the codec and broken-file cases of the tests. Where it cannot be had (not
# root, no registry) the tests marked `ffmpeg` skip and say so; under CI (CI=true, as root) a
# missing ffmpeg fails here instead (tests/conftest.py checks the same at session start).
tools: install
	@command -v ffmpeg >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) ; } || \
	  if [ "$$CI" = true ] && [ "$$(id -u)" = 0 ]; then \
	    echo "CI: ffmpeg could not be installed; the tests marked ffmpeg cannot run" >&2; exit 1; \
	  else echo "ffmpeg not available: tests marked ffmpeg will be skipped"; fi
	@if [ -n "$(TORCH_WHEEL)" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  $(BIN)/python -m pip install -q "$(TORCH_WHEEL)" || echo "torch not installed: the backend test will be skipped"; fi

demo: install
	$(BIN)/python -m vd.cli.demo $(DEMO)

test: install tools
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python bench/extract_throughput.py

clean:
	rm -rf $(DEMO) .pytest_cache
