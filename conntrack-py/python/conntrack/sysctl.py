# SPDX-License-Identifier: MIT OR Apache-2.0
"""Conntrack settings: ``conntrack.sysctl.read("nf_conntrack_max")``.

Module-level shortcuts over :class:`conntrack.Sysctl`. Keys are file names
(``"nf_conntrack_max"``), sysctl names (``"net.netfilter.nf_conntrack_max"``)
or ``"hashsize"`` (the module parameter). Global keys (``nf_conntrack_max``,
``nf_conntrack_buckets``, ``nf_conntrack_expect_max``, ``hashsize``) are
writable only from the initial namespace; every other key is per namespace.
Failures are ``OSError`` subclasses with the kernel's errno.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ._conntrack import Sysctl
from ._types import Capacity, PersistReport

__all__ = [
    "Sysctl",
    "capacity",
    "persist",
    "read",
    "read_optional",
    "settings",
    "timeouts",
    "write",
]


def read(key: str, *, netns: Any = None) -> int:
    """Reads one value in ``netns`` (``None``: the caller's namespace)."""
    return Sysctl(netns).read(key)


def read_optional(key: str, *, netns: Any = None) -> Optional[int]:
    """Reads one value; ``None`` when this kernel has no such key."""
    return Sysctl(netns).read_optional(key)


def write(key: str, value: int, *, netns: Any = None) -> None:
    """Writes one value (by writing the file itself; real errno on failure)."""
    Sysctl(netns).write(key, value)


def settings(*, netns: Any = None) -> Dict[str, Optional[int]]:
    """Every setting of the namespace, ``{name: value}``, in one hop."""
    return Sysctl(netns).settings()


def timeouts(*, netns: Any = None) -> Dict[str, Optional[int]]:
    """Every per-protocol timeout of the namespace, in seconds."""
    return Sysctl(netns).timeouts()


def capacity(*, netns: Any = None) -> Capacity:
    """Entries, limit, buckets and their kernel memory."""
    return Sysctl(netns).capacity()


def persist(values: Mapping[str, int], *, dry_run: bool = False, root: Optional[str] = None) -> PersistReport:
    """Makes ``values`` survive a reboot (``sysctl.d`` drop-in, ``modules-load.d``,
    ``modprobe.d``), atomically and idempotently; ``root`` replaces ``/``."""
    return Sysctl(None, root=root).persist(dict(values), dry_run=dry_run)
