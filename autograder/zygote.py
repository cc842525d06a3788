"""The zygote: one process that imports torch, numpy and ipykernel once, then forks each kernel.

Starting a kernel costs about 2 s of CPU on a 2-core machine, nearly all of it importing torch and
ipykernel (measured in bench/bench_feedback.py); a notebook's own cells often take less. A grading
worker therefore starts this process once (``sandbox.zygote_socket``, ``python zygote.py SOCKET``),
and every kernel after that is a fork of it: a fresh process per submission, never reused, that goes
through exactly the steps of ``launcher.launch`` (its own cgroups, namespaces, new root, uid,
rlimits, no_new_privs, PID 1 of its PID namespace) before it runs any of the learner's code, and
then starts ipykernel in the process instead of exec'ing a new Python.

Trust: the zygote runs no learner code and holds nothing of any submission or of the grader (a clean
environment, its own folder, only its listening socket). What a fork inherits from it is the state
of the imported libraries: the random generators are reseeded in each kernel, so two submissions
never share a sequence. Its memory pages are shared copy-on-write, so the memory cgroup of a kernel
is charged for what the kernel writes, not for the libraries already loaded (the limit still bounds
every allocation the learner makes). Must stay single-threaded: ``fork`` copies one thread only,
and a user namespace (rootless) can only be entered by a single-threaded process; it refuses to
serve otherwise, and the sandbox falls back to starting each kernel from scratch.

Protocol, one connection per kernel (``launcher.ask_zygote``; the grader's kernel manager asks itself,
``sandbox.start_warm``, and ``launcher.via_zygote`` is the same as a command): the client sends a JSON
line ``{"spec": ..., "argv": [...]}`` with its stdin, stdout and stderr as SCM_RIGHTS; the zygote
forks the launcher, answers ``{"pid": launcher}``, and that launcher answers ``{"status": n}`` when
the kernel has ended. Standard library and the preloaded modules only; runs as a script.
"""
from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys

import launcher  # this folder (the script's own): standard library only

# every kernel imports them (the debugger module, 55 ms, when its kernel starts); the assignment's own heavy
# imports come in argv
PRELOAD = ("ipykernel.kernelapp", "ipykernel.debugger")
# what ipykernel's and IPython's start-up imports in every kernel before it answers (seen in a forked kernel's
# sys.modules: ~15 ms a kernel); imported here when present, so a version that lacks one still starts
STARTUP = ("IPython.core.completerlib", "IPython.core.debugger", "IPython.core.oinspect",
           "IPython.extensions.storemagic", "IPython.utils.wildcard", "bdb", "cmd", "faulthandler", "pdb",
           "secrets", "sqlite3", "tornado.platform.asyncio",
           # what IPython imports when it first formats a traceback (a failing test cell, a learner's error: most
           # graded notebooks have one): that kernel's first error took 38-42 ms to show, now 29-31 ms
           "fractions", "pygments.console", "pygments.formatters.terminal256", "pygments.styles", "stack_data")
KERNEL_MODULE = "ipykernel_launcher"


