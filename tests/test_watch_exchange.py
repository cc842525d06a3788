"""End to end with nbgrader's exchange and two normal accounts: a learner runs ``nbgrader submit``, the
grader's account runs ``python -m autograder watch``, the learner runs ``nbgrader fetch_feedback`` and
reads a page that shows the visible checks only (the due time is a week away).

As root the test creates both accounts (the grader's is test_rootless's, with its venv from Debian's
Python 3.11; the learner's is made here) and a shared exchange as nbgrader sets it up: outbound and
feedback readable by all, inbound writable and not listable (0733). Run as a normal user, it skips:
two accounts need root to make.
"""
from __future__ import annotations

import datetime as dt
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import tempfile

import pytest

from test_rootless import ACCOUNT as GRADER, _account_python

ROOT = pathlib.Path(__file__).resolve().parents[1]
LEARNER = "mnl-learner"
COURSE = "mnl101"
A = "ps1_dsc"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="two accounts need root to create")]


def _learner() -> dict:
    try:
        pwd.getpwnam(LEARNER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", LEARNER], check=True)
    return {"user": LEARNER, "group": pwd.getpwnam(LEARNER).pw_gid, "extra_groups": []}


def test_submit_watch_fetch_feedback_as_two_accounts():
    grader, python = _account_python()
    learner = _learner()
    # mnlib installed in the grader's venv, as `make venv` does for an instructor: the learner's kernel
    # imports it (refreshed each run: the venv is kept between runs, mnlib changes)
    site = next(pathlib.Path(python).parent.parent.glob("lib/python3*/site-packages"))
    shutil.rmtree(site / "mnlib", ignore_errors=True)
    shutil.copytree(ROOT / "mnlib", site / "mnlib", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(site / "mnlib")], check=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mnl-exchange-", dir="/var/tmp"))
    try:
        os.chmod(work, 0o755)
        exchange = work / "exchange"
        course = exchange / COURSE
        (course / "outbound" / A).mkdir(parents=True)
        shutil.copyfile(ROOT / "exercises" / A / f"{A}.ipynb", course / "outbound" / A / f"{A}.ipynb")
        (course / "inbound").mkdir()
        home = work / "grader"
        for part in ("autograder", "assignments"):  # mnlib: the venv's, as the kernel's
            shutil.copytree(ROOT / part, home / part, ignore=shutil.ignore_patterns("__pycache__"))
        for part in ("solutions", "exercises"):
            shutil.copytree(ROOT / part / A, home / part / A)
        ws = home / "ws"
        ws.mkdir()
        due = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7)).isoformat(timespec="seconds")
        (ws / "course.toml").write_text(f"[assignments.{A}]\ndue = {due}\n")
        learner_home = work / "learner"
        (learner_home / A).mkdir(parents=True)
        # the learner's notebook: visible checks pass, hidden ones fail (padding off)
        shutil.copyfile(ROOT / "autograder" / "samples" / A / "s06_padding_off" / f"{A}.ipynb",
                        learner_home / A / f"{A}.ipynb")
        subprocess.run(["chown", "-R", GRADER, str(exchange), str(home)], check=True)
        subprocess.run(["chown", "-R", LEARNER, str(learner_home)], check=True)
        os.chmod(exchange, 0o777)  # nbgrader's documented set-up: the exchange root writable by all
        os.chmod(course / "inbound", 0o733)  # as nbgrader's release_assignment makes it
        os.chmod(learner_home, 0o700)
        bin_dir = pathlib.Path(python).parent

        def run(who, cwd, *args):
            env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
            return subprocess.run([python, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
                                  **who)

        nbg = ["-m", "nbgrader"]
        where = [f"--course={COURSE}", f"--Exchange.root={exchange}"]
        sub = run(learner, learner_home, *nbg, "submit", A, *where)
        assert sub.returncode == 0, sub.stderr[-3000:]
        inbound = list((course / "inbound").iterdir())
        assert len(inbound) == 1 and inbound[0].name.startswith(f"{LEARNER}+{A}+")
        assert pwd.getpwuid(inbound[0].stat().st_uid).pw_name == LEARNER

        w = run(grader, home, "-m", "autograder", "watch", "--workspace", "ws", "--assignment", A,
                "--source", "solutions", "--exchange", str(exchange), "--course", COURSE, "--once")
        assert w.returncode == 0, w.stderr[-3000:]
        assert "answered 1 submission(s)" in w.stdout, w.stdout + w.stderr
        assert "user namespace" not in w.stderr or "unsafe" not in w.stderr.lower()

        peek = run(learner, learner_home, "-c", f"import os; os.listdir({str(ws / 'results')!r})")
        assert peek.returncode != 0 and "PermissionError" in peek.stderr  # the grader's workspace is its own

        peek = run(learner, learner_home, "-c", f"import os; os.listdir({str(course / 'feedback')!r})")
        assert peek.returncode != 0 and "PermissionError" in peek.stderr  # others' pages: not listable

        fetch = run(learner, learner_home, *nbg, "fetch_feedback", A, *where)
        assert fetch.returncode == 0, fetch.stderr[-3000:]
        pages = list((learner_home / A / "feedback").glob(f"*/{A}.html"))
        assert len(pages) == 1, fetch.stderr[-2000:]
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script).*?</\1>", "", pages[0].read_text(),
                                                                   flags=re.S)))
        assert "visible checks said" in text and "their result is shown after the due time" in text
        assert "cases failed" not in text and "5 / 10" not in text
    finally:
        shutil.rmtree(work, ignore_errors=True)
