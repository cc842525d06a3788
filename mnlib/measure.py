"""Record the measurements the book cannot take at build time: standard vs DSC layers, whole models.

    python -m mnlib.measure --out data/measurements/cpu_<date>.json [--threads 1] [--passes 3]
    python -m mnlib.measure --device cuda --out data/measurements/gpu_<date>.json

Every timing is stored with the minor page faults per call of the same samples. The run measures
the layers, not glibc's allocator: unless ``--allocator default`` is given, the command re-executes
itself with ``GLIBC_TUNABLES`` = ``mnlib.timing.ALLOCATOR_TUNABLES`` (recorded in ``env``), and it
keeps one deliberate demonstration of the trap (``allocator_trap``: the demo layers timed in fresh
processes with the default and the tuned allocator, alternately).

Every case is timed once per pass, the passes interleave all cases (the order rotates), and the
record keeps the median over passes with the range of the pass medians: on a shared machine the
same configuration can vary 2x between minutes, and interleaving spreads that drift over all cases.
CPU: batch 1 and 8, NCHW and channels_last, fp32. CUDA: batch 1 and 64, fp32 and fp16, and for the
models also ``torch.compile`` and a CUDA-graph replay.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from . import cost, roofline, timing
from ._checks import check_int
from .models import MODELS

# The course's standard-vs-DSC shapes (H = W, C_in -> C_out): MobileNetV1's stages at 224.
COURSE_SHAPES = [(112, 32, 64), (56, 128, 128), (28, 256, 256), (14, 512, 512), (7, 1024, 1024)]
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
# The allocator-trap demonstration: (shape, op, batch, memory_format). The standard conv on 7x7x1024
# has a 37.7 MB weight tensor, above glibc's largest dynamic mmap threshold (32 MiB); the NCHW DSC at
# batch 8 page-faulted 12-16k times per call in the untuned recording of 2026-11-22.
TRAP_CASES = [("7x7x1024->1024", "standard", 1, "nchw"), ("112x112x32->64", "dsc", 8, "nchw")]


def _layer_cases(batches, dtypes, device, shapes=COURSE_SHAPES):
    """(record, callable) for a standard 3x3 conv and a DSC at each course shape."""
    for h, ci, co in shapes:
        std = nn.Conv2d(ci, co, 3, 1, 1, bias=False)
        dsc = nn.Sequential(nn.Conv2d(ci, ci, 3, 1, 1, groups=ci, bias=False), nn.Conv2d(ci, co, 1, bias=False))
        for batch in batches:
            for dname, dtype in dtypes.items():
                for fmt, mf in FORMATS.items():
                    x = torch.randn(batch, ci, h, h, device=device, dtype=dtype).to(memory_format=mf)
                    for op, mod in (("standard", std), ("dsc", dsc)):
                        # a copy per case: .to() converts in place, and the weights' layout picks the kernel
                        m = copy.deepcopy(mod).to(device=device, dtype=dtype, memory_format=mf).eval()
                        if op == "standard":
                            macs, nbytes = roofline.conv_traffic(ci, co, h, h, 3, 1, 1, batch)
                        else:
                            a = roofline.conv_traffic(ci, ci, h, h, 3, 1, ci, batch)
                            b = roofline.conv_traffic(ci, co, h, h, 1, 1, 1, batch)
                            macs, nbytes = a[0] + b[0], a[1] + b[1]
                        nbytes = nbytes // 4 * x.element_size()
                        rec = dict(shape=f"{h}x{h}x{ci}->{co}", h=h, c_in=ci, c_out=co, op=op, batch=batch,
                                   dtype=dname, memory_format=fmt, macs=macs, min_bytes=nbytes)
                        yield rec, (lambda m=m, x=x: m(x))


def _cuda_graph(model, x):
    """Capture one forward pass as a CUDA graph; replaying it removes the per-kernel launch cost."""
    static_x = x.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graphs asks
        for _ in range(3):
            model(static_x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(static_x)
    return graph.replay


def _model_cases(batches, dtypes, device, names, compile_models):
    cuda = device.startswith("cuda")
    for name in names:
        base = MODELS[name]().eval()
        macs = cost.count(base).macs
        for batch in batches:
            for dname, dtype in dtypes.items():
                for fmt, mf in FORMATS.items():
                    if cuda and fmt == "nchw":
                        continue  # on the GPU, cuDNN's fast paths want channels_last; keep the run short
                    model = copy.deepcopy(base).to(device=device, dtype=dtype, memory_format=mf)
                    x = torch.randn(batch, 3, 224, 224, device=device, dtype=dtype).to(memory_format=mf)
                    rec = dict(model=name, width_mult=1.0, resolution=224, batch=batch, dtype=dname,
                               memory_format=fmt, macs=macs * batch)
                    yield dict(rec, mode="eager"), (lambda m=model, x=x: m(x))
                    if cuda and batch == 1:
                        yield dict(rec, mode="cuda_graph"), _cuda_graph(model, x)
                    if compile_models:
                        compiled = torch.compile(model)
                        t0 = time.perf_counter()
                        with torch.no_grad():
                            compiled(x)
                        if cuda:
                            torch.cuda.synchronize()
                        yield dict(rec, mode="compiled", compile_s=time.perf_counter() - t0), \
                            (lambda m=compiled, x=x: m(x))


def cpu_snapshot() -> dict:
    """Wall clock, this process's CPU time (with its finished children) and the host's busy time.

    Two snapshots give the share of the machine that *other* work used in between, which a load
    average cannot: it counts this run's own threads too.
    """
    t = os.times()
    snap = {"wall_s": time.perf_counter(), "own_cpu_s": t.user + t.system + t.children_user + t.children_system,
            "host_busy_s": None, "steal_s": None}
    try:  # Linux: the first line of /proc/stat is the jiffies of all CPUs in each state
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        tick = os.sysconf("SC_CLK_TCK")
        user, nice, system, _idle, _iowait, irq, softirq, steal = v
        snap["host_busy_s"] = (user + nice + system + irq + softirq) / tick
        snap["steal_s"] = steal / tick
    except (OSError, ValueError, IndexError):
        pass
    return snap


def load_between(a: dict, b: dict) -> dict:
    """What the host did between two cpu_snapshot()s, as shares of its total CPU time (wall x cores)."""
    wall = b["wall_s"] - a["wall_s"]
    total = wall * (os.cpu_count() or 1)
    own = b["own_cpu_s"] - a["own_cpu_s"]
    out = {"wall_s": round(wall, 2), "own_cpu_share": round(own / total, 3) if total > 0 else None,
           "others_cpu_share": None, "steal_share": None,
           "loadavg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
    if a["host_busy_s"] is not None and b["host_busy_s"] is not None and total > 0:
        others = (b["host_busy_s"] - a["host_busy_s"]) - own
        out["others_cpu_share"] = round(max(0.0, others) / total, 3)
        out["steal_share"] = round((b["steal_s"] - a["steal_s"]) / total, 3)
    return out


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def run_passes(cases, passes: int, device: str, min_sample_s: float, repeats: int,
               log=print, conditions: list | None = None, clock=time.perf_counter) -> list[dict]:
    """Time every case once per pass, rotating the order; keep every pass's median and page faults.

    Each result has ``pass_medians_s`` and, beside it, ``page_faults_per_call`` (one per pass, the
    minor faults of the same timed samples divided by the calls), and their medians. What the host
    did during each pass is appended to ``conditions`` when a list is given.
    """
    check_int("passes", passes, 1)
    results = [dict(rec, pass_medians_s=[], page_faults_per_call=[]) for rec, _ in cases]
    fns = [fn for _, fn in cases]
    with torch.no_grad():
        for p in range(passes):
            order = list(range(len(fns)))
            shift = (p * len(order)) // passes
            order = order[shift:] + order[:shift]  # each pass starts at a different case
            before = cpu_snapshot()
            for i in order:
                s = timing.benchmark(fns[i], warmup=1, repeats=repeats, min_sample_s=min_sample_s,
                                     device=device, clock=clock)
                results[i]["pass_medians_s"].append(s.median)
                results[i]["page_faults_per_call"].append(s.page_faults_per_call)
            load = load_between(before, cpu_snapshot())
            if conditions is not None:
                conditions.append(load)
            log(f"  pass {p + 1}/{passes} done, load {load['loadavg_1min']}, "
                f"other work {load['others_cpu_share']} of the CPU time")
    for r in results:
        m, f = r["pass_medians_s"], r["page_faults_per_call"]
        r.update(median_s=statistics.median(m), min_s=min(m), max_s=max(m),
                 page_faults_per_call_median=None if None in f else statistics.median(f))
    return results


def _trap_cases(device: str, cases=TRAP_CASES):
    wanted = {tuple(c) for c in cases}
    if unknown := [c for c in wanted if c[1] not in ("standard", "dsc") or c[2] not in (1, 8)
                   or c[3] not in FORMATS or not any(c[0] == f"{h}x{h}x{ci}->{co}" for h, ci, co in COURSE_SHAPES)]:
        raise ValueError(f"unknown trap cases {unknown}: (shape, 'standard'|'dsc', 1|8, 'nchw'|'channels_last') "
                         f"with a shape such as '7x7x1024->1024'")
    shapes = [s for s in COURSE_SHAPES if any(c[0] == f"{s[0]}x{s[0]}x{s[1]}->{s[2]}" for c in wanted)]
    return [(rec, fn) for rec, fn in _layer_cases((1, 8), {"float32": torch.float32}, device, shapes)
            if (rec["shape"], rec["op"], rec["batch"], rec["memory_format"]) in wanted]


def _child_env(tuned: bool) -> dict:
    """The environment of a fresh measuring process: malloc tuned or default, this mnlib importable."""
    env = timing.allocator_env(tuned)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                      env.get("PYTHONPATH")]))
    return env


def trap_child(args) -> int:
    """(In a fresh process.) Time the trap cases once and print them as JSON on stdout's last line."""
    cases = json.loads(args.trap_cases) if args.trap_cases else TRAP_CASES
    with timing.threads(args.threads):
        res = run_passes(_trap_cases(args.device, cases), 1, args.device, args.min_sample_s, args.repeats,
                         log=lambda *_: None)
        env = timing.environment(args.device)
    print(json.dumps({"env": env, "layers": res}))
    return 0


