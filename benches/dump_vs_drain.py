#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Example-level comparison of `dump --stats-only` with the raw drain (DESIGN.md bars).

    benches/dump_vs_drain.py BIN_DIR NETNS [ROUNDS]

BIN_DIR holds the release examples (`drain`, `dump`); NETNS is a filled
namespace (`fill --netns NETNS --mix --flows 250000`). Each round runs, in a
random order, `drain`, `dump --stats-only --prefetch never` (everything on
one thread) and `dump --stats-only --prefetch auto` (the default: a prefetch
thread from 4 096 flows), timing each process from start to exit. Prints per
command the median, min and max, the ratio of medians to `drain`, the median
of the per-round ratios, and the ratio of the minima. Run it as root on a
quiet machine: other load hits the two-thread path hardest.
"""

import random
import statistics
import subprocess
import sys
import time


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    bins, netns = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) == 4 else 11
    commands = {
        "drain": [f"{bins}/drain", "--netns", netns],
        "never": [f"{bins}/dump", "--netns", netns, "--stats-only", "--prefetch", "never"],
        "auto": [f"{bins}/dump", "--netns", netns, "--stats-only", "--prefetch", "auto"],
    }
    times = {name: [] for name in commands}
    for _ in range(rounds):
        order = list(commands.items())
        random.shuffle(order)
        for name, command in order:
            started = time.perf_counter()
            run = subprocess.run(command, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            if run.returncode != 0:
                sys.exit(f"{' '.join(command)}: {run.stderr.strip()}")
            times[name].append(elapsed)
    drain = times["drain"]
    for name, values in times.items():
        median = statistics.median(values)
        paired = statistics.median(a / b for a, b in zip(values, drain))
        print(
            f"{name:6} median {median * 1e3:7.1f} ms  min {min(values) * 1e3:7.1f}"
            f"  max {max(values) * 1e3:7.1f}  ratio of medians {median / statistics.median(drain):.3f}"
            f"  median of paired ratios {paired:.3f}  ratio of minima {min(values) / min(drain):.3f}"
        )


if __name__ == "__main__":
    main()
