# quantsam — `make help` lists the targets. Hydra overrides: `make train optimizer=gsam seed=3 ARGS="trainer.max_epochs=5"`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# CPU build by default (on disk here); GPU users: make install TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
TORCH  ?= torch==2.13.0
EXTRAS ?= dev,joblib
STAMP  := $(VENV)/.installed
RUN    ?=
SWEEP  ?=

# Known Hydra groups/keys given as make variables become overrides: `make train optimizer=gsam` -> optimizer=gsam
HYDRA_KEYS := optimizer model data universe trainer portfolio experiment launcher seed
OVERRIDES = $(strip $(foreach k,$(HYDRA_KEYS),$(if $(value $(k)),$(k)=$(value $(k)))) $(ARGS))

.PHONY: help install demo data train sweep study pipeline factor-test backtest report test test-slow bench lint mlflow-ui clean

help: ## list the targets
	@echo "usage: make <target> [optimizer=gsam seed=1 experiment=demo ... ARGS='key=value ...']"
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install quantsam (TORCH=... to choose the torch build)

demo: $(STAMP) ## install, then run the main job on the embedded synthetic market (experiment=demo)
	$(PY) -m quantsam train experiment=demo $(OVERRIDES)

data: $(STAMP) ## generate/cache the market data (data=synthetic by default)
	$(PY) -m quantsam data $(OVERRIDES)

train: $(STAMP) ## train the daily + weekly GRUs (e.g. make train optimizer=gsam)
	$(PY) -m quantsam train $(OVERRIDES)

sweep: $(STAMP) ## Hydra multirun over the seven optimizers (experiment=optimizer_sweep; launcher=joblib to parallelise)
	$(PY) -m quantsam train --multirun experiment=optimizer_sweep $(OVERRIDES)

pipeline: $(STAMP) ## data -> train -> signal -> factor test -> CSI300/500/1000 backtests (finished stages reused)
	$(PY) -m quantsam pipeline $(OVERRIDES)

backstudy: $(STAMP) ## the study: pipeline for the seven optimizers (experiment=study), then the comparison report
	$(PY) -m quantsam pipeline --multirun experiment=study $(OVERRIDES)

report: $(STAMP) ## rebuild a study's comparison report: SWEEP=<multirun dir>
	$(PY) -m quantsam report $(if $(SWEEP),report.sweep_dir=$(SWEEP)) $(OVERRIDES)

test: $(STAMP) ## index-enhanced backtest: universe=csi300|csi500|csi1000 (default: all three) [RUN=...]
	$(PY) -m quantsam backtest $(if $(RUN),backtest.input=$(RUN)) $(OVERRIDES)

factor-study: $(STAMP) ## the study: pipeline for the seven optimizers (experiment=study), then the comparison report
	$(PY) -m quantsam pipeline --multirun experiment=study $(OVERRIDES)

report: $(STAMP) ## rebuild a study's comparison report: SWEEP=<multirun dir>
	$(PY) -m quantsam report $(if $(SWEEP),report.sweep_dir=$(SWEEP)) $(OVERRIDES)

test: $(STAMP) ## factor test of a signal: RUN=<training work dir | signal.parquet | MLflow run id>
	$(PY) -m quantsam factor_test $(if $(RUN),factor_test.input=$(RUN)) $(OVERRIDES)

study: $(STAMP) ## the study: pipeline for the seven optimizers (experiment=study), then the comparison report
	$(PY) -m quantsam pipeline --multirun experiment=study $(OVERRIDES)

report: $(STAMP) ## rebuild a study's comparison report: SWEEP=<multirun dir>
	$(PY) -m quantsam report $(if $(SWEEP),report.sweep_dir=$(SWEEP)) $(OVERRIDES)

test: $(STAMP) ## install, then run the test suite (fast tests; `make test-slow` for the slow ones)
	$(PY) -m pytest -q

test-slow: $(STAMP) ## run the slow tests too
	$(PY) -m pytest -q -m "slow or not slow"

bench: $(STAMP) ## run the benchmarks in scripts/bench (prints ratios measured in one run)
	@for f in scripts/bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

lint: $(STAMP) ## ruff
	$(BIN)/ruff check src tests scripts notebooks

mlflow-ui: $(STAMP) ## open the MLflow UI on the project's SQLite store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns.db --default-artifact-root $(CURDIR)/mlartifacts --port 5000

clean: ## remove outputs (keeps data/ and mlruns.db)
	rm -rf outputs multirun .pytest_cache .ruff_cache
