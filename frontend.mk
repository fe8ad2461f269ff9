# The front end, included by the Makefile: the diagnosis panel's bundle (src/panel -> inplace_magic/static)
# and the prebuilt JupyterLab extension (src/lab -> inplace_magic/labextension).
# npm only (never jlpm); the lockfile pins everything and `npm ci` installs exactly it. The extension's
# build step is the `jupyter-builder` CLI (pinned in requirements-dev.txt), so the venv's requirements
# (DEPS_STAMP, in the Makefile) come first; they install while `npm ci` runs.

NPM ?= npm
NODE_STAMP := node_modules/.package-lock.json
WIDGET_BUNDLE := inplace_magic/static/widget.js
LABEXTENSION := inplace_magic/labextension/package.json
LAB_LINK := $(VENV)/share/jupyter/labextensions/inplace-magic
FRONTEND_SOURCES := $(shell find src style schema/settings -type f ! -path '*/__tests__/*' 2>/dev/null) package.json tsconfig.json
# the venv's bin first: the npm build script calls jupyter-builder
NPM_RUN := PATH="$(abspath $(BIN)):$$PATH" $(NPM) run

.PHONY: npm-install build-widget build-labextension lab-develop lint-ts typecheck-ts test-ts widget-fixtures demo-lab protocol

$(NODE_STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $(NODE_STAMP)

npm-install: $(NODE_STAMP)

# One build makes both: the widget bundle, then tsc, then the labextension, into which install.json is
# copied: the wheel maps that one folder (an editable `pip install` after `lab-develop` writes its
# shared data through the venv's link into the folder, so a second mapping of install.json would put
# the file in the wheel twice, and the build would fail).
$(LABEXTENSION) $(WIDGET_BUNDLE) &: $(NODE_STAMP) $(FRONTEND_SOURCES) | $(DEPS_STAMP)
	$(NPM_RUN) build
	@touch $(LABEXTENSION) $(WIDGET_BUNDLE)

build-widget: $(WIDGET_BUNDLE)
build-labextension: $(LABEXTENSION)

# JupyterLab in the venv loads the extension from this checkout (a link; `npm run build` updates it).
lab-develop: $(STAMP) $(LABEXTENSION)
	@[ -L $(LAB_LINK) ] || PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter labextension develop --overwrite .

# prettier and ESLint (the JupyterLab extension template's rules, eslint.config.mjs)
lint-ts: $(NODE_STAMP)
	$(NPM) run lint:check

typecheck-ts: $(NODE_STAMP)
	$(NPM) run typecheck

test-ts: $(NODE_STAMP)
	$(NPM) test

# The wire protocol from its one source, the TypedDicts: JSON Schema (schema/wire), then the TypeScript
# types from it (src/panel/wire.ts, src/lab/wire.ts). tests/test_protocol_generated.py and
# src/__tests__/wire.test.ts regenerate both and diff.
protocol: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m inplace_magic.lab.schema schema/wire
	node schema/wire/to-typescript.mjs

# Re-run the CLI on the shared cases and rebuild the panel states the TS tests render.
widget-fixtures: setup
	$(BIN)/python tests/fixtures/widget/regenerate.py

# JupyterLab on the bundled demo notebook (everything here runs as root, hence --allow-root).
demo-lab: setup
	$(BIN)/jupyter lab examples/demo.ipynb --allow-root --ServerApp.ip=127.0.0.1

FRONTEND_SETUP += build-widget build-labextension
FRONTEND_TESTS += lint-ts typecheck-ts test-ts

# Build before the editable install, so its build hook finds the front end up to date.
$(STAMP): | $(FRONTEND_SETUP)
setup: $(FRONTEND_SETUP) lab-develop
