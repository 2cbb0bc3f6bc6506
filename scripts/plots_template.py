"""Inline Vega into plots/template.html, the page `dvc plots show/diff` fill.

    make plots-template      # or: python -m scripts.plots_template   (needs npm and its registry)

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline its curves stay blank.
This page holds their minified builds, byte for byte as `npm pack` fetches them, in <script> tags:
it draws wherever DVC writes it, with no network. The versions keep the major versions of DVC's
page (dvc_render: Vega 5, Vega-Lite 5, Vega-Embed 6); to update, change them and run this again.
The rest of the page is edited in plots/template.html itself: this writes only the libraries.
"""

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from dvc_render.html import HTML

from stages.common.files import atomic_path

TEMPLATE = Path("plots/template.html")
# Each package's minified browser build, build/<name>.min.js, in the order they must load.
LIBRARIES = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}
NPM_TIMEOUT_SECONDS = 300

# What DVC replaces in the template (str.replace, not str.format: other braces are safe).
PLACEHOLDERS = [HTML.SCRIPTS_PLACEHOLDER, HTML.PLOTS_PLACEHOLDER, HTML.REFRESH_PLACEHOLDER]
# What would end an inline <script> early or change how the HTML parser reads it.
UNSAFE_IN_SCRIPT = re.compile(r"</script|<!--", re.IGNORECASE)

# The part of the page this script writes, from its opening comment to its closing one. No build
# holds "<!--" (UNSAFE_IN_SCRIPT), so the first closing comment after the opening one is the end.
OPENING = "    <!-- Vega's libraries,"
CLOSING = "    <!-- End of Vega's libraries. -->\n"
LIBRARIES_COMMENT = f"""{OPENING} inlined so that the curves draw offline: written by
         `make plots-template` (scripts/plots_template.py), not by hand. From the npm registry,
         BSD-3-Clause (plots/LICENSE.*): {{versions}}. -->
"""


def main() -> None:
    if shutil.which("npm") is None:
        sys.exit("error: npm not found: it fetches Vega's builds from the npm registry")
    before, after = around_libraries(TEMPLATE.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as folder:
        builds = {name: build(name, version, Path(folder)) for name, version in LIBRARIES.items()}
    versions = ", ".join(f"{name} {version}" for name, version in LIBRARIES.items())
    with atomic_path(TEMPLATE) as temporary:
        temporary.write_text(before + libraries(builds, versions) + after, encoding="utf-8")
    sizes = ", ".join(f"{name} {len(code.encode()) / 1e3:.0f} kB" for name, code in builds.items())
    print(f"{TEMPLATE}: {versions} ({sizes})")


def around_libraries(page: str) -> tuple[str, str]:
    """The page before its inlined libraries and after them."""
    start = page.find(OPENING)
    end = page.find(CLOSING, start)
    if start < 0 or end < 0:
        sys.exit(
            f"error: {TEMPLATE} has no {OPENING.strip()!r} ... {CLOSING.strip()!r} comments "
            "around Vega's libraries: put them back where the libraries go"
        )
    return page[:start], page[end + len(CLOSING) :]


def libraries(builds: dict[str, str], versions: str) -> str:
    """The builds in <script> tags, between the opening and closing comments."""
    scripts = "".join(f"    <script>\n{code}    </script>\n" for code in builds.values())
    return LIBRARIES_COMMENT.format(versions=versions) + scripts + CLOSING


def build(name: str, version: str, folder: Path) -> str:
    """The package's build/<name>.min.js, from the tarball `npm pack` fetches, checked to be safe
    to inline."""
    packed = subprocess.run(
        ["npm", "pack", "--silent", f"{name}@{version}"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT_SECONDS,
    )
    if packed.returncode != 0:
        lines = (packed.stderr.strip() or packed.stdout.strip()).splitlines()
        sys.exit(f"error: npm pack {name}@{version} failed: {lines[-1] if lines else ''}")
    tarball = folder / packed.stdout.split()[-1]
    with tarfile.open(tarball) as archive:
        code = archive.extractfile(f"package/build/{name}.min.js").read().decode("utf-8")
    if unsafe := UNSAFE_IN_SCRIPT.search(code):
        sys.exit(f"error: {name}.min.js holds {unsafe[0]!r}, which cannot be inlined in <script>")
    for placeholder in PLACEHOLDERS:
        if f"{{{placeholder}}}" in code:
            sys.exit(f"error: {name}.min.js holds {{{placeholder}}}, which DVC would replace")
    return code if code.endswith("\n") else code + "\n"


if __name__ == "__main__":
    main()
