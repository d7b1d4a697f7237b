# SPDX-License-Identifier: MIT OR Apache-2.0
"""Enums and small records that the native module hands out.

They are plain Python so they behave exactly like the standard library's
(``enum.IntEnum``, ``enum.Enum``, ``enum.IntFlag``, ``NamedTuple``, frozen
dataclasses); the native code builds them by calling these classes.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, Mapping, NamedTuple, Optional, Tuple, TypedDict, Union

if TYPE_CHECKING:
    from ._conntrack import Tuple as FlowTuple

__all__ = [
    "Capacity",
    "Counters",
    "CpuCounters",
    "CpuStats",
    "DccpState",
    "DeleteReport",
    "DumpSummary",
    "EventKind",
    "EventStats",
    "EventsLost",
    "ExpectCpuStats",
    "FilterCriteria",
    "GroupCounts",
    "OrphanCategory",
    "OrphanCounts",
    "PersistReport",
    "Protocol",
    "Recommendation",
    "RestoreFailure",
    "RestoreReport",
    "SctpState",
    "SeqAdj",
    "Stats",
    "Status",
    "Synproxy",
    "TcpState",
    "Timestamp",
]


# ---- enums -------------------------------------------------------------------

_PROTOCOL_NAMES = {
    1: "icmp",
    6: "tcp",
    17: "udp",
    33: "dccp",
    47: "gre",
    58: "icmpv6",
    132: "sctp",
    136: "udplite",
}


class Protocol(enum.IntEnum):
    """Layer-4 protocol number. ``str()`` gives conntrack's name (``"tcp"``);
    protocols tracked generically are pseudo-members named ``PROTO_<n>``.
    ``Protocol("udp")`` looks a name up."""

    ICMP = 1
    TCP = 6
    UDP = 17
    DCCP = 33
    GRE = 47
    ICMPV6 = 58
    SCTP = 132
    UDPLITE = 136

    @classmethod
    def _missing_(cls, value: object) -> Optional["Protocol"]:
        if isinstance(value, str):
            for number, name in _PROTOCOL_NAMES.items():
                if name == value.strip().lower():
                    return cls(number)
            return None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
            member = int.__new__(cls, value)
            member._name_ = f"PROTO_{value}"
            member._value_ = value
            return cls._value2member_map_.setdefault(value, member)  # type: ignore[return-value]
        return None

    def __str__(self) -> str:
        return _PROTOCOL_NAMES.get(self._value_, str(self._value_))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class _NamedStateEnum(enum.Enum):
    """A kernel state enum: ``str()`` is the name conntrack prints; values from
    newer kernels become pseudo-members named ``UNKNOWN_<n>``; a name
    (``"ESTABLISHED"``, any case) looks a member up."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            return cls.__members__.get(value.strip().upper())
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
            member = object.__new__(cls)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return cls._value2member_map_.setdefault(value, member)
        return None

    def __str__(self) -> str:
        return self._name_


class TcpState(_NamedStateEnum):
    """TCP tracking state (``enum tcp_conntrack``)."""

    NONE = 0
    SYN_SENT = 1
    SYN_RECV = 2
    ESTABLISHED = 3
    FIN_WAIT = 4
    CLOSE_WAIT = 5
    LAST_ACK = 6
    TIME_WAIT = 7
    CLOSE = 8
    SYN_SENT2 = 9


class SctpState(_NamedStateEnum):
    """SCTP tracking state (``enum sctp_conntrack``)."""

    NONE = 0
    CLOSED = 1
    COOKIE_WAIT = 2
    COOKIE_ECHOED = 3
    ESTABLISHED = 4
    SHUTDOWN_SENT = 5
    SHUTDOWN_RECD = 6
    SHUTDOWN_ACK_SENT = 7
    HEARTBEAT_SENT = 8
    HEARTBEAT_ACKED = 9


class DccpState(_NamedStateEnum):
    """DCCP tracking state (``enum ct_dccp_states``)."""

    NONE = 0
    REQUEST = 1
    RESPOND = 2
    PARTOPEN = 3
    OPEN = 4
    CLOSEREQ = 5
    CLOSING = 6
    TIMEWAIT = 7
    IGNORE = 8
    INVALID = 9


