# SPDX-License-Identifier: MIT OR Apache-2.0
"""Native part of the ``conntrack`` package (PyO3); import ``conntrack``.

This stub is the API reference of the native classes; ``mypy.stubtest``
checks it against the built module. Filters appear in many signatures as
``**criteria``, typed by ``FilterCriteria`` (see :class:`Filter` for the
names and what they accept): a misspelled criterion or a value of the wrong
type fails type checking.
"""

import datetime
import ipaddress
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar, Final, Literal, Union

from typing_extensions import Unpack, disjoint_base, final

from ._aio import AsyncEvents

from ._types import (
    Capacity,
    Counters,
    DccpState,
    DeleteReport,
    DumpSummary,
    EventKind,
    EventsLost,
    EventStats,
    ExpectCpuStats,
    ExpectFlag,
    Expectation,
    FilterCriteria,
    GroupCounts,
    OrphanCategory,
    OrphanCounts,
    PersistReport,
    Protocol,
    Recommendation,
    RestoreReport,
    SctpState,
    SeqAdj,
    Stats,
    Status,
    Synproxy,
    TcpState,
    Timestamp,
    UpdateReport,
)

__all__ = [
    "Dump",
    "Event",
    "Events",
    "ExpectationEvent",
    "Filter",
    "Tuple",
    "Flow",
    "Orphan",
    "Conntrack",
    "advise",
    "list_netns",
    "Sysctl",
    "__version__",
    "FILTER_CRITERIA",
]

__version__: Final[str]

#: The keyword criteria a ``Filter`` (and every selecting method) accepts.
FILTER_CRITERIA: Final[list[str]]

_Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
#: Text (``"10.0.0.1"``) or an ``ipaddress`` address.
_AddressLike = Union[str, ipaddress.IPv4Address, ipaddress.IPv6Address]
#: A protocol name (``"tcp"``), a number, or a ``Protocol``.
_ProtocolLike = Union[str, int, Protocol]
#: A namespace: ``None`` (the caller's), an ``ip netns`` name, a path
#: (text containing ``/`` or an ``os.PathLike``) or a pid.
_Netns = Union[None, str, int, os.PathLike[str]]
#: Seconds, or a ``datetime.timedelta``.
_Duration = Union[int, float, datetime.timedelta]
#: Status bits: a ``Status`` flag, an int, a bit name or several of them.
_StatusLike = Union[Status, int, str, Iterable[Union[Status, int, str]]]
#: Expectation flags: an ``ExpectFlag``, an int, a flag name or several of them.
_ExpectFlagsLike = Union[ExpectFlag, int, str, Iterable[Union[ExpectFlag, int, str]]]

