"""autograder.remote: the grader's side of the hidden tests, against the real kernel-side agent.

The agent's code runs here in a plain namespace standing in for the kernel's user namespace (the
real kernel is exercised by tests/test_hostile.py and tests/test_exercises_grading.py). Every
value crosses as JSON text, as it does over the kernel's stdout.
"""
import contextlib
import inspect
import io
import json
import math
import pathlib

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from autograder import remote

REPO = pathlib.Path(__file__).resolve().parent.parent


class LocalKernel:
    """A user namespace and a send() that runs code in it, returning (stdout, ename, evalue)."""

    def __init__(self):
        self.ns = {"__name__": "__main__"}
        self.sent = []

    def send(self, code):
        self.sent.append(code)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(code, self.ns)
        except Exception as e:
            return out.getvalue(), type(e).__name__, str(e)
        return out.getvalue(), None, None


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the agent loads $file inputs relative to the kernel's folder
    k = LocalKernel()
    return k, remote.Client(k.send, tmp_path)


def test_values_come_back_as_plain_data(kernel):
    k, client = kernel
    k.ns.update(t=torch.arange(6, dtype=torch.float64).reshape(2, 3), p=nn.Parameter(torch.ones(2)),
                a=np.arange(4, dtype=np.int16), s=np.float32(1.5), nested=(1, [2.5, "x"], {"k": None}),
                nan=float("nan"), flag=True, big=10**30, half=torch.ones(3, dtype=torch.bfloat16))
    t = client.learner_global("t")
    assert type(t) is torch.Tensor and t.dtype == torch.float64 and torch.equal(t, k.ns["t"])
    p = client.learner_global("p")
    assert type(p) is torch.Tensor  # a Parameter (or any subclass) arrives as a plain tensor
    a = client.learner_global("a")
    assert type(a) is np.ndarray and a.dtype == np.int16 and a.tolist() == [0, 1, 2, 3]
    s = client.learner_global("s")
    assert type(s) is np.float32 and s == 1.5
    assert client.learner_global("nested") == (1, [2.5, "x"], {"k": None})
    assert math.isnan(client.learner_global("nan"))
    assert client.learner_global("flag") is True and client.learner_global("big") == 10**30
    half = client.learner_global("half")
    assert half.dtype == torch.bfloat16 and half.tolist() == [1.0, 1.0, 1.0]
    k.ns.update(zero_d=np.array(2.5), zero_t=torch.tensor(3.0))  # 0-d stays 0-d (np.ascontiguousarray makes it 1-d)
    assert client.learner_global("zero_d").shape == () and client.learner_global("zero_t").shape == ()


def test_objects_stay_in_the_kernel_and_answer_requests(kernel):
    k, client = kernel

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)

        def forward(self, x):
            return self.conv(x) + 1

    k.ns["Block"] = Block
    cls = client.learner_global("Block")
    assert isinstance(cls, remote.Remote) and not cls._ag_is_module
    m = cls(2)
    assert isinstance(m, remote.Remote) and m._ag_is_module
    before = len(k.sent)
    assert m.eval() == m  # the same object in the kernel
    assert len(k.sent) == before + 1  # a method call is one request
    x = torch.randn(1, 2, 5, 5)
    with torch.no_grad():
        ref = k.ns["_ag_handles"][m._ag_hid](x)
    assert torch.equal(m(x), ref)
    state = m.state_dict()
    assert list(state) == ["conv.weight"] and state["conv.weight"].shape == (2, 2, 3, 3)
    m.load_state_dict({"conv.weight": torch.zeros(2, 2, 3, 3)})
    assert torch.equal(m(x), torch.ones(1, 2, 5, 5))
    assert len(list(m.children())) == 1 and len(m.conv.weight) == 2
    assert client.evaluate("sum(p.numel() for p in m.parameters())", m=m) == 36
    assert getattr(m, "missing", "default") == "default"  # AttributeError stays one


