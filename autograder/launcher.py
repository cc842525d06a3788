"""The sandbox's launcher: the process that confines one kernel (see autograder/sandbox.py).

``sandbox.wrap`` returns an argv that starts this file as a script, ``python -I -S launcher.py launch
SPEC -- ARGV``: no site, no working directory on the path, nothing imported but the standard
library (it runs as root, or in a user namespace, in the process tree the submission's code will
run in). It puts itself in the sandbox's cgroups, unshares the namespaces, builds the allowlisted
root, drops to the kernel's uid and limits, execs ARGV as PID 1 of its PID namespace, relays at
most ``output_bytes`` of its output, and kills what is left in the cgroups when it exits.

The trusted side, in the grader's process (probing, the spec, cleanup, the output cap on what the
kernel sends over ZMQ), is autograder/sandbox.py; it imports the few constants and helpers both
sides need from here, never the other way round. Keep this file standard-library only.
"""
from __future__ import annotations

# Started as a new interpreter per kernel (``launch``; ``via-zygote`` where a caller starts kernels as
# commands): what the module imports here is paid per start, so only what that path needs (each import costs
# about a millisecond or more with -S); the launch path imports the rest where it uses it.
import ctypes
import json
import os
import signal
import sys

# Above every range Debian allocates to people or packages (<= 65535), so no account shares it.
UID_BASE = 1_000_000
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


def _bind(libc, src: str, tgt, *, rw: bool, device: bool = False) -> None:
    """Bind ``src`` at ``tgt`` (a pathlib.Path; same type of node), then make it read-only unless ``rw``."""
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


def _build_root(libc, spec: dict, newroot) -> None:
    """Mount the allowlisted tree at ``newroot`` (a pathlib.Path) and pivot into it."""
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
    import math
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
    import pathlib
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
    import pathlib
    for key, path in spec["cgroups"].items():
        back = spec.get("cgroup_home") if key == "unified" else str(pathlib.Path(path).parent)
        try:
            (pathlib.Path(back) / "cgroup.procs").write_text(str(os.getpid()))
        except (OSError, TypeError):
            pass


# One thread per kernel (the plan on a shared grading machine): set for every kernel and for the zygote.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1"}

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


