"""Kept while solutions/ps6_roofline_src.py, ps8_quantization_src.py and ps9_latency_search_src.py
are not yet moved to assignments/<id>/: they import the cell makers from here by name. The builder
is assignments/build.py; running this file runs it (.venv/bin/python solutions/build_notebooks.py [ID ...]).
"""
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in solutions/
if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assignments.build import GRADER, answer, main, md, readonly, tests  # noqa: E402,F401

if __name__ == "__main__":
    main(sys.argv[1:])
