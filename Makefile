# One task runner; the README names these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,client,test,lint,bench]'
	touch $(STAMP)

## run: the demo: audit server on SQLite, a reference platform and a week of its traffic
run: $(STAMP)
	$(BIN)/trailkeeper demo

# The console's tests drive Debian's chromium (Playwright's own browser download is not used).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	@echo "make: installing Debian's chromium for the console's browser tests"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

## test: the whole suite (unit, contract, property, concurrency, durability, browser)
test: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest

## screenshots: refresh docs/console-*.png from the console's browser test
screenshots: $(STAMP) $(CHROMIUM)
	TRAILKEEPER_SCREENSHOTS=docs $(BIN)/pytest tests/test_console.py -k screenshots

## lint: ruff (check and format check) and mypy --strict
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## bench: the benchmarks of bench/ (about 40 minutes and 14 GB; the pg_ ones need PostgreSQL; figures in bench/RESULTS.md)
bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/clarifai_pages.py
	$(BIN)/python bench/http_ingest.py
	$(BIN)/python bench/http_search.py
	$(BIN)/python bench/capture.py
	$(BIN)/python bench/pg_ingest.py
	$(BIN)/python bench/pg_search.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
