"""The IDX format of the MNIST files: a magic number, the dimensions, then the values, gzipped."""

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from stages.common.files import atomic_path
from stages.common.runner import StageError

# The third byte of the magic number names the element type; all values are big-endian.
DTYPE_NAMES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
DTYPES = {code: np.dtype(name) for code, name in DTYPE_NAMES.items()}
TYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}


class IdxError(StageError):
    """A file that is not valid gzipped IDX: corrupt, truncated, or not matching its own header."""


def decode(data: bytes, source: str = "IDX data") -> np.ndarray:
    """Decode raw IDX bytes, checking the magic number and that the size matches the header."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in DTYPES or data[3] == 0:
        raise IdxError(f"{source}: not an IDX file (magic number {data[:4].hex() or 'missing'})")
    dtype, ndim = DTYPES[data[2]], data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IdxError(f"{source}: header is cut short ({len(data)} of {header_size} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    total = header_size + math.prod(shape) * dtype.itemsize
    if len(data) != total:
        raise IdxError(f"{source}: {len(data)} bytes, but its header (shape {shape}) needs {total}")
    return np.frombuffer(data, dtype, offset=header_size).reshape(shape)


def encode(array: np.ndarray) -> bytes:
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in TYPE_CODES or not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX cannot hold a {array.ndim}-d array of {array.dtype}")
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, TYPE_CODES[dtype], array.ndim, *array.shape)
    return header + array.astype(dtype).tobytes()


def gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise IdxError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        raise IdxError(f"{path}: corrupt or truncated gzip file ({error})") from None


def read(path: Path) -> np.ndarray:
    return decode(gunzip(path), str(path))


def write(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary:  # mtime=0: the same bytes from run to run
        temporary.write_bytes(gzip.compress(encode(array), mtime=0))
