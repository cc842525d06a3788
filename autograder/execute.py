"""Execute one notebook cell by cell from the trusted process, its kernel confined by autograder.sandbox.

The kernel is the only process that runs student code. It is started from the kernelspec argv
wrapped by ``sandbox.wrap`` and talks to us over IPC sockets in its scratch folder (no network
namespace is shared, so TCP loopback would not reach it). A watchdog kills it at the notebook's
wall-time limit, on top of nbgrader's per-cell timeout.
"""
from __future__ import annotations

import copy
import functools
import json
import math
import os
import pathlib
import queue
import re
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client import manager as jc_manager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import DeadKernelError
import nbformat
from nbgrader import utils as nbutils
from nbgrader.preprocessors import Execute
from traitlets import Type, default
import zmq
import zmq.asyncio

from . import kernel_agent, kernel_probe, remote, sandbox

# One thread per worker: N workers on N cores must not oversubscribe them (torch reads OMP_NUM_THREADS).
from .launcher import THREAD_ENV  # noqa: E402,F401 - one home (the zygote's environment uses it too)


class EnvironmentFault(remote.GraderSetupError):
    """The kernel's environment is broken (a module the assignment needs does not import, or imports
    from another checkout than the grader's, or the grader setup fails there): the grader's fault,
    recorded as status ``error`` and retried, never a student's zero."""


class CellTimeout(Exception):
    """A request of a hidden check ran past the per-cell time limit in the kernel."""


# --unsafe: the kernel is this process's own child, with no sandbox launcher watching its parent. This
# prefix asks for SIGKILL when its parent (the grading worker) dies (PR_SET_PDEATHSIG survives exec),
# then execs the kernel; a parent already gone means exit. Sandboxed kernels die with their launcher.
DIE_WITH_PARENT = ("import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0); "
                   "os.getppid() == int(sys.argv[1]) or os._exit(1); os.execvp(sys.argv[2], sys.argv[2:])")

PARTIAL = "autograder_partial"  # output metadata key: this number was written by the grader (partial credit)


RECONNECT_MS = 5  # ZeroMQ's retry interval towards a kernel that has not bound its sockets yet


