"""params.yaml: the repo's file loads; each bad value is one line naming key, value, allowed."""

import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.common import params
from stages.common.datasets import DATASETS, IMAGES, classes_of
from tests import code_reads
from tests.conftest import BLOCKED_IMPORT, REPO, set_params, stage_without_tensorflow

MISSING = object()  # a change that deletes the key or section


def write_params(path, changes: dict) -> None:
    """The repo's params.yaml with dotted keys (or whole sections) set, added or deleted."""
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    for dotted, value in changes.items():
        *section, key = dotted.split(".")
        parent = document[section[0]] if section else document
        if value is MISSING:
            del parent[key]
        else:
            parent[key] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def load_error(path) -> str:
    with pytest.raises(params.ParamsError) as raised:
        params.load(path)
    return str(raised.value)


def test_the_repo_params_load():
    loaded = params.load(REPO / "params.yaml")
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    assert loaded.model.encoding_dim == document["model"]["encoding_dim"]
    assert loaded.train.learning_rate == document["train"]["learning_rate"]
    assert loaded.data.mirrors == document["data"]["mirrors"]
    assert loaded.plot.n_images == document["plot"]["n_images"]


@pytest.mark.parametrize(
    "dataset, classes, labels",
    [
        ("mnist", "3", (3,)),
        ("fashion_mnist", ["Sneaker", "Bag"], (7, 8)),
        ("mnist", [1, "2"], (1, 2)),
    ],
)
def test_normal_classes_may_name_the_classes(tmp_path, dataset, classes, labels):
    path = tmp_path / "params.yaml"
    write_params(path, {"data.dataset": dataset, "data.normal_classes": classes})
    assert params.load(path).data.normal_classes == labels


def test_the_largest_sample_sizes_are_allowed(tmp_path):
    path = tmp_path / "params.yaml"
    sizes = {"data.dataset": "mnist_sample", "data.train_size": 2000, "data.test_size": 500}
    write_params(path, {**sizes, "plot.n_images": 100})
    assert params.load(path).data.train_size == 2000


INTEGER_1_784 = "an integer from 1 to 784"
WIDTHS = "a list of 1 to 8 integers from 1 to 4096"
CHANNELS = "a list of 1 to 4 integers from 1 to 512"
NUMBER = "a finite number greater than 0"
CLASSES = "all, or a list of distinct labels from 0 to 9 or class names (0, 1, 2, 3, 4, 5, 6, 7, 8,"
DATASET_NAMES = "mnist, fashion_mnist, mnist_sample, fashion_mnist_sample, images"
MNIST = {"data.dataset": "mnist", "data.test_size": 10000}
FOLDER = "a folder inside the repository, as a path relative to it"
EXAMPLE = {"data.dataset": "images"}  # params.yaml's data.images: the example, tests/data/digits
SHARE = "a number greater than 0 and less than 1"

