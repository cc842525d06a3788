"""Where the sandbox may put a kernel's cgroup, on cgroup v1 and v2 hosts (trusted side only).

The sandbox bounds a kernel's memory and process count with a cgroup of its own when the host lets
the grader make one, and falls back to rlimits when it does not (``autograder.sandbox`` says which).

- **cgroup v1** (separate hierarchies per controller, ``/sys/fs/cgroup/memory/...``): a child of the
  grader's own memory and pids cgroups, when those are writable (root, usually).
- **cgroup v2** (one unified hierarchy, ``/sys/fs/cgroup/cgroup.controllers`` exists; Debian 11+,
  Ubuntu 21.10+): a child of a cgroup *delegated* to the grader's account, with the ``memory`` and
  ``pids`` controllers enabled for its children. The kernel's "no internal processes" rule forbids
  enabling controllers for the children of a cgroup that holds processes, so ``prepare_v2`` moves
  the grader, when it is alone in its delegated cgroup, into a leaf ``nbsandbox-grader-<pid>``
  beside the sandboxes, and enables the controllers on the parent. On a systemd host a delegated
  cgroup comes from ``systemd-run --user --scope -p Delegate=yes python -m autograder grade ...``
  (autograder/README.md).

Names: ``nbsandbox-<folder>-<scratch>``, hashes of the folder holding a kernel's scratch dir and of
the dir itself, so cleanup finds a sandbox's cgroup again and a batch (its TMPDIR) finds its own.
Documented interface: Documentation/admin-guide/cgroup-v2.rst in the Linux sources (cgroup.procs,
cgroup.controllers, cgroup.subtree_control, memory.max, memory.swap.max, pids.max).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib

ROOT = pathlib.Path("/sys/fs/cgroup")
PREFIX = "nbsandbox"
LEAF = f"{PREFIX}-grader-"  # the grader's own leaf on cgroup v2, beside its sandboxes
NEEDED = ("memory", "pids")


def _hash(path, n: int) -> str:
    return hashlib.sha1(str(pathlib.Path(path).resolve()).encode()).hexdigest()[:n]


def name(scratch: pathlib.Path) -> str:
    """``nbsandbox-<folder>-<scratch>`` for the sandbox whose scratch dir is ``scratch``."""
    scratch = pathlib.Path(scratch).resolve()
    return f"{PREFIX}-{_hash(scratch.parent, 8)}-{_hash(scratch, 16)}"


def batch_prefix(folder: pathlib.Path) -> str:
    """The name prefix shared by the cgroups of every sandbox whose scratch dir is in ``folder``."""
    return f"{PREFIX}-{_hash(folder, 8)}-"


def version(root: pathlib.Path = ROOT) -> int | None:
    """2 on a unified hierarchy, 1 on a v1 host with a memory hierarchy, None without cgroups."""
    if (root / "cgroup.controllers").is_file():
        return 2
    if (root / "memory").is_dir() or (root / "pids").is_dir():
        return 1
    return None


def own_path(controller: str | None, proc_self_cgroup: str | None = None) -> str | None:
    """This process's cgroup path: for a v1 ``controller``, or the v2 one (``controller=None``).

    ``proc_self_cgroup``: the text of /proc/self/cgroup (read when None), lines ``id:controllers:path``;
    the v2 line is ``0::/path``.
    """
    if proc_self_cgroup is None:
        try:
            proc_self_cgroup = pathlib.Path("/proc/self/cgroup").read_text()
        except OSError:
            return None
    for line in proc_self_cgroup.splitlines():
        hid, ctrls, path = line.split(":", 2)
        if controller is None and hid == "0" and ctrls == "":
            return path
        if controller is not None and controller in ctrls.split(","):
            return path
    return None


@dataclasses.dataclass(frozen=True)
class Place:
    """Where sandbox cgroups go: ``parents`` by controller key ("memory", "pids" on v1; "unified" on v2)."""

    version: int | None
    parents: dict[str, pathlib.Path]
    home: pathlib.Path | None  # the grader's own cgroup (v2): where a launcher goes back to
    reason: str  # why there is no place, or what was found

    @property
    def ok(self) -> bool:
        return bool(self.parents)


def _words(path: pathlib.Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


def place(root: pathlib.Path = ROOT, proc_self_cgroup: str | None = None) -> Place:
    """Where this process may create sandbox cgroups now (nothing is changed)."""
    v = version(root)
    if v == 1:
        parents = {}
        for ctrl in NEEDED:
            own = own_path(ctrl, proc_self_cgroup)
            parent = root / ctrl / (own or "/").lstrip("/")
            if own is not None and os.access(parent, os.W_OK) and (parent / "cgroup.procs").exists():
                parents[ctrl] = parent
        why = "cgroup v1 memory+pids" if len(parents) == 2 else \
            f"cgroup v1: the grader's {', '.join(c for c in NEEDED if c not in parents)} cgroup is not writable"
        return Place(1, parents if len(parents) == 2 else {}, None, why)
    if v == 2:
        own = own_path(None, proc_self_cgroup)
        if own is None:
            return Place(2, {}, None, "cgroup v2: this process's cgroup is unknown (/proc/self/cgroup)")
        home = root / own.lstrip("/")
        parent = home.parent if home.name.startswith(LEAF) else home
        enabled = _words(parent / "cgroup.subtree_control")
        if home.name.startswith(LEAF) and set(NEEDED) <= enabled and os.access(parent, os.W_OK):
            return Place(2, {"unified": parent}, home, f"cgroup v2 memory+pids, delegated at {parent}")
        return Place(2, {}, home, f"cgroup v2: {why_not_v2(parent)}")
    return Place(None, {}, None, "no cgroup file system at /sys/fs/cgroup")


def why_not_v2(parent: pathlib.Path) -> str:
    """Why sandboxes cannot have cgroups under ``parent`` yet, with what to do."""
    if not os.access(parent, os.W_OK) or not os.access(parent / "cgroup.procs", os.W_OK):
        return (f"{parent} is not delegated to this account; run the grader in a delegated scope: "
                "systemd-run --user --scope -p Delegate=yes python -m autograder grade ...")
    missing = [c for c in NEEDED if c not in _words(parent / "cgroup.controllers")]
    if missing:
        return f"{parent} does not offer the {'+'.join(missing)} controller(s) (cgroup.controllers)"
    others = [p for p in _words(parent / "cgroup.procs") if p != str(os.getpid())]
    if others:
        return (f"{parent} holds other processes ({len(others)}), so its controllers cannot be enabled "
                "for children; start the grader alone in a delegated scope (systemd-run --user --scope "
                "-p Delegate=yes ...)")
    return f"{parent} is delegated: call prepare_v2() to move the grader into a leaf and enable memory+pids"


def prepare_v2(root: pathlib.Path = ROOT, proc_self_cgroup: str | None = None) -> Place:
    """On cgroup v2, make this process's delegated cgroup ready for sandboxes, if it can be done safely.

    Only when this process is alone in a writable cgroup that offers memory and pids: it moves itself
    into a leaf ``nbsandbox-grader-<pid>`` and enables ``+memory +pids`` in the parent's
    subtree_control. Children forked afterwards (the grading workers) start in the leaf. Otherwise it
    changes nothing and the returned Place says why.
    """
    now = place(root, proc_self_cgroup)
    if now.version != 2 or now.ok or now.home is None:
        return now
    parent = now.home
    if "call prepare_v2()" not in why_not_v2(parent):
        return now
    leaf = parent / f"{LEAF}{os.getpid()}"
    try:
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in NEEDED))
    except OSError as e:
        return Place(2, {}, parent, f"cgroup v2: could not prepare {parent} ({e})")
    moved = None if proc_self_cgroup is None else f"0::/{leaf.relative_to(root)}"
    return place(root, moved)


def paths_for(scratch: pathlib.Path, where: Place | None = None) -> dict[str, pathlib.Path]:
    """The sandbox cgroup dirs of ``scratch``, by controller key (empty without a place)."""
    where = place() if where is None else where
    n = name(scratch)
    return {key: parent / n for key, parent in where.parents.items()}
