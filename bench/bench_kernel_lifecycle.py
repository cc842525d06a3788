"""One warm kernel's life as the grader lives it, phase by phase, on this machine (median of --n kernels).

Each kernel is started by the grader's kernel manager (execute.SandboxedKernelManager, bound to a Run:
its sandbox, its limits, the zygote's fork for an assignment that imports torch), waited for until it
answers (the executor's ready-wait), killed as the end of a notebook kills it, and cleaned up
(sandbox.cleanup: its cgroups emptied and removed, its scratch folder deleted). Then, separately,
how long a kill through the kernel's lifeline (sandbox.WarmKernel.kill: what the wall-time watchdog
and the outputs' cap call) takes to end it: from the kill until its launcher, which kills the kernel
and removes its cgroups and root, has exited. Printed, not asserted (the machine is shared).

    .venv/bin/python bench/bench_kernel_lifecycle.py [--n 15]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jupyter_core.utils import run_sync  # noqa: E402

from autograder import launcher, sandbox  # noqa: E402
from autograder.execute import Run, SandboxedKernelManager  # noqa: E402

LIMITS = sandbox.Limits(wall_s=120, cpu_s=60, memory_bytes=1024**3, nproc=64)


def life(preload: tuple[str, ...]) -> dict[str, float]:
    """Seconds of each phase of one kernel's life in the grader."""
    run = Run(limits=LIMITS, unsafe=False, wall_s=120)
    run.preflight = list(preload)
    km = SandboxedKernelManager(kernel_name="python3").bind(run)
    t0 = time.perf_counter()
    run_sync(km.start_kernel)(cwd=str(run.scratch))
    t1 = time.perf_counter()
    kc = km.client()
    kc.start_channels()
    run_sync(kc.wait_for_ready)(timeout=60)
    t2 = time.perf_counter()
    kc.stop_channels()
    run_sync(km.shutdown_kernel)(now=True)
    t3 = time.perf_counter()
    run.close()
    t4 = time.perf_counter()
    return {"start_kernel": t1 - t0, "until it answers": t2 - t1, "shutdown (a kill)": t3 - t2,
            "cleanup": t4 - t3, "whole life": t4 - t0}


def kill_latency(preload: tuple[str, ...]) -> float | None:
    """From ``WarmKernel.kill`` until the kernel's launcher has exited; None without a zygote."""
    from jupyter_client.connect import write_connection_file

    scratch = pathlib.Path(tempfile.mkdtemp(prefix="ag-"))
    write_connection_file(str(scratch / "kernel.json"), transport="ipc", ip=str(scratch / "k"))  # as the grader's
    cmd = sandbox.wrap([sys.executable, "-m", "ipykernel_launcher", "-f", str(scratch / "kernel.json")],
                       scratch=scratch, readable=[], limits=LIMITS, warm=True, preload=preload)
    process = sandbox.start_warm(cmd, {**os.environ, "JPY_PARENT_PID": str(os.getpid())})  # as the manager's
    if process is None:
        sandbox.cleanup(scratch)
        return None
    try:
        time.sleep(0.5)  # started, and quiet: nothing it prints wakes its launcher
        t0 = time.perf_counter()
        process.kill()
        while launcher._alive(process.pid):  # a zombie counts as gone
            time.sleep(0.0005)
        return time.perf_counter() - t0
    finally:
        process.wait(timeout=10)
        sandbox.cleanup(scratch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=15)
    a = ap.parse_args()
    probe = sandbox.probe()
    if not probe.ok:
        raise SystemExit(f"sandbox unavailable here: {probe.reason}")
    preload = sandbox.preload_for(["torch"])
    sandbox.zygote_socket(preload)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          + sandbox.zygote_status(preload))
    lives = [life(preload) for _ in range(a.n + 2)][2:]  # the first two warm up this process
    for phase in lives[0]:
        print(f"  {phase:18s} median {1000 * statistics.median(x[phase] for x in lives):6.1f} ms")
    kills = [kill_latency(preload) for _ in range(a.n)]
    if None in kills:
        print("kill through the lifeline: no zygote here")
    else:
        print(f"a kill through the lifeline until the kernel's launcher is gone: median "
              f"{1000 * statistics.median(kills):.1f} ms (max {1000 * max(kills):.1f} ms)")
    sandbox.stop_zygotes()


if __name__ == "__main__":
    main()
