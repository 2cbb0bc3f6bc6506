"""The workers of a Slurm job step, for scripts/slurm_train.sh: prints the shell lines that give
this task its TF_CONFIG (and, on GPU nodes, its share of the GPUs), as TensorFlow's
SlurmClusterResolver lays the step's tasks out from what srun sets:

    eval "$(python -m scripts.slurm_workers)"

A job's workers listen on a block of ports of its own on each node, chosen by its job id, so that
two jobs sharing a node do not collide: PORTS_FROM + (id mod PORT_BLOCKS) * TASKS_PER_NODE, one
port per task from there.
"""

import json
import os
import shlex

from stages.common.runner import StageError, run

PORTS_FROM = 20000
PORT_BLOCKS = 2500
TASKS_PER_NODE = 16
STEP = "the Slurm job step"


def main() -> None:
    # First the stages' own way of loading TensorFlow, which quiets its start-up notices.
    from stages.backend import tf

    # isort: split
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import get_num_gpus

    try:
        gpus = get_num_gpus()  # CUDA_VISIBLE_DEVICES, else nvidia-smi's list
    except (RuntimeError, OSError):  # no nvidia-smi, or it failed: no GPU
        gpus = 0
    try:
        port_base = (
            PORTS_FROM + int(os.environ.get("SLURM_JOB_ID", "")) % PORT_BLOCKS * TASKS_PER_NODE
        )
        # Without GPUs the resolver still pairs each task with a share: one each, never set.
        shares = {} if gpus else {"gpus_per_node": 2**31, "gpus_per_task": 1, "auto_set_gpu": False}
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=port_base, **shares
        )
        tasks = resolver.cluster_spec().as_dict()
    except (ValueError, RuntimeError) as error:
        raise StageError(
            f"{STEP}: SlurmClusterResolver cannot read it ({error}); allowed: what srun sets"
        ) from None
    hosts = [address.rpartition(":")[0] for address in tasks["worker"]]
    if max(map(hosts.count, hosts)) > TASKS_PER_NODE:
        raise StageError(
            f"{STEP} has {max(map(hosts.count, hosts))} tasks on a node; allowed: at most "
            f"{TASKS_PER_NODE} (one per GPU)"
        )
    config = {"cluster": tasks, "task": {"type": resolver.task_type, "index": resolver.task_id}}
    print(f"export TF_CONFIG={shlex.quote(json.dumps(config))}")
    if gpus:  # the resolver set this task's share
        print(f"export CUDA_VISIBLE_DEVICES={shlex.quote(os.environ['CUDA_VISIBLE_DEVICES'])}")


if __name__ == "__main__":
    run(main)
