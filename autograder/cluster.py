"""``grade --scheduler tcp://HOST:PORT``: the per-student work on a Dask distributed cluster.

The grader process reads each student's submitted notebooks and sends their bytes with the job;
a Dask worker grades them exactly as a local worker process does (``job.grade_one``: the same
sandbox, limits and hidden-test process), in a scratch folder of its own, and returns the result
record with the autograded notebooks' text. The grader writes those notebooks, the gradebook and
the result file, as it does for its own workers: it stays the only writer of the workspace, so
resume, ``--regrade`` and ``check`` work unchanged.

A worker needs: this repository at the same path (the ``autograder`` package importable, e.g.
``PYTHONPATH=<repo>``), the same venv (the kernel's Python, nbgrader, torch), the source folder
and the workspace's ``release/`` at the same paths (a shared filesystem), the gradebook URL
reachable (read: nbgrader restores test cells from it), and what the sandbox needs on its node
(see README: root or unprivileged user namespaces; a cgroup for the memory limit).

Failures: a worker that dies mid-student (SIGKILL, a lost node) has its tasks rescheduled by Dask
on another worker; a student whose task kills ``ALLOWED_FAILURES`` workers is recorded as the
grader's ``error`` (retried on the next run). A scheduler that disappears stops the batch with a
message: what was committed stays, the same command grades the rest.
"""
from __future__ import annotations

import logging
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

from . import console
from .errors import ClusterLost
from .execute import THREAD_ENV
from .files import atomic_write
from .job import grade_one
from .options import backstop_s
from .result import grader_error

# distributed is imported inside the functions that use it: only a batch with --scheduler loads it, so
# a local batch forks its workers (grade.run_pool) with none of its machinery (threads, loops) imported.

NO_WORKER_S = 120.0  # a cluster with no worker for this long stops the batch


def grade_remote(opts, student: str, notebooks: list[str], submitted: dict[str, bytes]):
    """On a Dask worker: grade one student's notebooks (their bytes) in a scratch folder.

    Returns (the result record, {notebook name: autograded notebook JSON} for the grader to write).
    """
    os.environ.update(THREAD_ENV)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="autograder-dask-"))
    try:
        (scratch / "submitted").mkdir()
        for name, data in submitted.items():
            (scratch / "submitted" / name).write_bytes(data)
        where = {"submitted": str(scratch / "submitted"), "autograded": str(scratch / "autograded")}
        try:
            res = grade_one(opts, student, notebooks, where)
        except BaseException as exc:  # a grader failure, not the student's: recorded as error, retried
            return grader_error(student, opts.assignment, f"{type(exc).__name__}: {exc}", traceback.format_exc()), {}
        return res, {p.name: p.read_text() for p in sorted((scratch / "autograded").glob("*.ipynb"))}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def connect(scheduler: str, timeout: float = 30.0):
    """A Dask client of ``scheduler``; a clear ValueError if nothing answers there."""
    from distributed import Client
    try:
        return Client(scheduler, timeout=timeout)  # the default client: distributed.wait uses it
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"--scheduler {scheduler}: no Dask scheduler answers there ({exc}); start one "
                         "(`dask scheduler`, or a dask-jobqueue cluster) or grade locally with --workers") from None


