# SPDX-License-Identifier: MIT OR Apache-2.0
"""Tuples, flows, create / get / update, and the Flow object model."""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

import conntrack
from conntrack import Protocol, Status, TcpState, Tuple

from conftest import Namespace


def test_tuple_construction_and_value_semantics() -> None:
    t = Tuple("10.0.0.1", "10.0.0.2", "tcp", 40000, 80)
    assert t.src == ipaddress.IPv4Address("10.0.0.1")
    assert t.src is t.src, "addresses are cached"
    assert (t.proto, t.src_port, t.dst_port, t.family) == (Protocol.TCP, 40000, 80, 4)
    assert (t.icmp_type, t.icmp_code, t.icmp_id, t.zone) == (None, None, None, None)
    assert repr(t) == "Tuple('10.0.0.1', '10.0.0.2', 'tcp', 40000, 80)"
    assert eval(repr(t), {"Tuple": Tuple}) == t
    r = t.reversed()
    assert (str(r.src), str(r.dst), r.src_port, r.dst_port) == ("10.0.0.2", "10.0.0.1", 80, 40000)
    assert r.reversed() == t and hash(r.reversed()) == hash(t)
    assert len({t, Tuple(ipaddress.ip_address("10.0.0.1"), "10.0.0.2", 6, 40000, 80)}) == 1
    assert sorted([r, t]) == [t, r]
    assert t != "10.0.0.1"
    echo = Tuple("fd00::1", "fd00::2", "icmpv6", icmp_id=7)
    assert (echo.proto, echo.icmp_type, echo.icmp_code, echo.icmp_id, echo.family) == (
        Protocol.ICMPV6, 128, 0, 7, 6)
    assert echo.reversed().icmp_type == 129
    assert echo.src_port is None
    gre_like = Tuple("10.0.0.1", "10.0.0.2", 50)  # ESP: generic, no ports
    assert gre_like.proto == 50 and str(gre_like.proto) == "50" and gre_like.src_port is None
    assert t.to_dict() == {
        "src": "10.0.0.1", "dst": "10.0.0.2", "protocol": 6, "src_port": 40000,
        "dst_port": 80, "icmp_type": None, "icmp_code": None, "icmp_id": None, "zone": None,
    }


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("10.0.0.1", "fd00::1", "tcp", 1, 2), {}),  # mixed families
        (("10.0.0.1", "10.0.0.2", "udp"), {}),  # ports missing
        (("10.0.0.1", "10.0.0.2", "icmpv6"), {}),  # ICMPv6 on IPv4
        (("10.0.0.1", "10.0.0.2", "icmp", 1, 2), {}),  # ports on ICMP
        (("10.0.0.1", "10.0.0.2", "nonsense", 1, 2), {}),
        (("10.0.0.1", "10.0.0.2", 300, 1, 2), {}),
        (("not an address", "10.0.0.2", "tcp", 1, 2), {}),
    ],
)
def test_tuple_rejects_what_the_protocol_cannot_express(args: tuple, kwargs: dict) -> None:
    with pytest.raises(conntrack.InvalidInputError) as raised:
        Tuple(*args, **kwargs)
    assert isinstance(raised.value, ValueError)


