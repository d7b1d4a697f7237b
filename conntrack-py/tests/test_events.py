# SPDX-License-Identifier: MIT OR Apache-2.0
"""Events: real traffic, filters, kinds, lost items, resync, Ctrl-C, asyncio."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import signal
import threading
import time
from typing import Dict, List, Set, Tuple as PyTuple, Union

import pytest

import conntrack
from conntrack import Event, EventKind, EventsLost, Protocol, Tuple

from conftest import Namespace, udp_tuple

#: Upper bound for an event that must come: a failure guard, not a measurement.
MUST_ARRIVE = 20.0

Item = Union[Event, conntrack.ExpectationEvent, EventsLost]

# Loopback TCP and UDP inside the namespace; prints the tuples it used.
TRAFFIC = """
import json, socket
flows = []
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", 0))
server.listen()
for _ in range(3):
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    client.sendall(b"ping")
    assert peer.recv(4) == b"ping"
    peer.sendall(b"pong")
    assert client.recv(4) == b"pong"
    flows.append(["tcp", client.getsockname()[1], server.getsockname()[1]])
    client.close()
    peer.close()
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("127.0.0.1", 0))
for _ in range(4):
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    sender.sendto(b"x", receiver.getsockname())
    assert receiver.recv(1) == b"x"
    flows.append(["udp", sender.getsockname()[1], receiver.getsockname()[1]])
    sender.close()
