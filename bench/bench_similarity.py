"""How long ``python -m autograder similarity`` takes for a class of 300 (issue 24: well under a minute on 2 cores).

The class: 300 submissions of ps4_inverted_residual made from the sample class
(autograder/samples/make_similarity_samples.py): each is one of its eleven submissions (independent
solutions, blanks, copies) with every name given a per-student suffix, one statement pair swapped
and a comment added, so about one submission in eleven is a variation of every other one's base (a
hard case for the index: many pairs share many fingerprints). Prints the wall time of each stage and
the pairs per second (pairs the index found worth comparing, and all pairs it spared).

    .venv/bin/python bench/bench_similarity.py [--students 300]
"""
from __future__ import annotations

import argparse
import os
import io
import keyword
import pathlib
import random
import re
import sys
import tempfile
import time
import tokenize

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _generator():
    from autograder.samples import make_similarity_samples  # the sample class's generator, by name
    return make_similarity_samples


KEEP = {"self", "nn", "torch", "super", "int", "round", "range", "len", "sum", "max", "min", "isinstance", "hasattr",
        "math", "F", "fn", "OrderedDict", "V2_TABLE", "InvertedResidual", "mobilenet_v2", "block_macs", "forward",
        "__init__", "bool", "enumerate", "list", "dict", "print", "ValueError", "collections", "functional"}


def variant(src: str, suffix: str, rng: random.Random) -> str:
    """``src`` with its local names suffixed, two adjacent top-level statements of a body swapped, a comment."""
    names = set()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string) and tok.string not in KEEP \
                and not tok.string[0].isupper() and tok.string not in names:
            names.add(tok.string)
    text = src
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.]){re.escape(name)}\b", f"{name}_{suffix}", text)
    lines = text.splitlines()
    simple = [i for i in range(len(lines) - 1) if re.match(r"^\s{8}\w+(_\w+)* = ", lines[i])
              and re.match(r"^\s{8}\w+(_\w+)* = ", lines[i + 1]) and lines[i].rstrip().endswith(")")]
    if simple:
        i = rng.choice(simple)
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return f"# student {suffix}\n" + "\n".join(lines)


def build(ws: pathlib.Path, students: int, seed: int = 0) -> None:
    import nbformat
    gen = _generator()
    rng = random.Random(seed)
    bases = list(gen.CLASS.items())
    for n in range(students):
        base_name, answers = bases[n % len(bases)]
        sid = f"u{n:04d}"
        filled = {gid: variant(src, sid, rng) for gid, src in answers.items()}
        folder = ws / "submitted" / sid / gen.ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(gen.fill(filled), folder / f"{gen.ASSIGNMENT}.ipynb")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=300)
    a = ap.parse_args()
    from autograder import similarity as sim

    with tempfile.TemporaryDirectory() as tmp:
        ws = pathlib.Path(tmp)
        t0 = time.perf_counter()
        build(ws, a.students)
        t1, c1 = time.perf_counter(), time.process_time()
        docs, boilerplate = sim.documents("ps4_inverted_residual", ws)
        t2, c2 = time.perf_counter(), time.process_time()
        sim.fingerprint(docs, boilerplate)
        t3, c3 = time.perf_counter(), time.process_time()
        found = sim.candidates(docs)
        t4, c4 = time.perf_counter(), time.process_time()
        rep = sim.similarity("ps4_inverted_residual", ws)  # the whole command again, report written
        t5, c5 = time.perf_counter(), time.process_time()
    students = sum(d.kind == "student" for d in docs)
    all_pairs = students * (students - 1) // 2 + students * (len(docs) - students)
    pages = sum(bool(p.page) for p in rep.flagged)
    print(f"class: {students} submissions of ps4_inverted_residual + {len(docs) - students} source document(s) "
          f"(built in {t1 - t0:.1f} s); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("stage                       wall      this process's CPU (the fingerprint workers' not counted)")
    print(f"  read answer cells        {t2 - t1:6.2f} s  {c2 - c1:6.2f} s")
    print(f"  fingerprint (copydetect) {t3 - t2:6.2f} s  {c3 - c2:6.2f} s")
    print(f"  inverted index           {t4 - t3:6.2f} s  {c4 - c3:6.2f} s: {len(found)} of {all_pairs} pairs share >= "
          f"{sim.MIN_SHARED} fingerprints")
    print(f"whole command (read, fingerprint, index, compare, write pairs.csv + {pages} pages): "
          f"{t5 - t4:.2f} s wall, {c5 - c4:.2f} s CPU")
    print(f"  {rep.compared / (t5 - t4):,.0f} compared pairs/s; {all_pairs / (t5 - t4):,.0f} pairs/s of all "
          f"{all_pairs} pairs; {len(rep.flagged)} flagged (the variations of one base are copies of each other)")

if __name__ == "__main__":
    main()
