# SPDX-License-Identifier: MIT OR Apache-2.0
"""Conntrack metrics for ``prometheus_client``: the ``exporter`` example's
metrics, from a Python service's own registry.

>>> from prometheus_client import REGISTRY, start_http_server   # doctest: +SKIP
>>> from conntrack.prometheus import ConntrackCollector
>>> REGISTRY.register(ConntrackCollector(["blue", "green"]))     # doctest: +SKIP

Needs ``prometheus_client`` (``pip install prometheus-client``); importing
``conntrack`` itself does not. Metric names and labels are those of
``examples/exporter.rs`` (prefix ``conntrack_``), one ``netns`` label per
namespace, so its alert rules (``examples/conntrack-alerts.yml``) apply:

Read at every collection (two round trips per namespace, microseconds
whatever the table size):

* ``conntrack_entries``, ``conntrack_entries_limit`` (gauges)
* ``conntrack_<counter>_total`` (counters): each kernel per-CPU counter the
  kernel reports (``drop``, ``early_drop``, ``insert_failed``, ``invalid``,
  ...), summed over CPUs; the kernel's 32-bit per-CPU values are accumulated
  wrap-aware, so the counters only go up
* ``conntrack_up`` (gauge): 1 when the namespace could be read
* ``conntrack_buckets`` (gauge, no label): the host's hash table size

From dumps redone at most every ``breakdown_interval`` seconds (cached in
between, so collections stay cheap on large tables; ``breakdown=False``
skips them):

* ``conntrack_flows{protocol}``, ``conntrack_tcp_flows{state}`` (gauges)
* ``conntrack_orphan_flows{category}`` (gauge; ``orphans=False`` skips it)
* ``conntrack_orphan_evidence_flows{evidence}`` (gauge): the same orphans by
  what the socket table says, ``confirmed`` or ``suspected``
* with ``top=N``: ``conntrack_top_source_flows{address}`` and
  ``conntrack_top_destination_port_flows{protocol,port}``, the N largest
  groups plus one ``other`` series each
* ``conntrack_breakdown_age_seconds``, ``conntrack_breakdown_duration_seconds``
* ``conntrack_breakdown_dumps_total`` (counter): breakdowns that dumped the
  table; an empty table (``conntrack_entries`` 0) is not dumped, as in the
  exporter

And the collector's own cost: ``conntrack_exporter_scrape_duration_seconds``
(gauge) and ``conntrack_exporter_scrape_errors_total{netns}`` (counter).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "conntrack.prometheus needs the prometheus_client package "
        "(pip install prometheus-client); the rest of conntrack works without it"
    ) from error

from ._conntrack import Conntrack, Sysctl
from ._errors import ConntrackError
from ._types import CpuCounters, CpuStats

__all__ = ["ConntrackCollector", "KERNEL_COUNTERS"]

#: The kernel counters, in ``ctattr_stats_cpu`` order (``CpuCounters`` fields).
KERNEL_COUNTERS: Tuple[str, ...] = tuple(f.name for f in dataclasses.fields(CpuCounters))

_COUNTER_MEANINGS: Dict[str, str] = {
    "searched": "hash table searches (no longer counted)",
    "found": "lookups that found an entry",
    "new": "entries added (no longer counted)",
    "invalid": "packets that could not be tracked",
    "ignore": "packets already tracked (no longer counted)",
    "delete": "entries deleted (no longer counted)",
    "delete_list": "entries put on the dying list (no longer counted)",
    "insert": "entries inserted",
    "insert_failed": "entries that could not be inserted (clashes, full table)",
    "drop": "packets dropped because the table was full",
    "early_drop": "entries evicted early to make room",
    "error": "ICMP errors that could not be tracked",
    "search_restart": "lookups restarted after a hash resize",
    "clash_resolve": "insert clashes resolved",
    "chaintoolong": "inserts refused because a hash chain was too long",
}

_NetnsSpec = Union[None, str, int, "os.PathLike[str]"]


def _label(netns: _NetnsSpec) -> str:
    """The ``netns`` label of a namespace, as the exporter prints it."""
    if netns is None:
        return "current"
    if isinstance(netns, bool):
        raise TypeError(f"netns: {netns!r} is not a namespace")
    if isinstance(netns, int):
        return f"pid {netns}"
    return os.fspath(netns)


class _Breakdown:
    """One cached set of dump-based numbers of a namespace."""

    def __init__(self) -> None:
        self.at = 0.0
        self.duration = 0.0
        self.flows: List[Tuple[str, int]] = []
        self.tcp: List[Tuple[str, int]] = []
        self.orphans: List[Tuple[str, int]] = []
        self.evidence: List[Tuple[str, int]] = []
        self.sources: List[Tuple[str, int]] = []
        self.sources_other = 0
        self.ports: List[Tuple[str, str, int]] = []
        self.ports_other = 0


class _Target:
    """One namespace: its handle (reopened after failures) and its state."""

    def __init__(self, label: str, netns: _NetnsSpec) -> None:
        self.label = label
        self.netns = netns
        self.handle: Optional[Conntrack] = None
        self.errors = 0
        self.last: Optional[Dict[Tuple[int, str], int]] = None
        self.totals: Dict[str, int] = {}
        self.breakdown: Optional[_Breakdown] = None
        self.dumps = 0

    def conntrack(self) -> Conntrack:
        if self.handle is None:
            self.handle = Conntrack(self.netns)
        return self.handle

    def reset(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.handle = None
        # Counters restart from the kernel's totals when it is back.
        self.last = None


class ConntrackCollector(Collector):
    """A ``prometheus_client`` collector of the conntrack tables of one or
    more namespaces.

    ``netns``: one namespace (``None``: the caller's, a name, a path or a
    pid), several, or a mapping ``{label: namespace}`` to choose the
    ``netns`` labels (default labels: the name, the path, ``pid N``, or
    ``current``). A namespace that cannot be read gets ``conntrack_up 0`` and
    its ``conntrack_exporter_scrape_errors_total`` goes up; the others are
    still reported. Safe to collect from several threads.
    """

    def __init__(
        self,
        netns: Union[_NetnsSpec, Iterable[_NetnsSpec], Mapping[str, _NetnsSpec]] = None,
        *,
        breakdown: bool = True,
        breakdown_interval: float = 30.0,
        orphans: bool = True,
        top: int = 0,
    ) -> None:
        if isinstance(netns, Mapping):
            pairs = [(str(label), spec) for label, spec in netns.items()]
        elif netns is None or isinstance(netns, (str, int, os.PathLike)):
            pairs = [(_label(netns), netns)]
        else:
            pairs = [(_label(spec), spec) for spec in netns]
        if not pairs:
            raise ValueError("netns: give at least one namespace")
        if top < 0:
            raise ValueError(f"top: {top!r} is not a number of groups (0 or more)")
        self._targets = [_Target(label, spec) for label, spec in pairs]
        self._breakdown = breakdown
        self._interval = breakdown_interval
        self._orphans = orphans
        self._top = top
        self._lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        """Nothing: the families depend on what the kernel reports, so the
        registry collects once to learn the names (as for any unchecked
        collector)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Reads every namespace and yields the metric families."""
        with self._lock:
            yield from self._collect()

    def _collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        up = GaugeMetricFamily("conntrack_up", "1 when the namespace's table could be read at this scrape",
                               labels=["netns"])
        entries = GaugeMetricFamily("conntrack_entries", "Entries in the table (nf_conntrack_count)",
                                    labels=["netns"])
        limit = GaugeMetricFamily("conntrack_entries_limit",
                                  "Entries allowed per namespace (nf_conntrack_max, one value for the host)",
                                  labels=["netns"])
        errors = CounterMetricFamily("conntrack_exporter_scrape_errors",
                                     "Namespaces that could not be read, per scrape", labels=["netns"])
        kernel = {
            name: CounterMetricFamily(f"conntrack_{name}",
                                      f"Kernel conntrack statistic: {_COUNTER_MEANINGS.get(name, name)}",
                                      labels=["netns"])
            for name in KERNEL_COUNTERS
        }
        flows = GaugeMetricFamily("conntrack_flows", "Flows by layer-4 protocol (breakdown)",
                                  labels=["netns", "protocol"])
        tcp = GaugeMetricFamily("conntrack_tcp_flows", "TCP flows by state (breakdown)", labels=["netns", "state"])
        orphans = GaugeMetricFamily("conntrack_orphan_flows",
                                    "Orphaned flows by category (breakdown, default OrphanPolicy)",
                                    labels=["netns", "category"])
        evidence = GaugeMetricFamily("conntrack_orphan_evidence_flows",
                                     "Orphaned flows by socket-table evidence: confirmed (a local end "
                                     "without a socket) or suspected (idle by the estimate only)",
                                     labels=["netns", "evidence"])
        sources = GaugeMetricFamily("conntrack_top_source_flows",
                                    'Flows of the busiest sources, plus address="other" (breakdown)',
                                    labels=["netns", "address"])
        ports = GaugeMetricFamily("conntrack_top_destination_port_flows",
                                  'Flows of the busiest destination ports, plus port="other" (breakdown)',
                                  labels=["netns", "protocol", "port"])
        age = GaugeMetricFamily("conntrack_breakdown_age_seconds",
                                "Age of the cached breakdown (one dump every breakdown_interval)",
                                labels=["netns"])
        cost = GaugeMetricFamily("conntrack_breakdown_duration_seconds", "Time the breakdown's dumps took",
                                 labels=["netns"])
        dumps = CounterMetricFamily("conntrack_breakdown_dumps",
                                    "Breakdowns that dumped the table (an empty table is not dumped)",
                                    labels=["netns"])

        for target in self._targets:
            ns = [target.label]
            try:
                ct = target.conntrack()
                stats = ct.stats()
                self._accumulate(target, stats.per_cpu)
                up.add_metric(ns, 1)
                entries.add_metric(ns, stats.entries)
                if stats.max_entries is not None:
                    limit.add_metric(ns, stats.max_entries)
                if self._breakdown and (target.breakdown is None
                                        or time.monotonic() - target.breakdown.at >= self._interval):
                    if stats.entries:
                        target.breakdown = self._read_breakdown(ct)
                        target.dumps += 1
                    else:
                        target.breakdown = self._empty_breakdown()
            except (OSError, ConntrackError, ValueError):
                target.errors += 1
                target.reset()
                up.add_metric(ns, 0)
            errors.add_metric(ns, target.errors)
            if self._breakdown:
                dumps.add_metric(ns, target.dumps)
            for name, total in target.totals.items():
                kernel[name].add_metric(ns, total)
            breakdown = target.breakdown
            if breakdown is None:
                continue
            for protocol, n in breakdown.flows:
                flows.add_metric([target.label, protocol], n)
            for state, n in breakdown.tcp:
                tcp.add_metric([target.label, state], n)
            for category, n in breakdown.orphans:
                orphans.add_metric([target.label, category], n)
            for kind, n in breakdown.evidence:
                evidence.add_metric([target.label, kind], n)
            if self._top:
                for address, n in breakdown.sources:
                    sources.add_metric([target.label, address], n)
                sources.add_metric([target.label, "other"], breakdown.sources_other)
                for protocol, port, n in breakdown.ports:
                    ports.add_metric([target.label, protocol, port], n)
                ports.add_metric([target.label, "other", "other"], breakdown.ports_other)
            age.add_metric(ns, time.monotonic() - breakdown.at)
            cost.add_metric(ns, breakdown.duration)

        yield up
        yield entries
        yield limit
        yield errors
        yield from kernel.values()
        if self._breakdown:
            yield flows
            yield tcp
            if self._orphans:
                yield orphans
                yield evidence
            if self._top:
                yield sources
                yield ports
            yield age
            yield cost
            yield dumps
        try:
            buckets = Sysctl().read("nf_conntrack_buckets")
        except OSError:
            pass
        else:
            family = GaugeMetricFamily("conntrack_buckets", "Hash table buckets (nf_conntrack_buckets, host-wide)")
            family.add_metric([], buckets)
            yield family
        duration = GaugeMetricFamily("conntrack_exporter_scrape_duration_seconds",
                                     "Time this collection took until its last metric")
        duration.add_metric([], time.monotonic() - started)
        yield duration

    @staticmethod
    def _accumulate(target: _Target, per_cpu: Iterable[CpuStats]) -> None:
        """Adds the wrap-aware per-CPU deltas to the target's totals (the
        kernel's per-CPU counters are 32-bit and wrap)."""
        now: Dict[Tuple[int, str], int] = {}
        for cpu in per_cpu:
            for name in KERNEL_COUNTERS:
                value = getattr(cpu.counters, name)
                if value is not None:
                    now[(cpu.cpu, name)] = value
        if target.last is None:
            totals: Dict[str, int] = {}
            for (_, name), value in now.items():
                totals[name] = totals.get(name, 0) + value
            target.totals = totals
        else:
            for key, value in now.items():
                before = target.last.get(key, value)
                target.totals[key[1]] = target.totals.get(key[1], 0) + (value - before) % (1 << 32)
        target.last = now

    def _empty_breakdown(self) -> _Breakdown:
        """The breakdown of an empty table, made without a dump: all zero."""
        breakdown = _Breakdown()
        if self._orphans:
            breakdown.orphans = [(c, 0) for c in ("idle_established", "long_unreplied", "lingering_half_closed")]
            breakdown.evidence = [("confirmed", 0), ("suspected", 0)]
        breakdown.at = time.monotonic()
        return breakdown

    def _read_breakdown(self, ct: Conntrack) -> _Breakdown:
        started = time.monotonic()
        breakdown = _Breakdown()
        breakdown.flows = [(str(protocol), n) for protocol, n in ct.count_by("proto")]
        breakdown.tcp = [(str(state), n) for state, n in ct.count_by("state", proto="tcp")]
        if self._orphans:
            counts = ct.count_orphans()
            breakdown.orphans = [
                ("idle_established", counts.idle_established),
                ("long_unreplied", counts.long_unreplied),
                ("lingering_half_closed", counts.lingering_half_closed),
            ]
            breakdown.evidence = [("confirmed", counts.confirmed), ("suspected", counts.suspected)]
        if self._top:
            top_sources = ct.count_by("src", top=self._top)
            breakdown.sources = [(str(address), n) for address, n in top_sources]
            breakdown.sources_other = top_sources.other
            top_ports = ct.count_by(["proto", "dst_port"], top=self._top)
            # Ports as the exporter prints them ("-" for protocols without ports).
            breakdown.ports = [(str(key[0]), "-" if key[1] is None else str(key[1]), n) for key, n in top_ports]
            breakdown.ports_other = top_ports.other
        breakdown.at = time.monotonic()
        breakdown.duration = breakdown.at - started
        return breakdown
