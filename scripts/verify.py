"""Check that the committed results were made by the committed code and params, as dvc.lock says.

    make verify          # or: python -m scripts.verify

`dvc status` tells which stages changed and in what; this adds what it does not say: for each code
dependency, params value and uncached output (metrics, curves, figures: the results kept in git)
that differs, what dvc.lock recorded and what the tree holds now, one line each. Cached outputs
(data/, models/) live in DVC's cache, not in git, so one that is missing or different here is not
a mismatch: `dvc status` reports those.
"""

import sys

from dvc.repo import Repo


def main() -> None:
    with Repo() as repo, repo.lock:  # as `dvc status` holds it
        stages = list(repo.index.stages)
        made_by_a_stage = {str(out) for stage in stages for out in stage.outs}
        mismatches = [
            f"{stage.addressing}: {problem}"
            for stage in stages
            for problem in stage_mismatches(stage, made_by_a_stage)
        ]
    for line in mismatches:
        print(line)
    if mismatches:
        sys.exit(
            f"error: {len(mismatches)} mismatch(es) between the tree and dvc.lock: the committed "
            "results were not made by this code and these params; run `dvc repro` and commit "
            "dvc.lock with its outputs"
        )
    print(
        f"verified: the code, params and committed outputs of all {len(stages)} stages "
        "match dvc.lock"
    )


def stage_mismatches(stage, made_by_a_stage: set[str]) -> list[str]:
    """What differs between a stage's dvc.lock entry and the tree, from DVC's own status."""
    if not any(item.hash_info for item in [*stage.deps, *stage.outs]):
        return ["not in dvc.lock: never run, or its entry was removed"]
    problems = []
    for change in stage.status().get(stage.addressing, []):  # nothing when unchanged
        if isinstance(change, str):  # "changed command", "always changed"
            problems.append(f"{change} (dvc.yaml and dvc.lock disagree)")
            continue
        for kind, changed in change.items():
            if kind == "changed deps":
                problems += dep_mismatches(stage, changed, made_by_a_stage)
            elif kind == "changed outs":
                problems += out_mismatches(stage, changed)
            else:
                problems.append(f"{kind}: {changed}")
    return problems


def dep_mismatches(stage, changed: dict, made_by_a_stage: set[str]) -> list[str]:
    deps = {str(dep): dep for dep in stage.deps}
    problems = []
    for path, status in changed.items():
        if path in made_by_a_stage:  # data: checked as the output of the stage that makes it
            continue
        dep = deps[path]
        if isinstance(status, dict):  # params: {key: "modified" | "deleted" | "new"}
            recorded = dep.hash_info.value or {}
            now = dep.read_params()
            for key in status:
                problems.append(
                    f"{path}: {key} is {shown(now, key)} in the tree, "
                    f"{shown(recorded, key)} in dvc.lock"
                )
        else:
            problems.append(file_mismatch(dep, status))
    return problems


def out_mismatches(stage, changed: dict) -> list[str]:
    outs = {str(out): out for out in stage.outs}
    return [
        file_mismatch(outs[path], status)
        for path, status in changed.items()
        if not outs[path].use_cache
    ]


def file_mismatch(output, status: str) -> str:
    recorded = output.hash_info.value
    if status == "deleted" or not output.exists:
        return f"{output}: missing from the tree, md5 {recorded} in dvc.lock"
    if not recorded:
        return f"{output}: md5 {output.get_hash().value} in the tree, not in dvc.lock"
    return f"{output}: md5 {output.get_hash().value} in the tree, {recorded} in dvc.lock"


def shown(values: dict, key: str) -> str:
    return repr(values[key]) if key in values else "missing"


if __name__ == "__main__":
    main()
