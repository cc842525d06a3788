"""The graders' private toolkit: what every assignment's hidden checks import (need, Fail, Guard, ...).

An assignment's checks (assignments/<id>/checks.py) say ``from assignments.toolkit import ...``.
assignments/build.py pastes this file's text, the assignment's own texts and the loader
(assignments/loader.py) into a hidden 0-point grade cell that runs before any answer cell. The
loader executes them as private module objects, never registered in ``sys.modules``, whose
``__builtins__`` is a *copy* of the builtins dict (its ``__import__`` resolves ``assignments.*`` to
these private modules). So, by construction:

- what the checks compare with was computed by mnlib before any answer cell ran (patching mnlib
  afterwards, or mutating its functions' code, changes nothing);
- ``torch.allclose``, ``torch.equal``, ``math.isclose`` and the builtins the checks use are the
  references taken then (import ``allclose``, ``equal``, ``isclose`` from here, not ``torch.allclose``
  at check time): an answer cell that replaces ``torch.allclose`` or ``builtins.abs`` changes the
  student's world, not the grader's;
- answers are compared as plain values: a number is converted to a Python float or int first
  (``real_value``, ``int_value``: every kind of number the notebooks' words allow, numpy scalars
  and one-element arrays and tensors included, bool refused), a tensor must be ``type(t) is torch.Tensor``;
  so an object whose ``__eq__`` always says True, or a tensor subclass that fakes ``allclose``,
  changes nothing;
- an answer that *is* mnlib's implementation, references it (globals, closures, defaults, class
  bases, submodules), or calls into the forbidden mnlib modules while it runs (a profile hook sees
  every Python frame, whatever name the call went through) fails with "the exercise is to write it".

Outcomes are types: ``Fail`` is a failed check; ``NotOwnWork`` (an answer that uses mnlib, or what
the notebook asks to write by hand) and ``ProfilerTampered`` (an answer that replaced the grader's
profile hook) are Fails that fail the whole check at once, never one case of it (``each_case``,
``Cases``), whatever their messages say.

Limits (documented, not hidden): the answer cells run in the same kernel. Code that walks
``globals()`` or the garbage collector to find and overwrite the grader's objects, patches torch's
C kernels, or kills the kernel is not stopped here; the first two need knowing this file, and the
last gives no grade at all (the pipeline reports it). The checks never read stderr.

Where the checks run. In a learner's kernel (self-checking, ``nbgrader validate``) all of the above
happens there, and the limits above apply. The course's autograder runs this file and the checks
in its own process instead (autograder/remote.py): ``REMOTE`` is then its client (what this file
uses of it is ``GraderClient`` below), the learner's objects arrive as stand-ins whose every use is
a request to the kernel, and only data comes back. The references and the verdicts never enter the
kernel, so code there can neither read nor rewrite them. ``scan`` and ``Guard`` then run their
watch in the kernel around each request (``scan`` by sending this file's text, ``GUARD_SOURCE``).

This file must stay loadable on its own in the learner's kernel (the grader's ``scan`` runs its
text there): it imports only the standard library, numpy, torch and mnlib, never ``autograder``.
"""
import math
import numbers
import os
import sys
import types
from typing import Any, Protocol

import numpy as np
import torch

# References taken before any answer cell ran.
allclose = torch.allclose
equal = torch.equal
isclose = math.isclose
Tensor = torch.Tensor
Module = torch.nn.Module
FunctionType, MethodType, ModuleType = types.FunctionType, types.MethodType, types.ModuleType
CodeType = types.CodeType
_setprofile, _getprofile = sys.setprofile, sys.getprofile

import mnlib  # noqa: E402  (after the references: importing it runs no answer code)


