"""``python -m autograder similarity``: which answers look copied, for a person to read (issue 24).

The course is open: the reference answers (solutions/) and mnlib's implementations sit in the same
public repository as the exercises. This report compares the **answer cells** of every submission
of one assignment (cells whose nbgrader metadata says ``solution``; the released notebook's stubs in
them are boilerplate and never count) with

- every other submission of the class,
- the reference answers (``solutions/<id>/<id>.ipynb``, the ``### BEGIN/END SOLUTION`` lines removed),
- mnlib's source, one document (its ``*.py`` files one after the other, each under its name),
- archived submissions of earlier terms (``--against DIR``: laid out like ``submitted/``, or
  ``<student>/<notebook>.ipynb``; named ``<DIR's name>/<student>`` in the report).

It writes ``<workspace>/similarity/<assignment>/pairs.csv`` (every pair with a matched run of at
least ``MIN_RUN / 2`` tokens, ranked), ``index.html`` and one page per flagged pair with both answers side by side and the matched
regions highlighted: plain HTML with inline CSS, nothing loaded from anywhere, written through the
grader's private writer (files 0600, folders 0700). Students are named by their course id. A flag
asks a person to read two answers; it is never a penalty, and ``check`` lists flagged pairs with the
other review lines.

Why copydetect (0.5.0)
----------------------
Alternatives looked at:

- **MOSS** (the reference method, winnowing by Schleimer, Wilkerson and Aiken 2003) is a web
  service: the submissions would leave the machine. No.
- **JPlag** (Java) and **Dolos** (Node.js, tree-sitter) are good tools, but they bring a second
  runtime into a Python-only grading environment that runs offline on 2 cores, and their reports are
  web applications of their own.
- **pycode-similar** compares Python ASTs function by function (a difflib ratio of normalised
  function bodies). It is made for two files, not a class, has no winnowing or index, and its
  per-function pairing misses code moved between functions or helpers.
- **A home-made comparison** (difflib on normalised lines) would be ours to validate and is
  quadratic in practice.

``copydetect`` is a maintained Python package that implements MOSS's method: pygments tokens with
every name replaced by ``V``/``F``/``O`` and every string by ``S`` (so renaming and reformatting do
not hide a copy; comments and whitespace are dropped), k-grams of that token text hashed and
winnowed (one fingerprint guaranteed per ``WIN + K - 1`` tokens), and boilerplate fingerprints
removed. We use its fingerprinting (``CodeFingerprint``) and pairwise comparison (``compare_files``)
and not its HTML report, whose template loads Bootstrap from a CDN. Its all-pairs loop is replaced by
an inverted index: a sparse (documents x fingerprints) matrix times its transpose counts the shared
fingerprints of every pair at once; for pairs that share ``MIN_SHARED`` or more, the longest matched
run is computed first (copydetect's rule, in plain Python), and ``compare_files`` runs for those whose run reaches
half of ``MIN_RUN`` (the pairs listed in pairs.csv; the others cannot be flagged).
300 submissions (``bench/bench_similarity.py``): 8.6 to 17.6 s wall on the 2 shared cores of the
development machine at load average 4.5 to 5 (about 8 s of CPU: 3.5 s tokenising, 4 s the rest).

Parameters (chosen on the sample class, autograder/samples/make_similarity_samples.py)
-------------------------------------------------------------------------------------
A "token" is one character of copydetect's filtered text: a name is one token (``V``), an operator
or bracket one, a number its digits, a keyword its letters. ``self.bn = nn.BatchNorm2d(c)`` is
``self.V=V.V(V)``: 15 tokens.

- ``K = 25`` tokens per k-gram (copydetect's default noise threshold; about one short statement):
  a shorter k-gram matches idioms every solution writes (``nn.Conv2d(a, b, 1, bias=False)``,
  ``for t, c, n, s in V2_TABLE:``); a one-line formula such as ``return c_out * c_in * k * k`` (13
  tokens) gives no k-gram at all.
- ``WIN = 4``: winnowing keeps the minimum hash of every 4 consecutive k-grams, so any match of
  ``K + WIN - 1 = 28`` tokens or more is guaranteed to be found, keeping about 2/5 of the hashes.
- A pair is **flagged** when the longest run of consecutive matched tokens is at least
  ``MIN_RUN = 100`` tokens (four to six statements copied in a row) **and** the matched tokens are
  at least ``MIN_SHARE = 0.3`` of one side's answer tokens (against the reference or mnlib, of the
  student's side: mnlib is one document, its files one after the other, so an answer stitched from
  layers.py and cost.py counts whole).

How they were chosen: on the sample class (five independent correct solutions, two blanks, four
copies, two archived answers) every k in 15, 20, 25, 30, 40 and window in 1, 4, 8 was run and the
longest run and share of the copies compared with those of every other pair (``tests/test_similarity.py``
asserts the margins: copies' runs at least 1.25 x MIN_RUN, every other pair's at most 0.8 x MIN_RUN). With k = 25, window 4: the copies' shortest longest-run is 139 tokens
(mnlib's classes adapted; the renamed classmate 523, the reformatted reference 151, the earlier term
718) and their lowest share 0.52; independent pairs reach runs of at most 68 tokens (the network's
tail that the exercise text dictates: conv 1280, BN, ReLU6, pool, flatten, dropout, linear) and
shares of up to 0.39, because correct answers to one exercise share much of their token structure.
So the run separates copies from independent work (100 is about 1.4 x 68 and 139 / 1.4); the share
(0.3, below both groups' shares: it is not what separates them) only keeps one long run inside a
long answer, more likely a shared idiom than a copy, from flagging alone. k = 15 breaks the copies'
runs (more short k-grams fall into the boilerplate) to 57 tokens, below the 71 of independent pairs:
no threshold separates them; k = 20 leaves 80 against 70, too close; 30 and 40 keep the runs apart
too, but the share of the adapted mnlib copy falls (0.43 at 30, 0.29 at 40: below MIN_SHARE). A formula that every correct
solution writes (``c_in * k * k + c_in * c_out``, ps1) is far below 100 tokens and never flagged.
A copier who reorders every statement or rewrites each line can go unseen, as with MOSS: the report
finds copies made in haste, not every copy.
"""
from __future__ import annotations