print(json.dumps(flows))
"""


def events_on(ns: Namespace) -> None:
    """Every flow of the namespace gets event storage (``nf_conntrack_events=1``),
    whether or not another listener exists on the host when it is created."""
    conntrack.Sysctl(ns.name).write("nf_conntrack_events", 1)


def collect(events: conntrack.Events, want: int) -> List[Item]:
    """Items until ``want`` have come; fails if they do not come in time."""
    items: List[Item] = []
    deadline = time.monotonic() + MUST_ARRIVE
    while len(items) < want:
        item = events.get(timeout=max(0.0, deadline - time.monotonic()))
        assert item is not None, f"only {len(items)} of {want} items came: {items[-3:]}"
        items.append(item)
    return items


def drain(events: conntrack.Events) -> List[Item]:
    """Everything already queued."""
    items: List[Item] = []
    while (item := events.poll()) is not None:
        items.append(item)
    return items


def test_real_traffic_every_new_and_destroy_with_its_flow(ns: Namespace, ct: conntrack.Conntrack) -> None:
    events_on(ns)
    with ct.events(kinds=["new", EventKind.DESTROY]) as events:
        assert "new|destroy" in repr(events) and not events.closed
        flows = json.loads(ns.exec("python3", "-c", TRAFFIC))
        loopback = ipaddress.IPv4Address("127.0.0.1")
        expected = {Tuple(loopback, loopback, proto, sport, dport) for proto, sport, dport in flows}
        assert len(expected) == 7

        new = collect(events, 7)
        assert all(isinstance(e, Event) and e.kind is EventKind.NEW for e in new), new
        assert {e.flow.orig for e in new if isinstance(e, Event)} == expected
        assert all(e.origin_portid == 0 for e in new if isinstance(e, Event)), "from the packet path"

        table = {flow.orig: flow for flow in ct.dump()}
        assert set(table) == expected
        ct.flush()
        gone = collect(events, 7)
        assert all(isinstance(e, Event) and e.kind is EventKind.DESTROY for e in gone), gone
        destroyed = {e.flow.orig: e.flow for e in gone if isinstance(e, Event)}
        assert set(destroyed) == expected
        for orig, flow in destroyed.items():
            assert flow.id == table[orig].id and flow.proto == table[orig].proto
        assert drain(events) == [], "no UPDATE, nothing twice"
        stats = events.stats()
        assert (stats.new, stats.destroy, stats.update, stats.delivered) == (7, 7, 0, 14)
        assert str(gone[0]).startswith("Event(DESTROY, ")
        first = gone[0]
        assert isinstance(first, Event)
        assert first.to_dict()["kind"] == "destroy" and first.to_dict()["flow"] == first.flow.to_dict()
    assert events.closed and "closed" in repr(events)
    with pytest.raises(ValueError, match="closed"):
        events.get(timeout=0)
    assert next(iter(events), None) is None


def test_created_updated_deleted_through_the_library(ns: Namespace, ct: conntrack.Conntrack) -> None:
    events_on(ns)
    with ct.events() as events:
        t = Tuple("10.0.0.1", "10.0.0.2", "tcp", 1000, 80)
        ct.create(t, timeout=60, state="SYN_SENT")
        ct.update(t, mark=7)
        assert ct.delete_flow(t)
        items = collect(events, 3)
        assert [i.kind for i in items if isinstance(i, Event)] == [EventKind.NEW, EventKind.UPDATE, EventKind.DESTROY]
        assert all(isinstance(i, Event) and i.flow.orig == t for i in items)
        update = items[1]
        assert isinstance(update, Event) and update.flow.mark == 7
        assert update.origin_portid != 0, "caused by a request of ours"


def test_filter_and_kinds_select_events(ns: Namespace, ct: conntrack.Conntrack) -> None:
    events_on(ns)
    udp_only = ct.events(proto="udp", dst_port=53, kinds="new")
    tcp_filter = ct.events(conntrack.Filter(proto="tcp"), kinds=[EventKind.DESTROY])
    with udp_only, tcp_filter:
        ct.create(Tuple("10.0.0.1", "10.0.0.2", "tcp", 1, 80), timeout=60)
        ct.create(Tuple("10.0.0.1", "10.0.0.2", "udp", 1, 123), timeout=60)
        ct.create(Tuple("10.0.0.1", "10.0.0.2", "udp", 1, 53), timeout=60)
        ct.flush()
        [only] = collect(udp_only, 1)
        assert isinstance(only, Event) and only.kind is EventKind.NEW and only.flow.orig.dst_port == 53
        [tcp_gone] = collect(tcp_filter, 1)
        assert isinstance(tcp_gone, Event) and tcp_gone.kind is EventKind.DESTROY
        assert tcp_gone.flow.proto is Protocol.TCP
        # Nothing else was selected; the other events were still received.
        assert drain(udp_only) == [] and drain(tcp_filter) == []
        assert udp_only.stats().new == 3 and udp_only.stats().delivered == 1
    with pytest.raises(conntrack.InvalidInputError, match="kinds"):
        ct.events(kinds="created")
    with pytest.raises(TypeError, match="kinds"):
        ct.events(kinds=[1])  # type: ignore[list-item]
    with pytest.raises(conntrack.InvalidInputError, match="kinds"):
        ct.events(kinds=[])
    with pytest.raises(ValueError, match="timeout"):
        ct.events(timeout=-1)


def test_timeout_ends_iteration(ct: conntrack.Conntrack) -> None:
    events = ct.events(timeout=0.2)
    assert events.timeout == 0.2
    started = time.monotonic()
    assert list(events) == []
    assert 0.2 <= time.monotonic() - started < 5
    assert events.get(timeout=0) is None


def test_overrun_yields_a_lost_item_with_the_count(ns: Namespace, ct: conntrack.Conntrack) -> None:
    """A tiny receive queue and a burst: the kernel drops events, the stream
    says so with one EventsLost whose count plus the events seen is the burst."""
    events_on(ns)
    burst = 3000
    with ct.events(kinds="new", receive_buffer=4096) as events:
        assert events.receive_buffer <= 64 * 1024
        for i in range(burst):
            ct.create(udp_tuple(i), timeout=600)
        items = drain(events)
        lost = [i for i in items if isinstance(i, EventsLost)]
        seen = [i for i in items if isinstance(i, Event)]
        assert isinstance(items[0], EventsLost), items[:3]
        assert len(lost) == 1, lost
        assert lost[0].dropped is not None, "SO_MEMINFO counts drops on every supported kernel"
        assert 0 < len(seen) < burst
        assert len(seen) + lost[0].dropped == burst
        assert len({e.flow.orig for e in seen}) == len(seen)
        stats = events.stats()
        assert (stats.lost_reports, stats.dropped, stats.new) == (1, lost[0].dropped, len(seen))
        # The stream goes on, and a resync gives the whole table.
        marker = udp_tuple(burst)
        ct.create(marker, timeout=600)
        [after] = collect(events, 1)
        assert isinstance(after, Event) and after.flow.orig == marker
        dump = events.resync()
        assert sum(1 for _ in dump) == burst + 1


def test_subscribe_then_dump_misses_nothing(ns: Namespace, ct: conntrack.Conntrack) -> None:
    """Flows change while the resync dump runs: the dump plus the events that
    follow it rebuild the table exactly."""
    events_on(ns)
    before = 2000
    for i in range(before):
        ct.create(udp_tuple(i), timeout=600)
    Key = PyTuple[Tuple, int, Union[int, None]]
    with ct.events(receive_buffer=32 << 20) as events:
        churn_started = threading.Event()

        def churn() -> None:
            with conntrack.Conntrack(ns.name) as other:
                for i in range(1500):
                    other.create(udp_tuple(before + i), timeout=600)
                    if i % 3 == 0:
                        other.delete_flow(udp_tuple(i))
                    if i == 50:
                        churn_started.set()

        worker = threading.Thread(target=churn)
        worker.start()
        assert churn_started.wait(MUST_ARRIVE)
        mirror: Set[Key] = {(f.orig, f.zone_id, f.id) for f in events.resync()}
        worker.join()
        for item in drain(events):
            assert isinstance(item, Event), item
            key = (item.flow.orig, item.flow.zone_id, item.flow.id)
            if item.kind is EventKind.DESTROY:
                mirror.discard(key)
            else:
                mirror.add(key)
        table = {(f.orig, f.zone_id, f.id) for f in ct.dump()}
        assert mirror == table
        assert len(table) == before + 1500 - 500


def test_ctrl_c_interrupts_a_blocking_wait(ct: conntrack.Conntrack) -> None:
    class Interrupted(Exception):
        pass

    def on_alarm(signum: int, frame: object) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with ct.events() as events:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            started = time.monotonic()
            with pytest.raises(Interrupted):
                for _ in events:
                    pass
            assert time.monotonic() - started < 2, "signals are checked while waiting"
            # The subscription still works afterwards.
            ct.create(Tuple("10.0.0.1", "10.0.0.2", "udp", 1, 2), timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_interpreter_is_released_while_waiting(ct: conntrack.Conntrack) -> None:
    ticks: List[float] = []
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    spinner = threading.Thread(target=spin)
    with ct.events() as events:
        spinner.start()
        try:
            started = time.monotonic()
            assert events.get(timeout=0.3) is None
            ended = time.monotonic()
        finally:
            stop.set()
            spinner.join()
    assert len([t for t in ticks if started < t < ended]) > 50


def test_asyncio_form_does_not_block_the_loop(ns: Namespace, ct: conntrack.Conntrack) -> None:
    events_on(ns)
    flows = [Tuple("10.0.0.1", "10.0.0.2", "udp", 1000 + i, 53) for i in range(20)]

    async def main() -> PyTuple[List[Item], int, int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        def create_later() -> None:
            time.sleep(0.5)
            for t in flows:
                ct.create(t, timeout=60)

        ticking = asyncio.create_task(ticker())
        loop = asyncio.get_running_loop()
        creating = loop.run_in_executor(None, create_later)
        received: List[Item] = []
        with ct.events(kinds="new", timeout=3) as events:
            ticks_before_first = -1
            async for item in events:
                if not received:
                    ticks_before_first = ticks
                received.append(item)
                if len(received) == len(flows):
                    break
            # A bounded wait with nothing coming returns None in time.
            assert await events.__aiter__().get(timeout=0.1) is None
        await creating
        stop.set()
        await ticking
        return received, ticks_before_first, ticks

    received, ticks_before_first, ticks = asyncio.run(main())
    assert [i.flow.orig for i in received if isinstance(i, Event)] == flows
    # The loop kept running while the consumer waited for the first event
    # (0.5 s at 10 ms a tick: about 50; a blocked loop would give 0 or 1).
    assert ticks_before_first >= 20, ticks_before_first
    assert ticks >= ticks_before_first


def test_asyncio_timeout_and_cancellation(ct: conntrack.Conntrack) -> None:
    async def main() -> None:
        with ct.events(timeout=0.2) as events:
            started = time.monotonic()
            assert [item async for item in events] == []
            assert time.monotonic() - started >= 0.2
        with ct.events() as events:
            waiting = asyncio.ensure_future(events.__aiter__().get())
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            # The reader was removed: the fd can be registered again.
            assert await events.__aiter__().get(timeout=0.05) is None

    asyncio.run(main())


def test_expectation_events_alone_together_and_async(ns: Namespace, ct: conntrack.Conntrack) -> None:
    events_on(ns)
    master = Tuple("10.9.0.1", "10.9.0.2", "tcp", 40000, 21)
    data = Tuple("10.9.0.1", "10.9.0.2", "tcp", 0, 50000)
    mask = Tuple("255.255.255.255", "255.255.255.255", "tcp", 0, 65535)
    alone = ct.events(kinds=(), expectations=True)
    both = ct.events(kinds=["new", "destroy"], expectations=["new", "destroy"])
    assert "expectations=new|destroy" in repr(both)
    ct.create(master, timeout=600, state="ESTABLISHED", status=["SEEN_REPLY", "ASSURED"], helper="ftp")
    ct.create_expectation(master, data, timeout=120, mask=mask)
    (listed,) = ct.expectations()
    assert ct.delete_expectation(data) is True
    new, gone = collect(alone, 2)
    assert isinstance(new, conntrack.ExpectationEvent) and isinstance(gone, conntrack.ExpectationEvent)
    assert (new.kind, gone.kind) == (EventKind.NEW, EventKind.DESTROY)
    assert new.expectation.tuple == data and new.expectation.mask == mask
    assert new.expectation.master == master and new.expectation.helper == "ftp"
    assert new.expectation.id == listed.id and gone.expectation.id == listed.id
    assert new.origin_portid != 0
    assert new.to_dict()["kind"] == "new"
    assert new.to_dict()["expectation"]["helper"] == "ftp"
    json.dumps(new.to_dict(), default=str)
    assert repr(new).startswith("ExpectationEvent(NEW, ")
    assert drain(alone) == []
    stats = alone.stats()
    assert (stats.expectation_new, stats.expectation_destroy, stats.new) == (1, 1, 0)
    kinds = [(type(item).__name__, item.kind) for item in collect(both, 3)]
    assert kinds == [
        ("Event", EventKind.NEW),
        ("ExpectationEvent", EventKind.NEW),
        ("ExpectationEvent", EventKind.DESTROY),
    ]

    async def main() -> List[Item]:
        got: List[Item] = []
        ct.create_expectation(master, data, timeout=120, mask=mask)
        ct.flush_expectations()
        async for item in alone:
            got.append(item)
            if len(got) == 2:
                break
        return got

    got = asyncio.run(main())
    assert [(type(i).__name__, getattr(i, "kind", None)) for i in got] == [
        ("ExpectationEvent", EventKind.NEW),
        ("ExpectationEvent", EventKind.DESTROY),
    ]
    alone.close()
    both.close()
    # Hostile selections name the argument.
    with pytest.raises(conntrack.InvalidInputError, match="expectations: unknown event kind"):
        ct.events(expectations=["new", "bogus"])
    with pytest.raises(TypeError, match="expectations: expected an EventKind"):
        ct.events(expectations=[3])  # type: ignore[list-item]
    with pytest.raises(conntrack.InvalidInputError, match="subscribes to nothing"):
        ct.events(kinds=[], expectations=False)
    with pytest.raises(conntrack.InvalidInputError, match="subscribes to nothing"):
        ct.events(kinds=[])