BAD = [
    # (changes, key, what is wrong, what is allowed)
    ({"data.dataset": MISSING}, "data.dataset", "is missing", DATASET_NAMES),
    ({"data.mirrors": MISSING}, "data.mirrors", "is missing", "a mapping from dataset name"),
    ({"data.train_size": MISSING}, "data.train_size", "is missing", "an integer from 1 to"),
    ({"data.test_size": MISSING}, "data.test_size", "is missing", "an integer from 1 to"),
    ({"data.seed": MISSING}, "data.seed", "is missing", "an integer from 0 to 4294967295"),
    ({"model.encoding_dim": MISSING}, "model.encoding_dim", "is missing", INTEGER_1_784),
    ({"model.activation": MISSING}, "model.activation", "is missing", "relu, sigmoid"),
    ({"model.output_activation": MISSING}, "model.output_activation", "is missing", "sigmoid"),
    ({"train.optimizer": MISSING}, "train.optimizer", "is missing", "adam, adadelta"),
    ({"train.learning_rate": MISSING}, "train.learning_rate", "is missing", NUMBER),
    ({"train.epochs": MISSING}, "train.epochs", "is missing", "an integer from 1 to"),
    ({"train.batch_size": MISSING}, "train.batch_size", "is missing", "an integer from 1 to"),
    ({"train.shuffle": MISSING}, "train.shuffle", "is missing", "true or false"),
    ({"train.seed": MISSING}, "train.seed", "is missing", "an integer from 0 to"),
    ({"plot.n_images": MISSING}, "plot.n_images", "is missing", "an integer from 1 to 100"),
    ({"data": MISSING}, "data", "is missing", "keys dataset, images, mirrors, train_size"),
    ({"model": MISSING}, "model", "is missing", "keys kind, encoding_dim, hidden, filters"),
    ({"train": MISSING}, "train", "is missing", "keys optimizer, learning_rate"),
    ({"plot": MISSING}, "plot", "is missing", "keys n_images"),
    ({"anomaly": MISSING}, "anomaly", "is missing", "a mapping with keys score"),
    ({"anomaly.score": "ssim"}, "anomaly.score", "is 'ssim'", "error, transformations, error+"),
    ({"model": [36]}, "model", "is [36], not a mapping", "keys kind, encoding_dim"),
    ({"model.encoding_dim": 0}, "model.encoding_dim", "is 0", INTEGER_1_784),
    ({"model.encoding_dim": -3}, "model.encoding_dim", "is -3", INTEGER_1_784),
    ({"model.encoding_dim": 785}, "model.encoding_dim", "is 785", INTEGER_1_784),
    ({"model.encoding_dim": 3.5}, "model.encoding_dim", "is 3.5", INTEGER_1_784),
    ({"model.encoding_dim": "36"}, "model.encoding_dim", "is '36'", INTEGER_1_784),
    ({"model.encoding_dim": True}, "model.encoding_dim", "is True", INTEGER_1_784),
    ({"train.optimizer": "adamm"}, "train.optimizer", "is 'adamm'", ", ".join(params.OPTIMIZERS)),
    ({"model.activation": "relux"}, "model.activation", "is 'relux'", "relu, sigmoid, tanh"),
    ({"model.output_activation": "relu"}, "model.output_activation", "is 'relu'", "sigmoid"),
    ({"train.epochs": 0}, "train.epochs", "is 0", "an integer from 1 to 10000"),
    ({"train.batch_size": 0}, "train.batch_size", "is 0", "an integer from 1 to 65536"),
    ({"train.learning_rate": 0}, "train.learning_rate", "is 0", NUMBER),
    ({"train.learning_rate": -1}, "train.learning_rate", "is -1", NUMBER),
    ({"train.learning_rate": "fast"}, "train.learning_rate", "is 'fast'", NUMBER),
    ({"train.learning_rate": math.nan}, "train.learning_rate", "is nan", NUMBER),
    ({"train.learning_rate": math.inf}, "train.learning_rate", "is inf", NUMBER),
    ({"train.shuffle": "yes"}, "train.shuffle", "is 'yes'", "true or false"),
    ({"train.seed": -1}, "train.seed", "is -1", "an integer from 0 to 4294967295"),
    ({"data.seed": -1}, "data.seed", "is -1", "an integer from 0 to 4294967295"),
    ({**MNIST, "data.train_size": 60001}, "data.train_size", "is 60001", "from 1 to 60000"),
    ({**MNIST, "data.train_size": 0}, "data.train_size", "is 0", "an integer from 1 to 60000"),
    ({**MNIST, "data.test_size": 10001}, "data.test_size", "is 10001", "from 1 to 10000"),
    (
        {"data.dataset": "mnist_sample", "data.train_size": 2001, "data.test_size": 500},
        "data.train_size",
        "is 2001",
        "an integer from 1 to 2000",
    ),
    (
        {"data.dataset": "mnist_sample", "data.train_size": 2000, "data.test_size": 501},
        "data.test_size",
        "is 501",
        "an integer from 1 to 500",
    ),
    ({"data.dataset": "cifar10"}, "data.dataset", "is 'cifar10'", DATASET_NAMES),
    ({"plot.n_images": 0}, "plot.n_images", "is 0", "an integer from 1 to 100"),
    ({**MNIST, "data.test_size": 5, "plot.n_images": 6}, "plot.n_images", "is 6", "from 1 to 5"),
    ({"model.dropout": 0.5}, "model.dropout", "is not a known key", "kind, encoding_dim, hidden"),
    ({"model.kind": MISSING}, "model.kind", "is missing", "dense, deep, conv, vae"),
    ({"model.kind": "cnn"}, "model.kind", "is 'cnn'", "dense, deep, conv, vae"),
    ({"model.hidden": MISSING}, "model.hidden", "is missing", WIDTHS),
    ({"model.hidden": []}, "model.hidden", "is []", WIDTHS),
    ({"model.hidden": [128, 0]}, "model.hidden", "is [128, 0]", WIDTHS),
    ({"model.hidden": [128, -64]}, "model.hidden", "is [128, -64]", WIDTHS),
    ({"model.hidden": [64] * 9}, "model.hidden", f"is {[64] * 9}", WIDTHS),
    ({"model.hidden": [4097]}, "model.hidden", "is [4097]", WIDTHS),
    ({"model.hidden": [1.5]}, "model.hidden", "is [1.5]", WIDTHS),
    ({"model.hidden": [True]}, "model.hidden", "is [True]", WIDTHS),
    ({"model.hidden": 128}, "model.hidden", "is 128", WIDTHS),
    ({"model.filters": []}, "model.filters", "is []", CHANNELS),
    ({"model.filters": [32] * 5}, "model.filters", f"is {[32] * 5}", CHANNELS),
    ({"model.filters": [0]}, "model.filters", "is [0]", CHANNELS),
    ({"model.l1": -0.001}, "model.l1", "is -0.001", "a number from 0 to 1"),
    ({"model.l1": math.nan}, "model.l1", "is nan", "a number from 0 to 1"),
    ({"model.l1": math.inf}, "model.l1", "is inf", "a number from 0 to 1"),
    ({"model.l1": "sparse"}, "model.l1", "is 'sparse'", "a number from 0 to 1"),
    ({"model.l1": True}, "model.l1", "is True", "a number from 0 to 1"),
    ({"data.image_size": MISSING}, "data.image_size", "is missing", "an integer from 8 to 256"),
    ({"data.image_size": 7}, "data.image_size", "is 7", "an integer from 8 to 256"),
    ({"data.image_size": 257}, "data.image_size", "is 257", "an integer from 8 to 256"),
    ({"data.image_size": "28"}, "data.image_size", "is '28'", "an integer from 8 to 256"),
    (
        {"data.image_size": 8, "model.encoding_dim": 65},
        "model.encoding_dim",
        "is 65",
        "an integer from 1 to 64",
    ),
    # Each convolutional block halves the picture, and the decoder doubles it back.
    (
        {"model.kind": "conv", "data.image_size": 30},
        "data.image_size",
        "is 30 for model.kind conv with 2 blocks (model.filters)",
        "a multiple of 4, or fewer model.filters",
    ),
    (
        {"model.kind": "conv", "model.filters": [8, 8, 8]},
        "data.image_size",
        "is 28 for model.kind conv with 3 blocks (model.filters)",
        "a multiple of 8, or fewer model.filters",
    ),
    (
        {"model.kind": "vae", "model.l1": 0.0001},
        "model.l1",
        "is 0.0001 with model.kind vae",
        "0 for a vae",
    ),
    ({"train.noise_factor": MISSING}, "train.noise_factor", "is missing", "a number from 0 to 1"),
    ({"train.noise_factor": -0.5}, "train.noise_factor", "is -0.5", "a number from 0 to 1"),
    ({"train.noise_factor": 1.5}, "train.noise_factor", "is 1.5", "a number from 0 to 1"),
    ({"train.noise_factor": math.nan}, "train.noise_factor", "is nan", "a number from 0 to 1"),
    ({"train.noise_factor": -math.inf}, "train.noise_factor", "is -inf", "a number from 0 to 1"),
    ({"train.strategy": "ddp"}, "train.strategy", "is 'ddp'", "auto, mirrored, multi_worker"),
    ({"train.strategy": MISSING}, "train.strategy", "is missing", "auto, mirrored, multi_worker"),
    ({"train.devices": 0}, "train.devices", "is 0", "an integer from 1 to 64"),
    ({"train.devices": 65}, "train.devices", "is 65", "an integer from 1 to 64"),
    ({"train.devices": "2"}, "train.devices", "is '2'", "an integer from 1 to 64"),
    ({"data.normal_classes": MISSING}, "data.normal_classes", "is missing", CLASSES),
    ({"data.normal_classes": []}, "data.normal_classes", "is [], no class", CLASSES),
    ({"data.normal_classes": [3, 10]}, "data.normal_classes", "is [3, 10], out of range", CLASSES),
    ({"data.normal_classes": -1}, "data.normal_classes", "is -1, out of range", CLASSES),
    (
        {"data.normal_classes": [3, 3]},
        "data.normal_classes",
        "is [3, 3], a class repeated",
        CLASSES,
    ),
    (
        {"data.normal_classes": list(range(10))},
        "data.normal_classes",
        f"is {list(range(10))}, every class, where a subset is needed (all says that)",
        CLASSES,
    ),
    ({"data.normal_classes": "Trouser"}, "data.normal_classes", "is 'Trouser'", CLASSES),
    (
        {"data.normal_classes": [3, "3"]},
        "data.normal_classes",
        "is [3, '3'], a class repeated",
        CLASSES,
    ),
    ({"data.normal_classes": [1.5]}, "data.normal_classes", "is [1.5]", CLASSES),
    ({"data.mirror": []}, "data.mirror", "is not a known key", "dataset, images, mirrors"),
    ({"data.mirrors": ["http://x/"]}, "data.mirrors", "is ['http://x/']", "a mapping from"),
    ({"data.mirrors": None}, "data.mirrors", "is None", "a mapping from dataset name"),
    (
        {"data.mirrors": {"cifar10": ["x/"]}},
        "data.mirrors.cifar10",
        "is not a known dataset",
        "mnist",
    ),
    ({"data.mirrors": {"mnist": [3]}}, "data.mirrors.mnist", "is [3]", "a list of URLs or"),
    ({"data.mirrors": {"mnist": ["a/", ""]}}, "data.mirrors.mnist", "is ['a/', '']", "a list of"),
    ({"data.mirrors": {"mnist": "http://x/"}}, "data.mirrors.mnist", "is 'http://x/'", "a list"),
    # A folder of your own images, and the keys that read it.
    ({"data.images": MISSING}, "data.images", "is missing", FOLDER),
    (
        {"data.images": "/tmp/digits"},
        "data.images",
        "is '/tmp/digits', outside the repository",
        FOLDER,
    ),
    ({"data.images": "../digits"}, "data.images", "is '../digits', outside the repository", FOLDER),
    ({"data.images": ""}, "data.images", "is ''", FOLDER),
    ({**EXAMPLE, "data.images": "nowhere"}, "data.images", "is 'nowhere', not a folder", "one"),
    (
        {**EXAMPLE, "data.images": "tests/data/mnist_sample"},
        "data.images",
        "is 'tests/data/mnist_sample', no class folders",
        "one subfolder of images per class",
    ),
    ({"data.train_size": "most"}, "data.train_size", "is 'most'", "all, or an integer from 1"),
    ({**EXAMPLE, "data.test_size": 0}, "data.test_size", "is 0", "all, or an integer of 1 or more"),
    ({"data.test_fraction": MISSING}, "data.test_fraction", "is missing", SHARE),
    ({"data.test_fraction": 0}, "data.test_fraction", "is 0", SHARE),
    ({"data.test_fraction": 1}, "data.test_fraction", "is 1", SHARE),
    ({"data.test_fraction": True}, "data.test_fraction", "is True", SHARE),
    ({"data.invert": "yes"}, "data.invert", "is 'yes'", "true or false"),
    ({**EXAMPLE, "data.normal_classes": "seven"}, "data.normal_classes", "is 'seven'", CLASSES),
]


