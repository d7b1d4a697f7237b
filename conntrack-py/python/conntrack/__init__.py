# SPDX-License-Identifier: MIT OR Apache-2.0
"""The Linux connection-tracking table over ctnetlink, from Python.

Bindings for the Rust library ``conntrack-rs``: dump, filter, count, group,
create, look up and delete conntrack flows, find orphaned flows, read and
write the conntrack sysctls, get capacity advice, in any network namespace.

>>> import conntrack
>>> with conntrack.Conntrack() as ct:                     # doctest: +SKIP
...     print(ct.count(), "of", ct.limit())
...     for flow in ct.dump(proto="tcp", state="ESTABLISHED", src="10.0.0.0/8"):
...         print(flow.orig.src, "->", flow.orig.dst, flow.orig.dst_port)
...     print(ct.count_by("src", top=10, proto="udp"))
...     print(ct.delete(dst_port=53, proto="udp", dry_run=True))
...     for event in ct.events(kinds=["new", "destroy"], timeout=5):
...         print(event)

Events also come as an async iterator (``async for event in ct.events()``)
that does not block the event loop. ``conntrack.prometheus`` (needs
``prometheus_client``) exposes the exporter's metrics from a registry.

Every request needs ``CAP_NET_ADMIN`` (``PermissionError`` otherwise). The
interpreter is released during all kernel I/O and decoding.
"""

from __future__ import annotations

from . import sysctl
from ._aio import AsyncEvents
from ._conntrack import (
    FILTER_CRITERIA,
    Conntrack,
    Dump,
    Event,
    Events,
    ExpectationEvent,
    Filter,
    Flow,
    Orphan,
    Sysctl,
    Tuple,
    __version__,
    advise,
    list_netns,
)
from ._errors import (
    ConntrackError,
    DecodeError,
    DumpInterruptedError,
    InvalidInputError,
    ProtocolError,
    SysctlValueError,
)
from ._types import (
    Capacity,
    Counters,
    CpuCounters,
    CpuStats,
    DccpState,
    DeleteReport,
    DumpSummary,
    EventKind,
    Expectation,
    EventsLost,
    EventStats,
    ExpectCpuStats,
    ExpectFlag,
    FilterCriteria,
    GroupCounts,
    OrphanCategory,
    OrphanCounts,
    PersistReport,
    Protocol,
    Recommendation,
    RestoreFailure,
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
    "FILTER_CRITERIA",
    "AsyncEvents",
    "Capacity",
    "Conntrack",
    "ConntrackError",
    "Counters",
    "CpuCounters",
    "CpuStats",
    "DccpState",
    "DecodeError",
    "DeleteReport",
    "Dump",
    "DumpInterruptedError",
    "DumpSummary",
    "Event",
    "EventKind",
    "EventStats",
    "Events",
    "EventsLost",
    "ExpectCpuStats",
    "ExpectFlag",
    "Expectation",
    "ExpectationEvent",
    "Filter",
    "FilterCriteria",
    "Flow",
    "GroupCounts",
    "InvalidInputError",
    "Orphan",
    "OrphanCategory",
    "OrphanCounts",
    "PersistReport",
    "Protocol",
    "ProtocolError",
    "Recommendation",
    "RestoreFailure",
    "RestoreReport",
    "SctpState",
    "SeqAdj",
    "Stats",
    "Status",
    "Synproxy",
    "Sysctl",
    "SysctlValueError",
    "TcpState",
    "Timestamp",
    "Tuple",
    "UpdateReport",
    "__version__",
    "advise",
    "list_netns",
    "sysctl",
]
