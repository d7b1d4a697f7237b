# SPDX-License-Identifier: MIT OR Apache-2.0
"""Filters: keyword criteria and Filter objects, with the Rust semantics."""

from __future__ import annotations

import ipaddress
from typing import Any, Callable, Dict, List

import pytest

import conntrack
from conntrack import Filter, Status, TcpState, Tuple


def build_mixed_table(ct: conntrack.Conntrack) -> None:
    """A small table with every kind of value the criteria look at."""
    ct.create(Tuple("10.0.0.1", "10.0.1.1", "tcp", 40000, 80), timeout=600, state="ESTABLISHED",
              status="SEEN_REPLY|ASSURED".split("|"), mark=0x17)
    ct.create(Tuple("10.0.0.2", "10.0.1.1", "tcp", 40001, 443), timeout=600, state="SYN_SENT", mark=1)
    ct.create(Tuple("10.0.0.3", "10.0.1.2", "tcp", 40002, 443), timeout=600, state="TIME_WAIT",
              status=["SEEN_REPLY"], zone=2)
    ct.create(Tuple("192.168.0.7", "10.0.1.1", "udp", 5353, 53), timeout=600)
    ct.create(Tuple("192.168.0.8", "8.8.8.8", "udp", 5354, 53), timeout=600, status=["SEEN_REPLY"], mark=0x27)
    ct.create(Tuple("10.0.0.4", "10.0.1.1", "icmp", icmp_id=9), timeout=30)
    ct.create(Tuple("fd00::1", "fd00::2", "tcp", 1234, 80), timeout=600, state="ESTABLISHED")
    ct.create(Tuple("fd00::3", "fd00:1::2", "udp", 999, 53), timeout=600, zone=2)
    ct.create(Tuple("10.0.0.9", "10.0.1.9", "tcp", 41000, 22), timeout=600, state="ESTABLISHED",
              reply=Tuple("10.0.1.9", "100.64.0.1", "tcp", 22, 61000), status=["SEEN_REPLY", "SRC_NAT"])


def in_net(net: str) -> Callable[[Any], bool]:
    network = ipaddress.ip_network(net)
    return lambda addr: addr.version == network.version and addr in network


