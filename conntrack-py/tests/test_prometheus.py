# SPDX-License-Identifier: MIT OR Apache-2.0
"""conntrack.prometheus: the exporter example's metrics from a Python registry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

import pytest

import conntrack
from conntrack import Tuple

from conftest import Namespace, fill

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from conntrack.prometheus import KERNEL_COUNTERS, ConntrackCollector  # noqa: E402

EXPORTER = Path(__file__).resolve().parents[2] / "examples" / "exporter.rs"


def scrape(collector: ConntrackCollector) -> Dict[str, Dict[tuple, float]]:
    """``{sample name: {sorted label items: value}}`` of one exposition."""
    registry = CollectorRegistry()
    registry.register(collector)
    samples: Dict[str, Dict[tuple, float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


# The exporter's namespace discovery (--all-namespaces) and its breakdown
# budget run on background threads of its own.
EXPORTER_THREADS = {
    "conntrack_exporter_discovery_age_seconds",
    "conntrack_exporter_discovery_duration_seconds",
    "conntrack_exporter_breakdown_seconds",
}


def exporter_names() -> Set[str]:
    """The metric names ``examples/exporter.rs`` exposes for conntrack tables.

    Read from its ``Family::new("name", Kind::...)`` declarations (outside its
    tests): counters are exposed with ``_total``. Left out: the ``process_*``
    metrics (a Python service gets them from prometheus_client's own process
    collector), the exporter binary's ``conntrack_exporter_build_info``, and
    the metrics of its background threads, which a collector that reads at
    collection time does not have (``EXPORTER_THREADS``).
    """
    source = EXPORTER.read_text()
    source = source.split("#[cfg(test)]")[0]
    exposed = set()
    for name, kind in re.findall(r'Family::new\(\s*"([a-z_]+)",\s*Kind::(\w+)', source):
        if name.startswith("process_") or kind == "Info" or name in EXPORTER_THREADS:
            continue
        exposed.add(f"{name}_total" if kind == "Counter" else name)
    exposed |= {f"conntrack_{n}_total" for n in KERNEL_COUNTERS}
    assert "conntrack_entries" in exposed and "conntrack_up" in exposed, exposed
    return exposed


def test_importing_conntrack_does_not_need_prometheus_client() -> None:
    code = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None  # as if not installed\n"
        "import conntrack\n"
        "assert 'conntrack.prometheus' not in sys.modules\n"
        "try:\n"
        "    import conntrack.prometheus\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "conntrack.prometheus needs the prometheus_client package (pip install prometheus-client)" in done.stdout


def test_collector_exposes_the_exporter_metrics(ns: Namespace, ct: conntrack.Conntrack) -> None:
    fill(ct, 25)
    for i in range(6):
        ct.create(Tuple("10.9.0.1", "10.9.0.2", "tcp", 1000 + i, 443), timeout=600,
                  state="ESTABLISHED" if i % 2 else "SYN_SENT")
    collector = ConntrackCollector({"blue": ns.name, "gone": "ctpy-no-such-namespace"}, top=2)
    samples = scrape(collector)
    blue = (("netns", "blue"),)
    gone = (("netns", "gone"),)
    assert samples["conntrack_up"] == {blue: 1.0, gone: 0.0}
    assert samples["conntrack_entries"] == {blue: 31.0}
    assert samples["conntrack_entries_limit"][blue] == ct.limit()
    assert samples["conntrack_exporter_scrape_errors_total"] == {blue: 0.0, gone: 1.0}
    assert samples["conntrack_breakdown_dumps_total"] == {blue: 1.0, gone: 0.0}
    assert samples["conntrack_insert_total"][blue] >= 31
    assert samples["conntrack_flows"] == {
        (("netns", "blue"), ("protocol", "udp")): 25.0,
        (("netns", "blue"), ("protocol", "tcp")): 6.0,
    }
    assert samples["conntrack_tcp_flows"] == {
        (("netns", "blue"), ("state", "ESTABLISHED")): 3.0,
        (("netns", "blue"), ("state", "SYN_SENT")): 3.0,
    }
    assert samples["conntrack_orphan_flows"][(("category", "long_unreplied"), ("netns", "blue"))] == 0.0
    assert samples["conntrack_orphan_evidence_flows"][(("evidence", "confirmed"), ("netns", "blue"))] == 0.0
    top = samples["conntrack_top_source_flows"]
    assert len(top) == 3 and top[(("address", "10.9.0.1"), ("netns", "blue"))] == 6.0
    assert top[(("address", "other"), ("netns", "blue"))] == 31 - 6 - 1
    ports = samples["conntrack_top_destination_port_flows"]
    assert ports[(("netns", "blue"), ("port", "53"), ("protocol", "udp"))] == 25.0
    assert samples["conntrack_buckets"][()] > 0
    assert samples["conntrack_exporter_scrape_duration_seconds"][()] > 0
    # The same names as the Rust exporter (kernel counters this kernel does
    # not report have no sample, as there).
    missing = exporter_names() - set(samples)
    unreported = {f"conntrack_{n}_total" for n in ("searched", "new", "ignore", "delete", "delete_list")}
    assert missing <= unreported, missing
    assert set(samples) <= exporter_names()

    # Counters only go up; the breakdown is cached between collections.
    ct.create(Tuple("10.9.0.3", "10.9.0.2", "udp", 1, 53), timeout=600)
    again = scrape(collector)
    assert again["conntrack_entries"][blue] == 32.0
    assert again["conntrack_insert_total"][blue] >= samples["conntrack_insert_total"][blue] + 1
    assert again["conntrack_flows"][(("netns", "blue"), ("protocol", "udp"))] == 25.0, "cached"
    assert again["conntrack_exporter_scrape_errors_total"][gone] == 2.0


def test_collector_arguments(ns: Namespace) -> None:
    assert set(scrape(ConntrackCollector(ns.name, breakdown=False))) >= {"conntrack_up", "conntrack_entries"}
    assert "conntrack_flows" not in scrape(ConntrackCollector(ns.name, breakdown=False))
    fresh = scrape(ConntrackCollector([ns.name], breakdown_interval=0))
    assert fresh["conntrack_up"] == {(("netns", ns.name),): 1.0}
    # An empty table is not dumped (as in the exporter), its breakdown is zero.
    assert fresh["conntrack_entries"] == {(("netns", ns.name),): 0.0}
    assert fresh["conntrack_breakdown_dumps_total"] == {(("netns", ns.name),): 0.0}
    assert fresh["conntrack_orphan_evidence_flows"][(("evidence", "confirmed"), ("netns", ns.name))] == 0.0
    with pytest.raises(TypeError, match="netns"):
        ConntrackCollector([True])
    with pytest.raises(ValueError, match="top"):
        ConntrackCollector(ns.name, top=-1)
