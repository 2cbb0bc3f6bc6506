"""The tutorial's `Model.fit(x, x, shuffle=True, validation_data=(test, test))`, an epoch at a time.

The same arithmetic as fit() for any of the models (the same batches, the last one shorter; binary
cross-entropy plus the model's own losses; the same optimizer and seeds: tests/test_loop.py checks
the losses against fit()'s), but each epoch, every batch's step and then the validation loss, is
one program compiled once, reading the images where they are in memory: XLA for Dense layers,
a TensorFlow graph for convolutions (docs/speed.md).
"""

import time
from collections.abc import Callable

import numpy as np

from stages import distribute, strategies
from stages.backend import keras, tf
from stages.checkpoints import Checkpoint, Epoch
from stages.common import runner
from stages.common.params import TrainParams


def make_optimizer(train: TrainParams) -> keras.optimizers.Optimizer:
    return keras.optimizers.get(
        {"class_name": train.optimizer, "config": {"learning_rate": train.learning_rate}}
    )


def fit(
    autoencoder: keras.Model,
    train: TrainParams,
    *,
    inputs,
    targets,
    test_inputs,
    test_targets,
    strategy: tf.distribute.Strategy | None = None,
    workers: distribute.Workers | None = None,
    on_epoch: Callable[[Epoch], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> list[Epoch]:
    """Train the autoencoder to give back `targets` from `inputs` (the images, or a denoising
    autoencoder's noisy ones), validated on `test_inputs` against `test_targets`; call `on_epoch`
    after each epoch, first for those a checkpoint restores; save each epoch to the checkpoint;
    return every epoch. Under a strategy each batch is split between the replicas, which add up
    their gradients; the `workers` of a multi-worker run meet before each epoch."""
    strategy = strategy or tf.distribute.get_strategy()
    inputs, targets = as_tensor(inputs), as_tensor(targets)
    test_inputs, test_targets = as_tensor(test_inputs), as_tensor(test_targets)
    weights = autoencoder.trainable_variables
    with strategy.scope():
        optimizer = make_optimizer(train)
        optimizer.build(weights)
    n_images = targets.shape[0]
    batch_size = min(train.batch_size, n_images)  # as fit(): one batch of them all, if fewer
    full_batches, last_batch = divmod(n_images, batch_size)
    strategies.check_batches_fill_replicas(n_images, batch_size, strategy.num_replicas_in_sync)

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
        size = tf.shape(batch)[0]
        start, end = strategies.replica_slice(
            size, replica.replica_id_in_sync_group, replica.num_replicas_in_sync
        )
        mine, share = batch[start:end], tf.cast(end - start, tf.float32)
        with tf.GradientTape() as tape:
            loss = loss_of(tf.gather(inputs, mine), tf.gather(targets, mine), training=True)
            weighted = loss * (share / tf.cast(size, tf.float32))
        optimizer.apply(tape.gradient(weighted, weights), weights)
        return loss * share  # weighted by its images, as fit() averages an epoch

    def step(batch):
        losses = strategy.run(replica_step, args=(batch,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    # The loop is a tf.while_loop already: no AutoGraph rewriting needed (less tracing).
    # XLA compiles for one device, so a strategy's replicas run as a TensorFlow graph.
    @tf.function(
        jit_compile=compiles_well_with_xla(autoencoder) and not strategies.is_distributed(strategy),
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
        return loss_sum / n_images, loss_of(test_inputs, test_targets, training=False)

    shuffler = np.random.default_rng(train.seed)
    # Everything the next epochs depend on: weights, a VAE's sampling seed, the optimizer's step
    # and moments, the shuffler.
    variables = [*autoencoder.variables, *optimizer.variables]
    history = checkpoint.restore(variables, shuffler) if checkpoint else []
    for past in history:
        if on_epoch:
            on_epoch(past)
    for number in range(len(history) + 1, train.epochs + 1):
        started = time.perf_counter()
        order = shuffler.permutation(n_images) if train.shuffle else np.arange(n_images)
        if workers:
            workers.meet(f"epoch {number}")
        loss, val_loss = runner.interruptible(epoch, order.astype(np.int32))
        history.append(Epoch(number, float(loss), float(val_loss), time.perf_counter() - started))
        if checkpoint:  # first: an interruption in on_epoch then loses nothing
            checkpoint.save(variables, history, shuffler)
        if on_epoch:
            on_epoch(history[-1])
    return history


def compiles_well_with_xla(autoencoder: keras.Model) -> bool:
    """Whether XLA makes the epoch faster: it does for Dense layers, but XLA's CPU convolutions
    are far slower than TensorFlow's own oneDNN kernels (docs/family.md). An epoch of a model
    with convolutions is one TensorFlow graph instead: the same loop, without XLA."""
    convolutions = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)
    return not any(isinstance(layer, convolutions) for layer in autoencoder.layers)


def as_tensor(images: np.ndarray) -> tf.Tensor:
    """The images as a tensor, sharing their memory where TensorFlow can (no copy of them).

    DLPack shares a buffer aligned as TensorFlow needs: a memory-mapped .npy is, since np.save
    aligns its data to 64 bytes. Any other array is copied.
    """
    if images.flags.writeable and images.ctypes.data % 64 == 0:
        return tf.experimental.dlpack.from_dlpack(images.__dlpack__())
    return tf.convert_to_tensor(images)
