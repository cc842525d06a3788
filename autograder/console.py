"""Where the grading commands write: one convention for every module.

A library function that reports takes ``log``, a callable of one line of text (``log(line)``), and
its default says where that line goes:

- :func:`stderr` for what a run says while it works (the sandbox in use, warnings, the canary, the
  Dask cluster): ``grade`` and ``cluster``. Standard output stays for the summary the CLI prints.
- :func:`stdout` for a command's report of what it produced: ``feedback``, ``export``, ``selfcheck``.

Callers that want silence or a record pass their own (``lambda line: None``, ``lines.append``).
"""
from __future__ import annotations

import sys


def stderr(line: str) -> None:
    """Write ``line`` to the standard error stream (looked up at call time: a captured stream works)."""
    print(line, file=sys.stderr)


def stdout(line: str) -> None:
    """Write ``line`` to the standard output stream (looked up at call time)."""
    print(line, file=sys.stdout)
