# The front end of the diagnosis panel (src/widget -> inplace_magic/static), included by the Makefile.
# npm only (never jlpm); the lockfile pins everything and `npm ci` installs exactly it.

NPM ?= npm
NODE_STAMP := node_modules/.package-lock.json
WIDGET_BUNDLE := inplace_magic/static/widget.js
WIDGET_SOURCES := $(shell find src/widget -type f ! -path '*/__tests__/*' 2>/dev/null)

.PHONY: npm-install build-widget lint-ts typecheck-ts test-ts widget-fixtures

$(NODE_STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $(NODE_STAMP)

npm-install: $(NODE_STAMP)

$(WIDGET_BUNDLE): $(NODE_STAMP) $(WIDGET_SOURCES)
	$(NPM) run build

build-widget: $(WIDGET_BUNDLE)

lint-ts: $(NODE_STAMP)
	$(NPM) run prettier:check

typecheck-ts: $(NODE_STAMP)
	$(NPM) run typecheck

test-ts: $(NODE_STAMP)
	$(NPM) test

# Re-run the CLI on the shared cases and rebuild the panel states the TS tests render.
widget-fixtures: setup
	$(BIN)/python tests/fixtures/widget/regenerate.py

FRONTEND_SETUP += build-widget
FRONTEND_TESTS += lint-ts typecheck-ts test-ts

# Bundle before the editable install, so its build hook finds the bundle up to date.
$(STAMP): | $(FRONTEND_SETUP)
setup: $(FRONTEND_SETUP)
