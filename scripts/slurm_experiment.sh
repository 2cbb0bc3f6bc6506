# The body of each task of a sweep's or family's Slurm job array: scripts/slurm.py writes the job
# script, setting $remote (the git remote), $commit, $checkpoints (a shared folder), $name and
# $settings (-S KEY=VALUE ...) for the task before this. The task clones the remote at the commit
# into a folder of its own, runs its experiment there, pulling data from the DVC remote (never the
# internet), and pushes it back. Its checkpoints outlive the clone: requeued, it resumes.
set -euo pipefail
export TRAIN_CHECKPOINTS="${TRAIN_CHECKPOINTS:-$checkpoints}"
clone=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$clone"' EXIT
echo "experiment $name: task $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID on $(hostname), $commit in $clone"
git clone --quiet --no-checkout "$remote" "$clone"
cd "$clone"
git checkout --quiet --detach "$commit"
dvc exp run --pull --allow-missing --name "$name" "${settings[@]}"
dvc exp push origin "$name"
