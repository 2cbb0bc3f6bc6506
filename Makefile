# make repro: run the pipeline.  make test: run the tests.  Both set up .venv from the lock first.
PYTHON ?= python3.11
VENV := .venv
export PATH := $(abspath $(VENV)/bin):$(PATH)

.PHONY: venv repro test verify lint format lock clean sweep family report exps sample bench \
	gpu-check

# TensorFlow's CPU build (requirements.lock), or with GPU=1 its GPU build with CUDA
# (requirements-gpu.lock). GPU=1 is the default where nvidia-smi lists a GPU; GPU=0 opts out.
GPU ?= $(if $(shell nvidia-smi -L 2>/dev/null | grep '^GPU '),1,0)
LOCK := $(if $(filter 1,$(GPU)),requirements-gpu.lock,requirements.lock)

venv: $(VENV)/.installed-$(LOCK)

# Rebuilt only when its lock changes; a current .venv makes this a no-op. Switching between the
# CPU and GPU builds starts a new .venv: their TensorFlow packages overwrite each other's files.
$(VENV)/.installed-%: %
	if ls $(VENV)/.installed-* 2> /dev/null | grep -qvx '$@'; then rm -rf $(VENV); fi
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

repro: venv
	dvc repro

test: venv
	python -m pytest

# Is what is committed what dvc.lock says? Code, params and the results kept in git, one line per
# difference, non-zero exit on any.
verify: venv
	python -m scripts.verify

# The pipeline on the bundled 2000/500-image MNIST sample, offline: what CI runs. It runs as the
# experiment "sample" in a temporary folder (dvc exp run --temp), so the workspace stays as it was;
# `make report BASELINE=HEAD REVISION=sample` compares it, `dvc exp apply sample` brings it in.
SAMPLE_PARAMS := -S data.dataset=mnist_sample -S data.train_size=2000 -S data.test_size=500 \
	-S train.epochs=3 -S train.batch_size=32
sample: venv
	dvc exp remove sample 2>/dev/null || true  # the previous one, if any
	dvc exp run --temp --name sample $(SAMPLE_PARAMS)

# The encoding_dim sweep through DVC's queue, e.g. on a subset:
#   make sweep SWEEP_ARGS="--dims 4,16,36 -S data.train_size=2000 -S train.epochs=2"
sweep: venv
	python -m scripts.sweep $(SWEEP_ARGS)

# The tutorial's family (dense, deep, conv, sparse, denoising, vae), one DVC experiment each,
# through the queue: reports/family/. E.g. make family FAMILY_ARGS="--dataset fashion_mnist"
family: venv
	python -m scripts.family $(FAMILY_ARGS)

# reports/report.md: REVISION (the workspace) against BASELINE (main), in numbers and pictures.
BASELINE ?= main
REVISION ?= workspace
report: venv
	python -m scripts.report --baseline $(BASELINE) --revision $(REVISION)

# The pipeline timed against the tutorial's script (several minutes; data from DATA_MIRROR),
# e.g. make bench BENCH_ARGS="--runs 5 --quiet-tutorial"
bench: venv
	python -m benchmarks.bench $(BENCH_ARGS)

# Experiments with their params and metrics, without the columns of file hashes.
exps: venv
	dvc exp show --drop 'stages/.*|data/.*|models/.*|reports/.*|data.mirrors.*|Created'

lint: venv
	ruff check .
	ruff format --check .

format: venv
	ruff check --fix .
	ruff format .

# What TensorFlow sees and how fast the pipeline trains there: two epochs on the bundled sample
# and on the full MNIST if DATA_MIRROR or data/raw has it (README, "Scaling out").
gpu-check: venv
	python -m scripts.gpu_check

# Re-pin every dependency from pyproject.toml (needs the network): both builds, each pinned whole.
PIP_COMPILE := pip-compile --quiet --extra dev --strip-extras --no-emit-index-url \
	--no-emit-find-links
lock: venv
	python -m pip install --quiet pip-tools
	$(PIP_COMPILE) --extra cpu --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra gpu --output-file requirements-gpu.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
