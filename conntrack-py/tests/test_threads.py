# SPDX-License-Identifier: MIT OR Apache-2.0
"""Threads, the released interpreter, Ctrl-C, and the dump iterator's life."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List

import pytest

import conntrack
from conntrack import Tuple

from conftest import BIG_TABLE, MIXED, Namespace, fill

TOTAL = BIG_TABLE + MIXED


def test_dump_summary_and_streaming(big: Namespace) -> None:
    with conntrack.Conntrack(big.name) as ct:
        dump = ct.dump()
        assert dump.summary is None
        n = sum(1 for _ in dump)
        assert n == TOTAL
        summary = dump.summary
        assert summary is not None and summary.complete and not summary.interrupted
        assert (summary.flows, summary.matched, summary.decode_errors) == (TOTAL, TOTAL, 0)
        # One batch per datagram: many datagrams, each a few dozen KiB.
        assert summary.datagrams > 50 and summary.bytes / summary.datagrams > 8000
        # A table this large is received on the library's prefetch thread.
        assert summary.prefetched
        filtered = ct.dump(proto="tcp")
        tcp = list(filtered)
        assert filtered.summary is not None
        assert len(tcp) == filtered.summary.matched == ct.count(proto="tcp") == MIXED * 3 // 5
        assert next(iter(dump), None) is None, "an ended dump stays ended"


def test_abandoned_dump_and_nested_use(big: Namespace) -> None:
    with conntrack.Conntrack(big.name) as ct:
        for i, _ in enumerate(ct.dump()):
            if i == 100:
                break
        with ct.dump() as dump:
            first = next(dump)
        with pytest.raises(StopIteration):
            next(dump)
        assert isinstance(first, conntrack.Flow)
        # The handle keeps working, also inside a running dump (a second socket).
        seen = 0
        for flow in ct.dump(dst_port=22):
            seen += 1
            again = ct.get(flow.orig, zone=flow.zone_id)
            assert again is not None and again.id == flow.id
        assert seen == MIXED // 5
        assert ct.count() == TOTAL


def test_delete_while_dumping(ns: Namespace, ct: conntrack.Conntrack) -> None:
    fill(ct, 2000)
    deleted = 0
    for flow in ct.dump():
        if flow.orig.src_port is not None and flow.orig.src_port % 2 == 0:
            assert ct.delete_flow(flow)
            deleted += 1
    assert deleted == 1000 and ct.count() == 1000


def test_threads_share_one_handle(big: Namespace) -> None:
    with conntrack.Conntrack(big.name) as ct:
        def work(i: int) -> int:
            if i % 3 == 0:
                return sum(1 for _ in ct.dump())
            if i % 3 == 1:
                return ct.count_by("proto").total
            return ct.count(proto="udp") + ct.count(proto=["tcp", "icmp"])

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(work, range(12)))
        assert results == [TOTAL] * 12


def test_interpreter_is_released_during_kernel_calls(big: Namespace) -> None:
    """Another Python thread keeps running while count_by walks the table."""
    with conntrack.Conntrack(big.name) as ct:
        ct.count_by("src")  # warm up
        ticks: List[float] = []
        stop = threading.Event()

        def spin() -> None:
            while not stop.is_set():
                ticks.append(time.monotonic())

        spinner = threading.Thread(target=spin)
        spinner.start()
        try:
            time.sleep(0.05)
            started = time.monotonic()
            ct.count_by("src")
            ended = time.monotonic()
        finally:
            stop.set()
            spinner.join()
        during = [t for t in ticks if started < t < ended]
        # Holding the interpreter for the whole call would leave none at all.
        assert len(during) > 100, (len(during), ended - started)


def test_ctrl_c_interrupts_a_long_dump(big: Namespace) -> None:
    """list() consumes the iterator in C, without running Python code between
    items: only the iterator's own signal check can stop it midway."""

    class Interrupted(Exception):
        pass

    def on_alarm(signum: int, frame: object) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with conntrack.Conntrack(big.name) as ct:
            dump = ct.dump()
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            with pytest.raises(Interrupted):
                list(dump)
            assert dump.summary is None, "the dump was stopped before its end"
            # The batch in hand is kept: iteration can go on.
            rest = sum(1 for _ in dump)
            assert 0 < rest <= TOTAL
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_creates_from_threads(ns: Namespace) -> None:
    with conntrack.Conntrack(ns.name) as ct:
        def create(i: int) -> None:
            ct.create(Tuple(f"10.7.{i // 200}.{i % 200 + 1}", "10.8.0.1", "tcp", 1000 + i, 80), timeout=60)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(create, range(800)))
        assert ct.count() == 800


def netlink_sockets() -> int:
    """Open netlink sockets of this process (``/proc/self/fd``, each socket's
    family read through a duplicate of its descriptor)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:["):
                continue
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue  # closed meanwhile (e.g. the listing's own descriptor)
        try:
            count += sock.family == socket.AF_NETLINK
        finally:
            sock.close()
    return count


def test_socket_pool_shrinks_after_a_burst(ns: Namespace) -> None:
    """200 concurrent dumps need 200 sockets; once they end, the handle keeps
    only a few idle ones open."""
    with conntrack.Conntrack(ns.name) as ct:
        # More datagrams than a worker may send ahead: each dump's worker
        # stays blocked, holding its socket, until its dump is read or closed.
        fill(ct, 3000)
        before = netlink_sockets()
        dumps = [ct.dump() for _ in range(200)]
        firsts = [next(d) for d in dumps]
        assert len(firsts) == 200
        assert netlink_sockets() >= before + 150, "the burst really ran concurrently"
        for d in dumps[:10]:
            assert sum(1 for _ in d) == 2999
        for d in dumps[10:]:
            d.close()
        deadline = time.monotonic() + 20
        while netlink_sockets() > before + 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert netlink_sockets() <= before + 4
        assert ct.count() == 3000, "the handle still works"


def test_dump_repr_shows_progress_and_namespace(ns: Namespace) -> None:
    with conntrack.Conntrack(ns.name) as ct:
        fill(ct, 10)
        dump = ct.dump()
        assert repr(dump) == f"<conntrack.Dump network namespace {ns.name}: 0 flows handed out, running>"
        next(dump)
        next(dump)
        assert f"{ns.name}: 2 flows handed out, running" in repr(dump)
        rest = list(dump)
        assert len(rest) == 8
        assert repr(dump) == (
            f"<conntrack.Dump network namespace {ns.name}: 10 flows handed out, ended: 10 flows read, 10 matched>"
        )
        closed = ct.dump()
        closed.close()
        assert repr(closed).endswith("0 flows handed out, closed>")
