"""Where the assignments are authored: each one's notebook cells, hidden checks and kernel helpers.

assignments/build.py writes the nbgrader source notebooks solutions/<id>/<id>.ipynb from them; the
grader reads only those notebooks. assignments/toolkit.py holds what all checks share;
assignments/loader.py runs them in the grader's private namespace.
"""
