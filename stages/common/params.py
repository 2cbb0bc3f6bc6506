"""params.yaml, validated once: typed values for the stages, or one line saying what is wrong.

Each key is declared once, as a field of its section's dataclass with the rule its value must
pass; `parse()` checks them in order. params.yaml's comments say what each means; dvc.yaml lists
the stages that read it (a test checks that against their code).
"""

import math
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from stages.common.datasets import DATASETS, IMAGES, Dataset, FolderError, class_names
from stages.common.paths import PARAMS
from stages.common.runner import StageError

KINDS = ("dense", "deep", "conv", "vae")  # stages/model.py builds each
# What makes a test image anomalous (stages/metrics.py scores each; docs/evaluation.md): its
# reconstruction error, the transformation classifier's score (stages/classifier.py), or both.
SCORES = ("error", "transformations", "error+transformations")
# auto: one device; mirrored: one machine's GPUs (or logical CPUs); multi_worker: TF_CONFIG's
STRATEGIES = ("auto", "mirrored", "multi_worker")
OPTIMIZERS = ("adam", "adadelta", "sgd", "rmsprop", "adagrad", "adamw", "nadam")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear", "elu", "selu", "gelu", "swish", "softplus")
OUTPUT_ACTIVATIONS = ("sigmoid", "hard_sigmoid")  # binary cross-entropy needs outputs in [0, 1]


class ParamsError(StageError):
    """A params.yaml key that is missing, unknown, or has a value outside what is allowed."""


