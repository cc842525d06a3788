"""Grading command of the course: release, collect, grade, feedback, export, selfcheck (nbgrader inside)."""