class GraderClient(Protocol):
    """What this toolkit uses of ``autograder.remote.Client``, the grader's link to the learner's kernel.

    Stated here rather than imported: this file also runs in the learner's kernel, where autograder
    is not installed. tests/test_remote.py checks that Client has every member, with a compatible
    signature, and that this file uses no other.
    """

    Remote: type  # the class of the stand-ins for the learner's objects
    LearnerError: type  # an error of a type the grader does not know; ``.ename`` names it
    GuardHit: type  # the learner's code called a forbidden mnlib file (its str: where), or "profiler"
    RemoteFailure: type  # the kernel could not answer: not an error of the learner's code
    guard_files: tuple[str, ...] | None  # the mnlib files watched during each request while set

    def evaluate(self, src: str, **names: Any) -> Any:
        """``eval(src)`` in the kernel with ``names`` bound."""

    def define(self, src: str, name: str) -> Any:
        """Run trusted helper code in the kernel; return (a stand-in for) ``name`` from it."""

    def scan(self, obj: Any, what: str, guard_source: str) -> None:
        """Run this file's ``scan(obj, what)`` in the kernel, from its text ``guard_source``."""


# Set by the loader (assignments/loader.py) before this text runs: the client when the grader runs
# these checks in its own process (else None), and this file's text, for the watch in the kernel.
REMOTE: GraderClient | None = globals().get("REMOTE")
GUARD_SOURCE: str | None = globals().get("GUARD_SOURCE")


def remote(value):
    """Is ``value`` a stand-in for an object in the learner's kernel?"""
    return REMOTE is not None and isinstance(value, REMOTE.Remote)


def _learner_failure(exc):
    """A Fail raised by the watch in the kernel comes back as the learner's error: make it the same Fail again."""
    if REMOTE is None or not isinstance(exc, REMOTE.LearnerError):
        return None
    cls = {c.__name__: c for c in (Fail, NotOwnWork, ProfilerTampered)}.get(getattr(exc, "ename", ""))
    return cls(str(exc).split(": ", 1)[-1]) if cls else None

MNLIB_DIR = os.path.dirname(os.path.abspath(mnlib.__file__)) + os.sep
CHEAT = ("{what} uses mnlib ({detail}); the exercise is to write it yourself: "
         "do not import, call, subclass or return anything from mnlib in your answers")


class Fail(AssertionError):
    """A failed check; its message tells the learner what was expected, not the answer."""


class NotOwnWork(Fail):
    """The answer uses mnlib (or what the notebook asks to write by hand): the whole check fails."""


class ProfilerTampered(Fail):
    """The answer replaced the profile hook the grader watches it with: the whole check fails."""


# Fails that are a verdict on the whole answer, never on one case of it (each_case, Cases).
WHOLE_CHECK = (NotOwnWork, ProfilerTampered)
TAMPERED = "{what} changed the profiler the grader uses to watch it; leave sys.setprofile alone"


def _is_mnlib_name(name):
    return type(name) is str and (name == "mnlib" or name.startswith("mnlib."))


def _mnlib_origin(value):
    """Why ``value`` belongs to mnlib, or None."""
    if type(value) is ModuleType:
        return "module " + value.__name__ if _is_mnlib_name(value.__name__) else None
    mod = getattr(type(value), "__module__", None) if not isinstance(value, type) else None
    own = getattr(value, "__module__", None)
    if _is_mnlib_name(own):
        return f"{getattr(value, '__qualname__', type(value).__name__)} from {own}"
    if isinstance(value, type):
        for base in value.__mro__:
            if _is_mnlib_name(getattr(base, "__module__", None)):
                return f"class {value.__name__} derives from {base.__module__}.{base.__name__}"
    elif _is_mnlib_name(mod) and not isinstance(value, (int, float, str, tuple)):
        return f"an instance of {mod}.{type(value).__name__}"
    code = getattr(value, "__code__", None)
    if type(code) is CodeType and code.co_filename.startswith(MNLIB_DIR):
        return f"code from {code.co_filename}"
    return None


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if type(const) is CodeType:
            yield from _code_objects(const)


