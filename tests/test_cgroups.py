"""Where sandbox cgroups go (autograder/cgroups.py): parsing, detection, v2 delegation and fallback.

These hosts are cgroup v1, so the v2 code is checked on a fake /sys/fs/cgroup tree laid out as the
kernel's documented interface (Documentation/admin-guide/cgroup-v2.rst) has it; the real v1 place
is checked against this machine.
"""
from __future__ import annotations

import os

from autograder import cgroups

V1_TEXT = "12:pids:/user.slice\n4:memory:/user.slice\n1:name=systemd:/user.slice/session-2.scope\n0::/user.slice\n"
V2_TEXT = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n"


def test_own_path_reads_both_layouts():
    """v1 lines name their controllers; the v2 line is 0::/path."""
    assert cgroups.own_path("memory", V1_TEXT) == "/user.slice"
    assert cgroups.own_path("pids", V1_TEXT) == "/user.slice"
    assert cgroups.own_path(None, V2_TEXT).endswith("/run-r1.scope")
    assert cgroups.own_path("memory", V2_TEXT) is None


def test_version_is_detected(tmp_path):
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "v1" / "memory").mkdir(parents=True)
    (tmp_path / "none").mkdir()
    assert [cgroups.version(tmp_path / d) for d in ("v2", "v1", "none")] == [2, 1, None]


def _delegated(root, *, procs, controllers="cpu memory pids", enabled=""):
    """A fake v2 tree whose scope holds ``procs`` (written as by the kernel)."""
    (root / "cgroup.controllers").write_text("cpu io memory pids\n")
    scope = root / "user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope"
    scope.mkdir(parents=True)
    (scope / "cgroup.controllers").write_text(controllers + "\n")
    (scope / "cgroup.subtree_control").write_text(enabled + "\n")
    (scope / "cgroup.procs").write_text("".join(f"{p}\n" for p in procs))
    return scope


def test_v2_alone_in_a_delegated_scope_is_prepared(tmp_path):
    """Alone in a writable scope offering memory+pids: move into a leaf, enable both for the sandboxes."""
    scope = _delegated(tmp_path, procs=[os.getpid()])
    before = cgroups.place(tmp_path, V2_TEXT)
    assert not before.ok and "call prepare_v2()" in before.reason
    after = cgroups.prepare_v2(tmp_path, V2_TEXT)
    leaf = scope / f"{cgroups.LEAF}{os.getpid()}"
    assert (leaf / "cgroup.procs").read_text() == str(os.getpid())
    assert (scope / "cgroup.subtree_control").read_text() == "+memory +pids"
    # what the kernel then shows: the controllers enabled for the scope's children
    (scope / "cgroup.subtree_control").write_text("memory pids\n")
    now = cgroups.place(tmp_path, f"0::/{leaf.relative_to(tmp_path)}\n")
    assert now.ok and now.parents == {"unified": scope} and now.home == leaf, (after, now)
    scratch = tmp_path / "batch" / "ag-1"
    assert cgroups.paths_for(scratch, now) == {"unified": scope / cgroups.name(scratch)}


def test_v2_shared_scope_is_left_alone(tmp_path):
    """Other processes in the scope: nothing is moved or enabled, and the reason says what to do."""
    scope = _delegated(tmp_path, procs=[os.getpid(), 1])
    got = cgroups.prepare_v2(tmp_path, V2_TEXT)
    assert not got.ok and "holds other processes" in got.reason and "systemd-run" in got.reason
    assert (scope / "cgroup.subtree_control").read_text().strip() == ""
    assert not list(scope.glob(cgroups.LEAF + "*"))


def test_v2_without_the_controllers_falls_back(tmp_path):
    """A scope that does not offer memory and pids: no cgroups (the sandbox uses rlimits), and why."""
    _delegated(tmp_path, procs=[os.getpid()], controllers="cpu")
    got = cgroups.prepare_v2(tmp_path, V2_TEXT)
    assert not got.ok and "memory+pids controller" in got.reason and cgroups.paths_for(tmp_path / "x", got) == {}


def test_names_group_a_batch():
    """Two scratch dirs of one folder share the batch prefix; another folder's do not."""
    a, b, c = "/t/batch1/ag-1", "/t/batch1/ag-2", "/t/batch2/ag-1"
    pre = cgroups.batch_prefix("/t/batch1")
    assert cgroups.name(a).startswith(pre) and cgroups.name(b).startswith(pre)
    assert not cgroups.name(c).startswith(pre) and cgroups.name(a) != cgroups.name(b)


def test_this_machine_is_described():
    """The real host: a Place whose reason names the version found (v1 here, as root)."""
    got = cgroups.place()
    assert got.version in (1, 2, None) and got.reason
    if got.version == 1 and os.geteuid() == 0:
        assert got.ok and set(got.parents) == {"memory", "pids"}
