"""nbgrader's OverwriteCells, plus putting back test cells a submission deleted.

nbgrader restores the source of an *edited* locked cell, but a *deleted* grade cell leaves its
score empty (None). Its own ``add_missing_cells`` option does not help in 0.9.6: the cell it builds
is a shallow NotebookNode and crashes (AttributeError on ``metadata.nbgrader``), and it places the
cell by a lookup that fails (KeyError) when the cell before the deleted one is a plain locked cell.
Decision: a deleted test cell is re-inserted from the
gradebook, after the nearest earlier cell the submission still has, and run like any other, so
it costs exactly the points it would cost had it stayed; the result records which cells came back.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import traceback

import jsonschema
import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.nbgraderformat.common import BaseMetadataValidator
from nbgrader.preprocessors import CheckCellMetadata, OverwriteCells, OverwriteKernelspec


class RestoreCells(OverwriteCells):
    """OverwriteCells that re-inserts deleted grade cells and remembers their ids in ``restored``.

    ``sources`` (set by the caller): the batch's :func:`sources_snapshot` of the gradebook, read instead of
    the database (nbgrader opens it and queries each cell: ~13 ms a ps1 notebook); None: the database."""

    order: list = []  # grade_ids in the released notebook's order (set by the caller)
    sources: dict | None = None

    def preprocess(self, nb, resources):
        self.restored = []
        self.add_missing_cells = True
        if self.sources is None:
            return super().preprocess(nb, resources)
        # OverwriteCells.preprocess, its gradebook the snapshot
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.db_url = resources["nbgrader"]["db_url"]
        self.gradebook = SourcesGradebook(self.sources, self.assignment_id)
        nb, resources = super(OverwriteCells, self).preprocess(nb, resources)
        nb, resources = self.add_missing_grade_cells(nb, resources)
        return self.add_missing_task_cells(nb, resources)

    def add_missing_grade_cells(self, nb, resources):
        source = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        # The gradebook keeps no cell order: take it from the released notebook when we have it.
        order = list(self.order) or [c.name for c in source.source_cells]
        order += [c.name for c in source.source_cells if c.name not in order]
        solutions = {c.name for c in source.solution_cells}
        by_name = {c.name: c for c in source.source_cells}
        present = {c.metadata["nbgrader"]["grade_id"]: None for c in nb.cells
                   if "nbgrader" in c.metadata and "grade_id" in c.metadata["nbgrader"]}
        for grade_cell in sorted(source.grade_cells, key=lambda c: order.index(c.name)):
            if grade_cell.name in present:
                continue
            self.log.warning("test cell %s was deleted; putting it back", grade_cell.name)
            cell = self._restored_cell(by_name[grade_cell.name], grade_cell.max_score,
                                       is_solution=grade_cell.name in solutions)
            before = order[:order.index(grade_cell.name)]
            at = 0
            for i, c in enumerate(nb.cells):  # after the last surviving cell that precedes it in the source
                if c.metadata.get("nbgrader", {}).get("grade_id") in before:
                    at = i + 1
            nb.cells.insert(at, cell)
            present[grade_cell.name] = None
            self.restored.append(grade_cell.name)
        return nb, resources


    def _restored_cell(self, source_cell, max_score, is_solution=False):
        """The source cell as a locked grade cell, its first line saying it was put back."""
        notice = self.missing_cell_notification.format(cell_id=source_cell.name)
        if source_cell.cell_type == "code":
            notice = "# " + notice  # the notice ends in a blank line, so one comment marker covers it
        meta = {"grade": True, "grade_id": source_cell.name, "locked": source_cell.locked,
                "checksum": source_cell.checksum, "cell_type": source_cell.cell_type,
                "points": max_score, "solution": bool(is_solution)}
        make = nbformat.v4.new_code_cell if source_cell.cell_type == "code" else nbformat.v4.new_markdown_cell
        cell = make(notice + source_cell.source, metadata={"deletable": False, "nbgrader": meta})
        if not is_solution:
            cell.metadata["editable"] = False
        return MetadataValidator().upgrade_cell_metadata(cell)


@functools.lru_cache(maxsize=4)
def _schema_checker(schema_text: str):
    """A validator for nbgrader's metadata schema, the schema itself checked once (jsonschema.validate checks
    it on every call: nbgrader validates each cell that way, ~10 ms a ps1 notebook)."""
    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


class _SchemaOnce(BaseMetadataValidator):
    """BaseMetadataValidator.validate_cell with the checker made once; a cell of another schema version gets
    nbgrader's own code (its SchemaTooOld/TooNew errors)."""

    def __init__(self) -> None:
        super().__init__()
        self._checker = _schema_checker(json.dumps(self.schema))  # once per validator, not per cell

    def validate_cell(self, cell) -> None:
        if "nbgrader" not in cell.metadata or cell.metadata["nbgrader"].get("schema_version", 0) != self.schema_version:
            return super().validate_cell(cell)
        error = jsonschema.exceptions.best_match(self._checker.iter_errors(cell.metadata["nbgrader"]))
        if error is not None:
            raise error


