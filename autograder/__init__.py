"""Grading command of the course: release, collect, grade, feedback, export, selfcheck (nbgrader inside)."""
import sys as _sys

# jsonschema loads an IRI format checker when the optional package rfc3987-syntax is installed (the
# jsonschema[format-nongpl] that jupyter-events asks for brings it): importing it builds a Lark grammar,
# ~0.95 s of CPU in every process that imports nbformat, nbgrader included (`python -X importtime -c
# "import nbformat"`). Nothing here checks an IRI's syntax (nbformat validates notebooks without format
# checks), so the autograder's processes leave it out: jsonschema skips a checker whose import fails.
_sys.modules.setdefault("rfc3987_syntax", None)