def scan(obj, what, _seen=None):
    """Fail if ``obj`` is, references or is built from mnlib (static: no answer code runs)."""
    if remote(obj):  # the same scan, run where the object lives
        try:
            REMOTE.scan(obj, what, GUARD_SOURCE)
        except Exception as exc:
            raise (_learner_failure(exc) or exc) from None
        return
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    origin = _mnlib_origin(obj)
    if origin:
        raise NotOwnWork(CHEAT.format(what=what, detail=origin))
    if isinstance(obj, Module):
        for name, sub in obj.named_modules():
            origin = _mnlib_origin(sub)
            if origin:
                raise NotOwnWork(CHEAT.format(what=what, detail=f"submodule {name!r} is {origin}"))
        scan(type(obj), what, seen)
        return
    if isinstance(obj, MethodType):
        scan(obj.__func__, what, seen)
        return
    if isinstance(obj, type):
        for base in obj.__mro__:
            if base.__module__ in ("builtins",) or base.__module__.startswith("torch"):
                continue
            for attr in vars(base).values():
                attr = getattr(attr, "__func__", attr)  # staticmethod / classmethod
                if isinstance(attr, property):
                    for f in (attr.fget, attr.fset):
                        if f is not None:
                            scan(f, what, seen)
                elif isinstance(attr, (FunctionType, type)):
                    scan(attr, what, seen)
        return
    func = getattr(obj, "func", None)  # functools.partial
    if func is not None and not isinstance(obj, FunctionType):
        scan(func, what, seen)
        for arg in tuple(getattr(obj, "args", ())) + tuple((getattr(obj, "keywords", None) or {}).values()):
            scan(arg, what, seen)
        return
    if not isinstance(obj, FunctionType):
        return
    glb = obj.__globals__
    for code in _code_objects(obj.__code__):
        if code.co_filename.startswith(MNLIB_DIR):
            raise NotOwnWork(CHEAT.format(what=what, detail=f"code from {code.co_filename}"))
        for name in code.co_names:
            if _is_mnlib_name(name):
                raise NotOwnWork(CHEAT.format(what=what, detail=f"it names {name!r}"))
            if name in glb:
                scan(glb[name], what, seen)
    for cell in obj.__closure__ or ():
        try:
            scan(cell.cell_contents, what, seen)
        except ValueError:  # an empty cell
            pass
    for default in (obj.__defaults__ or ()) + tuple((obj.__kwdefaults__ or {}).values()):
        scan(default, what, seen)


