"""Why a grading run stops as a whole (not one student's result): library code raises these, and
only ``cli.main`` turns them into a one-line message on stderr and an exit status."""
from __future__ import annotations


class GradingStopped(RuntimeError):
    """The batch cannot go on; what was committed stays, the same command resumes. CLI: exit status 1."""

    exit_status = 1


class GradingEnvironmentError(GradingStopped):
    """This machine cannot grade safely (no sandbox and no --unsafe): nothing was graded."""


class ClusterLost(GradingStopped):
    """The Dask scheduler went away mid-batch; the students in flight are graded on the next run."""
