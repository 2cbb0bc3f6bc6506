"""TensorFlow and Keras, loaded the one way every stage that trains or runs a model needs them:
`from stages.backend import keras, layers, ops, tf`.

- Keras runs on TensorFlow, whatever the user's KERAS_BACKEND or keras.json says: the training
  loop is TensorFlow code.
- TensorFlow's start-up notices stay out of `dvc repro`'s output.
- Importing the two creates millions of objects that live as long as the stage; at Python's
  default threshold (700) the garbage collector rescans them again and again, a good part of the
  import (docs/speed.md). After every 100,000 new objects it still collects.
- Keras imports scikit-learn and Matplotlib, where they are installed, for wrappers and picture
  galleries no stage uses: more than a second of each start. TensorFlow's legacy tf.keras, loaded
  with its API, imports SciPy (scikit-learn's dependency) for sparse inputs: about 0.1 s more.
  While the two packages load, importing any of the three fails as if it were not installed,
  which both allow; afterwards they import as usual (the evaluate and plot stages use them).
"""

import gc
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
gc.set_threshold(100_000)
_hidden = [name for name in ("sklearn", "matplotlib", "scipy") if name not in sys.modules]
for name in _hidden:
    sys.modules[name] = None  # None in sys.modules: `import NAME` raises ImportError
try:
    import keras
    import tensorflow as tf
    from keras import layers, ops
finally:
    for name in _hidden:
        del sys.modules[name]

__all__ = ["keras", "layers", "ops", "tf"]
