"""Book build budget on this machine: clean build, unchanged rebuild, slowest page.

Targets (issue 4, 2-core CPU): clean build < 15 min, unchanged rebuild < 1 min, no page executing
for more than 2 min. Printed, not asserted. The clean build runs in a temporary copy of the
repository so your own _build/ and its cache are left alone.

    .venv/bin/python bench/bench_book_build.py          # clean + unchanged rebuild
    .venv/bin/python bench/bench_book_build.py --pages  # only the per-page table of the current cache
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JB = ROOT / ".venv" / "bin" / "jupyter-book"
TARGETS = {"clean": 15 * 60, "rebuild": 60, "page": 120}


def build(repo: Path) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([str(JB), "build", str(repo), "-W", "--keep-going"], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"build failed in {repo}:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return dt


def page_times(cache: Path) -> list[tuple[str, float]]:
    from jupyter_cache import get_cache
    latest = {}  # the cache keeps old versions of a page too: take the newest record of each
    for r in sorted(get_cache(str(cache)).list_cache_records(), key=lambda r: r.created):
        latest[r.uri] = r.data.get("execution_seconds", float("nan"))
    root = str(cache.parents[1])
    rows = [(uri[len(root) + 1:] if uri.startswith(root) else uri, secs) for uri, secs in latest.items()]
    return sorted(rows, key=lambda x: -x[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", action="store_true", help="only print per-page times from _build's cache")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, date {time.strftime('%Y-%m-%d %H:%M')}")
    if args.pages:
        rows = page_times(ROOT / "_build" / ".jupyter_cache")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp) / "repo"
            ignore = shutil.ignore_patterns(".venv", "_build", ".git", "test-artifacts", "workspace",
                                            ".pytest_cache", ".hypothesis", "__pycache__")
            shutil.copytree(ROOT, repo, ignore=ignore)
            os.symlink(ROOT / ".venv", repo / ".venv")
            clean = build(repo)
            rebuild = build(repo)
            rows = page_times(repo / "_build" / ".jupyter_cache")
        print(f"clean build        {clean:8.1f} s   target < {TARGETS['clean']} s   "
              f"{'OK' if clean < TARGETS['clean'] else 'OVER'}")
        print(f"unchanged rebuild  {rebuild:8.1f} s   target < {TARGETS['rebuild']} s   "
              f"{'OK' if rebuild < TARGETS['rebuild'] else 'OVER'}")
    print(f"\n{'page':52s} {'execution s':>12s}")
    for uri, secs in rows:
        flag = "" if secs < TARGETS["page"] else "   OVER 2 min"
        print(f"{uri:52s} {secs:12.1f}{flag}")
    if rows:
        print(f"\nslowest page {rows[0][1]:.1f} s (target < {TARGETS['page']} s); "
              f"sum of page execution {sum(s for _, s in rows):.1f} s over {len(rows)} pages")


if __name__ == "__main__":
    main()
