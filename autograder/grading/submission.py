"""Read a student's submission and compare it with the released assignment.

Before nbgrader sees a submission, :func:`inspect_submission` decides whether it
can be graded at all (``missing_notebook``, ``corrupt_notebook``), ignores extra
notebooks, repairs duplicate cell ids and invalid nbgrader metadata, and records
tampering: a locked cell whose source or metadata differs from the release (or
from the instructor's source), and grade cells that were deleted or re-tagged.
nbgrader then restores those cells from the gradebook
(``OverwriteCells.add_missing_cells``); this module makes sure the restoration
is reported instead of silent.
"""

from __future__ import annotations

import json
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.nbgraderformat import MetadataValidator

MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024


@dataclass
class CellInfo:
    """One nbgrader cell of the released notebook."""

    grade_id: str
    cell_type: str
    grade: bool
    solution: bool
    locked: bool
    points: float
    nb_id: str | None
    checksums: set[str]
    public_source: str
    hidden_lines: list[str]
    metadata: dict


@dataclass
class NotebookInfo:
    name: str
    cells: dict[str, CellInfo]

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.cells.values() if c.grade)

    @property
    def auto_max_score(self) -> float:
        return sum(c.points for c in self.cells.values() if c.grade and not c.solution)


@dataclass
class ReleaseInfo:
    assignment: str
    notebooks: dict[str, NotebookInfo]

    @property
    def max_score(self) -> float:
        return sum(n.max_score for n in self.notebooks.values())

    @property
    def auto_max_score(self) -> float:
        return sum(n.auto_max_score for n in self.notebooks.values())

    @property
    def hidden_lines(self) -> list[str]:
        """Every hidden-test line of the assignment (a page quoting one leaks hidden tests)."""
        return [line for nb in self.notebooks.values() for c in nb.cells.values() for line in c.hidden_lines]


def hidden_test_lines(source: str, min_length: int = 12) -> list[str]:
    """Distinctive lines inside ``BEGIN/END HIDDEN TESTS`` regions (used to detect leaks)."""
    lines, inside = [], False
    for line in source.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif inside:
            text = line.strip()
            if len(text) >= min_length and not text.startswith("#"):
                lines.append(text)
    return lines


def release_info(assignment: str, release_dir: Path, source_cells: dict[tuple[str, str], tuple[str, str]]) -> ReleaseInfo:
    """Describe the released notebooks; ``source_cells[(notebook, grade_id)] = (checksum, source)``."""
    notebooks: dict[str, NotebookInfo] = {}
    for path in sorted(release_dir.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells: dict[str, CellInfo] = {}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if not meta or "grade_id" not in meta:
                continue
            checksum, source = source_cells.get((path.stem, meta["grade_id"]), ("", cell.source))
            cells[meta["grade_id"]] = CellInfo(
                grade_id=meta["grade_id"], cell_type=cell.cell_type, grade=nbutils.is_grade(cell),
                solution=nbutils.is_solution(cell), locked=nbutils.is_locked(cell),
                points=float(meta.get("points", 0) or 0), nb_id=cell.get("id"),
                checksums={nbutils.compute_checksum(cell), checksum} - {""},
                public_source=cell.source, hidden_lines=hidden_test_lines(source), metadata=dict(meta),
            )
        notebooks[path.stem] = NotebookInfo(path.stem, cells)
    return ReleaseInfo(assignment, notebooks)


@dataclass
class Inspection:
    """What was found in ``SUBMISSIONS/<student>/<assignment>/``."""

    status: str | None = None  # "missing_notebook" / "corrupt_notebook" when it cannot be graded
    notebooks: dict[str, NotebookNode] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)


