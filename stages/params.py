"""params.yaml, validated once: typed values for the stages, or one line saying what is wrong."""

import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from stages.cli import StageError
from stages.datasets import DATASETS, IMAGE_SIZE
from stages.paths import PARAMS

# The valid values of every key, in one place.
KINDS = ("dense", "deep", "conv", "vae")  # stages/model.py builds each
# auto: one device; mirrored: one machine's GPUs (or logical CPUs); multi_worker: TF_CONFIG's
STRATEGIES = ("auto", "mirrored", "multi_worker")
OPTIMIZERS = ("adam", "adadelta", "sgd", "rmsprop", "adagrad", "adamw", "nadam")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear", "elu", "selu", "gelu", "swish", "softplus")
OUTPUT_ACTIVATIONS = ("sigmoid", "hard_sigmoid")  # binary cross-entropy needs outputs in [0, 1]
MAX_HIDDEN_LAYERS = 8
MAX_WIDTH = 4096
# Each convolutional block halves the 28x28 picture: 14x14, then 7x7; a third would not divide.
MAX_CONV_BLOCKS = 2
MAX_FILTERS = 512
MAX_SEED = 2**32 - 1
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_IMAGES_SHOWN = 100
MAX_DEVICES = 64


class _Loader(yaml.SafeLoader):
    """yaml.safe_load, but reading 1e-3 as a number, as YAML 1.2 (and `dvc exp run -S`) does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class ParamsError(StageError):
    """A params.yaml key that is missing, unknown, or has a value outside what is allowed."""


@dataclass(frozen=True)
class DataParams:
    dataset: str
    mirrors: dict[str, list[str]]
    train_size: int
    test_size: int
    seed: int


@dataclass(frozen=True)
class ModelParams:
    kind: str
    encoding_dim: int
    hidden: tuple[int, ...]
    filters: tuple[int, ...]
    activation: str
    output_activation: str
    l1: float


@dataclass(frozen=True)
class TrainParams:
    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int
    shuffle: bool
    seed: int
    noise_factor: float
    strategy: str
    devices: int


@dataclass(frozen=True)
class PlotParams:
    n_images: int


@dataclass(frozen=True)
class Params:
    data: DataParams
    model: ModelParams
    train: TrainParams
    plot: PlotParams


SECTIONS = {"data": DataParams, "model": ModelParams, "train": TrainParams, "plot": PlotParams}


def load(path: Path = PARAMS) -> Params:
    """Read and validate the whole of params.yaml; raise ParamsError on the first bad key."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as error:
        raise ParamsError(f"{path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: is not UTF-8 text") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ParamsError(f"{path}: is not valid YAML{line}") from None
    if not isinstance(document, dict):
        raise ParamsError(f"{path}: must be a mapping of sections (data, model, train, plot)")
    check = _Checker(path, document)
    for name, fields in SECTIONS.items():
        check.section(name, fields)

    dataset = DATASETS[check.choice("data", "dataset", tuple(DATASETS))]
    data = DataParams(
        dataset=dataset.name,
        mirrors=check.mirrors("data", "mirrors"),
        train_size=check.integer("data", "train_size", 1, dataset.train_count),
        test_size=check.integer("data", "test_size", 1, dataset.test_count),
        seed=check.integer("data", "seed", 0, MAX_SEED),
    )
    return Params(
        data=data,
        model=model_params(check),
        train=TrainParams(
            optimizer=check.choice("train", "optimizer", OPTIMIZERS),
            learning_rate=check.positive_number("train", "learning_rate"),
            epochs=check.integer("train", "epochs", 1, MAX_EPOCHS),
            batch_size=check.integer("train", "batch_size", 1, MAX_BATCH_SIZE),
            shuffle=check.boolean("train", "shuffle"),
            seed=check.integer("train", "seed", 0, MAX_SEED),
            noise_factor=check.number("train", "noise_factor", 0, 1),
            strategy=check.choice("train", "strategy", STRATEGIES),
            devices=check.integer("train", "devices", 1, MAX_DEVICES),
        ),
        plot=PlotParams(
            n_images=check.integer("plot", "n_images", 1, min(MAX_IMAGES_SHOWN, data.test_size)),
        ),
    )