class PromptKernelClient(AsyncKernelClient):
    """jupyter_client's kernel client with a ready-wait that ends as soon as the kernel is ready.

    jupyter_client's ``wait_for_ready``, once the kernel has answered ``kernel_info``, reads IOPub
    until it has been quiet for 0.2 s: every kernel start paid those 0.2 s doing nothing (half of a
    warm kernel's start on a 2-core machine). Here the kernel is ready when a ``kernel_info`` request
    has its reply on the shell channel *and* its ``idle`` status on IOPub. The status proves IOPub is
    connected (one published before our subscription took hold is lost, and the request is sent
    again, as jupyter_client does), and everything the kernel published before it has been read. The
    executor reads only its own requests' messages (by parent id), so nothing left unread here can
    reach a cell (tests/test_kernel_ready.py)."""

    @default("context")
    def _context_default(self):
        # The channels connect before the kernel has bound its sockets (it is still being forked and
        # confined), so the first attempts fail and ZeroMQ retries every RECONNECT_IVL: 100 ms by default,
        # 100-200 ms with its jitter, which a kernel's start waited for. The client makes its own context
        # (not its manager's): set it here.
        ctx = super()._context_default()
        ctx.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
        return ctx

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (math.inf if timeout is None else timeout)
        sent: set[str] = set()

        def reply(m):
            return m.get("msg_type") == "kernel_info_reply" and m.get("parent_header", {}).get("msg_id") in sent

        def idle(m):
            return (m.get("msg_type") == "status" and m.get("content", {}).get("execution_state") == "idle"
                    and m.get("parent_header", {}).get("msg_id") in sent)

        while True:
            sent.add(self.kernel_info())
            answer = await self._first(self.shell_channel, reply, 1.0)
            # IOPub not connected yet: its status was lost; ask again (a kernel_info costs ~1 ms)
            if answer is not None and await self._first(self.iopub_channel, idle, 0.05) is not None:
                self._handle_kernel_info_reply(answer)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    @staticmethod
    async def _first(channel, wanted, seconds: float):
        """The first message on ``channel`` for which ``wanted`` holds, within ``seconds``; else None."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await channel.get_msg(timeout=left)
            except queue.Empty:
                return None
            if wanted(msg):
                return msg
        return None


def _without_pause(method):
    """``method`` (a kernel manager's start or shutdown) with jupyter_client's ``in_pending_state`` bookkeeping
    (the manager's ``ready`` future) but not its ``asyncio.sleep(0.01)`` ("so tests can capture the state
    before done"): every kernel's start and its shutdown each waited those 10 ms, 20 ms per graded
    notebook. What the wrapper does otherwise is done here as there (tests/test_kernel_ready.py compares
    with jupyter_client's own); without the ``__wrapped__`` function, jupyter_client's method as it is."""
    inner = getattr(method, "__wrapped__", None)
    if inner is None:
        return method

    @functools.wraps(inner)
    async def wrapper(self, *args, **kwargs):
        if self._attempted_start or not self._ready:
            self._ready = jc_manager._get_future()
        try:
            out = await inner(self, *args, **kwargs)
        except Exception as e:
            self._ready.set_exception(e)
            self.log.exception(self._ready.exception())
            raise e
        if self.owns_kernel:
            self._ready.set_result(None)
        return out

    return wrapper


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command goes through sandbox.wrap, with the limits and scratch
    folder of one :class:`Run`. nbclient creates it (``kernel_manager_class``); the client that
    creates it binds it to its run (:class:`RunsInSandbox`), before the kernel starts."""

    run: "Run | None" = None  # set by bind()
    client_factory = Type(PromptKernelClient, klass=AsyncKernelClient)
    start_kernel = _without_pause(AsyncKernelManager.start_kernel)
    shutdown_kernel = _without_pause(AsyncKernelManager.shutdown_kernel)

    @default("context")
    def _context_default(self):
        # The manager's own sockets (its control channel) connect as its client's do (PromptKernelClient,
        # which makes a context of its own): retried every RECONNECT_MS, not every 100 ms.
        ctx = super()._context_default()
        ctx.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
        return ctx

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # jupyter_client looks every 0.1 s whether the kernel it stopped is gone; a killed kernel is gone at once
        await super()._async_wait(pollinterval=min(pollinterval, 0.005))

    def bind(self, run: "Run") -> "SandboxedKernelManager":
        """Run the kernel in ``run``'s sandbox; returns self."""
        self.run = run
        # IPC sockets inside the scratch dir: reachable from a sandbox without shared network.
        self.transport = "ipc"
        self.ip = str(run.scratch / "k")
        self.connection_file = str(run.scratch / "kernel.json")
        return self

    def format_kernel_cmd(self, extra_arguments=None):
        argv = super().format_kernel_cmd(extra_arguments)
        if self.run.unsafe and sys.platform == "linux":  # no launcher to watch us: the kernel dies with this process
            return [sys.executable, "-I", "-S", "-c", DIE_WITH_PARENT, str(os.getpid()), *argv]
        return sandbox.wrap(argv, scratch=self.run.scratch, readable=self.run.readable,
                            limits=self.run.limits, unsafe=self.run.unsafe, warm=True,
                            preload=sandbox.preload_for(self.run.preflight))

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        kw.setdefault("env", dict(os.environ))
        kw["env"].update(THREAD_ENV)
        # A warm kernel: this process asks the zygote itself and the provisioner holds the answer as its
        # process (sandbox.WarmKernel), instead of starting a client interpreter that would ask for us.
        # Output redirected by the caller, or a provisioner that holds no process, go the usual way.
        warm = None
        if kw.get("stdout") is None and kw.get("stderr") is None and hasattr(self.provisioner, "process"):
            env = dict(kw["env"])
            if not kw.get("independent"):
                env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's launch_kernel gives a kernel
            warm = sandbox.start_warm(kernel_cmd, env)
        if warm is not None:
            p = self.provisioner
            p.process, p.pid, p.pgid = warm, warm.pid, None  # no group: its signals go through the handle
            p.cwd = kw.get("cwd", os.getcwd())
            self._reconcile_connection_info(p.connection_info)
        else:
            await super()._async_launch_kernel(sandbox.cold_command(kernel_cmd), **kw)
        self.run.kernel_process = getattr(self.provisioner, "process", None)


class RunsInSandbox:
    """Mixin for an nbclient client (nbgrader's ``Execute``): its kernel runs in ``run``'s sandbox.

    The client creates a :class:`SandboxedKernelManager` (its ``kernel_manager_class``) and binds
    it to ``run``, a plain attribute: nbconvert re-runs the client's ``__init__`` inside
    ``preprocess()``, which resets traits but keeps it.
    """

    def __init__(self, *, run: "Run", **kw):
        kw.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(**kw)
        self.run = run

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if not isinstance(km, SandboxedKernelManager):
            raise TypeError(f"kernel_manager_class {type(km).__name__} is not a SandboxedKernelManager: "
                            "the kernel would run outside the sandbox")
        return km.bind(self.run)


class _Executor(RunsInSandbox, sandbox.BoundedOutputs, Execute):
    """nbgrader's Execute with the output cap, a record of the cells whose execution finished, and
    hidden tests run in this process (autograder.remote) when the notebook's checks allow it."""

    @default("shutdown_kernel")
    def _kill_at_the_end(self):
        # Nothing runs in the kernel after its last cell (atexit hooks are the learner's); the sandbox's
        # cleanup kills its cgroups anyway. A graceful shutdown waited >= 0.1 s for the kernel to exit.
        return "immediate"

    def __init__(self, *, output_limit=None, remote_scratch=None, preflight=None, **kw):
        super().__init__(**kw)
        self.output_limit = output_limit
        self.completed: set[int] = set()
        self.remote_scratch = remote_scratch  # the kernel's folder; None: every test runs in the kernel
        self.client = self.grader = None
        self._rpc_index = 0
        # the agent's listener (kernel_agent._ag_listen): its answers' comm id on IOPub, its socket once
        # connected, the number of the last request, the listeners started; dead: cells from then on
        self._token = uuid.uuid4().hex[:12]
        self._agent_sock: socket.socket | None = None
        self._agent_path: pathlib.Path | None = None
        self._asked = self._listens = 0
        self._answered = -1  # the last request the listener answered
        self._channel_dead = False
        self.answered_on_socket = 0  # answers the listener sent back on its socket (the rest came on IOPub)
        self.checks_s = 0.0  # the hidden checks' own work here, waiting for their requests excluded (benchmarks)
        self.preflight = preflight  # {module: folder the grader imports it from (or None)}; None: no probe
        self.timeouts: list[int] = []  # the per-cell limit, once per cell the limit stopped
        self.output_cell: int | None = None  # the index of the last cell that sent output
        self.cell_output_bytes: dict[int, int] = {}  # output size per cell index

    def count_output(self, msg, cell_index, size=None) -> None:
        """Count each cell's output (the cap itself is BoundedOutputs'): an overflow names its cell."""
        size = sandbox.output_size(msg) if size is None else size
        self.output_cell = cell_index
        self.cell_output_bytes[cell_index] = self.cell_output_bytes.get(cell_index, 0) + size
        super().count_output(msg, cell_index, size)

    async def _async_handle_timeout(self, timeout, cell=None):
        self.timeouts.append(timeout)
        return await super()._async_handle_timeout(timeout, cell)

    def _probe_kernel(self, index: int) -> None:
        """Before any cell runs: can the kernel import what the assignment needs, from where the grader does?"""
        modules = sorted(self.preflight)
        self.preflight = None
        self._rpc_index = index
        text, ename, evalue = self._rpc_send(kernel_probe.request(modules))
        report = kernel_probe.parse(text)
        if report is None:
            raise EnvironmentFault(f"the kernel could not run the environment probe ({ename}: {evalue})")
        problems = kernel_probe.compare(report, {m: self._grader_origin(m) for m in modules})
        if problems:
            raise EnvironmentFault("the kernel's environment is broken, so no answer can pass: "
                                   + "; ".join(problems) + f" (kernel python: {report.get('python')})")

    @staticmethod
    def _grader_origin(module: str):
        import importlib.util
        spec = importlib.util.find_spec(module)
        return kernel_probe.origin_folder(spec.origin if spec is not None else None)

    def preprocess(self, nb, resources=None, km=None):
        if self.remote_scratch is not None and remote.supports_remote(nb):
            # the listener's socket path must fit a sockaddr_un (108 bytes): if not, every request is a cell
            fits = len(os.fsencode(str(self._socket_path(99)))) < 100
            self.client = remote.Client(self._rpc_send, self.remote_scratch, ask=run_sync(self._async_rpc_ask),
                                        listen=self._rpc_listen if fits else None)
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._rpc_close(dead=True)

    def preprocess_cell(self, cell, resources, index):
        if self.preflight is not None and cell.cell_type == "code":
            self._probe_kernel(index)  # before the first code cell: no answer has run yet
        parts = None
        if self.client is not None and cell.cell_type == "code" and nbutils.is_grade(cell):
            parts = remote.split_hidden(cell.source)
        if parts is None:
            stopped = len(self.timeouts)
            result = super().preprocess_cell(cell, resources, index)  # raises if the reply never came
            self.completed.add(index)
            if len(self.timeouts) > stopped:
                explain_timeout(cell, self.timeouts[-1])
            self._setup_ran_cleanly(cell)
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
            original = cell.source  # its visible part (a comment) runs in the kernel: the cell counts as run
            cell.source = visible if visible.strip() else "pass"
            try:
                result = super().preprocess_cell(cell, resources, index)
            finally:
                cell.source = original
            self.completed.add(index)
            return result
        original = cell.source
        cell.source = visible if visible.strip() else "pass"
        stopped = len(self.timeouts)
        try:
            result = super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = original
        self.completed.add(index)
        if len(self.timeouts) > stopped:
            explain_timeout(cell, self.timeouts[-1])
        for o in cell.outputs:  # a score comes from the grader's verdict only, never from the kernel
            if o.get("output_type") == "execute_result":
                o.output_type = "display_data"
                o.pop("execution_count", None)
        if any(o.get("output_type") == "error" for o in cell.outputs):
            return result  # the visible checks failed in the kernel: the cell has its error already
        name, names = remote.check_call(hidden)
        self._rpc_index = index
        self._check = "your " + ", ".join(names) if names else "your code"
        started, waited = time.perf_counter(), self.client.seconds
        try:
            values = [self.client.learner_global(n) for n in names]
            verdict = getattr(self.grader, name)(*values)
        except Exception as exc:  # the check's verdict, written by us into the cell
            ename = getattr(exc, "ename", None) or type(exc).__name__
            evalue = str(exc).split(": ", 1)[-1] if isinstance(exc, remote.LearnerError) else str(exc)
            if isinstance(exc, CellTimeout):
                ename = "TimeoutError"
            cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                                       traceback=[f"{ename}: {evalue}"]))
        else:
            cell.outputs.extend(partial_outputs(verdict, float(cell.metadata["nbgrader"]["points"])))
        finally:
            self.checks_s += time.perf_counter() - started - (self.client.seconds - waited)
        return result

    def _setup_ran_cleanly(self, cell) -> None:
        """The grader setup, run in the kernel (hidden tests there), failed before any answer ran: the
        environment's fault (mnlib or torch missing), not the student's."""
        meta = cell.metadata.get("nbgrader", {})
        if not (cell.cell_type == "code" and meta.get("grade") and remote.is_setup(meta.get("grade_id", ""))):
            return
        err = next((o for o in cell.outputs if o.get("output_type") == "error"), None)
        answered = any(nbutils.is_solution(self.nb.cells[i]) for i in self.completed if i < len(self.nb.cells))
        if err is not None and not answered:
            raise EnvironmentFault(f"the grader setup {meta['grade_id']} failed in the kernel before any answer "
                                   f"ran: {err.get('ename')}: {err.get('evalue')}")

    def _rpc_send(self, code: str):
        """Run ``code`` in the kernel as a cell of its own; (stdout, error name, error value)."""
        tmp = nbformat.v4.new_code_cell(code)
        keep = self.nb.cells[self._rpc_index]
        stopped = len(self.timeouts)
        try:
            self.execute_cell(tmp, self._rpc_index, store_history=False)
        finally:
            self.nb.cells[self._rpc_index] = keep  # nbclient stores the cell it ran at that index
        if len(self.timeouts) > stopped:
            raise self._request_timeout(self.timeouts[-1])
        text = "".join(o.get("text", "") for o in tmp.outputs
                       if o.get("output_type") == "stream" and o.get("name") == "stdout")
        err = next((o for o in tmp.outputs if o.get("output_type") == "error"), None)
        return text, (err or {}).get("ename"), (err or {}).get("evalue")

    def _socket_path(self, number: int) -> pathlib.Path:
        return pathlib.Path(self.remote_scratch) / f".ag-{self._token}-{number}.sock"

    def _rpc_listen(self) -> str | None:
        """The code that starts the agent's listener in the kernel (kernel_agent._ag_listen) at a fresh
        socket path; "" while the one connected before still serves; None once the channel failed
        (from then on, every request is a cell)."""
        if self._channel_dead:
            return None
        if self._agent_sock is not None:
            return ""
        self._listens += 1
        self._agent_path = self._socket_path(self._listens)
        return remote.LISTEN + f"\n_ag_listen({str(self._agent_path)!r}, {self._token!r})\n"

    def _rpc_close(self, dead: bool) -> None:
        if self._agent_sock is not None:
            self._agent_sock.close()
            self._agent_sock = None
        self._channel_dead = self._channel_dead or dead

    async def _async_rpc_ask(self, request: str) -> str | None:
        """Send one request to the agent's listener on its socket; its answer (the agent's marked text, or
        "" when it gave none), or None when the request must go as a cell: the agent was gone, or the
        listener failed (then for good). The limits of a request sent as a cell hold: the per-cell time
        limit (then the kernel is interrupted and CellTimeout raised), the outputs' cap (every output the
        kernel sends meanwhile is counted, as a cell's), a dead kernel (DeadKernelError)."""
        if self._agent_sock is None:
            if self._agent_path is None or not await self._async_rpc_connect():
                self._rpc_close(dead=True)
                return None
        self._asked += 1
        data = request.encode()
        limit = self._get_timeout(None)
        try:
            self._agent_sock.sendall(struct.pack("<II", self._asked, len(data)) + data)
        except OSError:
            self._rpc_close(dead=True)
            return None
        try:
            reply = await self._async_rpc_reply(self._asked, limit, interrupt=True)
        except CellTimeout:
            if self._answered != self._asked:  # not even the interrupt made it answer: the listener is broken
                self._rpc_close(dead=True)
            raise
        if reply is None or reply.get("missing") is True:
            return None
        answer = reply.get("answer")
        return answer if isinstance(answer, str) else ""

    async def _async_rpc_connect(self) -> bool:
        """Connect to the listener the last cell started; True when it says it accepted (within 3 s:
        the kernel is idle then, so it answers at once unless the notebook broke it)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(2)
            sock.connect(str(self._agent_path))
        except OSError:
            sock.close()
            return False
        sock.settimeout(self._get_timeout(None))  # a listener that stops reading cannot hold the grader
        self._agent_sock = sock
        self._answered = -1
        return await self._async_rpc_reply(0, 3, interrupt=False) is not None

    async def _async_rpc_reply(self, number: int, limit, *, interrupt: bool) -> dict | None:
        """Wait for the listener's answer to request ``number``: on its socket (the kernel published
        nothing while it served the request) or on IOPub (after what it printed), reading IOPub all the
        while and counting every output on the way; past ``limit`` seconds, interrupt the kernel (and
        raise CellTimeout once the interrupted request ended, or did not within the IOPub timeout), or
        with ``interrupt`` False give None. An unreadable frame on the socket: None (the socket is closed;
        the request goes as a cell)."""
        kc = self.kc
        sock = self._agent_sock
        poller = zmq.asyncio.Poller()
        poller.register(kc.iopub_channel.socket, zmq.POLLIN)
        if sock is not None:
            poller.register(sock.fileno(), zmq.POLLIN)
        deadline = math.inf if limit is None else time.monotonic() + limit
        stopped = False
        while True:
            left = deadline - time.monotonic()  # looked at on every message: other messages cannot hold it off
            if left <= 0:
                if stopped or not interrupt:  # interrupted, and still no end: as nbgrader's raise_on_iopub_timeout
                    break
                stopped = True
                self.timeouts.append(limit)
                await ensure_async(self.km.interrupt_kernel())
                deadline = time.monotonic() + self.iopub_timeout  # for the interrupted request to end
                continue
            ready = dict(await poller.poll(timeout=int(min(0.5, left) * 1000) + 1))
            on_socket = sock is not None and bool(ready.get(sock.fileno()))
            if on_socket:
                data = self._rpc_frame(sock)
                if data is None:
                    self._rpc_close(dead=True)
                    if stopped:
                        break
                    return None
            elif not ready:
                if not await ensure_async(kc.is_alive()):
                    raise DeadKernelError("Kernel died") from None
                continue
            else:
                try:
                    m = await kc.iopub_channel.get_msg(timeout=0)
                except queue.Empty:
                    continue
                kind, content = m["msg_type"], m["content"]
                if kind in ("stream", "display_data", "execute_result", "error", "update_display_data"):
                    self.count_output(m, self._rpc_index)  # what the learner's code prints counts, and is capped
                if kind != "comm_msg" or content.get("comm_id") != self._token:
                    continue
                data = content.get("data")
            if isinstance(data, dict) and data.get("id") == number:  # the answer, on either way
                self._answered = number
                self.answered_on_socket += on_socket and number > 0  # a request's answer, not "ready"
                if stopped:
                    break
                return data
        if stopped:
            raise self._request_timeout(limit)
        return None

    @staticmethod
    def _rpc_frame(sock: socket.socket) -> dict | None:
        """One answer frame from the listener's socket (kernel_agent._ag_listen): its number and length,
        then the JSON; None when it is cut, too long or not a JSON object."""
        def exactly(n: int) -> bytes | None:
            # a socket with a timeout is non-blocking underneath, where MSG_WAITALL may return less
            buf, got = bytearray(n), 0
            view = memoryview(buf)
            while got < n:
                k = sock.recv_into(view[got:], n - got)
                if k == 0:
                    return None
                got += k
            return bytes(buf)

        try:
            head = exactly(8)
            if head is None:
                return None
            number, size = struct.unpack("<II", head)
            if size > kernel_agent.DIRECT_MAX:
                return None
            body = exactly(size)
            if body is None:
                return None
            data = json.loads(body)
        except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested past the parser's depth
            return None
        if not isinstance(data, dict) or data.get("id") != number:
            return None
        return data

    def _request_timeout(self, limit) -> CellTimeout:
        """A request of a hidden check that the per-cell time limit stopped, in words the learner can act on."""
        return CellTimeout(f"stopped after {limit} s (the time limit of one cell) while the hidden check ran "
                           f"{getattr(self, '_check', 'your code')}: look for an endless loop, or work that grows "
                           "much faster than the inputs")


class Run:
    """One notebook execution: scratch folder, limits, watchdog state."""

    def __init__(self, *, limits: sandbox.Limits, unsafe: bool, readable=(), wall_s: float | None = None):
        self.scratch = pathlib.Path(tempfile.mkdtemp(prefix="ag-"))
        self.limits, self.unsafe, self.readable = limits, unsafe, list(readable)
        self.wall_s = wall_s
        self.kernel_process = None  # what the kernel manager's provisioner holds: a Popen or a sandbox.WarmKernel
        self.cwd: pathlib.Path | None = None  # the kernel's working folder; the scratch folder by default
        self.preflight: list[str] | None = None  # modules the kernel must import before any cell (grade sets it)
        self.timed_out = False
        self._stop = threading.Event()

    def kill_kernel(self) -> None:
        """Kill the kernel: its launcher's process group (launch_kernel starts it in its own session), or
        the lifeline of a kernel forked by the zygote."""
        try:
            sandbox.kill_process(self.kernel_process)
        except (ProcessLookupError, PermissionError):
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
        if timeout_cell is not None:
            # through the config: nbconvert re-runs the client's __init__ inside preprocess(),
            # which would reset an attribute set on the instance
            cfg = copy.deepcopy(cfg)
            cfg.Execute.timeout = int(timeout_cell)
        ex = _Executor(config=cfg, run=self, output_limit=self.limits.output_bytes,
                       remote_scratch=self.cwd or self.scratch,
                       preflight=None if self.preflight is None else list(self.preflight))
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
            stopped = None
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code" and index not in ex.completed:
                    cell["execution_count"] = None
                    stopped = index if stopped is None else stopped
            if self.timed_out and stopped is not None:  # say where the notebook's wall time ran out
                message = (f"the notebook was stopped at its wall-time limit ({self.wall_s:g} s for the whole "
                           "notebook) while this cell ran; later cells did not run")
                nb.cells[stopped].outputs.append(nbformat.v4.new_output(
                    "error", ename="TimeoutError", evalue=message, traceback=[f"TimeoutError: {message}"]))
        return time.perf_counter() - t0

    @property
    def hidden_tests(self) -> dict:
        """Where the hidden tests ran, and what asking the kernel cost (requests, seconds)."""
        client = getattr(getattr(self, "executor", None), "client", None)
        if client is None:
            return {"where": "kernel"}
        ex = self.executor
        return {"where": "grader", "requests": client.requests, "as_cells": client.cells,
                "on_socket": ex.answered_on_socket,
                "seconds": round(client.seconds, 3), "checks_s": round(ex.checks_s, 3),
                "kernel_s": round(client.kernel_seconds, 3)}

    @property
    def output_overflow(self) -> bool:
        ex = getattr(self, "executor", None)
        return bool(ex is not None and ex.output_overflow)

    def overflow_message(self) -> str:
        """Which cell printed too much, in words a TA can act on (after ``output_overflow``)."""
        ex = getattr(self, "executor", None)
        limit = human_bytes(self.limits.output_bytes or 0)
        index = getattr(ex, "output_cell", None)
        cells = getattr(getattr(ex, "nb", None), "cells", None) or []
        if index is None or not 0 <= index < len(cells):
            return f"its outputs passed {limit}, the limit of a notebook's outputs; it was stopped there"
        cell = f"the cell `{cell_headline(cells[index].source)}` (cell {index + 1})"
        if ex.cell_output_bytes.get(index, 0) > (self.limits.output_bytes or 0):
            said = f"{cell} printed more than {limit}"
        else:
            said = f"the notebook's outputs passed {limit} while {cell} ran"
        return f"{said} (the limit of a notebook's outputs); it was stopped there, later cells did not run"

    def close(self) -> None:
        self._stop.set()
        self.kill_kernel()
        sandbox.cleanup(self.scratch)


def human_bytes(n: int) -> str:
    """A size as people read it: 16 MiB, 1.5 GiB, 512 bytes."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def cell_headline(source: str, width: int = 40) -> str:
    """A cell's first line of code (comments and blank lines skipped), cut to ``width`` with `...`."""
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not lines:
        return "(empty)"
    head = lines[0]
    if len(head) > width:
        return head[:width].rstrip() + " ..."
    return head + (" ..." if len(lines) > 1 else "")