@final
class Tuple:
    """One direction of a flow: addresses, protocol, ports or ICMP identity.

    Frozen, hashable and ordered. Build one to create, look up or delete a
    flow::

        Tuple("10.0.0.1", "10.0.0.2", "tcp", 40000, 80)
        Tuple("fd00::1", "fd00::2", "icmpv6", icmp_id=7)

    Port protocols (tcp, udp, udplite, sctp, dccp, gre) need both ports;
    ICMP/ICMPv6 take an identity (default: an echo request, code 0, id 0);
    other protocols take neither. ``proto`` defaults to tcp.
    """

    def __new__(
        cls,
        src: _AddressLike,
        dst: _AddressLike,
        proto: _ProtocolLike | None = None,
        src_port: int | None = None,
        dst_port: int | None = None,
        *,
        icmp_type: int | None = None,
        icmp_code: int = 0,
        icmp_id: int = 0,
    ) -> Tuple: ...
    @property
    def src(self) -> _Address:
        """Source address (cached ``ipaddress`` object)."""
    @property
    def dst(self) -> _Address:
        """Destination address."""
    @property
    def proto(self) -> Protocol:
        """Layer-4 protocol."""
    @property
    def family(self) -> Literal[4, 6]:
        """IP version."""
    @property
    def src_port(self) -> int | None:
        """Source port (GRE: key); ``None`` for protocols without ports."""
    @property
    def dst_port(self) -> int | None:
        """Destination port (GRE: key); ``None`` for protocols without ports."""
    @property
    def icmp_type(self) -> int | None:
        """ICMP type; ``None`` unless ICMP/ICMPv6."""
    @property
    def icmp_code(self) -> int | None:
        """ICMP code; ``None`` unless ICMP/ICMPv6."""
    @property
    def icmp_id(self) -> int | None:
        """ICMP echo identifier; ``None`` unless ICMP/ICMPv6."""
    @property
    def zone(self) -> int | None:
        """Directional zone (``CTA_TUPLE_ZONE``), usually ``None``."""
    def reversed(self) -> Tuple:
        """The other direction's tuple when there is no NAT (addresses and
        ports swapped, ICMP requests turned into replies)."""
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the ``orig`` object of the ``dump --json`` example."""
    def __hash__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: Tuple, /) -> bool: ...
    def __le__(self, other: Tuple, /) -> bool: ...
    def __gt__(self, other: Tuple, /) -> bool: ...
    def __ge__(self, other: Tuple, /) -> bool: ...

@disjoint_base
class Flow:
    """One conntrack entry as the kernel reported it (from a dump, ``get``
    or ``orphans``; not constructible).

    Frozen, hashable and ordered: equal when every field is equal (two dumps
    of one flow differ in ``timeout``), ordered by original tuple first.
    Fields are converted when read; ``orig``/``reply`` and their addresses
    are cached. ``str(flow)`` is the ``conntrack -L -o extended,id`` line;
    ``flow.to_dict()`` is the object ``dump --json`` prints.
    """

    @property
    def orig(self) -> Tuple:
        """Original direction."""
    @property
    def reply(self) -> Tuple:
        """Reply direction (differs from ``orig.reversed()`` under NAT)."""
    @property
    def family(self) -> Literal[4, 6]:
        """IP version."""
    @property
    def proto(self) -> Protocol:
        """Layer-4 protocol (an ``IntEnum``; ``str(flow.proto) == "tcp"``)."""
    @property
    def state(self) -> TcpState | SctpState | DccpState | None:
        """Protocol state; ``None`` for protocols without one."""
    @property
    def status(self) -> Status:
        """Status bits (``Status.ASSURED in flow.status``)."""
    @property
    def timeout(self) -> int | None:
        """Remaining lifetime in seconds (``None`` for offloaded flows)."""
    @property
    def mark(self) -> int | None:
        """Connection mark."""
    @property
    def zone(self) -> int | None:
        """Zone of both directions (``CTA_ZONE``); ``None`` for zone 0 or a
        directional zone."""
    @property
    def zone_id(self) -> int:
        """The zone id as the kernel's zone filter compares it (0 = default)."""
    @property
    def id(self) -> int | None:
        """Kernel id (what ``conntrack -o id`` prints)."""
    @property
    def use_count(self) -> int | None:
        """Reference count (diagnostic)."""
    @property
    def counters_orig(self) -> Counters | None:
        """Packets/bytes of the original direction (``nf_conntrack_acct=1``)."""
    @property
    def counters_reply(self) -> Counters | None:
        """Packets/bytes of the reply direction."""
    @property
    def timestamp(self) -> Timestamp | None:
        """Start/stop in ns since the epoch (``nf_conntrack_timestamp=1``)."""
    @property
    def labels(self) -> frozenset[int] | None:
        """Set label bits; ``None`` when none is set."""
    @property
    def helper(self) -> str | None:
        """Attached helper's name."""
    @property
    def secctx(self) -> str | None:
        """Security context."""
    @property
    def protoinfo(self) -> dict[str, dict[str, Any]] | None:
        """Protocol info as in ``dump --json`` (``{"tcp": {...}}``)."""
    @property
    def seqadj_orig(self) -> SeqAdj | None:
        """NAT sequence adjustment, original direction."""
    @property
    def seqadj_reply(self) -> SeqAdj | None:
        """NAT sequence adjustment, reply direction."""
    @property
    def synproxy(self) -> Synproxy | None:
        """SYN proxy state."""
    @property
    def master(self) -> Tuple | None:
        """Original tuple of the master flow (expected flows)."""
    @property
    def event_timestamp(self) -> int | None:
        """Event time in ns since the epoch (events only)."""
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, exactly the object ``dump --json`` prints."""
    def to_text(
        self,
        *,
        extended: bool = True,
        id: bool = True,
        labels: bool = False,
        labels_file: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None = None,
    ) -> str:
        """The line ``conntrack -L`` prints for this flow with these ``-o``
        options: ``extended`` (the leading ``ipv4     2`` column), ``id``
        (``id=``), ``labels`` (labels by name at the end, exactly as
        ``-o labels``: ``labels=blocked,audited``; bits without a name are
        left out, the bare word ``labels`` when none is named, nothing when
        the file names nothing). Names come from ``labels_file`` or the
        system's ``connlabel.conf`` (``conntrack.LABEL_FILES``);
        ``labels_file`` without ``labels=True`` raises ``InvalidInputError``,
        an unreadable file too. ``str(flow)`` is ``flow.to_text()``."""
    def __hash__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: Flow, /) -> bool: ...
    def __le__(self, other: Flow, /) -> bool: ...
    def __gt__(self, other: Flow, /) -> bool: ...
    def __ge__(self, other: Flow, /) -> bool: ...

@final
@final
class Orphan(Flow):
    """An orphaned flow (``Conntrack.orphans()``): a ``Flow`` plus why."""

    @property
    def category(self) -> OrphanCategory:
        """Why it is an orphan."""
    @property
    def idle(self) -> float | None:
        """Estimated seconds since its last accepted packet."""
    @property
    def age(self) -> float | None:
        """Seconds since creation (needs ``nf_conntrack_timestamp=1``)."""
    @property
    def evidence(self) -> Literal["confirmed", "suspected"]:
        """``"confirmed"``: a local end without a socket (TCP: no socket with
        its 4-tuple in any state; UDP: nothing bound there); ``"suspected"``:
        idle by the estimate only (forwarded, or sockets not checked)."""

@final
class Filter:
    """Which flows a dump, count or delete selects.

    Conditions combine with AND; several values for one condition (a list,
    set, tuple or range) with OR, so an empty collection is a condition no
    flow meets (it selects nothing, never everything). ``None`` values add
    nothing. The same names are accepted as keyword arguments by every
    selecting method.

    * ``family``: ``"ipv4"``/``"ipv6"`` (or 4/6, ``socket.AF_INET``/``AF_INET6``)
    * ``proto``: ``"tcp"``, 6, ``Protocol.TCP``, or several
    * ``src``, ``dst``, ``reply_src``, ``reply_dst``: an address or network
      (``"10.0.0.0/8"``, ``ipaddress`` objects), or several
    * ``src_port``, ``dst_port``: a port, or several (``range(1024, 65536)``).
      Only TCP, UDP, UDP-Lite, SCTP and DCCP flows have ports: flows of any
      other protocol (ICMP, generic ones, and GRE, whose keys sit where ports
      would) never match a port condition, so ``dst_port=53`` never selects
      a GRE flow with key 0x35. Ports with protocols none of which has ports
      (``proto="gre", dst_port=53``) are refused.
    * ``state``: a TCP state (``"ESTABLISHED"``, ``TcpState``), or several;
      non-TCP flows never match
    * ``status``: bits that must all be set; ``status_unset``: bits that
      must all be clear (``Status`` flags, names or ints; the kernel's 16
      bits, 0-65535)
    * ``mark``: an int (the exact mark), or ``(value, mask)``: the flows
      whose ``(mark & mask) == value``, as the kernel and ``conntrack -m
      VALUE/MASK`` evaluate it. A value with bits outside its mask could
      never match and is refused, naming both (``(0x100, 0xff)``: did you
      mean ``(0x0, 0xff)``?); a zero mask with a zero value holds for every
      flow, so ``(0, 0)`` is no condition at all.
    * ``zone``: a zone id (0 = default zone)
    * ``labels``: label bit numbers that must all be set

    A filter that can match nothing (ports with protocols without ports, a
    TCP state with ``proto="udp"``, addresses of both families, a family
    and addresses of the other, a mark value outside its mask) raises
    ``InvalidInputError`` naming the conditions, never a silent 0.

    The kernel evaluates what it can; the rest is evaluated in Rust, so the
    answer is the same on every kernel.
    """

    def __new__(cls, **criteria: Unpack[FilterCriteria]) -> Filter: ...
    def matches(self, flow: Flow) -> bool:
        """Whether ``flow`` satisfies every condition (evaluated in Rust,
        exactly as a dump evaluates it)."""
    @property
    def is_empty(self) -> bool:
        """True when the filter selects every flow: it has no condition, or
        only conditions every flow satisfies (``mark=(0, 0)``, ``labels=[]``,
        every protocol number, ``0.0.0.0/0`` together with ``::/0``).
        ``delete()`` refuses such a filter (``flush()`` empties a table on
        purpose). An empty collection (``src=[]``) is not empty: it selects
        nothing."""
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class Dump:
    """Iterator over the flows of one dump (``Conntrack.dump()``).

    Streaming: memory does not grow with the table. The kernel is read and
    flows decoded on a worker thread, one datagram (about 200 flows) at a
    time, without the interpreter; Ctrl-C interrupts between datagrams.
    Not a snapshot: flows changing meanwhile may be missed or repeated.
    Flows that fail to decode are skipped and counted in ``summary``. Use
    one iterator from one thread at a time.
    """

    def __iter__(self) -> Dump: ...
    def __next__(self) -> Flow: ...
    def close(self) -> None:
        """Stops the dump (the rest of the table is not read). Idempotent."""
    def __enter__(self) -> Dump: ...
    def __exit__(self, *_args: object) -> None: ...
    @property
    def summary(self) -> DumpSummary | None:
        """Totals once the dump has ended, else ``None``."""

@final
class Event:
    """One flow event (an item of ``Events``): what happened to which flow.

    ``str(event.kind)`` is what ``conntrack -E`` prints (``NEW``,
    ``UPDATE``, ``DESTROY``). UPDATE events carry only what changed besides
    the tuples, id, status and timeout; DESTROY events carry the final
    counters and timestamps. Not constructible.
    """

    @property
    def kind(self) -> EventKind:
        """``EventKind.NEW``, ``UPDATE`` or ``DESTROY``."""
    @property
    def flow(self) -> Flow:
        """The flow as the event describes it."""
    @property
    def origin_portid(self) -> int:
        """Netlink port id of the socket whose request caused the event
        (0 for changes from the packet path and timeouts)."""
    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "new", "origin_portid": ..., "flow": {...}}``, JSON-ready."""

