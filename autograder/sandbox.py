"""Run one submission's kernel confined: its own uid, its own namespaces, bounded resources.

Mechanism ("uid+namespaces", Linux, needs root): ``wrap(argv, ...)`` returns an argv that starts
this file as a small root launcher. The launcher
  1. puts itself in a fresh cgroup (memory and process count bounded, when the host lets us),
  2. unshares mount, network, PID, IPC and UTS namespaces (no network: only a down loopback),
  3. builds a new root from an allowlist (system dirs, the Python install, the venv, mnlib, the
     ``readable`` paths, all read-only; the scratch dir read-write; fresh size-bounded tmpfs for
     /tmp, /var/tmp, /dev/shm), so solutions/, the gradebook and other students' work do not exist,
  4. drops to an unprivileged uid used by nobody else (``UID_BASE`` + the launcher's pid, so two
     sandboxes running at once never share a uid or an RLIMIT_NPROC budget), with setrlimit bounds
     and no_new_privs, and execs the kernel as PID 1 of its namespace.
When that PID 1 exits or is killed, the kernel kills every other process in the namespace: no
process a notebook starts survives it. If the launcher is killed, PR_SET_PDEATHSIG kills PID 1;
if the grader that started the launcher dies, the launcher notices (it is re-parented) and kills
PID 1. ``cleanup(scratch)`` kills what is left in the cgroup and removes the scratch dir.

Output size is bounded in the trusted process (``BoundedOutputs``, for the executor) because
outputs travel over ZMQ to it; the kernel's own stdout/stderr fds are bounded by the launcher.

Known limits: the scratch dir is on the host's disk, so its total size is bounded only per file
(RLIMIT_FSIZE) and by the wall time, not in sum; /tmp, /var/tmp and /dev/shm are tmpfs of
``disk_bytes`` each, charged to the memory cgroup. The sandbox confines the kernel; it cannot
stop code inside the kernel from lying about what ran there. That is why the hidden tests run in
the grader's process (autograder/remote.py), not in the kernel.
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# Above every range Debian allocates to people or packages (<= 65535), so no account shares it.
UID_BASE = 1_000_000
MECHANISM = "uid+namespaces"  # as root: each kernel gets an unprivileged uid of its own
ROOTLESS = "user namespace"  # as a normal account: an unprivileged user namespace, no root anywhere


def mechanism() -> str:
    """The mechanism this process would use: root's, or the rootless one."""
    return MECHANISM if os.geteuid() == 0 else ROOTLESS


class SandboxUnavailable(RuntimeError):
    """Confinement cannot be set up on this machine; grading refuses unless --unsafe."""


class OutputTooLarge(RuntimeError):
    """A notebook's outputs passed ``Limits.output_bytes``; its kernel was killed (BoundedOutputs)."""


@dataclasses.dataclass(frozen=True)
class Probe:
    ok: bool
    mechanism: str
    reason: str
    memory_cgroup: bool = False  # memory and processes bounded by a cgroup (else by rlimits)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-notebook bounds; None means unbounded."""

    wall_s: float | None = 600.0  # backstop: the executor's notebook timeout is normally shorter
    cpu_s: float | None = 600.0  # RLIMIT_CPU, per process
    memory_bytes: int | None = 2 * 1024**3  # cgroup memory limit; RLIMIT_DATA when no cgroup
    output_bytes: int | None = 16 * 1024**2  # all outputs of one notebook (BoundedOutputs)
    disk_bytes: int | None = 256 * 1024**2  # RLIMIT_FSIZE and the size of each private tmpfs
    nproc: int | None = 256  # threads count: torch starts one per core and a few more
    nofile: int = 1024


# --------------------------------------------------------------------------- trusted side


def _mnlib_dir() -> pathlib.Path | None:
    """Where mnlib lives (an editable install points into the repository)."""
    import importlib.util

    spec = importlib.util.find_spec("mnlib")
    if spec is None or not spec.origin:
        return None
    return pathlib.Path(spec.origin).resolve().parent