import csv
import dataclasses
import html
import io
import os
import pathlib
import re

from .nbgrader_config import RELEASE, REPO, SOURCE

K = 25
WIN = 4
MIN_SHARED = 3       # fingerprints two documents must share to be compared at all
MIN_RUN = 100        # longest run of consecutive matched tokens of a flagged pair
MIN_SHARE = 0.3      # matched share of one side's answer tokens of a flagged pair
MAX_PAGES = 200      # side-by-side pages for the highest-ranked flagged pairs (the rest: in the table)
CONTEXT_LINES = 4    # a long source (an mnlib file) shows only this many lines around its matches

MNLIB = REPO / "mnlib"
CELL_HEADER = "# --- answer cell {} ---"
FILE_HEADER = "# ====== mnlib/{} ======"
FILE_PREFIX = FILE_HEADER.split("{")[0]


@dataclasses.dataclass
class Document:
    name: str            # a student id, solutions/<id>, mnlib/<file>.py, <archive>/<student>
    kind: str            # student | reference | mnlib | archive
    text: str
    fp: object = None    # copydetect CodeFingerprint


@dataclasses.dataclass
class Pair:
    a: str
    b: str
    share_a: float
    share_b: float
    matched: int         # matched tokens of a
    longest: int         # longest run of consecutive matched tokens (the shorter side's)
    flagged: bool
    slices: tuple = ()   # copydetect's matched character ranges in a's and b's text
    page: str = ""


@dataclasses.dataclass
class Report:
    folder: pathlib.Path
    documents: int
    students: int
    compared: int
    pairs: list[Pair]
    skipped: list[str]
    min_run: int = MIN_RUN

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.flagged]

    def lines(self) -> list[str]:
        out = [f"similarity: {self.students} submission(s) against each other and {self.documents - self.students} "
               f"source document(s); {self.compared} pair(s) share fingerprints, {len(self.pairs)} of them a run of "
               f"{self.min_run // 2}+ tokens (listed), {len(self.flagged)} flagged for review"]
        out += [f"skipped  {s}" for s in self.skipped]
        paged = sum(bool(p.page) for p in self.flagged)
        if paged < len(self.flagged):
            out.append(f"pages    for the {paged} highest-ranked of {len(self.flagged)} flagged pairs (so many flags "
                       "usually mean something all submissions share that is not in the released stubs); the "
                       "rest are in pairs.csv and index.html")
        for p in self.flagged[:50]:
            out.append(f"review   {p.a} ~ {p.b}: {p.share_a:.0%} / {p.share_b:.0%} of the answer tokens matched, "
                       f"longest run {p.longest} tokens ({self.folder / p.page})")
        out.append(f"report   {self.folder / 'index.html'} (a flag is for a person to read, never a penalty)")
        return out


