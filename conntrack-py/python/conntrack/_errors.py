# SPDX-License-Identifier: MIT OR Apache-2.0
"""The exceptions of the library's own failures.

Kernel and operating-system failures are not here: they are raised as
``OSError`` subclasses with ``errno`` set (``PermissionError`` without
``CAP_NET_ADMIN``, ``FileNotFoundError`` for a missing namespace or flow,
``FileExistsError`` when creating a flow that exists, ...), with the library's
advice in the message.
"""

from __future__ import annotations

__all__ = [
    "ConntrackError",
    "DecodeError",
    "DumpInterruptedError",
    "InvalidInputError",
    "ProtocolError",
    "SysctlValueError",
]


class ConntrackError(Exception):
    """Base class of the library's own (non-OS) errors."""


class DecodeError(ConntrackError):
    """Bytes from the kernel did not parse (a malformed message)."""


class ProtocolError(ConntrackError):
    """The netlink conversation went wrong (a reply out of sequence, a
    truncated datagram)."""


class DumpInterruptedError(ConntrackError):
    """The kernel flagged a dump as inconsistent (``NLM_F_DUMP_INTR``): every
    flow was still delivered; retry for a clean view."""


class InvalidInputError(ConntrackError, ValueError):
    """An argument the protocol cannot express (a bad address, an unknown
    state, an empty filter for ``delete``, ...). Also a ``ValueError``."""


class SysctlValueError(ConntrackError):
    """A sysctl file held something other than the number expected."""