def run_dask(opts, jobs: list, finish, scheduler: str, log=console.stderr) -> int:
    """Grade ``jobs`` on the cluster at ``scheduler``; call ``finish(res)`` in this process for each result.
    Returns the most Dask workers the scheduler had while the batch ran (what the summary reports)."""
    from distributed import wait
    from distributed.client import FuturesCancelledError
    from distributed.scheduler import KilledWorker

    ws = pathlib.Path(opts.workspace)
    quiet = _quiet_distributed()  # its reconnect attempts log tracebacks; the grader says what happened
    client = connect(scheduler)
    try:
        futures = {}
        for job in jobs:
            student, notebooks, *where = job
            folder = pathlib.Path(where[0]["submitted"]) if where else ws / "submitted" / student / opts.assignment
            sent = {n: (folder / n).read_bytes() for n in notebooks if (folder / n).is_file()}
            fut = client.submit(grade_remote, opts, student, notebooks, sent, pure=False,
                                key=f"grade-{opts.assignment}-{student}-{os.getpid()}-{time.time_ns()}")
            futures[fut] = job
        most = len(client.scheduler_info().get("workers", {}))
        log(f"dask: {len(futures)} job(s) sent to {scheduler} ({most} worker(s) now)")
        pending, lonely_since = set(futures), None
        hard_limit = backstop_s(opts, jobs)  # as run_pool's
        running_since: dict[str, float] = {}
        while pending:
            try:
                done, pending = wait(list(pending), timeout=5, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            except (FuturesCancelledError, OSError) as exc:
                raise _lost(scheduler, len(pending), exc) from None
            if client.status != "running":
                raise _lost(scheduler, len(pending), f"client {client.status}")
            for fut in done:
                job = futures[fut]
                try:
                    res, autograded = fut.result()
                except KilledWorker as exc:  # it took down several workers: the grader's error, retried next run
                    res, autograded = grader_error(job[0], opts.assignment, f"dask: its grading killed workers ({exc})"), {}
                except Exception as exc:  # noqa: BLE001 - the result could not be fetched: the cluster failed
                    raise _lost(scheduler, len(pending) + 1, exc) from None
                out_dir = (pathlib.Path(job[2]["autograded"]) if len(job) > 2
                           else ws / "autograded" / job[0] / opts.assignment)
                for name, text in autograded.items():
                    atomic_write(out_dir / name, text.encode())
                if finish(res) is False:  # the canary failed: grade nothing more
                    client.cancel(list(pending))
                    return most
            if pending:
                now = time.monotonic()
                try:
                    busy = {k for keys in client.processing().values() for k in keys}
                except OSError as exc:  # distributed's CommClosedError: the scheduler is gone
                    raise _lost(scheduler, len(pending), exc) from None
                for fut in list(pending):
                    if fut.key not in busy:
                        running_since.pop(fut.key, None)
                    elif now - running_since.setdefault(fut.key, now) > hard_limit:
                        fut.cancel()  # its worker stays busy until its own watchdog ends the notebook
                        pending.discard(fut)
                        res = grader_error(futures[fut][0], opts.assignment,
                                           f"dask: its grading ran for {hard_limit:.0f} s on a worker; cancelled")
                        if finish(res) is False:
                            client.cancel(list(pending))
                            return most
            if not done and pending:
                try:
                    workers = client.scheduler_info().get("workers")
                except OSError as exc:
                    raise _lost(scheduler, len(pending), exc) from None
                most = max(most, len(workers or {}))
                if workers:
                    lonely_since = None
                elif lonely_since is None:
                    lonely_since = time.monotonic()
                elif time.monotonic() - lonely_since > NO_WORKER_S:
                    raise _lost(scheduler, len(pending), f"no Dask worker for {NO_WORKER_S:.0f} s")
        return most
    finally:
        try:
            client.close(timeout=10)
        except Exception:  # noqa: BLE001 - closing a client whose scheduler is gone
            pass
        quiet()


def _quiet_distributed():
    """Silence distributed's client-side logging below CRITICAL; return what puts it back."""
    loggers = [logging.getLogger(n) for n in ("distributed", "distributed.client", "distributed.comm",
                                              "distributed.core", "distributed.utils", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)

    def restore():
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    return restore


def _lost(scheduler: str, left: int, why) -> ClusterLost:
    return ClusterLost(f"the Dask cluster at {scheduler} stopped answering mid-batch ({why}); {left} student(s) "
                       "not graded. Everything committed so far is kept: start the scheduler and workers again "
                       "and run the same command to grade the rest.")


class LocalCluster:
    """A Dask scheduler and ``n`` workers on this machine, each its own process (`dask` CLI of this venv).

    For tests and the bench: ``with LocalCluster(2, env) as c: grade(..., scheduler=c.address)``.
    Workers run one student at a time (one thread), without a nanny (a killed worker stays dead),
    with no Dask memory limit (the sandbox bounds each kernel), the repository on PYTHONPATH.
    """

    def __init__(self, n: int = 2, env: dict | None = None, log_dir=None):
        self.n, self.env = n, {**(env or os.environ)}
        repo = str(pathlib.Path(__file__).resolve().parent.parent)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, self.env.get("PYTHONPATH")]))
        self.log_dir = pathlib.Path(log_dir or tempfile.mkdtemp(prefix="dask-logs-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.dask = str(pathlib.Path(sys.executable).with_name("dask"))
        self.scheduler, self.workers = None, []
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"

    def _spawn(self, name, *args):
        log = open(self.log_dir / f"{name}.log", "ab")
        return subprocess.Popen([self.dask, *args], env=self.env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def start(self) -> "LocalCluster":
        from distributed import Client
        self.scheduler = self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                     "--dashboard-address", f"127.0.0.1:{free_port()}", "--no-show")
        self.workers = [self._spawn(f"worker{i}", "worker", self.address, "--nthreads", "1", "--no-nanny",
                                    "--memory-limit", "0", "--no-dashboard", "--host", "127.0.0.1",
                                    "--name", f"w{i}") for i in range(self.n)]
        with Client(self.address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(self.n, timeout=120)
        return self

    def kill(self, proc) -> None:
        """SIGKILL a process of the cluster and wait for it."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc is not None and proc.poll() is None:
                self.kill(proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
