"""What one request of a hidden check costs, by the way it travels to the learner's kernel.

The hidden checks run in the grader and reach the learner's objects by requests (autograder/remote.py).
This starts one plain IPython kernel (no sandbox: the channel alone is measured) and times ``--n``
round trips of a trivial request each way: as a cell run by nbclient (how every request travelled
before), as an ``execute_request`` read straight off the channels, and as a comm message answered by a
print or on the comm (kernel_agent._ag_listen answers on the comm). Printed, not asserted.

    .venv/bin/python bench/bench_requests.py [--n 300]
"""
from __future__ import annotations

import argparse
import os
import queue
import time

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

os.environ.setdefault("OMP_NUM_THREADS", "1")

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
        try:
            while True:
                run_sync(kc.iopub_channel.get_msg)(timeout=0.1)
        except queue.Empty:
            pass
    print(f"{n} round trips each, one plain IPython kernel, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}:")
    for label, value in ms.items():
        print(f"  {label:40s} {value:5.2f} ms per request")
    print("(a ps1 notebook's hidden checks send about 80 requests; the grader's requests carry JSON and "
          "base64 tensors besides)")


if __name__ == "__main__":
    main()
