"""What a trained autoencoder gives: loaded safely, its codes and reconstructions, and images
decoded from codes it was never given (the predict stage and `make score`)."""

import statistics
import zipfile
from pathlib import Path

import numpy as np

from stages.backend import keras, ops
from stages.common.runner import StageError, gist
from stages.model import Sampling, kl_divergence

GRID_SIDE = 10  # the decoded-samples figure: 10 x 10 images


def load_model(path: Path, trained_by: str = "train") -> keras.Model:
    """Load a saved model (the autoencoder, or the transformation classifier that the stage
    `trained_by` saves); safe_mode refuses files that would run arbitrary code."""
    if not path.is_file():
        raise StageError(f"{path}: no model there; run the {trained_by} stage first")
    # Keras reports any non-zip .keras file as "not found", which would mislead here.
    if not zipfile.is_zipfile(path):
        raise StageError(f"{path}: not a loadable Keras model (not a .keras zip archive)")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many types for a bad file; all mean the same here
        raise StageError(f"{path}: not a loadable Keras model ({gist(error)})") from None


def is_variational(autoencoder: keras.Model) -> bool:
    return any(isinstance(layer, Sampling) for layer in autoencoder.layers)


def encode_and_reconstruct(autoencoder: keras.Model, images) -> tuple:
    """Codes (a VAE's means) and reconstructions of the images, and the model's own terms by name
    (a VAE's mean "kl" per pixel), in one call on all of them."""
    outputs = {"codes": autoencoder.get_layer("code").output, "reconstructions": autoencoder.output}
    if is_variational(autoencoder):
        outputs["log_vars"] = autoencoder.get_layer("log_var").output
    results = keras.Model(autoencoder.input, outputs)(images)
    terms = {}
    if is_variational(autoencoder):
        kl = kl_divergence(results["codes"], results["log_vars"], images.shape[1])
        terms["kl"] = float(ops.mean(kl))
    return results["codes"], results["reconstructions"], terms


def encode(autoencoder: keras.Model, images: np.ndarray, batch_size: int = 10_000) -> np.ndarray:
    """The codes (a VAE's means) of any number of images, a batch at a time: a convolutional
    encoder's activations for 60,000 images at once would take gigabytes."""
    encoder = keras.Model(autoencoder.input, autoencoder.get_layer("code").output)
    batches = range(0, len(images), batch_size)
    return np.concatenate([np.asarray(encoder(images[i : i + batch_size])) for i in batches])


def decoder(autoencoder: keras.Model) -> keras.Model:
    """The layers after the code (after the sampling, for a VAE) as a model: code -> image."""
    names = [layer.name for layer in autoencoder.layers]
    last_encoder_layer = "sampling" if is_variational(autoencoder) else "code"
    code = keras.Input(shape=autoencoder.get_layer("code").output.shape[1:])
    x = code
    for layer in autoencoder.layers[names.index(last_encoder_layer) + 1 :]:
        x = layer(x)
    return keras.Model(code, x, name="decoder")


def decode_samples(autoencoder: keras.Model, codes: np.ndarray, seed: int) -> np.ndarray:
    """Images decoded from codes the model was never given: a grid for a 2-value code, else random
    ones; from a VAE's prior, or each code value's spread over `codes` (docs/pipeline.md)."""
    if is_variational(autoencoder):
        mean, std = np.zeros(codes.shape[1]), np.ones(codes.shape[1])
        low, high = -np.inf, np.inf
    else:
        mean, std = codes.mean(axis=0), codes.std(axis=0)
        low, high = codes.min(axis=0), codes.max(axis=0)
    if codes.shape[1] == 2:
        # Evenly spaced quantiles, as the tutorial draws its 2-D latent space.
        steps = [statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, GRID_SIDE)]
        standard = np.array([(x, y) for y in steps[::-1] for x in steps])
    else:
        standard = np.random.default_rng(seed).standard_normal((GRID_SIDE**2, codes.shape[1]))
    samples = np.clip(mean + std * standard, low, high).astype(np.float32)
    return np.asarray(decoder(autoencoder)(samples))
