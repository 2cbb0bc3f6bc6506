"""Every params.yaml key as a Markdown table, what it may be and the stages that read it (as
dvc.yaml lists them): `python -m scripts.params_table`. params.yaml's comments say what it means."""

import yaml

from stages.common import params
from stages.common.paths import DVC_YAML


def main() -> None:
    stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
    print("| key | allowed | read by |")
    print("| --- | --- | --- |")
    # Bounds that depend on other keys are shown for params.yaml's own values.
    loaded = {"data": vars(params.load().data)}
    for dotted, declaration in params.declared().items():
        readers = ", ".join(
            name for name, stage in stages.items() if dotted in stage.get("params", [])
        )
        print(f"| `{dotted}` | {declaration['rule'].allowed(loaded)} | {readers} |")


if __name__ == "__main__":
    main()
