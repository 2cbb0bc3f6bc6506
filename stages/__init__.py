"""The pipeline's stages and the small modules they share."""

import os

# Keep TensorFlow's start-up notices out of `dvc repro`'s output (set before any stage imports it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
