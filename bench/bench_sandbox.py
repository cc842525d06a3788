"""Grade a class with the sandbox on, 10% of it broken or hostile (autograder/scenarios/), end to end.

Prints total time, seconds per submission, peak memory (grader + workers + kernels, sampled), how
many hostile cases were held (got exactly their expected outcome, batch unharmed), and the
sandbox's overhead per submission: the honest part of the class graded again with --unsafe (never
the hostile part: without the sandbox it would hit this machine). Printed, not asserted.

    .venv/bin/python bench/bench_sandbox.py [--size 200] [--workers 2] [--timeout-cell 5] [--overhead-size 40]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psutil

REPO = pathlib.Path(__file__).resolve().parents[1]
SCEN = REPO / "autograder" / "scenarios"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(SCEN))
import make_hostile_scenarios as ms  # noqa: E402

from autograder import sandbox  # noqa: E402

HONEST = ["complete", "unchanged-release", "edited-test-cell", "deleted-test-cell"]  # ordinary outcomes
# A notebook printing gigabytes is held only where the executor caps outputs (sandbox.BoundedOutputs);
# without the cap the grader took in 0.9 GB in 12 s here and grows until the cell times out.
OUTPUT_CAPPED = "BoundedOutputs" in (REPO / "autograder" / "execute.py").read_text()
HOSTILE = [n for n in ms.EXPECTED if n not in HONEST and (OUTPUT_CAPPED or n != "prints-gigabytes")]


def make_class(root: pathlib.Path, size: int) -> dict[str, str]:
    """student -> scenario: every 10th student hostile or broken (cycling), the rest honest."""
    roster = {}
    for i in range(size):
        pool = HOSTILE if i % 10 == 9 else HONEST
        scenario = pool[(i // 10 if pool is HOSTILE else i) % len(pool)]
        student = f"s{i:03d}-{scenario}"
        src = SCEN / ms.file_name(scenario)
        (root / student).mkdir(parents=True)
        shutil.copy(src, root / student / (src.name if scenario in ms.SUBMITTED_NAME else ms.NOTEBOOK))
        roster[student] = scenario
    return roster


class PeakMemory:
    """Sample the memory of a process tree plus every sandboxed process, keep the peak.

    PSS (each shared page divided among its sharers), not RSS: a fork bomb's 200 copy-on-write
    children would otherwise count the kernel's memory 200 times (11 GB of RSS for ~1 GB real).
    """

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.5):
            try:
                procs = [psutil.Process(self.pid)] + psutil.Process(self.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                return
            pids = {p.pid for p in procs}
            for p in psutil.process_iter(["uids"]):  # kernels: their launcher is a child, fork children are not always
                if p.info["uids"] and p.info["uids"].real >= sandbox.UID_BASE:
                    pids.add(p.pid)
            total = 0
            for pid in pids:
                try:
                    total += psutil.Process(pid).memory_full_info().pss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


def grade(subs: pathlib.Path, ws: pathlib.Path, args, unsafe: bool) -> tuple[float, int, str]:
    """collect + grade; return (seconds for grade, peak bytes, its output)."""
    src = ["--source", str(SCEN / "source")]
    subprocess.run([sys.executable, "-m", "autograder", "collect", str(subs), "--assignment", ms.ASSIGNMENT,
                    "--workspace", str(ws), *src], cwd=REPO, check=True, capture_output=True)
    argv = [sys.executable, "-m", "autograder", "grade", "--workspace", str(ws), "--assignment", ms.ASSIGNMENT,
            *src, "--workers", str(args.workers), "--timeout-cell", str(args.timeout_cell),
            "--timeout-notebook", str(args.timeout_notebook), "--memory-mb", str(args.memory_mb)]
    argv += ["--unsafe"] if unsafe else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with PeakMemory(proc.pid) as mem:
        out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"grade failed ({proc.returncode}):\n{out[-3000:]}")
    return time.perf_counter() - t0, mem.peak, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200, help="students in the class (default 200)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout-cell", type=int, default=5)
    ap.add_argument("--timeout-notebook", type=float, default=60)
    ap.add_argument("--memory-mb", type=int, default=512)
    ap.add_argument("--overhead-size", type=int, default=40, help="honest submissions graded both ways (default 40)")
    args = ap.parse_args()
    if args.size < 10:
        raise SystemExit("--size must be at least 10 (one hostile student in ten)")
    probe = sandbox.probe()
    if not probe.ok:
        raise SystemExit(f"sandbox unavailable: {probe.reason}")
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        tmp = pathlib.Path(tmp)
        roster = make_class(tmp / "class", args.size)
        wall, peak, _ = grade(tmp / "class", tmp / "ws", args, unsafe=False)
        results = {p.stem: json.loads(p.read_text()) for p in (tmp / "ws" / "results" / ms.ASSIGNMENT).glob("*.json")}
        hostile = [s for s, sc in roster.items() if sc in HOSTILE]
        held = [s for s in hostile if s in results and
                (results[s]["status"], results[s]["score"]) == ms.EXPECTED[roster[s]]]
        missing = sorted(set(roster) - set(results))
        # overhead: the honest students only, sandbox vs --unsafe, same settings
        honest = tmp / "honest"
        honest.mkdir()
        for s in [s for s, sc in roster.items() if sc in HONEST][:args.overhead_size]:
            shutil.copytree(tmp / "class" / s, honest / s)
        n_honest = len(list(honest.iterdir()))
        on, _, _ = grade(honest, tmp / "ws-on", args, unsafe=False)
        off, _, _ = grade(honest, tmp / "ws-off", args, unsafe=True)
    print(f"sandbox: {probe.mechanism} ({probe.reason}); {args.workers} workers, {os.cpu_count()} cores")
    if not OUTPUT_CAPPED:
        print("prints-gigabytes left out: the executor does not cap outputs yet (sandbox.BoundedOutputs)")
    print(f"class of {args.size} ({len(hostile)} broken or hostile): total {wall:.1f} s, "
          f"{wall / args.size:.2f} s/submission, peak memory {peak / 2**20:.0f} MiB")
    print(f"hostile cases held: {len(held)}/{len(hostile)}"
          + (f" (not held: {', '.join(sorted(set(hostile) - set(held)))})" if len(held) < len(hostile) else ""))
    print(f"students without a result: {len(missing)}" + (f" ({', '.join(missing)})" if missing else ""))
    print(f"overhead on {n_honest} honest submissions: sandbox {on / n_honest:.2f} s/submission, "
          f"--unsafe {off / n_honest:.2f} s/submission, overhead {(on - off) / n_honest:+.2f} s/submission")


if __name__ == "__main__":
    main()
