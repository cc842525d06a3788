"""ps6_roofline's probes: trusted helpers that run where the learner's objects live (the kernel).

The hidden checks (assignments/ps6_roofline/checks.py) place this file's text in the kernel with
``kernel_define`` when the setup cell runs, before any answer cell; what the probes record comes
back as plain data (numbers, strings, lists) and the verdict is computed in the grader. It must stay
self-contained, since it is defined in the kernel from its text alone: it imports nothing from
assignments/.

- ``Tools`` reads an Axes as plain data (scales, labels, lines, scatter offsets), makes a new Axes
  and closes one; the matplotlib methods it uses are taken when this runs, so a patched method
  cannot fake the data.
- ``Case`` holds the arguments of one measurement (measure_gemm, measure_bandwidth) and a ``Watch``
  on its output buffer: the real clock, plus a witness that the work was done, in full, between
  two clock reads.
"""
import matplotlib.axes
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

# References taken when this runs (before any answer cell), so a patched method cannot fake the data.
_AXES = matplotlib.axes.Axes
_xscale, _yscale, _xlabel, _ylabel = _AXES.get_xscale, _AXES.get_yscale, _AXES.get_xlabel, _AXES.get_ylabel
_lines, _collections = _AXES.get_lines, _AXES.collections.fget
_xdata, _ydata, _marker = Line2D.get_xdata, Line2D.get_ydata, Line2D.get_marker
_subplots, _close = plt.subplots, plt.close


def _floats(values):
    return np.asarray(values, float).ravel().tolist()


class Tools:
    @staticmethod
    def describe(ax):
        # What the checks read from an Axes, as plain data.
        if not (isinstance(ax, _AXES) and type(ax).__module__.startswith("matplotlib.")):
            return {"axes": False, "type": type(ax).__name__}
        lines, offsets = [], []
        for line in _lines(ax):
            marker = _marker(line)
            try:
                lines.append({"x": _floats(_xdata(line)), "y": _floats(_ydata(line)),
                              "marker": None if marker is None else str(marker)})
            except (TypeError, ValueError):
                continue
        for coll in _collections(ax):
            try:
                offsets.append(np.asarray(coll.get_offsets(), float).reshape(-1, 2).tolist())
            except (TypeError, ValueError):
                continue
        return {"axes": True, "type": type(ax).__name__, "xscale": str(_xscale(ax)), "yscale": str(_yscale(ax)),
                "xlabel": str(_xlabel(ax)), "ylabel": str(_ylabel(ax)), "lines": lines, "offsets": offsets}

    @staticmethod
    def new_axes():
        return _subplots()[1]

    @staticmethod
    def close(ax):
        if isinstance(ax, _AXES):
            _close(ax.figure)


import time

import torch

_perf_counter, _allclose = time.perf_counter, torch.allclose


class Watch:
    # The real clock, plus a witness: at every read it checks that the buffer being written (out or dst)
    # was rewritten with the right values since the previous read, then plants sentinels in it again.
    # So a call that times a smaller copy, or does the work outside the timed interval, is seen.
    def __init__(self, buf, ref):
        self.buf = buf.view(-1)
        self.idx = torch.linspace(0, self.buf.numel() - 1, min(64, self.buf.numel())).long()
        self.want = ref.reshape(-1)[self.idx].clone()
        self.sentinel = self.want + 1000  # far from every right value, representable in fp16
        self.reads = self.full = 0
        self.last, self.intervals = None, []  # the intervals, between two reads, that did the whole work
        self.warm = None  # at the first read: had an untimed call already written the result?
        self.buf[self.idx] = self.sentinel

    def __call__(self):
        t = _perf_counter()
        done = bool(_allclose(self.buf[self.idx], self.want, rtol=1e-4, atol=1e-3))
        if self.reads == 0:
            self.warm = done
        elif done:
            self.full += 1
            self.intervals.append(t - self.last)
        self.last = t
        self.buf[self.idx] = self.sentinel
        self.reads += 1
        return t


class Case:
    # The arguments of one measurement and the watch on its output buffer, where the learner's code runs.
    def __init__(self, args, buf_index, ref):
        self.args = tuple(args)
        self.watch = Watch(self.args[buf_index], ref)

    def run(self, fn, warmup, repeats):
        return fn(*self.args, warmup=warmup, repeats=repeats, clock=self.watch)
