# SPDX-License-Identifier: MIT OR Apache-2.0
"""Hostile and mistaken arguments: refused at the edge, naming the argument,
its value and what is allowed; never a widened filter, never a bare
OverflowError or a TypeError without the argument's name."""

from __future__ import annotations

import errno
from typing import Any, Dict

import pytest

import conntrack
from conntrack import Filter, InvalidInputError, Status, Tuple


def tcp(i: int, port: int = 80) -> Tuple:
    return Tuple(f"10.0.0.{i}", "10.0.1.1", "tcp", 40000 + i, port)


@pytest.mark.parametrize(
    "criteria, words",
    [
        (dict(dst_port="443"), ["dst_port", "'443'", "str"]),
        (dict(src_port=1.5), ["src_port", "1.5", "float"]),
        (dict(zone="x"), ["zone", "'x'"]),
        (dict(zone=True), ["zone", "True", "bool"]),
        (dict(mark="7"), ["mark", "'7'"]),
        (dict(mark=(1, "x")), ["mark mask", "'x'"]),
        (dict(mark=(1, 2, 3)), ["mark", "(1, 2, 3)"]),
        (dict(labels=2.5), ["labels", "2.5", "float"]),
        (dict(src=42), ["src", "42", "int"]),
        (dict(proto=3.0), ["proto", "3.0"]),
        (dict(state=b"ESTABLISHED"), ["state", "bytes"]),
        (dict(family=None, status=[1.0]), ["status", "1.0"]),
    ],
)
def test_a_wrong_type_is_a_type_error_naming_the_argument(
    criteria: Dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(TypeError) as caught:
        Filter(**criteria)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


@pytest.mark.parametrize(
    "criteria, words",
    [
        (dict(zone=70000), ["zone", "70000", "0-65535"]),
        (dict(zone=-1), ["zone", "-1", "0-65535"]),
        (dict(zone=10**30), ["zone", "0-65535"]),
        (dict(mark=-1), ["mark", "-1", "4294967295"]),
        (dict(mark=(1, 2**32)), ["mark mask", "4294967296"]),
        (dict(dst_port=65536), ["dst_port", "65536", "0-65535"]),
        (dict(labels=128), ["labels", "128", "0-127"]),
        (dict(labels="no-such-label"), ["labels", "no-such-label", "0-127"]),
        (dict(proto=256), ["proto", "256", "0-255"]),
        (dict(proto="nonsense-proto"), ["proto", "nonsense-proto", "tcp", "/etc/protocols"]),
        (dict(state="ESTABLISH"), ["state", "ESTABLISH", "TIME_WAIT", "LISTEN"]),
        (dict(state=12), ["state", "12", "0-9"]),
        (dict(status="ASURED"), ["status", "ASURED", "SEEN_REPLY"]),
        (dict(status=0x10000), ["status", "65536", "16 status bits"]),
        (dict(src="10.0.0.0/33"), ["src", "10.0.0.0/33"]),
        (dict(family="ipv5"), ["family", "ipv5"]),
    ],
)
def test_an_out_of_range_value_is_refused_with_the_allowed_range(
    criteria: Dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Filter(**criteria)
    assert isinstance(caught.value, ValueError)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


@pytest.mark.parametrize(
    "criteria, words",
    [
        (dict(mark=(0x100, 0xFF)), ["0x100/0xff", "0x0/0xff"]),
        (dict(mark=(42, 0xF)), ["0x2a/0xf"]),
        (dict(mark=(7, 0)), ["0x7/0x0"]),
        (dict(proto="udp", state="ESTABLISHED"), ["TCP state", "udp"]),
        (dict(proto="gre", dst_port=53), ["port", "gre"]),
        (dict(family="ipv4", src="2001:db8:1::1"), ["family ipv4", "2001:db8:1::1"]),
        (dict(src="10.0.0.1", dst="2001:db8::1"), ["src 10.0.0.1", "dst 2001:db8::1"]),
    ],
)
def test_a_filter_that_can_match_nothing_is_refused(
    criteria: Dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Filter(**criteria)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_names_conntrack_tools_takes() -> None:
    assert Filter(state="LISTEN") == Filter(state="SYN_SENT2")
    assert Filter(proto="igmp") == Filter(proto=2)
    assert Tuple("10.0.0.1", "10.0.0.2", "igmp").proto == 2
    assert Tuple("fd00::1", "fd00::2", "ipv6-icmp", icmp_type=128).proto == 58


def test_conditions_every_flow_satisfies_are_no_condition() -> None:
    assert Filter(mark=(0, 0)).is_empty
    assert Filter(labels=[]).is_empty
    assert Filter(proto=range(256)).is_empty
    assert Filter(src=["0.0.0.0/0", "::/0"]).is_empty
    assert not Filter(mark=(0, 1)).is_empty
    assert not Filter(src="0.0.0.0/0").is_empty
    assert not Filter(src=[]).is_empty


def test_ports_select_only_the_port_protocols(ct: conntrack.Conntrack) -> None:
    ct.create(Tuple("10.0.4.1", "10.0.4.2", "udp", 5000, 53), timeout=600)
    ct.create(Tuple("10.0.4.1", "10.0.4.2", "tcp", 5000, 53), timeout=600, state="ESTABLISHED")
    # GRE keys sit where ports would: key 0x35 is not port 53.
    gre = Tuple("10.0.4.1", "10.0.4.3", "gre", 0x35, 0x35)
    ct.create(gre, timeout=600)
    ct.create(Tuple("10.0.4.1", "10.0.4.4", "icmp", icmp_id=53), timeout=600)
    assert ct.count(dst_port=53) == 2
    assert not any(f.orig == gre for f in ct.dump(dst_port=53))
    assert ct.delete(dst_port=53).deleted == 2
    assert ct.get(gre) is not None and ct.count() == 2


def test_deletes_never_remove_more_than_asked(ct: conntrack.Conntrack) -> None:
    for i, mark in enumerate([0, 0, 0, 0x100, 42]):
        ct.create(tcp(i + 1), timeout=600, state="ESTABLISHED", mark=mark)
    ct.create(Tuple("10.0.2.1", "10.0.2.2", "udp", 5000, 53), timeout=600)
    total = ct.count(proto=["tcp", "udp"])
    assert total == 6
    for criteria in (dict(mark=(0x100, 0xFF)), dict(mark=(42, 0xF))):
        with pytest.raises(InvalidInputError):
            ct.delete(dry_run=True, **criteria)
        with pytest.raises(InvalidInputError):
            ct.delete(**criteria)
    with pytest.raises(InvalidInputError, match="every flow"):
        ct.delete(mark=(0, 0))
    report = ct.delete(limit=0, proto="tcp")
    assert (report.matched, report.deleted) == (0, 0)
    assert ct.count(proto=["tcp", "udp"]) == total
    for bad in (dict(limit=-1), dict(limit=2**64), dict(rate=0), dict(rate=-5)):
        with pytest.raises(InvalidInputError) as caught:
            ct.delete(proto="tcp", **bad)
        assert next(iter(bad)) in str(caught.value)
    with pytest.raises(TypeError, match="limit"):
        ct.delete(proto="tcp", limit="3")  # type: ignore[arg-type]
    assert ct.count(proto=["tcp", "udp"]) == total
    # The masked value the kernel means: 42 & 0xf == 0xa.
    assert ct.delete(mark=(0xA, 0xF)).deleted == 1


def test_updates_add_status_bits(ct: conntrack.Conntrack) -> None:
    t = tcp(1)
    ct.create(t, timeout=600, state="ESTABLISHED", status=["SEEN_REPLY", "ASSURED"])
    ct.update(t, status="FIXED_TIMEOUT")
    flow = ct.get(t)
    assert flow is not None
    assert Status.FIXED_TIMEOUT in flow.status and Status.ASSURED in flow.status
    u = Tuple("10.0.3.1", "10.0.3.2", "udp", 53, 53)
    ct.create(u, timeout=600, status="SEEN_REPLY")
    ct.update(u, status="ASSURED")
    ct.create_or_update(u, timeout=900, status="FIXED_TIMEOUT")
    flow = ct.get(u)
    assert flow is not None
    assert flow.status & (Status.SEEN_REPLY | Status.ASSURED | Status.FIXED_TIMEOUT) == (
        Status.SEEN_REPLY | Status.ASSURED | Status.FIXED_TIMEOUT
    )


def test_update_sends_an_exact_status_word(ct: conntrack.Conntrack) -> None:
    t = tcp(1)
    replied = Status.SEEN_REPLY | Status.ASSURED
    ct.create(t, timeout=600, state="ESTABLISHED", status=replied)

    def create_or_update(orig: Tuple, **kwargs: Any) -> None:
        ct.create_or_update(orig, timeout=600, **kwargs)

    # A word that would clear SEEN_REPLY or ASSURED: the kernel's EBUSY,
    # explained; the flow keeps them. (status= with the same bits adds them.)
    for call in (ct.update, create_or_update):
        with pytest.raises(OSError) as caught:
            call(t, status_word=Status.FIXED_TIMEOUT)
        assert caught.value.errno == errno.EBUSY
        message = str(caught.value)
        for word in ("status_word=0x400", "FIXED_TIMEOUT", "lacks SEEN_REPLY|ASSURED",
                     "never clears", "status="):
            assert word in message, (word, message)
        assert "FlowSpec" not in message
        with pytest.raises(OSError) as caught:
            call(t, status_word=["FIXED_TIMEOUT", "SEEN_REPLY"])
        assert caught.value.errno == errno.EBUSY
        assert "lacks ASSURED, which the flow has" in str(caught.value)
    flow = ct.get(t)
    assert flow is not None
    assert replied in flow.status and Status.FIXED_TIMEOUT not in flow.status
    # The exact word that keeps them: taken as given.
    ct.update(t, status_word=["SEEN_REPLY", "ASSURED", "FIXED_TIMEOUT"])
    flow = ct.get(t)
    assert flow is not None
    assert (replied | Status.FIXED_TIMEOUT) in flow.status
    # A flow without them takes any word; create_or_update creates with it.
    u = Tuple("10.0.3.1", "10.0.3.2", "udp", 53, 53)
    ct.create_or_update(u, timeout=600, status_word="FIXED_TIMEOUT")
    ct.update(u, status_word=0)
    ct.update(u, status_word="SEEN_REPLY")
    flow = ct.get(u)
    assert flow is not None
    assert Status.SEEN_REPLY in flow.status and Status.ASSURED not in flow.status
    with pytest.raises(OSError) as caught:
        ct.update(u, status_word="ASSURED")
    assert caught.value.errno == errno.EBUSY
    assert "lacks SEEN_REPLY, which the flow has" in str(caught.value)
    with pytest.raises(OSError) as caught:
        ct.update(u, status_word=0)
    assert "lacks SEEN_REPLY|ASSURED, and the flow has at least one" in str(caught.value)


def test_status_and_status_word_are_exclusive(ct: conntrack.Conntrack) -> None:
    t = tcp(1)
    ct.create(t, timeout=600, state="ESTABLISHED")
    for call in (ct.update, ct.create_or_update):
        with pytest.raises(TypeError) as caught:
            call(t, timeout=600, status="ASSURED", status_word=["ASSURED", "SEEN_REPLY"])
        message = str(caught.value)
        for word in ("status=", "status_word=", "not both", "'ASSURED'", "'SEEN_REPLY'"):
            assert word in message, (word, message)
    with pytest.raises(InvalidInputError) as caught:
        ct.update(t, status_word=0x10000)
    for word in ("status_word", "65536", "0-65535"):
        assert word in str(caught.value), (word, str(caught.value))
    with pytest.raises(InvalidInputError, match='status_word: unknown status bit "ASURED"'):
        ct.update(t, status_word="ASURED")
    for wrong in (1.5, True, b"ASSURED", {"ASSURED": 1}):
        with pytest.raises(TypeError, match="status_word"):
            ct.update(t, status_word=wrong)  # type: ignore[arg-type]
    # A mapping is not a collection of alternatives (its keys would be taken).
    with pytest.raises(TypeError, match="dst_port"):
        ct.count(dst_port={443: "https"})  # type: ignore[arg-type]
    flow = ct.get(t)
    assert flow is not None and Status.ASSURED not in flow.status


def test_flow_arguments_out_of_range(ct: conntrack.Conntrack) -> None:
    t = tcp(1)
    with pytest.raises(InvalidInputError) as caught:
        ct.create(t, timeout=60, status=0xFFFFFFFF)
    for word in ("status", "4294967295", "0-65535", "0x0-0xffff"):
        assert word in str(caught.value), (word, str(caught.value))
    for bad, words in (
        (dict(zone=70000), ["zone", "70000"]),
        (dict(mark=-1), ["mark", "-1"]),
        (dict(timeout=-1), ["timeout", "-1"]),
        (dict(timeout=2**40), ["timeout"]),
    ):
        args: Dict[str, Any] = dict(timeout=60)
        args.update(bad)
        with pytest.raises(InvalidInputError) as caught:
            ct.create(t, **args)
        for word in words:
            assert word in str(caught.value)
    with pytest.raises(TypeError, match="zone"):
        ct.create(t, timeout=60, zone=True)
    with pytest.raises(InvalidInputError, match="zone"):
        ct.delete_flow(t, zone=-1)
    assert ct.count() == 0


@pytest.mark.parametrize(
    "criteria",
    [dict(src=[]), dict(dst=[]), dict(reply_src=[]), dict(proto=[]), dict(dst_port=[]),
     dict(src_port=range(100, 50)), dict(state=[])],
)
def test_an_empty_collection_selects_nothing_never_everything(
    ct: conntrack.Conntrack, criteria: Dict[str, Any]
) -> None:
    for i in range(3):
        ct.create(tcp(i + 1), timeout=600, state="ESTABLISHED")
    assert not Filter(**criteria).is_empty
    assert ct.count(proto="tcp", **criteria) == 0 if "proto" not in criteria else ct.count(**criteria) == 0
    report = ct.delete(proto="tcp", **criteria) if "proto" not in criteria else ct.delete(**criteria)
    assert report.deleted == 0
    assert ct.count(proto="tcp") == 3
