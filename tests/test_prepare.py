"""The prepare stage: raw IDX files in, float32 images in [0, 1] and their labels out."""

import gzip

import numpy as np
import pytest

from stages import idx, prepare
from stages.common.datasets import TEST_IMAGES_GZ, TEST_LABELS_GZ, TRAIN_IMAGES_GZ, TRAIN_LABELS_GZ
from stages.common.paths import PARAMS, PREPARED, RAW
from stages.common.runner import StageError
from tests.conftest import set_params


@pytest.fixture(autouse=True)
def in_raw_sample(raw_sample, monkeypatch):
    """Each test runs in a workspace with the sample in data/raw."""
    monkeypatch.chdir(raw_sample)


def prepared(name: str) -> np.ndarray:
    return np.load(PREPARED / f"{name}.npy", allow_pickle=False)


def train_subset(seed: int) -> tuple[np.ndarray, np.ndarray]:
    set_params(PARAMS, {"data.train_size": 100, "data.seed": seed})
    prepare.main()
    return prepared("train_images"), prepared("train_labels")


@pytest.mark.parametrize(
    "split, images_file, labels_file, count",
    [
        ("train", TRAIN_IMAGES_GZ, TRAIN_LABELS_GZ, 2000),
        ("test", TEST_IMAGES_GZ, TEST_LABELS_GZ, 500),
    ],
    ids=["train", "test"],
)
def test_whole_split_is_scaled_flattened_and_aligned(split, images_file, labels_file, count):
    prepare.main()
    images, labels = prepared(f"{split}_images"), prepared(f"{split}_labels")
    assert (images.dtype, images.shape) == (np.float32, (count, 784))
    assert (labels.dtype, labels.shape) == (np.uint8, (count,))
    assert images.min() >= 0 and images.max() <= 1
    assert images.max() == 1  # 255 maps to 1, not 255
    raw_images = idx.read(RAW / images_file)
    np.testing.assert_array_equal(images, raw_images.reshape(count, 784) / np.float32(255))
    np.testing.assert_array_equal(labels, idx.read(RAW / labels_file))


def test_a_train_subset_is_real_images_with_their_own_labels():
    images, labels = train_subset(seed=0)
    assert images.shape == (100, 784) and labels.shape == (100,)
    raw_images = idx.read(RAW / TRAIN_IMAGES_GZ).reshape(2000, 784) / np.float32(255)
    raw_labels = idx.read(RAW / TRAIN_LABELS_GZ)
    index_of = {image.tobytes(): index for index, image in enumerate(raw_images)}
    indices = [index_of[image.tobytes()] for image in images]
    assert indices == sorted(set(indices))  # distinct, and in file order
    np.testing.assert_array_equal(labels, raw_labels[indices])


def test_the_same_seed_picks_the_same_rows_and_another_seed_others():
    first, first_labels = train_subset(seed=0)
    again, again_labels = train_subset(seed=0)
    other, _ = train_subset(seed=1)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first_labels, again_labels)
    assert not np.array_equal(first, other)


def test_the_test_split_is_untouched_by_a_train_subset():
    train_subset(seed=0)
    assert prepared("test_images").shape == (500, 784)


def test_one_class_training_keeps_exactly_the_normal_classes_and_the_whole_test_set():
    prepare.main()
    all_images, all_labels = prepared("train_images"), prepared("train_labels")
    test_images = prepared("test_images")
    set_params(PARAMS, {"data.normal_classes": [7, 3]})
    prepare.main()
    images, labels = prepared("train_images"), prepared("train_labels")
    kept = np.isin(all_labels, [3, 7])
    np.testing.assert_array_equal(labels, all_labels[kept])
    np.testing.assert_array_equal(images, all_images[kept])  # in file order, with their images
    assert set(labels) == {3, 7} and len(labels) == 415  # of the sample's 2000
    np.testing.assert_array_equal(prepared("test_images"), test_images)


def test_normal_classes_that_leave_no_training_image_are_one_line_and_write_nothing():
    set_params(PARAMS, {"data.train_size": 3, "data.normal_classes": [8]})
    assert prepare_error() == (
        "data.normal_classes [8] leaves none of the 3 training images; "
        "allowed: a larger data.train_size"
    )
    assert not PREPARED.exists()


def prepare_error() -> str:
    with pytest.raises(StageError) as raised:
        prepare.main()
    return str(raised.value)


def test_images_and_labels_of_different_counts_name_both_files():
    idx.write(RAW / TRAIN_LABELS_GZ, idx.read(RAW / TRAIN_LABELS_GZ)[:1999])
    message = prepare_error()
    assert f"data/raw/{TRAIN_IMAGES_GZ} has 2000 images" in message
    assert f"{TRAIN_LABELS_GZ} has 1999 labels" in message
    assert not PREPARED.exists()


def test_images_of_the_wrong_size_are_refused():
    idx.write(RAW / TRAIN_IMAGES_GZ, np.zeros((2000, 27, 29), np.uint8))
    assert prepare_error() == (
        f"data/raw/{TRAIN_IMAGES_GZ}: expected 28x28 uint8 images, "
        "got shape (2000, 27, 29) of uint8"
    )


def test_labels_that_are_not_a_list_are_refused():
    idx.write(RAW / TEST_LABELS_GZ, idx.read(RAW / TEST_LABELS_GZ).reshape(50, 10))
    assert prepare_error() == (
        f"data/raw/{TEST_LABELS_GZ}: expected a 1-d array of uint8 labels, "
        "got shape (50, 10) of uint8"
    )


def test_an_idx_file_with_a_wrong_magic_number_is_an_idx_error():
    (RAW / TRAIN_IMAGES_GZ).write_bytes(gzip.compress(b"\x00\x00\x07\x03" + bytes(12)))
    with pytest.raises(idx.IdxError) as raised:
        prepare.main()
    assert (
        str(raised.value) == f"data/raw/{TRAIN_IMAGES_GZ}: not an IDX file (magic number 00000703)"
    )


def test_a_missing_raw_file_says_which():
    (RAW / TEST_LABELS_GZ).unlink()
    assert prepare_error() == f"data/raw/{TEST_LABELS_GZ}: file not found"


def test_asking_for_more_images_than_the_raw_files_hold_is_refused():
    # params.yaml says full MNIST, but data/raw still holds the 2000-image sample.
    set_params(PARAMS, {"data.dataset": "mnist", "data.train_size": 5000})
    assert prepare_error() == (
        f"data/raw/{TRAIN_IMAGES_GZ} has 2000 images, fewer than the 5000 asked for"
    )


def test_a_bad_test_split_leaves_the_previous_train_split_untouched(raw_sample, monkeypatch):
    monkeypatch.chdir(raw_sample)
    prepare.main()
    previous = (raw_sample / "data/prepared/train_images.npy").read_bytes()
    set_params(raw_sample / "params.yaml", {"data.train_size": 1000})
    (raw_sample / "data/raw/t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(StageError, match="corrupt or truncated"):
        prepare.main()
    assert (raw_sample / "data/prepared/train_images.npy").read_bytes() == previous
