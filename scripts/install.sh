#!/usr/bin/env bash
# Make .venv hold exactly what the given lock files pin, nothing more (`make venv` runs this):
#
#   scripts/install.sh requirements.lock                          # what the pipeline needs
#   scripts/install.sh requirements.lock requirements-dev.lock    # and the test and lint tools
#
# uv installs: the uv on PATH, else PyPI's uv at UV_VERSION, installed into .uv/ by pip once.
# Where uv cannot be had, pip installs the same locks, slower and without removing extras.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
UV_VERSION=0.13.9
# The Python to build .venv from, never .venv's own (make puts .venv/bin first on PATH).
PATH=$(tr : '\n' <<< "$PATH" | grep -vxF "$PWD/$VENV/bin" | paste -sd :)
PYTHON=${PYTHON:-python3.11}

find_uv() {
  if command -v uv > /dev/null; then
    command -v uv
    return
  fi
  if [ ! -x .uv/bin/uv ]; then
    rm -rf .uv
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --target .uv "uv==$UV_VERSION" ||
      return 1
  fi
  echo "$PWD/.uv/bin/uv"
}

if uv=$(find_uv); then
  [ -x "$VENV/bin/python" ] || "$uv" venv --quiet --python "$PYTHON" "$VENV"
  # Compiled once here, not by every process that imports TensorFlow, Keras or DVC: none can
  # write its bytecode where PYTHONDONTWRITEBYTECODE is set, as on many CI machines.
  "$uv" pip sync --quiet --compile-bytecode --python "$VENV/bin/python" "$@"
else
  echo "warning: uv could not be installed; installing with pip instead" >&2
  # A .venv that uv made has no pip: start it again.
  "$VENV/bin/python" -m pip --version > /dev/null 2>&1 || "$PYTHON" -m venv --clear "$VENV"
  requirements=()
  for lock in "$@"; do requirements+=(-r "$lock"); done
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
fi
