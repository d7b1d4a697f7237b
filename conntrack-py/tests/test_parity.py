# SPDX-License-Identifier: MIT OR Apache-2.0
"""What conntrack-tools does, from Python: zero-on-read dumps, the dying and
unconfirmed lists, bulk update by filter, labels by name, expectations."""

from __future__ import annotations

import errno
import json
import subprocess

import pytest

import conntrack
from conntrack import ExpectFlag, InvalidInputError, Status, Tuple

from conftest import Namespace


def test_a_zeroing_dump_reads_counters_once(ns: Namespace, ct: conntrack.Conntrack) -> None:
    ns.exec("sh", "-c", f"echo 1 > {ns.sysctl_path('nf_conntrack_acct')}")
    script = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))\n"
        "c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind(('127.0.0.1', 40001))\n"
        "for _ in range(3): c.sendto(b'x' * 100, s.getsockname())\n"
    )
    subprocess.run(["ip", "netns", "exec", ns.name, "python3", "-c", script], check=True)
    first = [f for f in ct.dump_zeroing() if f.orig.src_port == 40001]
    assert len(first) == 1 and first[0].counters_orig is not None
    assert (first[0].counters_orig.packets, first[0].counters_orig.bytes) == (3, 384)
    again = [f for f in ct.dump_zeroing(family="ipv4") if f.orig.src_port == 40001]
    assert again[0].counters_orig is not None and again[0].counters_orig.packets == 0
    assert list(ct.dump_dying()) == [] and list(ct.dump_unconfirmed()) == []
    with pytest.raises(TypeError):
        ct.dump_zeroing(proto="udp")  # type: ignore[call-arg]


def test_update_matching_changes_exactly_the_selection(ns: Namespace, ct: conntrack.Conntrack) -> None:
    ns.nft("add rule inet ctpy in ct label 127 counter")
    for i in range(10):
        ct.create(Tuple(f"10.0.0.{i + 1}", "10.0.1.1", "udp", 1000, 53 if i % 2 else 123),
                  timeout=600, mark=0xAB00)
    report = ct.update_matching(dst_port=53, set_mark=(0x5, 0xF), add_labels=[3], set_timeout=900)
    assert (report.matched, report.updated, report.failed_total) == (5, 5, 0)
    for flow in ct.dump():
        if flow.orig.dst_port == 53:
            assert flow.mark == 0xAB05 and flow.labels == frozenset({3})
            assert flow.timeout is not None and flow.timeout > 800
        else:
            assert flow.mark == 0xAB00 and not flow.labels
    dry = ct.update_matching(proto="udp", add_status="FIXED_TIMEOUT", dry_run=True)
    assert (dry.dry_run, dry.matched, dry.updated) == (True, 10, 0)
    with pytest.raises(InvalidInputError, match="every flow"):
        ct.update_matching(set_mark=1)
    with pytest.raises(InvalidInputError, match="changes nothing"):
        ct.update_matching(proto="udp")
    with pytest.raises(InvalidInputError, match="0x100/0xff"):
        ct.update_matching(proto="udp", set_mark=(0x100, 0xFF))
    with pytest.raises(InvalidInputError, match="remove_labels"):
        ct.update_matching(proto="udp", remove_labels="no-such-label-name")


def test_expectations(ns: Namespace, ct: conntrack.Conntrack) -> None:
    master = Tuple("10.3.0.1", "10.3.0.2", "tcp", 40000, 21)
    ct.create(master, timeout=600, state="ESTABLISHED", status=["SEEN_REPLY", "ASSURED"], helper="ftp")
    data = Tuple("10.3.0.1", "10.3.0.2", "tcp", 0, 50000)
    mask = Tuple("255.255.255.255", "255.255.255.255", "tcp", 0, 65535)
    ct.create_expectation(master, data, timeout=120, mask=mask)
    (expectation,) = ct.expectations()
    assert expectation.master == master and expectation.tuple == data
    assert expectation.helper == "ftp" and expectation.mask == mask
    # The kernel applies the helper's own expectation timeout (ftp: 300 s).
    assert expectation.timeout is not None and 0 < expectation.timeout <= 300
    got = ct.get_expectation(data)
    assert got is not None and got.id == expectation.id
    as_dict = expectation.to_dict()
    assert as_dict["tuple"]["dst_port"] == 50000 and as_dict["nat_tuple"] is None
    json.dumps(as_dict, default=str)
    cli = subprocess.run(["ip", "netns", "exec", ns.name, "conntrack", "-L", "expect"],
                         capture_output=True, text=True, check=True).stdout
    assert "dport=50000" in cli and "helper=ftp" in cli
    with pytest.raises(FileExistsError):
        ct.create_expectation(master, data, timeout=120, mask=mask)
    plain = Tuple("10.3.0.1", "10.3.0.2", "tcp", 40001, 2121)
    ct.create(plain, timeout=600)
    with pytest.raises(OSError) as caught:
        ct.create_expectation(plain, Tuple("10.3.0.1", "10.3.0.2", "tcp", 0, 50001), timeout=60)
    assert caught.value.errno == errno.EOPNOTSUPP and "no helper" in str(caught.value)
    assert ct.delete_expectation(data) is True
    assert ct.delete_expectation(data) is False
    ct.create_expectation(master, data, timeout=120, mask=mask)
    ct.flush_expectations("ftp")
    assert ct.expectations() == []
    with pytest.raises(InvalidInputError, match="zone"):
        ct.delete_expectation(data, zone=70000)


