# SPDX-License-Identifier: MIT OR Apache-2.0
"""Python vs Rust vs pyroute2 on one table, in one run (not a test).

    ip netns add ctpybench
    cargo run --release --example fill -- --netns ctpybench --flows 250000 --mix
    cargo build --release --example dump -p conntrack-rs
    cargo build --release --example count_by -p conntrack-py
    python conntrack-py/tests/bench.py --netns ctpybench --rust-bin target/release/examples \\
        [--pyroute2-python /path/to/venv-with-pyroute2/bin/python]
    ip netns del ctpybench

Rounds alternate the contenders so that load from elsewhere on the machine
hits them alike; the minimum and the median of the rounds are reported.

* Rust objects: ``dump --netns NAME --stats-only`` (decodes every flow into
  an owned ``Flow``), wall time of the process.
* Python objects: ``sum(1 for _ in ct.dump())`` on an open handle.
* count_by: the ``count_by`` example (in-process timing of
  ``Conntrack::count_by``, key ``src``, top 10) vs ``ct.count_by("src", top=10)``.
* pyroute2: ``sum(1 for _ in Conntrack().dump_entries())`` inside the
  namespace, once (it is slow), with the interpreter given.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import conntrack

PYROUTE2 = """
import time
from pyroute2 import Conntrack
with Conntrack() as ct:
    started = time.perf_counter()
    n = sum(1 for _ in ct.dump_entries())
    print(n, time.perf_counter() - started)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--netns", required=True)
    parser.add_argument("--rust-bin", required=True, type=Path, help="directory of the release examples")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--key", default="src")
    parser.add_argument("--pyroute2-python", help="a Python with pyroute2 installed")
    args = parser.parse_args()

    times: Dict[str, List[float]] = {k: [] for k in ("rust_dump", "py_dump", "rust_count_by", "py_count_by")}
    with conntrack.Conntrack(args.netns) as ct:
        entries = ct.count()
        print(f"table: {entries} entries in {args.netns}, Python {sys.version.split()[0]}, "
              f"conntrack-rs {conntrack.__version__}")
        sum(1 for _ in ct.dump())  # warm up caches on both sides
        for _ in range(args.rounds):
            started = time.perf_counter()
            out = subprocess.run([str(args.rust_bin / "dump"), "--netns", args.netns, "--stats-only"],
                                 capture_output=True, text=True, check=True).stdout
            times["rust_dump"].append(time.perf_counter() - started)
            rust_flows = int(re.match(r"flows=(\d+)", out).group(1))  # type: ignore[union-attr]

            started = time.perf_counter()
            py_flows = sum(1 for _ in ct.dump())
            times["py_dump"].append(time.perf_counter() - started)

            out = subprocess.run([str(args.rust_bin / "count_by"), "--netns", args.netns, "--key", args.key,
                                  "--top", "10", "--repeat", "1"], capture_output=True, text=True, check=True).stdout
            times["rust_count_by"].append(float(re.search(r"ms=([\d.]+)", out).group(1)) / 1000)  # type: ignore[union-attr]

            started = time.perf_counter()
            counts = ct.count_by(args.key, top=10)
            times["py_count_by"].append(time.perf_counter() - started)
            print(f"  round: rust dump {times['rust_dump'][-1] * 1000:.0f} ms ({rust_flows} flows), "
                  f"python dump {times['py_dump'][-1] * 1000:.0f} ms ({py_flows} flows), "
                  f"rust count_by {times['rust_count_by'][-1] * 1000:.0f} ms, "
                  f"python count_by {times['py_count_by'][-1] * 1000:.0f} ms ({counts.total} flows)")

    def show(name: str) -> float:
        values = times[name]
        print(f"{name:15} min {min(values) * 1000:8.1f} ms   median {statistics.median(values) * 1000:8.1f} ms")
        return statistics.median(values)

    print("results:")
    rust_dump, py_dump = show("rust_dump"), show("py_dump")
    rust_cb, py_cb = show("rust_count_by"), show("py_count_by")
    print(f"python dump / rust dump (median):         {py_dump / rust_dump:.2f}x (goal <= 2)")
    print(f"python dump / rust dump (min):            {min(times['py_dump']) / min(times['rust_dump']):.2f}x")
    print(f"python count_by / rust count_by (median): {py_cb / rust_cb:.2f}x (goal <= 1.2)")
    print(f"python count_by / rust count_by (min):    "
          f"{min(times['py_count_by']) / min(times['rust_count_by']):.2f}x")
    if args.pyroute2_python:
        out = subprocess.run(["ip", "netns", "exec", args.netns, args.pyroute2_python, "-c", PYROUTE2],
                             capture_output=True, text=True, check=True).stdout
        flows, seconds = out.split()
        print(f"pyroute2 dump_entries: {float(seconds) * 1000:.0f} ms ({flows} flows): "
              f"{float(seconds) / py_dump:.0f}x the Python dump (goal >= 50)")


if __name__ == "__main__":
    main()