def _python_dirs() -> list[pathlib.Path]:
    """The interpreter's install and the venv, which the kernel needs to start."""
    dirs = {pathlib.Path(sys.prefix), pathlib.Path(sys.base_prefix), pathlib.Path(sys.exec_prefix),
            pathlib.Path(sys.base_exec_prefix), pathlib.Path(os.path.realpath(sys.executable)).parent.parent}
    return sorted(d for d in dirs if d.exists())


SYSTEM_DIRS = ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/sbin", "/etc", "/sys"]


def probe() -> Probe:
    """Say whether the mechanism works here, by running ``id -u`` through it, and what bounds it can set.

    Rootless on cgroup v2, this is where the grader moves into its leaf cgroup (cgroups.prepare_v2),
    before it forks workers.
    """
    mech = mechanism()
    if sys.platform != "linux":
        return Probe(False, mech, "needs Linux namespaces")
    if mech == ROOTLESS:
        problem = userns_problem()
        if problem:
            return Probe(False, mech, problem)
    where = _cgroups().prepare_v2()
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="nbsandbox-probe-"))
    try:
        argv = wrap(["/bin/sh", "-c", "id -u; cat /proc/net/dev | wc -l; mount | wc -l"], scratch=scratch,
                    readable=[], limits=Limits(wall_s=30))
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        out = r.stdout.split()
        want_uid = (lambda u: u != "0") if mech == MECHANISM else (lambda u: u == str(os.getuid()))
        if r.returncode != 0 or len(out) < 2 or not want_uid(out[0]):
            return Probe(False, mech, f"test run failed (rc {r.returncode}): {r.stderr.strip()[-300:]}"
                         + _container_advice())
        if where.ok:
            cg = where.reason
        else:
            cg = f"no cgroup for the kernels ({where.reason}): RLIMIT_DATA bounds memory, RLIMIT_NPROC processes"
        ns = "user/mount/net/pid/ipc/uts" if mech == ROOTLESS else "mount/net/pid/ipc/uts"
        return Probe(True, mech, f"uid {out[0]}, private {ns} namespaces, {cg}", memory_cgroup=where.ok)
    except (OSError, subprocess.SubprocessError) as e:
        return Probe(False, mech, f"test run failed: {e}")
    finally:
        cleanup(scratch)


def describe(limits: Limits, found: Probe) -> str:
    """One line per bound in force for each kernel, as ``grade`` prints it at the start of a batch."""
    def size(b):
        return "none" if b is None else f"{b / 2**20:.0f} MiB"

    by = "cgroup" if found.memory_cgroup else "rlimit"
    rows = [f"mechanism: {found.mechanism} ({found.reason})",
            f"memory: {size(limits.memory_bytes)} ({'cgroup' if found.memory_cgroup else 'RLIMIT_DATA'})",
            f"processes and threads: {limits.nproc} ({'cgroup pids.max and RLIMIT_NPROC' if by == 'cgroup' else 'RLIMIT_NPROC'})",
            f"CPU time: {limits.cpu_s} s per process (RLIMIT_CPU)", f"wall time: {limits.wall_s} s per notebook",
            f"outputs: {size(limits.output_bytes)} per notebook", f"file size and each tmpfs: {size(limits.disk_bytes)}",
            f"open files: {limits.nofile}", "network: none (a private network namespace, loopback down)"]
    return "\n".join(rows)