class FastMetadataValidator(MetadataValidator, _SchemaOnce):
    """nbgrader's MetadataValidator (v3): its own checks of each cell and notebook run unchanged; only the
    schema step below them comes from _SchemaOnce (the method resolution order puts it between the two)."""


class CheckMetadata(CheckCellMetadata):
    """nbgrader's CheckCellMetadata with FastMetadataValidator: the same verdicts, the same message."""

    def preprocess(self, nb, resources):
        try:
            FastMetadataValidator().validate_nb(nb)
        except ValidationError:
            self.log.error(traceback.format_exc())
            msg = "Notebook failed to validate; the nbgrader metadata may be corrupted."
            self.log.error(msg)
            raise ValidationError(msg)  # noqa: B904 - as nbgrader raises it
        return nb, resources


# ---------------------------------------------------------------- the gradebook's sources, read once a batch

@dataclasses.dataclass(frozen=True)
class SourceCell:
    name: str
    cell_type: str
    locked: bool | None
    checksum: str | None
    source: str


@dataclasses.dataclass(frozen=True)
class NamedCell:  # a solution cell: nbgrader's sanitizers read only its name
    name: str


@dataclasses.dataclass(frozen=True)
class ScoredCell:
    name: str
    max_score: float
    cell_type: str


@dataclasses.dataclass(frozen=True)
class SourceNotebook:
    """What nbgrader's sanitizers read of a notebook in the gradebook, in the order the gradebook gives it."""
    name: str
    kernelspec: str | None
    source_cells: tuple
    grade_cells: tuple
    solution_cells: tuple
    task_cells: tuple


def sources_snapshot(db_url: str, assignment: str, notebooks) -> dict[str, SourceNotebook]:
    """{notebook stem: SourceNotebook} for ``assignment``, read from the gradebook once. The batch takes it
    after ``ensure_assignment`` (under the workspace lock: nothing changes the sources until it ends) and its
    workers sanitize every submission against it. A notebook the gradebook does not know is left out (its
    sanitizers then meet the database's own MissingEntry, as before)."""
    out = {}
    gb = Gradebook(db_url)
    with gb:
        for name in notebooks:
            stem = name.removesuffix(".ipynb")
            try:
                nb = gb.find_notebook(stem, assignment)
            except MissingEntry:
                continue
            out[stem] = SourceNotebook(
                name=stem, kernelspec=nb.kernelspec,
                source_cells=tuple(SourceCell(c.name, c.cell_type, c.locked, c.checksum, c.source)
                                   for c in nb.source_cells),
                grade_cells=tuple(ScoredCell(c.name, c.max_score, c.cell_type) for c in nb.grade_cells),
                solution_cells=tuple(NamedCell(c.name) for c in nb.solution_cells),
                task_cells=tuple(ScoredCell(c.name, c.max_score, c.cell_type) for c in nb.task_cells))
    gb.engine.dispose()  # no open connection left for the workers the batch forks next
    return out


class SourcesGradebook:
    """The part of nbgrader's Gradebook its sanitizers use (find_notebook, find_source_cell,
    find_graded_cell), answered from a :func:`sources_snapshot`; unknown names raise MissingEntry."""

    def __init__(self, sources: dict[str, SourceNotebook], assignment: str):
        self.sources, self.assignment = sources, assignment

    def find_notebook(self, name: str, assignment: str) -> SourceNotebook:
        if assignment != self.assignment or name not in self.sources:
            raise MissingEntry(f"No such notebook: {assignment}/{name}")  # nbgrader's words
        return self.sources[name]

    def find_source_cell(self, name: str, notebook: str, assignment: str) -> SourceCell:
        for cell in self.find_notebook(notebook, assignment).source_cells:
            if cell.name == name:
                return cell
        raise MissingEntry(f"No such source cell: {assignment}/{notebook}/{name}")

    def find_graded_cell(self, name: str, notebook: str, assignment: str) -> ScoredCell:
        nb = self.find_notebook(notebook, assignment)
        for cell in (*nb.grade_cells, *nb.task_cells):
            if cell.name == name:
                return cell
        raise MissingEntry(f"No such grade cell: {assignment}/{notebook}/{name}")


class OverwriteKernelspecFrom(OverwriteKernelspec):
    """nbgrader's OverwriteKernelspec with ``sources`` (a :func:`sources_snapshot`, or None: the database)."""

    sources: dict | None = None

    def preprocess(self, nb, resources):
        if self.sources is None:
            return super().preprocess(nb, resources)
        spec = SourcesGradebook(self.sources, resources["nbgrader"]["assignment"]).find_notebook(
            resources["nbgrader"]["notebook"], resources["nbgrader"]["assignment"]).kernelspec
        if spec is not None and json.loads(spec):
            nb.metadata["kernelspec"] = json.loads(spec)
        return nb, resources
