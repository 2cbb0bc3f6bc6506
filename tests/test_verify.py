"""`make verify`: the committed results against dvc.lock, one line per mismatch."""

import hashlib
import sys
from pathlib import Path

import yaml

from tests.conftest import STAGES, run, set_params


def verify(repo: Path):
    return run([sys.executable, "-m", "scripts.verify"], repo, check=False)


def recorded_md5(repo: Path, stage: str, path: str) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]
    return next(item["md5"] for item in lock["deps"] + lock["outs"] if item["path"] == path)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_the_committed_run_passes(sample_repo):
    result = verify(sample_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "verified: the code, params and committed outputs of all "
        f"{len(STAGES)} stages match dvc.lock"
    ]


def test_a_fresh_clone_without_the_cached_data_passes(sample_repo, tmp_path):
    # What CI has: git's files only; data/ and models/ are in DVC's cache, not in the clone.
    run(["git", "clone", "-q", str(sample_repo), str(tmp_path / "clone")], tmp_path)
    assert not (tmp_path / "clone" / "models" / "autoencoder.keras").exists()
    assert verify(tmp_path / "clone").returncode == 0


def test_a_one_character_change_to_a_stage_file_fails_naming_it(sample_repo):
    plot = sample_repo / "stages" / "plot.py"
    plot.write_text(plot.read_text().replace("Draw the figures", "Draw the figures!", 1))
    result = verify(sample_repo)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"plot: stages/plot.py: md5 {md5(plot)} in the tree, "
        f"{recorded_md5(sample_repo, 'plot', 'stages/plot.py')} in dvc.lock"
    ]
    assert result.stderr.startswith("error: 1 mismatch(es) between the tree and dvc.lock")


def test_a_change_to_a_shared_module_names_every_stage_that_uses_it(sample_repo):
    paths = sample_repo / "stages" / "common" / "paths.py"
    paths.write_text(paths.read_text() + "\n")
    stages = [line.split(":")[0] for line in verify(sample_repo).stdout.splitlines()]
    assert stages == STAGES


def test_a_params_change_fails_naming_the_key_and_both_values(sample_repo):
    set_params(sample_repo / "params.yaml", {"plot.n_images": 4})
    result = verify(sample_repo)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{stage}: params.yaml: plot.n_images is 4 in the tree, 10 in dvc.lock"
        for stage in ("plot", "evaluate")
    ]


def test_a_changed_or_missing_committed_output_fails(sample_repo):
    metrics = sample_repo / "reports" / "metrics.json"
    metrics.write_text(metrics.read_text().replace("0.", "1.", 1))
    (sample_repo / "reports" / "figures" / "loss.png").unlink()
    result = verify(sample_repo)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"predict: reports/metrics.json: md5 {md5(metrics)} in the tree, "
        f"{recorded_md5(sample_repo, 'predict', 'reports/metrics.json')} in dvc.lock",
        "plot: reports/figures/loss.png: missing from the tree, md5 "
        f"{recorded_md5(sample_repo, 'plot', 'reports/figures/loss.png')} in dvc.lock",
    ]


def test_a_stage_missing_from_dvc_lock_fails_naming_it(sample_repo):
    lock = yaml.safe_load((sample_repo / "dvc.lock").read_text())
    del lock["stages"]["prepare"]
    (sample_repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    result = verify(sample_repo)
    assert result.returncode == 1
    assert "prepare: not in dvc.lock: never run, or its entry was removed" in (
        result.stdout.splitlines()
    )


def test_a_changed_command_fails_naming_the_stage(sample_repo):
    dvc_yaml = sample_repo / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace("cmd: python -m stages.plot", "cmd: python -m stages.plot -v")
    )
    result = verify(sample_repo)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["plot: changed command (dvc.yaml and dvc.lock disagree)"]
