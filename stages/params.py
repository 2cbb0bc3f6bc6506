"""params.yaml, validated once: typed values for the stages, or one line saying what is wrong.

Each key is declared once, as a field of its section's dataclass: what is allowed there, the
stages that read it (dvc.yaml lists it for exactly those) and what it means. `load()` walks the
declarations in order; `python -m stages.params` prints them as a table.
"""

import math
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from stages.datasets import DATASETS, IMAGE_SIZE
from stages.paths import PARAMS
from stages.runner import StageError

# The valid values of the keys that choose among names.
KINDS = ("dense", "deep", "conv", "vae")  # stages/model.py builds each
# auto: one device; mirrored: one machine's GPUs (or logical CPUs); multi_worker: TF_CONFIG's
STRATEGIES = ("auto", "mirrored", "multi_worker")
OPTIMIZERS = ("adam", "adadelta", "sgd", "rmsprop", "adagrad", "adamw", "nadam")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear", "elu", "selu", "gelu", "swish", "softplus")
OUTPUT_ACTIVATIONS = ("sigmoid", "hard_sigmoid")  # binary cross-entropy needs outputs in [0, 1]
MAX_SEED = 2**32 - 1


class _Loader(yaml.SafeLoader):
    """yaml.safe_load, but reading 1e-3 as a number, as YAML 1.2 (and `dvc exp run -S`) does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class ParamsError(StageError):
    """A params.yaml key that is missing, unknown, or has a value outside what is allowed."""


class Invalid(Exception):
    """A value a rule does not allow; `key` when it is a key inside the value (data.mirrors)."""

    def __init__(self, problem: str | None = None, allowed: str | None = None, key: str = ""):
        self.problem, self.allowed, self.key = problem, allowed, key


# A value as an error line shows it: cut short, however large (YAML aliases can make a 2 KB file
# a value of millions of items).
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict = 1, 10, 10, 4
_SHOWN.maxstring = _SHOWN.maxother = 60


def shown(value) -> str:
    """`repr(value)`, cut short."""
    return _SHOWN.repr(value)


# What the rules below may read of the keys before theirs: {"data": {"dataset": "mnist", ...}}.
Loaded = dict[str, dict]
Bound = int | Callable[[Loaded], int]


def _bound(bound: Bound, loaded: Loaded) -> int:
    return bound(loaded) if callable(bound) else bound


def _is_number(value) -> bool:
    # YAML's true/false are ints to Python; as a number they are mistakes.
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class Integer:
    low: int
    high: Bound  # a number, or one that depends on keys read before (data.dataset's sizes)

    def allowed(self, loaded: Loaded) -> str:
        return f"an integer from {self.low} to {_bound(self.high, loaded)}"

    def parse(self, value, loaded: Loaded) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid
        if not self.low <= value <= _bound(self.high, loaded):
            raise Invalid
        return value


@dataclass(frozen=True)
class Number:
    low: float
    high: float

    def allowed(self, loaded: Loaded) -> str:
        return f"a number from {self.low} to {self.high}"

    def parse(self, value, loaded: Loaded) -> float:
        if not _is_number(value) or not self.low <= value <= self.high:
            raise Invalid
        return float(value)


@dataclass(frozen=True)
class Positive:
    def allowed(self, loaded: Loaded) -> str:
        return "a finite number greater than 0"

    def parse(self, value, loaded: Loaded) -> float:
        if not _is_number(value) or value <= 0:
            raise Invalid
        return float(value)


@dataclass(frozen=True)
class Integers:
    """A list of 1 to `most` integers, each from 1 to `high`: layer widths or channels."""

    most: int
    high: int

    def allowed(self, loaded: Loaded) -> str:
        return f"a list of 1 to {self.most} integers from 1 to {self.high}"

    def parse(self, value, loaded: Loaded) -> tuple[int, ...]:
        if (
            not isinstance(value, list)
            or not 1 <= len(value) <= self.most
            or not all(type(item) is int and 1 <= item <= self.high for item in value)
        ):
            raise Invalid
        return tuple(value)


@dataclass(frozen=True)
class Boolean:
    def allowed(self, loaded: Loaded) -> str:
        return "true or false"

    def parse(self, value, loaded: Loaded) -> bool:
        if not isinstance(value, bool):
            raise Invalid
        return value


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]

    def allowed(self, loaded: Loaded) -> str:
        return ", ".join(self.choices)

    def parse(self, value, loaded: Loaded) -> str:
        if value not in self.choices:
            raise Invalid
        return value


@dataclass(frozen=True)
class Mirrors:
    """A mapping from dataset name to a list of URLs or folders (data.mirrors)."""

    def allowed(self, loaded: Loaded) -> str:
        return "a mapping from dataset name to a list of URLs or folders"

    def parse(self, value, loaded: Loaded) -> dict[str, list[str]]:
        if not isinstance(value, dict):
            raise Invalid
        for dataset, sources in value.items():
            if dataset not in DATASETS:
                raise Invalid("is not a known dataset", ", ".join(DATASETS), key=dataset)
            if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
                raise Invalid(f"is {shown(sources)}", "a list of URLs or folders", key=dataset)
        return value


@dataclass(frozen=True)
class Classes:
    """`all`, or some of the dataset's classes by label: a list of distinct integers, or one."""

    def allowed(self, loaded: Loaded) -> str:
        last = len(DATASETS[loaded["data"]["dataset"]].classes) - 1
        return f"all, or a list of distinct integers from 0 to {last}, fewer than all"

    def parse(self, value, loaded: Loaded) -> tuple[int, ...] | None:
        if value == "all":
            return None
        labels = [value] if type(value) is int else value
        count = len(DATASETS[loaded["data"]["dataset"]].classes)
        if not isinstance(labels, list) or not all(type(label) is int for label in labels):
            raise Invalid
        why = (
            (not labels and "no class")
            or (not all(0 <= label < count for label in labels) and "out of range")
            or (len(set(labels)) != len(labels) and "a class repeated")
            or (len(labels) == count and "every class, where a subset is needed (all says that)")
        )
        if why:
            raise Invalid(f"is {shown(value)}, {why}")
        return tuple(sorted(labels))


