"""The tutorial's `Model.fit(x, x, shuffle=True, validation_data=(test, test))`, an epoch at a time.

Keras' fit() feeds each batch through tf.data and launches one compiled step per batch. Here a
whole epoch, every batch's step and then the validation loss, is one program that reads the images
where they already are in memory, compiled once: by XLA, several times faster on a CPU, except for
convolutional models (see compiles_well_with_xla).
It is fit()'s arithmetic for any of the models: the same batches (the last one shorter), binary
cross-entropy plus the model's own losses (an L1 penalty, a VAE's KL term), the same optimizer
and seeds. tests/test_training.py checks the losses against fit()'s, kind by kind.
"""

import zlib
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from stages.cli import StageError
from stages.params import Params, TrainParams


def make_optimizer(train: TrainParams) -> keras.optimizers.Optimizer:
    return keras.optimizers.get(
        {"class_name": train.optimizer, "config": {"learning_rate": train.learning_rate}}
    )


def make_strategy(train: TrainParams) -> tf.distribute.Strategy:
    """Where training runs, from train.strategy (README, "Scaling out"). Call it first: logical
    devices and a multi-worker cluster are fixed once TensorFlow's runtime starts.

    - auto: TensorFlow's default, one device (the first GPU if there is one).
    - mirrored: a replica per GPU of this machine, or per logical CPU device (train.devices of
      them) where there is no GPU, so it runs and is tested anywhere.
    - multi_worker: a replica per GPU, or the CPU, of each worker of TF_CONFIG (stages/cluster.py).
    """
    gpus = tf.config.list_physical_devices("GPU")
    if train.strategy == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpu = tf.config.list_physical_devices("CPU")[0]
        logical = [tf.config.LogicalDeviceConfiguration()] * train.devices
        tf.config.set_logical_device_configuration(cpu, logical)
        return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(train.devices)])
    if train.strategy == "multi_worker":
        # NCCL where there are GPUs; ring all-reduce over gRPC between CPUs.
        implementation = tf.distribute.experimental.CommunicationImplementation
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=implementation.AUTO if gpus else implementation.RING
        )
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    return tf.distribute.get_strategy()


def describe(strategy: tf.distribute.Strategy) -> str:
    """The devices a strategy trains on, as `train` prints them: "CPU:0 and CPU:1 (...)"."""
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


