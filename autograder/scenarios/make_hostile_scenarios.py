"""Write the hostile and broken submissions in autograder/scenarios/ from a tiny fixture assignment.

The fixture ``sb_guard`` (source in scenarios/source/, numpy only so a kernel starts fast) has two
answers, ``channel_sum`` and ``channel_max``, and one 2-point test cell for each, with hidden parts.
Each scenario is the nbgrader release of it with the answers filled in and one hostile or broken
change; ``EXPECTED`` says what grading it must give, and tests/test_hostile.py asserts exactly that.

Run: .venv/bin/python autograder/scenarios/make_hostile_scenarios.py   (needs nbgrader; writes in place)
"""
from __future__ import annotations

import copy
import hashlib
import pathlib
import sys
import tempfile

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE / "source"
ASSIGNMENT = "sb_guard"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"

SUM = "def channel_sum(x):\n    return x.sum(axis=(2, 3))\n"
MAX = "def channel_max(x):\n    return x.max(axis=(2, 3))\n"
WRONG_MAX = "def channel_max(x):\n    return x.min(axis=(2, 3))  # wrong: the tests must not pass it\n"
FULL, HALF = 4.0, 2.0  # both answers right / only channel_sum right

# name -> (status, score): what grading the scenario must give. score None: see the test.
EXPECTED: dict[str, tuple[str, float | None]] = {
    "complete": ("graded", FULL),
    "infinite-loop-top-level": ("graded", FULL),  # the loop cell is interrupted at the cell timeout
    "infinite-loop-in-graded-function": ("graded", HALF),  # test_max times out, test_sum still counts
    "os-exit": ("broken", 0.0),
    "segfault": ("broken", 0.0),
    "memory-bomb": ("broken", 0.0),  # cgroup OOM kill (with RLIMIT_DATA only: MemoryError, full marks)
    "fork-bomb": ("graded", FULL),  # fork() fails at the process limit; the kernel goes on
    "deleted-test-cell": ("graded", FULL),  # restored and run: the right answer keeps its points
    "edited-test-cell": ("graded", HALF),  # restored and run: the wrong answer still loses its points
    "stripped-metadata": ("broken", 0.0),  # no nbgrader cells left: recorded, not guessed
    "corrupt": ("broken", 0.0),
    "non-utf8": ("broken", 0.0),
    "wrong-file-name": ("needs_review", 0.0),  # collect reports the misnamed file; a person must look
    "empty": ("broken", 0.0),
    "unchanged-release": ("graded", 0.0),
    "reads-answer-key": ("graded", HALF),  # finds neither the source nor the gradebook
    "writes-gradebook": ("graded", HALF),
    "patches-comparisons": ("graded", HALF),
    "rewrites-test-cells": ("graded", HALF),  # an IPython input transformer edits every later cell
    "swallows-errors": ("graded", HALF),  # wraps run_cell so no later cell reports its error
    "answers-for-the-grader": ("graded", 0.0),  # forges the kernel's replies to the grader: gains nothing
    "background-process": ("graded", FULL),  # graded; its process dies with the notebook
    "prints-gigabytes": ("broken", 0.0),  # stopped at the output cap (sandbox.BoundedOutputs), reason recorded
    "network-access": ("graded", FULL),  # connects nowhere; says so in its output
}
SUBMITTED_NAME = {"wrong-file-name": "sb_guard (1).ipynb"}  # the file name the student used


def _cell(kind, source, grade_id, *, grade=False, solution=False, points=0, locked=False):
    cell = (new_code_cell if kind == "code" else new_markdown_cell)(source)
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if grade:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta
    cell.id = grade_id.replace("_", "-")
    return cell


def _test(fn: str, op: str) -> str:
    # The visible part runs in the learner's kernel; the hidden call runs in the grader's process
    # (autograder/remote.py), which is where the verdict is made.
    return (f'"""Does {fn} reduce over H and W to shape (N, C)?"""\n'
            "x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)\n"
            f"got = {fn}(x)\n"
            'assert type(got) is np.ndarray and got.shape == (2, 3), "expected an array of shape (N, C)"\n'
            "### BEGIN HIDDEN TESTS\n"
            f"_ps_grader.check_{op}({fn})\n"
            "### END HIDDEN TESTS")


GRADER_SETUP = """# Grader setup (hidden, 0 points): it runs before your answers. Leave this cell as it is.
### BEGIN HIDDEN TESTS
def _grader_setup():
    import types
    import numpy as np
    RUNS_IN_GRADER = True  # the autograder runs these checks in its own process

    def _check(fn, op):
        x = np.random.default_rng(7).normal(size=(3, 4, 5, 6))
        got = fn(x)
        assert type(got) is np.ndarray and got.shape == (3, 4), "expected an array of shape (N, C)"
        assert np.array_equal(got, getattr(x, op)(axis=(2, 3))), "values differ"

    return types.SimpleNamespace(check_sum=lambda f: _check(f, "sum"), check_max=lambda f: _check(f, "max"))


_ps_grader = _grader_setup()
del _grader_setup
### END HIDDEN TESTS"""


