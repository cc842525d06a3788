"""What one request of a hidden check costs, by the way it travels to the learner's kernel.

The hidden checks run in the grader and reach the learner's objects by requests (autograder/remote.py).
This starts one plain IPython kernel (no sandbox: the channel alone is measured) and times ``--n``
round trips of a trivial request each way: as a cell run by nbclient (how every request travelled
before), as an ``execute_request`` read straight off the channels, and as a comm message answered by a
print or on the comm, and as the grader sends them now: on the Unix socket of the agent's listener
(kernel_agent._ag_listen), answered on that socket when the request printed nothing, else on IOPub
after its output (a request that prints, timed too). Printed, not asserted.

    .venv/bin/python bench/bench_requests.py [--n 300]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import queue
import socket
import struct
import sys
import tempfile
import time

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
import zmq
import zmq.asyncio

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from autograder import remote  # noqa: E402
from autograder.execute import _Executor  # noqa: E402

KERNEL_SIDE = '''
import json

def answer(x):
    return {"ok": x}

def _opened(comm, _msg):
    def on_msg(msg):
        data = msg["content"]["data"]
        if data["how"] == "print":
            print("\\x1e" + json.dumps(answer(data["x"])) + "\\x1e", flush=True)
        else:
            comm.send(answer(data["x"]))
    comm.on_msg(on_msg)

get_ipython().kernel.comm_manager.register_target("bench", _opened)
'''


async def _until_idle(kc, msg_id: str) -> None:
    while True:
        m = await kc.iopub_channel.get_msg(timeout=10)
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status" \
                and m["content"]["execution_state"] == "idle":
            return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    n = ap.parse_args().n
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(KERNEL_SIDE)])
    client = NotebookClient(nb, kernel_name="python3")
    ms = {}
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        kc = client.kc

        t0 = time.perf_counter()
        for i in range(n):
            cell = nbformat.v4.new_code_cell(f"print(answer({i}))")
            nb.cells[0] = cell
            client.execute_cell(cell, 0, store_history=False)
        ms["a cell, through nbclient"] = (time.perf_counter() - t0) / n * 1000

        async def executes():
            t0 = time.perf_counter()
            for i in range(n):
                msg_id = kc.execute(f"print(answer({i}))", store_history=False)
                await _until_idle(kc, msg_id)
                while (await kc.shell_channel.get_msg(timeout=10))["parent_header"].get("msg_id") != msg_id:
                    pass
            return (time.perf_counter() - t0) / n * 1000

        async def comms(how: str):
            kc.shell_channel.send(kc.session.msg("comm_open", {"comm_id": how, "target_name": "bench", "data": {}}))
            t0 = time.perf_counter()
            for i in range(n):
                msg = kc.session.msg("comm_msg", {"comm_id": how, "data": {"how": how, "x": i}})
                kc.shell_channel.send(msg)
                await _until_idle(kc, msg["header"]["msg_id"])
            return (time.perf_counter() - t0) / n * 1000

        ms["an execute_request, off the channels"] = run_sync(executes)()
        for how, label in (("print", "a comm message, answered by a print"),
                           ("send", "a comm message, answered on the comm")):
            ms[label] = run_sync(comms)(how)

        async def listener(path: str, token: str, body: bytes):
            """The grader's channel: the agent's listener, a request on its socket, the answer on the
            socket when the request published nothing on IOPub, else on IOPub after its output (the
            grader reads both, as execute._Executor._async_rpc_reply does)."""
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            poller = zmq.asyncio.Poller()
            poller.register(kc.iopub_channel.socket, zmq.POLLIN)
            poller.register(sock.fileno(), zmq.POLLIN)
            ways = {"socket": 0, "IOPub": 0}

            async def answer(number):
                while True:
                    ready = dict(await poller.poll(timeout=10_000))
                    if not ready:
                        raise TimeoutError("the listener did not answer in 10 s")
                    if ready.get(sock.fileno()):
                        data = _Executor._rpc_frame(sock)
                        assert data is not None, "an unreadable frame on the listener's socket"
                        if data.get("id") == number:
                            ways["socket"] += 1
                            return data
                        continue
                    m = await kc.iopub_channel.get_msg(timeout=0)
                    data = m["content"].get("data") if m["msg_type"] == "comm_msg" else None
                    if m["content"].get("comm_id") == token and data and data.get("id") == number:
                        ways["IOPub"] += 1
                        return data

            await answer(0)  # the listener accepted
            t0 = time.perf_counter()
            for i in range(1, n + 1):
                sock.sendall(struct.pack("<II", i, len(body)) + body)
                assert remote.MARK in (await answer(i))["answer"]
            sock.close()
            return (time.perf_counter() - t0) / n * 1000, ways

        quiet = json.dumps({"op": "forget"}).encode()
        prints = json.dumps({"op": "eval", "src": "print('.') or 0", "names": {"$dict": []}}).encode()
        for label, body in (("the agent's socket, a silent request", quiet),
                            ("the agent's socket, a request that prints", prints)):
            with tempfile.TemporaryDirectory(prefix="bench-requests-") as folder:
                path, token = os.path.join(folder, "agent.sock"), "bench-agent"
                cell = nbformat.v4.new_code_cell(
                    remote.defining("", remote.LISTEN + f"\n_ag_listen({path!r}, {token!r})\n"))
                nb.cells[0] = cell
                client.execute_cell(cell, 0, store_history=False)
                value, ways = run_sync(listener)(path, token, body)
                ms[f"{label} (answers on: {ways['socket']} socket, {ways['IOPub']} IOPub)"] = value
        try:
            while True:
                run_sync(kc.iopub_channel.get_msg)(timeout=0.1)
        except queue.Empty:
            pass
    print(f"{n} round trips each, one plain IPython kernel, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}:")
    for label, value in ms.items():
        print(f"  {label:78s} {value:5.2f} ms per request")
    print("(a ps1 notebook's hidden checks send about 80 requests; the grader's requests carry JSON and "
          "base64 tensors besides)")


if __name__ == "__main__":
    main()