def test_trusted_objects_reach_the_kernel_pickled_and_builders_work(kernel):
    k, client = kernel
    k.ns["count"] = lambda net, size: sum(p.numel() for p in net.parameters()) + size[-1]
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Linear(4, 2))
    assert client.learner_global("count")(net, (1, 3, 8, 8)) == 3 * 4 * 9 + 4 + 4 * 2 + 2 + 8
    k.ns["build"] = lambda builder, n: builder(n, 2).in_features  # a class passed by reference
    assert client.learner_global("build")(nn.Linear, 7) == 7
    k.ns["build_wrong"] = lambda builder, n: builder(n).in_features  # forgets out_features
    with pytest.raises(TypeError, match="out_features"):  # the learner's error, rebuilt here
        client.learner_global("build_wrong")(nn.Linear, 7)
    helper = client.define("class Counter:\n    def __init__(self):\n        self.calls = 0\n"
                           "    def tick(self):\n        self.calls += 1\n", "Counter")
    c = helper()
    k.ns["call_twice"] = lambda f: (f(), f())
    client.learner_global("call_twice")(c.tick)
    assert c.calls == 2


def test_learner_exceptions_are_rebuilt_by_name_and_never_unpickled(kernel):
    k, client = kernel

    class Oops(Exception):
        pass

    def bad(kind):
        raise {"value": ValueError("v"), "own": Oops("mine"), "exit": SystemExit(3)}[kind]

    k.ns["bad"] = bad
    f = client.learner_global("bad")
    with pytest.raises(ValueError, match="v"):
        f("value")
    with pytest.raises(remote.LearnerError, match="Oops: mine") as err:
        f("own")
    assert err.value.ename == "Oops"
    with pytest.raises(remote.LearnerError, match="SystemExit"):
        f("exit")
    with pytest.raises(NameError, match="nothing_here"):
        client.learner_global("nothing_here")


@pytest.mark.parametrize("reply", [
    "", "no marker at all", remote.MARK + "not json" + remote.MARK, remote.MARK + "[1, 2]" + remote.MARK,
    remote.MARK + json.dumps({"ok": {"$pickle": "gASVAAAAAAAAAAB9lC4="}}) + remote.MARK,
    remote.MARK + json.dumps({"ok": {"$ndarray": ["|O", [1], "AA=="]}}) + remote.MARK,
    remote.MARK + json.dumps({"ok": {"$tensor": ["__import__('os')", [1], "AA=="]}}) + remote.MARK,
])
def test_unreadable_or_forged_replies_fail_cleanly(tmp_path, reply):
    client = remote.Client(lambda code: (reply, None, None), tmp_path)
    with pytest.raises(remote.RemoteFailure):
        client.learner_global("x")


def test_a_forged_reply_is_only_data():
    """What a forging kernel can send is a value; it decodes to plain data or a stand-in, never code."""
    client = remote.Client(lambda code: (remote.MARK + json.dumps({"ok": {"$h": "1", "type": "x"}}) + remote.MARK,
                                         None, None), pathlib.Path("."))
    got = client.learner_global("x")
    assert isinstance(got, remote.Remote) and not got._ag_is_module


def test_the_agent_is_sent_once_and_again_when_it_is_gone(kernel):
    k, client = kernel
    k.ns["value"] = 41
    assert client.learner_global("value") == 41
    assert client.learner_global("value") == 41
    assert ["def _ag_agent(" in code for code in k.sent] == [True, False]
    del k.ns["_ag_agent"]  # a notebook that deletes it: the next request defines it again
    assert client.learner_global("value") == 41
    assert ["def _ag_agent(" in code for code in k.sent] == [True, False, False, True]


def test_a_replaced_agent_sends_data_only(kernel):
    """A notebook that answers for the agent (scenario answers-for-the-grader) can send values, not code."""
    k, client = kernel
    k.ns["_ag_agent"] = lambda request: print(remote.MARK + '{"ok": {"$tuple": [1, 2]}}' + remote.MARK)
    client._agent_sent = True
    assert client.learner_global("anything") == (1, 2)


def test_hidden_blocks_have_the_check_form():
    assert remote.check_call("_ps_grader.check_dsc(DSC)") == ("check_dsc", ["DSC"])
    assert remote.check_call("_ps_grader.check_pair(a, b)") == ("check_pair", ["a", "b"])
    for bad in ("assert x == 1", "_ps_grader.check_x(f(1))", "other.check_x(a)", "_ps_grader.check_x(a)\nprint(1)",
                "_ps_grader.helper(a)", "_ps_grader.check_x(a=b)"):
        with pytest.raises(ValueError):
            remote.check_call(bad)
    assert remote.split_hidden("v = 1\n### BEGIN HIDDEN TESTS\nh()\n### END HIDDEN TESTS\n") == ("v = 1\n", "h()")
    assert remote.split_hidden("no hidden part") is None