def key(rule, stages: str, help: str):
    """A params.yaml key: the rule its value must pass, the stages that read it (space-separated,
    as dvc.yaml lists it under each) and what it means."""
    return field(metadata={"rule": rule, "stages": tuple(stages.split()), "help": help})


def _split_size(split: str) -> Callable[[Loaded], int]:
    return lambda loaded: getattr(DATASETS[loaded["data"]["dataset"]], f"{split}_count")


@dataclass(frozen=True)
class DataParams:
    dataset: str = key(
        Choice(tuple(DATASETS)),
        "download plot evaluate",
        "which images: the IDX files and labels",
    )
    mirrors: dict[str, list[str]] = key(
        Mirrors(), "download", "where each dataset's files are, tried in order after $DATA_MIRROR"
    )
    train_size: int = key(
        Integer(1, _split_size("train")), "prepare", "training images, a seeded subset if fewer"
    )
    test_size: int = key(
        Integer(1, _split_size("test")), "prepare", "test images, a seeded subset if fewer"
    )
    seed: int = key(
        Integer(0, MAX_SEED),
        "prepare train predict plot evaluate",
        "picks the subsets and the probe's labelled images; seeds the noise on the test images",
    )
    # After seed: a rule reads the keys above it.
    normal_classes: tuple[int, ...] | None = key(
        Classes(),
        "prepare evaluate",
        "one-class training: the only classes kept for training, the inliers of the anomaly score",
    )


@dataclass(frozen=True)
class ModelParams:
    kind: str = key(Choice(KINDS), "train", "the autoencoder: one builder each in stages/model.py")
    encoding_dim: int = key(
        Integer(1, IMAGE_SIZE), "train evaluate", "the code's size in every kind, and PCA's"
    )
    hidden: tuple[int, ...] = key(
        Integers(8, 4096), "train", "deep and vae: Dense widths to the code, mirrored back"
    )
    # Each convolutional block halves the 28x28 picture: 14x14, then 7x7; a third would not divide.
    filters: tuple[int, ...] = key(
        Integers(2, 512), "train", "conv: channels of each 3x3 convolution block"
    )
    activation: str = key(Choice(ACTIVATIONS), "train", "the hidden layers' activation")
    output_activation: str = key(
        Choice(OUTPUT_ACTIVATIONS), "train", "the reconstruction's activation"
    )
    l1: float = key(Number(0, 1), "train", "the sparse autoencoder's L1 penalty on the code")