# Each case: criteria, and the same condition written in plain Python.
CASES: List[Dict[str, Any]] = [
    dict(criteria=dict(proto="tcp"), by_hand=lambda f: f.proto == 6),
    dict(criteria=dict(proto=["udp", 1]), by_hand=lambda f: f.proto in (17, 1)),
    dict(criteria=dict(family="ipv6"), by_hand=lambda f: f.family == 6),
    dict(criteria=dict(family=4, proto="udp"), by_hand=lambda f: f.family == 4 and f.proto == 17),
    dict(criteria=dict(src="10.0.0.0/8"), by_hand=lambda f: in_net("10.0.0.0/8")(f.orig.src)),
    dict(criteria=dict(src=ipaddress.ip_network("192.168.0.0/24")),
         by_hand=lambda f: in_net("192.168.0.0/24")(f.orig.src)),
    dict(criteria=dict(src=["10.0.0.1", ipaddress.ip_address("fd00::1")]),
         by_hand=lambda f: str(f.orig.src) in ("10.0.0.1", "fd00::1")),
    dict(criteria=dict(dst="10.0.1.1", proto="tcp"),
         by_hand=lambda f: str(f.orig.dst) == "10.0.1.1" and f.proto == 6),
    dict(criteria=dict(reply_dst="100.64.0.1"), by_hand=lambda f: str(f.reply.dst) == "100.64.0.1"),
    dict(criteria=dict(reply_src="fd00::/16"), by_hand=lambda f: in_net("fd00::/16")(f.reply.src)),
    dict(criteria=dict(dst_port=53), by_hand=lambda f: f.orig.dst_port == 53),
    dict(criteria=dict(dst_port=range(80, 444)), by_hand=lambda f: f.orig.dst_port is not None and 80 <= f.orig.dst_port < 444),
    dict(criteria=dict(src_port={5353, 40001}), by_hand=lambda f: f.orig.src_port in (5353, 40001)),
    dict(criteria=dict(state="ESTABLISHED"), by_hand=lambda f: f.state is TcpState.ESTABLISHED),
    dict(criteria=dict(state=[TcpState.SYN_SENT, "time_wait"]),
         by_hand=lambda f: f.state in (TcpState.SYN_SENT, TcpState.TIME_WAIT)),
    dict(criteria=dict(status=Status.SEEN_REPLY), by_hand=lambda f: Status.SEEN_REPLY in f.status),
    dict(criteria=dict(status_unset="SEEN_REPLY"), by_hand=lambda f: Status.SEEN_REPLY not in f.status),
    dict(criteria=dict(status=["SEEN_REPLY", "ASSURED"]),
         by_hand=lambda f: (Status.SEEN_REPLY | Status.ASSURED) in f.status),
    dict(criteria=dict(mark=0x17), by_hand=lambda f: f.mark == 0x17),
    dict(criteria=dict(mark=(0x7, 0xF)), by_hand=lambda f: (f.mark or 0) & 0xF == 0x7),
    dict(criteria=dict(zone=2), by_hand=lambda f: f.zone_id == 2),
    dict(criteria=dict(zone=0, proto="udp"), by_hand=lambda f: f.zone_id == 0 and f.proto == 17),
    dict(criteria=dict(src=None, dst_port=None), by_hand=lambda f: True),
    dict(criteria=dict(src="172.16.0.0/12"), by_hand=lambda f: False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c["criteria"]))
def test_criteria_select_what_they_say(ct: conntrack.Conntrack, case: Dict[str, Any]) -> None:
    build_mixed_table(ct)
    everything = list(ct.dump())
    assert len(everything) == 9
    expected = sorted(f.orig for f in everything if case["by_hand"](f))
    by_kwargs = sorted(f.orig for f in ct.dump(**case["criteria"]))
    filter_object = Filter(**case["criteria"])
    by_object = sorted(f.orig for f in ct.dump(filter_object))
    by_matches = sorted(f.orig for f in everything if filter_object.matches(f))
    assert by_kwargs == expected
    assert by_object == expected
    assert by_matches == expected
    if filter_object.is_empty:
        assert ct.count(filter_object) == ct.count()
    else:
        assert ct.count(**case["criteria"]) == len(expected)


def test_filter_object() -> None:
    f = Filter(proto="udp", dst_port=53)
    assert repr(f) == "Filter(proto='udp', dst_port=53)"
    assert f == Filter(dst_port=53, proto=17) and f != Filter(proto="udp")
    assert not f.is_empty and Filter().is_empty and Filter(src=None).is_empty
    with pytest.raises(TypeError):
        hash(f)
    with pytest.raises(TypeError, match="unexpected filter criterion .port."):
        Filter(port=53)
    with pytest.raises(conntrack.InvalidInputError):
        Filter(src="10.0.0.0/33")
    with pytest.raises(conntrack.InvalidInputError):
        Filter(state="ESTABLISH")
    with pytest.raises(conntrack.InvalidInputError):
        Filter(dst_port=70000)
    with pytest.raises(conntrack.InvalidInputError):
        Filter(family="ipx")
    with pytest.raises(conntrack.InvalidInputError):
        Filter(status="SEEN")
    assert conntrack.FILTER_CRITERIA[:3] == ["family", "proto", "src"]


def test_filter_and_criteria_together_are_refused(ct: conntrack.Conntrack) -> None:
    with pytest.raises(TypeError, match="not both"):
        ct.dump(Filter(proto="tcp"), dst_port=80)
    with pytest.raises(TypeError):
        ct.count("tcp")  # type: ignore[arg-type]