@pytest.mark.parametrize(
    "changes, key, problem, allowed", BAD, ids=[f"{key} {problem}" for _, key, problem, _ in BAD]
)
def test_bad_value_is_one_line_naming_key_value_and_allowed(
    tmp_path, changes, key, problem, allowed
):
    path = tmp_path / "params.yaml"
    write_params(path, changes)
    message = load_error(path)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key} {problem}; allowed: ")
    assert allowed in message.split("; allowed: ", 1)[1]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("data:\n  dataset: mnist\n\tseed: 0\n", "is not valid YAML at line 3"),
        ("data: {dataset: mnist\nmodel: {}\n", "is not valid YAML at line 2"),
        ("", "must be a mapping of sections (data, model, train, plot, anomaly)"),
        ("- data\n- model\n", "must be a mapping of sections (data, model, train, plot, anomaly)"),
        ("mnist\n", "must be a mapping of sections (data, model, train, plot, anomaly)"),
    ],
    ids=["tab", "unclosed-brace", "empty", "list", "scalar"],
)
def test_a_file_that_is_not_yaml_or_not_a_mapping_is_reported(tmp_path, text, problem):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert load_error(path) == f"{path}: {problem}"


@pytest.mark.parametrize(
    "key",
    ["model.encoding_dim", "data.mirrors.mnist", "train"],
    ids=["a value", "a mapping's value", "a section"],
)
def test_a_value_that_yaml_aliases_blow_up_is_shown_cut_short(tmp_path, key):
    # Nine lists of nine references each: 387 million strings when written out, from 1 KB.
    laughs = ['lol: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        laughs.append(f"lol{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    text = (REPO / "params.yaml").read_text()
    section, _, name = key.partition(".")
    if name == "mirrors.mnist":
        text = text.replace("    mnist:\n", "    mnist: *a8\n    unused:\n", 1)
    elif name:
        text = re.sub(rf"(?m)^  {name}: .*$", f"  {name}: *a8", text, count=1)
    else:
        text = re.sub(rf"(?m)^{section}:$", f"{section}: *a8\nunused:", text, count=1)
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(laughs) + "\n" + text)
    assert len(path.read_bytes()) < 4000
    message = load_error(path)
    assert message.startswith(f"{path}: {key} is [[")
    assert len(message) < 400, len(message)