class Status(enum.IntFlag):
    """Flow status bits (``enum ip_conntrack_status``); unknown bits are kept.
    ``Status.SEEN_REPLY in flow.status`` tells a replied flow."""

    EXPECTED = 1 << 0
    SEEN_REPLY = 1 << 1
    ASSURED = 1 << 2
    CONFIRMED = 1 << 3
    SRC_NAT = 1 << 4
    DST_NAT = 1 << 5
    SEQ_ADJUST = 1 << 6
    SRC_NAT_DONE = 1 << 7
    DST_NAT_DONE = 1 << 8
    DYING = 1 << 9
    FIXED_TIMEOUT = 1 << 10
    TEMPLATE = 1 << 11
    UNTRACKED = 1 << 12
    HELPER = 1 << 13
    OFFLOAD = 1 << 14
    HW_OFFLOAD = 1 << 15
    #: The kernel's alias of ``UNTRACKED``.
    NAT_CLASH = 1 << 12


class ExpectFlag(enum.IntFlag):
    """Expectation flags (``NF_CT_EXPECT_*``); unknown bits are kept.
    ``ExpectFlag.PERMANENT in expectation.flags`` tells a permanent one."""

    #: Stays after a connection matched it.
    PERMANENT = 1 << 0
    #: Matches no connection until the helper activates it.
    INACTIVE = 1 << 1
    #: Created from userspace (set by the kernel; a create cannot set it).
    USERSPACE = 1 << 2


class OrphanCategory(enum.Enum):
    """Why a flow is considered orphaned."""

    #: TCP ESTABLISHED (replied) and idle beyond the ``idle`` threshold.
    IDLE_ESTABLISHED = "idle_established"
    #: Never saw a reply, older than the ``unreplied`` threshold.
    LONG_UNREPLIED = "long_unreplied"
    #: TCP half-closed (FIN_WAIT ... CLOSE), idle beyond ``half_closed``.
    LINGERING_HALF_CLOSED = "lingering_half_closed"

    def __str__(self) -> str:
        return self.value


class EventKind(enum.Enum):
    """What happened to a flow (``Event.kind``). ``str()`` is the name
    ``conntrack -E`` prints (``"NEW"``)."""

    #: Created (a NEW event).
    NEW = "new"
    #: Changed: state, status, mark, labels, ... (UPDATE).
    UPDATE = "update"
    #: Destroyed: expired, deleted or flushed (DESTROY).
    DESTROY = "destroy"

    def __str__(self) -> str:
        return self._name_


# ---- records -----------------------------------------------------------------


class Counters(NamedTuple):
    """Packets and bytes of one direction (``nf_conntrack_acct=1``)."""

    packets: int
    bytes: int


class Timestamp(NamedTuple):
    """Start and stop of a flow in ns since the epoch (``nf_conntrack_timestamp=1``)."""

    start: Optional[int]
    stop: Optional[int]


class SeqAdj(NamedTuple):
    """NAT sequence adjustment of one direction."""

    correction_pos: int
    offset_before: int
    offset_after: int


class Synproxy(NamedTuple):
    """SYN proxy state."""

    isn: int
    its: int
    tsoff: int