def userns_problem() -> str:
    """'' when this account can create a user namespace (with mount and PID namespaces in it), else why not."""
    pid = os.fork()
    if pid == 0:  # try in a throw-away child: unshare changes the caller
        code = 0
        try:
            libc = _libc()
            code = 1
            _check(libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
            code = 2
            _check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET), "unshare(mount, pid, net)")
            code = 0
        except OSError:
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return ""
    facts = []
    for path, bad, what in (("/proc/sys/user/max_user_namespaces", "0", "user namespaces are switched off"),
                            ("/proc/sys/kernel/unprivileged_userns_clone", "0",
                             "Debian's kernel.unprivileged_userns_clone is 0 (sysctl -w kernel.unprivileged_userns_clone=1)"),
                            ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1",
                             "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+: "
                             "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile "
                             "allowing userns for the venv's python)")):
        try:
            if pathlib.Path(path).read_text().strip() == bad:
                facts.append(what)
        except OSError:
            pass
    step = "a user namespace" if code == 1 else "mount, PID and network namespaces inside a user namespace"
    return (f"this account cannot create {step}" + (": " + "; ".join(facts) if facts else "")
            + _container_advice())


def in_container() -> str:
    """The container runtime this process seems to run in ('' if none is seen)."""
    if os.path.exists("/.dockerenv"):
        return "Docker"
    if os.path.exists("/run/.containerenv"):
        return "Podman"
    try:
        text = pathlib.Path("/proc/1/cgroup").read_text()
    except OSError:
        return ""
    for word, runtime in (("kubepods", "Kubernetes"), ("docker", "Docker"), ("libpod", "Podman"),
                          ("containerd", "containerd"), ("lxc", "LXC")):
        if word in text:
            return runtime
    return ""


def _container_advice() -> str:
    runtime = in_container()
    if not runtime:
        return ""
    return (f". This looks like a {runtime} container: its default seccomp profile refuses new user "
            "namespaces and its masked /proc refuses a fresh proc mount. Run the grading container with "
            "--security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt "
            "systempaths=unconfined (Docker and Podman), or build the grading image autograder/Dockerfile "
            "(autograder/README.md); never --privileged")


def wrap(argv: list[str], *, scratch: pathlib.Path, readable: list[pathlib.Path],
         limits: Limits, unsafe: bool = False) -> list[str]:
    """Return the argv that runs ``argv`` confined (cwd stays the caller's, if inside scratch)."""
    if unsafe:
        return list(argv)
    if sys.platform != "linux":
        raise SandboxUnavailable("the sandbox needs Linux namespaces")
    scratch = pathlib.Path(scratch).resolve()
    if not scratch.is_dir():
        raise ValueError(f"scratch: {scratch} is not a directory")
    ro = [pathlib.Path(p).resolve() for p in readable]
    mn = _mnlib_dir()
    ro += _python_dirs() + ([mn] if mn else [])
    where = _cgroups().place()
    spec = {
        "scratch": str(scratch),
        "ro": sorted({str(p) for p in ro if p.exists()}),
        "system": [d for d in SYSTEM_DIRS if os.path.lexists(d)],
        "limits": dataclasses.asdict(limits),
        "cgroups": {k: str(v) for k, v in _cgroups().paths_for(scratch, where).items()},
        "cgroup_home": str(where.home) if where.home else None,  # v2: where the launcher goes back to
        "rootless": os.geteuid() != 0,
        "venv_bin": str(pathlib.Path(sys.prefix) / "bin"),
    }
    # -I -S: the launcher runs as root and must not import anything from the working directory.
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), "launch", json.dumps(spec), "--", *argv]


def cgroup_name(scratch: pathlib.Path) -> str:
    """The name of the cgroups of the sandbox whose scratch dir is ``scratch`` (see autograder/cgroups.py)."""
    return _cgroups().name(scratch)


def _cgroups():
    # the launcher runs this file alone (python -I -S): only the trusted side imports the package module
    from autograder import cgroups

    return cgroups


def _cgroup_paths(scratch: pathlib.Path) -> dict[str, pathlib.Path]:
    """Per-scratch cgroup dirs by controller key (named by ``cgroup_name``, so cleanup finds them)."""
    return _cgroups().paths_for(scratch)


