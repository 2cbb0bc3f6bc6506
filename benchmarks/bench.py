"""Time the pipeline against the tutorial's own script, on the same data, in one run.

    make bench            # or: python -m benchmarks.bench --runs 3

The baseline is the tutorial's script, written out below as a user would run it (reading the same
local IDX files, since keras.datasets cannot download here). Each measurement runs in a fresh
process, several times; the table shows medians and the ratio to the baseline.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from benchmarks.common import ENV, REPO, epoch_seconds
from scripts.family import VARIANTS
from stages.common.paths import TRAIN_REPORTS

NO_OP_REPEATS = 5  # no-op `dvc repro` measurements per run, of this project and of DVC's floor

# The tutorial (Keras blog, "Building Autoencoders in Keras"), with Adam as the project's default,
# and a callback that only records each epoch's seconds and the final val_loss.
# Both timed scripts record each epoch's seconds with this callback.
EPOCH_SECONDS = textwrap.dedent("""
    class EpochSeconds(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()
        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)
    seconds = []
""")

TUTORIAL = textwrap.dedent("""
    import gzip, json, sys, time
    import numpy as np
    import keras
    from keras import layers

    def load(name):  # mnist.load_data() cannot download here: the same bytes, read locally
        with gzip.open(f"{sys.argv[1]}/{name}", "rb") as f:
            data = f.read()
        return np.frombuffer(data, np.uint8, offset=16 if "images" in name else 8)

    x_train = load("train-images-idx3-ubyte.gz").reshape(-1, 28, 28)
    x_test = load("t10k-images-idx3-ubyte.gz").reshape(-1, 28, 28)
    keras.utils.set_random_seed(42)

    encoding_dim = 36
    input_img = keras.Input(shape=(784,))
    encoded = layers.Dense(encoding_dim, activation="relu")(input_img)
    decoded = layers.Dense(784, activation="sigmoid")(encoded)
    autoencoder = keras.Model(input_img, decoded)
    encoder = keras.Model(input_img, encoded)
    encoded_input = keras.Input(shape=(encoding_dim,))
    decoder = keras.Model(encoded_input, autoencoder.layers[-1](encoded_input))
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")

    x_train = x_train.astype("float32") / 255.
    x_test = x_test.astype("float32") / 255.
    x_train = x_train.reshape((len(x_train), np.prod(x_train.shape[1:])))
    x_test = x_test.reshape((len(x_test), np.prod(x_test.shape[1:])))

    {EPOCH_SECONDS}
    history = autoencoder.fit(x_train, x_train, epochs=15, batch_size=256, shuffle=True,
                              validation_data=(x_test, x_test), callbacks=[EpochSeconds()])
    encoded_imgs = encoder.predict(x_test)
    decoded_imgs = decoder.predict(encoded_imgs)
    print(json.dumps({"epoch_seconds": seconds, "val_loss": history.history["val_loss"][-1]}))
""").replace("{EPOCH_SECONDS}", EPOCH_SECONDS)


# Plain Keras for any kind: the project's model as params.yaml builds it (build_autoencoder),
# trained by Model.fit with Keras' default compile, on the prepared images (noisy inputs made
# once, as the tutorial's denoising example does, for a denoising variant).
KIND_FIT = textwrap.dedent("""
    import json, time
    import keras
    import numpy as np
    from stages import model, noise
    from stages.common import params

    config = params.load()
    x_train = np.load("data/prepared/train_images.npy")
    x_test = np.load("data/prepared/test_images.npy")
    inputs = noise.training_inputs(x_train, config)
    test_inputs = noise.test_inputs(x_test, config)
    model.seed_everything(config.train.seed)
    autoencoder = model.build_autoencoder(config.model)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")

    {EPOCH_SECONDS}
    history = autoencoder.fit(inputs, x_train, epochs=config.train.epochs, batch_size=256,
                              shuffle=True, validation_data=(test_inputs, x_test),
                              callbacks=[EpochSeconds()], verbose=0)
    print(json.dumps({"epoch_seconds": seconds, "val_loss": history.history["val_loss"][-1]}))
""").replace("{EPOCH_SECONDS}", EPOCH_SECONDS)


def measure(command: list[str], cwd: Path, env: dict | None = None) -> dict:
    """Run a command in a fresh process: its wall seconds, peak RSS in MiB and output lines."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env={**ENV, **(env or {})}, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(process.pid, 0)  # wait4 gives this child's own peak RSS
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"error: {' '.join(command)} failed in {cwd}:\n{err.read()[-3000:]}")
        lines = out.read().strip().splitlines()
    return {"seconds": seconds, "rss_mib": usage.ru_maxrss / 1024, "lines": lines}


