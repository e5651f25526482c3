# Two entry points for a newcomer: `make run` and `make test`. Both create the virtualenv first;
# `make run` installs only what running calld needs, `make test` adds the test tools (the `test` extra).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e '.[test]'
	touch $(RUN_STAMP) $(TEST_STAMP)

run: $(RUN_STAMP)
	$(BIN)/calld migrate
	$(BIN)/calld run

lint: $(TEST_STAMP)
	$(BIN)/ruff check calld tests bench
	$(BIN)/mypy calld

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
