# SPDX-License-Identifier: MIT OR Apache-2.0
"""Every accepted form of every criterion: `mypy --strict` must accept this
file (checked by tests/test_typing.py; never run)."""

from __future__ import annotations

import ipaddress
import socket

import conntrack
from conntrack import FilterCriteria, Protocol, Status, TcpState


def use(ct: conntrack.Conntrack) -> int:
    total = ct.count(proto="tcp", state="ESTABLISHED", src="10.0.0.0/8", dst_port=443)
    total += ct.count(proto=[6, Protocol.UDP], dst_port=range(1024, 65536), zone=0, family=socket.AF_INET)
    total += ct.count(src=ipaddress.ip_network("10.0.0.0/8"), dst=[ipaddress.ip_address("10.0.0.1"), "fd00::1"])
    total += ct.count(state=[TcpState.ESTABLISHED, "SYN_SENT"], status=Status.ASSURED, status_unset=["SEEN_REPLY"])
    total += ct.count(mark=(1, 0xFF), labels=[1, 2], family="ipv6", reply_src=None)
    for flow in ct.dump(proto="udp", dst_port=53):
        total += flow.orig.dst_port or 0
    total += ct.count_by("src", top=3, proto="udp").total
    total += ct.delete(dst_port=53, dry_run=True).matched
    criteria: FilterCriteria = {"proto": "tcp", "dst_port": [80, 443]}
    total += ct.count(**criteria)
    total += ct.count(conntrack.Filter(**criteria))
    with ct.events(kinds=["new", "destroy"], timeout=1.5, proto="tcp") as events:
        for item in events:
            if isinstance(item, conntrack.Event):
                total += item.flow.orig.dst_port or 0
    return total + len(ct.orphans(idle=60, proto="tcp"))
