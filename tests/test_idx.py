"""The IDX codec: what goes in comes out, and every kind of broken file gets a clear IdxError."""

import gzip
import re
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from stages import idx
from tests.conftest import SAMPLE


def same_array(decoded: np.ndarray, original: np.ndarray) -> bool:
    """Same dtype, shape and bits (so NaN and -0.0 count as round-tripped too)."""
    return (
        decoded.dtype == original.dtype
        and decoded.shape == original.shape
        and decoded.tobytes() == original.tobytes()
    )


@pytest.mark.parametrize("dtype", idx.DTYPES.values(), ids=str)
def test_each_dtype_round_trips(dtype):
    array = (np.arange(24) - 12).astype(dtype).reshape(2, 3, 4)
    assert same_array(idx.decode(idx.encode(array)), array)


@given(arrays(st.sampled_from(list(idx.DTYPES.values())), array_shapes(min_dims=1, min_side=0)))
def test_any_array_round_trips(array):
    assert same_array(idx.decode(idx.encode(array)), array)


def test_little_endian_arrays_are_written_big_endian_with_the_same_values():
    array = np.array([1, -2, 70000], dtype="<i4")
    data = idx.encode(array)
    assert data[:4] == b"\x00\x00\x0c\x01"
    assert idx.decode(data).tolist() == [1, -2, 70000]


@pytest.mark.parametrize(
    "array",
    [np.zeros(3, np.int64), np.zeros(3, np.float16), np.zeros(3, bool), np.array(5, np.uint8)],
    ids=["int64", "float16", "bool", "0-d"],
)
def test_encode_refuses_what_idx_cannot_hold(array):
    with pytest.raises(ValueError, match="IDX cannot hold"):
        idx.encode(array)


def test_write_then_read_through_gzip(tmp_path):
    array = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    path = tmp_path / "images-idx3-ubyte.gz"
    idx.write(path, array)
    assert gzip.decompress(path.read_bytes()) == idx.encode(array)
    assert same_array(idx.read(path), array)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_writing_the_same_array_twice_gives_the_same_bytes(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    idx.write(tmp_path / "a.gz", array)
    idx.write(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_the_sample_files_decode_to_mnist_shapes():
    images = idx.read(SAMPLE / "train-images-idx3-ubyte.gz")
    labels = idx.read(SAMPLE / "train-labels-idx1-ubyte.gz")
    assert (images.shape, images.dtype) == ((2000, 28, 28), np.uint8)
    assert (labels.shape, labels.dtype) == ((2000,), np.uint8)
    assert set(labels.tolist()) == set(range(10))


def header(type_code: int, *shape: int) -> bytes:
    return struct.pack(f">BBBB{len(shape)}I", 0, 0, type_code, len(shape), *shape)


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "not an IDX file (magic number missing)"),
        (b"\x1f\x8b\x08\x00" + bytes(20), "not an IDX file (magic number 1f8b0800)"),
        (b"\x00\x00\x07\x01" + bytes(8), "not an IDX file (magic number 00000701)"),
        (b"\x00\x00\x08", "not an IDX file (magic number 000008)"),
        (b"\x00\x00\x08\x00" + bytes(4), "not an IDX file (magic number 00000800)"),
        (header(0x08, 2, 3)[:10], "header is cut short (10 of 12 bytes)"),
        (header(0x08, 2, 3) + bytes(5), "17 bytes, but its header (shape (2, 3)) needs 18"),
        (header(0x08, 2, 3) + bytes(7), "19 bytes, but its header (shape (2, 3)) needs 18"),
        (header(0x0C, 2) + bytes(7), "15 bytes, but its header (shape (2,)) needs 16"),
    ],
    ids=[
        "empty",
        "gzip-not-gunzipped",
        "unknown-type",
        "magic-cut-short",
        "ndim-0",
        "header-cut-short",
        "too-few-bytes",
        "too-many-bytes",
        "int32-too-few-bytes",
    ],
)
def test_broken_idx_data_is_named_and_explained(data, problem):
    with pytest.raises(idx.IdxError) as raised:
        idx.decode(data, "data/raw/x.gz")
    assert str(raised.value) == f"data/raw/x.gz: {problem}"


def test_broken_idx_inside_a_good_gzip_names_the_file(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(header(0x08, 5) + bytes(4)))
    with pytest.raises(idx.IdxError) as raised:
        idx.read(path)
    assert str(raised.value) == f"{path}: 12 bytes, but its header (shape (5,)) needs 13"


@pytest.fixture
def good_gz(tmp_path):
    path = tmp_path / "good.gz"
    idx.write(path, np.arange(1000, dtype=np.uint8).reshape(10, 100))
    return path


GOOD_GZ = gzip.compress(idx.encode(np.arange(1000, dtype=np.uint8)), mtime=0)


@given(length=st.integers(0, len(GOOD_GZ) - 1))
def test_any_truncated_gzip_is_an_idx_error_naming_the_file(tmp_path_factory, length):
    path = tmp_path_factory.mktemp("cut") / "cut.gz"
    path.write_bytes(GOOD_GZ[:length])
    with pytest.raises(idx.IdxError, match=f"^{re.escape(str(path))}: "):
        idx.read(path)


def test_truncated_gzip_says_corrupt_or_truncated(good_gz):
    good_gz.write_bytes(good_gz.read_bytes()[:-20])
    with pytest.raises(idx.IdxError) as raised:
        idx.read(good_gz)
    assert str(raised.value).startswith(f"{good_gz}: corrupt or truncated gzip file (")


def test_gzip_with_a_damaged_checksum_says_corrupt(good_gz):
    data = bytearray(good_gz.read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 of the content
    good_gz.write_bytes(bytes(data))
    with pytest.raises(idx.IdxError) as raised:
        idx.read(good_gz)
    assert str(raised.value).startswith(f"{good_gz}: corrupt or truncated gzip file (")


def test_garbage_that_is_not_gzip_says_corrupt(tmp_path):
    path = tmp_path / "page.gz"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(idx.IdxError) as raised:
        idx.read(path)
    assert str(raised.value).startswith(f"{path}: corrupt or truncated gzip file (")


def test_missing_file_says_not_found(tmp_path):
    path = tmp_path / "absent.gz"
    with pytest.raises(idx.IdxError) as raised:
        idx.read(path)
    assert str(raised.value) == f"{path}: file not found"
