"""The download stage: the four files from the first source that has them right, or an error."""

import contextlib
import gzip
import hashlib
import resource
import shutil
import socket
import sys
import threading
import time
import zlib
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from stages import download, prepare
from stages.common.datasets import TEST_IMAGES_GZ, TRAIN_IMAGES_GZ, TRAIN_LABELS_GZ
from stages.common.runner import StageError
from tests.conftest import SAMPLE, QuietHandler, error_line, run, serving, set_params, stage
from tests.required import require

FILES = sorted(download.CHECKSUMS["mnist_sample"])
EXPECTED_SHA256 = download.CHECKSUMS["mnist_sample"][TRAIN_IMAGES_GZ]
# The sample's test images passed off as its train images: a good gzip, the wrong content.
WRONG_SHA256 = hashlib.sha256(gzip.decompress((SAMPLE / TEST_IMAGES_GZ).read_bytes())).hexdigest()


@pytest.fixture(autouse=True)
def in_workspace(workspace, monkeypatch):
    """Run each test in a fresh workspace, with no DATA_MIRROR unless the test sets one."""
    monkeypatch.chdir(workspace)
    monkeypatch.delenv("DATA_MIRROR", raising=False)
    return workspace


def use_mirrors(workspace, *sources) -> None:
    set_params(workspace / "params.yaml", {"data.mirrors": {"mnist_sample": list(sources)}})


def mirror_copy(tmp_path, name: str = "mirror"):
    """A copy of the sample folder that a test can spoil."""
    return shutil.copytree(SAMPLE, tmp_path / name)


def download_error() -> str:
    with pytest.raises(StageError) as raised:
        download.main()
    return str(raised.value)


def assert_raw_is_the_sample(workspace) -> None:
    raw = workspace / "data" / "raw"
    assert sorted(path.name for path in raw.iterdir()) == FILES
    for name in FILES:
        assert (raw / name).read_bytes() == (SAMPLE / name).read_bytes(), name
    assert list((workspace / "data").glob(".raw.*")) == []


