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
behaviour on the domain the notebook's text defines), which only a person can tell apart. Those a
person has read and judged equivalent are listed in ``EQUIVALENT`` with the reason; they are counted
out of the score and printed with it, and an entry that no longer matches a survivor is flagged.

    .venv/bin/python bench/bench_mutation.py                 # every assignment, at most 12 mutants a cell
    .venv/bin/python bench/bench_mutation.py --per-cell 1000  # every mutant (about 1,000; 15-20 min)
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


# Survivors a person has read and found equivalent: (assignment, cell, mutation or "*" for any, a piece
# of the mutated line) -> why no submission could tell it apart from the reference on the notebook's domain, as its
# text states it. The score counts them out; an entry no survivor matches (in a run of every mutant)
# is printed as stale, so the table cannot hide a change of the answers.
EQUIVALENT = {
    ("ps1_dsc", "ps1_answer_dsc", "constant 1 -> 0", "pad = (kernel_size - 1) // 2"):
        "K // 2 == (K - 1) // 2 for odd K; the stated output shape ceil(H / s) holds only for odd K",
    ("ps2_cost", "ps2_answer_ratios", "*", "c = max(1, math.ceil("):
        "min_cout's start value: whatever it is (below, above, 1), the two loops after it step C_out to the "
        "smallest one that meets the target, so the answer is the same",
    ("ps2_cost", "ps2_answer_ratios", "*", "while c > 1 and speedup(k, c - 1) >= target"):
        "the step-down loop acts only when the start overshoots by float rounding at an exact boundary, where "
        "the answer depends on how speedup is rounded: the checks keep away from such targets",
    ("ps2_cost", "ps2_answer_ratios", "*", "c -= 1"): "the body of that loop, which then never runs",
    ("ps2_cost", "ps2_answer_ratios", "*", "c += 1"):
        "the start ceil(t K^2 / (K^2 - t)) is never below the answer, so the step-up loop never runs",
    ("ps2_cost", "ps2_answer_conv_macs", "swap the first two arguments", "pointwise_macs(c_in, c_out, h2, w2)"):
        "H W C_in C_out is symmetric in C_in and C_out",
    ("ps2_cost", "ps2_answer_counter", "drop a statement", "h.remove()"):
        "hooks left on the model add to the total of the call that made them, not to a later call's",
    ("ps2_cost", "ps2_answer_counter", "constant 224 -> 223", "(1, 3, 224, 224)"):
        "every stride-2 layer of the networks graded gives the same map size from 223 as from 224 "
        "(padding 1, kernel 3: floor((223 + 2 - 3) / 2) + 1 = 112), so the MACs are equal",
    ("ps3_receptive_field", "ps3_answer_model", "constant 0 -> 1", "out.append((m.kernel_size[0]"):
        "the text: square kernels only (and square strides and dilations): [0] and [1] are the same number",
    ("ps3_receptive_field", "ps3_answer_model", "constant 0 -> -1", "out.append((m.kernel_size[0]"):
        "the text: square kernels only (and square strides and dilations): [0] and [-1] are the same number",
    ("ps3_receptive_field", "ps3_answer_model", "constant 0 -> 1", "else m.kernel_size[0]"):
        "the text: square pooling windows only",
    ("ps3_receptive_field", "ps3_answer_model", "constant 0 -> -1", "else m.kernel_size[0]"):
        "the text: square pooling windows only",
    ("ps3_receptive_field", "ps3_answer_model", "constant 0 -> 1", "else m.stride[0]"):
        "the text: square pooling strides only",
    ("ps3_receptive_field", "ps3_answer_model", "constant 0 -> -1", "else m.stride[0]"):
        "the text: square pooling strides only",
    ("ps3_receptive_field", "ps3_answer_empirical", "constant 0 -> -1", "x.grad[0]"):
        "the input is a batch of one: x.grad[0] is x.grad[-1]",
    ("ps3_receptive_field", "ps3_answer_empirical", "constant 0 -> -1", "y[0, :, h // 2, w // 2]"):
        "the input is a batch of one: y[0] is y[-1]",
    ("ps3_receptive_field", "ps3_answer_empirical", "constant 1 -> 2", "x = torch.ones(1,"):
        "y[0] depends on x[0] only (no layer of the stacks mixes a batch), so a batch of two gives the same field",
    ("ps7_timing", "ps7_answer_compare", "constant 0 -> -1", "integers(0, repeats"):
        "not equivalent in law (pair -1 is drawn twice as often), but the text prescribes a paired bootstrap "
        "percentile interval, not one resampling scheme, and no finite check tells this bias from resampling noise",
    ("ps7_timing", "ps7_answer_speedup", "*", "torch.manual_seed(0)"):
        "the weights' values do not change what is timed; the text asks for no seed",
    ("ps7_timing", "ps7_answer_speedup", "*", "h = w = 28"): "H W cancels in the MAC ratio",
    ("ps7_timing", "ps7_answer_speedup", "constant 3 -> 4", "warmup=3, repeats=15"):
        "the text asks for a paired compare of the two layers with warm-up, not a number of calls",
    ("ps7_timing", "ps7_answer_speedup", "constant 3 -> 2", "warmup=3, repeats=15"):
        "the text asks for a paired compare of the two layers with warm-up, not a number of calls",
    ("ps7_timing", "ps7_answer_speedup", "constant 15 -> 16", "repeats=15"):
        "the text asks for a paired compare of the two layers, not a number of repeats",
    ("ps6_roofline", "ps6_answer_machine", "swap the first two arguments", "min(peak_macs_per_s"):
        "min is symmetric",
    ("ps6_roofline", "ps6_answer_plot", "constant 100 -> 101", "ridge / 100"):
        "the roof drawn from ridge / 101 still spans ridge / 100, all the text asks",
    ("ps6_roofline", "ps6_answer_plot", "constant 100 -> 101", "ridge * 100"):
        "the roof drawn to ridge x 101 still spans ridge x 100, all the text asks",
    ("ps6_roofline", "ps6_answer_plot", "*", "s=25, zorder=3"): "marker size and drawing order",
    ("ps6_roofline", "ps6_answer_plot", "*", "ax.legend("): "the text lets the layers be labelled as you like",
    ("ps6_roofline", "ps6_answer_plot", "*", "ax.grid("): "grid lines: not asked",
    ("ps6_roofline", "ps6_answer_plot", "*", "figsize=(7, 4.5)"): "figure size: not asked",
    ("ps6_roofline", "ps6_answer_plot", "*", "lw=2"): "line width: not asked",
    ("ps6_roofline", "ps6_answer_plot", "*", "ms=8"): "marker size: not asked",
    ("ps6_roofline", "ps6_answer_conv", "swap the first two arguments", "conv_intensity(c_in, c_out, h, w, 1, 1, 1"):
        "a 1x1 stride-1 conv moves N H W (C_in + C_out) + C_in C_out elements: symmetric in C_in and C_out",
    ("ps8_quantization", "ps8_answer_per_channel", "constant 127 -> 128", "torch.clamp(torch.round(w.double()"):
        "each channel's scale is its max|w| / 127, so |round(w / s)| <= 127 and neither end of the clamp acts",
    ("ps8_quantization", "ps8_answer_conv", "constant 1 -> 2", "F.pad(q_x.to(torch.int64) - x_zero, (1, 1, 1, 1))"):
        "more padding after the last row or column is never read by the 3x3 windows (padding before it is: "
        "those mutants are killed)",
    ("ps8_quantization", "ps8_answer_conv", "constant 0 -> -1", "k[:, 0, i, j]"):
        "a depthwise weight has one input channel per group: [:, 0] is [:, -1]",
    ("ps8_quantization", "ps8_answer_pitfall", "Gt -> GtE", "better = "):
        "differs only when the two SQNRs are exactly 1 dB apart in floating point",
    ("ps8_quantization", "ps8_answer_pitfall", "constant 1 -> 2", "better = "):
        "the rule's per-tensor side: per-channel scales are never coarser than the per-tensor one, so per-tensor "
        "is ahead by 1-2 dB only by rounding luck, on no layer of the text's kind (the per-channel side's 1 -> 2 "
        "is killed by a case 1.57 dB apart)",
    ("ps7_timing", "ps7_answer_speedup", "constant 15 -> 14", "repeats=15"):
        "the text asks for a paired compare of the two layers, not a number of repeats",
    ("ps8_quantization", "ps8_answer_qparams", "swap the first two arguments", "min(float(lo), 0.0)"):
        "min and max are symmetric",
    ("ps8_quantization", "ps8_answer_qparams", "swap the first two arguments", "min(max(zero_point, qmin), qmax)"):
        "min and max are symmetric",
    ("ps8_quantization", "ps8_answer_pitfall", "constant 127 -> 128", "torch.clamp(torch.round(w / s), -127, 127)"):
        "s = max|w| / 127, so |round(w / s)| <= 127 and neither end of the clamp acts",
    ("ps9_latency_search", "ps9_answer_holdout", "constant 0 -> -1", "clock=device.clock)[0]"):
        "measure_layers of a one-call list returns one time: [0] is [-1]",
    ("ps9_latency_search", "ps9_answer_pick", "Gt -> GtE", "-latency) > (best[0], -best[1])"):
        "differs only between candidates of equal accuracy and equal latency, where the text names no winner",
}


