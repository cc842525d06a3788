"""Shared fixtures and markers of the course's test suite."""
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a minute (still part of make test)")
    config.addinivalue_line("markers", "browser: drives Debian's chromium over the built book")
    config.addinivalue_line("markers", "book: reads the built book in _build/html (run make book first)")


@pytest.fixture(scope="session")
def published():
    """Published numbers kept as data with their sources (data/published.json)."""
    return json.loads((ROOT / "data" / "published.json").read_text())