@dataclass(frozen=True)
class TrainParams:
    optimizer: str = key(Choice(OPTIMIZERS), "train", "Keras' optimizer of that name")
    learning_rate: float = key(Positive(), "train", "the optimizer's step size")
    epochs: int = key(Integer(1, 10_000), "train", "passes over the training images")
    batch_size: int = key(
        Integer(1, 65_536), "train", "images per step, split between the replicas"
    )
    shuffle: bool = key(Boolean(), "train", "a new order of the images each epoch")
    seed: int = key(
        Integer(0, MAX_SEED),
        "train predict",
        "the initial weights, the shuffling and the noise; the random codes predict decodes",
    )
    noise_factor: float = key(
        Number(0, 1), "train predict plot", "the denoising autoencoder's input noise (0: off)"
    )
    strategy: str = key(Choice(STRATEGIES), "train", "where training runs (docs/scaling.md)")
    devices: int = key(Integer(1, 64), "train", "mirrored without a GPU: logical CPU devices")


@dataclass(frozen=True)
class PlotParams:
    n_images: int = key(
        Integer(1, lambda loaded: min(100, loaded["data"]["test_size"])),
        "plot evaluate",
        "test images shown in the figures",
    )


@dataclass(frozen=True)
class Params:
    data: DataParams
    model: ModelParams
    train: TrainParams
    plot: PlotParams


SECTIONS = {section.name: section.type for section in fields(Params)}


def declared() -> dict[str, dict]:
    """Every key, as section.name, with its rule, the stages that read it and its help."""
    return {
        f"{section}.{declaration.name}": dict(declaration.metadata)
        for section, kind in SECTIONS.items()
        for declaration in fields(kind)
    }


def load(path: Path = PARAMS) -> Params:
    """Read and validate the whole of params.yaml; raise ParamsError on the first bad key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ParamsError(f"{path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: is not UTF-8 text") from None
    return parse(text, path)


def parse(text: str, path: Path | str = PARAMS) -> Params:
    """Validate a params.yaml given as text (an experiment's, say); `path` names it in errors."""
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ParamsError(f"{path}: is not valid YAML{line}") from None
    if not isinstance(document, dict):
        raise ParamsError(f"{path}: must be a mapping of sections (data, model, train, plot)")

    def fail(key: str, problem: str, allowed: str) -> ParamsError:
        return ParamsError(f"{path}: {key} {problem}; allowed: {allowed}")

    # Every section and key is known before any value is read.
    for name, kind in SECTIONS.items():
        expected = [declaration.name for declaration in fields(kind)]
        section = document.get(name)
        if not isinstance(section, dict):
            if name not in document:
                problem = "is missing"
            elif section is None:
                problem = "is empty"
            else:
                problem = f"is {shown(section)}, not a mapping"
            raise fail(name, problem, f"a mapping with keys {', '.join(expected)}")
        for found in section:
            if found not in expected:
                raise fail(
                    f"{name}.{found if isinstance(found, str) else shown(found)}",
                    "is not a known key",
                    ", ".join(expected),
                )

    loaded: Loaded = {}
    for name, kind in SECTIONS.items():
        loaded[name] = {}
        for declaration in fields(kind):
            dotted, rule = f"{name}.{declaration.name}", declaration.metadata["rule"]
            allowed = rule.allowed(loaded)
            if declaration.name not in document[name]:
                raise fail(dotted, "is missing", allowed)
            value = document[name][declaration.name]
            try:
                loaded[name][declaration.name] = rule.parse(value, loaded)
            except Invalid as invalid:
                inner = f"{dotted}.{invalid.key}" if invalid.key else dotted
                problem = invalid.problem or f"is {shown(value)}"
                raise fail(inner, problem, invalid.allowed or allowed) from None
        if name == "model" and loaded[name]["kind"] == "vae" and loaded[name]["l1"] > 0:
            # Its code is a distribution that the KL term already pulls towards N(0, I).
            raise fail(
                "model.l1", f"is {shown(loaded[name]['l1'])} with model.kind vae", "0 for a vae"
            )
    return Params(**{name: SECTIONS[name](**values) for name, values in loaded.items()})


def main() -> None:
    """Print every key: what it may be, the stages that read it, what it means."""
    print("| key | allowed | read by | what it is |")
    print("| --- | --- | --- | --- |")
    # Bounds that depend on other keys are shown for params.yaml's own values.
    loaded = {"data": vars(load().data)}
    for dotted, declaration in declared().items():
        readers = ", ".join(declaration["stages"])
        allowed = declaration["rule"].allowed(loaded)
        print(f"| `{dotted}` | {allowed} | {readers} | {declaration['help']} |")


if __name__ == "__main__":
    main()
