# Two entry points (see README "Quick start"): `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo check-example test lint typecheck pytest cases bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Pinned CPU torch first: an unpinned resolve would pull a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml requirements-dev.txt
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q -e . --no-build-isolation
	touch $(STAMP)

setup: $(STAMP)

# The main job: JupyterLab on the bundled demo notebook (demo-lab, in frontend.mk).
demo: demo-lab

# The same diagnosis headless, on the bundled script (exit code 1: an in-place error was found).
check-example: setup
	-$(BIN)/inplace-magic check examples/resnet_skip_connection.py --fix

lint: setup
	$(BIN)/ruff check inplace_magic tests benchmarks
	$(BIN)/ruff format --check inplace_magic tests benchmarks
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest -q

# frontend.mk (owned by the front-end work) adds its targets to FRONTEND_TESTS and FRONTEND_SETUP.
FRONTEND_TESTS :=
FRONTEND_SETUP :=
-include frontend.mk
# ui.mk (owned by the UI-test work) adds the Galata browser tests the same way.
UI_TESTS :=
-include ui.mk

test: lint typecheck pytest $(FRONTEND_TESTS) $(UI_TESTS)

# Score the CLI on the shared real-world cases exactly as the project is judged.
cases: setup
	$(BIN)/python ../shared/tools/score_cases.py $(BIN)/python ../shared/cases
	$(BIN)/python ../shared/tools/score_cases.py $(BIN)/python ../shared/cases/negatives --negatives

# Speed and memory (issue 8): prints the table and writes benchmarks/results/latest.{md,json}.
bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info
