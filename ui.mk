# The Galata browser tests (ui-tests/), included by the Makefile and run last by `make test`.
# They need: the project set up in .venv (with JupyterLab), Debian's Chromium (Playwright's own
# browser download does not work here) and ui-tests' own npm packages (exactly its lockfile).

NPM ?= npm
UI_DIR := ui-tests
CHROMIUM ?= /usr/bin/chromium
UI_NODE_STAMP := $(UI_DIR)/node_modules/.package-lock.json
# CI runs as root; elsewhere apt needs sudo
UI_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: ui-test ui-test-cpu ui-kernel-zygote-check ui-lint ui-chromium ui-npm-install ui-jupyterlab

ui-chromium:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium for the UI tests"; \
	  $(UI_SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(UI_SUDO) apt-get install -y -qq chromium; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is still missing"; exit 1; }

$(UI_NODE_STAMP): $(UI_DIR)/package.json $(UI_DIR)/package-lock.json
	cd $(UI_DIR) && $(NPM) ci --no-audit --no-fund
	@touch $@

ui-npm-install: $(UI_NODE_STAMP)

# The server (and so the kernel) runs from .venv: it must have JupyterLab.
ui-jupyterlab: setup
	@$(BIN)/python -c "import jupyterlab" 2>/dev/null || $(BIN)/pip install -q "jupyterlab==4.6.*"

# prettier (the root's style) and tsc over the tests: seconds, before any browser starts
ui-lint: ui-npm-install
	cd $(UI_DIR) && $(NPM) run lint

# One shared JupyterLab server, UI_TESTS_WORKERS Playwright workers (empty: playwright.config.js's
# default; 1: one test after another); screenshots land in ui-tests/test-results/screenshots.
UI_TESTS_WORKERS ?=
ui-test: ui-jupyterlab ui-chromium ui-npm-install
	cd $(UI_DIR) && $(TEST_ENV) CI=1 CHROMIUM_PATH=$(CHROMIUM) UI_TESTS_PYTHON=$(abspath $(BIN)/python) \
	  UI_TESTS_WORKERS=$(UI_TESTS_WORKERS) $(NPM) test

# The same under a sampler of /proc (ui-tests/cpu_tree.py): the CPU-seconds of every process of the
# run by kind, the server's kernels included (`time make ui-test` misses them: nothing reaps them
# through make), into ui-tests/test-results/cpu.json, with each test's own share (tests/cpu.ts).
ui-test-cpu: ui-jupyterlab
	rm -f $(UI_DIR)/test-results/cpu-tests.jsonl $(UI_DIR)/test-results/kernel-pids.jsonl
	UI_TESTS_CPU_LOG=$(abspath $(UI_DIR)/test-results/cpu-tests.jsonl) \
	  UI_TESTS_KERNEL_PIDS=$(abspath $(UI_DIR)/test-results/kernel-pids.jsonl) \
	  $(BIN)/python $(UI_DIR)/cpu_tree.py $(UI_DIR)/test-results/cpu.json -- \
	  $(MAKE) --no-print-directory ui-test UI_TESTS_WORKERS=$(UI_TESTS_WORKERS)

# What the tests' kernel zygote promises (interrupt, restart, shutdown, its own end), checked on a
# server of its own through the REST API (ui-tests/check_kernel_zygote.py, about 30 s beside the rest)
ui-kernel-zygote-check: ui-jupyterlab
	$(TEST_ENV) $(BIN)/python $(UI_DIR)/check_kernel_zygote.py

UI_TESTS += ui-lint ui-test ui-kernel-zygote-check
