# SPDX-License-Identifier: MIT OR Apache-2.0
"""Orphan detection: categories, thresholds, exclusions, counting, deleting.

Idle time = the namespace's configured timeout for the flow's state minus
its remaining timeout, so flows created with a chosen remaining timeout have
a known idle time.
"""

from __future__ import annotations

import datetime

import pytest

import conntrack
from conntrack import OrphanCategory, Tuple

from conftest import Namespace

IDLE_TCP = Tuple("10.0.0.1", "10.0.9.1", "tcp", 40000, 443)
FRESH_TCP = Tuple("10.0.0.2", "10.0.9.1", "tcp", 40001, 443)
NAT_TCP = Tuple("10.0.0.3", "10.0.9.1", "tcp", 40002, 443)
OLD_UDP = Tuple("10.0.0.4", "10.0.9.2", "udp", 5000, 53)
YOUNG_UDP = Tuple("10.0.0.5", "10.0.9.2", "udp", 5001, 53)
HALF_CLOSED = Tuple("10.0.0.6", "10.0.9.1", "tcp", 40003, 80)


@pytest.fixture
def table(ns: Namespace, ct: conntrack.Conntrack) -> conntrack.Conntrack:
    # Per-namespace timeouts, written through the library inside the namespace.
    sysctl = conntrack.Sysctl(ns.name)
    sysctl.write("nf_conntrack_udp_timeout", 1000)
    sysctl.write("nf_conntrack_tcp_timeout_time_wait", 2000)
    established = sysctl.read("nf_conntrack_tcp_timeout_established")
    replied = ["SEEN_REPLY", "ASSURED"]
    # Idle for `established - 3600` seconds (about 5 days with the default).
    ct.create(IDLE_TCP, timeout=3600, state="ESTABLISHED", status=replied)
    ct.create(FRESH_TCP, timeout=established - 1, state="ESTABLISHED", status=replied)
    ct.create(NAT_TCP, reply=Tuple("10.0.9.1", "100.64.0.1", "tcp", 443, 61000), timeout=3600,
              state="ESTABLISHED", status=replied)
    ct.create(OLD_UDP, timeout=10)  # unreplied, idle 990 s
    ct.create(YOUNG_UDP, timeout=990)  # unreplied, idle 10 s
    # Idle 1000 s; the remaining time is above the 300 s TCP timeouts that
    # would make the estimate ambiguous.
    ct.create(HALF_CLOSED, timeout=1000, state="TIME_WAIT", status=replied)
    return ct


def test_orphans_by_category(table: conntrack.Conntrack) -> None:
    orphans = {o.orig: o for o in table.orphans()}
    assert set(orphans) == {IDLE_TCP, OLD_UDP, HALF_CLOSED}
    idle = orphans[IDLE_TCP]
    assert isinstance(idle, conntrack.Orphan) and isinstance(idle, conntrack.Flow)
    assert idle.category is OrphanCategory.IDLE_ESTABLISHED
    established = conntrack.Sysctl(table.netns).read("nf_conntrack_tcp_timeout_established")
    assert idle.idle is not None and abs(idle.idle - (established - 3600)) <= 5
    assert idle.age is None, "no timestamp extension"
    assert orphans[OLD_UDP].category is OrphanCategory.LONG_UNREPLIED
    assert orphans[OLD_UDP].idle is not None and 985 <= orphans[OLD_UDP].idle <= 995
    assert orphans[HALF_CLOSED].category is OrphanCategory.LINGERING_HALF_CLOSED
    d = idle.to_dict()
    assert d["category"] == "idle_established" and d["idle"] == idle.idle and d["orig"] == IDLE_TCP.to_dict()
    assert "idle_established" in repr(idle)

    counts = table.count_orphans()
    assert (counts.idle_established, counts.long_unreplied, counts.lingering_half_closed) == (1, 1, 1)
    assert counts.total == 3 and counts.candidates >= 5


