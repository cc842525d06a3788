"""The gradebook database: a clear refusal when it cannot be reached, and one transaction per student.

SQLite in the workspace by default; a server (PostgreSQL: ``postgresql+psycopg://user@host/db``)
for large classes or several grading runs at once. Three things here:

- :func:`prepare` connects before anything is graded and says, naming the URL with its password
  masked, why it cannot; it creates nbgrader's schema under a lock, so two runs that start at
  once on a new database do not both create it.
- :func:`transaction` runs a group of nbgrader ``Gradebook`` calls (each of which commits) as one
  database transaction: nbgrader's session joins a transaction we own, in SQLAlchemy's documented
  ``join_transaction_mode="rollback_only"``: its ``commit()`` commits nothing, its ``rollback()``
  (after an IntegrityError) rolls the whole group back, and only the end of the block commits. A
  process killed inside the block leaves nothing: the server drops an uncommitted transaction.
- :func:`record_retrying` repeats such a group when a concurrent writer won a race (two runs adding
  the same student at once: a unique-key violation) or the server broke a deadlock.
"""
from __future__ import annotations

import contextlib
import time

LOCK_KEY = 0x6E62_6772  # PostgreSQL advisory lock id held while nbgrader's schema is created ("nbgr")
RETRIES = 5


class GradebookUnavailable(ValueError):
    """The gradebook database cannot be used (refused connection, missing driver, bad URL)."""


def masked(db_url: str) -> str:
    """The URL with its password replaced by ***."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL: show no part of it that could hold a password
        return db_url.split("@")[-1] if "@" in db_url else db_url


def _engine(db_url: str):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    try:
        url = make_url(db_url)
    except Exception as exc:  # noqa: BLE001
        raise GradebookUnavailable(f"gradebook URL {masked(db_url)!r} is not a database URL ({exc})") from None
    args = {"connect_timeout": 10} if url.get_backend_name() == "postgresql" else {}
    try:
        return create_engine(url, connect_args=args)
    except ModuleNotFoundError as exc:
        hint = (" (write postgresql+psycopg://..., the driver in requirements.txt)"
                if url.get_backend_name() == "postgresql" else "")
        raise GradebookUnavailable(f"gradebook {masked(db_url)}: no database driver {exc.name!r}{hint}") from None


def prepare(db_url: str) -> None:
    """Connect to the gradebook and create nbgrader's schema if needed; GradebookUnavailable if it cannot."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError
    engine = _engine(db_url)
    try:
        with engine.connect() as conn:
            postgres = engine.dialect.name == "postgresql"
            if postgres:  # one creator at a time: nbgrader's create_all and its course row race otherwise
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
                conn.commit()
            try:
                _open_gradebook(db_url)
            finally:
                if postgres:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                    conn.commit()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise GradebookUnavailable(f"gradebook {masked(db_url)}: cannot use it: {reason[0] if reason else exc}. "
                                   "Nothing was graded or written.") from None
    finally:
        engine.dispose()


def _open_gradebook(db_url: str) -> None:
    from nbgrader.api import Gradebook

    from . import nbgrader_config  # noqa: F401 - puts the venv's bin (nbgrader runs `alembic`) on PATH
    gb = Gradebook(db_url)
    gb.close()


@contextlib.contextmanager
def transaction(gb):
    """nbgrader ``Gradebook`` calls inside the block are one transaction, committed when the block ends."""
    from sqlalchemy.orm import Session
    saved = gb.db
    with gb.engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="rollback_only", autoflush=True,
                          expire_on_commit=False)
        gb.db = session
        try:
            yield gb
            session.flush()
            outer.commit()
        except BaseException:
            if outer.is_active:
                outer.rollback()
            raise
        finally:
            session.close()
            gb.db = saved


def is_race(exc: BaseException) -> bool:
    """A failure another writer caused (unique key taken meanwhile, deadlock, serialization): worth a retry."""
    from nbgrader.api import InvalidEntry
    from sqlalchemy.exc import IntegrityError, OperationalError
    if isinstance(exc, (IntegrityError, InvalidEntry)):
        return True
    if isinstance(exc, OperationalError):
        code = getattr(getattr(exc, "orig", None), "sqlstate", None)
        return code in ("40001", "40P01") or "database is locked" in str(exc)
    return False


def record_retrying(gb, write, res: dict) -> None:
    """``write(gb, res)`` in one transaction, repeated (up to RETRIES times) while it loses a race."""
    for attempt in range(RETRIES):
        try:
            with transaction(gb):
                write(gb, res)
            return
        except Exception as exc:
            if attempt == RETRIES - 1 or not is_race(exc):
                raise
            time.sleep(0.05 * 2 ** attempt)
