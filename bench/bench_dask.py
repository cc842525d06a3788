"""Grade N submissions through 2 local Dask workers (`grade --scheduler`) and with `grade --workers 2`.

The class is the fixture assignment sb_guard's scenarios replicated (right, blank, partial, a dying
kernel, a deleted test cell, a fork bomb: numpy only, so a kernel starts fast), the same folder
collected into two workspaces. Both runs grade in the sandbox with the canary, on this machine:
the Dask run pays for shipping notebooks to the workers and back, not for more cores. Prints the
wall time of each, seconds per submission and their ratio (the cluster's start-up, once per
session, is printed apart), and checks both runs gave every student the same status and score.
Printed, not asserted: the figures move with whatever else the machine runs.

    .venv/bin/python bench/bench_dask.py [--n 24] [--workers 2]     # the issue's figure: --n 200
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
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
SCEN = REPO / "autograder" / "scenarios"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(SCEN))

import make_hostile_scenarios as ms  # noqa: E402
from autograder.cluster import LocalCluster  # noqa: E402

POOL = ["complete", "unchanged-release", "edited-test-cell", "os-exit", "deleted-test-cell", "fork-bomb"]


def grade(ws: pathlib.Path, env: dict, *how: str) -> float:
    argv = [sys.executable, "-m", "autograder", "grade", "--workspace", str(ws), "--assignment", ms.ASSIGNMENT,
            "--source", str(SCEN / "source"), "--timeout-cell", "10", "--timeout-notebook", "60",
            "--memory-mb", "512", *how]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"grade {' '.join(how)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return wall


def outcomes(ws: pathlib.Path) -> dict:
    return {p.stem: (r["status"], r["score"]) for p in (ws / "results" / ms.ASSIGNMENT).glob("*.json")
            for r in [json.loads(p.read_text())]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="submissions (the issue's figure: 200)")
    ap.add_argument("--workers", type=int, default=2, help="local worker processes and Dask workers")
    a = ap.parse_args()
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-dask-"))
    try:
        subs, tmp = root / "in", root / "tmp"
        tmp.mkdir()
        env = {**os.environ, "TMPDIR": str(tmp)}
        for i in range(a.n):
            name = POOL[i % len(POOL)]
            (subs / f"s{i:04d}").mkdir(parents=True)
            shutil.copy(SCEN / ms.file_name(name), subs / f"s{i:04d}" / ms.NOTEBOOK)
        for ws in ("local", "dask"):
            subprocess.run([sys.executable, "-m", "autograder", "collect", str(subs), "--assignment", ms.ASSIGNMENT,
                            "--workspace", str(root / ws), "--source", str(SCEN / "source")], cwd=REPO, env=env,
                           check=True, capture_output=True)
        local = grade(root / "local", env, "--workers", str(a.workers))
        t0 = time.perf_counter()
        with LocalCluster(a.workers, env, root) as cluster:
            start = time.perf_counter() - t0
            remote = grade(root / "dask", env, "--scheduler", cluster.address)
        same = outcomes(root / "local") == outcomes(root / "dask")
        print(f"{a.n} submissions of {ms.ASSIGNMENT} ({', '.join(POOL)} in turn), {os.cpu_count()} cores")
        print(f"  {f'grade --workers {a.workers}':36s} {local:7.1f} s  ({local / a.n:.2f} s/submission)")
        print(f"  {f'grade --scheduler ({a.workers} Dask workers)':36s} {remote:7.1f} s  ({remote / a.n:.2f} s/submission)"
              f"  [+ {start:.1f} s to start the cluster]")
        print(f"  Dask / local: {remote / local:.2f}x; same status and score for every student: {same}")
        if not same:
            raise SystemExit("the two runs disagree")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
