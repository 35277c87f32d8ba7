# Lakehouse ingestion pipeline. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= config/pipeline.yaml
SOURCE ?= shop

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

setup: $(VENV)/.installed jars/.resolved ## install the Python venv (.venv) and the JVM jars (jars/), idempotently

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $@

jars/.resolved: jars/pom.xml jars/settings.xml
	@command -v mvn >/dev/null || { echo "mvn (Maven) not found: apt-get install maven"; exit 1; }
	rm -f jars/*.jar
	mvn -q -B -s jars/settings.xml -f jars/pom.xml dependency:copy-dependencies -DoutputDirectory=. -DincludeScope=runtime
	@ls jars/*.jar >/dev/null
	@touch $@

dist: setup ## build the wheel (dist/lakehouse_ingest-*.whl) and dist/spark-submit.conf (docs/deploy.md)
	rm -rf dist build
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist .
	rm -rf build *.egg-info
	$(PY) scripts/spark_submit_conf.py > dist/spark-submit.conf
	@ls dist

up: setup ## start the local services on 127.0.0.1: PostgreSQL, Kafka, Kafka Connect + Debezium, Azurite (Blob)
	bash scripts/stack.sh up

down: ## stop the local services
	bash scripts/stack.sh down

status: ## show which local services run
	bash scripts/stack.sh status

sample-db: setup up ## (re)create the sample `shop` database with a few hundred thousand rows
	$(PY) scripts/sample_db.py --config $(CONFIG) --source $(SOURCE)

demo: setup up sample-db ## run the pipeline end to end on local defaults: sample database -> bulk load -> CDC stream of live changes -> status -> validation
	$(PY) jobs/bulk_load.py --config $(CONFIG) --source $(SOURCE) --fresh-start --yes
	$(PY) scripts/demo_cdc.py --config $(CONFIG) --source $(SOURCE)
	$(PY) jobs/status.py --config $(CONFIG) --source $(SOURCE) --check
	$(PY) jobs/validate.py --config $(CONFIG) --source $(SOURCE)

test: setup up ## run the whole test suite (unit + integration against the local services)
	$(PY) -m pytest tests --durations=30

test-unit: setup ## fast unit tests only (no JVM, no database)
	$(PY) -m pytest tests/unit

lint: setup ## ruff check
	$(VENV)/bin/ruff check lib jobs tests scripts

bench: setup up ## benchmarks: bulk load vs COPY and plain Spark JDBC; many small tables vs dlt; the CDC stream against its latency and throughput targets, history tables against the mirror on the same backlog; validate --repair against a full reload; a table created while the stream runs (reports/bench_*.json)
	$(PY) scripts/bench_bulk.py
	$(PY) scripts/bench_many_tables.py
	$(PY) scripts/bench_cdc.py --history $(BENCH_CDC_ARGS)
	$(PY) scripts/bench_repair.py
	$(PY) scripts/bench_auto_add.py

clean: ## remove the local lake, checkpoints and reports (keeps .venv, jars and services)
	rm -rf lake reports checkpoints/*/ .pytest_cache

.PHONY: help setup dist up down status sample-db demo test test-unit lint bench clean
