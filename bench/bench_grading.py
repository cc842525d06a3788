"""Grade 40 submissions with `python -m autograder grade --workers 2` and with plain sequential
`nbgrader autograde` (its CLI, one process for the class), same machine, same run.

Prints seconds per submission for both, their ratio (target >= 1.8x on 2 cores) and our overhead
per submission beyond executing the notebook (target < 0.5 s). Printed, not asserted: the
figures move with whatever else the machine runs.

    .venv/bin/python bench/bench_grading.py [--n 40] [--assignment ps1_dsc] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.grade import Options, ensure_assignment  # noqa: E402
from autograder.release import notebook_names  # noqa: E402
from autograder.nbgrader_config import SOURCE  # noqa: E402

SAMPLES = REPO / "autograder" / "samples"


def make_class(root: pathlib.Path, assignment: str, n: int) -> list[pathlib.Path]:
    """n submissions cycling through the sample class's gradable notebooks (right, partial, mistakes)."""
    pool = sorted(p for p in (SAMPLES / assignment).glob(f"*/{assignment}.ipynb")
                  if "unreadable" not in str(p))
    if not pool:
        raise SystemExit(f"no samples under {SAMPLES / assignment}: run autograder/samples/make_samples.py")
    out = []
    for i in range(n):
        dest = root / f"student{i:03d}" / f"{assignment}.ipynb"
        dest.parent.mkdir(parents=True)
        shutil.copy(pool[i % len(pool)], dest)
        out.append(dest)
    return out


def run(argv, cwd, env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def ours(tmp: pathlib.Path, klass: pathlib.Path, a: argparse.Namespace) -> dict:
    ws = tmp / "ws"
    py = sys.executable
    run([py, "-m", "autograder", "collect", str(klass), "--assignment", a.assignment, "--workspace", str(ws)], REPO)
    # Record the assignment in the gradebook first (nbgrader's generate_assignment is untimed too).
    ensure_assignment(Options(workspace=str(ws), assignment=a.assignment, source=str(SOURCE)))
    unsafe = ["--unsafe"] if a.unsafe else []
    wall = run([py, "-m", "autograder", "grade", "--assignment", a.assignment, "--workspace", str(ws),
                "--workers", str(a.workers), "--timeout-notebook", "600"] + unsafe, REPO)
    results = [json.loads(p.read_text()) for p in (ws / "results" / a.assignment).glob("*.json")]
    return {"wall": wall, "results": results}


def nbgrader_cli(tmp: pathlib.Path, klass: pathlib.Path, a: argparse.Namespace) -> float:
    root = tmp / "course"
    (root / "submitted").mkdir(parents=True)
    shutil.copytree(SOURCE / a.assignment, root / "source" / a.assignment)
    for nb in klass.glob(f"*/{a.assignment}.ipynb"):
        dest = root / "submitted" / nb.parent.name / a.assignment
        dest.mkdir(parents=True)
        shutil.copy(nb, dest / nb.name)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.db_url = 'sqlite:///gradebook.db'\nc.Execute.timeout = 120\n")
    env = dict(os.environ, PATH=str(pathlib.Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    nbg = str(pathlib.Path(sys.executable).parent / "nbgrader")
    run([nbg, "generate_assignment", a.assignment], root, env)
    return run([nbg, "autograde", a.assignment], root, env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--assignment", default="ps1_dsc")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--unsafe", action="store_true", help="grade without the sandbox (as nbgrader does)")
    ap.add_argument("--nbgrader-first", action="store_true", help="run the baseline first (load drifts)")
    a = ap.parse_args()
    notebook_names(a.assignment)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = pathlib.Path(tmp)
        make_class(tmp / "class", a.assignment, a.n)
        loads = {}
        for phase in (["nbgrader", "ours"] if a.nbgrader_first else ["ours", "nbgrader"]):
            loads[phase] = os.getloadavg()[0]
            if phase == "ours":
                mine = ours(tmp, tmp / "class", a)
            else:
                seq = nbgrader_cli(tmp, tmp / "class", a)
    res = mine["results"]
    execute = statistics.mean(r.get("execute_s", 0.0) for r in res)
    inside = statistics.mean(r.get("total_s", 0.0) - r.get("execute_s", 0.0) for r in res)
    per_ours, per_seq = mine["wall"] / a.n, seq / a.n
    # Worker-seconds spent per submission beyond running the notebook (kernel start + cells):
    # process starts, sanitising, scoring, gradebook and file writes, idle tails.
    overhead = mine["wall"] * a.workers / a.n - execute
    print(f"machine: {os.cpu_count()} cores; 1-min load average when each phase began: ours "
          f"{loads['ours']:.1f}, nbgrader {loads['nbgrader']:.1f} (shared machine: figures are noisy)")
    print(f"{a.n} submissions of {a.assignment}; statuses: "
          + ", ".join(f"{s} {sum(r['status'] == s for r in res)}" for s in sorted({r['status'] for r in res})))
    print(f"autograder grade --workers {a.workers}: {mine['wall']:7.1f} s  = {per_ours:5.2f} s/submission")
    print(f"nbgrader autograde (sequential CLI): {seq:7.1f} s  = {per_seq:5.2f} s/submission")
    print(f"speed-up: {seq / mine['wall']:.2f}x (target >= 1.8x)")
    print(f"executing one notebook (kernel start + cells, mean): {execute:.2f} s")
    print(f"overhead per submission beyond executing it: {overhead:.2f} worker-s "
          f"(inside the worker: {inside:.2f} s; target < 0.5 s)")


if __name__ == "__main__":
    main()
