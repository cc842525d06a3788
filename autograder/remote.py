"""Hidden tests that run in the grader's own process, reaching the learner's kernel only for data.

Why: a test that runs in the learner's kernel runs after the learner's code, and the kernel reports
its verdict. Code that patches IPython can rewrite the test or drop its error (scenarios
``rewrites-test-cells`` and ``swallows-errors``). So the hidden checks run here, in the grader's
worker process: the assignment's grader setup (assignments/toolkit.py and the assignment's checks,
with their mnlib references, loaded by assignments/loader.py) is executed here and never sent to
the kernel, and each hidden test block ``_ps_grader.check_x(A, B)`` is called here with ``Remote`` stand-ins for the
learner's ``A`` and ``B``.

A Remote forwards what the check does to it (an attribute, a call, iteration) to the kernel as a
small request, run by the agent below. What comes back is data only: numbers, strings, tensors and
arrays rebuilt here from their bytes, lists, tuples and dicts of those, or a new Remote for
anything else. Nothing the kernel sends is unpickled or executed here, so the comparison, the
references and the verdict are out of the learner's reach. The kernel can still *answer* wrongly
on purpose; to make a wrong answer pass it would have to produce the right values for the grader's
inputs, which is doing the exercise. Objects the grader passes *to* the learner's code (a network
to count, a builder function) are pickled into the kernel's scratch folder and loaded there.

The learner-facing notebook does not change: run by a learner or by ``nbgrader validate``, the
setup cell still builds ``_ps_grader`` in the kernel and the checks run there (``REMOTE`` is None).
"""
from __future__ import annotations

import __future__
import ast
import base64
import builtins
import functools
import inspect
import itertools
import json
import operator
import pathlib
import re
import sys
import time

import numpy as np

from . import kernel_agent
from .nbgrader_config import GRADER, HIDDEN_BEGIN, HIDDEN_END

BEGIN, END = HIDDEN_BEGIN, HIDDEN_END
MARK = kernel_agent.MARK
INLINE_BYTES = 4 << 20  # tensors larger than this go to the kernel as a file
OPT_IN = "RUNS_IN_GRADER = True"  # in an assignment's hidden setup: its checks are written for remote use

# The kernel side (autograder/kernel_agent.py), defined in the kernel's user namespace by the first
# request (and again whenever a request finds it gone). A notebook that replaces it can only make
# its own answers wrong: what it sends back is data, checked here.
AGENT = inspect.getsource(kernel_agent._ag_agent)
LISTEN = inspect.getsource(kernel_agent._ag_listen)  # then _ag_listen(path, token): requests on a socket


class RemoteFailure(Exception):
    """The kernel could not answer (it died, timed out, or its reply was unreadable)."""


class GraderSetupError(RuntimeError):
    """The assignment's hidden setup failed in the grader: a grader fault, never the student's."""


class LearnerError(Exception):
    """An exception of a type the grader does not know (the learner's own, or a library's)."""


class GuardHit(Exception):
    """The learner's code called into a forbidden mnlib file while the grader watched."""


_BUILTIN_ERRORS = {name: obj for name, obj in vars(builtins).items()
                   if isinstance(obj, type) and issubclass(obj, Exception)}


def remote_error(name: str, message: str) -> Exception:
    """The exception the learner's code raised, rebuilt by name (AttributeError stays one, so getattr
    with a default works); unknown or custom types become RemoteFailure's sibling, LearnerError."""
    cls = _BUILTIN_ERRORS.get(name)
    if cls is not None and cls not in (SystemExit, KeyboardInterrupt):
        try:
            return cls(message)
        except Exception:
            pass
    err = LearnerError(f"{name}: {message}")
    err.ename = name
    return err


class Remote:
    """Stands for one object in the learner's kernel; every use is a request to it."""

    __slots__ = ("_ag_client", "_ag_hid", "_ag_type", "_ag_is_module")

    def __init__(self, client, hid, type_name, is_module):
        object.__setattr__(self, "_ag_client", client)
        object.__setattr__(self, "_ag_hid", hid)
        object.__setattr__(self, "_ag_type", type_name)
        object.__setattr__(self, "_ag_is_module", is_module)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        if name in METHODS:  # m.eval(): one request for the call, none for the attribute
            return Method(self, name)
        return self._ag_client.request({"op": "getattr", "h": self._ag_hid, "name": name})

    def __call__(self, *args, **kwargs):
        return self._ag_client.call(self, args, kwargs)

    def __iter__(self):
        return iter(self._ag_client.request({"op": "list", "h": self._ag_hid}))

    def __len__(self):
        return self._ag_client.request({"op": "len", "h": self._ag_hid})

    def __getitem__(self, key):
        return self._ag_client.request({"op": "getitem", "h": self._ag_hid, "key": self._ag_client.encode(key)})

    def __eq__(self, other):
        return isinstance(other, Remote) and other._ag_hid == self._ag_hid

    def __hash__(self):
        return hash(self._ag_hid)

    def __repr__(self):
        return f"<learner's {self._ag_type}>"


