"""``python -m autograder SUBCOMMAND``."""
import atexit
import os
import sys
import threading

from .cli import main

status = main()
# Everything is written, committed and closed by now. What a normal exit would still do is tear down
# every module (torch, SQLAlchemy, IPython...), about 0.9 s after each command on a 2-core machine:
# run the exit handlers, flush, and end the process. Not while a non-daemon thread still runs (a
# normal exit waits for it).
if all(t.daemon or t is threading.main_thread() for t in threading.enumerate()):
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status or 0)
sys.exit(status)
