"""Run one submission's kernel confined: its own uid, its own namespaces, bounded resources.

Mechanism ("uid+namespaces", Linux, needs root): ``wrap(argv, ...)`` returns an argv that starts
autograder/launcher.py as a small root launcher (standard library only; this file is the trusted
side, in the grader's process). The launcher
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

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import launcher
from .launcher import CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, _check, _libc
from .launcher import UID_BASE  # noqa: F401 - public here too: the kernels' uids start above it
from .launcher import kill_cgroup as _kill_cgroup

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
         limits: Limits, unsafe: bool = False, warm: bool = False, preload: tuple[str, ...] = ()) -> list[str]:
    """Return the argv that runs ``argv`` confined (cwd stays the caller's, if inside scratch).

    ``warm``: a kernel (``python -m ipykernel_launcher ...``), forked from this process's zygote for
    ``preload`` (``zygote_socket``), confined by the same steps."""
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
        # the process that starts the launcher: if it is gone before the launcher looks, the launcher
        # must not adopt whoever inherited it as the parent it watches
        "parent": os.getpid(),
    }
    # -I -S: the launcher runs as root and must not import anything from the working directory.
    here = [sys.executable, "-I", "-S", os.path.abspath(launcher.__file__)]
    sock = zygote_socket(preload) if warm else None
    if sock is not None:  # the same steps, in a fork of a process that has imported torch already
        return [*here, "via-zygote", sock, json.dumps(spec), "--", *argv]
    return [*here, "launch", json.dumps(spec), "--", *argv]


class WarmKernel:
    """A kernel the zygote forked at this process's own request (``start_warm``), held the way
    jupyter_client's provisioner holds a ``subprocess.Popen``: ``pid``, ``poll``, ``wait``,
    ``send_signal``, ``kill``, ``terminate``, ``stdin``. No process of ours stands between: ``pid`` is
    the zygote's launcher for this kernel (not our child, never waited for), and the connection to it
    is the kernel's lifeline. Closing our side (``kill``, or this process's end, SIGKILL included)
    makes that launcher kill the kernel, its cgroups emptied and removed, as the client process
    ``launcher.via_zygote`` did when it was killed; a kernel that ends by itself is reported on the
    connection with its status."""

    stdout = stderr = None  # the kernel writes to this process's own, as a Popen that inherits them

    def __init__(self, conn, pid: int, buf: bytes, stdin):
        self.pid, self.stdin, self.returncode = pid, stdin, None
        self._conn, self._buf = conn, buf
        conn.setblocking(False)
        # the watchdog's thread may kill while the event loop polls: kill only shuts the connection and sets
        # the status, under the lock; the connection is closed only where it is read (the polling thread)
        self._lock = threading.Lock()
        self._read(0)

    def _read(self, timeout: float) -> None:
        import select
        if self.returncode is not None:
            return
        try:
            if not select.select([self._conn], [], [], timeout)[0]:
                return
        except (OSError, ValueError):
            pass
        with self._lock:
            ended = self.returncode is not None
            while not ended and b"\n" not in self._buf:
                try:
                    more = self._conn.recv(4096)
                except BlockingIOError:
                    return
                except OSError:
                    more = b""
                if not more:
                    break
                self._buf += more
            if not ended:
                self.returncode = launcher.zygote_status(self._buf)
            self._conn.close()

    def poll(self) -> int | None:
        self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"kernel (launcher {self.pid})", timeout)
            self._read(0.2 if left is None else min(left, 0.2))
        self._conn.close()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """SIGINT reaches the kernel (its launcher passes it on); any other signal kills it."""
        if signum != signal.SIGINT:
            self.kill()
        elif self.returncode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """Kill the kernel: our side of the lifeline shuts now; its launcher finishes the kill and removes its
        cgroups after that, as it did when the client process was killed (``cleanup`` waits for them too)."""
        import socket
        with self._lock:
            if self.returncode is None:
                try:
                    self._conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.returncode = 128 + signal.SIGKILL

    terminate = kill


def start_warm(cmd: list[str], env: dict) -> WarmKernel | None:
    """Start the kernel of ``cmd``, an argv from ``wrap(warm=True)``, by asking the zygote from this process
    (no client process: a new interpreter per kernel, ~25 ms of CPU); None when ``cmd`` is not that form
    or the zygote did not take the request (the caller then runs a from-scratch ``launch`` command,
    ``cold_command``: the client's own fallback, said on stderr as it said it)."""
    parts = _warm_parts(cmd)
    if parts is None:
        return None
    sock, spec, argv = parts
    stdin_r, stdin_w = os.pipe()  # the kernel's stdin: a pipe whose writer we keep, as Popen(stdin=PIPE)
    try:
        conn, pid, buf = launcher.ask_zygote(sock, spec, argv, env, [stdin_r, 1, 2])
    except (OSError, ValueError) as exc:
        os.close(stdin_w)
        print(launcher.from_scratch_because(sock, exc), file=sys.stderr)
        return None
    finally:
        os.close(stdin_r)
    return WarmKernel(conn, pid, buf, open(stdin_w, "wb"))


def _warm_parts(cmd: list[str]) -> tuple[str, dict, list[str]] | None:
    """(the zygote's socket, the spec, the kernel's argv) of a command ``wrap(warm=True)`` made, else None."""
    if len(cmd) < 9 or cmd[4:5] != ["via-zygote"] or cmd[7] != "--":
        return None
    return cmd[5], json.loads(cmd[6]), cmd[8:]


def cold_command(cmd: list[str]) -> list[str]:
    """``cmd`` from ``wrap``, as the from-scratch ``launch`` command (the same confinement, no zygote)."""
    if _warm_parts(cmd) is None:
        return cmd
    return [*cmd[:4], "launch", cmd[6], *cmd[7:]]


def kill_process(process) -> None:
    """Kill a kernel the provisioner holds: a ``WarmKernel``, or the launcher's process group (``kill_tree``)."""
    if isinstance(process, WarmKernel):
        process.kill()
    elif process is not None and getattr(process, "pid", None):
        kill_tree(process.pid)


# --------------------------------------------------------------------------- the zygote (warm kernels)
ZYGOTE_ENV = "AUTOGRADER_ZYGOTE"  # "0": start every kernel from scratch
ZYGOTE_START_S = 120.0
# What a zygote may import beyond ipykernel, when the assignment's own notebook imports it: heavy,
# third-party, fixed for the life of a grader. Never mnlib or the course's code (they may change while a
# zygote lives), never what the notebook does not import itself (a kernel then carries no library its
# learner did not ask for: a notebook that forks many processes costs what it costs without a zygote).
PRELOADABLE = ("numpy", "torch")
_ZYGOTES: dict[tuple, dict] = {}  # preload -> this process's zygote: owner pid, Popen, socket, or why it failed


def preload_for(modules) -> tuple[str, ...]:
    """The modules a zygote for an assignment importing ``modules`` imports beforehand."""
    return tuple(m for m in PRELOADABLE if m in set(modules or ()))


def zygote_socket(preload: tuple[str, ...] = ()) -> str | None:
    """The socket of this process's zygote for ``preload`` (autograder/zygote.py), started on first
    use; None when switched off (``AUTOGRADER_ZYGOTE=0``) or when it cannot start here (then kernels
    start from scratch, as before: slower, same confinement; the reason is in ``zygote_status()``)."""
    z = _spawn_zygote(preload)
    return None if z is None else _await_zygote(z)


def start_zygote(preload: tuple[str, ...] = ()) -> None:
    """Start this process's zygote for ``preload`` without waiting for it: it imports its libraries
    while this process imports its own (``zygote_socket`` or ``share_zygote`` later waits for it)."""
    _spawn_zygote(preload)


def _spawn_zygote(preload: tuple[str, ...]) -> dict | None:
    """This process's zygote record for ``preload``, its process started if it has none; None: no zygote."""
    if os.environ.get(ZYGOTE_ENV, "1") == "0" or sys.platform != "linux":
        return None
    z = _ZYGOTES.setdefault(tuple(preload), {})
    if z.get("owner") == os.getpid():
        proc = z.get("proc")
        if proc is not None and proc.poll() is None and (z.get("starting") or os.path.exists(z["sock"])):
            return z
        if proc is None:
            return None  # failed before, in this process: do not retry for every kernel
        if proc.poll() is None:  # its folder is gone (a test's temporary folder removed): a new one
            proc.kill()
            proc.wait()
    elif z.get("shared") and os.path.exists(z.get("sock", "")):
        return z  # a worker forked by a grader that shares its zygote (share_zygote)
    z.clear()  # else a forked worker starts its own
    z["owner"] = os.getpid()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="ag-zygote-"))  # 0700: only this account reaches the socket
    sock = str(folder / "zygote.sock")
    env = {k: v for k, v in os.environ.items() if k in launcher.SAFE_ENV}
    env.update({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": env.get("LANG", "C.UTF-8"),
                **launcher.THREAD_ENV})
    script = os.path.join(os.path.dirname(os.path.abspath(launcher.__file__)), "zygote.py")
    with open(folder / "zygote.log", "wb") as log:  # the zygote keeps writing it for its whole life
        proc = subprocess.Popen([sys.executable, script, sock, str(os.getpid()), *preload], cwd="/", env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    z.update(proc=proc, sock=sock, folder=folder, starting=time.monotonic() + ZYGOTE_START_S)
    return z


def _await_zygote(z: dict) -> str | None:
    """Wait until the zygote ``_spawn_zygote`` started listens; its socket, or None (the reason recorded)."""
    deadline = z.pop("starting", None)
    if deadline is None:
        return z["sock"]
    proc, sock = z["proc"], z["sock"]
    while not os.path.exists(sock) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not os.path.exists(sock):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        z["failed"] = (z["folder"] / "zygote.log").read_text(errors="replace").strip()[-500:] or \
            f"exit status {proc.returncode}"
        z["proc"] = None
        return None
    return sock


def share_zygote(preload: tuple[str, ...] = (), meanwhile=None) -> str | None:
    """Start this process's zygote for ``preload`` now and let the workers it forks use it (one zygote
    for a batch, or for a watch's whole life, instead of one per worker process); its socket, or None.
    ``meanwhile()`` runs while the zygote imports its libraries (both take a second or two)."""
    z = _spawn_zygote(preload)
    if meanwhile is not None:
        meanwhile()
    sock = None if z is None else _await_zygote(z)
    if sock is not None:
        z["shared"] = True
    return sock


def zygote_status(preload: tuple[str, ...] = ()) -> str:
    """One line for the log: warm kernels from this process's zygote, or why not."""
    if os.environ.get(ZYGOTE_ENV, "1") == "0":
        return f"kernels: started from scratch ({ZYGOTE_ENV}=0)"
    failed = _ZYGOTES.get(tuple(preload), {}).get("failed")
    if failed:
        return f"kernels: started from scratch (the zygote did not start: {failed})"
    return ("kernels: forked from a zygote that has imported ipykernel"
            + "".join(f", {m}" for m in preload) + " (autograder/zygote.py)")


def stop_zygotes() -> None:
    """Stop this process's zygotes (each also stops by itself when this process ends)."""
    for z in _ZYGOTES.values():
        proc = z.get("proc")
        if proc is not None and z.get("owner") == os.getpid():
            proc.kill()
            proc.wait()
            shutil.rmtree(z["folder"], ignore_errors=True)
    _ZYGOTES.clear()


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


def output_size(msg) -> int:
    """What an output message counts against the outputs' cap: its text, or its content as JSON."""
    content = msg.get("content", {})
    text = content.get("text")
    return len(text) if isinstance(text, str) else len(json.dumps(content, default=str))


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
        self.count_output(msg, cell_index)
        return super().output(outs, msg, display_id, cell_index)

    def count_output(self, msg, cell_index, size: int | None = None) -> None:
        """Count one output message of cell ``cell_index`` (also one a request of the grader caused);
        ``size``: its ``output_size``, when the caller has it already."""
        size = output_size(msg) if size is None else size
        used = self.__dict__["_outputs_used"] = self.__dict__.get("_outputs_used", 0) + size
        if self.output_limit is not None and used > self.output_limit:
            self._kill_kernel()
            raise OutputTooLarge(f"the notebook's outputs passed {self.output_limit} bytes; it was stopped there")

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
        process = getattr(getattr(getattr(self, "km", None), "provisioner", None), "process", None)
        kill_process(process)