def model_params(check: "_Checker") -> ModelParams:
    model = ModelParams(
        kind=check.choice("model", "kind", KINDS),
        encoding_dim=check.integer("model", "encoding_dim", 1, IMAGE_SIZE),
        hidden=check.integers("model", "hidden", MAX_HIDDEN_LAYERS, MAX_WIDTH),
        filters=check.integers("model", "filters", MAX_CONV_BLOCKS, MAX_FILTERS),
        activation=check.choice("model", "activation", ACTIVATIONS),
        output_activation=check.choice("model", "output_activation", OUTPUT_ACTIVATIONS),
        l1=check.number("model", "l1", 0, 1),
    )
    if model.kind == "vae" and model.l1 > 0:
        # Its code is a distribution that the KL term already pulls towards N(0, I).
        raise check.fail("model.l1", f"is {model.l1!r} with model.kind vae", "0 for a vae")
    return model


class _Checker:
    """Checks one key at a time and words each failure the same way."""

    def __init__(self, path: Path, document: dict):
        self.path = path
        self.document = document

    def fail(self, key: str, problem: str, allowed: str) -> ParamsError:
        return ParamsError(f"{self.path}: {key} {problem}; allowed: {allowed}")

    def section(self, name: str, fields: type) -> None:
        expected = list(fields.__dataclass_fields__)
        section = self.document.get(name)
        if not isinstance(section, dict):
            if name not in self.document:
                problem = "is missing"
            elif section is None:
                problem = "is empty"
            else:
                problem = f"is {section!r}, not a mapping"
            raise self.fail(name, problem, f"a mapping with keys {', '.join(expected)}")
        for key in section:
            if key not in expected:
                raise self.fail(f"{name}.{key}", "is not a known key", ", ".join(expected))

    def value(self, section: str, key: str, allowed: str):
        values = self.document[section]
        if key not in values:
            raise self.fail(f"{section}.{key}", "is missing", allowed)
        return values[key]

    def integer(self, section: str, key: str, low: int, high: int) -> int:
        allowed = f"an integer from {low} to {high}"
        value = self.value(section, key, allowed)
        # YAML's true/false are ints to Python; as a size or a seed they are mistakes.
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(f"{section}.{key}", f"is {value!r}", allowed)
        return value

    def positive_number(self, section: str, key: str) -> float:
        allowed = "a finite number greater than 0"
        value = self.value(section, key, allowed)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.fail(f"{section}.{key}", f"is {value!r}", allowed)
        return float(value)

    def number(self, section: str, key: str, low: float, high: float) -> float:
        allowed = f"a number from {low} to {high}"
        value = self.value(section, key, allowed)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise self.fail(f"{section}.{key}", f"is {value!r}", allowed)
        return float(value)

    def integers(self, section: str, key: str, most: int, high: int) -> tuple[int, ...]:
        """A list of 1 to `most` integers, each from 1 to `high`: layer widths or channels."""
        allowed = f"a list of 1 to {most} integers from 1 to {high}"
        value = self.value(section, key, allowed)
        if (
            not isinstance(value, list)
            or not 1 <= len(value) <= most
            or not all(type(item) is int and 1 <= item <= high for item in value)
        ):
            raise self.fail(f"{section}.{key}", f"is {value!r}", allowed)
        return tuple(value)

    def boolean(self, section: str, key: str) -> bool:
        value = self.value(section, key, "true or false")
        if not isinstance(value, bool):
            raise self.fail(f"{section}.{key}", f"is {value!r}", "true or false")
        return value

    def choice(self, section: str, key: str, choices: tuple[str, ...]) -> str:
        allowed = ", ".join(choices)
        value = self.value(section, key, allowed)
        if value not in choices:
            raise self.fail(f"{section}.{key}", f"is {value!r}", allowed)
        return value

    def mirrors(self, section: str, key: str) -> dict[str, list[str]]:
        allowed = "a mapping from dataset name to a list of URLs or folders"
        value = self.value(section, key, allowed)
        if not isinstance(value, dict):
            raise self.fail(f"{section}.{key}", f"is {value!r}", allowed)
        for dataset, sources in value.items():
            name = f"{section}.{key}.{dataset}"
            if dataset not in DATASETS:
                raise self.fail(name, "is not a known dataset", ", ".join(DATASETS))
            if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
                raise self.fail(name, f"is {sources!r}", "a list of URLs or folders")
        return value