# --- documents --------------------------------------------------------------------------------

def _cells(nb, *, strip_markers: bool = False) -> list[tuple[str, str]]:
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            src = cell.source
            if strip_markers:
                src = "\n".join(line for line in src.splitlines()
                                if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)
            out.append((meta.get("grade_id", "?"), src))
    return out


def answer_text(nb, *, strip_markers: bool = False) -> str:
    """The answer cells of a notebook, one after the other under a comment naming each (comments are
    no tokens, so the headers never match)."""
    return "\n\n".join(f"{CELL_HEADER.format(gid)}\n{src.rstrip()}" for gid, src in
                       _cells(nb, strip_markers=strip_markers)) + "\n"


def mnlib_text(folder: pathlib.Path = MNLIB) -> str:
    """mnlib's source as one document, each file under a comment naming it: an answer stitched
    together from several of its files (a class from layers.py, a count from cost.py) is one copy."""
    return "\n".join(f"{FILE_HEADER.format(p.name)}\n{p.read_text(encoding='utf-8').rstrip()}\n"
                     for p in sorted(folder.glob("*.py")))


class _Cell(dict):
    __getattr__ = dict.get


def _read(path: pathlib.Path):
    """A notebook's cells as plain JSON (nbformat's validation would cost more than the comparison)."""
    import json
    with open(path, encoding="utf-8") as fh:
        nb = json.load(fh)
    cells = []
    for c in nb["cells"]:
        src = c.get("source", "")
        cells.append(_Cell(cell_type=c.get("cell_type"), source="".join(src) if isinstance(src, list) else src,
                           metadata=c.get("metadata") or {}))
    return _Cell(cells=cells)


def _notebook_names(release: pathlib.Path) -> list[str]:
    names = sorted(p.name for p in release.glob("*.ipynb"))
    if not names:
        raise ValueError(f"no released notebook in {release} (run `python -m autograder release`)")
    return names


def _submission(folder: pathlib.Path, names: list[str], who: str, skipped: list[str]) -> str | None:
    texts = []
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        try:
            texts.append(answer_text(_read(path)))
        except Exception as exc:  # noqa: BLE001 - an unreadable upload is reported, not compared
            skipped.append(f"{who}: {name} is not a readable notebook ({type(exc).__name__})")
    if not texts:
        if folder.is_dir():
            skipped.append(f"{who}: no {' or '.join(names)} to compare")
        return None
    return "\n".join(texts)


def documents(assignment: str, workspace, *, against=(), source=SOURCE, release=None,
              skipped: list[str] | None = None) -> tuple[list[Document], str]:
    """The class's answers, the reference answers, mnlib's files, the archives; and the boilerplate
    (the released answer cells' stubs)."""
    ws = pathlib.Path(workspace)
    skipped = [] if skipped is None else skipped
    release = pathlib.Path(release) if release else (ws / "release" / assignment if (ws / "release" / assignment).is_dir()
                                                     else RELEASE / assignment)
    names = _notebook_names(release)
    boilerplate = "\n".join(answer_text(_read(release / n)) for n in names)
    docs = []
    submitted = ws / "submitted"
    for folder in sorted(submitted.glob(f"*/{assignment}")):
        text = _submission(folder, names, folder.parent.name, skipped)
        if text is not None:
            docs.append(Document(folder.parent.name, "student", text))
    if not docs:
        raise ValueError(f"no submission of {assignment} in {submitted}")
    src = pathlib.Path(source) / assignment
    ref = [answer_text(_read(src / n), strip_markers=True) for n in names if (src / n).is_file()]
    if ref:
        docs.append(Document(f"solutions/{assignment}", "reference", "\n".join(ref)))
    docs.append(Document("mnlib", "mnlib", mnlib_text()))
    seen = set()
    for folder in against:
        folder = pathlib.Path(folder)
        if not folder.is_dir():
            raise ValueError(f"--against {folder}: not a folder")
        label = folder.resolve().name
        if (folder / "submitted").is_dir():  # a whole earlier workspace
            folder = folder / "submitted"
        if label in seen:
            raise ValueError(f"--against: two archives named {label}; give folders with distinct names")
        seen.add(label)
        for student in sorted(p for p in folder.iterdir() if p.is_dir()):
            sub = student / assignment if (student / assignment).is_dir() else student
            text = _submission(sub, names, f"{label}/{student.name}", skipped)
            if text is not None:
                docs.append(Document(f"{label}/{student.name}", "archive", text))
    return docs, boilerplate


