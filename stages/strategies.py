"""Where training runs: TensorFlow's distribution strategies, from train.strategy
(docs/scaling.md), and how a step's batch is split between their replicas."""

from typing import TYPE_CHECKING

from stages.common import runner
from stages.common.params import TrainParams
from stages.common.runner import StageError

if TYPE_CHECKING:
    from stages.backend import tf


def make_strategy(train: TrainParams) -> "tf.distribute.Strategy":
    """auto: one device; mirrored: a replica per GPU, or per logical CPU device (train.devices)
    where there is none, so that it runs and is tested anywhere; multi_worker: a replica per GPU,
    or the CPU, of each worker of TF_CONFIG. Call it first: logical devices and the cluster are
    fixed once TensorFlow's runtime starts."""
    from stages.backend import tf

    gpus = tf.config.list_physical_devices("GPU")
    if train.strategy == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpu = tf.config.list_physical_devices("CPU")[0]
        logical = [tf.config.LogicalDeviceConfiguration()] * train.devices
        tf.config.set_logical_device_configuration(cpu, logical)
        return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(train.devices)])
    if train.strategy == "multi_worker":
        # NCCL where there are GPUs; ring all-reduce over gRPC between CPUs. No timeout_seconds:
        # TensorFlow keeps a thread alive for each timed collective until its timeout runs out,
        # thousands of threads within a few epochs (Workers.meet bounds the wait instead).
        implementation = tf.distribute.experimental.CommunicationImplementation
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=implementation.AUTO if gpus else implementation.RING
        )
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        runner.answer_signals()  # its runtime took SIGTERM over, to note preemptions
        return strategy
    return tf.distribute.get_strategy()


def describe(strategy: "tf.distribute.Strategy") -> str:
    """The devices a strategy trains on, as `train` prints them: "CPU:0 and CPU:1 (...)"."""
    from stages.backend import tf

    if not is_distributed(strategy):
        gpus = tf.config.list_logical_devices("GPU")
        return (gpus or tf.config.list_logical_devices("CPU"))[0].name.split("device:")[-1]
    devices = [name.split("device:")[-1] for name in strategy.extended.worker_devices]
    # TensorFlow's own class for the multi-worker one is CollectiveAllReduceStrategy.
    name = (
        "MultiWorkerMirroredStrategy"
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        else type(strategy).__name__
    )
    return f"{' and '.join(devices)} ({name}, replicas in all: {strategy.num_replicas_in_sync})"


def is_distributed(strategy: "tf.distribute.Strategy") -> bool:
    """Anything but TensorFlow's default strategy, one device."""
    from stages.backend import tf

    with strategy.scope():
        return tf.distribute.has_strategy()


def replica_slice(size, replica: int, replicas: int):
    """The part of a batch of `size` images that replica number `replica` of `replicas` takes:
    (start, end), as even as whole images allow. Plain arithmetic, so that it works on Python
    integers and inside the compiled step on tensors alike."""
    return size * replica // replicas, size * (replica + 1) // replicas


def check_batches_fill_replicas(n_images: int, batch_size: int, replicas: int) -> None:
    """Every replica needs an image of every batch: a mean over none would be nan."""
    if batch_size < replicas:
        raise StageError(
            f"train.batch_size is {batch_size} for {replicas} replicas; allowed: at least "
            f"{replicas}, an image per replica"
        )
    last_batch = n_images % batch_size
    if 0 < last_batch < replicas:
        raise StageError(
            f"train.batch_size {batch_size} leaves a last batch of {last_batch} of the {n_images} "
            f"images for {replicas} replicas; allowed: a batch size leaving none or at least "
            f"{replicas}"
        )