def _plain(value: Any) -> Any:
    """``value`` with records as dicts, recursively: nested records, and the
    native objects that have ``to_dict()`` (a ``Tuple`` field), which
    ``dataclasses.asdict`` cannot copy."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, enum.IntFlag):
        return int(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_plain(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Record:
    def to_dict(self) -> Dict[str, Any]:
        """The fields as a (JSON-ready) dict."""
        return _plain(self)  # type: ignore[no-any-return]


@dataclasses.dataclass(frozen=True)
class CpuCounters(_Record):
    """Kernel conntrack counters of one CPU, or their sum. ``None``: this
    kernel does not report the counter (never zero)."""

    searched: Optional[int] = None
    found: Optional[int] = None
    new: Optional[int] = None
    invalid: Optional[int] = None
    ignore: Optional[int] = None
    delete: Optional[int] = None
    delete_list: Optional[int] = None
    insert: Optional[int] = None
    insert_failed: Optional[int] = None
    drop: Optional[int] = None
    early_drop: Optional[int] = None
    error: Optional[int] = None
    search_restart: Optional[int] = None
    clash_resolve: Optional[int] = None
    chaintoolong: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class CpuStats(_Record):
    """Counters of one CPU."""

    cpu: int
    counters: CpuCounters


@dataclasses.dataclass(frozen=True)
class Stats(_Record):
    """Table size and kernel counters (``Conntrack.stats()``)."""

    #: Entries of this namespace (expired ones not yet reaped included).
    entries: int
    #: The limit ``nf_conntrack_max``.
    max_entries: Optional[int]
    #: One entry per possible CPU.
    per_cpu: Tuple[CpuStats, ...]
    #: The sum over CPUs.
    total: CpuCounters


@dataclasses.dataclass(frozen=True)
class UpdateReport(_Record):
    """What ``Conntrack.update_matching()`` did."""

    #: Whether it was a dry run (nothing sent).
    dry_run: bool
    #: Flows that matched (a dry run: that would be changed).
    matched: int
    #: Flows changed.
    updated: int
    #: Matching flows gone before their update arrived (not an error).
    already_gone: int
    #: Updates that failed, by errno (``EBUSY``: the flow gained SEEN_REPLY or
    #: ASSURED meanwhile; ``ENOSPC``: no label space in the namespace).
    failed: Mapping[int, int]
    #: Whether the kernel applied part of the filter.
    kernel_prefiltered: bool

    @property
    def failed_total(self) -> int:
        """Total failed updates."""
        return sum(self.failed.values())


@dataclasses.dataclass(frozen=True)
class RestoreFailure(_Record):
    """A flow of a saved table that ``Conntrack.restore()`` did not create."""

    #: 1-based line number in the saved table (item number of an iterable).
    line: int
    #: The flow's original tuple, when the line parsed.
    orig: Optional[FlowTuple]
    #: The kernel's errno for a refused create (``EEXIST``: the flow exists;
    #: ``ENOENT``: its master is gone; ``ENOSPC``: created without its labels,
    #: no label space); ``None`` for a line that does not parse.
    errno: Optional[int]
    #: Why, in one sentence.
    message: str


@dataclasses.dataclass(frozen=True)
class RestoreReport(_Record):
    """What ``Conntrack.restore()`` did."""

    #: Whether it was a dry run (every flow read and checked, none created).
    dry_run: bool
    #: Flows read (lines that parsed, and ``Flow`` items).
    read: int
    #: Flows created (a dry run: that would be sent).
    created: int
    #: Flows not sent: lines that did not parse, or flows no create can
    #: describe (e.g. without a timeout).
    invalid: int
    #: Creates the kernel refused, by errno.
    failed: Mapping[int, int]
    #: Every flow not restored, in the order it happened.
    failures: Tuple[RestoreFailure, ...]

    @property
    def failed_total(self) -> int:
        """Flows not restored: invalid ones and refused creates."""
        return self.invalid + sum(self.failed.values())


@dataclasses.dataclass(frozen=True)
class Expectation(_Record):
    """One expectation (``conntrack -L expect``): a connection a helper
    announced, tracked as RELATED to its master flow."""

    #: Original tuple of the master flow.
    master: FlowTuple
    #: The connection expected.
    tuple: FlowTuple
    #: Which parts of ``tuple`` must match (all-ones: exact; zero: any).
    mask: FlowTuple
    #: Remaining lifetime in seconds.
    timeout: Optional[int]
    #: Kernel id, as ``conntrack -o id`` prints it.
    id: Optional[int]
    #: The helper that created it (``"ftp"``, ...).
    helper: Optional[str]
    #: Conntrack zone.
    zone: Optional[int]
    #: ``NF_CT_EXPECT_*`` flags (``ExpectFlag``: an ``int``, 1 permanent,
    #: 2 inactive, 4 userspace).
    flags: ExpectFlag
    #: Helper-defined class.
    expect_class: Optional[int]
    #: Helper function name.
    function: Optional[str]
    #: NAT of the expected connection: direction (0 original, 1 reply)...
    nat_direction: Optional[int]
    #: ...and where it is redirected.
    nat_tuple: Optional[FlowTuple]


@dataclasses.dataclass(frozen=True)
class DeleteReport(_Record):
    """What a delete by filter (or of orphans) did."""

    #: ``"kernel_flush"``, ``"dump_and_delete"`` or ``"dry_run"``.
    path: str
    #: Flows that matched (a dry run: that would be deleted).
    matched: int
    #: Flows deleted.
    deleted: int
    #: Matching flows gone before their delete arrived (not an error).
    already_gone: int
    #: Deletes that failed, by errno.
    failed: Mapping[int, int]
    #: Whether the kernel applied part of the filter.
    kernel_prefiltered: bool

    @property
    def failed_total(self) -> int:
        """Total failed deletes."""
        return sum(self.failed.values())


@dataclasses.dataclass(frozen=True)
class OrphanCounts(_Record):
    """Orphans per category (``Conntrack.count_orphans()``)."""

    idle_established: int
    long_unreplied: int
    lingering_half_closed: int
    #: Flows judged.
    candidates: int
    #: Candidates without an idle estimate (never orphans).
    unestimated: int
    #: Orphans whose local end has no socket (in the category counts).
    confirmed: int
    #: Orphans by the idle estimate only: forwarded, unchecked or unreadable
    #: (in the category counts unless ``confirmed=True`` was asked).
    suspected: int
    #: Idle enough by the estimate but with a live socket: not orphans.
    alive: int

    @property
    def total(self) -> int:
        """Orphans of every category."""
        return self.idle_established + self.long_unreplied + self.lingering_half_closed


@dataclasses.dataclass(frozen=True)
class DumpSummary(_Record):
    """Totals of a finished dump (``Dump.summary``)."""

    #: Flows the kernel sent and that decoded.
    flows: int
    #: Flows handed out (after the filter).
    matched: int
    #: Flows that failed to decode (skipped).
    decode_errors: int
    #: Datagrams received (one batch each).
    datagrams: int
    #: Bytes received.
    bytes: int
    #: Size of the first datagram.
    first_datagram: int
    #: Whether the kernel flagged the dump as inconsistent.
    interrupted: bool
    #: Whether the kernel applied a filter.
    filtered: bool
    #: Whether the dump reached its end.
    complete: bool
    #: Whether a prefetch thread received the datagrams (large tables).
    prefetched: bool


@dataclasses.dataclass(frozen=True)
class Recommendation(_Record):
    """A limit and hash size that fit a memory budget (``conntrack.advise``)."""

    #: ``nf_conntrack_max`` to set.
    max: int
    #: ``nf_conntrack_buckets`` / ``hashsize`` to set.
    buckets: int
    #: Bytes per entry used (slab slot plus extension area).
    per_entry_bytes: int
    #: ``buckets × 8``, pinned as soon as the table is resized.
    hash_table_bytes: int
    #: ``max × per_entry_bytes``, pinned when the table is full.
    entries_bytes: int
    #: Entries plus hash table: what a full table pins (≤ the budget).
    pinned_bytes: int
    #: Average chain depth when full.
    chain_depth: float
    #: The budget asked for, in bytes.
    memory_budget: int

    def sysctls(self) -> Dict[str, int]:
        """The values to set or persist (``Sysctl.persist`` takes this dict)."""
        return {
            "nf_conntrack_max": self.max,
            "nf_conntrack_buckets": self.buckets,
            "hashsize": self.buckets,
        }


@dataclasses.dataclass(frozen=True)
class Capacity(_Record):
    """Where a namespace's table stands (``Sysctl.capacity()``)."""

    count: int
    max: int
    buckets: int
    #: Conntrack objects of the whole host, from the slab cache.
    slab_objects: Optional[int]
    entry_bytes: int
    extension_bytes: int
    usage: Optional[float]
    chain_depth: float
    host_chain_depth: Optional[float]
    chain_depth_at_max: float
    hash_table_bytes: int
    entries_bytes: int
    in_use_bytes: int
    at_max_bytes: int


