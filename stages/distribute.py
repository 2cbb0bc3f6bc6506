"""The workers of a multi-worker run (train.strategy multi_worker): who they are, how they meet
before each epoch, and the line that names one that is lost (docs/scaling.md).

TF_CONFIG, which MultiWorkerMirroredStrategy reads too, lists every worker's address and this one's
place, e.g. for the second of two machines

    TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
                "task": {"type": "worker", "index": 1}}'

A cluster launcher sets it (Kubernetes' training operators, scripts/slurm_train.sh), or the user
does. It is checked before TensorFlow loads.
"""

import functools
import json
import os
import re
import socket
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from stages.common import runner
from stages.common.params import Params
from stages.common.runner import StageError

if TYPE_CHECKING:
    from stages.backend import tf

TF_CONFIG = "TF_CONFIG"
TASK_TYPES = ("chief", "worker")  # the tasks of MultiWorkerMirroredStrategy
EXAMPLE = (
    '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
)
TIMEOUT_VARIABLE = "TRAIN_WORKER_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 120.0
DEADLINE_EXCEEDED, UNAVAILABLE = 4, 14  # TensorFlow's error codes
PROBE_SECONDS = 1  # how often a meeting looks for the missing workers, and how long each look


@dataclass(frozen=True)
class Cluster:
    tasks: dict[str, list[str]]  # task type -> addresses
    task_type: str
    task_index: int
    # How long a worker waits for its peers before an epoch before it gives up on them.
    timeout: float = field(default=DEFAULT_TIMEOUT_SECONDS, compare=False)

    @property
    def size(self) -> int:
        return sum(len(addresses) for addresses in self.tasks.values())

    @property
    def is_chief(self) -> bool:
        """TensorFlow's rule: the chief task if the cluster has one, else worker 0."""
        if "chief" in self.tasks:
            return self.task_type == "chief"
        return self.task_index == 0

    def everyone(self) -> list[tuple[str, int]]:
        return [
            (kind, index)
            for kind, addresses in self.tasks.items()
            for index in range(len(addresses))
        ]


ONE_PROCESS = Cluster(tasks={"worker": ["localhost"]}, task_type="worker", task_index=0)


def cluster_from_environment(strategy: str) -> Cluster:
    """The cluster of train.strategy: TF_CONFIG's for multi_worker, else this one process."""
    if strategy != "multi_worker":
        return ONE_PROCESS
    timeout = runner.seconds_from_environment(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_SECONDS)
    text = os.environ.get(TF_CONFIG, "")
    if not text.strip():
        needs = "train.strategy multi_worker needs it, e.g."
        raise fail("is not set", f"{needs} {EXAMPLE}; on Slurm, scripts/slurm_train.sh sets it")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise fail(f"is not JSON ({error.msg} at character {error.pos})", EXAMPLE) from None
    if not isinstance(config, dict):
        raise fail("is not a JSON object", EXAMPLE)
    tasks, task = config.get("cluster"), config.get("task")
    if not (
        isinstance(tasks, dict)
        and tasks
        and set(tasks) <= set(TASK_TYPES)
        and all(
            isinstance(addresses, list)
            and addresses
            and all(isinstance(a, str) and a for a in addresses)
            for addresses in tasks.values()
        )
    ):
        allowed = f'"cluster": a mapping of {" and ".join(TASK_TYPES)} to lists of "host:port"'
        raise fail(f"has cluster {json.dumps(tasks)}", allowed)
    if not isinstance(task, dict):
        raise fail(f"has task {json.dumps(task)}", '"task": {"type": ..., "index": ...}')
    task_type, index = task.get("type"), task.get("index")
    if task_type not in tasks:
        raise fail(f"has task type {json.dumps(task_type)}", " or ".join(map(json.dumps, tasks)))
    last = len(tasks[task_type]) - 1
    if type(index) is not int or not 0 <= index <= last:
        allowed = f"an integer from 0 to {last}, this task's place in cluster.{task_type}"
        raise fail(f"has task index {json.dumps(index)}", allowed)
    return Cluster(tasks=tasks, task_type=task_type, task_index=index, timeout=timeout)


def fail(problem: str, allowed: str) -> StageError:
    return StageError(f"{TF_CONFIG} {problem}; allowed: {allowed}")


