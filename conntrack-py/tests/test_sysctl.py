# SPDX-License-Identifier: MIT OR Apache-2.0
"""conntrack.sysctl, Sysctl, persistence (temporary root) and advise.

Writes happen only on per-namespace keys inside throwaway namespaces; the
host's values are only read.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import conntrack
from conntrack import sysctl

from conftest import IS_ROOT, SKIP_REASON, Namespace


def host_value(key: str) -> int:
    with open(f"/proc/sys/net/netfilter/{key}") as f:
        return int(f.read())


def test_read_write_in_a_namespace(ns: Namespace) -> None:
    key = "nf_conntrack_tcp_timeout_established"
    host_before = host_value(key)
    inside = int(ns.exec("cat", ns.sysctl_path(key)))
    assert sysctl.read(key, netns=ns.name) == inside
    assert sysctl.read("net.netfilter." + key, netns=ns.name) == inside
    sysctl.write(key, 7200, netns=ns.name)
    assert int(ns.exec("cat", ns.sysctl_path(key))) == 7200
    assert sysctl.timeouts(netns=ns.name)[key] == 7200
    assert host_value(key) == host_before, "the host's value is untouched"
    settings = sysctl.settings(netns=ns.name)
    assert settings[key] == 7200 and settings["nf_conntrack_max"] == host_value("nf_conntrack_max")
    assert settings["nf_conntrack_count"] == 0
    s = conntrack.Sysctl(ns.name)
    assert s.read_optional("nf_conntrack_acct") == int(ns.exec("cat", ns.sysctl_path("nf_conntrack_acct")))
    assert not s.is_initial_namespace()
    assert conntrack.Sysctl().is_initial_namespace()
    assert "ctpy-" in repr(s)
    with pytest.raises(PermissionError) as raised:
        # A global key from a child namespace; the current value, so that
        # nothing would change even if the kernel accepted it.
        s.write("nf_conntrack_max", host_value("nf_conntrack_max"))
    assert raised.value.errno == errno.EACCES and "global" in str(raised.value)
    with pytest.raises(conntrack.InvalidInputError):
        s.read("nf_conntrack_maximum")
    with pytest.raises(OSError) as invalid:
        s.write("nf_conntrack_acct", 7)
    assert invalid.value.errno == errno.EINVAL


def test_capacity(ns: Namespace) -> None:
    with conntrack.Conntrack(ns.name) as ct:
        ct.create(conntrack.Tuple("10.0.0.1", "10.0.0.2", "udp", 1, 2), timeout=60)
    capacity = sysctl.capacity(netns=ns.name)
    assert capacity.count == 1 and capacity.max == host_value("nf_conntrack_max")
    assert capacity.buckets == host_value("nf_conntrack_buckets")
    assert capacity.entry_bytes >= 64 and capacity.extension_bytes in (0, 128)
    assert capacity.in_use_bytes == capacity.entries_bytes + capacity.hash_table_bytes
    assert capacity.chain_depth == pytest.approx(2 / capacity.buckets)


def test_read_host_values() -> None:
    if not IS_ROOT:
        pytest.skip(SKIP_REASON)
    assert sysctl.read("nf_conntrack_max") == host_value("nf_conntrack_max")


def test_persist_into_a_temporary_root(tmp_path: Path) -> None:
    values = {"nf_conntrack_max": 1048576, "hashsize": 262144, "nf_conntrack_tcp_timeout_established": 86400}
    preview = sysctl.persist(values, dry_run=True, root=str(tmp_path))
    assert preview.dry_run and preview.changed
    assert not (tmp_path / "etc").exists() or not any((tmp_path / "etc").rglob("*.conf"))
    drop_in = next(f for f in preview.files if f["path"].endswith("sysctl.d/90-conntrack-rs.conf"))
    assert "net.netfilter.nf_conntrack_max = 1048576" in drop_in["content"]
    report = sysctl.persist(values, root=str(tmp_path))
    assert report.changed and not report.dry_run
    written = (tmp_path / "etc/sysctl.d/90-conntrack-rs.conf").read_text()
    assert written == drop_in["content"]
    assert "hashsize=262144" in (tmp_path / "etc/modprobe.d/conntrack-rs.conf").read_text()
    assert "nf_conntrack" in (tmp_path / "etc/modules-load.d/conntrack-rs.conf").read_text()
    again = sysctl.persist(values, root=str(tmp_path))
    assert not again.changed and {f["outcome"] for f in again.files} == {"unchanged"}
    (tmp_path / "etc/sysctl.conf").write_text("net.netfilter.nf_conntrack_max = 65536\n")
    overridden = sysctl.persist(values, dry_run=True, root=str(tmp_path))
    assert [o["value"] for o in overridden.overrides] == ["65536"]


def test_advise_for_a_budget() -> None:
    # The worked example of MemoryModel::recommend: 384-byte entries, 64 MiB, depth 4.
    r = conntrack.advise("64MiB", entry_bytes=256, extension_bytes=128)
    assert (r.max, r.buckets, r.per_entry_bytes) == (172960, 86528, 384)
    assert r.pinned_bytes == r.memory_budget == 64 * 2**20
    assert r.hash_table_bytes == 86528 * 8 and r.chain_depth == pytest.approx(2 * 172960 / 86528)
    assert r.sysctls() == {"nf_conntrack_max": 172960, "nf_conntrack_buckets": 86528, "hashsize": 86528}
    assert conntrack.advise(64 * 2**20, entry_bytes=384) == r
    assert conntrack.advise("64M", entry_bytes=384).max == r.max
    assert conntrack.advise("1GB", entry_bytes=384).memory_budget == 10**9
    deeper = conntrack.advise("64M", entry_bytes=384, chain_depth=8)
    assert deeper.max > r.max and deeper.buckets < r.buckets
    for bad in ("lots", "-5M", "12 parsecs"):
        with pytest.raises(conntrack.InvalidInputError):
            conntrack.advise(bad, entry_bytes=384)
    with pytest.raises(conntrack.InvalidInputError):
        conntrack.advise("64M", entry_bytes=384, chain_depth=0)
    with pytest.raises(conntrack.InvalidInputError):
        conntrack.advise(100, entry_bytes=384)


def test_advise_from_this_host() -> None:
    if not IS_ROOT:
        pytest.skip("reading the nf_conntrack slab cache needs root")
    if not os.path.exists("/proc/sys/net/netfilter/nf_conntrack_max"):
        pytest.skip("nf_conntrack is not loaded")
    r = conntrack.advise("256M")
    assert r.per_entry_bytes >= 64 and 0 < r.pinned_bytes <= 256 * 2**20
    assert r.buckets % 512 == 0
