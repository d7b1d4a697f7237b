# SPDX-License-Identifier: MIT OR Apache-2.0
"""The stubs type the filter criteria: `mypy --strict` rejects a misspelled
criterion and a value of the wrong type (tests/typing/bad_criteria.py, each
line marked `# E:`), and accepts every documented form (good_criteria.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Set

import pytest

SAMPLES = Path(__file__).parent / "typing"


def mypy(path: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir=/dev/null",
         "--no-error-summary", "--hide-error-context", str(path)],
        capture_output=True, text=True, timeout=300, cwd=SAMPLES,
    )


def test_good_criteria_pass_mypy_strict() -> None:
    done = mypy(SAMPLES / "good_criteria.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_bad_criteria_fail_mypy_strict_on_exactly_the_marked_lines() -> None:
    source = (SAMPLES / "bad_criteria.py").read_text().splitlines()
    marked: Set[int] = {n for n, line in enumerate(source, 1) if "# E:" in line}
    assert len(marked) == 8
    done = mypy(SAMPLES / "bad_criteria.py")
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    lines = {int(m.group(1)) for e in errors if (m := re.search(r"bad_criteria\.py:(\d+):", e))}
    assert lines == marked, done.stdout
    text = done.stdout
    assert 'Unexpected keyword argument "protcol"' in text
    assert 'Unexpected keyword argument "sourc"' in text
    assert re.search(r'Argument "zone" to "count" of "Conntrack" has incompatible type "str"', text), text