@dataclasses.dataclass(frozen=True)
class PersistReport(_Record):
    """What ``Sysctl.persist`` wrote (or would write)."""

    dry_run: bool
    #: Whether any file was (or would be) created or changed.
    changed: bool
    #: ``{"path", "outcome", "content"}`` per file.
    files: Tuple[Mapping[str, Any], ...]
    #: Lines elsewhere that override the drop-in.
    overrides: Tuple[Mapping[str, Any], ...]


GroupKey = Union[Any, Tuple[Any, ...]]


class GroupCounts:
    """What ``Conntrack.count_by`` returns: the groups, largest first, and
    what ``top`` left out, kept apart so that the keys of ``groups`` are all
    of one type (addresses, ports, ...)::

        counts = ct.count_by("src", top=3)
        for address, flows in counts:          # (key, count) pairs
            ...
        counts.groups                          # {IPv4Address(...): 12, ...}
        counts.other, counts.other_groups      # beyond the top 3
        counts.total                           # every flow counted

    Iteration, ``len()`` and ``dict(counts)`` cover the groups only.
    (Earlier versions returned a ``dict`` with an extra ``"other"`` key
    when ``top`` was given: use ``counts.groups`` for the dict and
    ``counts.other`` for that remainder; see the CHANGELOG.)
    """

    __slots__ = ("groups", "total", "other", "other_groups")

    #: ``{key: count}``, largest first (ties by key).
    groups: Dict[Any, int]
    #: Flows counted (matching the filter).
    total: int
    #: Flows in the groups beyond the top ones.
    other: int
    #: Number of groups beyond the top ones.
    other_groups: int

    def __init__(
        self,
        items: Iterable[Tuple[GroupKey, int]] = (),
        *,
        total: int = 0,
        other: int = 0,
        other_groups: int = 0,
    ) -> None:
        self.groups = dict(items)
        self.total = total
        self.other = other
        self.other_groups = other_groups

    def __iter__(self) -> Iterator[Tuple[Any, int]]:
        return iter(self.groups.items())

    def __len__(self) -> int:
        return len(self.groups)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupCounts):
            return NotImplemented
        return (self.groups, self.total, self.other, self.other_groups) == (
            other.groups,
            other.total,
            other.other,
            other.other_groups,
        )

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> Dict[str, Any]:
        """``{"groups": [[key, count], ...], "total", "other", "other_groups"}``
        (keys as text, JSON-ready)."""
        return {
            "groups": [[_key_text(key), count] for key, count in self.groups.items()],
            "total": self.total,
            "other": self.other,
            "other_groups": self.other_groups,
        }

    def __repr__(self) -> str:
        return (
            f"GroupCounts({self.groups!r}, total={self.total}, other={self.other}, "
            f"other_groups={self.other_groups})"
        )


