"""Every params.yaml key as a Markdown table: what it may be, the stages that read it, what it
means (`python -m scripts.params_table`)."""

from stages import params


def main() -> None:
    print("| key | allowed | read by | what it is |")
    print("| --- | --- | --- | --- |")
    # Bounds that depend on other keys are shown for params.yaml's own values.
    loaded = {"data": vars(params.load().data)}
    for dotted, declaration in params.declared().items():
        readers = ", ".join(declaration["stages"])
        allowed = declaration["rule"].allowed(loaded)
        print(f"| `{dotted}` | {allowed} | {readers} | {declaration['help']} |")


if __name__ == "__main__":
    main()
