# SPDX-License-Identifier: MIT OR Apache-2.0
"""count, limit, stats and count_by."""

from __future__ import annotations

import collections
import ipaddress

import pytest

import conntrack
from conntrack import Protocol, TcpState, Tuple

from conftest import Namespace, fill


def test_count_limit_and_stats(ns: Namespace, ct: conntrack.Conntrack) -> None:
    assert ct.count() == 0
    fill(ct, 25)
    assert ct.count() == 25
    assert ct.count(proto="udp") == 25 and ct.count(proto="tcp") == 0
    with open("/proc/sys/net/netfilter/nf_conntrack_max") as f:
        limit = int(f.read())
    assert ct.limit() == limit
    stats = ct.stats()
    assert stats.entries == 25 and stats.max_entries == limit
    assert len(stats.per_cpu) >= 1 and [c.cpu for c in stats.per_cpu] == sorted(c.cpu for c in stats.per_cpu)
    # The creates were inserts; the totals are the sums over CPUs.
    assert stats.total.insert is not None and stats.total.insert >= 25
    assert stats.total.insert == sum(c.counters.insert or 0 for c in stats.per_cpu)
    assert stats.total.searched is None, "current kernels no longer send CTA_STATS_SEARCHED"
    assert stats.to_dict()["total"]["insert"] == stats.total.insert
    # The same numbers the kernel shows through /proc/sys in that namespace.
    assert int(ns.exec("cat", "/proc/sys/net/netfilter/nf_conntrack_count")) == 25


def test_count_by_agrees_with_grouping_a_dump_by_hand(ct: conntrack.Conntrack) -> None:
    for i in range(40):
        src = f"10.0.0.{i % 7 + 1}"
        ct.create(Tuple(src, "10.0.1.1", "udp", 2000 + i, 53 if i % 3 else 123), timeout=600)
    for i in range(15):
        ct.create(Tuple(f"10.0.0.{i % 4 + 1}", "10.0.2.2", "tcp", 3000 + i, 443), timeout=600,
                  state="ESTABLISHED" if i % 2 else "SYN_SENT")
    flows = list(ct.dump())
    by_src = collections.Counter(f.orig.src for f in flows)
    counts = ct.count_by("src")
    assert dict(counts) == counts.groups == dict(by_src)
    assert counts.total == 55 and counts.other == 0 and counts.other_groups == 0
    assert all(isinstance(k, ipaddress.IPv4Address) for k in counts.groups)
    assert [n for _, n in counts] == sorted(counts.groups.values(), reverse=True), "largest first"
    assert len(counts) == 7

    top = ct.count_by("src", top=3, proto="udp")
    udp_by_src = collections.Counter(f.orig.src for f in flows if f.proto == Protocol.UDP)
    ranked = sorted(udp_by_src.items(), key=lambda kv: (-kv[1], kv[0]))
    assert list(top) == ranked[:3]
    assert top.other == sum(n for _, n in ranked[3:])
    assert top.other_groups == len(ranked) - 3 and top.total == 40
    assert "GroupCounts({IPv4Address(" in repr(top) and f"other={top.other}" in repr(top)
    assert top.to_dict()["groups"][0] == [str(ranked[0][0]), ranked[0][1]]

    pairs = ct.count_by(["proto", "dst_port"])
    assert pairs.groups == {(Protocol.UDP, 53): 26, (Protocol.UDP, 123): 14, (Protocol.TCP, 443): 15}
    states = ct.count_by("state", proto="tcp")
    assert states.groups == {TcpState.ESTABLISHED: 7, TcpState.SYN_SENT: 8}
    one = ct.count_by("state", top=1)
    assert (one.groups, one.other, one.other_groups) == ({None: 40}, 15, 2)
    assert ct.count_by(["zone", "mark"]).groups == {(0, 0): 55}
    with pytest.raises(conntrack.InvalidInputError):
        ct.count_by("port")
    with pytest.raises(conntrack.InvalidInputError):
        ct.count_by([])


def test_count_by_top_keeps_keys_of_one_type(ct: conntrack.Conntrack) -> None:
    """The remainder of a top-N has its own place: the keys stay addresses,
    so the result sorts (it was a dict with a str "other" key among them)."""
    for i in range(12):
        ct.create(Tuple(f"10.0.0.{i % 5 + 1}", "10.0.1.1", "udp", 2000 + i, 53), timeout=600)
    top = ct.count_by("src", top=3)
    ordered = sorted(top)
    assert len(ordered) == 3 and all(isinstance(k, ipaddress.IPv4Address) for k, _ in ordered)
    assert sorted(top.groups) == [k for k, _ in ordered]
    assert sum(n for _, n in top) + top.other == top.total == 12
    assert top.other_groups == 2
