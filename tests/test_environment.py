"""The tests see the same setup on any machine: none of the user's git or DVC config, none of their
DVC_, TF_, KERAS_ or GIT_ variables; and the stages run Keras on TensorFlow whatever it says."""

import json
import sys

import pytest

from tests.conftest import REPO, run

# The variables conftest sets for the tests; any other DVC_, TF_, KERAS_, GIT_ or DATA_ one leaked.
OWN = {
    "DVC_GLOBAL_CONFIG_DIR",
    "DVC_NO_ANALYTICS",
    "DVC_SITE_CACHE_DIR",
    "DVC_SYSTEM_CONFIG_DIR",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_SYSTEM",
    "KERAS_HOME",
}
# What the tests' environment looks like to the commands they run (conftest imported afresh).
SEEN_BY_COMMANDS = """
import json, sys
from tests.conftest import ENV, run

folder = sys.argv[1]
print(json.dumps({
    "variables": {
        name: value
        for name, value in ENV.items()
        if name.startswith(("DVC_", "TF_", "KERAS_", "GIT_", "DATA_"))
    },
    "git": run(["git", "config", "--list", "--show-origin"], folder).stdout,
    "dvc global": run(["dvc", "config", "--global", "--list"], folder).stdout,
    "dvc system": run(["dvc", "config", "--system", "--list"], folder).stdout,
}))
"""


def seen_by_commands(folder, user_environment: dict | None = None) -> dict:
    """The tests' variables and the git and DVC config their commands read, for a user whose own
    environment adds `user_environment`."""
    code = [sys.executable, "-c", SEEN_BY_COMMANDS, str(folder)]
    return json.loads(run(code, REPO, user_environment).stdout)


def test_commands_read_no_git_or_dvc_config_but_the_tests_own(tmp_path):
    seen = seen_by_commands(tmp_path)
    assert set(seen["variables"]) == OWN
    assert seen["git"] == ""  # neither ~/.gitconfig nor /etc/gitconfig
    assert seen["dvc global"] == seen["dvc system"] == ""


def test_a_user_with_their_own_config_and_variables_changes_nothing(tmp_path):
    (tmp_path / "gitconfig").write_text("[user]\n\tname = the user\n[commit]\n\tgpgsign = true\n")
    (tmp_path / "dvc").mkdir()
    (tmp_path / "dvc" / "config").write_text("[core]\n    remote = theirs\n    autostage = true\n")
    (tmp_path / "work").mkdir()
    user_environment = {
        "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig"),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "init.defaultBranch",
        "GIT_CONFIG_VALUE_0": "trunk",
        "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc"),
        "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "dvc"),
        "DVC_SHOW_TRACEBACK": "1",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "TF_CPP_MIN_LOG_LEVEL": "0",
        "KERAS_BACKEND": "jax",
        "DATA_MIRROR": str(tmp_path / "nowhere"),
    }
    seen = seen_by_commands(tmp_path / "work", user_environment)
    assert set(seen["variables"]) == OWN
    kept = [
        name for name, value in user_environment.items() if seen["variables"].get(name) == value
    ]
    assert kept == []
    assert seen["git"] == ""
    assert seen["dvc global"] == seen["dvc system"] == ""


def test_the_stages_load_keras_on_tensorflow_whatever_keras_backend_says_and_without_sklearn():
    # Keras would load scikit-learn and Matplotlib for wrappers and galleries no stage uses, and
    # TensorFlow's legacy tf.keras SciPy (docs/speed.md); evaluate and plot still can.
    code = (
        "import sys\nfrom stages.backend import keras\n"
        "names = ['sklearn', 'matplotlib', 'scipy']\n"
        "print(keras.backend.backend(), *(name in sys.modules for name in names))\n"
        "from sklearn.decomposition import PCA\nimport matplotlib.pyplot as plt\n"
        "import scipy.sparse\nprint(PCA.__name__, plt.__name__, scipy.sparse.__name__)\n"
    )
    result = run([sys.executable, "-c", code], REPO, {"KERAS_BACKEND": "jax"})
    loaded = ["False"] * 3 + ["PCA", "matplotlib.pyplot", "scipy.sparse"]
    assert result.stdout.split() == ["tensorflow", *loaded]


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), ("", "1 skipped")])
def test_a_missing_component_skips_its_test_but_fails_it_under_ci(tmp_path, ci, outcome):
    test = tmp_path / "test_needs_it.py"
    test.write_text(
        "from tests.required import require\n"
        "def test_it():\n"
        "    require(False, 'no chromium: apt-get install chromium')\n"
    )
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rsf", str(test)]
    result = run(command, tmp_path, {"CI": ci, "PYTHONPATH": str(REPO)}, check=False)
    assert outcome in result.stdout, result.stdout
    assert "no chromium: apt-get install chromium" in result.stdout