def test_expectation_flags_and_class_as_conntrack_lists_them(ns: Namespace, ct: conntrack.Conntrack) -> None:
    # SIP: a helper with classes 0-3 (signalling, audio, video, image).
    master = Tuple("10.3.0.1", "10.3.0.2", "udp", 5060, 5060)
    ct.create(master, timeout=600, helper="sip")
    mask = Tuple("255.255.255.255", "255.255.255.255", "udp", 0, 65535)
    audio = Tuple("10.3.0.1", "10.3.0.2", "udp", 0, 16384)
    ct.create_expectation(master, audio, timeout=120, mask=mask,
                          flags={"PERMANENT", "inactive"}, expect_class=2)
    video = Tuple("10.3.0.1", "10.3.0.2", "udp", 0, 16386)
    ct.create_expectation(master, video, timeout=120, mask=mask, permanent=True, expect_class=3)
    image = Tuple("10.3.0.1", "10.3.0.2", "udp", 0, 16388)
    ct.create_expectation(master, image, timeout=120, mask=mask, flags=[ExpectFlag.INACTIVE, 1])
    ours = {e.tuple.dst_port: e for e in ct.expectations()}
    assert set(ours) == {16384, 16386, 16388}
    for e in ours.values():
        assert isinstance(e.flags, ExpectFlag) and e.helper == "sip"
        assert ExpectFlag.PERMANENT in e.flags
        assert isinstance(e.to_dict()["flags"], int) and not isinstance(e.to_dict()["flags"], ExpectFlag)
    assert ExpectFlag.INACTIVE in ours[16384].flags and ExpectFlag.INACTIVE in ours[16388].flags
    assert ExpectFlag.INACTIVE not in ours[16386].flags
    assert [ours[p].expect_class for p in (16384, 16386, 16388)] == [2, 3, 0]
    # conntrack -L expect prints the flags by name, then class= and helper=:
    # each of its lines carries what we read back.
    cli = subprocess.run(["ip", "netns", "exec", ns.name, "conntrack", "-L", "expect"],
                         capture_output=True, text=True, check=True).stdout
    lines = {int(line.split(" dport=")[1].split()[0]): line for line in cli.splitlines() if "dport=" in line}
    assert set(lines) == set(ours), cli
    for port, e in ours.items():
        names = ",".join(f.name for f in (ExpectFlag.PERMANENT, ExpectFlag.INACTIVE, ExpectFlag.USERSPACE)
                         if f in e.flags and f.name)
        assert f" {names} class={e.expect_class} helper=sip" in lines[port], (port, e.flags, lines[port])
    # Refused before any request, naming the argument, the value and what is allowed.
    spare = Tuple("10.3.0.1", "10.3.0.2", "udp", 0, 16390)
    with pytest.raises(InvalidInputError, match=r'flags: unknown expectation flag "sticky" \(one of PERMANENT'):
        ct.create_expectation(master, spare, timeout=60, mask=mask, flags="sticky")
    with pytest.raises(InvalidInputError, match=r"flags: 16 has bits the kernel does not define \(PERMANENT 0x1"):
        ct.create_expectation(master, spare, timeout=60, mask=mask, flags=16)
    with pytest.raises(TypeError, match="flags"):
        ct.create_expectation(master, spare, timeout=60, mask=mask, flags=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"expect_class: -1 is out of range"):
        ct.create_expectation(master, spare, timeout=60, mask=mask, expect_class=-1)
    # A class beyond the helper's: the kernel's EINVAL.
    with pytest.raises(OSError) as caught:
        ct.create_expectation(master, spare, timeout=60, mask=mask, expect_class=4)
    assert caught.value.errno == errno.EINVAL
    assert len(ct.expectations()) == 3


def test_expectation_stats_match_conntrack_s_expect(ns: Namespace, ct: conntrack.Conntrack) -> None:
    master = Tuple("10.3.0.1", "10.3.0.2", "tcp", 40000, 21)
    ct.create(master, timeout=600, helper="ftp")
    data = Tuple("10.3.0.1", "10.3.0.2", "tcp", 0, 50000)
    ct.create_expectation(master, data, timeout=120)
    assert ct.delete_expectation(data) is True
    stats = ct.expectation_stats()
    assert all(isinstance(s, conntrack.ExpectCpuStats) for s in stats)
    assert sum(s.create for s in stats) == 1 and sum(s.delete for s in stats) >= 1
    cli = subprocess.run(["ip", "netns", "exec", ns.name, "conntrack", "-S", "expect"],
                         capture_output=True, text=True, check=True).stdout
    ours = "".join(f"cpu={s.cpu:<4}\texpect_new={s.new} expect_create={s.create} "
                   f"expect_delete={s.delete} \n" for s in stats)
    assert ours == cli
    assert stats[0].to_dict().keys() == {"cpu", "new", "create", "delete"}
