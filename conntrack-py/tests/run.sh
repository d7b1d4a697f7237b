#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# Builds the Python wheel (maturin, abi3) into a virtualenv and tests it:
# the hand-written stubs against the built module (mypy.stubtest), the
# package's types (mypy --strict), then the pytest suite against the real
# kernel in throwaway network namespaces (run as root; without root the
# kernel tests skip with a reason). Arguments go to pytest.
#
# The virtualenv lives in <target>/pyvenv (CARGO_TARGET_DIR or ./target) and
# is reused; on a fresh Debian/Ubuntu machine, run as root, it installs what
# it needs (python3-venv, the tools of tests/deps.sh).
set -eu
cd "$(dirname "$0")/.."
PY_DIR=$(pwd)
REPO=$(cd .. && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
VENV=$TARGET/pyvenv
WHEELS=$TARGET/wheels-py
PYTHON=${PYTHON:-python3}

. "$REPO/tests/deps.sh"

if ! "$PYTHON" -c "import venv, ensurepip" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: python3-venv"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "$PYTHON cannot create virtualenvs: install python3-venv" >&2
        exit 1
    fi
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# prometheus_client: for the tests of the optional conntrack.prometheus module.
if [ ! -x "$VENV/bin/maturin" ] || ! "$VENV/bin/python" -c "import pytest, mypy, prometheus_client" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "maturin>=1.9.4,<2" pytest "mypy>=1.18" "prometheus_client>=0.20"
fi

rm -rf "$WHEELS"
"$VENV/bin/maturin" build --release --quiet --interpreter "$VENV/bin/python" --out "$WHEELS"
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$WHEELS"/conntrack_rs-*.whl

# Check the installed package, not the source tree.
cd "$TARGET"
"$VENV/bin/python" -m mypy.stubtest conntrack._conntrack
"$VENV/bin/python" -m mypy --strict --cache-dir=/dev/null -p conntrack
cd "$PY_DIR"
export PYTHONDONTWRITEBYTECODE=1
"$VENV/bin/python" -m pytest -p no:cacheprovider tests "$@"
