"""The executor's kernel client (autograder.execute.PromptKernelClient) decides a kernel is ready when
a kernel_info request has both its reply on the shell channel and its idle status on IOPub, without
jupyter_client's fixed 0.2 s of listening to a quiet IOPub. These fakes stand for the kernel's two
channels, so that the lost-status case (IOPub subscribed after the kernel published) can be made."""
import asyncio
import queue

import pytest

from autograder.execute import PromptKernelClient


class Channel:
    def __init__(self):
        self.box = []

    async def get_msg(self, timeout=None):
        if self.box:
            return self.box.pop(0)
        await asyncio.sleep(min(timeout or 0.01, 0.01))
        raise queue.Empty


def _status(msg_id, state):
    return {"msg_type": "status", "parent_header": {"msg_id": msg_id}, "content": {"execution_state": state}}


def fake_kernel(lost: int = 0, answers: bool = True, alive: bool = True):
    """A client whose kernel replies to every kernel_info, the first ``lost`` idle statuses never reaching
    IOPub (published before the subscription took hold)."""
    shell, iopub, sent = Channel(), Channel(), []

    class Fake(PromptKernelClient):
        shell_channel = property(lambda self: shell)
        iopub_channel = property(lambda self: iopub)
        got = None

        def kernel_info(self):
            msg_id = f"info-{len(sent)}"
            sent.append(msg_id)
            iopub.box.append({"msg_type": "stream", "parent_header": {"msg_id": "x"}, "content": {}})  # not ours
            if answers:
                shell.box.append({"msg_type": "kernel_info_reply", "parent_header": {"msg_id": msg_id}, "content": {}})
                if len(sent) > lost:
                    iopub.box += [_status(msg_id, "busy"), _status(msg_id, "idle")]
            return msg_id

        async def _async_is_alive(self):
            return alive

        def _handle_kernel_info_reply(self, msg):
            self.got = msg

    return Fake(), sent


def test_ready_at_the_first_reply_and_status():
    client, sent = fake_kernel()
    asyncio.run(client.wait_for_ready(timeout=5))
    assert sent == ["info-0"] and client.got["parent_header"]["msg_id"] == "info-0"


def test_a_status_lost_before_iopub_was_connected_asks_again():
    client, sent = fake_kernel(lost=2)
    asyncio.run(client.wait_for_ready(timeout=5))
    assert len(sent) == 3 and client.got is not None  # ready only once IOPub has carried a status


def test_a_kernel_that_never_answers_or_dies_is_an_error():
    client, _ = fake_kernel(answers=False)
    with pytest.raises(RuntimeError, match="didn't respond"):
        asyncio.run(client.wait_for_ready(timeout=0.3))
    client, _ = fake_kernel(answers=False, alive=False)
    with pytest.raises(RuntimeError, match="died"):
        asyncio.run(client.wait_for_ready(timeout=5))


def test_every_socket_towards_the_kernel_retries_its_connection_within_milliseconds():
    """The client's channels connect while the kernel is still being forked and confined; ZeroMQ's
    default retry (every 100-200 ms) was a kernel start's longest wait. The client the manager hands out
    makes a context of its own (not the manager's): both must carry the short interval."""
    import zmq

    from autograder.execute import RECONNECT_MS, SandboxedKernelManager

    km = SandboxedKernelManager()
    kc = km.client()
    assert isinstance(kc, PromptKernelClient) and RECONNECT_MS <= 10
    for ctx in (kc.context, km.context):
        sock = ctx.socket(zmq.DEALER)
        try:
            assert sock.getsockopt(zmq.RECONNECT_IVL) == RECONNECT_MS
        finally:
            sock.close(linger=0)


class _Manager:
    """What jupyter_client's ``in_pending_state`` wrapper uses of a kernel manager."""

    def __init__(self, owns=True):
        import logging

        self._attempted_start, self._ready, self.owns_kernel = True, None, owns
        self.log = logging.getLogger("test_kernel_ready")


def _outcome(wrapped, owns, *args):
    """(returned or raised, the manager's ready future: done, its result or exception) after ``wrapped``."""
    km = _Manager(owns)

    async def go():
        try:
            got = ("returned", await wrapped(km, *args))
        except Exception as e:  # noqa: BLE001 - compared between the two wrappers
            got = ("raised", repr(e))
        fut = km._ready
        state = (fut.done(), repr(fut.exception()) if fut.done() and fut.exception() else
                 (fut.result() if fut.done() else "pending"))
        return got, state

    return asyncio.run(go())


def test_start_and_shutdown_keep_jupyter_clients_ready_future_without_its_pause(monkeypatch):
    """jupyter_client's ``in_pending_state`` sleeps 10 ms after a kernel's start and after its shutdown ("so
    tests can capture the state"); the grader's manager does the same bookkeeping of its ``ready`` future
    without that pause: the same outcomes as jupyter_client's own wrapper for a method that returns or
    raises, owned kernel or not, and no 10 ms sleep."""
    from jupyter_client import manager as jc_manager

    from autograder.execute import SandboxedKernelManager, _without_pause

    async def method(self, x):
        return 2 * x

    async def failing(self):
        raise ValueError("no kernel")

    slept = []
    real_sleep = asyncio.sleep

    async def sleep(delay, *args):
        slept.append(delay)
        return await real_sleep(0, *args)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    for fn, args in ((method, (21,)), (failing, ())):
        theirs = jc_manager.in_pending_state(fn)
        for owns in (True, False):
            slept.clear()
            want = _outcome(theirs, owns, *args)
            if fn is method:  # jupyter_client's pause after a method that returned (else it is gone upstream)
                assert 0.01 in slept
            slept.clear()
            assert _outcome(_without_pause(theirs), owns, *args) == want
            assert slept == []
    for name in ("start_kernel", "shutdown_kernel"):  # the grader's manager uses it for both
        ours, base = getattr(SandboxedKernelManager, name), getattr(jc_manager.AsyncKernelManager, name)
        assert ours is not base and ours.__wrapped__ is base.__wrapped__