def start_kernel(argv: list[str], env: dict) -> None:
    """In the sandbox's PID 1, privileges dropped: run ipykernel here as ``argv`` would (``python -m
    ipykernel_launcher -f CONNECTION``). Returns only if ``argv`` is some other command (then the
    launcher execs it, as without a zygote)."""
    if (len(argv) < 3 or argv[1:3] != ["-m", KERNEL_MODULE]
            or os.path.realpath(argv[0]) != os.path.realpath(sys.executable)):
        return
    os.environ.clear()
    os.environ.update(env)
    os.environ.update(SET_BY_IMPORTS)
    sys.argv = [argv[0], *argv[3:]]
    sys.path[0] = os.getcwd()  # as `python -m` puts it
    import random
    random.seed()  # from the OS's entropy, as a new process would
    if "numpy.random" in sys.modules:  # else a kernel that uses it imports it, seeded from the OS, as from scratch
        sys.modules["numpy.random"].seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()
    from ipykernel import kernelapp
    extra = []
    if env.get("JPY_PARENT_PID", "").isdigit():  # the trait's default was read from the zygote's environment
        extra.append(f"--IPKernelApp.parent_handle={env['JPY_PARENT_PID']}")
    status = 0
    try:
        kernelapp.launch_new_instance(argv=[*argv[3:], *extra])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the kernel's own crash, reported as a kernel would
        import traceback
        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(status)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _child(conn: socket.socket, fds: list[int], request: dict) -> None:
    """The forked launcher: its standard streams become the client's, then ``launcher.launch``."""
    gc.enable()
    keep = conn.fileno()
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 4096)
    for sig in (signal.SIGCHLD, signal.SIGTERM):  # the zygote's own handlers: a launcher's are the defaults
        signal.signal(sig, signal.SIG_DFL)
    os.setpgid(0, 0)
    # the environment jupyter_client gave the kernel (its safe part), not the zygote's: the kernel's own
    # variables (JPY_PARENT_PID, MPLBACKEND, ...) are then those of a kernel started from scratch
    os.environ.clear()
    os.environ.update({k: str(v) for k, v in dict(request.get("env") or {}).items()
                       if k in launcher.SAFE_ENV or k.startswith("JPY_")})
    status = 127
    try:
        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        status = launcher.launch(request["spec"], request["argv"], start=start_kernel, alive=keep)
    except BaseException as exc:  # noqa: BLE001 - said on the kernel's stderr, as the launcher would
        os.write(2, f"sandbox: the zygote's launcher failed: {exc}\n".encode())
    try:
        conn.sendall(json.dumps({"status": status}).encode() + b"\n")
    except OSError:
        pass
    os._exit(0)


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(1 << 16)
        if not more:
            raise ValueError("the request ended early")
        data += more
    return json.loads(data), list(fds)


# What importing the preloaded modules wrote into the environment (debugpy, imported with the debugger,
# sets PYDEVD_USE_FRAME_EVAL): a kernel from scratch has it too, so each forked kernel gets it again
# after its environment is replaced by jupyter_client's.
SET_BY_IMPORTS: dict[str, str] = {}


def serve(sock_path: str, parent: int, preload: list[str]) -> None:
    before = dict(os.environ)
    # No collection while importing (nothing the imports make is garbage worth finding), then every object
    # the imports made goes to the permanent generation: a fork's collections never walk them, so they
    # neither spend the kernel's CPU on them nor write to (and copy) the pages they share with us.
    # Each fork collects its own objects as usual (gc.enable() in _child), as a kernel from scratch does.
    gc.disable()
    for name in (*PRELOAD, *preload):
        __import__(name)
    for name in STARTUP:
        try:
            __import__(name)
        except ImportError:
            pass
    gc.freeze()
    SET_BY_IMPORTS.update({k: v for k, v in os.environ.items() if before.get(k) != v})
    if _threads() != 1:
        raise SystemExit(f"zygote: {_threads()} threads after importing {', '.join((*PRELOAD, *preload))}: "
                         "forking is unsafe")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path + ".tmp")
    os.chmod(sock_path + ".tmp", 0o600)  # only the grader's account may ask for kernels
    listener.listen(64)
    os.rename(sock_path + ".tmp", sock_path)  # appears complete: the grader waits for this name
    signal.signal(signal.SIGCHLD, lambda *_: _reap())
    listener.settimeout(1.0)
    try:
        _loop(listener, parent)
    finally:  # the folder the grader made for us: socket and log (the kernels we forked live on)
        import shutil
        shutil.rmtree(os.path.dirname(sock_path), ignore_errors=True)


def _loop(listener: socket.socket, parent: int) -> None:
    while os.getppid() == parent:  # the grader's worker is gone: so are we
        try:
            conn, _ = listener.accept()
        except (TimeoutError, socket.timeout, InterruptedError):
            continue
        conn.settimeout(None)
        try:
            request, fds = _read_request(conn)
        except (OSError, ValueError) as exc:
            try:
                conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
            except OSError:
                pass
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            _child(conn, fds, request)
        for fd in fds:
            os.close(fd)
        conn.close()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _stop(*_):
    raise SystemExit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    launcher._libc().prctl(launcher.PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # the worker died: clean up, go
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