def free_port() -> int:
    """A port nothing listens on, so connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_from_a_local_folder_mirror(in_workspace, monkeypatch, capsys):
    monkeypatch.setenv("DATA_MIRROR", str(SAMPLE))
    download.main()
    assert_raw_is_the_sample(in_workspace)
    assert capsys.readouterr().out.count(f"verified, from {SAMPLE}") == 4


def test_from_the_params_mirror_relative_to_the_workspace(in_workspace, capsys):
    download.main()
    assert_raw_is_the_sample(in_workspace)
    assert capsys.readouterr().out.count("verified, from tests/data/mnist_sample/") == 4


def test_over_http(in_workspace, monkeypatch, capsys):
    with serving(SAMPLE) as url:
        monkeypatch.setenv("DATA_MIRROR", url)
        download.main()
    assert_raw_is_the_sample(in_workspace)
    assert capsys.readouterr().out.count(f"verified, from {url}") == 4


def test_data_mirror_is_tried_before_the_params_mirrors(
    in_workspace, tmp_path, monkeypatch, capsys
):
    first = mirror_copy(tmp_path)
    monkeypatch.setenv("DATA_MIRROR", str(first))
    download.main()
    output = capsys.readouterr().out
    assert output.count(f"verified, from {first}") == 4
    assert "tests/data/mnist_sample/" not in output


def test_a_file_with_the_wrong_content_falls_back_to_the_next_source(
    in_workspace, tmp_path, monkeypatch, capsys
):
    bad = mirror_copy(tmp_path)
    shutil.copy(SAMPLE / TEST_IMAGES_GZ, bad / TRAIN_IMAGES_GZ)
    monkeypatch.setenv("DATA_MIRROR", str(bad))
    download.main()
    assert_raw_is_the_sample(in_workspace)
    output = capsys.readouterr().out
    assert f"{TRAIN_IMAGES_GZ}: verified, from tests/data/mnist_sample/" in output
    assert f"{TEST_IMAGES_GZ}: verified, from {bad}" in output


def test_only_a_wrong_file_fails_naming_it_and_both_checksums(in_workspace, tmp_path):
    bad = mirror_copy(tmp_path)
    shutil.copy(SAMPLE / TEST_IMAGES_GZ, bad / TRAIN_IMAGES_GZ)
    use_mirrors(in_workspace, str(bad))
    message = download_error()
    assert f"checksum mismatch for {TRAIN_IMAGES_GZ}" in message
    assert f"expected {EXPECTED_SHA256}, got {WRONG_SHA256}" in message
    assert not (in_workspace / "data" / "raw").exists()
    assert list((in_workspace / "data").glob(".raw.*")) == []


def test_http_404_falls_back_to_the_next_source(in_workspace, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with serving(tmp_path / "empty") as url:
        monkeypatch.setenv("DATA_MIRROR", url)
        download.main()
    assert_raw_is_the_sample(in_workspace)


@pytest.mark.parametrize("spoil", ["truncate", "garbage"])
def test_a_corrupt_gzip_is_reported_as_corrupt_or_truncated(in_workspace, tmp_path, spoil):
    bad = mirror_copy(tmp_path)
    whole = (bad / TRAIN_IMAGES_GZ).read_bytes()
    spoiled = whole[: len(whole) // 2] if spoil == "truncate" else b"<html>Moved</html>"
    (bad / TRAIN_IMAGES_GZ).write_bytes(spoiled)
    use_mirrors(in_workspace, str(bad))
    message = download_error()
    assert (
        f"could not get {TRAIN_IMAGES_GZ} from any source: {bad} (corrupt or truncated" in message
    )
    assert not (in_workspace / "data" / "raw").exists()


def test_a_gzip_file_of_several_members_is_read_whole(in_workspace, tmp_path):
    # Concatenated gzip files are one gzip file (`cat a.gz b.gz`); a recompressing mirror may
    # serve one. Its members split mid-chunk, unlike the sample's one member.
    split = mirror_copy(tmp_path)
    content = gzip.decompress((SAMPLE / TRAIN_IMAGES_GZ).read_bytes())
    members = [
        gzip.compress(content[i : i + 100_003], mtime=0) for i in range(0, len(content), 100_003)
    ]
    (split / TRAIN_IMAGES_GZ).write_bytes(b"".join(members))
    use_mirrors(in_workspace, str(split))
    download.main()
    assert (
        gzip.decompress((in_workspace / "data" / "raw" / TRAIN_IMAGES_GZ).read_bytes()) == content
    )


def test_a_failed_download_leaves_the_existing_raw_data_untouched(in_workspace, tmp_path):
    raw = shutil.copytree(SAMPLE, in_workspace / "data" / "raw")
    (raw / "notes.txt").write_text("mine")
    use_mirrors(in_workspace, str(tmp_path / "nowhere"))
    download_error()
    assert sorted(path.name for path in raw.iterdir()) == sorted([*FILES, "notes.txt"])
    assert (raw / "notes.txt").read_text() == "mine"
    assert (raw / TRAIN_IMAGES_GZ).read_bytes() == (SAMPLE / TRAIN_IMAGES_GZ).read_bytes()
    assert list((in_workspace / "data").glob(".raw.*")) == []


def test_no_source_at_all_says_how_to_give_one(in_workspace):
    set_params(in_workspace / "params.yaml", {"data.mirrors": {}})
    message = download_error()
    assert "no source for mnist_sample" in message
    assert "DATA_MIRROR" in message
    assert "data.mirrors.mnist_sample" in message


def test_all_sources_failing_exit_1_with_one_line_giving_each_reason(in_workspace, tmp_path):
    bad = mirror_copy(tmp_path, "bad")
    shutil.copy(SAMPLE / TEST_IMAGES_GZ, bad / TRAIN_IMAGES_GZ)
    (tmp_path / "empty").mkdir()
    refused = f"http://127.0.0.1:{free_port()}/"
    nowhere = tmp_path / "nowhere"
    with serving(tmp_path / "empty") as empty:
        use_mirrors(in_workspace, empty, refused, str(bad))
        result = stage("download", in_workspace, {"DATA_MIRROR": str(nowhere)})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    line = result.stderr.strip()
    assert line.startswith(f"error: could not get {TRAIN_IMAGES_GZ} from any source: ")
    reasons = [
        f"{nowhere} (No such file or directory: {nowhere / TRAIN_IMAGES_GZ})",
        f"{empty} (HTTP 404 File not found)",
        f"{refused} (",
        "Connection refused, after 3 attempts)",
        f"{bad} (checksum mismatch for {TRAIN_IMAGES_GZ}: expected {EXPECTED_SHA256}, got",
    ]
    positions = [line.find(reason) for reason in reasons]
    assert -1 not in positions, line
    assert positions == sorted(positions)  # in the order they were tried
    assert "set DATA_MIRROR to a folder or base URL" in line
    assert not (in_workspace / "data" / "raw").exists()


class FaultyHandler(QuietHandler):
    """Serves the sample, except that the first `failures` requests for each file meet `fault`."""

    fault = ""
    failures = 1_000_000
    requests: Counter  # per file name, set for each server
    times: list  # when each request came, by time.monotonic()
    release: threading.Event  # set when the test ends, so that hanging requests return

    def do_GET(self):
        self.times.append(time.monotonic())
        name = self.path.lstrip("/")
        self.requests[name] += 1
        if self.requests[name] > self.failures:
            super().do_GET()
        elif self.fault == "hang":
            self.release.wait(60)
        elif self.fault == "500":
            self.send_error(500)
        elif self.fault == "too large":
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
        elif self.fault == "endless":  # a gzip stream of zeros, a little at a time, never done
            self.send_response(200)
            self.end_headers()
            compress = zlib.compressobj(6, zlib.DEFLATED, 31)
            with contextlib.suppress(OSError):  # until the client gives up
                while not self.release.is_set():
                    self.wfile.write(
                        compress.compress(bytes(100)) + compress.flush(zlib.Z_SYNC_FLUSH)
                    )
                    self.wfile.flush()
                    time.sleep(0.05)
        elif self.fault == "cut short":
            whole = (SAMPLE / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(whole)))
            self.end_headers()
            self.wfile.write(whole[: len(whole) // 2])  # then the connection closes


@contextmanager
def faulty_server(fault: str, failures: int = FaultyHandler.failures):
    """A real HTTP server on 127.0.0.1 that fails as `fault` says; yields its URL, the count of
    requests for each file and the time of each request."""
    release, requests, times = threading.Event(), Counter(), []
    handler = type(
        "Handler",
        (FaultyHandler,),
        {
            "fault": fault,
            "failures": failures,
            "requests": requests,
            "times": times,
            "release": release,
        },
    )
    with serving(SAMPLE, handler) as url:
        try:
            yield url, requests, times
        finally:
            release.set()


@pytest.fixture
def quick_retries(monkeypatch):
    """Short timeouts and pauses, set as a user would: failing sources fail fast."""
    monkeypatch.setenv("DATA_TIMEOUT", "0.5")
    monkeypatch.setenv("DATA_RETRY_DELAY", "0.01")


@pytest.mark.parametrize("fault", ["hang", "500", "cut short"])
def test_a_failing_http_mirror_is_retried_then_left_for_the_next_source(
    in_workspace, monkeypatch, capsys, quick_retries, fault
):
    with faulty_server(fault) as (url, requests, _):
        monkeypatch.setenv("DATA_MIRROR", url)
        download.main()
    assert_raw_is_the_sample(in_workspace)
    assert capsys.readouterr().out.count("verified, from tests/data/mnist_sample/") == 4
    # Tried ATTEMPTS times for the first file; not again for the other three.
    assert requests == {TRAIN_IMAGES_GZ: download.ATTEMPTS}


def test_a_500_that_passes_on_a_retry_is_downloaded_from_that_mirror(
    in_workspace, monkeypatch, capsys, quick_retries
):
    with faulty_server("500", failures=1) as (url, requests, _):
        monkeypatch.setenv("DATA_MIRROR", url)
        download.main()
    assert_raw_is_the_sample(in_workspace)
    assert capsys.readouterr().out.count(f"verified, from {url}") == 4
    assert requests == {name: 2 for name in FILES}


def test_wrong_bytes_over_http_fall_back_to_the_next_source(
    in_workspace, tmp_path, monkeypatch, capsys
):
    bad = mirror_copy(tmp_path)
    shutil.copy(SAMPLE / TEST_IMAGES_GZ, bad / TRAIN_IMAGES_GZ)  # another file under the same name
    with serving(bad) as url:
        monkeypatch.setenv("DATA_MIRROR", url)
        download.main()
    assert_raw_is_the_sample(in_workspace)
    output = capsys.readouterr().out
    assert f"{TRAIN_IMAGES_GZ}: verified, from tests/data/mnist_sample/" in output
    assert f"{TRAIN_LABELS_GZ}: verified, from {url}" in output


def test_every_http_fault_failing_is_one_error_giving_each_reason_and_keeping_raw(
    in_workspace, tmp_path, quick_retries
):
    raw = shutil.copytree(SAMPLE, in_workspace / "data" / "raw")
    (raw / "notes.txt").write_text("mine")
    bad = mirror_copy(tmp_path)
    shutil.copy(SAMPLE / TEST_IMAGES_GZ, bad / TRAIN_IMAGES_GZ)
    size = (SAMPLE / TRAIN_IMAGES_GZ).stat().st_size
    attempts = f"after {download.ATTEMPTS} attempts"
    with (
        faulty_server("hang") as (hanging, _, _),
        faulty_server("500") as (broken, _, _),
        faulty_server("cut short") as (cut, _, _),
        serving(bad) as wrong,
    ):
        use_mirrors(in_workspace, hanging, broken, cut, wrong)
        message = download_error()
    assert "\n" not in message
    reasons = [
        f"{hanging} (timed out: no answer within DATA_TIMEOUT=0.5 s, {attempts})",
        f"{broken} (HTTP 500 Internal Server Error, {attempts})",
        f"{cut} (transfer cut short at {size // 2} of {size} bytes, {attempts})",
        f"{wrong} (checksum mismatch for {TRAIN_IMAGES_GZ}: expected {EXPECTED_SHA256}, got",
    ]
    positions = [message.find(reason) for reason in reasons]
    assert -1 not in positions, message
    assert positions == sorted(positions)
    assert sorted(path.name for path in raw.iterdir()) == sorted([*FILES, "notes.txt"])
    assert (raw / TRAIN_IMAGES_GZ).read_bytes() == (SAMPLE / TRAIN_IMAGES_GZ).read_bytes()
    assert list((in_workspace / "data").glob(".raw.*")) == []


def test_a_source_found_down_is_named_but_not_waited_for_again(
    in_workspace, tmp_path, quick_retries
):
    bad = mirror_copy(tmp_path)
    shutil.copy(SAMPLE / TRAIN_IMAGES_GZ, bad / TEST_IMAGES_GZ)  # the third file is wrong
    with faulty_server("500") as (broken, requests, _):
        use_mirrors(in_workspace, broken, str(bad))
        message = download_error()
    assert message.startswith(
        f"could not get {TEST_IMAGES_GZ} from any source: {broken} (skipped: HTTP 500 Internal "
        f"Server Error, after {download.ATTEMPTS} attempts, for an earlier file); {bad} "
        f"(too large: {TEST_IMAGES_GZ} decompresses to more than its 392016 bytes)"
    )
    assert requests == {TRAIN_IMAGES_GZ: download.ATTEMPTS}
    assert not (in_workspace / "data" / "raw").exists()


def test_data_timeout_bounds_each_attempt_at_a_server_that_never_answers(in_workspace):
    timeout, delay = 1.0, 0.25  # the default timeout, 30 s, would take minutes
    use_mirrors(in_workspace)  # the hanging server is the only source
    with faulty_server("hang") as (url, _, times):
        environment = {"DATA_MIRROR": url, "DATA_TIMEOUT": "1", "DATA_RETRY_DELAY": "0.25"}
        result = stage("download", in_workspace, environment)
        ended = time.monotonic()
    assert result.returncode == 1
    assert f"{url} (timed out: no answer within DATA_TIMEOUT=1 s, after 3 attempts)" in (
        error_line(result.stderr)
    )
    assert len(times) == download.ATTEMPTS
    # Each attempt waits `timeout`, with pauses of delay, then 2 * delay, between them; then the
    # stage gives up. Two seconds more cover writing the error and exiting on a busy machine. The
    # server sees each request a little after the client's clock for it starts, and the first
    # one the latest (a new server), so the gaps it measures may fall short by that much: 0.1 s,
    # still far less than a missing pause or a timeout not applied would show.
    slack = 0.1
    assert times[1] - times[0] >= timeout + delay - slack
    assert times[2] - times[1] >= timeout + 2 * delay - slack
    assert ended - times[0] < 3 * timeout + 3 * delay + 2


def test_data_retry_delay_spaces_the_retries(in_workspace):
    delay = 1.25  # longer than the default, 1 s: shorter gaps would show it is not read
    use_mirrors(in_workspace)
    with faulty_server("500") as (url, _, times):
        result = stage("download", in_workspace, {"DATA_MIRROR": url, "DATA_RETRY_DELAY": "1.25"})
    assert result.returncode == 1
    assert f"{url} (HTTP 500 Internal Server Error, after 3 attempts)" in error_line(result.stderr)
    assert len(times) == download.ATTEMPTS
    assert times[1] - times[0] >= delay
    assert times[2] - times[1] >= 2 * delay


@pytest.mark.parametrize(
    "variable, value",
    [
        ("DATA_TIMEOUT", "abc"),
        ("DATA_TIMEOUT", "0"),
        ("DATA_TIMEOUT", "-1"),
        ("DATA_TIMEOUT", "nan"),
        ("DATA_TIMEOUT", "inf"),
        ("DATA_RETRY_DELAY", "0"),
        ("DATA_RETRY_DELAY", "1s"),
    ],
)
def test_a_bad_timeout_or_delay_is_one_line_before_any_download(in_workspace, variable, value):
    with faulty_server("500", failures=0) as (url, requests, _):  # a server that would serve all
        result = stage("download", in_workspace, {"DATA_MIRROR": url, variable: value})
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {variable} is {value!r}; allowed: a number of seconds greater than 0\n"
    )
    assert requests == {}
    assert not (in_workspace / "data").exists()


FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_fashion_mnist_comes_from_debians_package_as_params_yaml_says(in_workspace, capsys):
    require(FASHION.is_dir(), "no Fashion-MNIST: apt-get install dataset-fashion-mnist")
    set_params(
        in_workspace / "params.yaml",
        {"data.dataset": "fashion_mnist", "data.train_size": 60000, "data.test_size": 10000},
    )
    download.main()  # the mirrors in the repo's params.yaml: Debian's folder first
    assert capsys.readouterr().out.count(f"verified, from {FASHION}/") == 4
    prepare.main()
    labels = np.load(in_workspace / "data/prepared/train_labels.npy")
    assert np.bincount(labels).tolist() == [6000] * 10  # Fashion-MNIST's classes are balanced
    assert len(np.load(in_workspace / "data/prepared/test_labels.npy")) == 10000


def gzip_bomb(path: Path, gibibytes: int = 1) -> None:
    """A gzip file of about 1 MB that decompresses to `gibibytes` GiB of zeros."""
    compress, zeros = zlib.compressobj(6, zlib.DEFLATED, 31), bytes(1 << 24)
    with path.open("wb") as file:
        for _ in range(gibibytes * 64):
            file.write(compress.compress(zeros))
        file.write(compress.flush())


def limit_memory() -> None:
    """Give the process 1 GiB of address space, as a small container or a ulimit would."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_a_gzip_bomb_under_a_memory_limit_is_one_line_and_the_next_source_is_tried(
    in_workspace, tmp_path
):
    bad = mirror_copy(tmp_path)
    gzip_bomb(bad / TRAIN_IMAGES_GZ)
    use_mirrors(in_workspace, str(bad), str(bad))  # the next source: as bad
    environment = {"DATA_MIRROR": str(bad)}
    result = run_limited(in_workspace, environment)
    assert result.returncode == 1, result.stderr
    reason = f"(too large: {TRAIN_IMAGES_GZ} decompresses to more than its 1568016 bytes)"
    assert error_line(result.stderr).count(reason) == 3  # each source tried, each refused
    assert not (in_workspace / "data" / "raw").exists()

    use_mirrors(in_workspace, str(bad), str(SAMPLE))
    result = run_limited(in_workspace, environment)
    assert result.returncode == 0, result.stderr
    assert f"{TRAIN_IMAGES_GZ}: verified, from {SAMPLE}" in result.stdout
    assert_raw_is_the_sample(in_workspace)


def run_limited(workspace: Path, environment: dict):
    """The download stage, with 1 GiB of memory."""
    command = [sys.executable, "-m", "stages.download"]
    return run(command, workspace, environment, check=False, preexec_fn=limit_memory)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (
            "too large",
            f"too large: {1 << 40} bytes or more for {TRAIN_IMAGES_GZ}; allowed: at most ",
        ),
        ("endless", "timed out: the file was not whole within DATA_TIMEOUT=1 s, after 3 attempts"),
    ],
)
def test_a_source_that_sends_too_much_or_never_ends_fails_within_the_timeout(
    in_workspace, fault, reason
):
    use_mirrors(in_workspace)  # the faulty server is the only source
    with faulty_server(fault) as (url, _, _):
        environment = {"DATA_MIRROR": url, "DATA_TIMEOUT": "1", "DATA_RETRY_DELAY": "0.01"}
        started = time.monotonic()
        result = stage("download", in_workspace, environment)
        seconds = time.monotonic() - started
    assert result.returncode == 1
    assert f"{url} ({reason}" in error_line(result.stderr)
    assert seconds < 3 * 2 + 5  # each of 3 attempts within about DATA_TIMEOUT, then exit