# Names the checks only ever call (module and helper methods): ``obj.name`` costs no request, and
# ``obj.name(...)`` one. Any other attribute is fetched when it is read.
METHODS = frozenset({"eval", "train", "state_dict", "load_state_dict", "parameters", "named_parameters",
                     "modules", "named_modules", "children", "forward", "run", "fn", "sync", "clock",
                     "describe", "close", "new_axes"})


class Method:
    """``obj.name`` for a method name in METHODS: called, it is one request; passed on, it is sent as
    a reference to the attribute (the kernel looks it up when it decodes the arguments)."""

    __slots__ = ("owner", "name")

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __call__(self, *args, **kwargs):
        return self.owner._ag_client.call(self.owner, args, kwargs, attr=self.name)

    def __repr__(self):
        return f"<method {self.name} of {self.owner!r}>"


class Client:
    """Sends requests to the kernel through the executor: the first as a hidden cell of its own, which
    defines the agent and starts its listener; the others on the listener's socket (a cell again
    whenever the notebook removed the agent or broke the listener)."""

    # the toolkit reaches these through its client, without importing autograder (its GraderClient Protocol)
    Remote, LearnerError, GuardHit, RemoteFailure = Remote, LearnerError, GuardHit, RemoteFailure

    def __init__(self, send, scratch: pathlib.Path, ask=None, listen=None):
        self._send = send  # code -> (stdout text, error name or None, error value)
        # request (JSON) -> the agent's answer text, or None to send it as a cell (the agent or the
        # listener is gone): the request to the listener that the first request (a cell) starts;
        # listen() -> the code that starts it ("" while the one started before still serves).
        # None: every request is a cell
        self._ask, self._listen = (ask, listen) if ask is not None and listen is not None else (None, None)
        self._listening = False
        self.scratch = pathlib.Path(scratch)
        self._files = itertools.count()
        self.guard_files: tuple[str, ...] | None = None  # set by the toolkit's Guard while it watches
        self.requests = 0
        self.cells = 0  # requests sent as a cell (the first, and those after the notebook broke the listener)
        self._agent_sent = False
        self.seconds = 0.0  # spent waiting for the kernel's answers
        # of which, the kernel says, its work on them (its own clock: benchmarks read it, never grading)
        self.kernel_seconds = 0.0

    # ---------------------------------------------------------------- encoding
    def encode(self, v, depth=0):
        import torch
        if v is None or type(v) in (bool, str, int):
            return v
        if type(v) is float:
            return v if np.isfinite(v) else {"$float": repr(v)}
        if isinstance(v, Remote):
            return {"$h": v._ag_hid}
        if isinstance(v, Method):
            return {"$attr": [v.owner._ag_hid, v.name]}
        if depth > 8:
            raise ValueError("arguments nested too deep")
        if type(v) is torch.Tensor and v.element_size() * v.numel() <= INLINE_BYTES and v.dtype != torch.bfloat16 \
                and not v.is_complex():
            x = v.detach().cpu().contiguous()
            return {"$tensor": [str(x.dtype).replace("torch.", ""), list(x.shape),
                                base64.b64encode(x.numpy().tobytes()).decode()]}
        if type(v) is np.ndarray and v.dtype.kind in "biuf":
            a = np.ascontiguousarray(v).reshape(v.shape)  # ascontiguousarray makes a 0-d array 1-d
            return {"$ndarray": [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode()]}
        if type(v) is list:
            return [self.encode(x, depth + 1) for x in v]
        if type(v) is tuple:
            return {"$tuple": [self.encode(x, depth + 1) for x in v]}
        if type(v) is dict:
            return {"$dict": [[self.encode(k, depth + 1), self.encode(x, depth + 1)] for k, x in v.items()]}
        if isinstance(v, torch.dtype):
            return {"$dtype": str(v).replace("torch.", "")}
        # a network, a builder function, a large tensor: pickled into the kernel's folder
        path = self.scratch / f"_grader_input_{next(self._files)}.pt"
        torch.save(v, path)
        return {"$file": path.name}

    def decode(self, v):
        import torch
        if isinstance(v, list):
            return [self.decode(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "$h" in v:
            return Remote(self, v["$h"], v.get("type", "object"), bool(v.get("module")))
        if "$tensor" in v:
            name, shape, data = v["$tensor"]
            dtype = getattr(torch, name) if isinstance(name, str) and re.fullmatch(r"[a-z0-9]+", name) else None
            if not isinstance(dtype, torch.dtype):
                raise RemoteFailure(f"the kernel sent a tensor of unknown dtype {name!r}")
            np_dtype = np.float32 if dtype == torch.bfloat16 else torch.empty(0, dtype=dtype).numpy().dtype
            raw = np.frombuffer(base64.b64decode(data), dtype=np_dtype).copy()
            return torch.from_numpy(raw).reshape([int(s) for s in shape]).to(dtype)
        if "$ndarray" in v:
            dt, shape, data = v["$ndarray"]
            dtype = np.dtype(dt)
            if dtype.kind not in "biuf":
                raise RemoteFailure(f"the kernel sent an array of dtype {dt!r}")
            return np.frombuffer(base64.b64decode(data), dtype=dtype).copy().reshape([int(s) for s in shape])
        if "$npscalar" in v:
            dt, data = v["$npscalar"]
            dtype = np.dtype(dt)
            if dtype.kind not in "biuf":
                raise RemoteFailure(f"the kernel sent a scalar of dtype {dt!r}")
            return np.frombuffer(base64.b64decode(data), dtype=dtype)[0]
        if "$tuple" in v:
            return tuple(self.decode(x) for x in v["$tuple"])
        if "$dict" in v:
            return {self._key(self.decode(k)): self.decode(x) for k, x in v["$dict"]}
        if "$float" in v:
            return float(v["$float"])
        if "$dtype" in v:
            dtype = getattr(torch, str(v["$dtype"]), None)
            if not isinstance(dtype, torch.dtype):
                raise RemoteFailure(f"unknown dtype {v['$dtype']!r}")
            return dtype
        raise RemoteFailure(f"unreadable reply from the kernel: {str(v)[:80]}")

    @staticmethod
    def _key(k):
        try:
            hash(k)
            return k
        except TypeError:
            raise RemoteFailure("the kernel sent a dict with an unhashable key") from None

    # ---------------------------------------------------------------- requests
    def request(self, req: dict):
        self.requests += 1
        body = json.dumps(req)
        t0 = time.perf_counter()
        text, ename, evalue = None, None, None
        if self._listening:
            text = self._ask(body)
            if text is None:  # the notebook deleted the agent, or broke the listener: a cell, defining both
                self._agent_sent = False
        if text is None:
            call = f"_ag_agent({json.dumps(body)})\n"
            # defining the agent costs a cell ~10 ms, a call ~5 ms: define it once, again if it is gone;
            # the listener last: if the notebook broke it, the answer is printed all the same
            listen = self._listen() if self._listen is not None and not self._agent_sent else None
            defined = not self._agent_sent
            self.cells += 1
            text, ename, evalue = self._send(defining(call, listen) if defined else call)
            if ename == "NameError" and "_ag_agent" in str(evalue) and MARK not in text:
                defined = True
                self.cells += 1
                text, ename, evalue = self._send(defining(call, listen))
            if defined and ename is not None and MARK not in text:  # a notebook that rebound exec or compile
                self.cells += 1
                text, ename, evalue = self._send(AGENT + "\n" + call + (listen or ""))
            self._agent_sent = True
            if defined:  # later requests on the listener's socket, if it started
                self._listening = listen is not None and ename is None and MARK in text
        self.seconds += time.perf_counter() - t0
        parts = text.split(MARK)
        if len(parts) < 3:
            if ename:
                raise RemoteFailure(f"{ename}: {evalue}".strip().rstrip(":"))
            raise RemoteFailure("the kernel gave no answer (its output was redirected or it stopped)")
        try:
            payload = json.loads(parts[-2])
        except ValueError:
            raise RemoteFailure("the kernel's answer was not readable") from None
        if not isinstance(payload, dict):
            raise RemoteFailure("the kernel's answer was not readable")
        said = payload.get("s")
        if type(said) is float and 0.0 <= said <= time.perf_counter() - t0:
            self.kernel_seconds += said
        if "$err" in payload:
            raise remote_error(*[str(x) for x in payload["$err"][:2]])
        if "$cheat" in payload:
            raise GuardHit(str(payload["$cheat"]))
        if "ok" not in payload:
            raise RemoteFailure("the kernel's answer was not readable")
        return self.decode(payload["ok"])

    def call(self, fn: Remote, args, kwargs, attr: str | None = None):
        req = {"op": "call", "h": fn._ag_hid, "args": self.encode(list(args)),
               "kwargs": {"$dict": [[k, self.encode(v)] for k, v in kwargs.items()]}}
        if attr is not None:
            req["attr"] = attr
        if self.guard_files:
            req["guard"] = list(self.guard_files)
        return self.request(req)

    def evaluate(self, src: str, **names):
        """``eval(src)`` in the kernel with ``names`` bound (trusted expression, learner's objects)."""
        req = {"op": "eval", "src": src, "names": {"$dict": [[k, self.encode(v)] for k, v in names.items()]}}
        if self.guard_files:
            req["guard"] = list(self.guard_files)
        return self.request(req)

    def define(self, src: str, name: str) -> Remote:
        """Run trusted helper code (a class, a function) in the kernel; return ``name`` from it."""
        return self.request({"op": "define", "src": src, "name": name})

    def scan(self, obj: Remote, what: str, guard_source: str) -> None:
        import hashlib
        self.request({"op": "scan", "h": obj._ag_hid, "what": what, "guard": guard_source,
                      "digest": hashlib.sha256(guard_source.encode()).hexdigest()[:16]})

    def learner_global(self, name: str):
        return self.request({"op": "global", "name": name})


def defining(call: str, listen: str | None) -> str:
    """The cell that defines the agent, calls it, then starts the listener (``listen``, if any). Each
    definition is one line that runs its source, a string literal: IPython's input transformers read
    a 250-line cell token by token (a cell defining the agent and its listener took ~24 ms, these lines
    ~10 ms). Where the notebook rebound ``exec`` or ``compile`` the cell fails before the call's answer,
    and the client sends the plain source instead."""
    line = "exec(compile({!r}, '<autograder agent>', 'exec'))\n"
    return line.format(AGENT) + call + (line.format(listen) if listen else "")


# ---------------------------------------------------------------- the notebook's cells

def split_hidden(source: str) -> tuple[str, str] | None:
    """(visible part, hidden block) of a cell with one hidden block, or None."""
    if BEGIN not in source or END not in source:
        return None
    before, rest = source.split(BEGIN, 1)
    hidden, after = rest.split(END, 1)
    return before + after.lstrip("\n"), hidden.strip("\n")


def is_setup(grade_id: str) -> bool:
    return grade_id.endswith("_grader_setup")


def check_call(hidden: str) -> tuple[str, list[str]]:
    """The hidden block of a test cell must be ``_ps_grader.check_x(NAME, ...)``: (check_x, names)."""
    tree = ast.parse(hidden)
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        raise ValueError("a hidden test block must be one call of _ps_grader.check_...")
    call = tree.body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name) and call.func.value.id == GRADER
            and call.func.attr.startswith("check_") and not call.keywords
            and all(isinstance(a, ast.Name) for a in call.args)):
        raise ValueError("a hidden test block must be _ps_grader.check_x(NAME, ...) with plain names")
    return call.func.attr, [a.id for a in call.args]


