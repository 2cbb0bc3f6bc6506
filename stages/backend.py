"""TensorFlow and Keras, as every stage that trains or runs a model loads them:
`from stages.backend import keras, layers, ops, tf`.

Keras imports scikit-learn, where it is installed, for wrappers no stage uses: about a second of
every train and predict start (docs/speed.md). While the two load, `import sklearn` fails as if
scikit-learn were not installed, which Keras allows; afterwards it imports as usual (the evaluate
stage uses it).
"""

import sys

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
