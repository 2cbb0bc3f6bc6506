"""Atomic writes: a block that fails or is interrupted leaves the old file or folder as it was."""

import os

import pytest

from stages.common.files import atomic_folder, atomic_path


class Failed(Exception):
    pass


@pytest.mark.parametrize("error", [Failed, KeyboardInterrupt, SystemExit])
def test_a_failed_file_write_keeps_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(error), atomic_path(path) as temporary:
        temporary.write_text("half")
        raise error
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_file_write_replaces_the_file_with_the_usual_mode(tmp_path):
    path = tmp_path / "models" / "autoencoder.keras"
    with atomic_path(path) as temporary:
        assert temporary.parent == path.parent and temporary.suffix == ".keras"
        temporary.write_text("new")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("error", [Failed, KeyboardInterrupt, SystemExit])
def test_a_failed_folder_write_keeps_the_old_folder_and_no_temporary(tmp_path, error):
    path = tmp_path / "train"
    (path / "plots").mkdir(parents=True)
    (path / "metrics.json").write_text("old")
    with pytest.raises(error), atomic_folder(path) as temporary:
        (temporary / "metrics.json").write_text("half")
        raise error
    assert (path / "metrics.json").read_text() == "old"
    assert sorted(p.name for p in path.iterdir()) == ["metrics.json", "plots"]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("existed", [True, False], ids=["replaced", "created"])
def test_a_folder_write_replaces_the_whole_folder(tmp_path, existed):
    path = tmp_path / "train"
    if existed:
        path.mkdir()
        (path / "stale.tsv").write_text("old")
    with atomic_folder(path) as temporary:
        (temporary / "metrics.json").write_text("new")
    assert [p.name for p in path.iterdir()] == ["metrics.json"]
    assert (path / "metrics.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_write_removes_only_its_own_leftovers_never_the_users_files(tmp_path):
    # What a write killed by SIGKILL leaves: a temporary file, a temporary folder and the old
    # folder set aside, named as stages/common/files.py names them.
    leftovers = [
        ".scores.csv.partial-k3x_9a2b.csv",
        ".train.partial-0q1w2e3r",
        ".train.partial-0q1w2e3r.previous",
    ]
    (tmp_path / leftovers[0]).write_text("half")
    for folder in leftovers[1:]:
        (tmp_path / folder).mkdir()
    # The user's own, beside the outputs: a backup, a folder of theirs, and names close to ours.
    users = [
        ".scores.csv.bak",
        ".scores.csv.orig",
        ".scores.csv.partial-notmine",
        ".scores.csv.partial-k3x_9a2b.csv.keep",
        ".train.d",
        ".train.partial-0q1w2e3r.old",
    ]
    for name in users[:4]:
        (tmp_path / name).write_text("the user's")
    for name in users[4:]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "notes.txt").write_text("the user's")
    (tmp_path / ".scores.csv.partial-abcdefgh.csv").symlink_to(tmp_path / ".scores.csv.bak")

    with atomic_path(tmp_path / "scores.csv") as temporary:
        temporary.write_text("new")
    with atomic_folder(tmp_path / "train") as temporary:
        (temporary / "metrics.json").write_text("new")

    left = sorted(path.name for path in tmp_path.iterdir())
    assert left == sorted([*users, ".scores.csv.partial-abcdefgh.csv", "scores.csv", "train"])
    assert all((tmp_path / name).read_text() == "the user's" for name in users[:4])
    assert all((tmp_path / name / "notes.txt").exists() for name in users[4:])