def test_create_get_update_and_every_flow_field(ct: conntrack.Conntrack) -> None:
    orig = Tuple("10.0.0.1", "10.0.0.2", "tcp", 40000, 80)
    assert ct.get(orig) is None
    ct.create(orig, timeout=3600, state="ESTABLISHED", status=Status.SEEN_REPLY | Status.ASSURED, mark=7, zone=3)
    with pytest.raises(FileExistsError) as exists:
        ct.create(orig, timeout=3600, zone=3)
    assert exists.value.errno == 17 and "already exists" in str(exists.value)
    assert ct.get(orig) is None, "the flow lives in zone 3"
    flow = ct.get(orig, zone=3)
    assert flow is not None
    assert flow.orig == orig and flow.reply == orig.reversed()
    assert flow.orig is flow.orig, "tuples are cached"
    assert flow.proto == Protocol.TCP and str(flow.proto) == "tcp"
    assert flow.state is TcpState.ESTABLISHED and str(flow.state) == "ESTABLISHED"
    assert isinstance(flow.status, Status)
    assert Status.ASSURED in flow.status and Status.SEEN_REPLY in flow.status
    assert Status.CONFIRMED in flow.status, "the library always sends CONFIRMED"
    assert 3590 <= (flow.timeout or 0) <= 3600
    assert (flow.mark, flow.zone, flow.zone_id, flow.family) == (7, 3, 3, 4)
    assert isinstance(flow.id, int)
    assert flow.labels is None and flow.helper is None and flow.secctx is None
    assert flow.master is None and flow.event_timestamp is None
    assert flow.protoinfo is not None and flow.protoinfo["tcp"]["state"] == "ESTABLISHED"
    assert flow.synproxy == conntrack.Synproxy(0, 0, 0)
    assert flow.seqadj_orig is None and flow.seqadj_reply is None
    assert flow.use_count is not None
    text = str(flow)
    assert text.startswith("ipv4     2 tcp      6 ") and "ESTABLISHED src=10.0.0.1 dst=10.0.0.2" in text
    assert f"zone=3 use={flow.use_count} id={flow.id}" in text
    assert repr(flow) == f"<Flow {text}>"
    d = flow.to_dict()
    json.dumps(d)  # JSON-ready
    assert d["orig"] == orig.to_dict() and d["status_flags"] == ["SEEN_REPLY", "ASSURED", "CONFIRMED"]
    assert (d["mark"], d["zone"], d["id"], d["protocol_name"]) == (7, 3, flow.id, "tcp")

    ct.update(orig, zone=3, mark=9, timeout=100)
    updated = ct.get(orig, zone=3)
    assert updated is not None and updated.mark == 9 and (updated.timeout or 0) <= 100
    assert updated != flow and updated.orig == flow.orig
    with pytest.raises(FileNotFoundError):
        ct.update(Tuple("10.9.9.9", "10.0.0.2", "tcp", 1, 2), timeout=10)
    ct.create_or_update(orig, zone=3, mark=11, timeout=200)
    again = ct.get(orig, zone=3)
    assert again is not None and again.mark == 11
    ct.create_or_update(Tuple("10.0.0.5", "10.0.0.2", "udp", 5, 53), timeout=50)
    assert ct.count() == 2


def test_flows_are_frozen_hashable_and_ordered(ct: conntrack.Conntrack) -> None:
    a = Tuple("10.0.0.1", "10.0.0.2", "udp", 1000, 53)
    b = Tuple("10.0.0.1", "10.0.0.2", "udp", 1001, 53)
    ct.create(b, timeout=300)
    ct.create(a, timeout=300)
    first = sorted(ct.dump())
    assert [f.orig for f in first] == [a, b], "ordered by original tuple first"
    with pytest.raises(AttributeError):
        first[0].mark = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        conntrack.Flow()  # type: ignore[call-arg]
    same = {f: f.id for f in first}
    assert len(same) == 2 and first[0] == first[0] and first[0] != first[1]
    assert first[0] < first[1] <= first[1] and first[1] > first[0] >= first[0]
    got = ct.get(a)
    assert got is not None and got.orig == first[0].orig and got.id == first[0].id
    # Two reads of one flow are equal when nothing changed in between (the
    # timeout ticks once a second, so retry across a tick).
    for _ in range(3):
        one, two = sorted(ct.dump()), sorted(ct.dump())
        if one == two:
            break
    assert one == two and [hash(f) for f in one] == [hash(f) for f in two]
    assert len(set(one) | set(two)) == 2
    assert (first[0] == "x") is False