def _key_text(key: Any) -> Any:
    if isinstance(key, tuple):
        return [_key_text(part) for part in key]
    if key is None or isinstance(key, (bool, int)) and not isinstance(key, enum.Enum):
        return key
    return str(key)


@dataclasses.dataclass(frozen=True)
class EventsLost(_Record):
    """An item of an event stream saying that the kernel dropped events for
    this subscriber (its receive queue was full, ``ENOBUFS``). State built
    from events is incomplete from here on: rebuild it with
    ``Events.resync()``. The stream goes on."""

    #: Events dropped since the previous report (the socket's ``SO_MEMINFO``
    #: drop counter); ``None`` when the kernel cannot tell.
    dropped: Optional[int]


@dataclasses.dataclass(frozen=True)
class ExpectCpuStats(_Record):
    """Expectation counters of one CPU (``Conntrack.expectation_stats()``,
    ``conntrack -S expect``)."""

    #: The CPU.
    cpu: int
    #: Connections that began as an expected one (``expect_new``).
    new: int
    #: Expectations inserted (``expect_create``).
    create: int
    #: Expectations removed (``expect_delete``).
    delete: int


@dataclasses.dataclass(frozen=True)
class EventStats(_Record):
    """Totals of an event subscription (``Events.stats()``)."""

    #: NEW events received (before the filter).
    new: int
    #: UPDATE events received.
    update: int
    #: DESTROY events received.
    destroy: int
    #: Expectation NEW events received.
    expectation_new: int
    #: Expectation UPDATE events received (none as of kernel 6.18).
    expectation_update: int
    #: Expectation DESTROY events received.
    expectation_destroy: int
    #: ``EventsLost`` reports.
    lost_reports: int
    #: Events the kernel dropped, summed over the reports.
    dropped: int
    #: Events that failed to decode (skipped).
    decode_errors: int
    #: Datagrams received.
    datagrams: int
    #: Datagrams thrown away unread by ``resync()``.
    discarded: int
    #: Items handed out (events that passed the filter, and lost reports).
    delivered: int


_Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
_Network = Union[
    str,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
]
_ProtocolLike = Union[str, int, Protocol]
_StateLike = Union[str, TcpState, int]
_StatusLike = Union[Status, int, str, Iterable[Union[Status, int, str]]]


class FilterCriteria(TypedDict, total=False):
    """The keyword criteria of ``Filter`` and of every selecting method, for
    type checkers (``**criteria: Unpack[FilterCriteria]``): a misspelled
    name or a value of the wrong type is an error before the code runs.
    See ``Filter`` for what each accepts; ``None`` adds no condition."""

    family: Union[str, int, None]
    proto: Union[_ProtocolLike, Iterable[_ProtocolLike], None]
    src: Union[_Network, Iterable[_Network], None]
    dst: Union[_Network, Iterable[_Network], None]
    reply_src: Union[_Network, Iterable[_Network], None]
    reply_dst: Union[_Network, Iterable[_Network], None]
    src_port: Union[int, Iterable[int], None]
    dst_port: Union[int, Iterable[int], None]
    state: Union[_StateLike, Iterable[_StateLike], None]
    status: Optional[_StatusLike]
    status_unset: Optional[_StatusLike]
    mark: Union[int, Tuple[int, int], None]
    zone: Optional[int]
    labels: Union[int, str, Iterable[Union[int, str]], None]