def test_every_assignment_runs_its_hidden_checks_in_the_grader():
    ids = sorted(p.name for p in (REPO / "solutions").iterdir() if (p / f"{p.name}.ipynb").exists())
    assert ids == sorted(p.stem for p in (REPO / "book" / "part3").glob("ps*.md"))  # every assignment of the book
    for aid in ids:
        nb = nbformat.read(REPO / "solutions" / aid / f"{aid}.ipynb", as_version=4)
        assert remote.supports_remote(nb), aid
    fixture = nbformat.read(REPO / "autograder" / "scenarios" / "source" / "sb_guard" / "sb_guard.ipynb", as_version=4)
    assert remote.supports_remote(fixture)


def _remote_guard(client):
    """assignments/toolkit.py loaded as the grader loads it (assignments/loader.py): with REMOTE set to ``client``."""
    from assignments import loader

    return loader.load_checks({loader.TOOLKIT: (REPO / loader.TOOLKIT).read_text()}, remote=client)


def _members(cls) -> dict:
    """A Protocol's own members: {name: annotation} for its data, {name: function} for its methods."""
    own = {k: v for k, v in vars(cls).items() if inspect.isfunction(v) and not k.startswith("_")}
    return {**cls.__annotations__, **own}


def test_the_client_has_what_the_toolkit_uses():
    """Does autograder.remote.Client have every member of the toolkit's GraderClient Protocol, each
    method with the same parameters (names, kinds, order, which have defaults), and does the toolkit
    use nothing of REMOTE beyond the Protocol?"""
    import ast

    from assignments import toolkit

    members = _members(toolkit.GraderClient)
    assert {"Remote", "LearnerError", "GuardHit", "RemoteFailure", "guard_files", "evaluate", "define",
            "scan"} <= set(members)
    client = remote.Client(lambda code: ("", None, None), pathlib.Path("."))
    for name, want in members.items():
        assert hasattr(client, name), f"Client has no {name}"
        if not inspect.isfunction(want):
            continue
        got = inspect.signature(getattr(remote.Client, name)).parameters.values()
        shape = [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in got]
        assert shape == [(p.name, p.kind, p.default is inspect.Parameter.empty)
                         for p in inspect.signature(want).parameters.values()], f"Client.{name}{shape}"
    for name in ("Remote", "LearnerError", "GuardHit", "RemoteFailure"):
        assert isinstance(getattr(remote.Client, name), type)
    assert client.guard_files is None  # set by Guard while it watches, else None

    tree = ast.parse((REPO / "assignments" / "toolkit.py").read_text())
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "REMOTE"}
    used |= {n.args[1].value for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "getattr"
             and isinstance(n.args[0], ast.Name) and n.args[0].id == "REMOTE"}
    assert used <= set(members), f"the toolkit uses {sorted(used - set(members))} of REMOTE, not in GraderClient"


def test_guard_in_the_grader_names_the_cheat_and_passes_learner_errors_through(kernel):
    k, client = kernel
    g = _remote_guard(client)
    exec("import mnlib.cost\n"
         "def uses_mnlib(c_in, c_out, k):\n    return mnlib.cost.dsc_params(c_in, c_out, k)\n"
         "def own(c_in, c_out, k):\n    return c_in * k * k + c_in * c_out\n"
         "def broken(c_in, c_out, k):\n    raise TypeError('my bug')\n", k.ns)
    guard = g.Guard(["cost.py"])
    assert guard.call("own", client.learner_global("own"), 3, 8, 3) == 3 * 9 + 24
    with pytest.raises(g.NotOwnWork, match="the exercise is to write it"):
        guard.call("dsc_params", client.learner_global("uses_mnlib"), 3, 8, 3)
    # the learner's own error, not the grader's: a failed check that names the call that raised it
    with pytest.raises(g.Fail, match=r"^broken\(3, 8, 3\) raised TypeError: my bug$") as failed:
        guard.call("broken", client.learner_global("broken"), 3, 8, 3)
    assert not isinstance(failed.value, g.WHOLE_CHECK)
    # the scan runs in the kernel; its NotOwnWork comes back as one, so it fails the whole check
    with pytest.raises(g.NotOwnWork, match="the exercise is to write it"):
        g.scan(client.learner_global("uses_mnlib"), "dsc_params")
    g.scan(client.learner_global("own"), "own")  # no mnlib: no failure
    exec("import sys\ndef tampers(c_in, c_out, k):\n    sys.setprofile(None)\n    return 0\n", k.ns)
    with pytest.raises(g.ProfilerTampered, match="leave sys.setprofile alone"):
        guard.call("tampers", client.learner_global("tampers"), 3, 8, 3)