def test_ipv6_icmp_labels_and_reply_tuple_under_nat(
    ns: Namespace, ct: conntrack.Conntrack, tmp_path: pathlib.Path
) -> None:
    # Labels need a ruleset that uses labels (the kernel allocates their storage then).
    ns.nft("table inet labels {\n chain c {\n  type filter hook output priority 0;\n"
           "  meta mark 0x7fffffff ct label set 127\n }\n}\n")
    echo = Tuple("fd00::1", "fd00::2", "icmpv6", icmp_id=42)
    ct.create(echo, timeout=30, labels=[1, 100])
    nat_orig = Tuple("10.0.0.1", "203.0.113.5", "tcp", 40000, 443)
    nat_reply = Tuple("192.168.1.10", "198.51.100.1", "tcp", 443, 61000)
    ct.create(nat_orig, reply=nat_reply, timeout=600, state=TcpState.SYN_SENT)
    flows = {f.orig: f for f in ct.dump()}
    icmp = flows[echo]
    assert icmp.family == 6 and icmp.proto == Protocol.ICMPV6 and icmp.state is None
    assert icmp.orig.src == ipaddress.IPv6Address("fd00::1")
    assert (icmp.reply.icmp_type, icmp.reply.icmp_id) == (129, 42)
    assert icmp.labels == frozenset({1, 100})
    assert icmp.to_dict()["labels"] == [1, 100]
    # Text with labels by name, as `conntrack -L -o extended,id,labels`.
    names = tmp_path / "connlabel.conf"
    names.write_text("1 audited\n7 spare\n")
    text = icmp.to_text(labels=True, labels_file=names)
    assert text == f"{icmp} labels=audited", "bit 100 has no name"
    assert icmp.to_text(extended=False, id=False, labels=True, labels_file=os.fsencode(names)) == (
        icmp.to_text(extended=False, id=False) + " labels=audited")
    assert str(icmp) == icmp.to_text() and icmp.to_text().startswith("ipv6     10 icmpv6   58 ")
    assert not icmp.to_text(extended=False).startswith("ipv6")
    assert f" id={icmp.id}" not in icmp.to_text(id=False)
    names.write_text("7 spare\n")
    assert icmp.to_text(labels=True, labels_file=str(names)).endswith(f" id={icmp.id} labels")
    names.write_text("# no names\n")
    assert icmp.to_text(labels=True, labels_file=names) == str(icmp)
    with pytest.raises(conntrack.InvalidInputError, match="labels_file"):
        icmp.to_text(labels_file=names)
    with pytest.raises(conntrack.InvalidInputError, match="/nonexistent/connlabel.conf"):
        icmp.to_text(labels=True, labels_file="/nonexistent/connlabel.conf")
    with pytest.raises(conntrack.InvalidInputError, match="Is a directory"):
        icmp.to_text(labels=True, labels_file=tmp_path)
    with pytest.raises(TypeError, match="labels_file"):
        icmp.to_text(labels=True, labels_file=3)  # type: ignore[arg-type]
    nat = flows[nat_orig]
    assert nat.reply == nat_reply and nat.reply != nat.orig.reversed()
    assert nat.state is TcpState.SYN_SENT and Status.SEEN_REPLY not in nat.status


def test_counters_and_timestamps_from_real_traffic(ns: Namespace) -> None:
    """A real loopback TCP connection (not created over ctnetlink) as the kernel tracks it."""
    ns.exec("sh", "-c", "echo 1 > /proc/sys/net/netfilter/nf_conntrack_acct; "
                        "echo 1 > /proc/sys/net/netfilter/nf_conntrack_timestamp")
    script = (
        "import socket, sys\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
        "cli = socket.create_connection(srv.getsockname()); conn, _ = srv.accept()\n"
        "cli.sendall(b'x' * 1000); conn.recv(4096); conn.sendall(b'y' * 10); cli.recv(10)\n"
        "print(srv.getsockname()[1], cli.getsockname()[1], flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", script],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        talk_to(ns, child)


def talk_to(ns: Namespace, child: "subprocess.Popen[str]") -> None:
    try:
        assert child.stdout is not None
        server_port, client_port = map(int, child.stdout.readline().split())
        with conntrack.Conntrack(ns.name) as ct:
            flows = list(ct.dump(proto="tcp", dst_port=server_port))
            assert len(flows) == 1
            flow = flows[0]
            assert flow.orig.src_port == client_port and flow.state is TcpState.ESTABLISHED
            assert Status.ASSURED in flow.status
            assert flow.counters_orig is not None and flow.counters_reply is not None
            assert flow.counters_orig.bytes > 1000 and flow.counters_reply.packets >= 2
            assert isinstance(flow.counters_orig, conntrack.Counters)
            assert flow.timestamp is not None and flow.timestamp.start is not None
            assert abs(flow.timestamp.start / 1e9 - time.time()) < 60
            assert flow.to_dict()["counters_orig"] == flow.counters_orig._asdict()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def test_enums_keep_values_from_newer_kernels() -> None:
    assert TcpState(42).name == "UNKNOWN_42" and TcpState(42) is TcpState(42)
    assert TcpState("established") is TcpState.ESTABLISHED
    assert Protocol(250).name == "PROTO_250" and Protocol("gre") is Protocol.GRE
    assert Status(1 << 20) & Status.ASSURED == 0 and int(Status(1 << 20)) == 1 << 20
    assert Status.NAT_CLASH is Status.UNTRACKED
    assert socket.AF_INET6 != 6  # family is the IP version, not the socket constant
