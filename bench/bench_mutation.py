"""Mutation score of the hidden tests: how many small wrong versions of the reference answers lose points?

For each assignment, every answer cell of the source notebook (solutions/<id>/<id>.ipynb) is mutated
one site at a time, the way a learner slips: an integer constant off by one, an arithmetic or
comparison operator changed, two positional arguments swapped, ceil <-> floor, min <-> max, a
statement dropped (a signature's default values, which the released notebook gives, are left
alone). Class mutants (issue 21) are tried at every site of their kind, never sampled: a
parameter with a default ignored (the default pinned whatever the caller passes), and rounding
turned into truncation (``round`` -> ``int``, ``.round``/``.rint`` -> ``.trunc``). Each mutant notebook is run as plain nbgrader runs it in a kernel (setup cell,
read-only cells, answers, then every test cell with its hidden part), in a forked process with a
time limit, and is *killed* when some grade cell worth points fails that passes with the reference.

Printed per assignment: mutants, killed, survived, timed out, the score, and every survivor (cell,
line, what changed): a survivor is either a mistake the checks miss or an equivalent mutant (same
behaviour), which only a person can tell apart.

    .venv/bin/python bench/bench_mutation.py                 # every assignment, at most 12 mutants a cell
    .venv/bin/python bench/bench_mutation.py ps1_dsc --per-cell 40 --timeout 60
"""
from __future__ import annotations

import argparse
import ast
import copy
import io
import os
import random
import signal
import sys
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
sys.path.insert(0, str(ROOT / "tests"))
import nbgrader_harness as H  # noqa: E402  (answers(): the reference answer of each cell)

SWAP_OPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult,
            ast.Div: ast.Mult, ast.Pow: ast.Mult}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq}
SWAP_NAMES = {"ceil": "floor", "floor": "ceil", "min": "max", "max": "min"}
# Class mutants (issue 21, class 7): a slip of a kind, tried at every site of that kind.
ROUND_TO_TRUNC = {"round": "int"}  # round(x) -> int(x): truncation toward 0 where rounding is asked
ROUND_ATTRS = {"round": "trunc", "rint": "trunc"}  # torch.round / np.rint -> trunc


def sites(tree: ast.AST) -> list[tuple[str, int, callable]]:
    """(description, line, apply(tree_copy)) for every single-site mutation of ``tree``."""
    found = []
    nodes = list(ast.walk(tree))
    # A signature's defaults are the released notebook's, not the learner's: leave them alone.
    given = {id(n) for f in nodes if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for d in (*f.args.defaults, *f.args.kw_defaults) if d is not None for n in ast.walk(d)}
    for i, node in enumerate(nodes):
        if id(node) in given:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            for d in (1, -1):
                found.append((f"constant {node.value} -> {node.value + d}", line, (i, "const", d)))
        elif isinstance(node, ast.BinOp) and type(node.op) in SWAP_OPS:
            new = SWAP_OPS[type(node.op)]
            found.append((f"{type(node.op).__name__} -> {new.__name__}", line, (i, "binop", new)))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in SWAP_CMP:
            new = SWAP_CMP[type(node.ops[0])]
            found.append((f"{type(node.ops[0]).__name__} -> {new.__name__}", line, (i, "cmp", new)))
        elif isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
            found.append(("swap the first two arguments", line, (i, "swap", None)))
        elif isinstance(node, ast.Name) and node.id in SWAP_NAMES and isinstance(node.ctx, ast.Load):
            found.append((f"{node.id} -> {SWAP_NAMES[node.id]}", line, (i, "name", SWAP_NAMES[node.id])))
        elif isinstance(node, ast.Attribute) and node.attr in ("ceil", "floor"):
            found.append((f".{node.attr} -> .{SWAP_NAMES[node.attr]}", line, (i, "attr", SWAP_NAMES[node.attr])))
        elif isinstance(node, ast.Name) and node.id in ROUND_TO_TRUNC and isinstance(node.ctx, ast.Load):
            found.append((f"class: {node.id} -> {ROUND_TO_TRUNC[node.id]} (truncation)", line,
                          (i, "name", ROUND_TO_TRUNC[node.id])))
        elif isinstance(node, ast.Attribute) and node.attr in ROUND_ATTRS:
            found.append((f"class: .{node.attr} -> .{ROUND_ATTRS[node.attr]} (truncation)", line,
                          (i, "attr", ROUND_ATTRS[node.attr])))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # class: a parameter's value ignored, its default used whatever the caller passed
            params = [*node.args.args[len(node.args.args) - len(node.args.defaults):], *node.args.kwonlyargs]
            defaults = [*node.args.defaults, *node.args.kw_defaults]
            for j, (arg, default) in enumerate(zip(params, defaults)):
                if default is not None:
                    found.append((f"class: {node.name}'s {arg.arg}= ignored (its default used)", line,
                                  (i, "pin", (arg.arg, j))))
        if isinstance(node, (ast.FunctionDef, ast.For, ast.While, ast.With, ast.If)):
            for j, stmt in enumerate(node.body):
                if isinstance(stmt, (ast.Expr, ast.Assign, ast.AugAssign)) and not (
                        isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):  # not a docstring
                    found.append(("drop a statement", stmt.lineno, (i, "drop", j)))
    return found


def apply(tree: ast.AST, how) -> str:
    """Source of ``tree`` with one mutation applied (on a copy)."""
    tree = copy.deepcopy(tree)
    i, kind, arg = how
    node = list(ast.walk(tree))[i]
    if kind == "const":
        node.value += arg
    elif kind == "binop":
        node.op = arg()
    elif kind == "cmp":
        node.ops = [arg()]
    elif kind == "swap":
        node.args[0], node.args[1] = node.args[1], node.args[0]
    elif kind == "name":
        node.id = arg
    elif kind == "attr":
        node.attr = arg
    elif kind == "drop":
        node.body[arg] = ast.Pass()
    elif kind == "pin":
        name, j = arg
        default = [*node.args.defaults, *node.args.kw_defaults][j]
        node.body.insert(0, ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=copy.deepcopy(default),
                                       lineno=node.lineno))
    return ast.unparse(ast.fix_missing_locations(tree))


