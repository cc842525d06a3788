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
import nbformat
from nbgrader import utils as nbutils
from nbgrader.preprocessors import Execute

from . import remote, sandbox

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
    """nbgrader's Execute with the output cap, a record of the cells whose execution finished, and
    hidden tests run in this process (autograder.remote) when the notebook's checks allow it."""

    def __init__(self, *, output_limit=None, remote_scratch=None, **kw):
        super().__init__(**kw)
        self.output_limit = output_limit
        self.completed: set[int] = set()
        self.remote_scratch = remote_scratch  # the kernel's folder; None: every test runs in the kernel
        self.client = self.grader = None
        self._rpc_index = 0

    def preprocess(self, nb, resources=None, km=None):
        if self.remote_scratch is not None and remote.supports_remote(nb):
            self.client = remote.Client(self._rpc_send, self.remote_scratch)
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        parts = None
        if self.client is not None and cell.cell_type == "code" and nbutils.is_grade(cell):
            parts = remote.split_hidden(cell.source)
        if parts is None:
            result = super().preprocess_cell(cell, resources, index)  # raises if the reply never came
            self.completed.add(index)
            return result
        visible, hidden = parts
        if remote.is_setup(cell.metadata["nbgrader"]["grade_id"]):
            # the references are built here; the kernel never sees them
            self._rpc_index = index  # the setup may place helpers in the kernel (before any answer runs)
            try:
                self.grader = remote.run_setup(hidden, self.client)
            except remote.RemoteFailure:
                raise  # the kernel stopped answering: the submission's doing, graded as broken
            except Exception as exc:  # the grader's own checks failed to load: not the student's fault
                raise remote.GraderSetupError(f"the hidden setup of {cell.metadata['nbgrader']['grade_id']} "
                                              f"failed in the grader: {type(exc).__name__}: {exc}") from exc
            cell.outputs = []
            self.completed.add(index)
            return cell, resources
        original = cell.source
        cell.source = visible if visible.strip() else "pass"
        try:
            result = super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = original
        self.completed.add(index)
        if any(o.get("output_type") == "error" for o in cell.outputs):
            return result  # the visible checks failed in the kernel: the cell has its error already
        name, names = remote.check_call(hidden)
        self._rpc_index = index
        try:
            values = [self.client.learner_global(n) for n in names]
            getattr(self.grader, name)(*values)
        except Exception as exc:  # the check's verdict, written by us into the cell
            ename = getattr(exc, "ename", None) or type(exc).__name__
            evalue = str(exc).split(": ", 1)[-1] if isinstance(exc, remote.LearnerError) else str(exc)
            cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                                       traceback=[f"{ename}: {evalue}"]))
        return result

    def _rpc_send(self, code: str):
        """Run ``code`` in the kernel as a cell of its own; (stdout, error name, error value)."""
        tmp = nbformat.v4.new_code_cell(code)
        keep = self.nb.cells[self._rpc_index]
        try:
            self.execute_cell(tmp, self._rpc_index, store_history=False)
        finally:
            self.nb.cells[self._rpc_index] = keep  # nbclient stores the cell it ran at that index
        text = "".join(o.get("text", "") for o in tmp.outputs
                       if o.get("output_type") == "stream" and o.get("name") == "stdout")
        err = next((o for o in tmp.outputs if o.get("output_type") == "error"), None)
        return text, (err or {}).get("ename"), (err or {}).get("evalue")


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
        Hidden tests run in this process (autograder.remote) when the notebook's checks are written for it.
        """
        km_class = type("BoundKernelManager", (SandboxedKernelManager,), {"run": self})
        if timeout_cell is not None:
            # through the config: nbconvert re-runs the client's __init__ inside preprocess(),
            # which would reset an attribute set on the instance
            cfg = copy.deepcopy(cfg)
            cfg.Execute.timeout = int(timeout_cell)
        ex = _Executor(config=cfg, kernel_manager_class=km_class, output_limit=self.limits.output_bytes,
                       remote_scratch=self.cwd or self.scratch)
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
    def hidden_tests(self) -> dict:
        """Where the hidden tests ran, and what asking the kernel cost (requests, seconds)."""
        client = getattr(getattr(self, "executor", None), "client", None)
        if client is None:
            return {"where": "kernel"}
        return {"where": "grader", "requests": client.requests, "seconds": round(client.seconds, 3)}

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
