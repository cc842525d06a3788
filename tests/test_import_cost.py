"""The autograder's processes leave out jsonschema's optional IRI checker (autograder/__init__.py)."""
import json
import pathlib
import subprocess
import sys

import pytest

PROBE = """
import json, sys
import autograder, nbformat, nbgrader.preprocessors
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
nbformat.validate(nb)
bad = nbformat.from_dict({"cells": [{"cell_type": "code", "id": "a", "metadata": {}, "outputs": [],
                                     "execution_count": None}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
try:
    nbformat.validate(bad)
    caught = False
except nbformat.ValidationError:
    caught = True
print(json.dumps({"loaded": sys.modules.get("rfc3987_syntax") is not None, "caught": caught}))
"""


def test_nbformat_validates_without_the_iri_checker():
    """Importing the autograder first keeps rfc3987_syntax (0.95 s of import) out, and notebooks are
    still validated: a valid one passes, a broken one is refused."""
    if subprocess.run([sys.executable, "-c", "import rfc3987_syntax"], capture_output=True).returncode:
        pytest.skip("rfc3987-syntax is not installed here: nothing to leave out")
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         cwd=pathlib.Path(__file__).resolve().parents[1]).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {"loaded": False, "caught": True}