def _read(path: Path) -> tuple[NotebookNode, list[str]]:
    """The notebook and the cell ids it repeats (nbformat renames repeats while reading)."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text)  # a clear JSON error first
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError("not a notebook: no list of cells")
    ids = [c.get("id") for c in raw["cells"] if isinstance(c, dict) and isinstance(c.get("id"), str)]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = nbformat.reads(text, as_version=4)
    return nb, repeated


def _repair_ids(nb: NotebookNode, insp: Inspection, name: str) -> None:
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):
        return
    seen: set[str] = set()
    for cell in nb.cells:
        cid = cell.get("id")
        if not isinstance(cid, str) or not cid or cid in seen:
            if cid in seen:
                insp.flags.add("duplicate_cells")
                insp.notes.append(f"{name}: duplicate cell id {cid!r} renamed")
            cell["id"] = uuid.uuid4().hex[:8]
        seen.add(cell["id"])


def _strip_invalid_metadata(nb: NotebookNode, insp: Inspection, name: str) -> None:
    validator = MetadataValidator()
    for cell in nb.cells:
        if "nbgrader" not in cell.metadata:
            continue
        try:
            validator.validate_cell(cell)
        except Exception as exc:
            gid = cell.metadata["nbgrader"].get("grade_id", "?") if isinstance(cell.metadata["nbgrader"], dict) else "?"
            insp.tampered.append(f"{name}: cell {gid!r} had invalid grading metadata ({str(exc)[:80]}); it was reset")
            del cell.metadata["nbgrader"]


def _restore_metadata(cell: NotebookNode, ref: CellInfo) -> None:
    """Put back the released type and grading metadata; nbgrader then restores a locked source.

    nbgrader itself fails on a test cell whose ``grade``/``locked`` flags were
    switched off ("Inconsistent checksums"), so this happens before it runs.
    """
    if cell.cell_type != ref.cell_type:
        cell.cell_type = ref.cell_type
        if ref.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
    cell.metadata["nbgrader"] = nbformat.from_dict(dict(ref.metadata))
    if ref.locked:
        cell.source = ref.public_source


def _compare(nb: NotebookNode, info: NotebookInfo, insp: Inspection) -> None:
    by_id: dict[str, list[NotebookNode]] = {}
    nb_ids = {c.get("id") for c in nb.cells}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid:
            by_id.setdefault(gid, []).append(cell)
    for gid, ref in info.cells.items():
        found = by_id.get(gid, [])
        if len(found) > 1:
            insp.flags.add("duplicate_cells")
            insp.notes.append(f"{info.name}: cell {gid!r} appears {len(found)} times; the last copy is graded")
            for extra in found[:-1]:  # as nbgrader's DeduplicateIds, but without leaving empty metadata behind
                del extra.metadata["nbgrader"]
        if not found:
            how = "lost its grading metadata" if ref.nb_id and ref.nb_id in nb_ids else "was deleted"
            if ref.grade or ref.locked:
                insp.tampered.append(f"{info.name}: {'test' if ref.locked else 'graded'} cell {gid!r} {how}; restored from the source")
            else:
                insp.notes.append(f"{info.name}: answer cell {gid!r} {how}")
            continue
        cell = found[-1]
        if ref.solution and not ref.locked and cell.source.strip() == ref.public_source.strip():
            insp.notes.append(f"{info.name}: no answer in {gid!r} (the cell is as released)")
        changed = []
        if cell.cell_type != ref.cell_type:
            changed.append(f"type {ref.cell_type} -> {cell.cell_type}")
        for attr, value in (("grade", nbutils.is_grade(cell)), ("solution", nbutils.is_solution(cell)), ("locked", nbutils.is_locked(cell))):
            if value != getattr(ref, attr):
                changed.append(f"{attr} {getattr(ref, attr)} -> {value}")
        if ref.grade and nbutils.is_grade(cell):
            points = float(cell.metadata["nbgrader"].get("points", 0) or 0)
            if points != ref.points:
                changed.append(f"points {ref.points:g} -> {points:g}")
        if ref.locked and not changed and nbutils.compute_checksum(cell) not in ref.checksums:
            changed.append("source edited")
        if changed:
            kind = "test" if ref.locked else "graded"
            insp.tampered.append(f"{info.name}: {kind} cell {gid!r} was modified ({', '.join(changed)}); graded with the original")
            _restore_metadata(cell, ref)
    unknown = sorted(set(by_id) - set(info.cells))
    if unknown:
        insp.notes.append(f"{info.name}: ignored grading metadata of unknown cells {', '.join(map(repr, unknown[:5]))}")


def inspect_submission(folder: Path, info: ReleaseInfo) -> Inspection:
    """Read and check every notebook of a submission folder (see module doc)."""
    insp = Inspection()
    if not folder.is_dir():
        insp.status = "missing_notebook"
        insp.missing = sorted(info.notebooks)
        insp.notes.append(f"no folder {folder.parent.name}/{folder.name}")
        return insp
    present = {p.stem: p for p in folder.iterdir() if p.suffix == ".ipynb" and p.is_file()}
    insp.extra = sorted(set(present) - set(info.notebooks))
    if insp.extra:
        insp.notes.append("ignored extra notebook(s): " + ", ".join(f"{n}.ipynb" for n in insp.extra))
    corrupt = []
    for name, nbinfo in info.notebooks.items():
        if name not in present:
            insp.missing.append(name)
            continue
        try:
            nb, repeated = _read(present[name])
        except Exception as exc:  # any unreadable file is reported, never raised
            corrupt.append(f"{name}.ipynb could not be read ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        if repeated:
            insp.flags.add("duplicate_cells")
            insp.notes.append(f"{name}: duplicate cell ids {', '.join(map(repr, repeated[:5]))} were renamed")
        _repair_ids(nb, insp, name)
        _strip_invalid_metadata(nb, insp, name)
        _compare(nb, nbinfo, insp)
        insp.notebooks[name] = nb
    if insp.missing:
        insp.notes.append("missing notebook(s): " + ", ".join(f"{n}.ipynb" for n in insp.missing))
    insp.notes.extend(corrupt)
    if not insp.notebooks:
        insp.status = "corrupt_notebook" if corrupt else "missing_notebook"
    elif corrupt:
        insp.flags.add("corrupt_notebook")
    if insp.tampered:
        insp.flags.add("tampered")
    return insp