def source_notebook():
    """The fixture's nbgrader source notebook."""
    cells = [
        _cell("markdown", "# Channel reductions\n\nWrite `channel_sum(x)` and `channel_max(x)` for an "
              "array of shape $(N, C, H, W)$: reduce over $H$ and $W$.", "intro", locked=True),
        _cell("code", "import numpy as np", "setup", locked=True),
        _cell("code", GRADER_SETUP, f"{ASSIGNMENT}_grader_setup", grade=True, points=0, locked=True),
        _cell("code", "def channel_sum(x):\n    ### BEGIN SOLUTION\n    return x.sum(axis=(2, 3))\n"
              "    ### END SOLUTION", "answer_sum", solution=True),
        _cell("code", "def channel_max(x):\n    ### BEGIN SOLUTION\n    return x.max(axis=(2, 3))\n"
              "    ### END SOLUTION", "answer_max", solution=True),
        _cell("code", _test("channel_sum", "sum"), "test_sum", grade=True, points=2, locked=True),
        _cell("code", _test("channel_max", "max"), "test_max", grade=True, points=2, locked=True),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def release_notebook():
    """The release nbgrader makes of the source (answers cleared, hidden tests removed, checksums)."""
    sys.path.insert(0, str(HERE.parent.parent))
    from autograder.release import release

    with tempfile.TemporaryDirectory() as tmp:
        release([ASSIGNMENT], source=SOURCE, release_dir=tmp)
        return nbformat.read(pathlib.Path(tmp) / ASSIGNMENT / NOTEBOOK, as_version=4)


def _by_id(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _answered(rel, max_src=MAX, sum_src=SUM):
    nb = copy.deepcopy(rel)
    nb.cells[_by_id(nb, "answer_sum")].source = sum_src
    nb.cells[_by_id(nb, "answer_max")].source = max_src
    return nb


def _with_cell(nb, source, before="test_sum"):
    """Insert a student cell (no nbgrader metadata) before a test cell."""
    cell = new_code_cell(source)
    cell.id = "student-" + hashlib.sha1(source.encode()).hexdigest()[:8]
    nb.cells.insert(_by_id(nb, before), cell)
    return nb


def _search_code(patterns: str) -> str:
    # Look where a grader's files usually are: the working tree, temp dirs, home folders.
    return ("import os\nfound = []\n"
            "for top in ['/work', '/tmp', '/var/tmp', '/root', '/home', '/srv', '/opt', '/mnt', os.path.dirname(os.getcwd())]:\n"
            "    for d, _, files in os.walk(top):\n"
            f"        found += [os.path.join(d, f) for f in files if {patterns}]\n"
            "        if len(found) > 50:\n            break\n")


HOSTILE_CELLS = {
    "infinite-loop-top-level": "while True:\n    pass\n",
    "os-exit": "import os\nos._exit(3)\n",
    "segfault": "import ctypes\nctypes.string_at(0)\n",
    "memory-bomb": "hog = []\nwhile True:\n    hog.append(bytearray(64 * 2**20))  # zero-filled: really allocated\n",
    "fork-bomb": ("import os, time\nchildren = []\ntry:\n    while True:\n        pid = os.fork()\n"
                  "        if pid == 0:\n            time.sleep(600)\n            os._exit(0)\n"
                  "        children.append(pid)\nexcept OSError as e:\n"
                  "    print('fork refused after', len(children), 'children:', e)\n"),
    "background-process": ("import subprocess\n"
                           "subprocess.Popen(['sleep', '600'], start_new_session=True)\n"
                           "subprocess.Popen(['sh', '-c', 'sleep 2; while true; do touch ../grades-were-here; sleep 1; done'],\n"
                           "                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                           "print('left two processes behind')\n"),
    # flush=True sends each line at once: the rate the grader can take in, so it all reaches the
    # grader (without flush the kernel outruns its own send buffers and dies of memory first)
    "prints-gigabytes": "line = 'x' * 1_000_000\nfor _ in range(100_000):  # 100 GB if nothing stops it\n    print(line, flush=True)\n",
    "network-access": ("import socket\nfor host, port in [('127.0.0.1', 9), ('1.1.1.1', 53), ('8.8.8.8', 443)]:\n"
                       "    s = socket.socket()\n    s.settimeout(2)\n"
                       "    try:\n        s.connect((host, port))\n        print('CONNECTED', host, port)\n"
                       "    except OSError as e:\n        print('blocked', host, port, e.errno)\n"),
    "reads-answer-key": (_search_code("f.endswith('.ipynb') or f.endswith('.db') or f.endswith('.json')")
                         + "print('found:', [f for f in found if 'BEGIN SOLUTION' in open(f, errors='ignore').read()\n"
                           "                   or f.endswith('.db')])\n"
                           "for f in found:  # copy the key's answer if we can read one\n"
                           "    text = open(f, errors='ignore').read()\n"
                           "    if 'x.max(axis=(2, 3))' in text and 'BEGIN SOLUTION' in text:\n"
                           "        exec('def channel_max(x):\\n    return x.max(axis=(2, 3))')\n"),
    # only a grader's own files (gradebook.db, results/*.json): run by mistake without the sandbox,
    # the damage stays in grading workspaces
    "writes-gradebook": (_search_code("f == 'gradebook.db' or (f.endswith('.json') and d.endswith('/results/sb_guard'))")
                         + "import sqlite3\nwritten = []\nfor f in found:\n    try:\n"
                           "        if f.endswith('.db'):\n            con = sqlite3.connect(f)\n"
                           "            con.execute('update grade set auto_score = 100')\n            con.commit()\n"
                           "        else:\n            open(f, 'w').write('{\"score\": 100}')\n"
                           "        written.append(f)\n    except Exception as e:\n        pass\n"
                           "print('written:', written)\n"),
    "patches-comparisons": ("import builtins, math, numpy, numpy.testing\n"
                            "numpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a, **k: True\n"
                            "numpy.testing.assert_allclose = lambda *a, **k: None\n"
                            "numpy.testing.assert_array_equal = lambda *a, **k: None\n"
                            "math.isclose = lambda *a, **k: True\nbuiltins.all = lambda *a: True\n"
                            "builtins.abs = lambda x: 0\n"),
    # IPython's documented hook runs on the source of every later cell, hidden tests included
    "rewrites-test-cells": ("get_ipython().input_transformers_post.append(\n"
                            "    lambda lines: [l.replace('assert ', 'assert True or ') for l in lines])\n"),
    # the kernel reports errors through objects the student's code can replace: nothing of the
    # test cell is edited, its failure is just never reported
    "swallows-errors": ("ip = get_ipython()\n_run_cell = ip.run_cell\n\n\n"
                        "def run_cell(*args, **kwargs):\n    result = _run_cell(*args, **kwargs)\n"
                        "    result.error_in_exec = None\n    return result\n\n\n"
                        "ip.run_cell = run_cell\nip.showtraceback = lambda *args, **kwargs: None\n"),
    # answers every request of the grader (autograder/remote.py) itself, with a value that would
    # pass a careless check: what the grader receives is data, checked there
    "answers-for-the-grader": ("ip = get_ipython()\n_run_cell = ip.run_cell\nMARK = '\\x1eAG-RPC\\x1e'\n\n\n"
                               "def run_cell(raw_cell, *args, **kwargs):\n"
                               "    if '_ag_agent' in raw_cell:\n"
                               "        raw_cell = 'print(' + repr(MARK + '{\"ok\": true}' + MARK) + ')'\n"
                               "    return _run_cell(raw_cell, *args, **kwargs)\n\n\n"
                               "ip.run_cell = run_cell\n"),
}


def scenarios(rel) -> dict[str, bytes]:
    """name -> the bytes the student submits."""
    out = {}

    def put(name, nb):
        out[name] = nbformat.writes(nb).encode()

    put("complete", _answered(rel))
    for name, code in HOSTILE_CELLS.items():
        wrong = name in ("reads-answer-key", "writes-gradebook", "patches-comparisons", "rewrites-test-cells",
                         "swallows-errors", "answers-for-the-grader")
        put(name, _with_cell(_answered(rel, WRONG_MAX if wrong else MAX), code))
    put("infinite-loop-in-graded-function", _answered(rel, "def channel_max(x):\n    while True:\n        pass\n"))
    nb = _answered(rel)
    del nb.cells[_by_id(nb, "test_max")]
    put("deleted-test-cell", nb)
    nb = _answered(rel, WRONG_MAX)
    nb.cells[_by_id(nb, "test_max")].source = '"""Does channel_max reduce over H and W?"""\nassert True\n'
    put("edited-test-cell", nb)
    nb = _answered(rel)
    for c in nb.cells:
        c.metadata.pop("nbgrader", None)
    put("stripped-metadata", nb)
    full = out["complete"]
    out["corrupt"] = full[: len(full) // 2]
    out["non-utf8"] = full.replace(b"def channel_sum(x):", "def channel_sum(x):  # café".encode("latin-1"))
    out["wrong-file-name"] = full
    out["empty"] = b""
    put("unchanged-release", rel)
    assert set(out) == set(EXPECTED), set(out) ^ set(EXPECTED)
    return out


def file_name(name: str) -> str:
    """Scenario file in this folder (wrong-file-name is a folder holding the misnamed file)."""
    if name in SUBMITTED_NAME:
        return f"{name}/{SUBMITTED_NAME[name]}"
    return f"{name}.ipynb"


def main() -> None:
    src = SOURCE / ASSIGNMENT / NOTEBOOK
    src.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(source_notebook(), src)
    for name, data in scenarios(release_notebook()).items():
        path = HERE / file_name(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(path.relative_to(HERE))


if __name__ == "__main__":
    main()
