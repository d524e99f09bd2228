# divescore: `make run` runs the app, `make test` runs the tests. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install run example test test-fast test-unit test-service test-stack test-browser test-reliability check-static lint bench up down logs deploy clean

help:
	@echo "make run      start the native stack (no Docker) and print its URLs"
	@echo "make test     install everything and run every test"
	@echo "make example  write example-dive.mp4, a generated dive to try the app with"
	@echo "make test-unit|test-service|test-stack|check-static   one kind of tests (tests/<kind>/)"
	@echo "make bench    measure the stack (QUICK=1 for a short smoke run)"
	@echo "make lint     ruff on the code"
	@echo "make up|down|logs   the same stack in containers (needs Docker)"
	@echo "make deploy   build and deploy to AWS with SAM (needs AWS credentials)"

# -- installation ---------------------------------------------------------------------
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[model,stack,dev]'
	$(PY) -m devstack.rie install
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests (never a browser download by a test tool).
.chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v chromium >/dev/null

# -- the native stack ----------------------------------------------------------------
run: $(STAMP)
	$(PY) -m devstack

# A video to try the app with when no dive video is at hand: a generated dive (a board, a diver,
# a splash at 8.4 s, a walker on the deck), not a real one.
EXAMPLE ?= example-dive.mp4
example: $(STAMP)
	@$(PY) -c "from bench import synthetic_dive as s; s.write(s.Scene(12.0, 30, 8.4, walker=True, seed=11), '$(EXAMPLE)')"
	@echo "$(EXAMPLE): a generated 12 s dive entering the water at 8.4 s; drop it on the page, or: $(VENV)/bin/divescore submit $(EXAMPLE)"

# -- tests -----------------------------------------------------------------------------
test: $(STAMP) .chromium
	$(PY) -m pytest -q -p no:cacheprovider

# One kind of tests (see tests/README.md): in process; one real service; the whole native stack.
test-unit: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

test-service: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/service

test-stack: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/stack

test-browser: $(STAMP) .chromium
	$(PY) -m pytest -q -p no:cacheprovider tests/browser

# Bad inputs, faults, security, fuzzing and load against running native stacks (part of `make test`).
test-reliability: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/stack/test_reliability_*.py tests/stack/test_security_*.py tests/stack/test_fuzz_*.py tests/stack/test_load.py

test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not browser"

lint: $(STAMP)
	$(VENV)/bin/ruff check divescore services devstack standins client lambda_image tests bench scripts

bench: $(STAMP)
	$(PY) -m bench $(if $(QUICK),--quick,)

# -- containers and AWS (see docs/deploy.md) -----------------------------------------
# --wait: back when every service is healthy (and the one-shot bootstrap has exited 0).
# Base images: the public ones when they can be pulled, else local stand-ins built from the
# package registries (scripts/compose_images.sh says which; docker/standins/, docs/deploy.md).
COMPOSE := bash scripts/compose.sh
up:
	@bash scripts/check_compose.sh
	@set -e; . scripts/compose_images.sh; $(COMPOSE) up --build --detach --wait --wait-timeout 300
	@echo "web page: http://localhost:8000   (APIs :8001 :8002, LocalStack :4566, function :9000)"

down:
	$(COMPOSE) down --remove-orphans --volumes

logs:
	$(COMPOSE) logs --follow

# Not the development environment: the script checks its tools and the credentials, then
# installs only what deploying runs (boto3, Flask) into .venv-deploy.
deploy:
	bash scripts/deploy.sh

# The checks of what cannot run here (compose file, SAM template, Dockerfiles); part of `make test`.
check-static: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/static/test_static_*.py

clean:
	rm -rf $(VENV) .venv-deploy .pytest_cache test-output
