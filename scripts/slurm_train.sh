#!/bin/bash
# Train on several nodes of a Slurm cluster, one worker per node, with train.strategy
# multi_worker: each task gets its TF_CONFIG from Slurm (TensorFlow's SlurmClusterResolver,
# scripts/slurm_workers.py), with none to write. From the repository, on a filesystem that every
# node sees:
#
#   sbatch --nodes=2 scripts/slurm_train.sh
#   sbatch --nodes=2 --gres=gpu:4 --ntasks-per-node=4 --time=2:00:00 scripts/slurm_train.sh
#
# The data is prepared once, here; then srun starts one task per node (or --ntasks-per-node,
# e.g. one per GPU): task 0 runs the pipeline (dvc repro) and writes the results, the others
# train in step with it and write nothing. Each picks its ports from the job's id, so two jobs
# sharing a node do not collide (docs/scaling.md, "On a Slurm cluster").
#SBATCH --job-name=autoencoder-train
#SBATCH --ntasks-per-node=1
set -euo pipefail
dvc repro prepare
strategy=$(python -c 'from stages.common import params; print(params.load().train.strategy)')
if [ "$strategy" != multi_worker ]; then
  echo "error: train.strategy is $strategy in params.yaml; allowed: multi_worker, for the" \
    "workers of this job to train together" >&2
  exit 2
fi
srun bash -c 'workers=$(python -m scripts.slurm_workers) || exit 2
eval "$workers"
if [ "$SLURM_PROCID" = 0 ]; then exec dvc repro; else exec python -m stages.train; fi'
