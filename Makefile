# kam-analysis — two commands on a fresh machine:
#   make reports   virtualenv + pinned install + demo data + the report job
#   make test      the same environment + the whole test suite
# Both are idempotent: a second run reuses .venv and the demo data.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kam-installed
KERNEL := kam-analysis
DEMO   := data/demo
DEMO_ACCOUNTS ?= 2000
PYTEST_ARGS ?=

.PHONY: reports test lab lint format env demo clean-reports

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
	  || { echo "kam-analysis needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (kam-analysis)" >/dev/null
	@touch $(STAMP)

$(DEMO)/accounts.parquet: | $(STAMP)
	$(BIN)/kam synth --out $(DEMO) --accounts $(DEMO_ACCOUNTS) --seed 0

demo: $(DEMO)/accounts.parquet

reports: $(STAMP) $(DEMO)/accounts.parquet
	$(BIN)/kam validate $(DEMO)
	$(BIN)/kam features $(DEMO) --skip-validation

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

lint: $(STAMP)
	$(BIN)/ruff check kam_analysis tests benchmarks
	$(BIN)/ruff format --check kam_analysis tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format kam_analysis tests benchmarks
	$(BIN)/ruff check --fix kam_analysis tests benchmarks
