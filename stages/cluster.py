"""The cluster of a multi-worker run, read from TF_CONFIG and checked before TensorFlow loads.

TensorFlow's MultiWorkerMirroredStrategy reads the same variable: every worker gets the list of
all workers' addresses and its own place in it, e.g. for the second of two machines

    TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
                "task": {"type": "worker", "index": 1}}'

Cluster launchers set it (Kubernetes' training operators, tf.distribute's Slurm resolver), or
the user does. The chief, a "chief" task or else worker 0, writes the model and the reports.
"""

import json
import os
from dataclasses import dataclass

from stages.cli import StageError

VARIABLE = "TF_CONFIG"
TASK_TYPES = ("chief", "worker")  # the tasks of MultiWorkerMirroredStrategy
EXAMPLE = (
    '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
)


@dataclass(frozen=True)
class Cluster:
    tasks: dict[str, list[str]]  # task type -> addresses
    task_type: str
    task_index: int

    @property
    def workers(self) -> int:
        return sum(len(addresses) for addresses in self.tasks.values())

    @property
    def is_chief(self) -> bool:
        """TensorFlow's rule: the chief task if the cluster has one, else worker 0."""
        if "chief" in self.tasks:
            return self.task_type == "chief"
        return self.task_index == 0


SINGLE = Cluster(tasks={"worker": ["localhost"]}, task_type="worker", task_index=0)


def from_environment(strategy: str) -> Cluster:
    """The cluster of train.strategy: TF_CONFIG's for multi_worker, else this one process."""
    if strategy != "multi_worker":
        return SINGLE
    text = os.environ.get(VARIABLE, "")
    if not text.strip():
        raise fail("is not set", f"train.strategy multi_worker needs it, e.g. {EXAMPLE}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise fail(f"is not JSON ({error.msg} at character {error.pos})", EXAMPLE) from None
    if not isinstance(config, dict):
        raise fail("is not a JSON object", EXAMPLE)
    tasks, task = config.get("cluster"), config.get("task")
    if (
        not isinstance(tasks, dict)
        or not tasks
        or not set(tasks) <= set(TASK_TYPES)
        or not all(
            isinstance(addresses, list)
            and addresses
            and all(isinstance(address, str) and address for address in addresses)
            for addresses in tasks.values()
        )
    ):
        raise fail(
            f"has cluster {json.dumps(tasks)}",
            f'"cluster": a mapping of {" and ".join(TASK_TYPES)} to lists of "host:port"',
        )
    if not isinstance(task, dict):
        raise fail(f"has task {json.dumps(task)}", '"task": {"type": ..., "index": ...}')
    task_type, index = task.get("type"), task.get("index")
    if task_type not in tasks:
        raise fail(f"has task type {json.dumps(task_type)}", " or ".join(map(json.dumps, tasks)))
    count = len(tasks[task_type])
    if type(index) is not int or not 0 <= index < count:
        raise fail(
            f"has task index {json.dumps(index)}",
            f"an integer from 0 to {count - 1}, this task's place in cluster.{task_type}",
        )
    return Cluster(tasks=tasks, task_type=task_type, task_index=index)


def fail(problem: str, allowed: str) -> StageError:
    return StageError(f"{VARIABLE} {problem}; allowed: {allowed}")
