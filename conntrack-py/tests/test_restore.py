# SPDX-License-Identifier: MIT OR Apache-2.0
"""``Conntrack.restore()``: a table saved as conntrack-tools text or kept as
``Flow`` objects comes back; every flow not restored is reported; hostile
arguments are refused naming the argument."""

from __future__ import annotations

import errno
import pathlib
from typing import Iterable

import pytest

import conntrack
from conntrack import InvalidInputError, Tuple

from conftest import Namespace, delete_namespace, fill_mixed, make_namespace


def essence(flows: Iterable[conntrack.Flow]) -> set[tuple[object, ...]]:
    """What a restore brings back, per flow (the kernel sets the rest)."""
    return {
        (f.orig, f.reply, f.zone, f.mark, f.state, f.status, f.labels, f.helper)
        for f in flows
    }


def listing(ns: Namespace) -> list[str]:
    """``conntrack -L -o extended``, sorted, timeout and use count blanked."""
    lines = []
    for line in ns.exec("conntrack", "-L", "-o", "extended").splitlines():
        fields = line.split()
        fields[4] = "T"
        lines.append(" ".join(f for f in fields if not f.startswith("use=")))
    return sorted(lines)


def test_flows_and_conntrack_text_come_back(ns: Namespace, ct: conntrack.Conntrack,
                                            tmp_path: pathlib.Path) -> None:
    fill_mixed(ct, 50)
    saved = list(ct.dump())
    before = essence(saved)
    text = ns.exec("conntrack", "-L", "-o", "extended")
    shown = listing(ns)

    ct.flush()
    report = ct.restore(saved)
    assert (report.read, report.created, report.invalid, report.failed_total) == (50, 50, 0, 0)
    assert report.failures == () and not report.dry_run
    assert essence(ct.dump()) == before

    again = ct.restore(saved)
    assert (again.created, again.failed, len(again.failures)) == (0, {errno.EEXIST: 50}, 50)
    assert all(f.errno == errno.EEXIST and isinstance(f.orig, Tuple) for f in again.failures)
    assert sorted(f.line for f in again.failures) == list(range(1, 51))

    path = tmp_path / "table.txt"
    path.write_text("# saved by conntrack -L -o extended\n\n" + text)
    for source in (path, str(path), bytes(path)):
        ct.flush()
        report = ct.restore(source)
        assert (report.read, report.created, report.failed_total) == (50, 50, 0), source
        assert listing(ns) == shown

    # A copy into another namespace, into zone 9, with one timeout.
    other = make_namespace()
    try:
        with conntrack.Conntrack(other.name) as copy:
            report = copy.restore(ct.dump(), zone=9, timeout=120)
            assert report.created == 50
            copied = list(copy.dump())
            assert {f.zone for f in copied} == {9}
            assert all(f.timeout is not None and f.timeout <= 120 for f in copied)
    finally:
        delete_namespace(other)


def test_every_flow_not_restored_is_reported(ns: Namespace, ct: conntrack.Conntrack) -> None:
    good = ("udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] "
            "src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 use=1")
    report = ct.restore([good, "", "# comment", "garbage", good, "tcp 6 30 src=10.0.0.1", "x\ud800"])
    assert (report.read, report.created, report.invalid, report.failed) == (2, 1, 3, {errno.EEXIST: 1})
    by_line = {f.line: f for f in report.failures}
    assert sorted(by_line) == [4, 5, 6, 7]
    assert by_line[4].errno is None and "unknown protocol" in by_line[4].message
    assert by_line[5].errno == errno.EEXIST and by_line[5].orig is not None
    assert "has one tuple" in by_line[6].message or "ends before" in by_line[6].message
    assert "not UTF-8" in by_line[7].message
    dry = ct.restore([good.replace("10.0.0.1", "10.0.0.7")], dry_run=True)
    assert (dry.dry_run, dry.read, dry.created) == (True, 1, 1)
    assert ct.count() == 1
    assert report.to_dict()["failures"][0]["line"] == 4


def test_hostile_arguments_name_the_argument(ct: conntrack.Conntrack) -> None:
    with pytest.raises(TypeError, match="source"):
        ct.restore(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="source item 2"):
        ct.restore(["", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="source"):
        ct.restore("")
    with pytest.raises(InvalidInputError, match="source"):
        ct.restore("a\x00b")
    with pytest.raises(FileNotFoundError) as missing:
        ct.restore("/nonexistent/table")
    assert missing.value.filename == "/nonexistent/table"
    with pytest.raises(IsADirectoryError):
        ct.restore("/")
    with pytest.raises(InvalidInputError, match="timeout"):
        ct.restore([], timeout=-1)
    with pytest.raises(InvalidInputError, match="zone"):
        ct.restore([], zone=70000)
    with pytest.raises(TypeError, match="timeout"):
        ct.restore([], timeout="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="labels_file"):
        ct.restore([], labels_file=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="/nonexistent/connlabel.conf"):
        ct.restore([], labels_file="/nonexistent/connlabel.conf")
    assert ct.restore([]).read == 0
