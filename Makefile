# Two entry points on a fresh machine:  `make run` (the lifecycle on the embedded default) and `make test`.
# Both create .venv with the pinned versions first (torch is the CPU build on this machine's disk;
# DeepSpeed builds against it, hence --no-build-isolation).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test clean-outputs

$(BIN)/cookbook: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-build-isolation deepspeed==0.19.8
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

install: $(BIN)/cookbook

run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/cookbook run

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

clean-outputs:
	rm -rf data models checkpoints metrics plots reports mlflow.db mlruns
