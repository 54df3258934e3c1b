# kam-analysis — two commands on a fresh machine:
#   make reports   virtualenv + pinned install + demo data + the report job
#   make test      the same environment + the whole test suite
# Both are idempotent: a second run reuses .venv and the demo data.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kam-installed
ENGINES_STAMP := $(VENV)/.kam-engines-installed
KERNEL := kam-analysis
DEMO   := data/demo
DEMO_ACCOUNTS ?= 2000
PYTEST_ARGS ?=

.PHONY: reports test lab lint format env demo browser java postgres

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
	  || { echo "kam-analysis needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (kam-analysis)" >/dev/null
	@touch $(STAMP)

# PySpark and psycopg for the data-source tests (430 MB download, so only for `make test`).
$(ENGINES_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark,postgres]'
	@touch $(ENGINES_STAMP)

$(DEMO)/accounts.parquet: | $(STAMP)
	$(BIN)/kam synth --out $(DEMO) --accounts $(DEMO_ACCOUNTS) --seed 0

demo: $(DEMO)/accounts.parquet

REPORT_JOBS ?= 2

reports: $(STAMP) $(DEMO)/accounts.parquet
	$(BIN)/kam features $(DEMO)
	$(BIN)/kam run --data $(DEMO) --label demo --jobs $(REPORT_JOBS)

# Headless Chromium + a Japanese font for the browser checks of the HTML reports.
# Installed from Debian when running as root; otherwise those tests are skipped.
browser:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi ipaex; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and fonts-ipaexfont-gothic (Debian)"; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-ipaexfont-gothic >/dev/null; \
	else echo "note: chromium not installed, browser tests will be skipped"; fi

# Java 17 for Spark, from Debian when running as root; otherwise the Spark tests are skipped.
java:
	@if command -v java >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing openjdk-17-jre-headless (Debian)"; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else echo "note: java not installed, Spark tests will be skipped"; fi

# PostgreSQL server binaries (the tests start a throw-away server on a Unix socket).
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing postgresql (Debian; the service is not started)"; \
	  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "note: postgresql not installed, PostgreSQL tests will be skipped"; fi

test: lint $(ENGINES_STAMP) browser java postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

# ruff, and the import-linter contracts in pyproject.toml (layers import downward only).
lint: $(STAMP)
	$(BIN)/ruff check kam_analysis tests benchmarks notebooks tools
	$(BIN)/ruff format --check kam_analysis tests benchmarks notebooks tools
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format kam_analysis tests benchmarks notebooks tools
	$(BIN)/ruff check --fix kam_analysis tests benchmarks notebooks tools
