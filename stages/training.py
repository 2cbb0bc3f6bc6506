"""The tutorial's `Model.fit(x, x, shuffle=True, validation_data=(test, test))`, an epoch at a time.

Keras' fit() feeds each batch through tf.data and launches one compiled step per batch. Here a
whole epoch, every batch's step and then the validation loss, is one program that reads the images
where they already are in memory, compiled once: by XLA, several times faster on a CPU, except for
convolutional models (see compiles_well_with_xla).
It is fit()'s arithmetic for any of the models: the same batches (the last one shorter), binary
cross-entropy plus the model's own losses (an L1 penalty, a VAE's KL term), the same optimizer
and seeds. tests/test_training.py checks the losses against fit()'s, kind by kind.
"""

from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf

from stages.params import TrainParams


def make_optimizer(train: TrainParams) -> keras.optimizers.Optimizer:
    return keras.optimizers.get(
        {"class_name": train.optimizer, "config": {"learning_rate": train.learning_rate}}
    )


def fit(
    autoencoder: keras.Model, train: TrainParams, inputs, images, test_inputs, test_images
) -> Iterator[tuple[float, float]]:
    """Train the autoencoder to give back `images` from `inputs`; yield each epoch's (loss,
    val_loss), validated on `test_inputs` against `test_images`.

    The inputs are the images themselves, or for a denoising autoencoder the images with noise
    (stages/noise.py): noised once, as the tutorial does, and the same arrays fit() would get.
    """
    inputs, images = as_tensor(inputs), as_tensor(images)
    test_inputs, test_images = as_tensor(test_inputs), as_tensor(test_images)
    weights = autoencoder.trainable_variables
    optimizer = make_optimizer(train)
    optimizer.build(weights)
    n_images = images.shape[0]
    batch_size = min(train.batch_size, n_images)  # as fit(): one batch of them all, if fewer
    full_batches, last_batch = divmod(n_images, batch_size)

    def loss_of(inputs, targets, training: bool):
        """fit()'s loss: mean binary cross-entropy, plus the losses the call added to the model."""
        reconstructions = autoencoder(inputs, training=training)
        bce = tf.reduce_mean(keras.losses.binary_crossentropy(targets, reconstructions))
        return bce + sum(autoencoder.losses)  # read right after the call that made them

    def step(batch):
        with tf.GradientTape() as tape:
            loss = loss_of(tf.gather(inputs, batch), tf.gather(images, batch), training=True)
        optimizer.apply(tape.gradient(loss, weights), weights)
        return loss * batch.shape[0]  # weighted by its images, as fit() averages an epoch

    # The loop is a tf.while_loop already: no AutoGraph rewriting needed (0.2 s less tracing).
    @tf.function(jit_compile=compiles_well_with_xla(autoencoder), autograph=False)
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