def _relay(pipes: dict[int, int], pid: int, budget: int, parent: int, alive: int | None = None) -> int:
    """Copy the kernel's raw stdout/stderr to ours (at most ``budget`` bytes) until it exits.

    If our parent (the grader) dies, we are re-parented: kill the kernel then, so a grader killed
    with SIGKILL leaves no kernel running. Started by the zygote, ``alive`` is the connection to whoever
    asked for the kernel (``ask_zygote``: the grader's worker itself, or the ``via_zygote`` command): its
    end closing means that process died or killed the kernel.
    """
    import select

    status = None
    watched = [alive] if alive is not None else []
    gone = False
    while pipes or status is None:
        # started by the zygote, only the connection counts: the zygote's own end must not kill a kernel
        if status is None and (gone or (alive is None and os.getppid() != parent)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                continue
        # the connection is watched with the pipes, so its end wakes this loop at once: a kill through it
        # does not wait for the kernel's next output or the select's timeout (up to 0.1 s)
        try:
            ready, _, _ = select.select([*pipes, *watched], [], [], 0.1 if pipes else 0.05)
        except InterruptedError:
            continue
        for fd in ready:
            if fd == alive:
                try:
                    more = os.read(alive, 1)
                except OSError:  # ECONNRESET: the asker died before it read our answer (its pid)
                    more = b""
                if not more:
                    gone, watched = True, []
                continue
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


def _alive(pid) -> bool:
    """Is process ``pid`` running (None: not known, taken as alive)? A zombie counts as gone."""
    if pid is None:
        return True
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def _enter_user_namespace(libc) -> None:
    """Rootless: a new user namespace in which this account's uid and gid map to themselves.

    The launcher and its child get every capability *inside* it, enough to build the new root; the
    kernel keeps none of them (its uid is not 0 there, it runs with no_new_privs and an empty
    bounding set), and outside it is this account, nothing more.
    """
    import pathlib
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


def launch(spec: dict, argv: list[str], start=None, alive: int | None = None) -> int:
    """Launcher: cgroups, namespaces, new root, drop privileges, exec; return exit status.

    As root, the kernel gets an unprivileged uid of its own (UID_BASE + the launcher's pid). Rootless,
    everything happens inside a user namespace and the kernel keeps this account's uid, confined by
    the same mount, PID, network, IPC and UTS namespaces.

    ``start(argv, env)`` (the zygote's, autograder/zygote.py): run the kernel in this process instead
    of exec'ing ``argv``, after every step above; ``alive``: see ``_relay``.
    """
    import pathlib
    import tempfile
    os.umask(0o022)  # the mount points made below must be reachable by the kernel's uid, whatever the grader's umask
    libc = _libc()
    rootless = spec.get("rootless", False)
    uid = os.getuid() if rootless else UID_BASE + os.getpid()
    parent = os.getppid()
    if alive is None and not _alive(spec.get("parent")):
        # the process that asked for us (sandbox.wrap's caller) died before we looked: we were
        # re-parented, and watching our new parent would keep the kernel alive. Nothing launched yet.
        return 128 + signal.SIGKILL
    scratch = spec["scratch"]
    have_mem = _setup_cgroups(spec)
    # From here on, whatever happens (an error, the asker gone before it read our answer), the kernel is
    # killed and its cgroups and root removed before we return: nobody else removes them once the grader
    # is gone.
    newroot = pid = status = None
    left = False  # the launcher has left the kernel's cgroups (before relaying, so they bound the kernel alone)
    try:
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
                for fd in (out_r, out_w, err_r, err_w) + ((alive,) if alive is not None else ()):
                    os.close(fd)  # the kernel never holds the zygote's connection: it could answer in our name
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
                if start is not None:
                    start(argv, _child_env(spec, uid))  # returns only if it could not start the kernel here
                os.execvpe(argv[0], argv, _child_env(spec, uid))
            except BaseException as e:  # noqa: BLE001 - report and never return into the launcher
                os.write(2, f"sandbox: cannot start {argv[0]}: {e}\n".encode())
            os._exit(127)
        for fd in (out_w, err_w):
            os.close(fd)
        _leave_cgroups(spec)  # the final kill sweep must not hit the launcher itself
        left = True
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
        status = _relay({out_r: 1, err_r: 2}, pid, spec["limits"]["output_bytes"] or 1 << 62, parent, alive)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if not left:  # an error came before: the kill sweep must not hit the launcher
            _leave_cgroups(spec)
        if pid and status is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for path in spec["cgroups"].values():
            kill_cgroup(pathlib.Path(path))
        if newroot is not None:
            try:
                os.rmdir(newroot)
            except OSError:
                pass
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def kill_cgroup(path, patience_s: float = 10.0) -> None:
    """SIGKILL every process in a cgroup (``path``, a pathlib.Path) until it is empty, then remove it.

    Until every process killed has finished exiting, the cgroup cannot be removed (EBUSY), and a
    killed process can leave ``cgroup.procs`` before that: a few hundred of them (a fork bomb's) on a
    loaded machine can take more than the second this waited before. Nobody removes the cgroup after
    us, so keep trying for ``patience_s`` (the usual case takes one attempt)."""
    import time
    if not path.is_dir():
        return
    deadline, pause = time.monotonic() + patience_s, 0.001
    while True:
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not pids:
            try:
                path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                pass
        if time.monotonic() > deadline:
            return
        time.sleep(pause)  # a killed kernel is usually gone within milliseconds
        pause = min(0.02, pause * 2)


class ZygoteRefused(ValueError):
    """The zygote answered a kernel's request with something other than its launcher's pid."""


def ask_zygote(sock_path: str, spec: dict, argv: list[str], env, fds) -> tuple:
    """Ask the zygote (autograder/zygote.py) at ``sock_path`` for a kernel, ``argv`` launched as ``launch``
    would in a process it forks with torch already imported. ``fds``: the kernel's stdin, stdout and
    stderr, sent with the request; ``env``: the environment jupyter_client gives a kernel (its safe part
    travels). Returns (connection, that process's pid, what came after its first answer): the connection
    is the kernel's lifeline (its end closing, SIGKILL of the asker included, makes that process kill the
    kernel), and brings ``{"status": n}`` when the kernel has ended (``zygote_status``). Raises OSError or
    ValueError when nobody answered, ZygoteRefused when the zygote would not."""
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(sock_path)
        env = {k: v for k, v in env.items() if k in SAFE_ENV or k.startswith("JPY_")}  # as _child_env keeps
        socket.send_fds(conn, [json.dumps({"spec": spec, "argv": argv, "env": env}).encode() + b"\n"], list(fds))
        buf = b""
        while b"\n" not in buf:
            more = conn.recv(4096)
            if not more:
                raise OSError("the zygote closed the connection")
            buf += more
        line, buf = buf.split(b"\n", 1)
        first = json.loads(line)
        pid = first.get("pid") if isinstance(first, dict) else None
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise ZygoteRefused(first.get("error", first) if isinstance(first, dict) else first)
    except BaseException:
        conn.close()
        raise
    return conn, pid, buf


def from_scratch_because(sock_path: str, exc: Exception) -> str:
    """What the log says when ``ask_zygote`` raised ``exc`` and the kernel starts from scratch instead."""
    said = "refused" if isinstance(exc, ZygoteRefused) else "did not answer"
    return f"sandbox: the zygote at {sock_path} {said} ({exc}); starting the kernel from scratch"


def zygote_status(buf: bytes) -> int:
    """The kernel's exit status from what its launcher sent after its pid (``ask_zygote``), read to the
    end of the connection: 128 + SIGKILL when it closed without one (that process was killed)."""
    try:
        return int(json.loads(buf.split(b"\n", 1)[0])["status"])
    except (ValueError, KeyError, TypeError):
        return 128 + signal.SIGKILL


def via_zygote(sock_path: str, spec: dict, argv: list[str]) -> int:
    """The command form of ``ask_zygote`` (what ``sandbox.wrap(warm=True)`` returns, for a caller that
    starts kernels as processes; the grader's own kernel manager asks the zygote itself,
    ``sandbox.WarmKernel``): ask for the kernel with our stdin, stdout and stderr, then stand for it until
    it ends: forward signals to it, exit with its status. If we die (SIGKILL included), our end of the
    connection closes and the kernel is killed."""
    import select

    parent = os.getppid()
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the worker dies: so do we, and the kernel
    if not _alive(spec.get("parent")) or os.getppid() != parent:  # with us (its launcher sees our end close)
        return 128 + signal.SIGKILL
    try:
        conn, pid, buf = ask_zygote(sock_path, spec, argv, os.environ, [0, 1, 2])
    except (OSError, ValueError) as exc:  # no zygote after all: start the kernel from scratch, same steps
        print(from_scratch_because(sock_path, exc), file=sys.stderr)
        _libc().prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)  # as a launcher we must outlive the worker to clean up
        return launch(spec, argv)

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)  # the launcher there sends SIGINT on, and SIGKILL for the others
        except ProcessLookupError:
            pass

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(s, forward)
    while b"\n" not in buf and os.getppid() == parent:  # re-parented: the grader is gone
        try:
            if select.select([conn], [], [], 0.2)[0]:
                more = conn.recv(4096)
                if not more:
                    break
                buf += more
        except InterruptedError:
            continue
    if os.getppid() != parent:
        return 128 + signal.SIGKILL
    return zygote_status(buf)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "launch" and sys.argv[3] == "--":
        sys.exit(launch(json.loads(sys.argv[2]), sys.argv[4:]))
    if len(sys.argv) >= 5 and sys.argv[1] == "via-zygote" and sys.argv[4] == "--":
        sys.exit(via_zygote(sys.argv[2], json.loads(sys.argv[3]), sys.argv[5:]))
    sys.exit("usage: launcher.py launch SPEC -- ARGV, or via-zygote SOCKET SPEC -- ARGV "
             "(started by autograder.sandbox.wrap)")