def left_behind(folder: pathlib.Path) -> tuple[list[str], list[pathlib.Path]]:
    """What the sandboxes whose scratch dirs were made in ``folder`` (a batch's TMPDIR) left alive.

    Returns (processes, cgroups): "pid: command line" of every live process whose cgroup or working
    folder belongs to ``folder`` (whatever its uid: rootless kernels run as the grading account), and
    every sandbox cgroup of ``folder`` still there. Sandboxes of other batches, with
    their scratch elsewhere, are not looked at.
    """
    folder = pathlib.Path(folder).resolve()
    cg = _cgroups()
    group = cg.batch_prefix(folder)
    me = os.getpid()
    procs = []
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            ours = group in (d / "cgroup").read_text()
            try:
                ours = ours or pathlib.Path(os.readlink(d / "cwd")).is_relative_to(folder)
            except OSError:
                pass
            if ours:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                procs.append(f"{d.name}: {cmd}")
        except OSError:
            continue  # gone meanwhile, or not ours to read
    cgroups = []
    for parent in cg.place().parents.values():
        cgroups += sorted(parent.glob(group + "*"))
    return procs, cgroups


def _kill_cgroup(path: pathlib.Path) -> None:
    """SIGKILL every process in a cgroup until it is empty, then remove it."""
    if not path.is_dir():
        return
    for _ in range(100):
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except OSError:
            break
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def cleanup(scratch: pathlib.Path) -> None:
    """Kill whatever the sandbox for ``scratch`` left running, then remove the scratch dir."""
    scratch = pathlib.Path(scratch)
    for path in _cgroup_paths(scratch).values():
        _kill_cgroup(path)
    shutil.rmtree(scratch, ignore_errors=True)


