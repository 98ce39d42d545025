# One task runner; the README names these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,client,test,lint,bench]'
	touch $(STAMP)

## run: the service on the embedded SQLite default, with demo data
run: $(STAMP)
	$(BIN)/trailkeeper demo

## test: the whole suite (unit, contract, property, concurrency, durability)
test: $(STAMP)
	$(BIN)/pytest

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
	$(BIN)/python bench/http_ingest.py
	$(BIN)/python bench/http_search.py
	$(BIN)/python bench/pg_ingest.py
	$(BIN)/python bench/pg_search.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
