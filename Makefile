# Developer entry points.  Each target creates .venv (python3 -m venv) when missing and
# installs the project into it once; stamp files under .venv/ skip reinstalling until
# pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
DAGSTER_HOME := $(CURDIR)/.dagster_home
DAGSTER_YAML := $(DAGSTER_HOME)/dagster.yaml

.PHONY: run test dev check eval eval-eligibility mirror bench-crawl clean

## run: ingest the bundled sample (raw/sample) into warehouse/trials.duckdb via Dagster
# DAGSTER_HOME points at the instance `make dev` uses, so these runs show up in the UI.
run: $(STAMP_RUN) $(DAGSTER_YAML)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/trials run

## test: the whole test suite
test: $(STAMP_DEV)
	$(BIN)/python -m pytest -n auto

## dev: the Dagster UI (dg dev) on http://127.0.0.1:3000; reads ./dagster.yaml and .env
dev: $(STAMP_DEV)
	$(BIN)/dg dev

## check: validate the Dagster definitions
check: $(STAMP_DEV)
	$(BIN)/dg check defs

## eval: extraction quality report
eval: $(STAMP_DEV)
	$(BIN)/python -m pipeline.devtools.eval

## eval-eligibility: constraint/flag precision and recall on the hand-labelled criteria, then the
## cost of constraint extraction relative to parsing a page
eval-eligibility: $(STAMP_DEV)
	$(BIN)/python -m pipeline.devtools.eval_eligibility
	$(BIN)/python -m pipeline.devtools.bench_profiles

## mirror: a local test mirror of both sites' pages (Veeva style) on http://127.0.0.1:8765
mirror: $(STAMP_RUN)
	$(BIN)/python -m pipeline.devtools.mirror --style $(or $(STYLE),veeva) --port $(or $(PORT),8765)

## bench-crawl: crawl speed against the local mirror, politeness off
bench-crawl: $(STAMP_RUN)
	$(BIN)/python -m pipeline.devtools.bench_crawl --style clinconnect
	$(BIN)/python -m pipeline.devtools.bench_crawl --style veeva

## clean: remove the Dagster instance and test caches (keeps .venv and the warehouse)
clean:
	rm -rf $(DAGSTER_HOME) .pytest_cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(STAMP_DEV): $(STAMP_RUN)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(DAGSTER_YAML): dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

.PHONY: eval-dedup bench-dedup bench-relink bench bench-quick

## bench: parse speed vs bare lxml, 1 vs 2 workers, rebuilds at 10k/50k/200k pages, incremental
## 1,000 pages, load rates -- one table (full: ~40 minutes on 2 cores, ~3 GB of corpus in a temp dir;
## BENCH_SCALE=medium: 2k-10k pages, ~5 min; small: ~1-2 min)
bench: $(STAMP_RUN)
	$(BIN)/python -m pipeline.devtools.bench --scale $(or $(BENCH_SCALE),full)

## bench-quick: the same table at small scale (~1-2 minutes on a quiet machine)
bench-quick: $(STAMP_RUN)
	$(BIN)/python -m pipeline.devtools.bench --scale small

## eval-dedup: deduplication precision/recall on the labelled corpus set (pairs with / without a shared id)
eval-dedup: $(STAMP_DEV)
	$(BIN)/python -m pipeline.devtools.eval_dedup

## bench-dedup: deduplication time and peak memory at 100k, 300k and 1M synthetic records
bench-dedup: $(STAMP_RUN)
	$(BIN)/python -m pipeline.devtools.bench_dedup

## bench-relink: a full build of 200k synthetic parsed pages, then 1,000 new pages linked incrementally
bench-relink: $(STAMP_RUN)
	$(BIN)/python -m pipeline.devtools.bench_relink
