# Leptonic: make demo · make test · make bench · make serve
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest bench serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/leptonic demo --home demo-output/home

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/credit.py
	$(BIN)/python benchmarks/compute.py
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/decisions.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/recsys.py
	$(BIN)/python benchmarks/recsys_serving.py
	$(BIN)/python benchmarks/text.py
	$(BIN)/python benchmarks/text_serving.py

serve: install
	$(BIN)/leptonic server

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
