# quantsam — `make help` lists the targets. Config groups given on the make command line become Hydra overrides:
#   make train optimizer=gsam seed=3 ARGS="trainer.max_epochs=5"   ->   python -m quantsam train optimizer=gsam seed=3 ...
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
PORT   ?= 5000
WORKERS ?= 1
HOST   ?= 127.0.0.1
RUN    ?=
SWEEP  ?=

# Every config group (and seed) becomes an override only when given on the make command line ($(origin) is
# "command line"): a stray environment variable named `data` or `model` never leaks into a run.
# The groups are conf/'s folders (one per group; tune_space is given by `make tune` itself), so a new group needs no
# edit here.
GROUPS := $(filter-out tune_space experiment,$(patsubst conf/%/,%,$(sort $(wildcard conf/*/)))) experiment seed
given = $(filter command line,$(origin $(1)))
OVERRIDES = $(strip $(foreach k,$(GROUPS),$(if $(call given,$(k)),$(k)=$(value $(k)))) $(ARGS))
# the same without `experiment` (targets that choose their own experiment unless one is given)
OVERRIDES_NO_EXP = $(strip $(foreach k,$(filter-out experiment,$(GROUPS)),$(if $(call given,$(k)),$(k)=$(value $(k)))) $(ARGS))
experiment_or = experiment=$(if $(call given,experiment),$(value experiment),$(1))
# `make demo optimizer=asam` compares AdamW with ASAM (GSAM by default)
DEMO_VS = $(if $(call given,optimizer),$(value optimizer),gsam)

.PHONY: help install demo data train sweep study real-study tune pipeline factor-test backtest report test test-unit test-slow bench lint \
        mlflow-ui mlflow-server clean

help: ## list the targets
	@echo "usage: make <target> [optimizer=gsam seed=1 experiment=demo ... ARGS='key=value ...']"
	@if [ -t 1 ]; then c='\033[36m'; r='\033[0m'; else c=''; r=''; fi; \
	grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -v c="$$c" -v r="$$r" 'BEGIN {FS = ":.*?## "}; {printf "  %s%-12s%s %s\n", c, $$1, r, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install quantsam (TORCH=... to choose the torch build)

demo: $(STAMP) ## the study in miniature: AdamW vs GSAM (optimizer=... picks another) end to end, then the report
	$(PY) -m quantsam $(strip pipeline --multirun $(call experiment_or,demo) optimizer=adamw,$(DEMO_VS) $(filter-out optimizer=%,$(OVERRIDES_NO_EXP)))

data: $(STAMP) ## generate (or ingest) and cache the market data (data=synthetic by default)
	$(PY) -m quantsam $(strip data $(OVERRIDES))

train: $(STAMP) ## train the daily + weekly GRUs and write the signal (e.g. make train optimizer=gsam)
	$(PY) -m quantsam $(strip train $(OVERRIDES))

sweep: $(STAMP) ## train the seven optimizers as child runs of one MLflow parent (launcher=joblib to parallelise)
	$(PY) -m quantsam $(strip train --multirun $(call experiment_or,optimizer_sweep) $(OVERRIDES_NO_EXP))

pipeline: $(STAMP) ## data -> train -> signal -> factor test -> CSI300/500/1000 backtests (finished stages reused)
	$(PY) -m quantsam $(strip pipeline $(OVERRIDES))

study: $(STAMP) ## the study: the pipeline for the seven optimizers (experiment=study), then the comparison report
	$(PY) -m quantsam $(strip pipeline --multirun $(call experiment_or,study) $(OVERRIDES_NO_EXP))

real-study: $(STAMP) ## the seven arms on real data (experiment=real_arms), arm by arm; docs/results/real_arms/ after each (log: logs/real_study.log)
	@mkdir -p logs
	set -o pipefail; nice -n 19 $(PY) $(strip scripts/real_study.py $(if $(call given,experiment),--experiment $(value experiment)) $(ARGS)) 2>&1 | tee -a logs/real_study.log

tune: $(STAMP) ## tune a variant's neighbourhood with Optuna on the demo setup: make tune optimizer=gsam -> optimizer=gsam_tuned
	$(PY) -m quantsam $(strip tune $(OVERRIDES))

factor-test: $(STAMP) ## factor test of a signal: RUN=<training work dir | signal.parquet | MLflow run id>
	$(PY) -m quantsam $(strip factor_test $(if $(RUN),factor_test.input=$(RUN)) $(OVERRIDES))

backtest: $(STAMP) ## index-enhanced backtests: universe=csi300|csi500|csi1000 (default: all three) [RUN=...]
	$(PY) -m quantsam $(strip backtest $(if $(RUN),backtest.input=$(RUN)) $(OVERRIDES))

report: $(STAMP) ## rebuild a study's comparison report: SWEEP=<multirun dir>
	$(PY) -m quantsam $(strip report $(if $(SWEEP),report.sweep_dir=$(SWEEP)) $(OVERRIDES))

test: $(STAMP) ## install, then run the test suite (fast tests; `make test-slow` for the slow ones)
	$(PY) -m pytest -q

test-unit: $(STAMP) ## the unit tests only: the fast loop while editing (no training beyond toy fits)
	$(PY) -m pytest -q tests/unit

test-slow: $(STAMP) ## run every test, the slow ones included
	$(PY) -m pytest -q -m "slow or not slow"

# benchmarks that measure the user's own run or data: run by hand with their arguments (each docstring shows how)
BENCH_NEEDS_INPUT := signal_treatment risk_bias qlib_gru real_backtest

bench: $(STAMP) ## run the benchmarks in scripts/bench (each prints ratios measured in one run)
	@for f in scripts/bench/*.py; do echo "== $$f"; \
	  case " $(BENCH_NEEDS_INPUT) " in *" $$(basename $$f .py) "*) echo "   needs your input (a run, qlib data): see its docstring"; continue;; esac; \
	  $(PY) $$f || exit 1; done

lint: $(STAMP) ## ruff
	$(BIN)/ruff check src tests scripts notebooks

mlflow-ui: $(STAMP) ## the MLflow UI on the project's SQLite store, one worker, no GenAI job runners (PORT=...)
	@$(PY) -m quantsam.tracking.ui sqlite:///$(CURDIR)/mlruns.db $(PORT)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns.db --default-artifact-root $(CURDIR)/mlartifacts --host 127.0.0.1 --port $(PORT) --workers $(WORKERS)

mlflow-server: $(STAMP) ## an MLflow tracking server (SQLite store, artifacts proxied) for tracking=server: http://127.0.0.1:5000 (PORT=..., HOST=...)
	$(BIN)/mlflow server --backend-store-uri sqlite:///$(CURDIR)/mlruns.db --artifacts-destination $(CURDIR)/mlartifacts --serve-artifacts --host $(HOST) --port $(PORT) --workers $(WORKERS)

clean: ## remove outputs and sweeps (keeps data/ and mlruns.db)
	rm -rf outputs multirun .pytest_cache .ruff_cache
