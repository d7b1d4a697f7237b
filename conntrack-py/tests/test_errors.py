# SPDX-License-Identifier: MIT OR Apache-2.0
"""Errors: OSError subclasses with errno, library errors, privileges."""

from __future__ import annotations

import errno
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
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


#: setpriv changes the uid only as root: the tests that run a child as nobody.
needs_root = pytest.mark.skipif(
    not IS_ROOT, reason="runs a child as nobody: setpriv needs root to change uid"
)


def world_traversable_base() -> str:
    """Where the child's copy goes: ``/tmp`` (else ``/run``, ``/dev/shm``),
    the first that every user may traverse; never ``TMPDIR``, which may be
    private (``mktemp -d``, a per-user directory)."""
    for base in ("/tmp", "/run", "/dev/shm"):
        try:
            if os.stat(base).st_mode & 0o001:
                return base
        except OSError:
            continue
    raise AssertionError("no directory every user can traverse among /tmp, /run, /dev/shm")


def as_nobody(code: str) -> subprocess.CompletedProcess:
    """Runs ``code`` with the base interpreter as nobody, from ``/``."""
    interpreter = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", interpreter,
         "-s", "-c", code],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"},
    )


def run_unprivileged(code: str, package: str | None = None) -> subprocess.CompletedProcess:
    """Runs ``code`` as nobody. The virtualenv and the checkout may sit under
    a directory only root can enter (a clone in ``/root`` or ``mktemp -d``),
    so the child runs the base interpreter on a copy of the installed
    package (``package``: that directory, by default the one imported here)
    in a dedicated mode-755 directory under ``/tmp`` (or ``/run``), removed
    afterwards."""
    package = package or os.path.dirname(conntrack.__file__)
    with tempfile.TemporaryDirectory(prefix="ctpy-unprivileged-", dir=world_traversable_base()) as copy:
        os.chmod(copy, 0o755)
        shutil.copytree(package, os.path.join(copy, "conntrack"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        for root, dirs, files in os.walk(copy):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        return as_nobody(f"import sys; sys.path.insert(0, {copy!r})\n" + code)


#: A request of a process without CAP_NET_ADMIN gets a PermissionError
#: saying so (``conntrack`` and ``errno`` imported before).
COUNT_NEEDS_CAP_NET_ADMIN = (
    "ct = conntrack.Conntrack()  # opening a netlink socket needs no privilege\n"
    "try:\n"
    "    ct.count()\n"
    "except PermissionError as e:\n"
    "    assert e.errno == errno.EPERM, e.errno\n"
    "    assert 'CAP_NET_ADMIN' in str(e), str(e)\n"
    "else:\n"
    "    raise SystemExit('count() succeeded without privileges')\n"
)
#: The child's check: imports conntrack, says from where, and gets that
#: PermissionError.
UNPRIVILEGED_COUNT = (
    "import conntrack, errno\n"
    "print(conntrack.__file__)\n"
    + COUNT_NEEDS_CAP_NET_ADMIN
    + "print('ok')\n"
)


@needs_root
def test_unprivileged_process_gets_permission_error(ns: Namespace) -> None:
    """A process without CAP_NET_ADMIN: every request raises PermissionError."""
    code = (
        "import conntrack, errno\n"
        + COUNT_NEEDS_CAP_NET_ADMIN
        + "try:\n"
        f"    conntrack.Conntrack({ns.name!r})\n"
        "except PermissionError as e:\n"
        "    assert e.errno == errno.EPERM and 'CAP_SYS_ADMIN' in str(e), str(e)\n"
        "else:\n"
        "    raise SystemExit('entered a namespace without privileges')\n"
        "print('ok')\n"
    )
    done = run_unprivileged(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr


@needs_root
def test_unprivileged_child_uses_a_readable_copy_of_the_package() -> None:
    """The child does not import the package from the virtualenv (which may
    be unreadable to it) but from a copy every user can read."""
    done = run_unprivileged("import conntrack; print(conntrack.__file__)")
    assert done.returncode == 0, done.stderr
    path = done.stdout.strip()
    assert path.startswith(world_traversable_base() + "/ctpy-unprivileged-"), path
    assert os.path.dirname(conntrack.__file__) not in path


@needs_root
def test_unprivileged_tests_pass_from_a_private_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clone, and with it the virtualenv holding the installed package,
    lives under a directory only root can enter (``/root``, ``mktemp -d``),
    and ``TMPDIR`` is private too: the unprivileged child still imports
    conntrack and gets the PermissionError the tests expect."""
    with tempfile.TemporaryDirectory(prefix="ctpy-private-", dir=world_traversable_base()) as private:
        os.chmod(private, 0o700)
        site = os.path.join(private, "checkout", "target", "pyvenv", "lib", "site-packages")
        installed = os.path.join(site, "conntrack")
        shutil.copytree(os.path.dirname(conntrack.__file__), installed,
                        ignore=shutil.ignore_patterns("__pycache__"))
        private_tmp = os.path.join(private, "tmp")
        os.mkdir(private_tmp, 0o700)
        # The premise: nobody cannot import the package where it is installed.
        blocked = as_nobody(f"import sys; sys.path.insert(0, {site!r})\nimport conntrack\n")
        assert blocked.returncode != 0, blocked.stdout
        assert "ModuleNotFoundError" in blocked.stderr or "PermissionError" in blocked.stderr, blocked.stderr
        monkeypatch.setenv("TMPDIR", private_tmp)
        monkeypatch.setattr(tempfile, "tempdir", None)
        assert tempfile.gettempdir() == private_tmp
        done = run_unprivileged(UNPRIVILEGED_COUNT, package=installed)
        assert os.listdir(private_tmp) == [], "the copy went to the private TMPDIR"
    assert done.returncode == 0, done.stdout + done.stderr
    imported, verdict = done.stdout.split()
    assert imported.startswith(world_traversable_base() + "/ctpy-unprivileged-"), imported
    assert not imported.startswith(private), imported
    assert verdict == "ok", done.stdout
    copy = imported.split("/conntrack/")[0]
    assert not os.path.exists(copy), f"{copy} left behind"


def test_netns_arguments_are_checked() -> None:
    # bool is an int to Python, but never a pid (True would be pid 1, the host).
    for value in (True, False):
        with pytest.raises(TypeError, match="netns: True|netns: False"):
            conntrack.Conntrack(value)
    with pytest.raises(ValueError, match="netns: 'a\\\\x00b' contains a NUL"):
        conntrack.Conntrack("a\x00b")
    with pytest.raises(ValueError, match="netns: .* contains a NUL"):
        conntrack.Conntrack(pathlib.Path("/run/netns/a\x00b"))
    with pytest.raises(TypeError, match="netns: expected None, a namespace name, a path or a pid, not 1.5"):
        conntrack.Conntrack(1.5)  # type: ignore[arg-type]


def test_kernel_errors_say_it_once(ct: conntrack.Conntrack) -> None:
    t = conntrack.Tuple("10.0.0.1", "10.0.0.2", "udp", 1, 2)
    ct.create(t, timeout=60)
    with pytest.raises(FileExistsError) as raised:
        ct.create(t, timeout=60)
    assert raised.value.errno == errno.EEXIST
    assert str(raised.value) == (
        "[Errno 17] create flow: File exists — the flow already exists (use update or create_or_update)"
    )
    with pytest.raises(FileNotFoundError) as missing:
        ct.update(conntrack.Tuple("10.0.0.9", "10.0.0.2", "udp", 1, 2), mark=1)
    assert str(missing.value).startswith("[Errno 2] "), str(missing.value)
    assert "os error" not in str(missing.value) and "kernel error" not in str(missing.value)
    assert "no such flow" in str(missing.value)
    with pytest.raises(conntrack.InvalidInputError) as invalid:
        ct.count(src="10.0.0.0/33")
    assert not str(invalid.value).startswith("invalid request"), str(invalid.value)


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
