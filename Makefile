# `make serve` runs the origin on the bundled samples; `make test` runs lint, types and tests;
# `make test-fast` only the fast unit tests (pytest -m "unit and not slow": in process, each under ~5 s).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: serve test test-fast lint bench clean screenshot

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

serve: $(VENV)/.runtime
	PROXY_PLAYGROUND=$${PROXY_PLAYGROUND:-1} $(BIN)/gunicorn -c gunicorn.conf.py --bind 127.0.0.1:$(PORT) "proxy.app:create_app()"

lint: $(VENV)/.dev
	$(BIN)/ruff check proxy tests bench deploy docs tools
	$(BIN)/ruff format --check proxy tests bench deploy docs tools
	$(BIN)/mypy
	$(BIN)/lint-imports

# axe-core, which the browser tests inject into pages (tests/package.json), where npm is.
AXE := tests/node_modules/axe-core/axe.min.js
$(AXE): tests/package.json tests/package-lock.json
	npm ci --prefix tests --no-audit --no-fund --loglevel=error
	touch $@

test: lint $(if $(shell command -v npm),$(AXE))
	$(BIN)/pytest

# The markers are in pyproject.toml; tests/conftest.py puts every test in unit or integration.
test-fast: $(VENV)/.dev
	$(BIN)/pytest -m "unit and not slow"

$(VENV)/.bench: bench/requirements.txt requirements.txt | $(BIN)/activate
	$(BIN)/pip install -q -r bench/requirements.txt
	touch $@

# thumbor pins its own Pillow, so it gets a virtualenv of its own.
.venv-thumbor/bin/thumbor: bench/requirements-thumbor.txt
	$(PYTHON) -m venv .venv-thumbor
	.venv-thumbor/bin/pip install -q -r bench/requirements-thumbor.txt
	touch $@

# Figures for the README's performance section: tables on stdout, JSON in bench/out/.
# The HTTP part needs wrk (and uses nginx if present): apt-get install wrk nginx-light
bench: $(VENV)/.runtime $(VENV)/.bench .venv-thumbor/bin/thumbor
	$(BIN)/python bench/transform.py
	$(BIN)/python bench/codecs.py
	@command -v wrk >/dev/null || { echo "bench/http_load.py needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/http_load.py --thumbor .venv-thumbor/bin/thumbor
	$(BIN)/python bench/backpressure.py
	$(BIN)/python bench/sources.py
	$(BIN)/python bench/color.py
	$(BIN)/python bench/animation.py
	$(BIN)/python bench/crops.py
	$(BIN)/python bench/formats.py
	$(BIN)/python bench/access_log.py
	$(BIN)/python bench/purge.py
	$(BIN)/python bench/scaling.py
	$(BIN)/python bench/peak_rss.py 24
	$(BIN)/python bench/peak_rss.py 50

# The README's picture of the playground (needs Debian's chromium: apt-get install chromium).
screenshot: $(VENV)/.dev
	$(BIN)/python docs/screenshot.py

clean:
	rm -rf $(VENV) .venv-thumbor cache_dir .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache tests/node_modules