def _setup_text(assignment: str) -> str:
    from autograder.nbgrader_config import SOURCE
    nb = nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)
    return next(remote.split_hidden(c.source)[1] for c in nb.cells
                if remote.is_setup(c.metadata.get("nbgrader", {}).get("grade_id", "")))


def test_each_notebooks_setup_gets_fresh_modules_from_texts_compiled_once(kernel):
    """The loader's compile is memoised in the grader (remote._setup_compile): a second notebook's setup
    shares the code objects and nothing else (new functions, new module globals, its own client), and
    the code is what a plain compile makes (same file names for tracebacks, same __future__ flags)."""
    k, client = kernel
    hidden = _setup_text("ps1_dsc")
    first = remote.run_setup(hidden, client)
    before = remote._compile_once.cache_info()
    second = remote.run_setup(hidden, remote.Client(k.send, client.scratch))
    after = remote._compile_once.cache_info()
    assert after.misses == before.misses and after.hits > before.hits  # nothing compiled the second time
    f, g = first.check_dsc_shapes, second.check_dsc_shapes
    assert f is not g and f.__code__ is g.__code__ and f.__globals__ is not g.__globals__
    path = f.__code__.co_filename
    plain = compile(pathlib.Path(REPO / path).read_text(), path, "exec", dont_inherit=True)
    shared = next(c for c in plain.co_consts if inspect.iscode(c) and c.co_name == f.__code__.co_name)
    assert f.__code__.co_firstlineno == shared.co_firstlineno
    loader_flags = remote._compiled_setup(hidden).co_flags & remote._FUTURE_FLAGS  # what the loader's code inherits
    assert f.__code__.co_flags & remote._FUTURE_FLAGS == loader_flags


def test_an_answer_frame_from_the_listener_is_read_only_whole_and_within_its_limit():
    """The listener's socket answers a silent request with a frame (number, length, JSON object); the
    grader reads it only whole, with the number it claims, as a JSON object, and never reads (or
    allocates) more than kernel_agent.DIRECT_MAX: anything else is None (the request then goes as a cell)."""
    import socket
    import struct

    from autograder import kernel_agent
    from autograder.execute import _Executor

    def read(raw: bytes, close: bool = True):
        import threading
        a, b = socket.socketpair()
        with a, b:
            b.settimeout(5)

            def send():  # a frame larger than the socket's buffer is read while it is written
                a.sendall(raw)
                if close:
                    a.shutdown(socket.SHUT_WR)
            writer = threading.Thread(target=send)
            writer.start()
            try:
                return _Executor._rpc_frame(b)
            finally:
                if not close:
                    a.shutdown(socket.SHUT_WR)
                b.shutdown(socket.SHUT_RD)
                writer.join()

    def frame(number, data, size=None):
        body = json.dumps(data).encode() if not isinstance(data, bytes) else data
        return struct.pack("<II", number, len(body) if size is None else size) + body

    answer = {"id": 7, "answer": remote.MARK + '{"ok": 1}' + remote.MARK}
    assert read(frame(7, answer)) == answer
    assert read(frame(7, answer)[:-3]) is None  # cut short
    assert read(frame(7, answer)[:5]) is None  # not even a whole head
    assert read(frame(8, answer)) is None  # the number of the frame is not the one inside
    assert read(frame(7, b"not json")) is None
    assert read(frame(7, [1, 2])) is None  # JSON, not an object
    assert read(frame(7, b"[" * 200_000 + b"]" * 200_000)) is None  # nested past the parser's depth
    assert read(frame(7, b"", size=kernel_agent.DIRECT_MAX + 1), close=False) is None  # claims too much: not read
    big = {"id": 1, "answer": "x" * (kernel_agent.DIRECT_MAX - 40)}
    assert read(frame(1, big)) == big  # at the limit: read whole
