"""The pipeline's stages and the small modules they share."""

import gc
import os

# The training loop is TensorFlow code: Keras must run on TensorFlow whatever the user's
# KERAS_BACKEND or keras.json says (set before any stage imports Keras).
os.environ["KERAS_BACKEND"] = "tensorflow"
# Keep TensorFlow's start-up notices out of `dvc repro`'s output (set before any stage imports it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Importing TensorFlow and Keras creates millions of objects that live as long as the stage. At
# Python's default threshold (700) the garbage collector rescans them again and again, a good part
# of the import (docs/speed.md). Collecting after every 100,000 new objects instead still collects.
gc.set_threshold(100_000)