# --- fingerprints and comparison --------------------------------------------------------------

def stable_kgram_hashes(string: str, k: int):
    """The 64-bit hash of every k-gram of ``string``, the same in every process.

    copydetect hashes k-grams with Python's ``hash()``, which is salted per process
    (PYTHONHASHSEED): winnowing then keeps other fingerprints on every run, and one pair of the
    sample read 91 % on one run and 86 % on the next. A report must not change when nothing
    changed, so ``fingerprint`` swaps in this polynomial hash (FNV prime, then a 64-bit mixer)."""
    import numpy as np
    codes = np.frombuffer(string.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(codes) - k + 1
    if n <= 0:
        return np.array([], dtype=np.int64)
    h = np.zeros(n, dtype=np.uint64)
    prime = np.full(n, 1099511628211, dtype=np.uint64)
    for j in range(k):
        h = h * prime + codes[j:j + n]
    h ^= h >> np.uint64(33)
    h *= np.full(n, 0xFF51AFD7ED558CCD, dtype=np.uint64)
    h ^= h >> np.uint64(33)
    return h.view(np.int64)


def _fingerprints(items: list[tuple[str, str]], k: int, win: int, boilerplate) -> list:
    """copydetect fingerprints of (name, text) items, hashed with ``stable_kgram_hashes``."""
    from copydetect import utils
    from copydetect.detector import CodeFingerprint

    saved, utils.hashed_kgrams = utils.hashed_kgrams, stable_kgram_hashes
    try:
        return [CodeFingerprint(file=f"{name}.py", k=k, win_size=win, boilerplate=boilerplate,
                                fp=io.StringIO(text), language="python") for name, text in items]
    finally:
        utils.hashed_kgrams = saved


def fingerprint(docs: list[Document], boilerplate: str, *, k: int = K, win: int = WIN,
                workers: int | None = None) -> None:
    """Give each document its copydetect fingerprint, the boilerplate's k-grams removed (copydetect's
    own rule: every k-gram of the boilerplate, window 1). Tokenising is most of the time, so a large
    class is split over ``workers`` processes (default: the cores)."""
    import numpy as np

    bp = _fingerprints([("boilerplate", boilerplate)], k, 1, None)[0]
    bp_hashes = np.unique(np.array(sorted(bp.hashes), dtype=np.int64))
    items = [(d.name, d.text) for d in docs]
    workers = max(1, min(workers or os.cpu_count() or 1, len(docs) // 20))
    if workers == 1:
        fps = _fingerprints(items, k, win, bp_hashes)
    else:
        import concurrent.futures
        import multiprocessing
        # balanced by length (mnlib is long); order restored below
        order = sorted(range(len(items)), key=lambda i: -len(items[i][1]))
        chunks: list[list[int]] = [[] for _ in range(workers)]
        load = [0] * workers
        for i in order:
            w = load.index(min(load))
            chunks[w].append(i)
            load[w] += len(items[i][1])
        fps = [None] * len(items)
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as ex:
            futures = [(c, ex.submit(_fingerprints, [items[i] for i in c], k, win, bp_hashes)) for c in chunks]
            for c, fut in futures:
                for i, fp in zip(c, fut.result()):
                    fps[i] = fp
    for d, fp in zip(docs, fps):
        d.fp = fp


def candidates(docs: list[Document], *, min_shared: int = MIN_SHARED) -> list[tuple[int, int, int]]:
    """(i, j, shared fingerprints) for every pair worth comparing: a student with a later document.

    The inverted index as a sparse matrix: rows are documents, columns fingerprints; M M^T counts the
    fingerprints each pair shares, with no loop over pairs."""
    import numpy as np
    from scipy import sparse

    column: dict[int, int] = {}
    rows, cols = [], []
    for i, d in enumerate(docs):
        for h in d.fp.hashes:
            rows.append(i)
            cols.append(column.setdefault(int(h), len(column)))
    m = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(docs), max(1, len(column))))
    shared = sparse.triu(m @ m.T, k=1).tocoo()
    student = np.array([d.kind == "student" for d in docs])
    keep = (shared.data >= min_shared) & (student[shared.row] | student[shared.col])
    return sorted(zip(shared.row[keep].tolist(), shared.col[keep].tolist(), shared.data[keep].tolist()))


def _longest_run(fp, shared) -> int:
    """The longest stretch of ``fp``'s tokens covered by its k-grams whose hash is in ``shared``:
    copydetect's get_copied_slices rule (positions fewer than k apart join), in plain Python (a pair
    shares some hundred hashes; numpy's per-call cost was most of the time)."""
    pos = sorted(p for h in shared for p in fp.hash_idx[h])
    if not pos:
        return 0
    best, start, prev = 0, pos[0], pos[0]
    for p in pos[1:]:
        if p - prev > fp.k - 1:
            best = max(best, prev - start)
            start = p
        prev = p
    return int(max(best, prev - start) + fp.k)


def _longest(fp_a, fp_b) -> int:
    shared = fp_a.hashes & fp_b.hashes
    return min(_longest_run(fp_a, shared), _longest_run(fp_b, shared)) if shared else 0


def compare(a: Document, b: Document, *, min_run: int = MIN_RUN, min_share: float = MIN_SHARE,
            longest: int | None = None) -> Pair:
    from copydetect.detector import compare_files
    matched, (share_a, share_b), slices = compare_files(a.fp, b.fp)
    if longest is None:
        longest = _longest(a.fp, b.fp) if matched else 0
    # a source (the reference, mnlib) is judged by the student's side only
    share = max(share_a, share_b) if b.kind in ("student", "archive") else share_a
    flagged = bool(longest >= min_run and share >= min_share)
    return Pair(a.name, b.name, float(share_a), float(share_b), int(matched), longest, flagged, slices)


def compare_all(docs: list[Document], *, min_run: int = MIN_RUN, min_share: float = MIN_SHARE
                ) -> tuple[int, list[Pair]]:
    """(pairs that share fingerprints, the compared pairs ranked). The longest run of every candidate
    is computed first (vectorised); copydetect's comparison runs for pairs whose run reaches half of
    ``min_run``: the others cannot be flagged and are only counted."""
    pairs = []
    found = candidates(docs)
    for i, j, _ in found:
        a, b = (docs[i], docs[j]) if docs[i].kind == "student" else (docs[j], docs[i])
        longest = _longest(a.fp, b.fp)
        if longest >= min_run // 2 and longest > 0:
            pairs.append(compare(a, b, min_run=min_run, min_share=min_share, longest=longest))
    pairs.sort(key=lambda p: (not p.flagged, -max(p.share_a, p.share_b), -p.matched, p.a, p.b))
    return len(found), pairs


# --- the report -------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #111; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
tr.flagged td { background: #fff3cd; }
.side { display: flex; gap: 1em; align-items: flex-start; }
.side > div { flex: 1 1 0; min-width: 0; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: .6em; overflow-x: auto; font-size: 12.5px;
      line-height: 1.35; white-space: pre; }
mark.match { background: #ffd54f; color: inherit; }
.gap { color: #777; font-style: italic; }
.note { color: #444; max-width: 60em; }
"""


def _page(title: str, body: str) -> bytes:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
            ).encode("utf-8")


def highlight(text: str, slices, *, context: int | None = None, keep: str | None = None) -> str:
    """``text`` escaped, with each matched character range in ``<mark class="match">``; with
    ``context``, unmatched stretches longer than that many lines around matches are collapsed (lines
    starting with ``keep``, the file names of mnlib's document, stay)."""
    ranges = []
    if slices is not None and len(slices) and len(slices[0]):
        for s, e in sorted(zip((int(x) for x in slices[0]), (int(x) for x in slices[1]))):
            s, e = max(0, s), min(len(text), e)
            if e <= s:
                continue
            if ranges and s <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], e)
            else:
                ranges.append([s, e])
    lines = text.splitlines(keepends=True)
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line)
    marked = [False] * len(lines)
    out_lines = []
    r = 0
    for n, line in enumerate(lines):
        lo, hi = starts[n], starts[n] + len(line)
        while r < len(ranges) and ranges[r][1] <= lo:
            r += 1
        parts, cur, q = [], lo, r
        while q < len(ranges) and ranges[q][0] < hi:
            s, e = max(ranges[q][0], lo), min(ranges[q][1], hi)
            parts.append(html.escape(text[cur:s]))
            seg = text[s:e]
            if seg.strip():
                marked[n] = True
                parts.append(f'<mark class="match">{html.escape(seg)}</mark>')
            else:
                parts.append(html.escape(seg))
            cur = e
            if ranges[q][1] > hi:
                break
            q += 1
        parts.append(html.escape(text[cur:hi]))
        out_lines.append("".join(parts))
    if context is None:
        return "".join(out_lines)
    keep_line = [False] * len(lines)
    for n, m in enumerate(marked):
        if keep and lines[n].startswith(keep):
            keep_line[n] = True
        if m:
            for j in range(max(0, n - context), min(len(lines), n + context + 1)):
                keep_line[j] = True
    out, skipped = [], 0
    for n, line in enumerate(out_lines):
        if keep_line[n]:
            if skipped:
                out.append(f'<span class="gap">    ... {skipped} line(s) without a match ...</span>\n')
                skipped = 0
            out.append(line)
        else:
            skipped += 1
    if skipped:
        out.append(f'<span class="gap">    ... {skipped} line(s) without a match ...</span>\n')
    return "".join(out)


def _pair_page(assignment: str, p: Pair, a: Document, b: Document) -> bytes:
    ctx_b = CONTEXT_LINES if b.kind == "mnlib" else None
    body = (f"<p><a href=\"index.html\">all pairs of {html.escape(assignment)}</a></p>\n"
            f"<h1>{html.escape(p.a)} and {html.escape(p.b)}</h1>\n"
            f"<p class=\"note\">{p.share_a:.0%} of {html.escape(p.a)}'s answer tokens and {p.share_b:.0%} of "
            f"{html.escape(p.b)}'s matched ({p.matched} tokens of {html.escape(p.a)}; longest run {p.longest} "
            f"tokens). Highlighted: the regions whose token sequence (names and strings replaced, comments "
            f"and layout ignored) occurs in the other text. A flag asks a person to read both answers; it "
            f"is never a penalty by itself.</p>\n"
            f"<div class=\"side\">\n<div><h2>{html.escape(p.a)}</h2>\n<pre id=\"a\">"
            f"{highlight(a.text, p.slices[0] if p.slices else None)}</pre></div>\n"
            f"<div><h2>{html.escape(p.b)}</h2>\n<pre id=\"b\">"
            f"{highlight(b.text, p.slices[1] if p.slices else None, context=ctx_b, keep=FILE_PREFIX)}</pre></div>\n</div>")
    return _page(f"{p.a} ~ {p.b} ({assignment})", body)


def _index_page(assignment: str, rep: Report, params: dict) -> bytes:
    rows = []
    for p in rep.pairs:
        link = f'<a href="{html.escape(p.page)}">side by side</a>' if p.page else ""
        cls = ' class="flagged"' if p.flagged else ""
        rows.append(f"<tr{cls}><td>{html.escape(p.a)}</td>"
                    f"<td>{html.escape(p.b)}</td><td>{p.share_a:.0%}</td><td>{p.share_b:.0%}</td>"
                    f"<td>{p.matched}</td><td>{p.longest}</td><td>{'yes' if p.flagged else ''}</td><td>{link}</td></tr>")
    skipped = "".join(f"<li>{html.escape(s)}</li>" for s in rep.skipped)
    body = (f"<h1>Similarity of {html.escape(assignment)}</h1>\n"
            f"<p class=\"note\">{rep.students} submission(s) compared with each other, the reference answers, "
            f"mnlib's source and {rep.documents - rep.students} source document(s) in all; answer cells only, the "
            f"released stubs removed as boilerplate. {rep.compared} pair(s) shared a fingerprint, "
            f"{len(rep.pairs)} of them in a run of at least {params['min_run'] // 2} tokens (listed below and in "
            f"pairs.csv); "
            f"<b>{len(rep.flagged)} flagged</b> (longest matched run at least {params['min_run']} tokens and at "
            f"least {params['min_share']:.0%} of one side's answer tokens matched; k = {params['k']}, window "
            f"{params['win']}). A flag asks a person to read two answers side by side: short answers that "
            f"every correct solution shares are not flagged, and a flag is never a penalty by itself.</p>\n"
            + (f"<p>Not compared:</p><ul>{skipped}</ul>\n" if skipped else "")
            + "<table><tr><th>a</th><th>b</th><th>share of a</th><th>share of b</th><th>matched tokens</th>"
              "<th>longest run</th><th>flagged</th><th></th></tr>\n" + "\n".join(rows) + "\n</table>")
    return _page(f"Similarity of {assignment}", body)


def similarity(assignment: str, workspace, *, against=(), source=SOURCE, release=None, k: int = K, win: int = WIN,
               min_run: int = MIN_RUN, min_share: float = MIN_SHARE, max_pages: int = MAX_PAGES) -> Report:
    """Compare, then write pairs.csv, index.html and one page per flagged pair under
    ``<workspace>/similarity/<assignment>/``."""
    from .files import atomic_write, private_dirs

    ws = pathlib.Path(workspace)
    if not ws.is_dir():
        raise ValueError(f"workspace: {ws} is not a folder")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", assignment) or assignment.startswith("."):
        raise ValueError(f"assignment: {assignment!r} is not an assignment id")
    skipped: list[str] = []
    docs, boilerplate = documents(assignment, ws, against=against, source=source, release=release, skipped=skipped)
    fingerprint(docs, boilerplate, k=k, win=win)
    compared, pairs = compare_all(docs, min_run=min_run, min_share=min_share)
    folder = ws / "similarity" / assignment
    private_dirs(folder)
    rep = Report(folder, len(docs), sum(d.kind == "student" for d in docs), compared, pairs, skipped, min_run)
    by_name = {d.name: d for d in docs}
    pages = set()
    for n, p in enumerate(rep.flagged[:max_pages], 1):
        p.page = f"pair-{n:03d}.html"
        pages.add(p.page)
        atomic_write(folder / p.page, _pair_page(assignment, p, by_name[p.a], by_name[p.b]))
    for old in folder.glob("pair-*.html"):
        if old.name not in pages:
            old.unlink()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "a", "b", "share_a", "share_b", "matched_tokens", "longest_run", "flagged", "page"])
    for n, p in enumerate(pairs, 1):
        w.writerow([n, p.a, p.b, f"{p.share_a:.3f}", f"{p.share_b:.3f}", p.matched, p.longest,
                    "yes" if p.flagged else "no", p.page])
    atomic_write(folder / "pairs.csv", buf.getvalue().encode())
    params = dict(k=k, win=win, min_run=min_run, min_share=min_share)
    atomic_write(folder / "index.html", _index_page(assignment, rep, params))
    _write_overview(ws, atomic_write)
    return rep


def _write_overview(ws: pathlib.Path, atomic_write) -> None:
    """``<workspace>/similarity/index.html``: one line per assignment with a report."""
    rows = []
    for csv_path in sorted((ws / "similarity").glob("*/pairs.csv")):
        flagged = [r for r in read_pairs(csv_path) if r.get("flagged") == "yes"]
        a = csv_path.parent.name
        rows.append(f'<li><a href="{html.escape(a)}/index.html">{html.escape(a)}</a>: {len(flagged)} flagged pair(s)</li>')
    atomic_write(ws / "similarity" / "index.html",
                 _page("Similarity reports", "<h1>Similarity reports</h1>\n<ul>" + "\n".join(rows) + "</ul>"))


def read_pairs(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def review_lines(workspace) -> list[str]:
    """One review line per flagged pair of every ``similarity/<assignment>/pairs.csv`` (for ``check``)."""
    ws = pathlib.Path(workspace)
    out = []
    for path in sorted((ws / "similarity").glob("*/pairs.csv")):
        for row in read_pairs(path):
            if row.get("flagged") == "yes":
                page = os.path.join("similarity", path.parent.name, row.get("page") or "index.html")
                out.append(f"review: {path.parent.name}: {row['a']} ~ {row['b']} look alike "
                           f"({float(row['share_a']):.0%} / {float(row['share_b']):.0%} of the answer tokens, "
                           f"longest run {row['longest_run']}): read {page} (a flag, not a penalty)")
    return out
