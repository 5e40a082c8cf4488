# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
ifeq (, $(shell command -v $(PYTHON) 2>/dev/null))
PYTHON := python3
endif
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format worker clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt $(VENV)/bin/python
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PIP) install -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py prepare_demo --host $(HOST):$(PORT)
	@trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	$(PY) -m celery -A config worker -B --loglevel=warning --concurrency=1 --without-heartbeat --without-gossip --without-mingle & \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

# One pytest process per core, up to four; `make test PYTEST_ARGS=-n0` runs them in this process.
# Bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): each pytest
# process otherwise compiles and assertion-rewrites every module again (collecting took 7.4 s a process
# without the files, 5.3 s with them).
PYTEST_ARGS ?= -n auto --maxprocesses=4
test: $(VENV)/.installed-dev
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.installed-dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

worker: $(VENV)/.installed
	$(PY) -m celery -A config worker -B --loglevel=info --concurrency=1

clean:
	rm -rf $(VENV) var
