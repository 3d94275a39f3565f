# The README's two commands: `make run` and `make test`. Everything else is a step they take.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV_VERSION := 0.13.8
UV := .uv/bin/uv
PY := .venv/bin/python
MANAGE := $(PY) manage.py

.PHONY: run test setup production services browser lint chaos bench clean

## Start the portal with its worker and the AWS sandbox at http://127.0.0.1:8000
## SSO=1: sign in through a local OpenID Connect provider too (scripts/run-sso; needs Node.js)
run: setup
	$(MANAGE) migrate --noinput
	$(if $(filter 1,$(SSO)),scripts/run-sso $(PY),$(MANAGE) run_local)

## Set up and run every test against real Redis and PostgreSQL
test: setup services browser
	$(PY) -m pytest

setup: .venv/.synced

$(UV):
	python3 -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

## What production runs, without the development groups (the sandbox's moto and Flask, pytest, Playwright, awscli,
## the linters): the same locked versions, `uv sync --no-default-groups`. Then see README, Running it in production.
production: | $(UV)
	$(UV) sync --frozen --no-default-groups
	@rm -f .venv/.synced

## Start Redis and PostgreSQL when they are not running (as on a fresh machine)
services:
	@scripts/ensure-services

## Debian's Chromium for the browser tests (Playwright cannot download browsers here)
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## Fault injection at the issue's scale (SIGKILLed workers, lost responses, Redis restarts, a 500-declaration
## burst…): prints accepted / created / lost / duplicated per scenario. `make test` runs the same scenarios small.
chaos: setup services
	CHAOS_SCALE=full $(PY) -m pytest tests/chaos -m chaos --timeout 3600

## ruff, and mypy with django-stubs over portal, incidents, sandbox and bench ([tool.mypy] in pyproject.toml)
lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy

clean:
	rm -rf .venv .uv var test-artifacts

## Measure speed and memory as production would run (gunicorn, PostgreSQL, Redis, worker, sandbox)
## BENCH_ARGS="--quick" for a smoke run, BENCH_ARGS="--only declare,history" for some of the measures
bench: setup services
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) -m bench.run $(BENCH_ARGS)
