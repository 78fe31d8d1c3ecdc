# EdgeScribe — every entry point a developer or CI needs.
#   make demo   set up .venv (CPU torch for the learning loop's training job) and run the whole product locally
#   make test   set up .venv with every extra and run lint, types and the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_EXTRAS := functions,train,triton,local
ALL_EXTRAS := functions,train,triton,infra,local,peer,dev

.PHONY: demo test lint typecheck unit bench bench-model bench-serving bench-fleet train export clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-deps: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e ".[$(DEMO_EXTRAS)]"
	touch $@

$(VENV)/.all-deps: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e ".[$(ALL_EXTRAS)]"
	touch $@ $(VENV)/.demo-deps

demo: $(VENV)/.demo-deps
	$(BIN)/edgescribe demo

test: $(VENV)/.all-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy edgescribe functions edge infra models
	$(BIN)/pytest -q

lint: $(VENV)/.all-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.all-deps
	$(BIN)/mypy edgescribe functions edge infra models

bench: bench-model bench-serving

bench-model: $(VENV)/.all-deps
	$(BIN)/edgescribe bench model

bench-serving: $(VENV)/.all-deps
	$(BIN)/edgescribe bench serving

bench-fleet: $(VENV)/.all-deps
	$(BIN)/edgescribe bench fleet

# The model pipeline (needs ../shared/data/speech and Debian's espeak-ng + flite; see docs/model-pipeline.md).
train: $(VENV)/.all-deps
	$(BIN)/python -m models.data.synthesize --out data/synth --count 5000 --workers 2 \
		--real-texts ../shared/data/speech/train.jsonl
	$(BIN)/python -m models.training.train --config edge --out runs/edge-v1 --minutes 92 \
		--manifest ../shared/data/speech/train.jsonl --manifest data/synth/manifest.jsonl

export: $(VENV)/.all-deps
	$(BIN)/python -m models.export.onnx_export runs/edge-v1/final.pt --name edgescribe-cloud --version 1
	$(BIN)/python -m models.export.onnx_export runs/edge-v1/final.pt --name edgescribe-edge --version 1 --int8 \
		--calibration-manifest data/synth/manifest.jsonl

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