def test_a_missing_file_is_reported(tmp_path):
    path = tmp_path / "params.yaml"
    assert load_error(path) == f"{path}: cannot be read (No such file or directory)"


def test_a_file_that_is_not_utf8_text_is_reported(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"data:\n  dataset: mnist\xff\n")
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message


@given(encoding_dim=st.integers())
def test_encoding_dim_loads_exactly_when_between_1_and_784(tmp_path_factory, encoding_dim):
    path = tmp_path_factory.getbasetemp() / "encoding_dim.yaml"
    write_params(path, {"model.encoding_dim": encoding_dim})
    if 1 <= encoding_dim <= 784:
        assert params.load(path).model.encoding_dim == encoding_dim
    else:
        assert load_error(path).startswith(f"{path}: model.encoding_dim is {encoding_dim};")


@pytest.mark.parametrize(
    "name, key, value, allowed",
    [
        ("prepare", "data.train_size", 0, "all, or an integer from 1 to 2000"),
        ("train", "model.encoding_dim", 0, INTEGER_1_784),
        # predict reads no key, but checks the whole file as every stage does
        ("predict", "train.epochs", 0, "an integer from 1 to 10000"),
        ("plot", "plot.n_images", 0, "an integer from 1 to 100"),
    ],
)
def test_stage_with_bad_params_exits_1_with_one_line_before_tensorflow_and_no_outputs(
    raw_sample, name, key, value, allowed
):
    set_params(raw_sample / "params.yaml", {key: value})
    # Importing TensorFlow or Keras would raise: the stage stops on the params before either.
    result = stage_without_tensorflow(name, raw_sample)
    assert result.returncode == 1
    assert result.stderr == f"error: params.yaml: {key} is {value}; allowed: {allowed}\n"
    assert not (raw_sample / "data" / "prepared").exists()
    assert not (raw_sample / "models").exists()
    assert not (raw_sample / "reports").exists()


