# SPDX-License-Identifier: MIT OR Apache-2.0
"""The bindings agree with the Rust library's own output and with
conntrack-tools on the same table."""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Dict

import pytest

import conntrack

from conftest import BIG_TABLE, MIXED, Namespace

REPO = Path(__file__).resolve().parents[2]


def rust_example(name: str) -> Path:
    """The binary of a conntrack-rs example, built with the cargo on PATH
    (same target directory as the rest of the test run)."""
    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, capture_output=True, text=True, check=True).stdout)
    subprocess.run(["cargo", "build", "--quiet", "-p", "conntrack-rs", "--example", name],
                   cwd=REPO, check=True)
    path = Path(metadata["target_directory"]) / "debug" / "examples" / name
    assert path.is_file(), path
    return path


def identity(flow: Dict[str, Any]) -> str:
    """What tells flows apart in one table: original tuple and zone (ids are
    32-bit hashes, which collide in tables this large)."""
    return json.dumps([flow["orig"], flow["zone"]], sort_keys=True)


def without_clock(flow: Dict[str, Any]) -> Dict[str, Any]:
    """A flow minus what changes between two reads (remaining timeout, refcount)."""
    return {k: v for k, v in flow.items() if k not in ("timeout", "use")}


def test_to_dict_is_the_rust_dump_json(big: Namespace) -> None:
    started = time.monotonic()
    output = subprocess.run([str(rust_example("dump")), "--netns", big.name, "--json"],
                            capture_output=True, text=True, check=True).stdout
    rust = {}
    for line in output.splitlines():
        flow = json.loads(line)
        rust[identity(flow)] = flow
    with conntrack.Conntrack(big.name) as ct:
        python = {identity(d): d for d in (flow.to_dict() for flow in ct.dump())}
        elapsed = time.monotonic() - started
        assert len(python) == len(rust) == BIG_TABLE + MIXED
        assert python.keys() == rust.keys()
        mismatched = [i for i in rust if without_clock(rust[i]) != without_clock(python[i])]
        assert not mismatched, (rust[mismatched[0]], python[mismatched[0]])
        # Remaining timeouts only went down, by at most the time between the reads.
        assert all(0 <= rust[i]["timeout"] - python[i]["timeout"] <= elapsed + 1 for i in rust)
        # count_by against grouping the Rust output by hand.
        by_port = collections.Counter((f["protocol"], f["orig"]["dst_port"]) for f in rust.values())
        counts = ct.count_by(["proto", "dst_port"])
        assert {(int(k[0]), k[1]): v for k, v in counts} == dict(by_port)
        by_src = collections.Counter(f["orig"]["src"] for f in rust.values() if f["protocol"] == 6)
        top = ct.count_by("src", top=5, proto="tcp")
        ranked = sorted(by_src.items(), key=lambda kv: (-kv[1], kv[0]))
        assert top.total == sum(by_src.values())
        assert [n for _, n in top] == [n for _, n in ranked[:5]]
        assert top.other == sum(n for _, n in ranked[5:])


def test_flow_count_matches_the_rust_owned_dump(big: Namespace) -> None:
    output = subprocess.run([str(rust_example("dump")), "--netns", big.name, "--stats-only"],
                            capture_output=True, text=True, check=True).stdout
    flows = int(re.match(r"flows=(\d+) ", output).group(1))  # type: ignore[union-attr]
    with conntrack.Conntrack(big.name) as ct:
        assert sum(1 for _ in ct.dump()) == flows == BIG_TABLE + MIXED


@pytest.mark.skipif(shutil.which("conntrack") is None, reason="conntrack-tools is not installed")
def test_str_is_the_conntrack_tools_line(big: Namespace) -> None:
    done = subprocess.run(["ip", "netns", "exec", big.name, "conntrack", "-L", "-o", "extended,id"],
                          capture_output=True, text=True, check=True)
    def key(line: str) -> str:
        # The fifth column is the remaining timeout, which ticks between two reads.
        fields = line.split()
        fields[4] = "T"
        return " ".join(fields)

    tools = {key(line) for line in done.stdout.splitlines()}
    with conntrack.Conntrack(big.name) as ct:
        ours = {key(str(flow)) for flow in ct.dump()}
    assert len(ours) == BIG_TABLE + MIXED
    ours_use_free = {re.sub(r" use=\d+", "", line) for line in ours}
    tools_use_free = {re.sub(r" use=\d+", "", line) for line in tools}
    assert ours_use_free == tools_use_free