def tutorial_epochs(result: dict) -> tuple[list[float], float]:
    """(each epoch's seconds, the final val_loss), as the tutorial script prints them."""
    report = json.loads(result["lines"][-1])
    return report["epoch_seconds"], report["val_loss"]


def train_stage(clone: Path) -> tuple[dict, tuple[list[float], float]]:
    """Run the train stage in a fresh process: its measure, and (each epoch's seconds, as it
    prints them, and the final val_loss, from its DVCLive metrics)."""
    result = measure([sys.executable, "-m", "stages.train"], clone)
    metrics = json.loads((clone / TRAIN_REPORTS / "metrics.json").read_text())
    return result, (epoch_seconds("\n".join(result["lines"])), metrics["eval"]["loss"])


def per_epoch(fits: list[tuple[list[float], float]]) -> tuple[float, float, float]:
    """Medians over runs of (whole fit / epochs, compiling included; the median epoch; val_loss)."""
    median = statistics.median
    return (
        median(sum(seconds) / len(seconds) for seconds, _ in fits),
        median(median(seconds) for seconds, _ in fits),
        median(val_loss for _, val_loss in fits),
    )


def main() -> None:
    args = parse_args()
    data = Path(args.data).resolve()
    runs = range(args.runs)
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"data from {data}, {args.runs} runs of each",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="bench."))
    script = work / "tutorial.py"
    script.write_text(quiet(TUTORIAL) if args.quiet_tutorial else TUTORIAL)
    tutorial, cold, changed, unchanged, stage, stage_fits, trivial = [], [], [], [], [], [], []
    try:
        # DVC's own floor: a no-op `dvc repro` of a project with one trivial stage.
        trivial_project = one_stage_project(work / "trivial")
        # Each run times everything once, so a machine that slows down or speeds up during the
        # benchmark moves both sides of every ratio alike.
        for run in runs:
            tutorial.append(measure([sys.executable, str(script), str(data)], work))
            clone = work / f"clone{run}"  # a fresh clone: empty DVC cache, no outputs
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            cold.append(measure(["dvc", "repro"], clone, {"DATA_MIRROR": str(data)}))
            # A value not run before in this clone, so DVC's run cache cannot skip the work.
            set_encoding_dim(clone, 20 + run)
            changed.append(measure(["dvc", "repro"], clone))
            # Nothing changed, in turn with DVC's floor: a fraction of a second each, so several.
            for _ in range(NO_OP_REPEATS):
                unchanged.append(measure(["dvc", "repro"], clone))
                trivial.append(measure(["dvc", "repro"], trivial_project))
            # Back to the default params (encoding_dim 36) for the train stage alone.
            subprocess.run(["git", "checkout", "-q", "--", "params.yaml"], cwd=clone, check=True)
            result, fit = train_stage(clone)
            stage.append(result)
            stage_fits.append(fit)
            print(f"run {run + 1} of {args.runs}: done", flush=True)
        kind_rows = time_kinds(args, data, work) if args.kinds else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    median = statistics.median
    tutorial_fit = per_epoch([tutorial_epochs(r) for r in tutorial])
    project_fit = per_epoch(stage_fits)
    script_seconds = median(r["seconds"] for r in tutorial)
    rows = [
        ("training, s/epoch (whole fit / epochs)", tutorial_fit[0], project_fit[0], "<= 0.25x"),
        ("training, s/epoch (median epoch)", tutorial_fit[1], project_fit[1], ""),
        (
            "whole pipeline, cold `dvc repro`",
            script_seconds,
            median(r["seconds"] for r in cold),
            "<= 0.45x",
        ),
        (
            "`dvc repro` after encoding_dim changes",
            script_seconds,
            median(r["seconds"] for r in changed),
            "<= 0.35x",
        ),
        (
            "peak RSS, MiB (train stage)",
            median(r["rss_mib"] for r in tutorial),
            median(r["rss_mib"] for r in stage),
            "<= 0.75x",
        ),
    ]
    print()
    print("| measure | tutorial script | this project | ratio | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, baseline, ours, target in rows:
        print(f"| {name} | {baseline:.2f} | {ours:.2f} | {ours / baseline:.2f}x | {target} |")
    print(
        f"| `dvc repro`, nothing changed (s), against a one-stage project's | "
        f"{median(r['seconds'] for r in trivial):.2f} | "
        f"{median(r['seconds'] for r in unchanged):.2f} | "
        f"{median(r['seconds'] for r in unchanged) / median(r['seconds'] for r in trivial):.2f}x "
        "| <= 1.15x |"
    )
    print(
        f"| final val_loss | {tutorial_fit[2]:.5f} | {project_fit[2]:.5f} "
        f"| {project_fit[2] - tutorial_fit[2]:+.5f} | within 0.002 |"
    )
    if args.kinds:
        print()
        print(
            f"Each variant, {args.kind_epochs} epochs, the median of the epochs after the first, "
            f"median over {args.runs} runs:"
        )
        print()
        print("| variant | Model.fit, s/epoch | train stage, s/epoch | ratio | target |")
        print("| --- | ---: | ---: | ---: | --- |")
        for variant, (fit_seconds, stage_seconds) in kind_rows.items():
            ratio = stage_seconds / fit_seconds
            print(
                f"| {variant} | {fit_seconds:.2f} | {stage_seconds:.2f} | {ratio:.2f}x | <= 0.7x |"
            )


def time_kinds(args, data: Path, work: Path) -> dict[str, tuple[float, float]]:
    """Each variant's median epoch: plain Model.fit of the same model, then the train stage."""
    clone = work / "kinds"  # one clone, prepared once: each variant is only params
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(
        ["dvc", "repro", "prepare"],
        cwd=clone,
        env={**ENV, "DATA_MIRROR": str(data)},
        check=True,
        capture_output=True,
    )
    (work / "kind_fit.py").write_text(KIND_FIT)
    rows = {}
    for variant in args.kinds:
        fits, stages = [], []
        for _ in range(args.runs):
            subprocess.run(["git", "checkout", "-q", "--", "params.yaml"], cwd=clone, check=True)
            settings = [*VARIANTS[variant], f"train.epochs={args.kind_epochs}"]
            set_params(clone / "params.yaml", settings)
            fit = measure([sys.executable, str(work / "kind_fit.py")], clone, {"PYTHONPATH": "."})
            # The first epoch also traces and compiles, on both sides: the epochs after it.
            fits.append(statistics.median(tutorial_epochs(fit)[0][1:]))
            trained = measure([sys.executable, "-m", "stages.train"], clone)
            stages.append(statistics.median(epoch_seconds("\n".join(trained["lines"]))[1:]))
        rows[variant] = statistics.median(fits), statistics.median(stages)
        print(f"{variant}: done", flush=True)
    return rows


def one_stage_project(folder: Path) -> Path:
    """A git and DVC project with one stage copying a file, run once: nothing left to do."""
    folder.mkdir()
    (folder / "input.txt").write_text("hello\n")
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "stage", "add", "-q", "-n", "copy", "-d", "input.txt", "-o", "output.txt"]
        + ["cp input.txt output.txt"],
        ["dvc", "repro", "-q"],
    ):
        subprocess.run(command, cwd=folder, env=ENV, check=True, capture_output=True)
    return folder