@pytest.mark.parametrize("name", ["train", "predict"])
def test_with_good_params_the_same_stage_gets_as_far_as_importing_tensorflow(raw_sample, name):
    # The control for the test above: TensorFlow is really blocked, and these stages import it.
    result = stage_without_tensorflow(name, raw_sample)
    assert result.returncode == 1
    assert "ModuleNotFoundError: " + BLOCKED_IMPORT.format("keras") in result.stderr


def test_exponent_notation_is_a_number(tmp_path):
    # PyYAML alone reads 1e-3 as a string; users and `dvc exp run -S` write it that way.
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text().replace("0.001", "1e-3"))
    assert params.load(path).train.learning_rate == 0.001


# A strategy for the valid values of each key the stages read.
VALID = {
    "data.dataset": st.sampled_from([*sorted(DATASETS), IMAGES]),
    "data.images": st.just("tests/data/digits"),  # the example: ten class folders, 0 to 9
    "data.train_size": st.one_of(st.integers(1, 2000), st.just("all")),
    "data.test_size": st.one_of(st.integers(1, 500), st.just("all")),
    "data.test_fraction": st.floats(0.01, 0.99),
    "data.image_size": st.sampled_from([8, 20, 28, 30, 56, 64, 256]),
    "data.invert": st.booleans(),
    "data.seed": st.integers(0, 2**32 - 1),
    "data.normal_classes": st.one_of(
        st.just("all"),
        st.integers(0, 9),
        st.lists(st.integers(0, 9), min_size=1, max_size=9, unique=True),
        # Class names: a digit's for MNIST, a garment's for Fashion-MNIST, valid for one of them.
        st.sampled_from(["3", "Trouser", ["Sneaker", "Bag"], ["1", 2]]),
    ),
    "model.kind": st.sampled_from(params.KINDS),
    "model.encoding_dim": st.integers(1, 784),  # 784 or less: valid at the sizes but for 8 and 20
    "model.hidden": st.lists(st.integers(1, 4096), min_size=1, max_size=8),
    "model.filters": st.lists(st.integers(1, 512), min_size=1, max_size=4),
    "model.activation": st.sampled_from(params.ACTIVATIONS),
    "model.output_activation": st.sampled_from(params.OUTPUT_ACTIVATIONS),
    "model.l1": st.one_of(st.just(0), st.floats(0, 1)),
    "train.optimizer": st.sampled_from(params.OPTIMIZERS),
    "train.learning_rate": st.floats(1e-8, 10),
    "train.epochs": st.integers(1, 10_000),
    "train.batch_size": st.integers(1, 65_536),
    "train.shuffle": st.booleans(),
    "train.seed": st.integers(0, 2**32 - 1),
    "train.noise_factor": st.one_of(st.just(0), st.floats(0, 1)),
    "train.strategy": st.sampled_from(params.STRATEGIES),
    "train.devices": st.integers(1, 64),
    "plot.n_images": st.integers(1, 100),
    "anomaly.score": st.sampled_from(params.SCORES),
}
# What a user might write instead: a value just outside some key's range or of the wrong kind, or
# anything at all. Strings of letters only, so that YAML reads them back as strings.
JUNK = st.one_of(
    st.sampled_from(
        [MISSING, None, True, 0, 1, -1, 65, 101, 501, 785, 2001, 10_001, 60_001, 65_537, 2**32]
        + ["", "/tmp", "..", "tests/data/mnist_sample", "all"]
        + [-0.5, 1.5, math.inf, math.nan, "1", "yes", "adamm", "vae", "ddp", [], [1], [0], [1] * 9]
        + [[32, 32, 32], [32] * 5, [1.5], {"a": 1}, 7, 257]
    ),
    st.integers(),
    st.floats(),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzAEIOU_-", max_size=8),
)


