#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
# Builds the portable Python wheel (maturin, abi3, manylinux2014: linked by
# zig against glibc 2.17, so it installs on RHEL 8, Ubuntu 20.04, Debian 11 and
# later), checks its platform tag with `auditwheel show`, installs it into a
# virtualenv and tests it: the hand-written stubs against the built module
# (mypy.stubtest), the package's types (mypy --strict), then the pytest suite
# against the real kernel in throwaway network namespaces (run as root; without
# root the kernel tests skip with a reason). Arguments go to pytest.
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
# ziglang: the zig toolchain maturin links with (--zig), from PyPI;
# prometheus_client: for the tests of the optional conntrack.prometheus module.
if [ ! -x "$VENV/bin/maturin" ] || [ ! -x "$VENV/bin/auditwheel" ] \
    || ! "$VENV/bin/python" -c "import pytest, mypy, ziglang, prometheus_client" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "maturin>=1.9.4,<2" pytest "mypy>=1.18" \
        ziglang auditwheel "prometheus_client>=0.20"
fi

rm -rf "$WHEELS"
# maturin finds zig as `python -m ziglang` of the virtualenv on PATH.
PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build --release --quiet --zig \
    --compatibility manylinux2014 --interpreter "$VENV/bin/python" --out "$WHEELS"
set -- "$WHEELS"/conntrack_rs-*.whl "$@"
WHEEL=$1
shift
case "$WHEEL" in
*-manylinux2014_x86_64*.whl | *[-.]manylinux_2_17_x86_64*.whl | *[-.]manylinux_2_28_x86_64*.whl) ;;
*) echo "not a portable wheel (manylinux2014 or manylinux_2_28): $WHEEL" >&2; exit 1 ;;
esac
# auditwheel reads the symbol versions the extension really needs: the name
# alone could lie.
AUDIT=$("$VENV/bin/auditwheel" show "$WHEEL")
echo "$AUDIT" | tr '\n' ' ' | sed 's/  */ /g'
echo
if ! echo "$AUDIT" | tr '\n' ' ' | grep -Eq 'consistent with the following platform tag: *"(manylinux_2_17|manylinux_2_28)_x86_64"'; then
    echo "auditwheel: $WHEEL does not qualify for manylinux2014 or manylinux_2_28" >&2
    exit 1
fi
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$WHEEL"

# Check the installed package, not the source tree.
cd "$TARGET"
"$VENV/bin/python" -m mypy.stubtest conntrack._conntrack
"$VENV/bin/python" -m mypy --strict --cache-dir=/dev/null -p conntrack
cd "$PY_DIR"
export PYTHONDONTWRITEBYTECODE=1
"$VENV/bin/python" -m pytest -p no:cacheprovider tests "$@"