def allocator_trap(rounds: int = 1, cases=TRAP_CASES, *, device: str = "cpu", threads: int | None = None,
                   repeats: int = 3, min_sample_s: float = 0.02, log=print) -> dict:
    """Time ``cases`` (see TRAP_CASES) in fresh processes, glibc's default malloc and the tuned one
    alternately, ``rounds`` times each; per case and allocator the times and page faults per call.

    Fresh processes because glibc reads GLIBC_TUNABLES only when a process starts.
    """
    check_int("rounds", rounds, 1)
    _trap_cases(device, cases)  # a bad case is an error here, not in a child
    cmd = [sys.executable, "-m", "mnlib.measure", "--trap-child", "--out", "-", "--device", device,
           "--repeats", str(repeats), "--min-sample-s", str(min_sample_s),
           "--trap-cases", json.dumps([list(c) for c in cases])]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    runs = {"default": [], "tuned": []}
    for r in range(rounds):
        for kind in (("default", "tuned") if r % 2 == 0 else ("tuned", "default")):
            out = subprocess.run(cmd, env=_child_env(kind == "tuned"), capture_output=True, text=True,
                                 check=False)
            if out.returncode != 0:
                raise RuntimeError(f"the allocator-trap child failed ({kind}):\n{out.stderr[-2000:]}")
            runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
        log(f"  allocator trap: round {r + 1}/{rounds} done")
    result = []
    for i, (rec, _) in enumerate(_trap_cases(device, cases)):
        case = {k: rec[k] for k in ("shape", "h", "c_in", "c_out", "op", "batch", "memory_format", "macs",
                                    "min_bytes")}
        for kind, got in runs.items():
            t = [g["layers"][i]["median_s"] for g in got]
            f = [g["layers"][i]["page_faults_per_call"][0] for g in got]
            case[kind] = {"glibc_tunables": got[0]["env"]["glibc_tunables"], "threads": got[0]["env"]["threads"],
                          "pass_medians_s": t, "page_faults_per_call": f, "median_s": statistics.median(t),
                          "page_faults_per_call_median": None if None in f else statistics.median(f)}
        result.append(case)
    return {"what": "the same layers timed in fresh processes with glibc's default malloc and with "
                    "GLIBC_TUNABLES = mnlib.timing.ALLOCATOR_TUNABLES, alternately",
            "rounds": rounds, "threads": threads, "clock": "wall time (time.perf_counter)",
            "tunables": timing.ALLOCATOR_TUNABLES, "cases": result}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mnlib.measure", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="samples per case per pass")
    ap.add_argument("--min-sample-s", type=float, default=0.02)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated mnlib model names ('' for none)")
    ap.add_argument("--shapes", default=",".join(str(h) for h, _, _ in COURSE_SHAPES),
                    help="comma-separated map sizes of the course shapes to time (default: all five)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (always on CUDA)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall: time.perf_counter; cpu: time.process_time, the CPU time of this process, which "
                         "leaves out the time other programs held the core (needs --threads 1 and a CPU device)")
    ap.add_argument("--allocator", choices=("tuned", "default"), default="tuned",
                    help="tuned (default): re-execute under GLIBC_TUNABLES = mnlib.timing.ALLOCATOR_TUNABLES "
                         "so the figures measure the layers, not glibc's malloc; default: glibc as it comes")
    ap.add_argument("--trap-rounds", type=int, default=3,
                    help="rounds of the allocator-trap demonstration (0: none)")
    ap.add_argument("--trap-threads", type=int, default=None,
                    help="torch threads in the trap demonstration (default: as --threads; 0: torch's choice). "
                         "The NCHW DSC's large temporaries at batch 8 appear with several threads")
    ap.add_argument("--trap-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--trap-cases", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    try:
        timing.check_device(args.device)
        check_int("trap-rounds", args.trap_rounds, 0)
        if args.trap_threads is not None:
            check_int("trap-threads", args.trap_threads, 0)
    except ValueError as e:
        ap.error(str(e))
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        ap.error("--clock cpu needs --threads 1 and --device cpu: with more threads the process's CPU time "
                 "adds up the threads and is not the time a call takes")
    if args.trap_child:
        return trap_child(args)
    if args.allocator == "tuned" and not timing.tunables_applied():
        # glibc reads GLIBC_TUNABLES at start-up only: run this same command again in a process that has it
        cmd = [sys.executable, "-m", "mnlib.measure", *(sys.argv[1:] if argv is None else argv)]
        print(f"re-executing under GLIBC_TUNABLES={timing.ALLOCATOR_TUNABLES}", flush=True)
        return subprocess.run(cmd, env=_child_env(True), check=False).returncode
    names = [n for n in args.models.split(",") if n]
    if unknown := [n for n in names if n not in MODELS]:
        ap.error(f"unknown models {unknown}; choose from {sorted(MODELS)}")
    by_h = {str(h): (h, ci, co) for h, ci, co in COURSE_SHAPES}
    wanted = [s.strip() for s in args.shapes.split(",") if s.strip()]
    if bad := [s for s in wanted if s not in by_h]:
        ap.error(f"unknown shapes {bad}; choose from {sorted(by_h, key=int)}")
    shapes = [by_h[s] for s in wanted]
    cuda = args.device.startswith("cuda")
    batches = (1, 8) if not cuda else (1, 64)
    dtypes = {"float32": torch.float32, **({"float16": torch.float16} if cuda else {})}
    load_before = os.getloadavg()
    start = cpu_snapshot()
    per_pass = {"layers": [], "models": []}
    t0 = time.perf_counter()
    with timing.threads(args.threads):
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        env = timing.environment(args.device)  # inside the thread setting: the threads that timed
        print(f"allocator: GLIBC_TUNABLES={env['glibc_tunables']}; {env['threads']} thread(s)")
        clock = CLOCKS[args.clock]
        # the roof is timed as the layers are: same clock, same thread setting (we are inside it)
        print(f"roofline of this machine ({args.clock} clock) ...")
        machine = roofline.measure_machine(args.device, clock=clock)
        print(f"  peak {machine.peak_macs_per_s / 1e9:.1f} GMAC/s, bandwidth "
              f"{machine.bandwidth_bytes_per_s / 1e9:.1f} GB/s")
        print("layers ...")
        layers = run_passes(list(_layer_cases(batches, dtypes, args.device, shapes)), args.passes, args.device,
                            args.min_sample_s, args.repeats, conditions=per_pass["layers"], clock=clock)
        print("models ...")
        models = run_passes(list(_model_cases(batches, dtypes, args.device, names, args.compile or cuda)),
                            args.passes, args.device, args.min_sample_s, args.repeats,
                            conditions=per_pass["models"], clock=clock) if names else []
    trap = None
    if args.trap_rounds and not cuda:
        print("allocator trap (fresh processes, default and tuned malloc) ...")
        trap_threads = args.threads if args.trap_threads is None else (args.trap_threads or None)
        trap = allocator_trap(args.trap_rounds, device=args.device, threads=trap_threads,
                              repeats=args.repeats, min_sample_s=args.min_sample_s)
    whole = load_between(start, cpu_snapshot())
    over = roofline.roof_violations(machine, [lay for lay in layers if lay["dtype"] == "float32"])
    roof_check = {"clock": args.clock, "threads": env["threads"], "layers_over_peak": len(over),
                  "fastest_over_peak": round(over[0]["over_peak"], 3) if over else None,
                  "valid": not over,
                  "what": "fp32 layers whose median rate beats the GEMM peak measured with the same clock and "
                          "threads; if any, the peak is no roof (read the record with "
                          "mnlib.roofline.machine_from_record, whose peak is max(GEMM, fastest layer))"}
    if over:
        print(f"WARNING: {len(over)} layer(s) ran faster than the measured peak (up to "
              f"{over[0]['over_peak']:.2f}x): the GEMM peak is not a roof for them; the record says so "
              "in machine.roof_check", file=sys.stderr)
    record = {
        "what": "standard vs depthwise separable conv layers and whole MobileNets, timed with mnlib.timing",
        "method": (f"{args.passes} interleaved passes (order rotated per pass); per case and pass "
                   f"1 warm-up call and the median of {args.repeats} samples of >= {args.min_sample_s} s; "
                   "median_s is the median of the pass medians, min_s/max_s their range; "
                   "page_faults_per_call: minor page faults of the same samples per call, one per pass; "
                   "min_bytes = read input + weights once, write output once (DSC unfused)"),
        "clock": {"wall": "wall time (time.perf_counter)",
                  "cpu": "CPU time of the process (time.process_time), one thread: the time other programs "
                         "held the core is left out"}[args.clock],
        "command": "python -m mnlib.measure " + " ".join(sys.argv[1:] if argv is None else argv),
        "conditions": {"note": args.note,
                       "loadavg_before": [round(v, 2) for v in load_before],
                       "loadavg_after": [round(v, 2) for v in os.getloadavg()],
                       "wall_s": round(time.perf_counter() - t0, 1),
                       "others_cpu_share": whole["others_cpu_share"], "own_cpu_share": whole["own_cpu_share"],
                       "steal_share": whole["steal_share"],
                       "per_pass": per_pass,
                       "how": "others_cpu_share: host busy CPU time (/proc/stat) minus this run's own, over "
                              "wall time x cores; the load average counts this run's threads too"},
        "env": env,
        "machine": {"name": machine.name, "peak_macs_per_s": machine.peak_macs_per_s,
                    "bandwidth_bytes_per_s": machine.bandwidth_bytes_per_s,
                    **{k: v for k, v in machine.details.items() if k != "env"}, "roof_check": roof_check},
        "layers": layers,
        "models": models,
        "allocator_trap": trap,
    }
    if args.out == "-":
        print(json.dumps(record))
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out} ({record['conditions']['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
