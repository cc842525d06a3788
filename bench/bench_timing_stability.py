"""How stable is mnlib.timing.benchmark against torch.utils.benchmark.Timer on the same operations?

For each operation, both harnesses measure it 10 times (interleaved, so drift hits both), each with
about the same time budget; the script prints the spread of the 10 medians: (max - min) / median and
the relative IQR. Lower is more stable. The issue's bar: ours at least as stable as Timer.

    .venv/bin/python bench/bench_timing_stability.py [--threads 1] [--rounds 10] [--budget 0.15]
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from torch import nn
from torch.utils import benchmark as tub

from mnlib import timing


def operations():
    """Course-sized layers: a memory-bound depthwise conv, a pointwise conv, a dense GEMM."""
    dw = nn.Conv2d(32, 32, 3, 1, 1, groups=32, bias=False).eval()
    x_dw = torch.randn(1, 32, 112, 112)
    pw = nn.Conv2d(128, 128, 1, bias=False).eval()
    x_pw = torch.randn(1, 128, 56, 56)
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    return {"depthwise 3x3 112x112x32": lambda: dw(x_dw),
            "pointwise 56x56x128->128": lambda: pw(x_pw),
            "matmul 256x256x256": lambda: torch.mm(a, b)}


def spread(medians) -> tuple[float, float]:
    m = np.asarray(medians)
    q25, q75 = np.percentile(m, [25, 75])
    return float((m.max() - m.min()) / np.median(m)), float((q75 - q25) / np.median(m))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=10, help="repeated measurements per harness")
    ap.add_argument("--budget", type=float, default=0.15, help="seconds of timed work per measurement")
    args = ap.parse_args(argv)
    with timing.threads(args.threads), torch.no_grad():
        threads = torch.get_num_threads()
        print(f"torch {torch.__version__}, {threads} thread(s), load average {os.getloadavg()[0]:.1f}, "
              f"{args.rounds} measurements each, ~{args.budget} s of timed work per measurement\n")
        print(f"{'operation':28s} {'harness':30s} {'median of medians':>18s} {'(max-min)/med':>14s} {'IQR/med':>8s}")
        wins = 0
        ops = operations()
        for name, fn in ops.items():
            ours, theirs = [], []
            for r in range(args.rounds):
                def run_ours():
                    # 10 samples of budget/10 each: the same timed work as Timer's min_run_time
                    ours.append(timing.benchmark(fn, warmup=3, repeats=10, min_sample_s=args.budget / 10).median)

                def run_theirs():
                    t = tub.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
                    theirs.append(t.blocked_autorange(min_run_time=args.budget).median)
                for run in ((run_ours, run_theirs) if r % 2 == 0 else (run_theirs, run_ours)):
                    run()
            s_ours, s_theirs = spread(ours), spread(theirs)
            wins += s_ours[0] <= s_theirs[0]
            for label, med, s in (("mnlib.timing.benchmark", ours, s_ours),
                                  ("torch Timer.blocked_autorange", theirs, s_theirs)):
                print(f"{name:28s} {label:30s} {np.median(med) * 1e6:15.1f} us {s[0]:14.1%} {s[1]:8.1%}")
        print(f"\nours at least as stable (max-min spread) on {wins} of {len(ops)} operations "
              f"(load average now {os.getloadavg()[0]:.1f}; on a shared machine this varies run to run)")


if __name__ == "__main__":
    main()
