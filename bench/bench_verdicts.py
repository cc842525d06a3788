"""Do the book's glued verdicts survive a busy machine? (issue 22, "Done when")

Executes the timing- and training-dependent pages twice, the second time while other processes
keep every core busy, and compares every glued *verdict* (a glued text with words in it) between
the two runs. Numbers may differ; a verdict may turn into "this run cannot tell" (or back); any
other change of wording is reported as a possible contradiction, for a person to read. Printed, not
asserted: a timing on a shared machine is not a test.

    .venv/bin/python bench/bench_verdicts.py                      # all pages below (about 30+ min on 2 cores)
    .venv/bin/python bench/bench_verdicts.py --pages ch01 ch08b   # a subset, by name prefix
    make verdicts                                                 # the same, all pages

The pages run with nbclient from their MyST source (myst_nb's reader), in their own folder, as the
book build runs them, but outside jupyter-cache: _build/ is not touched.
"""
import argparse
import multiprocessing as mp
import os
import re
import sys
import time
from pathlib import Path

import nbclient
from myst_nb.core.read import read_myst_markdown_notebook

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["book/part1/ch01_why_efficient.md", "book/part1/ch08_roofline.md", "book/part1/ch08b_measuring.md",
         "book/part2/ch10_time_series.md", "book/part2/ch12_compression.md", "book/part2/ch13_quantization.md",
         "book/part2/ch14_pareto.md", "book/part2/ch15_latency_search.md"]
# wording that is allowed to replace a decided verdict (or be replaced by one)
UNDECIDED = re.compile(r"cannot tell|cannot resolve|cannot be told|not shown|no difference shown|neither is shown|"
                       r"within the (seed )?noise|within what|interval contains|overlap|does not separate|"
                       r"does not show|not to be trusted|too narrow", re.I)


def busy(stop):
    """Spin on one core until told to stop (pure Python: no library threads)."""
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) % 2 ** 31


def glued(page: Path, timeout: int) -> dict:
    """Execute a MyST page; return {glue name: text/plain value} of its glued outputs."""
    nb = read_myst_markdown_notebook(page.read_text())
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(page.parent)}})
    client.execute()
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            scrap = o.get("metadata", {}).get("scrapbook", {})
            key = scrap.get("mime_prefix", "") + "text/plain"
            if scrap.get("name") and key in o.get("data", {}):
                out[scrap["name"]] = o["data"][key].strip("'\"")
    return out


def words(text: str) -> str:
    """A verdict's wording: numbers replaced by #, so that only the words are compared."""
    return re.sub(r"[-+]?\d[\d,.]*(e[-+]?\d+)?%?", "#", text)


def is_verdict(text: str) -> bool:
    return len(re.findall(r"[A-Za-z]{3,}", text)) >= 2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", nargs="*", help="name prefixes of the pages to run (default: all)")
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy processes in the second run")
    ap.add_argument("--timeout", type=int, default=600, help="per-cell timeout, seconds")
    args = ap.parse_args(argv)
    pages = [ROOT / p for p in PAGES if not args.pages or any(Path(p).name.startswith(q) for q in args.pages)]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    os.environ.setdefault("MPLBACKEND", "Agg")
    runs = {}
    for label in ("quiet", "busy"):
        stop = mp.Event()
        spinners = [mp.Process(target=busy, args=(stop,), daemon=True) for _ in range(args.busy if label == "busy" else 0)]
        for s in spinners:
            s.start()
        try:
            for page in pages:
                t0 = time.perf_counter()
                runs[label, page.name] = glued(page, args.timeout)
                print(f"{label:5s} {page.name}: {len(runs[label, page.name])} glued values, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
        finally:
            stop.set()
            for s in spinners:
                s.join()
    total, changed, contradictions = 0, 0, []
    for page in pages:
        a, b = runs["quiet", page.name], runs["busy", page.name]
        for name in sorted(set(a) & set(b)):
            if not (is_verdict(a[name]) or is_verdict(b[name])):
                continue
            total += 1
            if words(a[name]) == words(b[name]):
                continue
            changed += 1
            undecided = bool(UNDECIDED.search(a[name])) != bool(UNDECIDED.search(b[name]))
            print(f"\n{page.name} / {name} ({'one run cannot tell: allowed' if undecided else 'CHECK'}):\n"
                  f"  quiet: {a[name]}\n  busy:  {b[name]}")
            if not undecided:
                contradictions.append((page.name, name))
    print(f"\n{total} glued verdicts compared on {len(pages)} pages; {changed} changed wording; "
          f"{len(contradictions)} to read as possible contradictions: {contradictions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
