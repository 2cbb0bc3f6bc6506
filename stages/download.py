"""Download the dataset's four IDX .gz files into data/raw/, each verified by its SHA-256.

Sources are tried in order: $DATA_MIRROR (a folder or a base URL), then the mirrors in params.yaml.
A file is checked by the digest of its *decompressed* content, so any faithful mirror will do.
Over HTTP, each attempt waits up to $DATA_TIMEOUT seconds (default 30) and a failed one is tried
again twice: after $DATA_RETRY_DELAY seconds (default 1), then after twice that.
"""

import hashlib
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from stages import idx, params
from stages.cli import StageError, run, seconds_from_environment
from stages.datasets import DATASETS
from stages.files import atomic_folder
from stages.paths import RAW

ATTEMPTS = 3
CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class Patience:
    """How long to wait for a server: `timeout` seconds for each attempt, and `retry_delay`
    seconds before the second attempt, twice that before the third (a busy server recovers)."""

    timeout: float
    retry_delay: float


class SourceFailed(Exception):
    """Why one source could not supply one file; the next source is tried."""


class SourceDown(SourceFailed):
    """A source that did not answer after every retry: the other files do not wait for it again."""


def main() -> None:
    data = params.load().data
    patience = Patience(
        timeout=seconds_from_environment("DATA_TIMEOUT", default=30.0),
        retry_delay=seconds_from_environment("DATA_RETRY_DELAY", default=1.0),
    )
    sources = sources_for(data)
    down: dict[str, str] = {}  # source -> why it did not answer
    # Fetch into a hidden folder that replaces data/raw/ at the end: it is whole or untouched.
    with atomic_folder(RAW) as staging:
        for name, sha256 in DATASETS[data.dataset].sha256.items():
            fetch_verified(name, sha256, sources, staging / name, down, patience)


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
    name: str,
    sha256: str,
    sources: list[str],
    destination: Path,
    down: dict[str, str],
    patience: Patience,
) -> None:
    failures = []
    for source in sources:
        if source in down:
            failures.append(f"{source} (skipped: {down[source]}, for an earlier file)")
            continue
        try:
            fetch(source, name, destination, patience)
            verify(destination, sha256)
            print(f"{name}: verified, from {source}")
            return
        except SourceFailed as failure:
            destination.unlink(missing_ok=True)
            failures.append(f"{source} ({failure})")
            if isinstance(failure, SourceDown):
                down[source] = str(failure)
    raise StageError(
        f"could not get {name} from any source: {'; '.join(failures)}. "
        "To use a local copy, set DATA_MIRROR to a folder or base URL that holds the .gz files, "
        "e.g. DATA_MIRROR=/path/to/folder dvc repro"
    )


def fetch(source: str, name: str, destination: Path, patience: Patience) -> None:
    if "://" in source:
        download(source.rstrip("/") + "/" + name, destination, patience)
        return
    try:
        shutil.copyfile(Path(source) / name, destination)
    except OSError as error:
        raise SourceFailed(f"{error.strerror}: {Path(source) / name}") from None


def download(url: str, destination: Path, patience: Patience) -> None:
    """Download with a timeout, retrying what may pass (timeouts, resets, 5xx) but not a 404."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(url, timeout=patience.timeout) as response:
                expected = int(response.headers.get("Content-Length") or 0) or None
                received = copy_with_progress(response, destination, expected, url)
            if expected is not None and received != expected:
                raise ConnectionError(f"transfer cut short at {received} of {expected} bytes")
            return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                raise SourceFailed(f"HTTP {error.code} {error.reason}") from None
            reason = f"HTTP {error.code} {error.reason}"
        except urllib.error.URLError as error:  # e.g. while connecting
            reason = why(error.reason, patience)
        except (OSError, ValueError) as error:  # timeouts, resets, short reads (http.client)
            reason = why(error, patience)
        if attempt < ATTEMPTS:
            time.sleep(attempt * patience.retry_delay)
    raise SourceDown(f"{reason}, after {ATTEMPTS} attempts")


def why(error: Exception | str, patience: Patience) -> str:
    """What went wrong, in a few words; a timeout names the setting that bounds it."""
    if isinstance(error, TimeoutError):
        return f"timed out: no answer within DATA_TIMEOUT={patience.timeout:g} s"
    return str(error) or type(error).__name__


def copy_with_progress(response, destination: Path, expected: int | None, url: str) -> int:
    received = 0
    with (
        destination.open("wb") as file,
        tqdm(
            total=expected,
            unit="B",
            unit_scale=True,
            desc=url.rsplit("/", 1)[-1],
            leave=False,
            disable=None,
        ) as progress,
    ):
        while chunk := response.read(CHUNK_BYTES):
            file.write(chunk)
            received += len(chunk)
            progress.update(len(chunk))
    return received


def verify(path: Path, sha256: str) -> None:
    try:
        actual = hashlib.sha256(idx.gunzip(path)).hexdigest()
    except idx.IdxError as error:
        raise SourceFailed(str(error).removeprefix(f"{path}: ")) from None
    if actual != sha256:
        raise SourceFailed(f"checksum mismatch for {path.name}: expected {sha256}, got {actual}")


if __name__ == "__main__":
    run(main)
