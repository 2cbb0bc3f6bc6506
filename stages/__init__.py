"""The pipeline's stages and the small modules they share."""

import gc
import importlib.abc
import importlib.util
import os
import sys

# The training loop is TensorFlow code: Keras must run on TensorFlow whatever the user's
# KERAS_BACKEND or keras.json says (set before any stage imports Keras).
os.environ["KERAS_BACKEND"] = "tensorflow"
# Keep TensorFlow's start-up notices out of `dvc repro`'s output (set before any stage imports it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Importing TensorFlow and Keras creates millions of objects that live as long as the stage. At
# Python's default threshold (700) the garbage collector rescans them again and again, a good part
# of the import (docs/speed.md). Collecting after every 100,000 new objects instead still collects.
gc.set_threshold(100_000)


class _KerasWithoutScikitLearn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """TensorFlow's and Keras' first import with scikit-learn out of sight.

    Keras imports scikit-learn, where it is installed, for its scikit-learn wrappers, which no
    stage uses: about a second of every train and predict start (docs/speed.md). While the
    `tensorflow` or `keras` package first loads, `import sklearn` fails as if scikit-learn were not
    installed, which Keras allows; afterwards it imports as usual (the evaluate stage uses it).
    """

    # TensorFlow imports Keras as it loads, and Keras its wrappers.
    HIDING = ("tensorflow", "keras")

    def __init__(self):
        self.loaders = {}

    def find_spec(self, name, path=None, target=None):
        if name not in self.HIDING or name in self.loaders:
            return None
        self.loaders[name] = None  # while the other finders look for the package itself
        spec = importlib.util.find_spec(name)
        if spec is not None:
            self.loaders[name], spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self.loaders[spec.name].create_module(spec)

    def exec_module(self, module):
        loader = module.__loader__ = module.__spec__.loader = self.loaders[module.__name__]
        if "sklearn" in sys.modules:  # imported before, or already hidden by the outer package
            return loader.exec_module(module)
        sys.modules["sklearn"] = None  # None in sys.modules: `import sklearn` raises ImportError
        try:
            loader.exec_module(module)
        finally:
            del sys.modules["sklearn"]


sys.meta_path.insert(0, _KerasWithoutScikitLearn())
