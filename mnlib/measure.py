"""Record the measurements the book cannot take at build time: standard vs DSC layers, whole models.

    python -m mnlib.measure --out data/measurements/cpu_<date>.json [--threads 1] [--passes 3]
    python -m mnlib.measure --device cuda --out data/measurements/gpu_<date>.json

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
import sys
import time
from pathlib import Path

import torch
from torch import nn

from . import cost, roofline, timing
from .models import MODELS

# The course's standard-vs-DSC shapes (H = W, C_in -> C_out): MobileNetV1's stages at 224.
COURSE_SHAPES = [(112, 32, 64), (56, 128, 128), (28, 256, 256), (14, 512, 512), (7, 1024, 1024)]
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def _layer_cases(batches, dtypes, device):
    """(record, callable) for a standard 3x3 conv and a DSC at each course shape."""
    for h, ci, co in COURSE_SHAPES:
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


def run_passes(cases, passes: int, device: str, min_sample_s: float, repeats: int,
               log=print) -> list[dict]:
    """Time every case once per pass, rotating the order; keep every pass's median."""
    timing._check_int("passes", passes, 1)
    results = [dict(rec, pass_medians_s=[], page_faults_per_call=[]) for rec, _ in cases]
    fns = [fn for _, fn in cases]
    with torch.no_grad():
        for p in range(passes):
            order = list(range(len(fns)))
            shift = (p * len(order)) // passes
            order = order[shift:] + order[:shift]  # each pass starts at a different case
            for i in order:
                s = timing.benchmark(fns[i], warmup=1, repeats=repeats, min_sample_s=min_sample_s,
                                     device=device)
                results[i]["pass_medians_s"].append(s.median)
                results[i]["page_faults_per_call"].append(s.page_faults_per_call)
            log(f"  pass {p + 1}/{passes} done, load {os.getloadavg()[0]:.1f}")
    for r in results:
        m = r["pass_medians_s"]
        r.update(median_s=statistics.median(m), min_s=min(m), max_s=max(m))
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mnlib.measure", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="samples per case per pass")
    ap.add_argument("--min-sample-s", type=float, default=0.02)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated mnlib model names")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (always on CUDA)")
    ap.add_argument("--loaded", action="store_true",
                    help="say in the record that the machine was shared with other work")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    try:
        timing.check_device(args.device)
    except ValueError as e:
        ap.error(str(e))
    names = [n for n in args.models.split(",") if n]
    if unknown := [n for n in names if n not in MODELS]:
        ap.error(f"unknown models {unknown}; choose from {sorted(MODELS)}")
    cuda = args.device.startswith("cuda")
    batches = (1, 64) if cuda else (1, 8)
    dtypes = {"float32": torch.float32, **({"float16": torch.float16} if cuda else {})}
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with timing.threads(args.threads):
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        print("roofline of this machine ...")
        machine = roofline.measure_machine(args.device)
        print(f"  peak {machine.peak_macs_per_s / 1e9:.1f} GMAC/s, bandwidth "
              f"{machine.bandwidth_bytes_per_s / 1e9:.1f} GB/s")
        print("layers ...")
        layers = run_passes(list(_layer_cases(batches, dtypes, args.device)), args.passes, args.device,
                            args.min_sample_s, args.repeats)
        print("models ...")
        models = run_passes(list(_model_cases(batches, dtypes, args.device, names, args.compile or cuda)),
                            args.passes, args.device, args.min_sample_s, args.repeats)
        env = timing.environment(args.device)
    record = {
        "what": "standard vs depthwise separable conv layers and whole MobileNets, timed with mnlib.timing",
        "method": (f"{args.passes} interleaved passes (order rotated per pass); per case and pass "
                   f"1 warm-up call and the median of {args.repeats} samples of >= {args.min_sample_s} s; "
                   "median_s is the median of the pass medians, min_s/max_s their range; "
                   "min_bytes = read input + weights once, write output once (DSC unfused)"),
        "command": "python -m mnlib.measure " + " ".join(sys.argv[1:] if argv is None else argv),
        "conditions": {"loaded_machine": args.loaded, "note": args.note,
                       "loadavg_before": [round(v, 2) for v in load_before],
                       "loadavg_after": [round(v, 2) for v in os.getloadavg()],
                       "wall_s": round(time.perf_counter() - t0, 1)},
        "env": env,
        "machine": {"name": machine.name, "peak_macs_per_s": machine.peak_macs_per_s,
                    "bandwidth_bytes_per_s": machine.bandwidth_bytes_per_s,
                    **{k: v for k, v in machine.details.items() if k != "env"}},
        "layers": layers,
        "models": models,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out} ({record['conditions']['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
