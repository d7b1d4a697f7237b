# SPDX-License-Identifier: MIT OR Apache-2.0
"""Events per second, Python vs Rust, on one burst (not a test).

    cargo build --release -p conntrack-py --example events_rate
    python conntrack-py/tests/bench_events.py --rust-bin target/release/examples [--flows 100000] [--rounds 3]

Makes a throwaway namespace (``nf_conntrack_events=1``). Each round, for each
contender: subscribe to NEW and DESTROY with a 1 GiB forced receive buffer,
create ``--flows`` UDP flows through the library and flush them (2 x flows
events queue up on the socket, unread), then time the draining of the
queue:

* Rust owned: the ``events_rate`` example iterating owned ``EventItem``s
  (``Iterator for Events``), reading the source port of every flow.
* Rust borrowed: ``events_rate --borrowed`` (lent views, no allocation).
* Python: ``for item in events``, reading ``item.flow.orig.src_port``.

Contenders alternate within a round; minimum and median over rounds.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import conntrack


def burst(ct: conntrack.Conntrack, flows: int) -> None:
    for i in range(flows):
        src = ipaddress.IPv4Address(0x0A000001 + i)
        ct.create(conntrack.Tuple(src, "172.16.0.1", "udp", 1024 + i % 60000, 53), timeout=600)
    ct.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rust-bin", required=True, type=Path)
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    name = f"ctpy-bench-events-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        conntrack.Sysctl(name).write("nf_conntrack_events", 1)
        want = 2 * args.flows
        times: Dict[str, List[float]] = {"rust_owned": [], "rust_borrowed": [], "python": []}
        with conntrack.Conntrack(name) as ct:
            for round_ in range(args.rounds):
                for mode in ("rust_owned", "rust_borrowed"):
                    command = [str(args.rust_bin / "events_rate"), "--netns", name, "--events", str(want)]
                    if mode == "rust_borrowed":
                        command.append("--borrowed")
                    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                    assert child.stdout is not None and child.stdin is not None
                    assert child.stdout.readline().strip() == "ready"
                    burst(ct, args.flows)
                    child.stdin.write("go\n")
                    child.stdin.flush()
                    out = child.stdout.read()
                    child.wait()
                    match = re.search(r"ms=([\d.]+) events=(\d+) lost=(\d+)", out)
                    assert match and int(match.group(2)) == want and match.group(3) == "0", out
                    times[mode].append(float(match.group(1)) / 1000)
                with ct.events(kinds=["new", "destroy"], receive_buffer=1 << 30) as events:
                    burst(ct, args.flows)
                    seen = lost = ports = 0
                    started = time.perf_counter()
                    for item in events:
                        if isinstance(item, conntrack.Event):
                            ports += item.flow.orig.src_port or 0
                        else:
                            lost += 1
                        seen += 1
                        if seen == want:
                            break
                    times["python"].append(time.perf_counter() - started)
                    assert lost == 0
                print(f"round {round_}: " + ", ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in times.items()))
        print(f"results ({want} events: {args.flows} NEW + {args.flows} DESTROY):")
        for key, values in times.items():
            print(f"  {key:14} min {min(values) * 1000:8.1f} ms  median {statistics.median(values) * 1000:8.1f} ms"
                  f"  ({want / statistics.median(values) / 1e6:.2f} M events/s)")
        for rust in ("rust_owned", "rust_borrowed"):
            print(f"  python / {rust}: median {statistics.median(times['python']) / statistics.median(times[rust]):.2f}x,"
                  f" min {min(times['python']) / min(times[rust]):.2f}x")
    finally:
        subprocess.run(["ip", "netns", "del", name])


if __name__ == "__main__":
    main()