def was_run(cell) -> bool:
    """Did the kernel execute this code cell (nbgrader cleared every count before the run)?"""
    return cell.get("execution_count") is not None or any(o.get("output_type") == "error" for o in cell.get("outputs", []))


def cell_score(cell) -> tuple[float | None, float, str]:
    """(score, max_score, reason) of a grade cell.

    nbgrader's rule, with three changes: stderr output alone (torch warnings) does not zero a cell,
    only an error does, wherever it is among the outputs; a test cell that never ran (kernel died,
    wall time) scores 0; and partial credit (a test cell whose result is a single number scores that
    many points) is clamped to [0, points] (nbgrader gives full marks for a negative number and fails
    on one too large). Where the grader runs the hidden checks, only it writes such a number.
    """
    max_points = float(cell.metadata["nbgrader"]["points"])
    if cell.cell_type == "code" and not nbutils.is_solution(cell) and not was_run(cell):
        return 0.0, max_points, "not run: the kernel stopped before this cell"
    if cell.cell_type == "code" and not nbutils.is_solution(cell):
        error = next((o for o in cell.outputs if o.get("output_type") == "error"), None)
        if error is not None:  # an error anywhere zeroes the cell, whatever number came before it
            return 0.0, max_points, f"{error.get('ename', 'Error')}: {error.get('evalue', '')}".strip()
        result = next((o for o in cell.outputs if o.get("output_type") == "execute_result"), None)
        points = None if result is None else _number(result.get("data", {}).get("text/plain"))
        if points is None:  # no result, or not a number: nbgrader's rule, full marks
            return max_points, max_points, ""
        points = min(max(points, 0.0), max_points) if math.isfinite(points) else 0.0
        reason = "" if points == max_points else "partial credit: " + " ".join(  # which cases failed
            str(x.get("text", "")).strip() if x.get("output_type") == "stream"
            else str(x.get("data", {}).get("text/plain", "")).strip() for x in cell.outputs
            if (x.get("output_type") == "stream" and x.get("name") == "stdout")
            or (x.get("output_type") == "display_data" and x.get("metadata", {}).get(PARTIAL))).strip()
        return points, max_points, reason.rstrip(": ")
    score, max_points = nbutils.determine_grade(cell)
    return (None if score is None else float(score)), float(max_points), ""


