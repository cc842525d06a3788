"""ps8_quantization's probe: a trusted helper that runs where the learner's code runs (the kernel).

The hidden checks (assignments/ps8_quantization/checks.py) place this file's text in the kernel with
``kernel_define`` and call the learner's functions through ``watched``: it runs one call while a
profile hook records what the exercise forbids, and returns the result and that record as plain
data; the verdict is computed in the grader.

Forbidden while an answer runs (the exercise is to write these yourself):
- torch's own quantization: any torch C function whose name contains ``quantize`` (it covers
  ``torch.quantize_per_tensor``, ``torch.quantize_per_channel``, ``torch.fake_quantize_*``,
  ``torch._make_per_tensor_quantized_tensor``, ``Tensor.dequantize``; a quantized conv needs a
  quantized tensor, which only these make), ``Tensor.int_repr``, and any Python code under
  ``torch/ao/`` (observers, ``torch.ao.nn.quantized.functional``);
- mnlib (the course's library), as in every assignment.
"""


def watched(fn, *args):
    """``fn(*args)`` with a profile hook on: {"out": what it returned, "used": [forbidden calls seen]}."""
    import os
    import sys

    import torch

    import mnlib
    ao = os.path.join(os.path.dirname(os.path.abspath(torch.__file__)), "ao") + os.sep
    lib = os.path.dirname(os.path.abspath(mnlib.__file__)) + os.sep
    used = []
    previous = sys.getprofile()

    def hook(frame, event, arg):
        name = None
        if event == "call":
            path = frame.f_code.co_filename
            if path.startswith(ao):
                name = "torch.ao." + path[len(ao):].replace(os.sep, ".").removesuffix(".py") + "." + frame.f_code.co_name
            elif path.startswith(lib):
                name = "mnlib." + path[len(lib):].removesuffix(".py") + "." + frame.f_code.co_name
        elif event == "c_call":
            called = str(getattr(arg, "__name__", ""))
            if "quantize" in called or called == "int_repr":
                name = called
        if name is not None and name not in used:
            used.append(name)
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(hook)
    try:
        out = fn(*args)
    finally:
        sys.setprofile(previous)
    return {"out": out, "used": used}


def watched_alone(fn, reference_src, names, *args):
    """``watched(fn, *args)`` with the learner's functions ``names`` replaced, in ``fn``'s globals and
    only while it runs, by the reference ones defined from ``reference_src``: a check of ``fn`` then
    judges ``fn`` alone, and a mistake in a helper it calls is charged to the helper's own cell."""
    env = {"__name__": "grader_reference"}
    exec(reference_src, env)
    refs = {k: env[k] for k in names}
    glb = getattr(fn, "__globals__", None)
    if not isinstance(glb, dict):
        return watched(fn, *args)
    missing = object()
    saved = {k: glb.get(k, missing) for k in refs}
    glb.update(refs)
    try:
        return watched(fn, *args)
    finally:
        for k, v in saved.items():
            if v is missing:
                glb.pop(k, None)
            else:
                glb[k] = v
