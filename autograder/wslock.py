"""One grader per workspace and assignment (a lock a second run refuses on, naming the holder), writing privately.

``grade`` holds ``<workspace>/.grade-<assignment>.lock`` (``fcntl.flock``, exclusive, non-blocking)
for as long as it runs. The kernel drops a flock when the last descriptor of it closes, so a grader
killed with SIGKILL leaves no stale lock: the next run takes it at once. The file keeps a line about
the holder (pid, host, user, start time, command), which the refused run prints.

Two assignments of one workspace may be graded at once (README: "two assignments graded side by
side"): each has its own lock. Forked children (the worker processes) close their copy of the
descriptor (``os.register_at_fork``), so the lock never outlives the process that took it.

While it holds the lock, ``grade`` runs under umask 077 (``private``): a new workspace's gradebook,
results, autograded notebooks and canary are its owner's alone (``files.atomic_write`` writes 0600
files in 0700 folders whatever the umask, which covers ``collect``'s submissions too).
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import getpass
import json
import os
import pathlib
import socket
import sys
import time

from .errors import GradingStopped

try:
    import fcntl
except ImportError:  # not POSIX: no lock (the sandbox refuses such a machine anyway)
    fcntl = None


class WorkspaceBusy(GradingStopped):
    """Another grader holds this workspace's lock for the assignment. CLI: one line, exit status 1."""

    exit_status = 1


_HELD: dict[int, pathlib.Path] = {}  # fd -> lock file, in this process


def _close_inherited() -> None:
    """In a forked child: close the copies of the parent's lock descriptors (the parent keeps its lock)."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited)


def lock_path(workspace, assignment: str) -> pathlib.Path:
    return pathlib.Path(workspace) / f".grade-{assignment}.lock"


def _holder_line(text: str) -> str:
    try:
        h = json.loads(text)
        return (f"pid {h['pid']} on {h['host']} (user {h['user']}), started {h['started']}: "
                f"{h['command']}")
    except (ValueError, KeyError, TypeError):
        return "a process that has not written its details yet"


class Lock:
    """A held lock; ``release()`` (or the process's exit, however it dies) frees it."""

    def __init__(self, path: pathlib.Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd is not None and _HELD.pop(self.fd, None) is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # closing the last descriptor drops the flock
        self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def acquire(workspace, assignment: str, what: str = "grade") -> Lock | None:
    """Take the workspace's lock for ``assignment`` or raise WorkspaceBusy naming who holds it.

    Returns None (no lock) when the workspace folder does not exist (the caller reports that) or
    the platform has no flock.
    """
    ws = pathlib.Path(workspace)
    if fcntl is None or not ws.is_dir():
        return None
    path = lock_path(ws, assignment)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        for _ in range(20):  # the holder writes its line right after it takes the lock
            holder = path.read_text(errors="replace").strip()
            if holder:
                break
            time.sleep(0.05)
        os.close(fd)
        raise WorkspaceBusy(f"{what}: another grader is already grading {assignment} in {ws}: "
                            f"{_holder_line(holder)}. Wait for it to finish (or stop it); its lock "
                            f"({path}) is released the moment that process ends, however it ends.") from None
    except BaseException:
        os.close(fd)
        raise
    info = {"pid": os.getpid(), "host": socket.gethostname(), "user": _user(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]) or what}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    _HELD[fd] = path
    return Lock(path, fd)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


PRIVATE_UMASK = 0o077


@contextlib.contextmanager
def private():
    """Everything this process creates meanwhile is its owner's alone (umask 077): the gradebook, the
    release, the autograded notebooks, the feedback pages. The sandbox's launcher sets its own umask
    (its kernel, another uid as root, must reach the mount points it makes), and so do the grading
    workers (the kernel reads what a worker puts in its private scratch folder)."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def holding(what: str = "grade"):
    """Decorator for ``f(opts, ...)``: hold the lock of ``opts.workspace`` / ``opts.assignment`` during
    the call, and write privately (``private``)."""
    def wrap(f):
        @functools.wraps(f)
        def locked(opts, *args, **kw):
            lock = acquire(opts.workspace, opts.assignment, what)
            try:
                with private():
                    return f(opts, *args, **kw)
            finally:
                if lock is not None:
                    lock.release()
        return locked
    return wrap
