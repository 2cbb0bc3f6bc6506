"""TensorFlow and Keras, loaded the one way every stage that trains or runs a model needs them:
`from stages.backend import keras, layers, ops, tf`.

- Keras runs on TensorFlow, whatever the user's KERAS_BACKEND or keras.json says: the training
  loop is TensorFlow code.
- TensorFlow's start-up notices stay out of `dvc repro`'s output.
- Importing the two creates millions of objects that live as long as the stage; at Python's
  default threshold (700) the garbage collector rescans them again and again, a good part of the
  import (docs/speed.md). After every 100,000 new objects it still collects.
- Keras imports scikit-learn, where it is installed, for wrappers no stage uses: about a second of
  each start. While the two load, `import sklearn` fails as if it were not installed, which Keras
  allows; afterwards it imports as usual (the evaluate stage uses it).
"""

import gc
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
gc.set_threshold(100_000)
_hidden = "sklearn" not in sys.modules
if _hidden:
    sys.modules["sklearn"] = None  # None in sys.modules: `import sklearn` raises ImportError
try:
    import keras
    import tensorflow as tf
    from keras import layers, ops
finally:
    if _hidden:
        del sys.modules["sklearn"]

__all__ = ["keras", "layers", "ops", "tf"]