def quiet(script: str) -> str:
    """The tutorial with verbose=0 on fit() and predict(): no progress bars to print."""
    return (
        script.replace("callbacks=[EpochSeconds()])", "callbacks=[EpochSeconds()], verbose=0)")
        .replace("predict(x_test)", "predict(x_test, verbose=0)")
        .replace("predict(encoded_imgs)", "predict(encoded_imgs, verbose=0)")
    )


def set_params(path: Path, settings: list[str]) -> None:
    """Apply `key=value` settings to a params.yaml, as `dvc exp run -S` does."""
    document = yaml.safe_load(path.read_text())
    for setting in settings:
        dotted, value = setting.split("=", 1)
        section, key = dotted.split(".")
        document[section][key] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def set_encoding_dim(clone: Path, value: int) -> None:
    params = clone / "params.yaml"
    text = params.read_text()
    changed = text.replace("  encoding_dim: 36", f"  encoding_dim: {value}", 1)
    if changed == text:
        sys.exit(f"error: {params} has no 'encoding_dim: 36' line to change")
    params.write_text(changed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (3)")
    parser.add_argument(
        "--data",
        default=os.environ.get("DATA_MIRROR", "data/raw"),
        help="folder with the four MNIST .gz files (default: $DATA_MIRROR, else data/raw)",
    )
    parser.add_argument(
        "--kinds",
        default=",".join(VARIANTS),
        type=lambda text: [name for name in text.split(",") if name],
        help="variants of the family to time against Model.fit (default: all; '' for none)",
    )
    parser.add_argument(
        "--kind-epochs", type=int, default=3, help="epochs of each variant's timing, 2 or more (3)"
    )
    parser.add_argument(
        "--quiet-tutorial",
        action="store_true",
        help="run the tutorial's fit() and predict() with verbose=0, not as written",
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