def equivalent(aid: str, gid: str, what: str, line: str):
    """The key and reason of the EQUIVALENT entry that covers a survivor, else None."""
    for key, why in EQUIVALENT.items():
        if key[:2] == (aid, gid) and key[2] in ("*", what) and key[3] in line:
            return key, why
    return None


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
                text = src.split("\n")[line - 1].strip() if 0 < line <= src.count("\n") + 1 else ""
                rows["survivors"].append((gid, line, what, text))
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
    total = killed = counted_out = 0
    matched = set()
    for aid in ids:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"mut-{aid}-") as tmp:
            for extra in (SOLUTIONS / aid).iterdir():  # data files the notebook reads
                if extra.is_file() and extra.suffix != ".ipynb":
                    (Path(tmp) / extra.name).write_bytes(extra.read_bytes())
            r = score(aid, args.per_cell, args.timeout, args.seed, Path(tmp))
        same = []
        for gid, line, what, text in r["survivors"]:
            hit = equivalent(aid, gid, what, text)
            if hit:
                matched.add(hit[0])
                same.append((gid, line, what, hit[1]))
        open_ = [sv for sv in r["survivors"] if not equivalent(aid, sv[0], sv[2], sv[3])]
        total += r["mutants"]
        killed += r["killed"]
        counted_out += len(same)
        real = r["mutants"] - len(same)
        share = r["killed"] / real if real else float("nan")
        print(f"\n{aid}: {r['mutants']} mutants, {r['killed']} killed ({r['timeout']} by timeout or crash), "
              f"{len(same)} equivalent, {len(open_)} survived: score {share:.1%} of the non-equivalent "
              f"({time.perf_counter() - t0:.0f} s)")
        for gid, line, what, text in open_:
            print(f"  SURVIVED    {gid} line {line}: {what}   | {text}")
        for gid, line, what, why in same:
            print(f"  equivalent  {gid} line {line}: {what}: {why}")
    real = total - counted_out
    print(f"\nall: {killed} of {real} non-equivalent mutants killed ({killed / max(real, 1):.1%}); {counted_out} "
          f"equivalent ones counted out (bench_mutation.EQUIVALENT, each with its reason); target >= 95% per assignment")
    if args.per_cell >= 1000:  # every mutant was tried: an entry nothing matched is out of date
        for key in sorted(k for k in set(EQUIVALENT) - matched if k[0] in ids):
            print(f"  stale entry (no survivor matches it any more): {key}")


if __name__ == "__main__":
    main()