def fit(
    autoencoder: keras.Model,
    train: TrainParams,
    inputs,
    images,
    test_inputs,
    test_images,
    strategy: tf.distribute.Strategy | None = None,
) -> Iterator[tuple[float, float]]:
    """Train the autoencoder to give back `images` from `inputs`; yield each epoch's (loss,
    val_loss), validated on `test_inputs` against `test_images`.

    The inputs are the images themselves, or for a denoising autoencoder the images with noise
    (stages/noise.py): noised once, as the tutorial does, and the same arrays fit() would get.
    Under a strategy (the autoencoder built in its scope), each batch is split between the
    replicas, which add up their gradients: the same steps, on more devices.
    """
    strategy = strategy or tf.distribute.get_strategy()
    inputs, images = as_tensor(inputs), as_tensor(images)
    test_inputs, test_images = as_tensor(test_inputs), as_tensor(test_images)
    weights = autoencoder.trainable_variables
    with strategy.scope():
        optimizer = make_optimizer(train)
        optimizer.build(weights)
    n_images = images.shape[0]
    batch_size = min(train.batch_size, n_images)  # as fit(): one batch of them all, if fewer
    full_batches, last_batch = divmod(n_images, batch_size)
    check_batches_fill_replicas(n_images, batch_size, strategy.num_replicas_in_sync)

    def loss_of(inputs, targets, training: bool):
        """fit()'s loss: mean binary cross-entropy, plus the losses the call added to the model."""
        reconstructions = autoencoder(inputs, training=training)
        bce = tf.reduce_mean(keras.losses.binary_crossentropy(targets, reconstructions))
        return bce + sum(autoencoder.losses)  # read right after the call that made them

    def replica_step(batch):
        """A replica's part of a step: the mean loss on its slice of the batch, its gradients
        weighted by the slice's share of the batch. optimizer.apply sums every replica's
        gradients (an identity on one device): the gradients of the whole batch's mean loss."""
        replica = tf.distribute.get_replica_context()
        size, index = tf.shape(batch)[0], replica.replica_id_in_sync_group
        start = size * index // replica.num_replicas_in_sync
        end = size * (index + 1) // replica.num_replicas_in_sync
        mine, share = batch[start:end], tf.cast(end - start, tf.float32)
        with tf.GradientTape() as tape:
            loss = loss_of(tf.gather(inputs, mine), tf.gather(images, mine), training=True)
            weighted = loss * (share / tf.cast(size, tf.float32))
        optimizer.apply(tape.gradient(weighted, weights), weights)
        return loss * share  # weighted by its images, as fit() averages an epoch

    def step(batch):
        losses = strategy.run(replica_step, args=(batch,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    # The loop is a tf.while_loop already: no AutoGraph rewriting needed (0.2 s less tracing).
    # XLA compiles for one device, so a strategy's replicas run as a TensorFlow graph.
    @tf.function(
        jit_compile=compiles_well_with_xla(autoencoder) and not is_distributed(strategy),
        autograph=False,
    )
    def epoch(order):
        batches = tf.reshape(order[: full_batches * batch_size], (full_batches, batch_size))
        _, loss_sum = tf.while_loop(
            lambda i, _: i < full_batches,
            lambda i, loss_sum: (i + 1, loss_sum + step(batches[i])),
            (tf.constant(0), tf.constant(0.0)),
        )
        if last_batch:  # fit()'s shorter last batch, a step of its own size
            loss_sum += step(order[full_batches * batch_size :])
        return loss_sum / n_images, loss_of(test_inputs, test_images, training=False)

    order = np.random.default_rng(train.seed)
    for _ in range(train.epochs):
        indices = order.permutation(n_images) if train.shuffle else np.arange(n_images)
        loss, val_loss = epoch(indices.astype(np.int32))
        yield float(loss), float(val_loss)


def check_workers_agree(
    strategy: tf.distribute.Strategy, config: Params, images: np.ndarray, test_images: np.ndarray
) -> None:
    """Stop with one line unless every worker is to train the same model on the same data: their
    steps would not pair up, and each would wait for the others' forever. Call it before building
    the model (whose variables the workers already create together)."""
    mine = fingerprint(config, images, test_images)
    values = tf.constant([mine, [value * value for value in mine]], tf.float64)
    replicas = strategy.num_replicas_in_sync
    # Equal everywhere exactly when the sums of the values and of their squares are n times this
    # worker's (the values' spread across replicas is then 0).
    total = strategy.reduce(
        tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(values)), axis=None
    )
    if not np.array_equal(total.numpy(), replicas * values.numpy()):
        raise StageError(
            f"the workers of TF_CONFIG do not train the same thing: this one has {mine[0]} "
            f"training and {mine[1]} test images, batch_size {mine[2]}, {mine[3]} epochs; "
            f"allowed: the same commit, params.yaml and data/prepared/ on every worker"
        )


def fingerprint(config: Params, images: np.ndarray, test_images: np.ndarray) -> tuple[int, ...]:
    """What the workers compare: the image counts, batch size and epochs, a checksum of the model
    and training params and one of the first training images; each small enough to square
    exactly in a float64."""
    settings = repr((config.model, config.train)).encode()
    return (
        images.shape[0],
        test_images.shape[0],
        config.train.batch_size,
        config.train.epochs,
        zlib.crc32(settings) % 2**20,
        zlib.crc32(np.ascontiguousarray(images[:64]).tobytes()) % 2**20,
    )


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    """Anything but TensorFlow's default strategy, one device."""
    with strategy.scope():
        return tf.distribute.has_strategy()


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


def compiles_well_with_xla(autoencoder: keras.Model) -> bool:
    """Whether XLA makes the epoch faster: for Dense layers by several times, but XLA's CPU
    convolutions are over ten times slower than TensorFlow's own oneDNN kernels (measured here:
    27 s an epoch for 1000 images with XLA, 14 s for 6000 without). An epoch of a model with
    convolutions is one TensorFlow graph instead: the same loop, without XLA."""
    convolutions = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)
    return not any(isinstance(layer, convolutions) for layer in autoencoder.layers)


def as_tensor(images: np.ndarray) -> tf.Tensor:
    """The images as a tensor, sharing their memory where TensorFlow can (no 188 MB copy).

    DLPack shares a buffer aligned as TensorFlow needs: a memory-mapped .npy is, since np.save
    aligns its data to 64 bytes. Any other array is copied.
    """
    if images.flags.writeable and images.ctypes.data % 64 == 0:
        return tf.experimental.dlpack.from_dlpack(images.__dlpack__())
    return tf.convert_to_tensor(images)
