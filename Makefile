# `make demo` and `make test` set up everything they need on a fresh Debian machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test docker-engine bench

$(STAMP): pyproject.toml scripts/install-system.sh
	bash scripts/install-system.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,docker,train,scale]'
	# pyautogui's python3-xlib (an old fork) shares the Xlib package with python-xlib: keep ours.
	$(PY) -m pip install -q --force-reinstall --no-deps 'python-xlib>=0.33'
	touch $@

# OSWorld's own scorer (desktop-env and its pins) in a venv of its own, outside cua's: about
# 2 minutes and 6.5 GB the first time (mostly the CUDA torch easyocr pulls in), then a no-op.
install: $(STAMP)
	$(VENV)/bin/cua eval install-scorer

demo: install
	$(VENV)/bin/cua loop --recipe recipes/demo-loop.yaml

# A Docker Engine API for the docker backend: an existing daemon, or podman set up here.
# In CI a failure is fatal; elsewhere the docker tests skip and say why.
docker-engine: install
	@if engine=$$(bash scripts/setup-podman.sh | tail -n 1) && export "$$engine" \
	    && bash scripts/build-image.sh; then echo "$$engine" > .docker-host; \
	elif [ -n "$${CI:-}" ]; then echo "docker engine setup failed" >&2; exit 1; \
	else echo "warning: no Docker engine here; docker backend tests will skip" >&2; \
	    rm -f .docker-host; fi

test: install docker-engine
	@if [ -f .docker-host ]; then export "$$(cat .docker-host)"; fi; \
	$(PY) -m pytest -q --durations=30 tests

bench: install
	$(VENV)/bin/cua bench desktop --desktops 4 --steps 50
