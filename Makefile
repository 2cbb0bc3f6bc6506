# make repro: run the pipeline.  make test: run the tests.  Both set up .venv from the locks first.
PYTHON ?= python3.11
VENV := .venv
export PATH := $(abspath $(VENV)/bin):$(PATH)

.PHONY: venv dev-venv repro test test-fast verify lint format lock clean sweep family report exps \
	sample bench gpu-check score plots plots-template anomaly

# TensorFlow's CPU build (requirements.lock), or with GPU=1 its GPU build with CUDA
# (requirements-gpu.lock). GPU=1 is the default where nvidia-smi lists a GPU; GPU=0 opts out.
GPU ?= $(if $(shell nvidia-smi -L 2>/dev/null | grep '^GPU '),1,0)
LOCK := $(if $(filter 1,$(GPU)),requirements-gpu.lock,requirements.lock)
# The tests' and the linter's tools, pinned to agree with both builds.
DEV_LOCK := requirements-dev.lock

# venv: what the pipeline needs, no test or lint tools. dev-venv: those tools too.
venv: $(VENV)/.installed-$(LOCK)
dev-venv: $(VENV)/.installed-$(LOCK)+dev

# uv installs each exactly as pinned (scripts/install.sh), only when a lock changed: a current
# .venv makes both no-ops. Switching between the CPU and GPU builds starts a new .venv: their
# TensorFlow packages overwrite each other's files.
$(VENV)/.installed-%: %
	if ls $(VENV)/.installed-* 2> /dev/null | grep -qvx -e '$@' -e '$@+dev'; then rm -rf $(VENV); fi
	PYTHON=$(PYTHON) scripts/install.sh $<
	touch $@

$(VENV)/.installed-$(LOCK)+dev: $(VENV)/.installed-$(LOCK) $(DEV_LOCK)
	PYTHON=$(PYTHON) scripts/install.sh $(LOCK) $(DEV_LOCK)
	touch $@

repro: venv
	dvc repro

# The tests run in TEST_WORKERS processes (pytest-xdist), each taking whole test files, so that a
# file's shared runs are made once; TEST_WORKERS=0 runs them in this one process. One more worker
# than a 2-core machine's cores: many tests wait (on a server, a queue, Slurm, a stage's start)
# while another computes.
TEST_WORKERS ?= 3
PYTEST := python -m pytest -n $(TEST_WORKERS) --dist loadfile
# The whole suite gives out its longest files first (tests/conftest.py, LONGEST_FIRST).
test: dev-venv
	$(PYTEST) --no-loadscope-reorder $(PYTEST_ARGS)

# The contributor's loop: every stage and every kind of bad input, within 90 s (pytest -m "not
# slow"); where several inputs fail the same check, it takes one of them, the whole suite all.
test-fast: dev-venv
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

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

# Where the sweep's and the family's experiments run: EXECUTOR=queue, DVC's queue on this machine,
# or EXECUTOR=slurm, one task of a Slurm job array each, from the git and DVC remotes, with
# SBATCH, sbatch's options for every task (docs/scaling.md, "On a Slurm cluster").
EXECUTOR ?= queue
SBATCH ?=
EXECUTOR_ARGS = --executor $(EXECUTOR) --sbatch="$(SBATCH)"

# The encoding_dim sweep, one DVC experiment per value, e.g. on a subset, or on Slurm's GPUs:
#   make sweep SWEEP_ARGS="--dims 4,16,36 -S data.train_size=2000 -S train.epochs=2"
#   make sweep EXECUTOR=slurm SBATCH="--partition=gpu --gres=gpu:1 --time=1:00:00"
sweep: venv
	python -m scripts.sweep $(EXECUTOR_ARGS) $(SWEEP_ARGS)

# The tutorial's family (dense, deep, conv, sparse, denoising, vae), one DVC experiment each:
# reports/family/. E.g. make family FAMILY_ARGS="--dataset fashion_mnist"
family: venv
	python -m scripts.family $(EXECUTOR_ARGS) $(FAMILY_ARGS)

# The one-class protocol (docs/evaluation.md): for each class, train on it alone and score the
# whole test set by reconstruction error; AUROC per kind and class beside the published rows, in
# reports/anomaly/DATASET/. E.g. make anomaly ANOMALY_ARGS="--dataset fashion_mnist --kinds dense"
anomaly: venv
	python -m scripts.anomaly $(EXECUTOR_ARGS) $(ANOMALY_ARGS)

# reports/report.md: REVISION (the workspace) against BASELINE (main), in numbers and pictures.
BASELINE ?= main
REVISION ?= workspace
report: venv
	python -m scripts.report --baseline $(BASELINE) --revision $(REVISION)

# Score your own images: each one's reconstruction error and whether it reaches the evaluation's
# anomaly threshold, in scores.csv (docs/sharing.md), e.g.
#   make score IMAGES="digits/ more.npy" SCORE_ARGS="--output digits.csv"
score: venv
	python -m scripts.score $(IMAGES) $(SCORE_ARGS)

# dvc_plots/index.html, the curves and figures of `dvc plots diff` for PLOTS_ARGS (revisions, e.g.
# PLOTS_ARGS=main; none: the workspace against HEAD). Filled into plots/template.html, which holds
# Vega: DVC's own page loads it from a CDN and draws no curves offline. .dvc/config names the same
# template, so a plain `dvc plots show` or `dvc plots diff` draws offline too.
plots: venv
	dvc plots diff --html-template plots/template.html $(PLOTS_ARGS)

# The Vega builds scripts/plots_template.py pins, from the npm registry, inlined again into
# plots/template.html (needs npm and the network); the rest of the page is edited by hand.
plots-template: venv
	python -m scripts.plots_template

# The pipeline timed against the tutorial's script (several minutes; data from DATA_MIRROR),
# e.g. make bench BENCH_ARGS="--runs 5 --quiet-tutorial"
bench: venv
	python -m benchmarks.bench $(BENCH_ARGS)

# Experiments with their params and metrics, without the columns of file hashes.
exps: venv
	dvc exp show --drop 'stages/.*|data/.*|models/.*|reports/.*|data.mirrors.*|Created'

# The README is a front page: details live in docs/.
README_LINES = 120

lint: dev-venv
	ruff check .
	ruff format --check .
	@lines=$$(wc -l < README.md); test $$lines -le $(README_LINES) || \
		{ echo "error: README.md has $$lines lines; allowed: at most $(README_LINES) (move details to docs/)"; exit 1; }

format: dev-venv
	ruff check --fix .
	ruff format .

# What TensorFlow sees and how fast the pipeline trains there: two epochs on the bundled sample
# and on the full MNIST if DATA_MIRROR or data/raw has it (README, "Scaling out").
gpu-check: venv
	python -m scripts.gpu_check

# Re-pin every dependency from pyproject.toml with uv (needs the network), for Linux x86-64:
# each build whole, the GPU build and the dev tools at the CPU build's versions of what they
# share. Pins already in a lock stay unless pyproject.toml rules them out.
COMPILE = $(UV) pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--generate-hashes
UV = $(or $(shell command -v uv 2> /dev/null),$(CURDIR)/.uv/bin/uv)
lock: venv
	$(COMPILE) pyproject.toml --extra cpu --output-file requirements.lock
	$(COMPILE) pyproject.toml --extra gpu --constraints requirements.lock \
		--output-file requirements-gpu.lock
	$(COMPILE) --group pyproject.toml:dev --constraints requirements.lock --output-file $(DEV_LOCK)

clean:
	rm -rf $(VENV) .uv .pytest_cache .ruff_cache .hypothesis