def _number(text) -> float | None:
    if isinstance(text, list):
        if len(text) != 1:
            return None
        text = text[0]
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def partial_outputs(verdict, points: float) -> list:
    """The outputs a check's return value adds to its cell: none for None (full marks), else the
    cases that failed (stdout) and the points earned as the cell's result, as nbgrader reads it."""
    if verdict is None or isinstance(verdict, bool) or not isinstance(verdict, (int, float)):
        return []
    earned = min(max(float(verdict), 0.0), points) if math.isfinite(float(verdict)) else 0.0
    failures = [str(f) for f in getattr(verdict, "failures", ()) or ()]
    out = []
    if failures:  # display_data, not a stream: a stream output has no metadata to mark it as the grader's
        out.append(nbformat.v4.new_output("display_data", data={"text/plain": "".join(f"failed: {f}\n" for f in failures)},
                                          metadata={PARTIAL: True}))
    out.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(earned)},
                                      metadata={PARTIAL: True}, execution_count=None))
    return out


def failing_line(cell) -> tuple[int, str] | None:
    """(line number, source line) of the cell where its first error was raised, from the traceback."""
    for o in cell.get("outputs", []):
        if o.get("output_type") != "error":
            continue
        m = re.search(r"Cell In\[\d*\], line (\d+)", "\n".join(_plain(t) for t in o.get("traceback", [])))
        if m:
            lines = cell.source.splitlines()
            k = int(m.group(1))
            if 1 <= k <= len(lines):
                return k, lines[k - 1].strip()
        return None
    return None