def _strip_markers(src: str) -> str:
    return "\n".join(line for line in src.split("\n")
                     if line.strip() not in ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS",
                                             "### BEGIN SOLUTION", "### END SOLUTION")
                     and not line.lstrip().startswith("%"))


def run_notebook(cells: list[tuple[str, str, float]], workdir: Path) -> dict[str, bool]:
    """Execute (grade_id, source, points) cells in one namespace, as a kernel would; grade cells -> passed."""
    os.chdir(workdir)
    ns = {"__name__": "__main__"}
    passed = {}
    for gid, src, points in cells:
        try:
            with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                exec(compile(src, f"<{gid}>", "exec"), ns)
            ok = True
        except BaseException:  # noqa: BLE001 - a failing cell is data here
            ok = False
        if points is not None:
            passed[gid] = ok
    return passed


def run_forked(cells, workdir: Path, timeout: float) -> dict[str, bool] | None:
    """run_notebook in a forked child (after torch is imported here once); None on timeout or crash."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = repr(run_notebook(cells, workdir)).encode()
        except BaseException:  # noqa: BLE001
            out = repr({"__crash__": traceback.format_exc()}).encode()
        os.write(w, out)
        os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        return None
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    try:
        res = ast.literal_eval(data.decode())
    except (ValueError, SyntaxError):
        return None
    return None if "__crash__" in res else res


def notebook_cells(aid: str, answers: dict[str, str]) -> list[tuple[str, str, float | None]]:
    nb = nbformat.read(SOLUTIONS / aid / f"{aid}.ipynb", as_version=4)
    cells = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        meta = c.metadata.get("nbgrader", {})
        gid = meta.get("grade_id", f"cell{len(cells)}")
        if meta.get("solution") and not meta.get("grade"):
            cells.append((gid, answers[gid], None))
        elif meta.get("grade"):
            cells.append((gid, _strip_markers(c.source), float(meta.get("points", 0))))
        else:
            cells.append((gid, _strip_markers(c.source), None))
    return cells


def score(aid: str, per_cell: int, timeout: float, seed: int, workdir: Path) -> dict:
    ref = H.answers(SOLUTIONS / aid / f"{aid}.ipynb")
    points = {gid: p for gid, _, p in notebook_cells(aid, ref) if p}
    base = run_forked(notebook_cells(aid, ref), workdir, timeout)
    if base is None or not all(base[g] for g in points):
        raise SystemExit(f"{aid}: the reference answers do not pass here: {base}")
    rng = random.Random(seed)
    rows = {"mutants": 0, "killed": 0, "timeout": 0, "survivors": []}
    for gid, src in ref.items():
        tree = ast.parse(src)
        all_sites = sites(tree)
        # class mutants are always tried (a class once closed must stay closed); the one-site ones sampled
        classes = [site for site in all_sites if site[0].startswith("class:")]
        one_site = [site for site in all_sites if not site[0].startswith("class:")]
        chosen = classes + (one_site if len(one_site) <= per_cell else rng.sample(one_site, per_cell))
        for what, line, how in chosen:
            try:
                mutant = apply(tree, how)
            except Exception:  # noqa: BLE001 - an unparsable mutant is no mutant
                continue
            if ast.dump(ast.parse(mutant)) == ast.dump(tree):
                continue
            rows["mutants"] += 1
            got = run_forked(notebook_cells(aid, {**ref, gid: mutant}), workdir, timeout)
            if got is None:
                rows["timeout"] += 1  # a mutant that hangs or kills its kernel scores nothing: killed
                rows["killed"] += 1
            elif any(not got.get(g, False) for g in points):
                rows["killed"] += 1
            else:
                rows["survivors"].append(f"{gid} line {line}: {what}")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ids", nargs="*", help="assignment ids (default: all)")
    ap.add_argument("--per-cell", type=int, default=12, help="at most this many mutants per answer cell (sampled)")
    ap.add_argument("--timeout", type=float, default=90, help="seconds per mutant notebook")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    ids = args.ids or sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").exists())
    import tempfile

    import torch  # noqa: F401  (imported once here, before the forks)

    import mnlib  # noqa: F401
    torch.set_num_threads(1)
    print(f"mutation score of the hidden tests; at most {args.per_cell} mutants per answer cell, seed {args.seed}")
    total = killed = 0
    for aid in ids:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"mut-{aid}-") as tmp:
            for extra in (SOLUTIONS / aid).iterdir():  # data files the notebook reads
                if extra.is_file() and extra.suffix != ".ipynb":
                    (Path(tmp) / extra.name).write_bytes(extra.read_bytes())
            r = score(aid, args.per_cell, args.timeout, args.seed, Path(tmp))
        total += r["mutants"]
        killed += r["killed"]
        share = r["killed"] / r["mutants"] if r["mutants"] else float("nan")
        print(f"\n{aid}: {r['mutants']} mutants, {r['killed']} killed ({r['timeout']} by timeout or crash), "
              f"{len(r['survivors'])} survived: score {share:.0%}  ({time.perf_counter() - t0:.0f} s)")
        for s in r["survivors"]:
            print(f"  survived  {s}")
    print(f"\nall: {killed} of {total} mutants killed ({killed / max(total, 1):.0%}); target >= 95% of the "
          "non-equivalent ones: read each survivor above")


if __name__ == "__main__":
    main()