def kill_tree(pid: int) -> None:
    """SIGKILL a launcher's process group; its PID-1 child dies with it (PR_SET_PDEATHSIG)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class BoundedOutputs:
    """Mixin for an nbclient.NotebookClient subclass (nbgrader's Execute): cap a notebook's outputs.

    Outputs reach the trusted process over ZMQ, so this is where a notebook that prints gigabytes
    is held: ``class Exec(sandbox.BoundedOutputs, Execute): output_limit = limits.output_bytes``.
    Past the limit the kernel is killed at once and OutputTooLarge raised: a kernel printing in a
    tight loop outruns any consumer by gigabytes a second, so interrupting it is too late (its own
    send buffers fill its memory) and dropping outputs still costs us the decoding. Cells not run
    score 0; the reason is recorded.
    """

    output_limit: int | None = None

    @property
    def output_overflow(self) -> bool:
        """Was the run stopped for its outputs? (nbclient then reports only a dead kernel.)"""
        return self.output_limit is not None and self.__dict__.get("_outputs_used", 0) > self.output_limit

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(content["text"]) if isinstance(content.get("text"), str) else len(json.dumps(content, default=str))
        used = self.__dict__["_outputs_used"] = self.__dict__.get("_outputs_used", 0) + size
        if self.output_limit is not None and used > self.output_limit:
            self._kill_kernel()
            raise OutputTooLarge(f"the notebook's outputs passed {self.output_limit} bytes; it was stopped there")
        return super().output(outs, msg, display_id, cell_index)

    def preprocess_cell(self, cell, resources, index):
        # The kill is usually noticed first as a dead kernel: say why it died.
        try:
            return super().preprocess_cell(cell, resources, index)
        except OutputTooLarge:
            raise
        except Exception as e:
            if self.output_overflow:
                raise OutputTooLarge(f"the notebook's outputs passed {self.output_limit} bytes; "
                                     "it was stopped there") from e
            raise

    def _kill_kernel(self) -> None:
        km = getattr(self, "km", None)
        pid = getattr(getattr(km, "provisioner", None), "pid", None) or \
            getattr(getattr(getattr(km, "provisioner", None), "process", None), "pid", None)
        if pid:
            kill_tree(pid)


# --------------------------------------------------------------------------- launcher (root)

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x04000000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, src, tgt, fstype, flags, data=None):
    _check(libc.mount(src and src.encode(), str(tgt).encode(), fstype and fstype.encode(), flags,
                      data and data.encode()), f"mount {src} on {tgt}")


def _bind(libc, src: str, tgt: pathlib.Path, *, rw: bool, device: bool = False) -> None:
    """Bind ``src`` at ``tgt`` (same type of node), then make it read-only unless ``rw``."""
    if os.path.isdir(src):
        tgt.mkdir(parents=True, exist_ok=True)
    else:
        tgt.parent.mkdir(parents=True, exist_ok=True)
        tgt.touch()
    _mount(libc, src, tgt, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (0 if device else MS_NODEV) | (0 if rw else MS_RDONLY)
    _mount(libc, None, tgt, None, flags | _locked_flags(src))


# statvfs f_flag bit -> mount flag. In a user namespace the flags a mount already has are locked:
# a remount must repeat them (else EPERM), so every bind keeps its source's restrictions.
_ST_TO_MS = {os.ST_RDONLY: MS_RDONLY, os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
             os.ST_NOATIME: 1024, os.ST_NODIRATIME: 2048, os.ST_RELATIME: 1 << 21}


def _locked_flags(src: str) -> int:
    f = os.statvfs(src).f_flag
    return sum(ms for st, ms in _ST_TO_MS.items() if f & st)


def _build_root(libc, spec: dict, newroot: pathlib.Path) -> None:
    """Mount the allowlisted tree at ``newroot`` and pivot into it."""
    lim = spec["limits"]
    disk = lim["disk_bytes"] or 256 * 1024**2
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks to the host
    _mount(libc, "tmpfs", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    for d in spec["system"]:
        if os.path.islink(d):  # merged /usr: /bin -> usr/bin
            os.symlink(os.readlink(d), newroot / d.lstrip("/"))
        else:
            _bind(libc, d, newroot / d.lstrip("/"), rw=False)
    for d in ("tmp", "var/tmp", "dev/shm"):
        (newroot / d).mkdir(parents=True, exist_ok=True)
        _mount(libc, "tmpfs", newroot / d, "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk},mode=1777")
    # after the tmpfs dirs, so that paths under /tmp stay visible; scratch last, so it stays writable
    for d in spec["ro"]:
        if not any(d == s or d.startswith(s + "/") for s in spec["system"]):
            _bind(libc, d, newroot / d.lstrip("/"), rw=False)
    _bind(libc, spec["scratch"], newroot / spec["scratch"].lstrip("/"), rw=True)
    dev = newroot / "dev"
    for node in ("null", "zero", "full", "random", "urandom"):
        _bind(libc, f"/dev/{node}", dev / node, rw=True, device=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, dev / name)
    (newroot / "proc").mkdir(exist_ok=True)
    _mount(libc, "proc", newroot / "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    old = newroot / ".oldroot"
    old.mkdir()
    nr = SYS_PIVOT_ROOT[os.uname().machine]
    _check(libc.syscall(nr, str(newroot).encode(), str(old).encode()), "pivot_root")
    os.chdir("/")
    _check(libc.umount2(b"/.oldroot", MNT_DETACH), "umount old root")
    os.rmdir("/.oldroot")
    # the root tmpfs itself becomes read-only: the kernel writes only to scratch and the tmpfs dirs
    _mount(libc, None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _set_limits(lim: dict, have_memory_cgroup: bool) -> None:
    import resource

    def cap(which, value):
        if value is not None:
            resource.setrlimit(which, (int(value), int(value)))

    # the kernel is PID 1 of its namespace, which ignores SIGXCPU: only the hard limit (SIGKILL) acts
    cap(resource.RLIMIT_CPU, None if lim["cpu_s"] is None else max(1, math.ceil(lim["cpu_s"])))
    cap(resource.RLIMIT_NPROC, lim["nproc"])
    cap(resource.RLIMIT_FSIZE, lim["disk_bytes"])
    cap(resource.RLIMIT_NOFILE, lim["nofile"])
    cap(resource.RLIMIT_CORE, 0)
    if not have_memory_cgroup:
        cap(resource.RLIMIT_DATA, lim["memory_bytes"])


def _setup_cgroups(spec: dict) -> bool:
    """Create this sandbox's cgroups, set their limits and join them; say if memory is bounded.

    Keys: "memory" and "pids" (cgroup v1, one hierarchy each) or "unified" (cgroup v2).
    """
    lim, mem = spec["limits"], False
    for key, path in spec["cgroups"].items():
        p = pathlib.Path(path)
        try:
            p.mkdir(exist_ok=True)
            if key in ("memory", "unified") and lim["memory_bytes"]:
                limit_file = "memory.max" if key == "unified" else "memory.limit_in_bytes"
                (p / limit_file).write_text(str(lim["memory_bytes"]))
                if key == "unified" and (p / "memory.swap.max").exists():
                    (p / "memory.swap.max").write_text("0")  # the bound is on memory, not memory + swap
                mem = True
            if key in ("pids", "unified") and lim["nproc"]:
                (p / "pids.max").write_text(str(lim["nproc"]))
            (p / "cgroup.procs").write_text(str(os.getpid()))
        except OSError as e:
            print(f"sandbox: cgroup {key} unavailable ({e})", file=sys.stderr)
            mem = mem and key not in ("memory", "unified")
    return mem


def _leave_cgroups(spec: dict) -> None:
    """Move the launcher back to where it came from; its forked child stays confined.

    v1: the sandbox cgroup's parent. v2: the grader's own leaf (the parent has controllers enabled for
    its children, so by the "no internal processes" rule it may hold no process).
    """
    for key, path in spec["cgroups"].items():
        back = spec.get("cgroup_home") if key == "unified" else str(pathlib.Path(path).parent)
        try:
            (pathlib.Path(back) / "cgroup.procs").write_text(str(os.getpid()))
        except (OSError, TypeError):
            pass


SAFE_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION", "PYTHONHASHSEED")


def _child_env(spec: dict, uid: int) -> dict:
    """A clean environment: nothing of the grader's (tokens, paths) leaks into the kernel."""
    s = spec["scratch"]
    env = {k: v for k, v in os.environ.items() if k in SAFE_ENV or k.startswith("JPY_")}
    env.update(PATH=f"{spec['venv_bin']}:/usr/local/bin:/usr/bin:/bin", HOME=s, TMPDIR="/tmp",
               USER="nbsandbox", LOGNAME="nbsandbox", IPYTHONDIR=f"{s}/.ipython",
               MPLCONFIGDIR=f"{s}/.matplotlib", JUPYTER_RUNTIME_DIR=f"{s}/.jupyter",
               JUPYTER_DATA_DIR=f"{s}/.jupyter", XDG_CACHE_HOME=f"{s}/.cache")
    env.setdefault("LANG", "C.UTF-8")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _relay(pipes: dict[int, int], pid: int, budget: int, parent: int) -> int:
    """Copy the kernel's raw stdout/stderr to ours (at most ``budget`` bytes) until it exits.

    If our parent (the grader) dies, we are re-parented: kill the kernel then, so a grader killed
    with SIGKILL leaves no kernel running.
    """
    import select

    status = None
    while pipes or status is None:
        if status is None and os.getppid() != parent:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
        if not pipes:
            time.sleep(0.05)
            continue
        try:
            ready, _, _ = select.select(list(pipes), [], [], 0.1)
        except InterruptedError:
            continue
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                os.close(fd)
                del pipes[fd]
            elif budget > 0:
                os.write(pipes[fd], chunk[:budget])
                budget -= len(chunk)
                if budget <= 0:
                    os.write(pipes[fd], b"\n[sandbox: further kernel output discarded]\n")
    return status


def _enter_user_namespace(libc) -> None:
    """Rootless: a new user namespace in which this account's uid and gid map to themselves.

    The launcher and its child get every capability *inside* it, enough to build the new root; the
    kernel keeps none of them (its uid is not 0 there, it runs with no_new_privs and an empty
    bounding set), and outside it is this account, nothing more.
    """
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER), "unshare user namespace")
    pathlib.Path("/proc/self/setgroups").write_text("deny")  # required before an unprivileged gid_map
    pathlib.Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    pathlib.Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def _drop_capabilities(libc) -> None:
    """Empty the capability bounding set: nothing the kernel execs can gain a capability back."""
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: no such cap
            break


