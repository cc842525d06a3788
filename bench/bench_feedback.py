"""Time from a submission's arrival to its feedback page, one notebook at a time, on this machine.

A ``python -m autograder watch`` runs on nbgrader's exchange layout (a temporary one); each round
writes one submission into inbound/ the way ``nbgrader submit`` does (the notebook, timestamp.txt,
then submission_secret.txt) and waits for the page ``nbgrader fetch_feedback`` would fetch. The
first submission is not timed (the watch grades the reference answers first, and its grading worker
starts its zygote). Alternating two notebooks (right, partial), every round is graded afresh.
Prints the median of ``--n`` rounds (target <= 3 s for ps1), the spread, and where the time goes
(executing the notebook, the rest of grading, the page). Printed, not asserted: the machine is shared.

    .venv/bin/python bench/bench_feedback.py [--n 10] [--cold]     (--cold: AUTOGRADER_ZYGOTE=0)
"""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import json
import os
import pathlib
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = REPO / "autograder" / "samples" / "ps1_dsc"
A = "ps1_dsc"
COURSE = "bench101"


def submit(exchange: pathlib.Path, student: str, notebook: pathlib.Path) -> tuple[float, pathlib.Path]:
    """One submission as nbgrader submit writes it; (arrival time, where its page will appear)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    folder = exchange / COURSE / "inbound" / f"{student}+{A}+{stamp}+{secrets.token_urlsafe(6)}"
    secret = secrets.token_hex(64)
    t0 = time.perf_counter()
    folder.mkdir()
    shutil.copyfile(notebook, folder / f"{A}.ipynb")
    (folder / "timestamp.txt").write_text(stamp)
    (folder / "submission_secret.txt").write_text(secret)
    page = exchange / COURSE / "feedback" / (hashlib.md5((secret + A).encode()).hexdigest() + ".html")  # noqa: S324
    return t0, page


def wait_for(path: pathlib.Path, proc: subprocess.Popen, timeout: float = 300) -> float:
    end = time.perf_counter() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise SystemExit(f"the watch stopped (status {proc.returncode}): {proc.stderr.read()[-2000:]}")
        if time.perf_counter() > end:
            raise SystemExit(f"no page after {timeout} s")
        time.sleep(0.005)
    return time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--cold", action="store_true", help="start every kernel from scratch (no zygote)")
    a = ap.parse_args()
    me = getpass.getuser()
    pool = [SAMPLES / "s01_right" / f"{A}.ipynb", SAMPLES / "s03_partial" / f"{A}.ipynb"]
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as tmp:
        tmp = pathlib.Path(tmp)
        exchange, ws = tmp / "exchange", tmp / "ws"
        (exchange / COURSE / "inbound").mkdir(parents=True)
        ws.mkdir()
        (ws / "course.toml").write_text("[watch]\nper_day = 0\n")  # no daily limit in a benchmark
        env = dict(os.environ, **({"AUTOGRADER_ZYGOTE": "0"} if a.cold else {}))
        proc = subprocess.Popen([sys.executable, "-m", "autograder", "watch", "--workspace", str(ws), "--assignment",
                                 A, "--exchange", str(exchange), "--course", COURSE, "--interval", "0.02"],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            t0, page = submit(exchange, me, pool[1])
            first = wait_for(page, proc) - t0
            times = []
            for i in range(a.n):
                t0, page = submit(exchange, me, pool[i % 2])
                times.append(wait_for(page, proc) - t0)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        journal = [json.loads(line) for line in (ws / "watch" / A / "journal.jsonl").read_text().splitlines()]
        results = []  # what grading the timed rounds recorded
        for rec in journal[1:]:
            results.append(rec.get("seconds", float("nan")))
        res = json.loads((ws / "results" / A / f"{me}.json").read_text())
    med = statistics.median(times)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; kernels "
          f"{'from scratch (--cold)' if a.cold else 'forked from the zygote'}")
    print(f"first submission (canary + zygote start, not timed): {first:.2f} s")
    print(f"arrival to feedback page, {a.n} rounds of {A}: median {med:.2f} s (min {min(times):.2f}, max "
          f"{max(times):.2f}); target <= 3 s: {'met' if med <= 3 else 'NOT met'}")
    print(f"inside the watch per round (collect, grade, page), median: {statistics.median(results):.2f} s; the last "
          f"notebook: executing it {res['execute_s']:.2f} s (kernel start and cells, hidden checks included), "
          f"its whole grading job {res['total_s']:.2f} s")
    print(f"the rest (seeing the arrival, collect, gradebook, page): {med - res['total_s']:.2f} s")


if __name__ == "__main__":
    main()
