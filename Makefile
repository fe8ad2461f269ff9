# Two entry points (see README "Quick start"): `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo check-example test test-all test-quick test-profile lint typecheck pytest test-libraries \
	clean-libraries cases bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Two steps, so that the critical path to pytest is short: the pinned requirements (DEPS_STAMP) need
# nothing from the front end and install while `npm ci` runs (make -j); only the editable install of
# the project (STAMP) waits for the front-end build (frontend.mk), whose build step needs the first.
# Pinned CPU torch first: an unpinned resolve would pull a multi-GB CUDA build. The venv's own pip
# resolves these pins.
# Bytecode is compiled at install (pip's default). A module is not compiled "when first imported" where
# PYTHONDONTWRITEBYTECODE is set (as on the CI machine): then every interpreter of the suite compiled
# torch again, 4.3 instead of 1.45 CPU-s for `import torch`, 6.8 instead of 3.1 with torch._dynamo.
# Measured on the 2-core machine: compiling costs the install 36 CPU-s once (30 -> 66); the test file
# test_exit_codes.py alone went from 154 to 74 CPU-s.
PIP_INSTALL := pip install -q --disable-pip-version-check
DEPS_STAMP := $(VENV)/.requirements
$(DEPS_STAMP): $(BIN)/python requirements-dev.txt
	$(BIN)/$(PIP_INSTALL) -r requirements-dev.txt
	touch $(DEPS_STAMP)

$(STAMP): $(DEPS_STAMP) pyproject.toml
	$(BIN)/$(PIP_INSTALL) -e . --no-build-isolation
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
	$(MYPY_TESTS)

# The tests too, for what moves under them (a name, an attribute, a signature: a module that no longer
# imports is a failing collection, found here in seconds); their deliberate looseness (partial
# diagnoses as plain dicts, Optional values a test knows are set) is let through by error code.
# tests/cases and tests/fixtures are user-style code, buggy on purpose.
MYPY_TESTS = MYPYPATH=tests $(BIN)/mypy --explicit-package-bases --allow-untyped-defs \
	--allow-incomplete-defs --no-warn-return-any \
	--disable-error-code index --disable-error-code union-attr --disable-error-code arg-type \
	--disable-error-code typeddict-item --disable-error-code call-overload --disable-error-code dict-item \
	--disable-error-code misc --exclude 'tests/(cases|fixtures)/' tests

# One OpenMP thread in every process the tests start (xdist workers, kernels, sandboxes, ranks, the
# browser tests' server and kernels): the suite already runs its processes side by side on every core,
# so an intra-op team per process only oversubscribes them, and libgomp's idle team threads spin
# (GOMP_SPINCOUNT) after each parallel op, longer the busier the machine. Measured on the 2-core
# machine at a load of 10-14, two runs each way: test_magic and test_skip_forms in one process 62 and
# 76 -> 49 and 49 CPU-s; a small conv net's training loop 3.5 -> 1.8 CPU-s in the same wall time. The
# tests whose subject is a team of threads (tests/test_zygote.py, the warm-up's no-trace check) set
# their own. `make bench` is left alone: it measures what a user's process does.
TEST_ENV := OMP_NUM_THREADS=1

# On every core (pytest-xdist); tests that share a module-scoped kernel, shell or wheel stay on one
# worker (tests/conftest.py). PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= auto
PYTEST_XDIST = -n $(PYTEST_WORKERS) --dist loadgroup
pytest: setup
	$(TEST_ENV) $(BIN)/python -m pytest -q $(PYTEST_XDIST)

# For developers: the Python tests without the ones marked slow (CI runs them all: `make test`).
test-quick: setup
	$(TEST_ENV) $(BIN)/python -m pytest -q $(PYTEST_XDIST) -m "not slow"

# Where the suite's time goes, per file and per test, in CPU seconds (tests/suite_profile.py).
PROFILE_DIR ?= .pytest_cache/suite-profile
test-profile: setup
	rm -rf $(PROFILE_DIR)
	$(TEST_ENV) PYTHONPATH=$(CURDIR)/tests $(BIN)/python -m pytest -q $(PYTEST_XDIST) -p suite_profile --suite-profile=$(PROFILE_DIR)
	$(BIN)/python tests/suite_profile.py $(PROFILE_DIR)

# frontend.mk (owned by the front-end work) adds its targets to FRONTEND_TESTS and FRONTEND_SETUP.
FRONTEND_TESTS :=
FRONTEND_SETUP :=
-include frontend.mk
# ui.mk (owned by the UI-test work) adds the Galata browser tests the same way.
UI_TESTS :=
-include ui.mk

# The library cases that need torchvision and timm (tests/test_library_cases.py; in .venv they are skipped):
# PyPI's torchvision does not load beside the CPU torch of .venv, so they get their own environment, a
# matching pair of CUDA builds (~5.5 GB). The package is not installed there: the checkout is on PYTHONPATH.
# About 2 minutes on a 2-core machine when the wheels lie on local disk; `make test LIBRARY_TESTS=` skips it.
LIB_VENV := .venv-libraries
LIB_BIN := $(LIB_VENV)/bin
LIB_STAMP := $(LIB_VENV)/.installed
LIBRARY_TESTS := test-libraries

$(LIB_BIN)/python:
	$(PY) -m venv $(LIB_VENV)

# --no-compile here: this venv's one test process imports a small part of its ~5.5 GB, and compiling
# every module at install costs more than that process's imports save.
# Under `make test` this install waits for the main setup (LIBRARY_AFTER): side by side, the two pip
# installs took 6 minutes each on the 2-core machine (fresh clone, 2026-12-02), and the main one is the
# path to pytest; after it, this one overlaps pytest instead. `make test-libraries` alone waits for nothing.
LIBRARY_AFTER ?=
$(LIB_STAMP): $(LIB_BIN)/python requirements-libraries.txt | $(LIBRARY_AFTER)
	$(LIB_BIN)/$(PIP_INSTALL) --no-compile -r requirements-libraries.txt
	touch $(LIB_STAMP)

# fails (rather than skipping every case) when the libraries do not import: the cases then fail
# (INPLACE_MAGIC_LIBRARIES_REQUIRED, tests/test_library_cases.py), and so does a run with no case left.
test-libraries: $(LIB_STAMP)
	$(TEST_ENV) HF_HUB_OFFLINE=1 INPLACE_MAGIC_LIBRARIES_REQUIRED=1 PYTHONPATH=$(CURDIR) \
	  $(LIB_BIN)/python -m pytest -q tests/test_library_cases.py

clean-libraries:
	rm -rf $(LIB_VENV)

# The parts side by side (make -j): the installs (Chromium, ui-tests' npm packages, and once the setup
# is done the library venv) wait on the disk while the setup and then pytest keep the cores busy. Each part's output is printed
# whole when it ends (--output-sync). `make test TEST_JOBS=1` runs them one after another.
TEST_JOBS ?= 4
test:
	$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target test-all LIBRARY_AFTER=$(STAMP)

# pytest first: the longest part starts as soon as the setup is done
test-all: pytest lint typecheck $(LIBRARY_TESTS) $(FRONTEND_TESTS) $(UI_TESTS)

# Score the CLI on the shared real-world cases exactly as the project is judged.
cases: setup
	$(BIN)/python ../shared/tools/score_cases.py $(BIN)/python ../shared/cases
	$(BIN)/python ../shared/tools/score_cases.py $(BIN)/python ../shared/cases/negatives --negatives

# Speed and memory (issue 8): prints the table and writes benchmarks/results/latest.{md,json}.
bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info
