# The README's commands. Everything installs into .venv from pyproject.toml + constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
# The MCP server for agents (streamable HTTP at http://127.0.0.1:$(MCP_PORT)/mcp), its own process.
MCP_PORT ?= 8001

.PHONY: install run test lint soak demo bench migrate clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

# Web (gunicorn) + worker + scheduler + MCP server in the foreground; one Ctrl-C stops all.
# The admin login (a generated password is printed once) is repeated in the "ready" banner.
run: migrate
	rm -rf var/prometheus && mkdir -p var/prometheus  # metrics of a previous run's processes
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py sync_schedules
	login="$$($(PY) manage.py ensure_admin)" && echo "$$login" && \
	SYNDARIX_ADMIN_LOGIN="$$login" SYNDARIX_PORT=$(PORT) SYNDARIX_MCP_PORT=$(MCP_PORT) \
	  exec $(PY) -m syndarix_sync.runner Procfile

test: install
	$(PY) -m pytest

# The convergence simulation at scale: SOAK_SCENARIOS seeded scenarios per provider (1,000).
# Spread over SOAK_WORKERS processes (pytest-xdist, one test database each): ~0.6 s a scenario on
# two cores, so the full soak of 7 providers takes about 70 minutes.
SOAK_SCENARIOS ?= 1000  # per provider
SOAK_WORKERS ?= auto
soak: install
	SOAK_SCENARIOS=$(SOAK_SCENARIOS) $(PY) -m pytest tests/engine/test_convergence.py -q \
	  -n $(SOAK_WORKERS) -p no:logging --show-capture=no --tb=short

# The service plus a simulated Gitea on 127.0.0.1:$(DEMO_GITEA_PORT), seeded with 50 issues.
DEMO_GITEA_PORT ?= 3300
demo: migrate
	rm -rf var/prometheus && mkdir -p var/prometheus
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py sync_schedules
	login="$$($(PY) manage.py ensure_admin)" && echo "$$login" && \
	SYNDARIX_ADMIN_LOGIN="$$login" SYNDARIX_PORT=$(PORT) SYNDARIX_MCP_PORT=$(MCP_PORT) \
	  DEMO_GITEA_PORT=$(DEMO_GITEA_PORT) exec $(PY) -m syndarix_sync.runner Procfile.demo

# Benchmarks: needs PostgreSQL + Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL); ~6-10 min.
BENCH_RESULTS ?= bench-results.json
bench: install
	BENCH_RESULTS=$(BENCH_RESULTS) $(PY) -m bench.run

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

clean:
	rm -rf var/broker var/static .pytest_cache .mypy_cache .ruff_cache
