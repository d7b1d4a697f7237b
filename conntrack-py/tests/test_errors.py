# SPDX-License-Identifier: MIT OR Apache-2.0
"""Errors: OSError subclasses with errno, library errors, privileges."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import warnings

import pytest

import conntrack

from conftest import IS_ROOT, SKIP_REASON, Namespace

NOBODY = 65534


def test_missing_namespace_is_file_not_found() -> None:
    with pytest.raises(FileNotFoundError) as raised:
        conntrack.Conntrack("ctpy-no-such-namespace")
    assert raised.value.errno == errno.ENOENT
    assert raised.value.filename == "/run/netns/ctpy-no-such-namespace"
    assert "ip netns list" in str(raised.value)
    with pytest.raises(conntrack.InvalidInputError):
        conntrack.Conntrack("..")
    with pytest.raises(TypeError):
        conntrack.Conntrack(1.5)  # type: ignore[arg-type]


def test_exception_hierarchy() -> None:
    for name in ("DecodeError", "ProtocolError", "DumpInterruptedError", "InvalidInputError", "SysctlValueError"):
        assert issubclass(getattr(conntrack, name), conntrack.ConntrackError)
    assert issubclass(conntrack.InvalidInputError, ValueError)
    assert not issubclass(conntrack.ConntrackError, OSError)


def test_closed_handle(ct: conntrack.Conntrack) -> None:
    assert not ct.closed
    ct.close()
    ct.close()
    assert ct.closed and "closed" in repr(ct)
    with pytest.raises(ValueError, match="closed"):
        ct.count()
    with pytest.raises(ValueError, match="closed"):
        ct.dump()


def test_context_manager_closes(ns: Namespace) -> None:
    with conntrack.Conntrack(ns.name) as handle:
        assert handle.count() == 0 and handle.netns == ns.name
    assert handle.closed


def run_unprivileged(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60,
    )


def test_unprivileged_process_gets_permission_error(ns: Namespace) -> None:
    """A process without CAP_NET_ADMIN: every request raises PermissionError."""
    code = (
        "import conntrack, errno\n"
        "ct = conntrack.Conntrack()  # opening a netlink socket needs no privilege\n"
        "try:\n"
        "    ct.count()\n"
        "except PermissionError as e:\n"
        "    assert e.errno == errno.EPERM, e.errno\n"
        "    assert 'CAP_NET_ADMIN' in str(e), str(e)\n"
        "else:\n"
        "    raise SystemExit('count() succeeded without privileges')\n"
        f"try:\n"
        f"    conntrack.Conntrack({ns.name!r})\n"
        "except PermissionError as e:\n"
        "    assert e.errno == errno.EPERM and 'CAP_SYS_ADMIN' in str(e), str(e)\n"
        "else:\n"
        "    raise SystemExit('entered a namespace without privileges')\n"
        "print('ok')\n"
    )
    done = run_unprivileged(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


def test_handle_used_after_dropping_privileges(ns: Namespace) -> None:
    """A socket opened as root in the namespace, used by a child that dropped
    its privileges: the kernel checks the caller, not the socket."""
    if not IS_ROOT:
        pytest.skip(SKIP_REASON)
    ct = conntrack.Conntrack(ns.name)
    ct.create(conntrack.Tuple("10.0.0.1", "10.0.0.2", "udp", 1, 2), timeout=60)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; the child
        # only uses an already open socket and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        outcome = "no error"
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            ct.count()
        except PermissionError as e:
            outcome = f"PermissionError {e.errno}"
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            outcome = f"{type(e).__name__} {e}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        outcome = reader.read()
    os.waitpid(pid, 0)
    assert outcome == f"PermissionError {errno.EPERM}"
    assert ct.count() == 1, "the parent keeps its privileges"
    ct.close()
