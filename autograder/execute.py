"""Execute one notebook cell by cell from the trusted process, its kernel confined by autograder.sandbox.

The kernel is the only process that runs student code. It is started from the kernelspec argv
wrapped by ``sandbox.wrap`` and talks to us over IPC sockets in its scratch folder (no network
namespace is shared, so TCP loopback would not reach it). A watchdog kills it at the notebook's
wall-time limit, on top of nbgrader's per-cell timeout.
"""
from __future__ import annotations

import copy
import os
import pathlib
import signal
import tempfile
import threading
import time

from jupyter_client.manager import AsyncKernelManager
from nbgrader import utils as nbutils
from nbgrader.preprocessors import Execute

from . import sandbox

# One thread per worker: N workers on N cores must not oversubscribe them (torch reads OMP_NUM_THREADS).
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1"}


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command goes through sandbox.wrap (set per run by ``kernel_manager_for``)."""

    run: "Run" = None  # bound by kernel_manager_for()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # IPC sockets inside the scratch dir: reachable from a sandbox without shared network.
        self.transport = "ipc"
        self.ip = str(self.run.scratch / "k")
        self.connection_file = str(self.run.scratch / "kernel.json")

    def format_kernel_cmd(self, extra_arguments=None):
        argv = super().format_kernel_cmd(extra_arguments)
        return sandbox.wrap(argv, scratch=self.run.scratch, readable=self.run.readable,
                            limits=self.run.limits, unsafe=self.run.unsafe)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        kw.setdefault("env", dict(os.environ))
        kw["env"].update(THREAD_ENV)
        await super()._async_launch_kernel(kernel_cmd, **kw)
        process = getattr(self.provisioner, "process", None)
        self.run.kernel_pid = process.pid if process is not None else None


class _Executor(sandbox.BoundedOutputs, Execute):
    """nbgrader's Execute with the output cap and a record of the cells whose execution finished."""

    def __init__(self, *, output_limit=None, **kw):
        super().__init__(**kw)
        self.output_limit = output_limit
        self.completed: set[int] = set()

    def preprocess_cell(self, cell, resources, index):
        result = super().preprocess_cell(cell, resources, index)  # raises if the reply never came
        self.completed.add(index)
        return result


class Run:
    """One notebook execution: scratch folder, limits, watchdog state."""

    def __init__(self, *, limits: sandbox.Limits, unsafe: bool, readable=(), wall_s: float | None = None):
        self.scratch = pathlib.Path(tempfile.mkdtemp(prefix="ag-"))
        self.limits, self.unsafe, self.readable = limits, unsafe, list(readable)
        self.wall_s = wall_s
        self.kernel_pid: int | None = None
        self.cwd: pathlib.Path | None = None  # the kernel's working folder; the scratch folder by default
        self.timed_out = False
        self._stop = threading.Event()

    def kill_kernel(self) -> None:
        """Kill the kernel's process group (launch_kernel starts it in its own session)."""
        if self.kernel_pid is None:
            return
        kill_tree = getattr(sandbox, "kill_tree", None)
        try:
            if kill_tree is not None:
                kill_tree(self.kernel_pid)
            else:
                os.killpg(self.kernel_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, TypeError):
            pass

    def _watch(self) -> None:
        if not self._stop.wait(self.wall_s):
            self.timed_out = True
            self.kill_kernel()

    def execute(self, nb, resources, cfg, timeout_cell: int | None):
        """Run every cell of ``nb`` in place; return seconds spent (kernel start included).

        A cell whose execute reply never came (kernel killed by the wall-time watchdog, the output
        cap or a crash while it ran) loses its execution count, so it scores as not run.
        """
        km_class = type("BoundKernelManager", (SandboxedKernelManager,), {"run": self})
        if timeout_cell is not None:
            # through the config: nbconvert re-runs the client's __init__ inside preprocess(),
            # which would reset an attribute set on the instance
            cfg = copy.deepcopy(cfg)
            cfg.Execute.timeout = int(timeout_cell)
        ex = _Executor(config=cfg, kernel_manager_class=km_class, output_limit=self.limits.output_bytes)
        self.executor = ex
        resources.setdefault("metadata", {})["path"] = str(self.cwd or self.scratch)
        watchdog = None
        if self.wall_s:
            watchdog = threading.Thread(target=self._watch, daemon=True)
            watchdog.start()
        t0 = time.perf_counter()
        try:
            ex.preprocess(nb, resources)
        finally:
            self._stop.set()
            self.kill_kernel()  # nbclient shut it down already; this only catches strays
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code" and index not in ex.completed:
                    cell["execution_count"] = None
        return time.perf_counter() - t0

    @property
    def output_overflow(self) -> bool:
        ex = getattr(self, "executor", None)
        return bool(ex is not None and ex.output_overflow)

    def close(self) -> None:
        self._stop.set()
        self.kill_kernel()
        sandbox.cleanup(self.scratch)


def was_run(cell) -> bool:
    """Did the kernel execute this code cell (nbgrader cleared every count before the run)?"""
    return cell.get("execution_count") is not None or any(o.get("output_type") == "error" for o in cell.get("outputs", []))


def cell_score(cell) -> tuple[float | None, float, str]:
    """(score, max_score, reason) of a grade cell.

    nbgrader's rule, with two changes: stderr output alone (torch warnings) does not zero a cell,
    only an error does; and a test cell that never ran (kernel died, wall time) scores 0.
    """
    max_points = float(cell.metadata["nbgrader"]["points"])
    if cell.cell_type == "code" and not nbutils.is_solution(cell) and not was_run(cell):
        return 0.0, max_points, "not run: the kernel stopped before this cell"
    quiet = copy.deepcopy(cell)
    if quiet.cell_type == "code":
        quiet.outputs = [o for o in quiet.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    score, max_points = nbutils.determine_grade(quiet)
    reason = ""
    if score == 0 and quiet.cell_type == "code":
        errors = [o for o in quiet.outputs if o.get("output_type") == "error"]
        if errors:
            reason = f"{errors[0].get('ename', 'Error')}: {errors[0].get('evalue', '')}".strip()
    return (None if score is None else float(score)), float(max_points), reason