def whole(value, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def widths(value, most: int, high: int) -> bool:
    return type(value) is list and 1 <= len(value) <= most and all(whole(v, 1, high) for v in value)


def fraction(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and 0 <= value <= 1


def is_valid(key: str, drawn: dict) -> bool:
    """Whether drawn[key] is allowed: the ranges the README gives, the choices params lists."""
    value = drawn[key]
    dataset = drawn["data.dataset"] if drawn["data.dataset"] in [*DATASETS, IMAGES] else None
    counts = {"train": math.inf, "test": math.inf}  # a folder's: known to prepare only
    if dataset in DATASETS:
        counts = {"train": DATASETS[dataset].train_count, "test": DATASETS[dataset].test_count}
    match key:
        case _ if value is MISSING:
            return False
        case "data.dataset":
            return dataset is not None
        case "data.images":
            return (
                type(value) is str
                and inside_repo(value)
                and (dataset != IMAGES or has_class_folders(Path(value)))
            )
        case "data.image_size":
            return whole(value, 8, 256)
        case "data.train_size" | "data.test_size":
            split = key.removeprefix("data.").removesuffix("_size")
            return dataset is not None and (value == "all" or whole(value, 1, counts[split]))
        case "data.test_fraction":
            return type(value) in (int, float) and 0 < value < 1
        case "data.invert":
            return type(value) is bool
        case "data.seed" | "train.seed":
            return whole(value, 0, 2**32 - 1)
        case "data.normal_classes":
            # Where an earlier key is bad, that one is refused first: any folder does here.
            folder = drawn["data.images"] if is_valid("data.images", drawn) else "tests/data/digits"
            labels = class_labels(value, dataset, folder)
            count = len(classes_of(dataset, folder).names) if dataset else 10
            return value == "all" or (
                0 < len(labels) < count
                and all(whole(label, 0, count - 1) for label in labels)
                and len(set(labels)) == len(labels)
            )
        case "model.kind":
            return value in params.KINDS
        case "model.encoding_dim":
            return whole(value, 1, image_side(drawn) ** 2)
        case "model.hidden":
            return widths(value, 8, 4096)
        case "model.filters":
            return widths(value, 4, 512) and not halves_badly(drawn)
        case "model.l1":
            # A VAE's own KL term regularizes its code: it takes no L1 penalty.
            return fraction(value) and not (drawn["model.kind"] == "vae" and value > 0)
        case "train.noise_factor":
            return fraction(value)
        case "train.strategy":
            return value in params.STRATEGIES
        case "train.devices":
            return whole(value, 1, 64)
        case "model.activation":
            return value in params.ACTIVATIONS
        case "model.output_activation":
            return value in params.OUTPUT_ACTIVATIONS
        case "train.optimizer":
            return value in params.OPTIMIZERS
        case "train.learning_rate":
            return type(value) in (int, float) and math.isfinite(value) and value > 0
        case "train.epochs":
            return whole(value, 1, 10_000)
        case "train.batch_size":
            return whole(value, 1, 65_536)
        case "train.shuffle":
            return type(value) is bool
        case "anomaly.score":
            return value in params.SCORES
        case "plot.n_images":
            test_size = drawn["data.test_size"] if is_valid("data.test_size", drawn) else 0
            return whole(value, 1, min(100, 100 if test_size == "all" else test_size))


def inside_repo(value: str) -> bool:
    return value != "" and not Path(value).is_absolute() and ".." not in Path(value).parts


def has_class_folders(folder: Path) -> bool:
    """A folder with a subfolder that is not hidden: a folder dataset of one class, at least."""
    return folder.is_dir() and any(
        sub.is_dir() and not sub.name.startswith(".") for sub in folder.iterdir()
    )


def class_labels(value, dataset, images: str = "tests/data/digits") -> list:
    """data.normal_classes as labels: each class name of the dataset (or of the folder, for
    images) as its place in the list."""
    names = classes_of(dataset, images).names if dataset else ()
    listed = value if type(value) is list else [value]
    return [names.index(item) if item in names else item for item in listed]


def image_side(drawn: dict) -> int:
    """data.image_size where it is valid (where it is not, it is the first bad key anyway)."""
    return drawn["data.image_size"] if is_valid("data.image_size", drawn) else 256


def halves_badly(drawn: dict) -> bool:
    """A conv model whose blocks would not halve the picture evenly: refused as data.image_size,
    when model.filters is read (the keys before are valid, or they would be refused first)."""
    filters = drawn["model.filters"]
    return (
        drawn["model.kind"] == "conv"
        and widths(filters, 4, 512)
        and image_side(drawn) % 2 ** len(filters) != 0
    )


UNKNOWN = ["data.mirror", "model.dropout", "train.momentum"]  # keys no section has


@settings(max_examples=300)  # each takes milliseconds
@given(
    data=st.data(),
    spoiled=st.lists(st.sampled_from([*VALID, *UNKNOWN]), min_size=1, max_size=2, unique=True),
)
def test_any_params_document_loads_exactly_or_fails_on_one_line_naming_its_first_bad_key(
    tmp_path_factory, data, spoiled
):
    drawn = {
        key: data.draw(JUNK if key in spoiled else valid, label=key) for key, valid in VALID.items()
    }
    unknown = [key for key in UNKNOWN if key in spoiled]
    path = tmp_path_factory.getbasetemp() / "drawn.yaml"
    write_params(path, {**drawn, **dict.fromkeys(unknown, 1)})

    # Unknown keys are found before any value is read; then values, in the order of the file.
    bad = unknown + [key for key in drawn if not is_valid(key, drawn)]
    if not bad:  # the junk drawn happened to be allowed
        loaded = params.load(path)
        for key, value in drawn.items():
            section, name = key.split(".")
            expected = tuple(value) if type(value) is list else value
            if key == "data.normal_classes":  # all, or the labels in order
                dataset = drawn["data.dataset"]
                labels = class_labels(value, dataset, drawn["data.images"])
                expected = None if value == "all" else tuple(sorted(labels))
            if value == "all" and key in ("data.train_size", "data.test_size"):
                split = key.removeprefix("data.").removesuffix("_size")
                expected = getattr(DATASETS.get(drawn["data.dataset"]), f"{split}_count", None)
            assert getattr(getattr(loaded, section), name) == expected, key
        return
    first = bad[0]
    if first == "model.filters" and halves_badly(drawn):
        blocks = len(drawn[first])
        side = drawn["data.image_size"]
        first = "data.image_size"
        problem = f"is {side} for model.kind conv with {blocks} blocks (model.filters)"
    elif first in unknown:
        problem = "is not a known key"
    elif drawn[first] is MISSING:
        problem = "is missing"
    elif first == "model.l1" and fraction(drawn[first]):  # allowed, but not for a VAE
        problem = f"is {float(drawn[first])!r} with model.kind vae"
    else:
        problem = f"is {drawn[first]!r}"
    message = load_error(path)
    assert "\n" not in message
    # Some rules say why after the value: "is [3, 3], a class repeated".
    expected = re.escape(f"{path}: {first} {problem}") + r"(, [^;]+)?; allowed: "
    assert re.match(expected, message), (message, bad)


@pytest.mark.parametrize("stage", yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
def test_dvc_yaml_lists_exactly_the_params_each_stages_code_reads(stage):
    read = code_reads.params_read(stage)
    listed = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage].get("params", [])
    assert set(listed) == read


def test_every_declared_key_is_in_params_yaml():
    document = yaml.safe_load((REPO / "params.yaml").read_text())
    assert {section: set(keys) for section, keys in document.items()} == {
        section: {
            dotted.split(".")[1] for dotted in params.declared() if dotted.startswith(f"{section}.")
        }
        for section in document
    }


def test_the_default_mirrors_are_folders_or_https():
    mirrors = params.load(REPO / "params.yaml").data.mirrors
    urls = [mirror for sources in mirrors.values() for mirror in sources if "://" in mirror]
    assert urls and all(url.startswith("https://") for url in urls), urls