def supports_remote(nb) -> bool:
    """Can this notebook's hidden tests run in the grader? (every hidden block has the check form)"""
    from nbgrader import utils as nbutils
    has_setup = False
    for cell in nb.cells:
        if cell.cell_type != "code" or not nbutils.is_grade(cell):
            continue
        parts = split_hidden(cell.source)
        if parts is None:
            continue
        if is_setup(cell.metadata["nbgrader"]["grade_id"]):
            has_setup = OPT_IN in parts[1]
            continue
        try:
            check_call(parts[1])
        except (ValueError, SyntaxError):
            return False
    return has_setup


@functools.lru_cache(maxsize=8)
def _compiled_setup(hidden: str):
    """The setup's code object, compiled once per worker (the toolkit and the checks: ~20 ms a notebook);
    it runs afresh, in a new namespace, for every notebook."""
    return compile(hidden, "grader_setup", "exec")


_FUTURE_FLAGS = functools.reduce(operator.or_, (getattr(__future__, name).compiler_flag
                                                for name in __future__.all_feature_names))


@functools.lru_cache(maxsize=32)
def _compile_once(source: str, filename: str, mode: str, flags: int, optimize: int):
    return compile(source, filename, mode, flags, True, optimize)


def _setup_compile(source, filename, mode, flags=0, dont_inherit=False, optimize=-1):
    """``compile`` as the setup's loader sees it (assignments/loader.py compiles the toolkit and the checks,
    ~14 ms a notebook): the same code object for the same text, name and flags, compiled once per worker.
    A code object is immutable, and each notebook's setup still executes it in new modules. The flags a
    plain call would inherit (the calling code's ``from __future__`` features) are taken from the caller, as
    compile does; an AST or a non-text source is compiled afresh."""
    if not dont_inherit:
        flags |= sys._getframe(1).f_code.co_flags & _FUTURE_FLAGS
    if type(source) is str and type(filename) is str and not flags & ast.PyCF_ONLY_AST:
        return _compile_once(source, filename, mode, flags, optimize)
    return compile(source, filename, mode, flags, True, optimize)


def run_setup(hidden: str, client: Client):
    """Execute the setup cell's hidden block here; return the grader namespace it builds."""
    ns = {"__name__": "grader_setup", "_AG_REMOTE": client,
          "__builtins__": {**vars(builtins), "compile": _setup_compile}}
    exec(_compiled_setup(hidden), ns)
    if GRADER not in ns:
        raise RuntimeError("the grader setup did not define " + GRADER)
    return ns[GRADER]