class Workers:
    """The workers of a multi-worker run, which meet before each epoch, so that one alive but stuck
    outside TensorFlow (its output blocked, a hung file system) is caught: it still sends
    heartbeats, and the others would wait for it in the epoch's first all-reduce forever. (A
    collective's own timeout_seconds would bound that wait, but TensorFlow keeps a thread alive for
    each timed collective until its timeout runs out: thousands within a few epochs.)"""

    def __init__(self, strategy: "tf.distribute.Strategy", cluster: Cluster):
        self.cluster = cluster
        if cluster.size > 1:
            from stages.backend import tf

            # Compiled once, so that its collective's group and instance are resolved once: each
            # later meeting is a plain exchange with the peers, and one whose connection closed
            # fails at once (a new eager collective would first wait for the peer to join it).
            count = functools.partial(strategy.run, lambda: tf.constant(1))
            self._all_reduce = tf.function(
                lambda: strategy.reduce(tf.distribute.ReduceOp.SUM, count(), axis=None)
            )

    def meet(self, place: str, news: str = "") -> None:
        """Wait until every worker reaches `place` (e.g. "epoch 3"), leaving `news` there for the
        others (`news_at`); meanwhile look for the missing ones every PROBE_SECONDS."""
        if self.cluster.size == 1:
            return
        # The key-value store of TensorFlow's coordination service (no public interface).
        from tensorflow.python.eager import context

        me = (self.cluster.task_type, self.cluster.task_index)
        context.context().set_config_key_value(self._key(place, *me), news)
        deadline = time.monotonic() + self.cluster.timeout
        look = functools.partial(self.look_for_missing, place, deadline)
        runner.interruptible(self._all_reduce, watch=look, every=PROBE_SECONDS)

    def news_at(self, place: str) -> list[str]:
        """What every worker left at `place`, once they all met there."""
        from tensorflow.python.eager import context

        wait_ms = int(self.cluster.timeout * 1000)  # they are there: the meeting is over
        return [
            context.context().get_config_key_value(self._key(place, *worker), wait_ms)
            for worker in self.cluster.everyone()
        ]

    def look_for_missing(self, place: str, deadline: float) -> None:
        """Abort the meeting at `place` (TensorFlow then raises an error naming the worker) for one
        not there yet whose port is closed (killed, or its machine restarted), or for one still
        missing at the deadline. A stopped one, which answers nothing, is TensorFlow's coordination
        service's to report: it stopped sending heartbeats."""
        from tensorflow.python.eager import context

        from stages.backend import tf

        absent = []
        for task_type, index in self.cluster.everyone():
            try:
                context.context().get_config_key_value(self._key(place, task_type, index), 1)
            except tf.errors.DeadlineExceededError:
                absent.append(f"/job:{task_type}/replica:0/task:{index}")
        for peer in absent:
            try:
                context.context().check_collective_ops_peer_health(peer, PROBE_SECONDS * 1000)
            except (tf.errors.UnavailableError, tf.errors.FailedPreconditionError) as error:
                # gRPC's last words: "failed to connect to ...: Connection refused"
                reason = error.message.splitlines()[0].rsplit(": ", 1)[-1] or "no answer"
                context.context().abort_collective_ops(UNAVAILABLE, f"{peer} aborted by: {reason}")
                return
            except tf.errors.DeadlineExceededError:  # stopped: the heartbeats tell
                pass
        if absent and time.monotonic() > deadline:
            timeout = f"{TIMEOUT_VARIABLE}={self.cluster.timeout:g} s"
            message = f"no answer at {place} within {timeout} from {', '.join(absent)}"
            context.context().abort_collective_ops(DEADLINE_EXCEEDED, message)

    @staticmethod
    def _key(place: str, task_type: str, index: int) -> str:
        return f"{place}/{task_type}:{index}"

    def check_agree(self, config: Params, images: np.ndarray, test_images: np.ndarray) -> None:
        """Stop with one line unless every worker is to train the same model on the same data:
        their steps would not pair up, and each would wait for the others' forever."""
        mine = fingerprint(config, images, test_images)
        self.meet("data loaded", json.dumps(mine))
        if self.cluster.size > 1 and set(self.news_at("data loaded")) != {json.dumps(mine)}:
            raise StageError(
                f"the workers of {TF_CONFIG} do not train the same thing: this one has "
                f"{mine[0]} training and {mine[1]} test images, batch_size {mine[2]}, {mine[3]} "
                f"epochs; allowed: the same commit, params.yaml and data/prepared/ on every worker"
            )


@contextmanager
def reporting_lost_workers(cluster: Cluster) -> Iterator[None]:
    """Turn TensorFlow's error for a worker that died or stopped answering into one line that
    names it: a multi-worker run cannot go on without it."""
    from stages.backend import tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        if cluster.size == 1:
            raise
        raise LostWorker(lost_worker(str(error), cluster)) from None


class LostWorker(StageError):
    """A multi-worker run lost one of its workers."""


def lost_worker(message: str, cluster: Cluster) -> str:
    """The line for TensorFlow's error `message` about a peer: which worker, and why."""
    me = (cluster.task_type, cluster.task_index)
    peers = [
        (task_type, int(index))
        for task_type, index in re.findall(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)", message)
        if (task_type, int(index)) != me and task_type in cluster.tasks
    ]
    who, address = f"another worker of {TF_CONFIG}", None
    if peers:
        task_type, index = peers[0]
        address = cluster.tasks[task_type][index]
        who = f"{task_type} {index} of {TF_CONFIG} ({address})"
    aborted = re.search(r".*aborted by: (.+)", message)  # the last: TensorFlow nests them
    if "heartbeat" in message and address and refused(address):
        # Killed: TensorFlow's heartbeats sometimes tell before the meeting's probe does.
        why = "the connection failed (Connection refused)"
    elif "heartbeat" in message:
        why = "it stopped sending heartbeats"
    elif aborted and TIMEOUT_VARIABLE not in message:
        why = f"the connection failed ({aborted.group(1).strip()})"
    else:  # Workers.look_for_missing's deadline, or TensorFlow's own
        why = f"no answer within {TIMEOUT_VARIABLE}={cluster.timeout:g} s"
    return f"lost {who}: {why}; restart every worker"


def refused(address: str) -> bool:
    """Whether host:port refuses a connection: nothing listens there any more (a stopped process
    or a machine gone does not answer at all)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def fingerprint(config: Params, images: np.ndarray, test_images: np.ndarray) -> tuple[int, ...]:
    """What the workers compare: the image counts, batch size and epochs, a checksum of the model
    and training params and one of the first training images."""
    return (
        images.shape[0],
        test_images.shape[0],
        config.train.batch_size,
        config.train.epochs,
        zlib.crc32(repr((config.model, config.train)).encode()),
        zlib.crc32(np.ascontiguousarray(images[:64]).tobytes()),
    )
