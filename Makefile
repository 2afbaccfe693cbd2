# make up | down | test | bench | clean. See README.md ("Run it") and deploy/local/stack.py.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVICE_DIRS := services/upload-api services/index-api services/metadata-worker services/proxy services/web
# Every package that exists so far (a service without a pyproject.toml yet is skipped).
PACKAGES := shared $(foreach dir,$(SERVICE_DIRS),$(if $(wildcard $(dir)/pyproject.toml),$(dir)))
STAMP := $(VENV)/.installed

.PHONY: help up down status test bench clean images system-deps lock FORCE
LOCK := requirements-dev.lock
FORCE:

help:
	@echo "make up      install into $(VENV), start the registry (prints the URL and examples)"
	@echo "make down    stop what 'make up' started; data stays under var/"
	@echo "make status  one line per process"
	@echo "make test    lint (ruff), type-check (mypy), then run the whole test suite (it starts the servers it needs)"
	@echo "make bench   run the benchmarks"
	@echo "make images  build the five service images (needs a Docker engine)"
	@echo "make clean   stop, then remove $(VENV), var/ and caches"
	@echo "make lock    refresh requirements-dev.lock and deploy/docker/constraints.txt from the index (deliberate)"

# Debian's python3 lacks the venv module until python3-venv is installed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); }

# Reinstalled whenever a package's metadata, the pinned tools or the lock change, or a package appeared
# since. Everything installs with the lock as constraints, so .venv holds exactly the locked versions
# whatever the index published since; the local packages build without isolation (no unpinned setuptools).
STAMP_FORCE := $(if $(filter-out $(shell cat $(STAMP) 2>/dev/null),$(PACKAGES)),FORCE)
$(STAMP): $(BIN)/python requirements-dev.txt $(LOCK) $(addsuffix /pyproject.toml,$(PACKAGES)) $(STAMP_FORCE)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt --constraint $(LOCK)
	$(BIN)/python -m pip install --quiet --no-build-isolation --constraint $(LOCK) $(addprefix -e ,$(PACKAGES))
	@echo "$(PACKAGES)" > $@

# The one deliberate way to move the pins: resolve requirements-dev.txt and the local packages afresh in
# a scratch virtualenv, write both lock files from it, then reinstall .venv from them.
LOCK_VENV := $(VENV)-lock
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	$(LOCK_VENV)/bin/python -m pip install --quiet --no-build-isolation $(addprefix -e ,$(PACKAGES))
	$(LOCK_VENV)/bin/python deploy/docker/lock.py
	rm -rf $(LOCK_VENV)
	$(MAKE) $(STAMP)

# nginx, RabbitMQ and chromium (the browser tests and docs/screenshots drive it through Playwright, which
# never downloads a browser here) come from Debian packages; installed only when missing (needs root).
system-deps:
	@missing=""; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || missing="$$missing rabbitmq-server"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

up: $(STAMP) system-deps
	$(BIN)/python deploy/local/stack.py up

down:
	$(PYTHON) deploy/local/stack.py down

status:
	@$(PYTHON) deploy/local/stack.py status

test: $(STAMP) system-deps
	$(BIN)/ruff check --quiet .
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP) system-deps
	@if [ -f benchmarks/run.py ]; then $(BIN)/python benchmarks/run.py; \
	elif [ -f tests/bench/__main__.py ] || [ -f tests/bench.py ]; then $(BIN)/python -m tests.bench; \
	else echo "make bench: no benchmarks yet (expected benchmarks/run.py or tests/bench/)"; exit 1; fi

clean: down
	rm -rf $(VENV) var .pytest_cache .mypy_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Container images: needs a Docker engine with BuildKit (the build machines have none).
IMAGE_REPOSITORY ?= registry.example.com/pypi-registry
IMAGE_TAG ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_SERVICES := upload-api index-api metadata-worker proxy web
DOCKER ?= docker

images:
	@command -v $(DOCKER) >/dev/null && $(DOCKER) info >/dev/null 2>&1 || \
		{ echo "make images: needs a running Docker engine ($(DOCKER)); none on this machine" >&2; exit 1; }
	@for service in $(IMAGE_SERVICES); do \
		echo "building $(IMAGE_REPOSITORY)/$$service:$(IMAGE_TAG)"; \
		DOCKER_BUILDKIT=1 $(DOCKER) build --file services/$$service/Dockerfile \
			--tag $(IMAGE_REPOSITORY)/$$service:$(IMAGE_TAG) . || exit 1; \
	done