class _Loader(yaml.SafeLoader):
    """yaml.safe_load, but reading 1e-3 as a number, as YAML 1.2 (and `dvc exp run -S`) does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

# repr(value) cut short, however large: YAML aliases can make a 2 KB file a value of millions.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict = 1, 10, 10, 4
_SHOWN.maxstring = _SHOWN.maxother = 60
shown = _SHOWN.repr

Loaded = dict[str, dict]  # the keys before, which a rule may read: {"data": {"dataset": ...}}


class Invalid(Exception):
    """A value a rule refuses, saying more than its words: the problem, or the key inside the
    value (data.mirrors.NAME) and what it allows."""

    def __init__(self, problem: str, allowed: str | None = None, key: str = ""):
        self.problem, self.allowed, self.key = problem, allowed, key


@dataclass(frozen=True)
class Rule:
    """What a key allows, in words and as a test (False, or Invalid saying more); `typed` makes
    the value the stages get. Words and test may read the keys before (data.dataset's sizes)."""

    words: str | Callable[[Loaded], str]
    test: Callable[[object, Loaded], bool]
    typed: Callable[[object, Loaded], object] = lambda value, _: value

    def allowed(self, loaded: Loaded) -> str:
        return self.words(loaded) if callable(self.words) else self.words


def _is_number(value) -> bool:
    # YAML's true/false are ints to Python; as a number they are mistakes.
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def between(low: int, high: int | Callable[[Loaded], int], integer: bool = True) -> Rule:
    """An integer (or any number) from low to high; high may depend on the keys before."""
    top = high if callable(high) else lambda _: high
    return Rule(
        lambda loaded: f"{'an integer' if integer else 'a number'} from {low} to {top(loaded)}",
        lambda value, loaded: (
            (type(value) is int if integer else _is_number(value)) and low <= value <= top(loaded)
        ),
        lambda value, _: int(value) if integer else float(value),
    )


def integers(most: int, high: int) -> Rule:
    """A list of 1 to `most` integers from 1 to `high`: layer widths or channels."""
    return Rule(
        f"a list of 1 to {most} integers from 1 to {high}",
        lambda value, _: (
            isinstance(value, list)
            and 1 <= len(value) <= most
            and all(type(item) is int and 1 <= item <= high for item in value)
        ),
        lambda value, _: tuple(value),
    )


def choice(choices: tuple[str, ...]) -> Rule:
    return Rule(", ".join(choices), lambda value, _: value in choices)


def _dataset(loaded: Loaded):
    """The dataset and its classes: a folder's classes are its class folders."""
    data = loaded["data"]
    if data["dataset"] == IMAGES:
        return Dataset(IMAGES, 0, 0, classes=class_names(Path(data["images"])), class_kind="class")
    return DATASETS[data["dataset"]]


def _images(value, loaded: Loaded) -> bool:
    if not isinstance(value, str) or not value:
        return False
    path = Path(value)
    if path.is_absolute() or not path.resolve().is_relative_to(Path.cwd().resolve()):
        raise Invalid(f"is {shown(value)}, outside the repository")
    if loaded["data"]["dataset"] == IMAGES:
        try:
            class_names(path)
        except FolderError as error:
            raise Invalid(f"is {shown(value)}, {error.problem}", error.allowed) from None
    return True


def size(split: str) -> Rule:
    """data.train_size or data.test_size: all the split's images, or a seeded subset of them."""

    def count(loaded: Loaded) -> int:  # 0: a folder's, known to prepare only (not listed here)
        dataset = DATASETS.get(loaded["data"]["dataset"])
        return getattr(dataset, f"{split}_count") if dataset else 0

    return Rule(
        lambda loaded: (
            f"all, or an integer from 1 to {count(loaded)}"
            if count(loaded)
            else "all, or an integer of 1 or more"
        ),
        lambda value, loaded: (
            value == "all" or (type(value) is int and 1 <= value <= (count(loaded) or math.inf))
        ),
        lambda value, loaded: (count(loaded) or None) if value == "all" else value,
    )


def _mirrors(value, _) -> bool:
    for dataset, sources in value.items() if isinstance(value, dict) else ():
        if dataset not in DATASETS:
            raise Invalid("is not a known dataset", ", ".join(DATASETS), key=dataset)
        if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
            raise Invalid(f"is {shown(sources)}", "a list of URLs or folders", key=dataset)
    return isinstance(value, dict)


def _labels(value, loaded: Loaded) -> list:
    """data.normal_classes as a list of labels: one may stand alone, and a class may be named
    (Fashion-MNIST's "Sneaker", MNIST's "3") instead of given by its label."""
    names = _dataset(loaded).classes
    listed = value if isinstance(value, list) else [value]
    return [names.index(item) if item in names else item for item in listed]


def _classes(value, loaded: Loaded) -> bool:
    if value == "all":
        return True
    labels, count = _labels(value, loaded), len(_dataset(loaded).classes)
    if not all(type(label) is int for label in labels):
        return False
    why = (
        (not labels and "no class")
        or (not all(0 <= label < count for label in labels) and "out of range")
        or (len(set(labels)) != len(labels) and "a class repeated")
        or (len(labels) == count and "every class, where a subset is needed (all says that)")
    )
    if why:
        raise Invalid(f"is {shown(value)}, {why}")
    return True


IMAGES_FOLDER = Rule(
    "a folder inside the repository, as a path relative to it, tracked by DVC (docs/images.md)",
    _images,
)
POSITIVE = Rule(
    "a finite number greater than 0", lambda v, _: _is_number(v) and v > 0, lambda v, _: float(v)
)
FRACTION = between(0, 1, integer=False)
SHARE = Rule(
    "a number greater than 0 and less than 1",
    lambda value, _: _is_number(value) and 0 < value < 1,
    lambda value, _: float(value),
)
BOOLEAN = Rule("true or false", lambda value, _: isinstance(value, bool))
SEED = between(0, 2**32 - 1)
MIRRORS = Rule("a mapping from dataset name to a list of URLs or folders", _mirrors)
# all, or some of the dataset's classes by label or name: a list of distinct ones, or one.
CLASSES = Rule(
    lambda loaded: (
        "all, or a list of distinct labels from 0 to "
        f"{len(_dataset(loaded).classes) - 1} or class names "
        f"({', '.join(_dataset(loaded).classes)}), fewer than all"
    ),
    _classes,
    lambda value, loaded: None if value == "all" else tuple(sorted(_labels(value, loaded))),
)


def key(rule: Rule):
    """A params.yaml key and the rule its value must pass."""
    return field(metadata={"rule": rule})


@dataclass(frozen=True)
class DataParams:
    dataset: str = key(choice((*DATASETS, IMAGES)))
    images: str = key(IMAGES_FOLDER)  # before the keys that read a folder's classes
    mirrors: dict[str, list[str]] = key(MIRRORS)
    # None: all of a folder's images; an IDX dataset's "all" is its count.
    train_size: int | None = key(size("train"))
    test_size: int | None = key(size("test"))
    test_fraction: float = key(SHARE)
    image_size: int = key(between(8, 256))
    invert: bool = key(BOOLEAN)
    seed: int = key(SEED)
    normal_classes: tuple[int, ...] | None = key(CLASSES)  # after dataset: it reads it


@dataclass(frozen=True)
class ModelParams:
    kind: str = key(choice(KINDS))
    encoding_dim: int = key(between(1, lambda loaded: loaded["data"]["image_size"] ** 2))
    hidden: tuple[int, ...] = key(integers(8, 4096))
    # Each convolutional block halves the picture (28x28: 14x14, then 7x7); parse() checks that
    # data.image_size divides so.
    filters: tuple[int, ...] = key(integers(4, 512))
    activation: str = key(choice(ACTIVATIONS))
    output_activation: str = key(choice(OUTPUT_ACTIVATIONS))
    l1: float = key(FRACTION)


@dataclass(frozen=True)
class TrainParams:
    optimizer: str = key(choice(OPTIMIZERS))
    learning_rate: float = key(POSITIVE)
    epochs: int = key(between(1, 10_000))
    batch_size: int = key(between(1, 65_536))
    shuffle: bool = key(BOOLEAN)
    seed: int = key(SEED)
    noise_factor: float = key(FRACTION)
    strategy: str = key(choice(STRATEGIES))
    devices: int = key(between(1, 64))


@dataclass(frozen=True)
class PlotParams:
    n_images: int = key(between(1, lambda loaded: min(100, loaded["data"]["test_size"] or 100)))


@dataclass(frozen=True)
class AnomalyParams:
    score: str = key(choice(SCORES))


@dataclass(frozen=True)
class Params:
    data: DataParams
    model: ModelParams
    train: TrainParams
    plot: PlotParams
    anomaly: AnomalyParams


SECTIONS = {section.name: section.type for section in fields(Params)}


def declared() -> dict[str, dict]:
    """Every key, as section.name, with its rule."""
    return {
        f"{section}.{declaration.name}": dict(declaration.metadata)
        for section, kind in SECTIONS.items()
        for declaration in fields(kind)
    }


def load(path: Path = PARAMS) -> Params:
    """Read and validate the whole of params.yaml; raise ParamsError on the first bad key."""
    try:
        return parse(path.read_text(encoding="utf-8"), path)
    except OSError as error:
        raise ParamsError(f"{path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: is not UTF-8 text") from None


def parse(text: str, path: Path | str = PARAMS) -> Params:
    """Validate a params.yaml given as text (an experiment's, say); `path` names it in errors."""
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ParamsError(f"{path}: is not valid YAML{line}") from None
    if not isinstance(document, dict):
        raise ParamsError(f"{path}: must be a mapping of sections ({', '.join(SECTIONS)})")

    def fail(key: str, problem: str, allowed: str) -> ParamsError:
        return ParamsError(f"{path}: {key} {problem}; allowed: {allowed}")

    # Every section and key is known before any value is read.
    for name, kind in SECTIONS.items():
        expected = [declaration.name for declaration in fields(kind)]
        section = document.get(name)
        if not isinstance(section, dict):
            problem = (
                (name not in document and "is missing")
                or (section is None and "is empty")
                or f"is {shown(section)}, not a mapping"
            )
            raise fail(name, problem, f"a mapping with keys {', '.join(expected)}")
        for found in section:
            if found not in expected:
                found_key = f"{name}.{found if isinstance(found, str) else shown(found)}"
                raise fail(found_key, "is not a known key", ", ".join(expected))

    loaded: Loaded = {name: {} for name in SECTIONS}
    for dotted, declaration in declared().items():
        section, name = dotted.split(".")
        rule = declaration["rule"]
        if name not in document[section]:
            raise fail(dotted, "is missing", rule.allowed(loaded))
        value = document[section][name]
        try:
            if not rule.test(value, loaded):
                raise Invalid(f"is {shown(value)}")
        except Invalid as invalid:
            inner = f"{dotted}.{invalid.key}" if invalid.key else dotted
            raise fail(inner, invalid.problem, invalid.allowed or rule.allowed(loaded)) from None
        typed = loaded[section][name] = rule.typed(value, loaded)
        if dotted == "model.filters" and loaded["model"]["kind"] == "conv":
            check_halves(loaded["data"]["image_size"], len(typed), fail)
        if dotted == "model.l1" and typed > 0 and loaded["model"]["kind"] == "vae":
            # A VAE's code is a distribution that its KL term already pulls towards N(0, I).
            raise fail(dotted, f"is {shown(typed)} with model.kind vae", "0 for a vae")
    return Params(**{name: SECTIONS[name](**values) for name, values in loaded.items()})


def check_halves(side: int, blocks: int, fail: Callable[[str, str, str], ParamsError]) -> None:
    """A convolutional model's blocks each halve the picture, and the decoder doubles it back:
    the side must divide by 2 once per block."""
    if side % 2**blocks:
        raise fail(
            "data.image_size",
            f"is {side} for model.kind conv with {blocks} blocks (model.filters)",
            f"a multiple of {2**blocks}, or fewer model.filters",
        )
