"""Download the dataset's four IDX .gz files into data/raw/, each verified by its SHA-256, from
$DATA_MIRROR or params.yaml's mirrors (how a source fails and is retried: docs/pipeline.md#data)."""

import hashlib
import os
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from stages.common import datasets, params
from stages.common.datasets import TEST_IMAGES_GZ, TEST_LABELS_GZ, TRAIN_IMAGES_GZ, TRAIN_LABELS_GZ
from stages.common.files import atomic_folder
from stages.common.paths import RAW
from stages.common.runner import StageError, gist, run, seconds_from_environment

NOTHING = "nothing to download for data.dataset images: prepare reads the folder of data.images"
ATTEMPTS = 3
CHUNK_BYTES = 1 << 16
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib's setting for a gzip header and trailer
PROGRESS = {"unit": "B", "unit_scale": True, "leave": False, "disable": None}  # on a terminal only
# SHA-256 of each file's decompressed bytes: mirrors recompress, the content is what counts.
CHECKSUMS = {
    "mnist": {
        TRAIN_IMAGES_GZ: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        TRAIN_LABELS_GZ: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        TEST_IMAGES_GZ: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        TEST_LABELS_GZ: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        TRAIN_IMAGES_GZ: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        TRAIN_LABELS_GZ: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        TEST_IMAGES_GZ: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        TEST_LABELS_GZ: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    "mnist_sample": {
        TRAIN_IMAGES_GZ: "729d340c0177402770b27c04f817dfb40ed8844459b35a9f11ae21067b05cf19",
        TRAIN_LABELS_GZ: "90795ea2219655a7281c0d6756d0ae8a33bebac7ec84bac89bbdcc5e3baa9f8c",
        TEST_IMAGES_GZ: "de0a55d8eb2a23fce4f596c5234b08b9c8ee685583a2b0e52f3a78eca48f9d89",
        TEST_LABELS_GZ: "60e902e82445d902e245e1b039469f36936d63cb28e81527a7bbba247c240af3",
    },
    "fashion_mnist_sample": {
        TRAIN_IMAGES_GZ: "71a9f8cec24060d6752b3e4940ce6d6fd729334afa47b735dd553481aa83b53e",
        TRAIN_LABELS_GZ: "8983259dfbc9f185f92698916f7daf361704b43ba7d19568cc7bcdeefdc1bece",
        TEST_IMAGES_GZ: "c9bd0ed7148856eb2287d902861921296d6c36d95a5113341a35554343e84123",
        TEST_LABELS_GZ: "9f5f7b9143df7bffff73a8bf7d8a53545dbf787f86e5e195c64401d2c6f8f372",
    },
}


@dataclass(frozen=True)
class Limits:
    timeout: float  # seconds for each attempt to bring the whole file
    retry_delay: float  # seconds before the second attempt, twice that before the third


class SourceFailed(Exception):
    """Why one source could not supply one file; the next source is tried."""


class SourceDown(SourceFailed):
    """A source that did not answer after every retry: the other files do not wait for it again."""


class TooSlow(TimeoutError):
    """A source that answers, but does not send the whole file within DATA_TIMEOUT."""


@dataclass(frozen=True)
class Expected:
    """A file as the dataset defines it: the SHA-256 and size of its decompressed content."""

    name: str
    sha256: str
    size: int

    @property
    def most_compressed(self) -> int:
        # gzip stores what it cannot compress as it is, with a few bytes per 32 KB block.
        return self.size + self.size // 1000 + 1024


def main() -> None:
    data = params.load().data
    if data.dataset == datasets.IMAGES:  # nothing to download: prepare reads the folder
        with atomic_folder(RAW) as staging:
            (staging / "README").write_text(f"{NOTHING}\n")
        print(f"{RAW}: {NOTHING}")
        return
    limits = Limits(
        timeout=seconds_from_environment("DATA_TIMEOUT", default=60.0),
        retry_delay=seconds_from_environment("DATA_RETRY_DELAY", default=1.0),
    )
    sources = sources_for(data)
    down: dict[str, str] = {}  # source -> why it did not answer
    dataset = datasets.DATASETS[data.dataset]
    # Fetch into a hidden folder that replaces data/raw/ at the end: it is whole or untouched.
    with atomic_folder(RAW) as staging:
        for name, size in sizes(dataset).items():
            expected = Expected(name, CHECKSUMS[dataset.name][name], size)
            fetch_verified(expected, sources, staging / name, down, limits)


def sizes(dataset: datasets.Dataset) -> dict[str, int]:
    """Each file's decompressed size: its IDX header, then a byte per pixel or label."""
    return {
        TRAIN_IMAGES_GZ: 16 + dataset.train_count * datasets.IMAGE_SIZE,
        TRAIN_LABELS_GZ: 8 + dataset.train_count,
        TEST_IMAGES_GZ: 16 + dataset.test_count * datasets.IMAGE_SIZE,
        TEST_LABELS_GZ: 8 + dataset.test_count,
    }


def sources_for(data: params.DataParams) -> list[str]:
    mirror = os.environ.get("DATA_MIRROR")
    sources = ([mirror] if mirror else []) + data.mirrors.get(data.dataset, [])
    if not sources:
        raise StageError(
            f"no source for {data.dataset}: set DATA_MIRROR to a folder or base URL holding its "
            f"four .gz files, or list mirrors under data.mirrors.{data.dataset} in params.yaml"
        )
    return sources


def fetch_verified(
    expected: Expected, sources: list[str], destination: Path, down: dict[str, str], limits: Limits
) -> None:
    failures = []
    for source in sources:
        if source in down:
            failures.append(f"{source} (skipped: {down[source]}, for an earlier file)")
            continue
        try:
            fetch(source, expected, destination, limits)
            print(f"{expected.name}: verified, from {source}")
            return
        except SourceFailed as failure:
            destination.unlink(missing_ok=True)
            failures.append(f"{source} ({failure})")
            if isinstance(failure, SourceDown):
                down[source] = str(failure)
    raise StageError(
        f"could not get {expected.name} from any source: {'; '.join(failures)}. "
        "To use a local copy, set DATA_MIRROR to a folder or base URL that holds the .gz files, "
        "e.g. DATA_MIRROR=/path/to/folder dvc repro"
    )


def fetch(source: str, expected: Expected, destination: Path, limits: Limits) -> None:
    if "://" in source:
        return download(source.rstrip("/") + "/" + expected.name, expected, destination, limits)
    path = Path(source) / expected.name
    try:
        file = path.open("rb")
    except OSError as error:
        raise SourceFailed(f"{error.strerror}: {path}") from None
    with file:
        try:
            receive(file, expected, destination, time.monotonic() + limits.timeout)
        except TooSlow as error:  # a folder on a network file system that hangs
            raise SourceFailed(why(error, limits)) from None


def download(url: str, expected: Expected, destination: Path, limits: Limits) -> None:
    """Download with a timeout, retrying what may pass (timeouts, resets, 5xx) but not a 404."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            deadline = time.monotonic() + limits.timeout
            with urllib.request.urlopen(url, timeout=limits.timeout) as response:
                length = int(response.headers.get("Content-Length") or 0) or None
                if length and length > expected.most_compressed:
                    raise too_large(length, expected)
                received = receive(response, expected, destination, deadline, length)
            if length is not None and received != length:
                raise ConnectionError(f"transfer cut short at {received} of {length} bytes")
            return
        except urllib.error.HTTPError as error:
            reason = f"HTTP {error.code} {error.reason}"
            if error.code < 500:
                raise SourceFailed(reason) from None
        except urllib.error.URLError as error:  # e.g. while connecting
            reason = why(error.reason, limits)
        except (OSError, ValueError) as error:  # timeouts, resets, short reads (http.client)
            reason = why(error, limits)
        if attempt < ATTEMPTS:
            time.sleep(attempt * limits.retry_delay)
    raise SourceDown(f"{reason}, after {ATTEMPTS} attempts")


def why(error: Exception | str, limits: Limits) -> str:
    """What went wrong (runner.gist), where a timeout names the setting that bounds it."""
    if isinstance(error, TooSlow):
        return f"timed out: the file was not whole within DATA_TIMEOUT={limits.timeout:g} s"
    if isinstance(error, TimeoutError):
        return f"timed out: no answer within DATA_TIMEOUT={limits.timeout:g} s"
    return gist(error) if isinstance(error, BaseException) else error


def too_large(sent: int, expected: Expected) -> SourceFailed:
    return SourceFailed(
        f"too large: {sent} bytes or more for {expected.name}; allowed: at most "
        f"{expected.most_compressed}, as its {expected.size} bytes decompressed need"
    )


def receive(
    source, expected: Expected, destination: Path, deadline: float, length: int | None = None
) -> int:
    """Copy the stream `source` to `destination`, hashing its decompressed content as it comes."""
    sent, content = 0, Gunzip(expected)
    with (
        destination.open("wb") as file,
        tqdm(total=length, desc=expected.name, **PROGRESS) as progress,
    ):
        while chunk := source.read1(CHUNK_BYTES):  # what has come: a slow source meets the deadline
            sent += len(chunk)
            if sent > expected.most_compressed:
                raise too_large(sent, expected)
            if time.monotonic() > deadline:
                raise TooSlow()
            file.write(chunk)
            content.feed(chunk)
            progress.update(len(chunk))
    if length is None or sent == length:  # else cut short, which download reports
        content.check()
    return sent


class Gunzip:
    """A gzip stream's decompressed content, hashed and counted as it is fed, never held whole."""

    def __init__(self, expected: Expected):
        self.expected = expected
        self.digest, self.size = hashlib.sha256(), 0
        self.inflate = zlib.decompressobj(GZIP_WBITS)

    def feed(self, data: bytes) -> None:
        try:
            while data:
                if self.inflate.eof:  # a gzip file may hold several members, one after another
                    self.inflate = zlib.decompressobj(GZIP_WBITS)
                piece = self.inflate.decompress(data, CHUNK_BYTES)
                self.size += len(piece)
                if self.size > self.expected.size:
                    raise SourceFailed(
                        f"too large: {self.expected.name} decompresses to more than its "
                        f"{self.expected.size} bytes"
                    )
                self.digest.update(piece)
                # What is left of this chunk: of the same member, or the next member's start.
                data = (
                    self.inflate.unused_data if self.inflate.eof else self.inflate.unconsumed_tail
                )
        except zlib.error as error:
            raise SourceFailed(f"corrupt or truncated gzip file ({error})") from None

    def check(self) -> None:
        """That the stream ended where the gzip file does, with the file's content."""
        if not self.inflate.eof:
            raise SourceFailed("corrupt or truncated gzip file (it ends in the middle)")
        actual = self.digest.hexdigest()
        if actual != self.expected.sha256:
            raise SourceFailed(
                f"checksum mismatch for {self.expected.name}: expected {self.expected.sha256}, "
                f"got {actual}"
            )


if __name__ == "__main__":
    run(main)
