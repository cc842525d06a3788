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

import nbformat
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.preprocessors import OverwriteCells


class RestoreCells(OverwriteCells):
    """OverwriteCells that re-inserts deleted grade cells and remembers their ids in ``restored``."""

    order: list = []  # grade_ids in the released notebook's order (set by the caller)

    def preprocess(self, nb, resources):
        self.restored = []
        self.add_missing_cells = True
        return super().preprocess(nb, resources)

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
