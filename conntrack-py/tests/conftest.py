# SPDX-License-Identifier: MIT OR Apache-2.0
"""Fixtures for the kernel tests: throwaway network namespaces.

Each namespace is created with ``ip netns add``, gets loopback up and an
nftables ruleset using ``ct state`` (so conntrack tracks its traffic), and is
deleted when the test ends, also when it fails. Without root, tests that need
a namespace skip with a one-line reason; with root, any setup failure is a
test failure. The host's own table and global sysctls are never changed.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import subprocess
from typing import Iterator, List

import pytest

import conntrack

IS_ROOT = os.geteuid() == 0
SKIP_REASON = "kernel test needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces"
PREFIX = f"ctpy-{os.getpid()}-"
_counter = itertools.count()


def run(*args: str, input: str | None = None) -> str:
    """Runs a command, failing the test with its output if it fails."""
    done = subprocess.run(args, input=input, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done.stdout


class Namespace:
    """A throwaway network namespace with conntrack armed by nftables."""

    def __init__(self, name: str) -> None:
        self.name = name

    def exec(self, *args: str, input: str | None = None) -> str:
        return run("ip", "netns", "exec", self.name, *args, input=input)

    def nft(self, ruleset: str) -> None:
        self.exec("nft", "-f", "-", input=ruleset)

    def sysctl_path(self, key: str) -> str:
        return f"/proc/sys/net/netfilter/{key}"


def make_namespace() -> Namespace:
    if not IS_ROOT:
        pytest.skip(SKIP_REASON)
    name = f"{PREFIX}{next(_counter)}"
    run("ip", "netns", "add", name)
    ns = Namespace(name)
    try:
        ns.exec("ip", "link", "set", "lo", "up")
        ns.nft(
            "table inet ctpy {\n"
            "  chain out { type filter hook output priority 0; ct state new accept; }\n"
            "  chain in { type filter hook input priority 0; ct state established,related accept; }\n"
            "}\n"
        )
    except BaseException:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        raise
    return ns


def delete_namespace(ns: Namespace) -> None:
    subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


@pytest.fixture
def ns() -> Iterator[Namespace]:
    """A fresh namespace for one test."""
    namespace = make_namespace()
    try:
        yield namespace
    finally:
        delete_namespace(namespace)


@pytest.fixture
def ct(ns: Namespace) -> Iterator[conntrack.Conntrack]:
    """A handle on the fresh namespace's (empty) table."""
    with conntrack.Conntrack(ns.name) as handle:
        yield handle


def udp_tuple(i: int) -> conntrack.Tuple:
    """Flow ``i`` of a table: its own source address and port, to 172.16.x.y:53."""
    src = ipaddress.IPv4Address(0x0A000001 + i)
    dst = ipaddress.IPv4Address(0xAC100000 + i % 16)
    return conntrack.Tuple(src, dst, "udp", 1024 + i % 60000, 53)


def fill_mixed(ct: conntrack.Conntrack, count: int) -> None:
    """Creates ``count`` flows of every kind: TCP in several states (some
    marked, some zoned, some NAT-like), UDP replied or not, ICMP, IPv6."""
    states = ["ESTABLISHED", "SYN_SENT", "TIME_WAIT", "CLOSE_WAIT"]
    for i in range(count):
        kind = i % 5
        if kind == 0:
            orig = conntrack.Tuple(f"10.1.{i // 250}.{i % 250 + 1}", "10.2.0.1", "tcp", 30000 + i, 443)
            ct.create(orig, timeout=900, state=states[i % 4], status=["SEEN_REPLY", "ASSURED"],
                      mark=i % 3, zone=i % 2)
        elif kind == 1:
            orig = conntrack.Tuple(f"10.1.{i // 250}.{i % 250 + 1}", "10.2.0.2", "tcp", 30000 + i, 80)
            reply = conntrack.Tuple("10.2.0.2", "100.64.0.1", "tcp", 80, 40000 + i)
            ct.create(orig, reply=reply, timeout=900, state="ESTABLISHED", status=["SEEN_REPLY"])
        elif kind == 2:
            orig = conntrack.Tuple(f"fd00::{i + 1:x}", "fd00:1::53", "udp", 20000 + i, 53)
            ct.create(orig, timeout=900, status=["SEEN_REPLY"] if i % 2 else None)
        elif kind == 3:
            ct.create(conntrack.Tuple(f"10.3.{i // 250}.{i % 250 + 1}", "10.2.0.9", "icmp", icmp_id=i),
                      timeout=900)
        else:
            ct.create(conntrack.Tuple(f"fd00::{i + 1:x}", "fd00:1::1", "tcp", 20000 + i, 22),
                      timeout=900, state="ESTABLISHED", mark=7)


def fill(ct: conntrack.Conntrack, count: int) -> List[conntrack.Tuple]:
    """Creates ``count`` unreplied UDP flows; returns their tuples."""
    tuples = [udp_tuple(i) for i in range(count)]
    for t in tuples:
        ct.create(t, timeout=600)
    return tuples


BIG_TABLE = 30_000
MIXED = 500


@pytest.fixture(scope="module")
def big() -> Iterator[Namespace]:
    """A namespace holding ``BIG_TABLE`` UDP flows plus ``MIXED`` flows of
    every kind (module-wide; for tests that only read)."""
    namespace = make_namespace()
    try:
        with conntrack.Conntrack(namespace.name) as handle:
            fill(handle, BIG_TABLE)
            fill_mixed(handle, MIXED)
        yield namespace
    finally:
        delete_namespace(namespace)


@pytest.fixture(scope="session", autouse=True)
def no_leftover_namespaces() -> Iterator[None]:
    """Fails the session if a namespace of this run is left behind."""
    yield
    if IS_ROOT:
        left = [n for n in conntrack.list_netns() if n.startswith(PREFIX)]
        for name in left:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        assert not left, f"namespaces left behind: {left}"