class Guard:
    """While active, records any Python frame that runs code from a forbidden mnlib file."""

    def __init__(self, forbidden):
        self.files = tuple(MNLIB_DIR + f for f in forbidden)
        self.hit = None
        self.hook = self._hook  # one bound method, so sys.getprofile() can be compared by identity

    def _hook(self, frame, event, arg):
        if event == "call" and self.hit is None and frame.f_code.co_filename.startswith(self.files):
            self.hit = f"{frame.f_code.co_filename.rsplit(os.sep, 1)[-1]}:{frame.f_code.co_name}"

    def call(self, what, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` watched; an error in the learner's code fails naming the call that raised."""
        try:
            return self._call(what, fn, *args, **kwargs)
        except Fail:
            raise
        except Exception as exc:
            if REMOTE is not None and isinstance(exc, getattr(REMOTE, "RemoteFailure", ())):
                raise  # the kernel stopped answering: not an error of the learner's code
            name = getattr(exc, "ename", None) or type(exc).__name__
            message = str(exc).split(": ", 1)[-1] if getattr(exc, "ename", None) else str(exc)
            raise Fail(f"{call_shown(what, args, kwargs)} raised {name}: {message}") from None

    def _call(self, what, fn, *args, **kwargs):
        if REMOTE is not None:
            return self._call_remote(what, fn, *args, **kwargs)
        previous = _getprofile()
        _setprofile(self.hook)
        try:
            result = fn(*args, **kwargs)
        finally:
            tampered = _getprofile() is not self.hook
            _setprofile(previous)
        if tampered:
            raise ProfilerTampered(TAMPERED.format(what=what))
        if self.hit is not None:
            detail, self.hit = self.hit, None
            raise NotOwnWork(CHEAT.format(what=what, detail=f"it called {detail}"))
        return result


    def _call_remote(self, what, fn, *args, **kwargs):
        # every request made while fn runs carries the forbidden files; the kernel watches each one
        before = REMOTE.guard_files
        REMOTE.guard_files = tuple(f[len(MNLIB_DIR):] for f in self.files)
        try:
            return fn(*args, **kwargs)
        except REMOTE.GuardHit as hit:
            if str(hit) == "profiler":
                raise ProfilerTampered(TAMPERED.format(what=what)) from None
            raise NotOwnWork(CHEAT.format(what=what, detail=f"it called {hit}")) from None
        finally:
            REMOTE.guard_files = before


def is_module(value):
    """A torch.nn.Module here, or a stand-in for one in the learner's kernel."""
    return isinstance(value, Module) or (remote(value) and value._ag_is_module)


def kernel_eval(src, **names):
    """``eval(src)`` with ``names`` bound, where the objects live (here, or in the learner's kernel)."""
    if any(remote(v) for v in names.values()):
        return REMOTE.evaluate(src, **names)
    return eval(src, {"torch": torch, "math": math}, dict(names))


def kernel_define(src, name):
    """``name`` from the grader's helper code ``src`` (a text, or a module the loader made, such as
    an assignment's kernel helpers), defined where the learner's code runs."""
    if isinstance(src, ModuleType):
        src = src.__loader__.get_source(src.__name__)
    if REMOTE is not None:
        return REMOTE.define(src, name)
    env = {"__name__": "grader_helpers"}
    exec(src, env)
    return env[name]


def need(condition, message):
    if not condition:
        raise Fail(message)


def need_own(condition, message):
    """``need`` for an answer that must be the learner's own work: a failure fails the whole check."""
    if not condition:
        raise NotOwnWork(message)


def kind(value):
    """The type name of ``value`` for a message (a stand-in names the learner's type, never itself)."""
    if remote(value):
        return value._ag_type.rsplit(".", 1)[-1]
    return type(value).__name__


def shown(value):
    """``value`` as a message may show it: numbers and short tuples in full, a tensor by its shape."""
    if value is None or type(value) in (bool, int, float, str):
        return repr(value)
    if isinstance(value, Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor of shape {tuple(value.shape)}"
    if type(value) in (list, tuple) and len(value) <= 12 and all(type(v) in (int, float, tuple, list) for v in value):
        return repr(value)
    if remote(value) or isinstance(value, (FunctionType, MethodType)):
        return "your " + (kind(value) if remote(value) else getattr(value, "__name__", "function"))
    return "a " + kind(value)


def call_shown(what, args=(), kwargs=None):
    """``what(args...)`` for a message, unless ``what`` already says which call it was."""
    if "(" in what or not (args or kwargs):
        return what
    parts = [shown(a) for a in args] + [f"{k}={shown(v)}" for k, v in (kwargs or {}).items()]
    return f"{what}({', '.join(parts)})"


def off_by(value, expected):
    """How far ``value`` is from ``expected`` in words, without giving ``expected`` away."""
    ratio = value / expected
    if ratio > 0 and 0.5 <= ratio <= 2 and not isclose(ratio, 2) and not isclose(ratio, 0.5):
        return f"{100 * abs(ratio - 1):.2g}% too {'high' if ratio > 1 else 'low'}"
    return f"about {ratio:.3g} times the right value"


def _scalar_kind(value):
    """'int', 'float' or None: what a value that the words "a number" allow holds.

    Accepted: Python int and float (and their subclasses, numpy.float64 among them), numpy integer
    and floating scalars, numpy arrays and torch tensors holding one element (0-d, or shape (1,)
    and the like) of an integer or floating dtype, and (in the learner's own kernel) any other
    ``numbers.Real`` such as ``fractions.Fraction``. One element, not only 0-d: the text allows
    "a one-element tensor", and both ways of grading must agree (since commit 194d67f a 0-d array
    crosses from the kernel to the course grader as 0-d, no longer as shape (1,)).
    Refused: bool and numpy.bool_ (a truth value is not a count), complex, strings, lists and tuples
    (a list of one number is not a number), and arrays or tensors of more than one element.
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, (Tensor, np.ndarray)):
        if (value.numel() if isinstance(value, Tensor) else value.size) != 1:
            return None
        dt = value.dtype
        if isinstance(value, Tensor):
            return None if dt == torch.bool or dt.is_complex else ("float" if dt.is_floating_point else "int")
        return {"i": "int", "u": "int", "f": "float"}.get(dt.kind)
    if not remote(value) and isinstance(value, numbers.Real):
        return "int" if isinstance(value, numbers.Integral) else "float"
    return None


def real_value(value, what):
    """``value`` as a Python float, if the words "a number" allow it (see ``_scalar_kind``), else Fail."""
    k = _scalar_kind(value)
    need(k is not None, f"{what} should be a number, got {kind(value)}"
         + (f" of shape {tuple(value.shape)} (a number is one value)"
            if isinstance(value, (Tensor, np.ndarray)) and tuple(value.shape) != () else ""))
    if isinstance(value, (Tensor, np.ndarray)):
        value = value.reshape(()).item()
    if k == "int":
        return float(int(value))
    return float(value)


def int_value(value, what):
    """``value`` as a Python int, if it is an integer the words "an integer" allow, else Fail.

    Python and numpy integers and 0-d integer arrays and tensors are integers; a float is not (a
    count returned as 3.0 says the formula divided somewhere), nor is a bool.
    """
    k = _scalar_kind(value)
    need(k == "int", f"{what} should be an integer, got {kind(value)}"
         + (" (a float: a count is a whole number, returned as an int)" if k == "float" else ""))
    return int(value.reshape(()).item()) if isinstance(value, (Tensor, np.ndarray)) else int(value)


def same_int(value, expected, what):
    """An exact integer (an int, numpy integer or 0-d integer array/tensor; not a float or a bool)."""
    value = int_value(value, what)
    need(value == expected, f"{what}: your count is wrong ({off_by(value, expected)})"
         if expected else f"{what}: expected 0")


def close_float(value, expected, what, rel=1e-9):
    """A number close to ``expected``: any value the words "a number" allow (see ``_scalar_kind``)."""
    value = real_value(value, what)
    need(isclose(value, expected, rel_tol=rel, abs_tol=1e-12),
         f"{what}: your value is off ({off_by(value, expected)})" if expected else f"{what}: expected 0")


def without_defaults(args, defaults):
    """``args`` (a full positional call) with its trailing values that equal the signature's ``defaults``
    (aligned at the end) left out: the case then runs the learner's own defaults, so a wrong default
    fails it. A value equals a default only with the same type (1 and 1.0 differ)."""
    args, defaults = list(args), list(defaults)
    while args and defaults and type(args[-1]) is type(defaults[-1]) and args[-1] == defaults[-1]:
        args.pop()
        defaults.pop()
    return tuple(args)


def plain_tensor(value, what):
    need(type(value) is Tensor, f"{what} should be a torch.Tensor (not a subclass), got {kind(value)}")
    return value


SHOWN_CASES = 4


def each_case(what, cases, check):
    """Run ``check(case)`` for every case, then fail once naming each case that failed.

    A message says which case (shapes, strides, kernel sizes), never the expected value. A
    ``NotOwnWork`` or ``ProfilerTampered`` stops at once: that is not a per-case verdict.
    """
    cases, failed = list(cases), []
    for case in cases:
        try:
            check(case)
        except WHOLE_CHECK:
            raise
        except Fail as exc:
            failed.append(str(exc))
    if not failed:
        return
    if len(cases) == 1:
        raise Fail(failed[0])
    listed = failed[:SHOWN_CASES] + ([f"... and {len(failed) - SHOWN_CASES} more"] if len(failed) > SHOWN_CASES else [])
    raise Fail(f"{what}: {len(failed)} of {len(cases)} cases failed:\n" + "\n".join("- " + t for t in listed))


def close_tensor(value, expected, what, rtol=1e-4, atol=1e-5):
    plain_tensor(value, what)
    need(tuple(value.shape) == tuple(expected.shape),
         f"{what}: expected shape {tuple(expected.shape)}, got {tuple(value.shape)}")
    need(value.dtype == expected.dtype, f"{what}: expected dtype {expected.dtype}, got {value.dtype}")
    need(allclose(value.detach(), expected, rtol=rtol, atol=atol),
         f"{what}: the values differ from the reference (largest difference "
         f"{(value.detach() - expected).abs().max().item():.3g})")


def load_by_position(module, tensors, what):
    """Copy reference tensors into ``module``'s state_dict entries in order (shapes must agree)."""
    need(is_module(module), f"{what} should be a torch.nn.Module")
    state = module.state_dict()
    need(len(state) == len(tensors),
         f"{what} has {len(state)} parameters and buffers; the layer order the notebook describes "
         f"gives {len(tensors)} (check which layers you created, in which order)")
    for (name, mine), ref in zip(state.items(), tensors):
        need(tuple(mine.shape) == tuple(ref.shape),
             f"{what}: {name} has shape {tuple(mine.shape)} where the layer the notebook lists at that position "
             f"needs {tuple(ref.shape)}: the grader loads the reference weights in the order the notebook lists "
             "the layers, and a module's parameters follow the order its layers are created in __init__ (create "
             "them in the listed order, with the listed sizes)")
    module.load_state_dict(dict(zip(state.keys(), tensors)))
    return module


def check_reference_outputs(guard, make, args, x, state, y, what):
    """Build ``make(*args)``, load the reference weights and BN statistics, compare its eval output with ``y``."""
    m = guard.call(what, make, *args)
    load_by_position(m, [t.clone() for t in state], what)
    m.eval()
    with torch.no_grad():
        out = guard.call(what, m, x.clone())  # a copy: a forward that writes into its input must not change the grader's x
    close_tensor(out, y, what + " with the reference weights and BN statistics, in eval mode")
    return m


def n_params(module):
    return kernel_eval("sum(p.numel() for p in m.parameters())", m=module)


def reference_state(module, seed):
    """Give ``module`` random weights *and* BN statistics (so BN is not the identity); return its tensors."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.5)
    module.eval()
    return [t.clone() for t in module.state_dict().values()]


# ---------------------------------------------------------------- probes
# Plain functions that gather data where the learner's objects live (``kernel_function`` defines
# them in the learner's kernel when the grader runs the checks itself); the verdict is computed here.

def kernel_function(name):
    """This file's function ``name``, defined where the learner's code runs (it imports what it uses)."""
    if GUARD_SOURCE is None:
        return globals()[name]
    import ast
    node = next(n for n in ast.parse(GUARD_SOURCE).body if isinstance(n, ast.FunctionDef)
                and n.name == name)
    return kernel_define(ast.get_source_segment(GUARD_SOURCE, node), name)


def trace_layers(model, x, partial=False):
    """(probe) Run ``model(x)`` in eval mode without gradients; one plain dict per call of a leaf module.

    Each dict has the module's type and qualified name, its input and output shapes and its hyper-parameters
    (channels, kernel size, stride, padding, dilation, groups, eps, p, features, bias present).
    ``partial``: an error in the forward pass ends the list there instead of propagating (a check
    of the layers leaves a crash to the check of the outputs).
    """
    import torch
    rows, hooks = [], []

    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v if isinstance(v, (bool, int, float, str)) or v is None else str(v)

    def hook(module, inputs, output):
        row = {"type": type(module).__name__, "name": names.get(id(module), ""),
               "in": [list(t.shape) for t in inputs if isinstance(t, torch.Tensor)][:1],
               "out": list(output.shape) if isinstance(output, torch.Tensor) else None}
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                     "num_features", "eps", "p", "in_features", "out_features"):
            if name in vars(module) or hasattr(type(module), name):
                row[name] = plain(getattr(module, name, None))
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            row["bias"] = module.bias is not None
        rows.append(row)

    names = {}
    for name, m in model.named_modules():
        names.setdefault(id(m), name)
        if not any(True for _ in m.children()):
            hooks.append(m.register_forward_hook(hook))
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except Exception:
        if not partial:
            raise
    finally:
        for h in hooks:
            h.remove()
    return rows


def watched_call(fn, x, names):
    """(probe) ``fn(x)`` while a profile hook records calls of torch's functions named in ``names``.

    Returns (the output, the names called, whether ``x`` still holds its values afterwards).
    """
    import os
    import sys
    import torch
    root = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
    before, hits = x.clone(), []
    previous = sys.getprofile()

    def hook(frame, event, arg):
        name = None
        if event == "call" and frame.f_code.co_filename.startswith(root):
            name = frame.f_code.co_name
        elif event == "c_call" and str(getattr(arg, "__module__", None) or "").startswith("torch"):
            name = getattr(arg, "__name__", None)
        if name in names and name not in hits:
            hits.append(name)
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(hook)
    try:
        out = fn(x)
    finally:
        sys.setprofile(previous)
    return out, hits, bool(torch.equal(x, before))


class Partial(float):
    """Points a check earned when only some of its cases passed. A check that returns one makes its
    cell score that many points (nbgrader's partial credit: a test cell whose result is a single
    number scores that many points); ``failures`` says which cases failed. In the grader
    (autograder/execute.py) the failures are written into the cell for the learner; in a kernel
    (self-check, ``nbgrader validate``) ``Cases.result`` prints them."""

    failures = ()


class Cases:
    """Partial credit per case, for a check that tries many cases::

        cases = Cases(points=3)
        for k, s in ((3, 1), (3, 2), (5, 2)):
            with cases.case(f"kernel {k}, stride {s}"):
                need(..., "...")
        return cases.result()

    A case fails on a ``Fail`` or on an error of the learner's code; it never gives away expected
    values beyond what its label and message say. ``result()``: None when every case passed (full
    marks), a Fail naming every failed case when none passed (0 points), else a ``Partial`` worth
    ``points * passed / total`` (rounded to 0.01). A ``NotOwnWork`` or ``ProfilerTampered`` fails the
    whole check.
    """

    def __init__(self, points):
        self.points, self.passed, self.failures = points, 0, []

    def case(self, label):
        return _Case(self, label)

    def result(self):
        if not self.failures:
            return None
        if not self.passed:
            raise Fail("; ".join(self.failures))
        earned = Partial(round(self.points * self.passed / (self.passed + len(self.failures)), 2))
        earned.failures = tuple(self.failures)
        if REMOTE is None:  # in the kernel: the learner reads which cases failed above the points
            print("\n".join("failed: " + f for f in self.failures))
        return earned


class _Case:
    def __init__(self, cases, label):
        self.cases, self.label = cases, label

    def __enter__(self):
        return self

    def __exit__(self, kind_, exc, tb):
        if exc is None:
            self.cases.passed += 1
            return False
        if isinstance(exc, Fail) and not isinstance(exc, WHOLE_CHECK):
            self.cases.failures.append(f"{self.label}: {exc}")
            return True
        learner = REMOTE is not None and isinstance(exc, REMOTE.LearnerError)
        if learner or isinstance(exc, (ArithmeticError, LookupError, TypeError, ValueError, AttributeError,
                                       RuntimeError)):
            name = getattr(exc, "ename", None) or type(exc).__name__
            message = str(exc).split(": ", 1)[-1] if learner else str(exc)
            self.cases.failures.append(f"{self.label}: {name}: {message}")
            return True
        return False  # the kernel stopped answering, a timeout, NotOwnWork: the whole check fails