@final
class ExpectationEvent:
    """One expectation event (an item of ``Events`` subscribed with
    ``expectations=``, like ``conntrack -E expect``): an expectation created
    (``NEW``: by a helper or ``create_expectation``) or gone (``DESTROY``:
    matched by its connection, timed out, deleted, or removed with its
    master). Not constructible.
    """

    @property
    def kind(self) -> EventKind:
        """``EventKind.NEW`` or ``DESTROY`` (the kernel sends no expectation
        ``UPDATE`` as of 6.18)."""
    @property
    def expectation(self) -> Expectation:
        """The expectation as the event describes it."""
    @property
    def origin_portid(self) -> int:
        """Netlink port id of the socket whose request caused the event
        (0 for a helper on the packet path and timeouts)."""
    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "new", "origin_portid": ..., "expectation": {...}}``, JSON-ready."""

@final
class Events:
    """A subscription to the conntrack events of one namespace
    (``Conntrack.events()``); iterate it, blocking or with ``async for``.

    Items are ``Event`` objects and, when the kernel dropped events because
    the receive queue was full, ``EventsLost`` items (the stream goes on;
    rebuild state with ``resync()``). Events that fail to decode are skipped
    and counted in ``stats()``. The interpreter is released while waiting
    for the kernel and while decoding; Ctrl-C interrupts a blocking wait
    within 100 ms. Iteration ends when ``timeout`` passes without an item
    (never, without a timeout) or after ``close()``.

    The asyncio form (``async for item in events`` or ``await
    events.__aiter__().get(timeout)``) waits for the socket with
    ``loop.add_reader``: it never blocks the loop and needs no thread.

    Gap-free state (subscribe, then dump)::

        with ct.events(proto="tcp") as events:
            table = {f.orig: f for f in events.resync()}
            for item in events:
                ...  # NEW/UPDATE: table[item.flow.orig] = item.flow, ...

    Use one subscription from one thread (or one event loop) at a time.
    """

    def __iter__(self) -> Events: ...
    def __next__(self) -> Event | ExpectationEvent | EventsLost: ...
    def __aiter__(self) -> AsyncEvents: ...
    def get(self, timeout: float | None = None) -> Event | ExpectationEvent | EventsLost | None:
        """The next item, waiting up to ``timeout`` seconds (``None``: for
        ever); ``None`` when nothing came in time."""
    def poll(self) -> Event | ExpectationEvent | EventsLost | None:
        """The next item if one is queued already, else ``None``; never waits."""
    def fileno(self) -> int:
        """The socket's file descriptor, readable when events are queued (for
        ``select``, ``selectors`` or an event loop; then call ``poll()``)."""
    def resync(self) -> Dump:
        """Discards the queued events, then dumps the namespace's table with
        this subscription's filter. The subscription exists before the dump
        starts, so every change the dump misses comes as an event after it:
        apply the dump, then the events that follow (NEW/UPDATE insert or
        refresh, DESTROY removes; key flows by ``orig``, zone and ``id``).
        Call it at start and after an ``EventsLost``."""
    def stats(self) -> EventStats:
        """Totals so far."""
    @property
    def receive_buffer(self) -> int:
        """The receive buffer the kernel uses now, in bytes (``SO_RCVBUF``)."""
    @property
    def timeout(self) -> float | None:
        """The idle timeout of iteration in seconds (``None``: none)."""
    @property
    def closed(self) -> bool:
        """True after ``close()``."""
    def close(self) -> None:
        """Leaves the groups and closes the socket. Idempotent."""
    def __enter__(self) -> Events: ...
    def __exit__(self, *_args: object) -> None: ...

@final
class Conntrack:
    """A handle on the conntrack table of one network namespace.

    ``netns``: ``None`` (the caller's namespace), an ``ip netns`` name, a
    path (``/proc/PID/ns/net``, any ``os.PathLike``) or a pid. A context
    manager; safe to share between threads (each call uses a socket of its
    own from a small pool, so flows can be created or deleted while a dump
    runs). Every request needs ``CAP_NET_ADMIN``: ``PermissionError``
    otherwise. Kernel and OS failures are ``OSError`` subclasses with
    ``errno`` set; the library's own are ``ConntrackError`` subclasses.
    """

    def __new__(cls, netns: _Netns = None) -> Conntrack: ...
    @property
    def netns(self) -> Any:
        """The namespace given to the constructor."""
    @property
    def closed(self) -> bool:
        """True after ``close()``."""
    def close(self) -> None:
        """Closes the sockets; later calls raise ``ValueError``. Dumps in
        progress run to their end."""
    def __enter__(self) -> Conntrack: ...
    def __exit__(self, *_args: object) -> None: ...
    def count(self, filter: Filter | None = None, /, **criteria: Unpack[FilterCriteria]) -> int:
        """Number of entries. Without criteria: kernel statistics, O(1)
        (expired entries not yet reaped included). With a filter: the flows
        a dump selects, counted in Rust in one pass."""
    def limit(self) -> int:
        """The table limit (``nf_conntrack_max``)."""
    def stats(self) -> Stats:
        """Entries, limit, and the kernel's per-CPU counters with totals."""
    def dump(self, filter: Filter | None = None, /, **criteria: Unpack[FilterCriteria]) -> Dump:
        """Iterates over the flows (all, or those selected)."""
    def dump_zeroing(self, *, family: str | int | None = None) -> Dump:
        """Iterates over the table while zeroing each flow's counters as it is
        read (``conntrack -L -z``): every byte and packet is read exactly once
        across successive calls (counters need ``nf_conntrack_acct=1``).
        Unfiltered on purpose: a filter would zero flows it then hides."""
    def dump_dying(self) -> Dump:
        """Iterates over the dying list (``conntrack -L dying``): flows
        removed whose destroy event is still pending."""
    def dump_unconfirmed(self) -> Dump:
        """Iterates over the unconfirmed list (``conntrack -L unconfirmed``;
        empty on kernels since 5.19)."""
    def update_matching(
        self,
        filter: Filter | None = None,
        /,
        *,
        set_mark: int | tuple[int, int] | None = None,
        add_labels: int | str | Iterable[int | str] | None = None,
        remove_labels: int | str | Iterable[int | str] | None = None,
        set_timeout: int | None = None,
        add_status: _StatusLike | None = None,
        dry_run: bool = False,
        limit: int | None = None,
        rate: int | None = None,
        **criteria: Unpack[FilterCriteria],
    ) -> UpdateReport:
        """Changes every flow the filter or criteria select (``conntrack -U``
        with filter options): ``set_mark`` (``(value, mask)`` sets only the
        mask's bits), labels added or removed (bit numbers or names of
        ``connlabel.conf``), ``set_timeout``, status bits added. One dump and
        pipelined updates, each applied by the kernel to the flow as it is;
        ``dry_run``, ``limit`` and ``rate`` as for ``delete()``. An empty
        selection or an empty change is refused."""
    def restore(
        self,
        source: str | bytes | os.PathLike[str] | os.PathLike[bytes] | Iterable[str | Flow],
        /,
        *,
        timeout: int | None = None,
        zone: int | None = None,
        dry_run: bool = False,
        labels_file: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None = None,
    ) -> RestoreReport:
        """Creates every flow of a saved table again (``conntrack -R``).
        ``source`` is a path of a file of ``dump --json`` NDJSON,
        ``conntrack -L`` text (``-o extended`` and the like) or
        ``conntrack -L -o save`` lines (told apart line by line, empty lines
        and ``#`` comments skipped), or an iterable of
        such lines and ``Flow`` objects (e.g. ``ct.dump()`` of another
        namespace). Pipelined; flows with a master are created last. Every
        flow not restored (a line that does not parse, a create the kernel
        refuses: ``EEXIST`` for a flow that exists, nothing is overwritten)
        is in ``failures``; the others are created regardless. ``timeout``
        and ``zone`` replace every flow's own; ``dry_run`` reads and checks
        only; ``labels_file`` is the ``connlabel.conf`` that names labels."""
    def expectations(self) -> list[Expectation]:
        """Every expectation of the namespace (``conntrack -L expect``)."""
    def get_expectation(self, tuple: Tuple, /, *, zone: int | None = None) -> Expectation | None:
        """The expectation of ``tuple`` in ``zone``, or ``None``."""
    def create_expectation(
        self,
        master: Tuple,
        tuple: Tuple,
        /,
        *,
        timeout: int,
        mask: Tuple | None = None,
        zone: int | None = None,
        helper: str | None = None,
        permanent: bool = False,
        flags: _ExpectFlagsLike | None = None,
        expect_class: int | None = None,
    ) -> None:
        """Creates an expectation (``conntrack -I expect``) related to the
        existing flow ``master``, which needs a helper (``OSError`` with
        ``EOPNOTSUPP`` otherwise). ``mask`` defaults to ``tuple`` matched
        exactly. The kernel applies the helper's own expectation timeout
        (ftp: 300 s) rather than ``timeout``. ``flags``: ``ExpectFlag``s,
        names (``{"PERMANENT", "INACTIVE"}``) or ints; ``permanent=True``
        adds ``PERMANENT`` (``USERSPACE`` is the kernel's to set).
        ``expect_class``: the helper's class (``--class``), at most the
        helper's highest (ftp 0, sip 3; ``OSError`` ``EINVAL`` above)."""
    def delete_expectation(self, tuple: Tuple, /, *, zone: int | None = None) -> bool:
        """Deletes the expectation of ``tuple``; ``False`` when there was none."""
    def flush_expectations(self, helper: str | None = None) -> None:
        """Deletes every expectation, or those of ``helper``."""
    def expectation_stats(self) -> list[ExpectCpuStats]:
        """Per-CPU expectation counters (``conntrack -S expect``)."""
    def events(
        self,
        filter: Filter | None = None,
        /,
        *,
        kinds: str | EventKind | Iterable[str | EventKind] | None = None,
        expectations: bool | str | EventKind | Iterable[str | EventKind] | None = None,
        timeout: float | None = None,
        receive_buffer: int | None = None,
        **criteria: Unpack[FilterCriteria],
    ) -> Events:
        """Subscribes to the events of this namespace: flows created
        (``"new"``), changed (``"update"``), destroyed (``"destroy"``);
        ``kinds`` selects some (default: all; an empty collection: none).
        ``expectations`` adds expectation events (``conntrack -E expect``):
        ``True`` for all kinds, or the kinds (default: none); they come as
        ``ExpectationEvent`` items on the same stream, in the kernel's order.
        A filter or criteria select the flows (evaluated in Rust before any
        object is built); they do not apply to expectation events.
        ``timeout``: iteration ends after that many seconds without an item.
        ``receive_buffer``: bytes of kernel queue to ask for (forced past
        ``net.core.rmem_max`` with ``CAP_NET_ADMIN``); a bigger queue makes
        ``EventsLost`` rarer. Flows created while no listener existed send
        no DESTROY (``nf_conntrack_events=2``): subscribe before they are
        created, or set ``nf_conntrack_events=1``."""
    def count_by(
        self,
        keys: str | Iterable[str],
        /,
        filter: Filter | None = None,
        *,
        top: int | None = None,
        **criteria: Unpack[FilterCriteria],
    ) -> GroupCounts:
        """Counts the selected flows grouped by ``keys`` (``"src"``, ``"dst"``,
        ``"src_port"``, ``"dst_port"``, ``"proto"``, ``"state"``, ``"zone"``,
        ``"mark"``; a list gives tuple keys), in one pass in Rust. With
        ``top``: only the largest groups; the rest is summed in ``other``
        (and counted in ``other_groups``), never mixed into ``groups``."""
    def delete(
        self,
        filter: Filter | None = None,
        /,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        rate: int | None = None,
        **criteria: Unpack[FilterCriteria],
    ) -> DeleteReport:
        """Deletes the selected flows by the fastest correct path (a kernel
        flush when the kernel evaluates the whole filter, else one dump with
        pipelined deletes). An empty selection raises ``InvalidInputError``:
        use ``flush()``. ``limit`` caps the matches, ``rate`` the deletes per
        second."""
    def delete_flow(self, target: Flow | Tuple, /, *, zone: int | None = None) -> bool:
        """Deletes one flow: a ``Flow`` exactly (tuple, zone and id), or a
        ``Tuple`` in ``zone``. False when there was no such flow."""
    def flush(self) -> None:
        """Deletes every flow of the table (``conntrack -F``)."""
    def create(
        self,
        orig: Tuple,
        /,
        *,
        reply: Tuple | None = None,
        timeout: int | None = None,
        status: _StatusLike | None = None,
        mark: int | None = None,
        zone: int | None = None,
        state: str | TcpState | SctpState | None = None,
        labels: int | str | Iterable[int | str] | None = None,
        helper: str | None = None,
    ) -> None:
        """Creates a flow; ``timeout`` is required. ``FileExistsError`` if
        its tuple exists in its zone. ``status`` bits (the kernel's 16, an
        int 0-65535, names or a list) are added to CONFIRMED; ``labels``
        need a ruleset that uses labels."""
    def update(
        self,
        orig: Tuple,
        /,
        *,
        timeout: int | None = None,
        status: _StatusLike | None = None,
        status_word: _StatusLike | None = None,
        mark: int | None = None,
        zone: int | None = None,
        state: str | TcpState | SctpState | None = None,
        labels: int | str | Iterable[int | str] | None = None,
    ) -> None:
        """Changes an existing flow (``FileNotFoundError`` if none).

        ``status`` bits are *added* to the flow's own, as ``conntrack -U -u``
        does: the flow is read and its status sent back with the bits added,
        because the kernel takes a whole status word and refuses (``EBUSY``)
        one that would clear ``SEEN_REPLY`` or ``ASSURED`` (those bits can
        only be set; current kernels clear no status bit on update).

        ``status_word`` (not together with ``status``: ``TypeError``) is
        sent as the whole word, as given, in one request without reading
        the flow. The kernel's rule applies to it: a word lacking
        ``SEEN_REPLY`` or ``ASSURED`` when the flow has it is refused
        (``OSError`` with ``errno.EBUSY``, saying which bits the word lacks);
        the bits it keeps for itself (NAT, ``EXPECTED``, ``CONFIRMED``,
        ``DYING``, ...) it ignores, and it sets the others.

        Either takes only the kernel's 16 status bits (an int 0-65535,
        ``Status`` flags, names or a list of them)."""
    def create_or_update(
        self,
        orig: Tuple,
        /,
        *,
        reply: Tuple | None = None,
        timeout: int | None = None,
        status: _StatusLike | None = None,
        status_word: _StatusLike | None = None,
        mark: int | None = None,
        zone: int | None = None,
        state: str | TcpState | SctpState | None = None,
        labels: int | str | Iterable[int | str] | None = None,
        helper: str | None = None,
    ) -> None:
        """Creates the flow, or updates it if it exists: ``status`` bits are
        then added to the flow's own; ``status_word`` (not with ``status``)
        is sent as given, under the kernel's rule described in ``update``
        (a word lacking ``SEEN_REPLY`` or ``ASSURED`` that the flow has:
        ``OSError`` with ``errno.EBUSY``)."""
    def get(self, orig: Tuple, /, *, zone: int = 0) -> Flow | None:
        """Looks one flow up by its original tuple; ``None`` if absent."""
    def orphans(
        self,
        *,
        idle: _Duration | None = None,
        unreplied: _Duration | None = None,
        half_closed: _Duration | None = None,
        categories: str | OrphanCategory | Iterable[str | OrphanCategory] | None = None,
        include_nat: bool = False,
        exclude_assured: bool = False,
        timeouts: Mapping[str, _Duration] | None = None,
        confirmed: bool = False,
        sockets: Literal["off", "namespace", "all"] = "namespace",
        filter: Filter | None = None,
        **criteria: Unpack[FilterCriteria],
    ) -> list[Orphan]:
        """Orphaned flows: TCP ESTABLISHED idle for at least ``idle``
        (default 3600 s), unreplied for at least ``unreplied`` (60 s),
        half-closed idle for at least ``half_closed`` (300 s). Idle time is
        estimated from the namespace's timeouts (``timeouts`` overrides some
        of them, by sysctl name). NATed flows are skipped unless
        ``include_nat``; ``categories`` restricts the kinds; a filter or
        criteria restrict the candidates.

        Each orphan's ``evidence`` comes from the socket table read after
        the dump (``sockets``: ``"namespace"``, the table's own; ``"all"``,
        every namespace of the host, for containers' and pods' flows;
        ``"off"``): flows with a live socket are never orphans.
        ``confirmed=True`` keeps only orphans whose local end has no socket."""
    def count_orphans(
        self,
        *,
        idle: _Duration | None = None,
        unreplied: _Duration | None = None,
        half_closed: _Duration | None = None,
        categories: str | OrphanCategory | Iterable[str | OrphanCategory] | None = None,
        include_nat: bool = False,
        exclude_assured: bool = False,
        timeouts: Mapping[str, _Duration] | None = None,
        confirmed: bool = False,
        sockets: Literal["off", "namespace", "all"] = "namespace",
        filter: Filter | None = None,
        **criteria: Unpack[FilterCriteria],
    ) -> OrphanCounts:
        """Orphans per category, counted in one pass."""
    def delete_orphans(
        self,
        *,
        dry_run: bool = False,
        limit: int | None = None,
        rate: int | None = None,
        idle: _Duration | None = None,
        unreplied: _Duration | None = None,
        half_closed: _Duration | None = None,
        categories: str | OrphanCategory | Iterable[str | OrphanCategory] | None = None,
        include_nat: bool = False,
        exclude_assured: bool = False,
        timeouts: Mapping[str, _Duration] | None = None,
        confirmed: bool = False,
        sockets: Literal["off", "namespace", "all"] = "namespace",
        filter: Filter | None = None,
        **criteria: Unpack[FilterCriteria],
    ) -> DeleteReport:
        """Deletes the orphans, each by tuple, zone and id (``dry_run=True``
        only counts them: calls act, tools preview, as ``delete()`` and the
        Rust API). With ``confirmed=True`` only orphans proven by the socket
        table, each looked up again right before its delete: the safe choice
        for unattended cleanup."""

@final
class Sysctl:
    """Typed conntrack settings of one namespace.

    ``netns`` as for ``Conntrack``; ``root`` replaces ``/`` for ``/proc``,
    ``/sys`` and ``/etc`` (for tests). Keys are file names
    (``"nf_conntrack_max"``), sysctl names (``"net.netfilter.…"``) or
    ``"hashsize"``; an unknown key raises ``InvalidInputError``. Global keys
    are writable only from the initial namespace (``PermissionError``
    elsewhere, saying so).
    """

    def __new__(cls, netns: _Netns = None, *, root: str | os.PathLike[str] | None = None) -> Sysctl: ...
    def read(self, key: str) -> int:
        """One value (``FileNotFoundError`` when the kernel has no such key)."""
    def read_optional(self, key: str) -> int | None:
        """One value; ``None`` when the kernel has no such key."""
    def write(self, key: str, value: int) -> None:
        """Writes one value by writing the file itself (real errno on failure)."""
    def settings(self) -> dict[str, int | None]:
        """Every setting, ``{name: value}``, read in one namespace hop."""
    def timeouts(self) -> dict[str, int | None]:
        """Every per-protocol timeout in seconds."""
    def is_initial_namespace(self) -> bool:
        """True in the initial namespace (global keys writable)."""
    def capacity(self) -> Capacity:
        """Entries, limit, buckets and their kernel memory."""
    def persist(self, values: Mapping[str, int], /, *, dry_run: bool = False) -> PersistReport:
        """Makes ``values`` survive a reboot: a ``sysctl.d`` drop-in plus
        ``modules-load.d`` and (for ``hashsize``) ``modprobe.d``, written
        atomically, only when their content changes."""

def advise(
    memory_budget: int | str,
    *,
    chain_depth: float = 4.0,
    netns: _Netns = None,
    entry_bytes: int | None = None,
    extension_bytes: int | None = None,
    event_listener: bool = False,
) -> Recommendation:
    """The largest ``nf_conntrack_max`` (and its buckets) whose kernel memory
    fits ``memory_budget`` (bytes, or text such as ``"512M"``, ``"1.5GiB"``;
    K/M/G and KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000) with an
    average hash chain depth of at most ``chain_depth`` when full. Bytes per
    entry come from the slab cache and the namespace's settings unless
    ``entry_bytes`` (and ``extension_bytes``) are given."""

def list_netns() -> list[str]:
    """The named network namespaces (``ip netns list``), sorted."""