def _launch(spec: dict, argv: list[str]) -> int:
    """Launcher: cgroups, namespaces, new root, drop privileges, exec; return exit status.

    As root, the kernel gets an unprivileged uid of its own (UID_BASE + the launcher's pid). Rootless,
    everything happens inside a user namespace and the kernel keeps this account's uid, confined by
    the same mount, PID, network, IPC and UTS namespaces.
    """
    libc = _libc()
    rootless = spec.get("rootless", False)
    uid = os.getuid() if rootless else UID_BASE + os.getpid()
    parent = os.getppid()
    scratch = spec["scratch"]
    have_mem = _setup_cgroups(spec)
    if not rootless:
        for dirpath, dirnames, filenames in os.walk(scratch):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, uid, uid)
    os.chmod(scratch, 0o700)
    cwd = os.getcwd()
    newroot = pathlib.Path(tempfile.mkdtemp(prefix="nbsandbox-root-"))
    if rootless:
        _enter_user_namespace(libc)
    _check(libc.unshare(CLONE_NEWPID), "unshare pid")  # applies to the child forked below
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # PID 1 of the new namespace
        try:
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            # own process group: jupyter_client signals the launcher's group, and the launcher
            # forwards; in one group the kernel would get each SIGINT twice and lose its reply
            os.setpgid(0, 0)
            # the launcher stays in the host mount namespace so it can remove newroot afterwards
            _check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
            _build_root(libc, spec, newroot)
            inside = cwd == scratch or cwd.startswith(scratch + "/")
            os.chdir(cwd if inside else scratch)
            _set_limits(spec["limits"], have_mem)
            _drop_capabilities(libc)
            if not rootless:  # rootless, the uid is already this account's, and setgroups is denied
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # a uid change clears it
            os.execvpe(argv[0], argv, _child_env(spec, uid))
        except BaseException as e:  # noqa: BLE001 - report and never return into the launcher
            os.write(2, f"sandbox: cannot start {argv[0]}: {e}\n".encode())
        os._exit(127)
    for fd in (out_w, err_w):
        os.close(fd)
    _leave_cgroups(spec)  # the final kill sweep must not hit the launcher itself
    def forward(signum, _frame):
        try:
            os.kill(pid, signum if signum == signal.SIGINT else signal.SIGKILL)
        except ProcessLookupError:
            pass

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(s, forward)
    if spec["limits"]["wall_s"]:
        signal.signal(signal.SIGALRM, lambda *_: forward(signal.SIGKILL, None))
        signal.setitimer(signal.ITIMER_REAL, float(spec["limits"]["wall_s"]))
    # no threads after unshare(CLONE_NEWPID) (clone fails), so relay output in this loop
    status = _relay({out_r: 1, err_r: 2}, pid, spec["limits"]["output_bytes"] or 1 << 62, parent)
    signal.setitimer(signal.ITIMER_REAL, 0)
    for path in spec["cgroups"].values():
        _kill_cgroup(pathlib.Path(path))
    os.rmdir(newroot)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "launch" and sys.argv[3] == "--":
        sys.exit(_launch(json.loads(sys.argv[2]), sys.argv[4:]))
    sys.exit("usage: sandbox.py launch SPEC -- ARGV (started by autograder.sandbox.wrap)")