def explain_timeout(cell, seconds: int) -> None:
    """Say in the cell that the per-cell time limit stopped it, after how long and at which line
    (nbclient interrupts the kernel, which shows only ``KeyboardInterrupt``)."""
    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
    at = failing_line(cell)
    where = ""
    if at and at[0] in hidden_line_numbers(cell.source):
        where = ", in the hidden tests of this cell"  # never quote a hidden line
    elif at:
        where = f", at line {at[0]}: {at[1]}"
    message = f"stopped after {seconds} s, the time limit of one cell{where}"
    if errors:
        o = errors[0]
        o.traceback = [f"TimeoutError: {message}"] + [t for t in o.get("traceback", [])
                                                       if "KeyboardInterrupt" not in _plain(t)]
        o.ename, o.evalue = "TimeoutError", message
        cell.outputs = [x for x in cell.outputs if x.get("output_type") != "error" or x is o]
    else:
        cell.outputs.append(nbformat.v4.new_output("error", ename="TimeoutError", evalue=message,
                                                   traceback=[f"TimeoutError: {message}"]))


def hidden_line_numbers(source: str) -> set[int]:
    """1-based numbers of the lines inside BEGIN/END HIDDEN TESTS regions (markers included)."""
    out, inside = set(), False
    for k, line in enumerate(source.splitlines(), 1):
        if remote.BEGIN in line:
            inside = True
        if inside:
            out.add(k)
        if remote.END in line:
            inside = False
    return out


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", str(text))
