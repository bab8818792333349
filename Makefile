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

# Idempotent: rebuilds only when pyproject.toml changes. tools/venv_install.py installs with
# uv, from the indexes, wheel folders and constraints pip is configured with, and compiles the
# modules on every core; where uv cannot do what pip would, it uses pip and says why.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/venv_install.py $(VENV) -e '.[dev]'
	touch $@

# Debian packages the tests drive as real outside programs: ffmpeg makes the codec and
# broken-file cases; GStreamer's RTSP server (run with the system python3 + gi) serves live
# streams to `vd watch`/`vd serve`; headless chromium renders the dashboard; mosquitto is the
# MQTT broker the `--mqtt` tests publish to; SLURM (slurmctld, slurmd, the clients) and munge
# run deploy/slurm-extract.sh on a one-node cluster on 127.0.0.1 (tests/slurm_cluster.py
# starts its own daemons; the packages' services stay off). Where they cannot
# be had (not root, no registry) the tests that need them skip and say so; under CI (CI=true,
# as root) a missing one fails here instead (tests/conftest.py checks the same at session start).
APT_PACKAGES := ffmpeg chromium python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav postgresql mosquitto slurm-wlm munge

tools: install
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; then :; \
	  elif [ "$$CI" = true ] && [ "$$(id -u)" = 0 ]; then \
	    echo "CI: could not install $$missing; the tests that need them cannot run" >&2; exit 1; \
	  else echo "not installed: $$missing (the tests that need them will be skipped)"; fi; \
	fi
	@if [ -n "$(TORCH_WHEEL)" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  $(BIN)/python tools/venv_install.py $(VENV) "$(TORCH_WHEEL)" || \
	    echo "torch not installed: the backend test will be skipped"; fi

demo: install
	$(BIN)/python -m vd.cli.demo $(DEMO)

# Test files run in TEST_WORKERS processes (pytest-xdist, a file's tests together so its
# module fixtures are built once). `auto` is one more than the machine has cores, held to one
# per 6 GiB of memory (tests/conftest.py says why). TEST_WORKERS=0 runs everything in one
# process.
TEST_WORKERS ?= auto
PYTEST_PAR := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: install tools
	$(BIN)/python -m pytest -q $(PYTEST_PAR)

test-fast: install
	$(BIN)/python -m pytest -q $(PYTEST_PAR) -m "not slow"

bench: install
	$(BIN)/python bench/extract_throughput.py

clean:
	rm -rf $(DEMO) .pytest_cache
