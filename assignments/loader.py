"""The one loader of an assignment's hidden checks: it builds the grader's private namespace.

Three callers, one function:
- the notebook's hidden setup cell (assignments/build.py pastes ``load_checks``'s source and the
  texts it loads into that cell, so the notebook stays the grader's single truth);
- the course's grader, which runs that setup cell in its own process (autograder/remote.py,
  ``run_setup``) with ``remote`` set to its client;
- the tests, which load an assignment's texts from the files (assignments/build.py, ``load``).

Why not plain imports. The checks are real modules (``assignments/<id>/checks.py`` says
``from assignments.toolkit import need, Fail, ...``), but in the learner's kernel, where plain
nbgrader runs the setup cell, the package ``assignments`` is not installed, and the grader's
objects must stay private (assignments/toolkit.py's docstring: the trust model). So the texts are
executed as module objects that are *never registered in sys.modules*: each module's
``__builtins__`` is a private copy of the builtins whose ``__import__`` returns these modules for
``assignments`` and ``assignments.<...>`` and defers every other name to the real import, taken
when the loader ran. Nothing an answer cell can reach through ``sys.modules`` or ``import`` leads
to them, and an answer that replaces ``builtins.__import__`` or ``builtins.abs`` afterwards changes
the learner's world, not the grader's. Only absolute imports are resolved (``from
assignments.toolkit import ...``), as the files write them.

Each text is compiled under its path relative to the repository (``assignments/ps1_dsc/checks.py``),
so a traceback names the real file and line; a module's ``__loader__.get_source`` returns its text,
so ``inspect`` and tracebacks show its lines even where the file is absent, and ``kernel_define``
can send a kernel module's text to the learner's kernel.

``load_checks`` and ``check_functions`` must stay self-contained (every import inside it, no name from this module):
only its source travels into the notebook.
"""
from __future__ import annotations

TOOLKIT = "assignments/toolkit.py"


def load_checks(texts, remote=None, stderr_to_stdout=False):
    """Execute the toolkit and one assignment's modules from their texts; return the checks module.

    ``texts``: {path relative to the repository: source text}, the toolkit
    (``assignments/toolkit.py``) first, the checks last, the assignment's kernel helpers (if any)
    between them. ``remote``: the grader's client (autograder.remote.Client) when the grader runs
    the checks in its own process, else None (they run where they are loaded: in the learner's
    kernel under plain nbgrader, or in a test).
    ``stderr_to_stdout``: in the kernel under plain nbgrader, which zeroes a test cell on any stderr
    output, send stderr to stdout: the course's rule (autograder/execute.py, cell_score) is that only
    an error costs points, so library warnings (matplotlib, torch) cost nothing, on every machine.
    """
    import builtins
    import sys
    import types

    if stderr_to_stdout:
        sys.stderr = sys.stdout
    real_import = builtins.__import__  # the import as it is now, before any answer cell ran
    private = {}  # dotted name -> module object; never put in sys.modules
    private_builtins = dict(vars(builtins))  # a private copy: answers that patch builtins do not reach it

    class Text:
        """PEP 302's ``get_source``: a module's text, for inspect, tracebacks and kernel_define."""

        def __init__(self, text):
            self.text = text

        def get_source(self, name):
            return self.text

    def private_import(name, globals=None, locals=None, fromlist=(), level=0):
        top = name.partition(".")[0]
        if level == 0 and top == "assignments":
            if name not in private:
                raise ModuleNotFoundError(f"No module named {name!r} among the grader's texts ({sorted(private)})",
                                          name=name)
            return private[name] if fromlist else private[top]
        return real_import(name, globals, locals, fromlist, level)

    private_builtins["__import__"] = private_import

    def module(name, path, text, package=False):
        mod = types.ModuleType(name)
        mod.__file__, mod.__loader__, mod.__builtins__ = path, Text(text), private_builtins
        if package:
            mod.__path__ = []
        return mod

    def package_of(name):
        """The (empty) package module ``name``, made once, and set as an attribute of its parent."""
        if name not in private:
            private[name] = module(name, name.replace(".", "/") + "/__init__.py", "", package=True)
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(package_of(parent), child, private[name])
        return private[name]

    paths = list(texts)
    if not paths or paths[0] != "assignments/toolkit.py":
        raise ValueError("the toolkit (assignments/toolkit.py) must be the first text")
    last = None
    for path in paths:
        text = texts[path]
        name = path.removesuffix(".py").replace("/", ".")
        mod = module(name, path, text)
        if path == "assignments/toolkit.py":
            mod.REMOTE, mod.GUARD_SOURCE = remote, text  # its parameters: the client, and its own text for the kernel
        parent, _, child = name.rpartition(".")
        setattr(package_of(parent), child, mod)
        private[name] = mod
        exec(compile(text, path, "exec"), mod.__dict__)
        last = mod
    return last


def check_functions(module):
    """The checks' ``check_*`` functions, as the object the hidden test blocks call (``_ps_grader``)."""
    import types

    return types.SimpleNamespace(**{k: v for k, v in vars(module).items() if k.startswith("check_")})