def test_thresholds_categories_exclusions_and_filters(table: conntrack.Conntrack) -> None:
    def origs(**kwargs: object) -> set:
        return {o.orig for o in table.orphans(**kwargs)}  # type: ignore[arg-type]

    assert origs(categories=["long_unreplied"]) == {OLD_UDP}
    assert origs(categories=OrphanCategory.IDLE_ESTABLISHED) == {IDLE_TCP}
    assert origs(idle=datetime.timedelta(days=6), unreplied=2000, half_closed=1100) == set()
    assert origs(unreplied=5) == {IDLE_TCP, OLD_UDP, YOUNG_UDP, HALF_CLOSED}
    assert origs(include_nat=True) == {IDLE_TCP, NAT_TCP, OLD_UDP, HALF_CLOSED}
    assert origs(exclude_assured=True) == {OLD_UDP}
    assert origs(proto="udp") == {OLD_UDP}
    assert origs(filter=conntrack.Filter(dst_port=443)) == {IDLE_TCP}
    # Timeouts of a `ct timeout` policy: the established flow is then barely idle.
    assert origs(timeouts={"nf_conntrack_tcp_timeout_established": 3700}) == {OLD_UDP, HALF_CLOSED}
    with pytest.raises(conntrack.InvalidInputError):
        table.orphans(categories=["lost"])
    with pytest.raises(conntrack.InvalidInputError):
        table.orphans(timeouts={"nf_conntrack_max": 5})
    with pytest.raises(conntrack.InvalidInputError):
        table.orphans(idle=-1)


def test_delete_orphans_acts_like_every_call_and_previews_on_request(table: conntrack.Conntrack) -> None:
    before = table.count()
    dry = table.delete_orphans(dry_run=True)
    assert (dry.path, dry.matched, dry.deleted) == ("dry_run", 3, 0)
    assert table.count() == before
    report = table.delete_orphans(categories=["idle_established", "long_unreplied"])
    assert (report.path, report.matched, report.deleted) == ("dump_and_delete", 2, 2)
    assert {f.orig for f in table.dump()} == {FRESH_TCP, NAT_TCP, YOUNG_UDP, HALF_CLOSED}


def test_categories_of_the_wrong_type_name_the_argument(ct: conntrack.Conntrack) -> None:
    for method in (ct.orphans, ct.count_orphans):
        with pytest.raises(TypeError, match="categories: expected an OrphanCategory.*not 5"):
            method(categories=5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="categories: .*not 5"):
            method(categories=["long_unreplied", 5])  # type: ignore[list-item]
    with pytest.raises(conntrack.InvalidInputError, match="unknown orphan category"):
        ct.orphans(categories="lost")
    assert ct.orphans(categories=[OrphanCategory.LONG_UNREPLIED, "idle_established"]) == []


def test_evidence_from_the_socket_table(ns: Namespace, ct: conntrack.Conntrack) -> None:
    import subprocess

    # A live UDP service on 127.0.0.1:5353 inside the namespace; nothing on 5354.
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns.name, "python3", "-c",
         "import socket, sys, time\n"
         "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "s.bind(('127.0.0.1', 5353))\n"
         "print('ready', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        alive = Tuple("127.0.0.1", "127.0.0.1", "udp", 40000, 5353)
        gone = Tuple("127.0.0.1", "127.0.0.1", "udp", 40001, 5354)
        forwarded = Tuple("10.0.0.4", "10.0.9.2", "udp", 5000, 53)
        for t in (alive, gone, forwarded):
            ct.create(t, timeout=5)  # unreplied UDP, idle 25 s of 30
        kinds = {"categories": "long_unreplied", "unreplied": 10}
        found = {o.orig: o.evidence for o in ct.orphans(**kinds)}
        assert found == {gone: "confirmed", forwarded: "suspected"}
        counts = ct.count_orphans(**kinds)
        assert (counts.confirmed, counts.suspected, counts.alive) == (1, 1, 1)
        assert counts.total == 2
        assert [o.orig for o in ct.orphans(confirmed=True, **kinds)] == [gone]
        assert {o.evidence for o in ct.orphans(sockets="off", **kinds)} == {"suspected"}
        assert ct.orphans(confirmed=True, **kinds)[0].to_dict()["evidence"] == "confirmed"
        report = ct.delete_orphans(dry_run=False, confirmed=True, **kinds)
        assert (report.matched, report.deleted) == (1, 1)
        assert ct.get(gone) is None and ct.get(alive) is not None
        with pytest.raises(conntrack.InvalidInputError):
            ct.orphans(sockets="everywhere")  # type: ignore[arg-type]
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
