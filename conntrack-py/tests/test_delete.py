# SPDX-License-Identifier: MIT OR Apache-2.0
"""Delete by filter (report, dry run, limit), one flow, flush."""

from __future__ import annotations

import pytest

import conntrack
from conntrack import Filter, Tuple

from conftest import fill


def test_delete_by_filter_deletes_exactly_the_selection(ct: conntrack.Conntrack) -> None:
    tuples = fill(ct, 60)  # destinations 172.16.0.0 .. 172.16.0.15
    selected = {t for t in tuples if str(t.dst) in ("172.16.0.3", "172.16.0.4")}
    assert selected and len(selected) < 60
    criteria = dict(dst=["172.16.0.3", "172.16.0.4"], proto="udp")

    dry = ct.delete(dry_run=True, **criteria)
    assert isinstance(dry, conntrack.DeleteReport)
    assert (dry.path, dry.matched, dry.deleted) == ("dry_run", len(selected), 0)
    assert ct.count() == 60

    report = ct.delete(Filter(**criteria))
    assert report.path in ("dump_and_delete", "kernel_flush")
    assert report.matched == len(selected) and report.deleted == len(selected)
    assert report.already_gone == 0 and report.failed == {} and report.failed_total == 0
    left = {f.orig for f in ct.dump()}
    assert left == set(tuples) - selected

    limited = ct.delete(dst_port=53, limit=5)
    assert (limited.matched, limited.deleted) == (5, 5)
    assert ct.count() == 60 - len(selected) - 5


def test_single_value_filter_may_take_the_kernel_flush(ct: conntrack.Conntrack) -> None:
    fill(ct, 10)
    ct.create(Tuple("10.9.0.1", "10.9.0.2", "tcp", 1, 2), timeout=100, mark=0x42)
    report = ct.delete(mark=0x42)
    # Mark + mask is flushed by every kernel the library supports.
    assert report.path == "kernel_flush" and report.deleted == 1
    assert ct.count() == 10 and ct.count(mark=0x42) == 0


def test_empty_selection_is_refused_and_flush_is_explicit(ct: conntrack.Conntrack) -> None:
    fill(ct, 5)
    with pytest.raises(conntrack.InvalidInputError, match="flush"):
        ct.delete()
    with pytest.raises(ValueError):
        ct.delete(src=None)
    with pytest.raises(TypeError, match="delete_flow"):
        ct.delete(Tuple("10.0.0.1", "10.0.0.2", "udp", 1, 2))  # type: ignore[arg-type]
    assert ct.count() == 5
    ct.flush()
    assert ct.count() == 0


def test_delete_one_flow_by_flow_or_tuple(ct: conntrack.Conntrack) -> None:
    a, b, c = fill(ct, 3)
    flow = ct.get(a)
    assert flow is not None
    assert ct.delete_flow(flow) is True
    assert ct.delete_flow(flow) is False, "already gone: False, not an error"
    assert ct.delete_flow(b) is True
    ct.create(Tuple("10.5.0.1", "10.5.0.2", "udp", 7, 8), timeout=60, zone=4)
    assert ct.delete_flow(Tuple("10.5.0.1", "10.5.0.2", "udp", 7, 8)) is False, "wrong zone"
    assert ct.delete_flow(Tuple("10.5.0.1", "10.5.0.2", "udp", 7, 8), zone=4) is True
    remaining = ct.get(c)
    assert remaining is not None
    with pytest.raises(TypeError):
        ct.delete_flow(remaining, zone=1)
    with pytest.raises(TypeError):
        ct.delete_flow("10.0.0.1")  # type: ignore[arg-type]
    assert ct.count() == 1
