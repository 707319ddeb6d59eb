"""The course gradebook: the nbgrader database that ``nbgrader formgrader`` reads.

Workers grade in private gradebooks (nbgrader has no parallel autograde); the process
that owns the course puts their work into the course gradebook and folder:

- :func:`snapshot_submission` (worker side) copies what nbgrader's autograde wrote for
  one submission into a JSON-able dict;
- :func:`ensure_assignment` copies the assignment (notebooks, cells, points,
  checksums) from a gradebook that ``generate_assignment`` filled, the way
  nbgrader's own ``generate_assignment`` updates a gradebook;
- :func:`merge_submission` writes the ``submitted/`` and ``autograded/`` files under
  the course folder and then, in one transaction, the student, the submission and
  the automatic scores, never touching what graders entered;
- :func:`manual_grades` reads back the scores and comments graders entered, for
  ``python -m autograder export``;
- :func:`regenerate_feedback` renders feedback from the course gradebook, so manual
  scores and comments reach students (``python -m autograder feedback``).

Any SQLAlchemy URL works (``sqlite:///...``, ``postgresql://user@host/db``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import html
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import nbformat
from nbgrader.api import (
    Assignment,
    Base,
    BaseCell,
    Comment,
    Grade,
    Gradebook,
    GradeCell,
    MissingEntry,
    Notebook,
    SolutionCell,
    SourceCell,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
    TaskCell,
)
from nbgrader.utils import parse_utc
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SNAPSHOT_VERSION = 1
# Statuses that mark a submission "flagged" in formgrader, so a grader looks at it.
FLAGGED_STATUSES = frozenset({"error", "missing_notebook", "corrupt_notebook", "tampered", "memory",
                              "kernel_died", "timeout"})
STATE_DIR = ".autograder"  # under the course folder: what each merge wrote (see merge_submission)


class GradebookError(RuntimeError):
    """The course gradebook cannot take this (unknown assignment, cells that changed under submissions ...)."""


# -- connections -------------------------------------------------------------------------------------
def _sqlite_file(db_url: str) -> Path | None:
    try:
        url = make_url(db_url)
    except ArgumentError:
        raise GradebookError(f"not a database URL: {db_url!r} (e.g. sqlite:////abs/path/gradebook.db, "
                             "postgresql://user@host/dbname)") from None
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
        return Path(url.database)
    return None


def gradebook_exists(db_url: str) -> bool:
    """False for an SQLite URL whose file does not exist (other databases are assumed to exist)."""
    path = _sqlite_file(db_url)
    return path is None or path.exists()


@contextmanager
def _open(db_url: str, create: bool = False) -> Iterator[Gradebook]:
    """An nbgrader Gradebook; a new SQLite file only when ``create``. Connection problems become GradebookError."""
    path = _sqlite_file(db_url)
    if path is not None and not path.exists():
        if not create:
            raise GradebookError(f"no gradebook at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
    os.environ.update(_path_env())
    try:
        create_schema(db_url)
        gb = Gradebook(db_url)
    except ImportError as exc:
        raise GradebookError(f"no database driver for {_label(db_url)}: {exc} (pip install -r requirements.lock)") from None
    except SQLAlchemyError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GradebookError(f"cannot open the gradebook {_label(db_url)}: {first}") from None
    try:
        yield gb
    finally:
        gb.close()


@functools.cache
def _alembic_head() -> str:
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    (head,) = ScriptDirectory(ALEMBIC_DIR).get_heads()
    return head


def create_schema(db_url: str) -> None:
    """nbgrader's tables in an empty database, stamped with nbgrader's migration head.

    What ``Gradebook()`` does for a new database, without its ``alembic`` subprocess
    (seconds per database, and it needs the executable on PATH). A no-op on a database
    that has tables. Call it before handing nbgrader (``generate_assignment``, ...) a new
    gradebook.
    """
    engine = create_engine(db_url, future=True)
    try:
        if inspect(engine).get_table_names():
            return
        try:
            with engine.begin() as conn:
                Base.metadata.create_all(bind=conn)
                conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": _alembic_head()})
        except (OperationalError, ProgrammingError, IntegrityError):
            if not inspect(engine).has_table("alembic_version"):  # not a concurrent creator that won
                raise
    finally:
        engine.dispose()


def _label(db_url: str) -> str:
    from autograder.grading.options import masked_url

    return masked_url(db_url)


def _transaction(db_url: str, work: Callable[[Gradebook], T], create: bool = False, attempts: int = 4) -> T:
    """Run ``work(gb)`` and commit once; retried when a concurrent writer got there first."""
    for attempt in range(attempts):
        with _open(db_url, create) as gb:
            try:
                with gb.db.no_autoflush:
                    value = work(gb)
                gb.db.commit()
                return value
            except (IntegrityError, OperationalError) as exc:  # a unique row created meanwhile; a locked file
                gb.db.rollback()
                if attempt == attempts - 1:
                    raise GradebookError(f"gradebook {_label(db_url)}: {str(exc).splitlines()[0]}") from None
            except BaseException:
                gb.db.rollback()
                raise
        time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def course_location(out: Path | None = None, course_root: Path | None = None,
                    db_url: str | None = None) -> tuple[Path, str]:
    """The course folder and gradebook URL a command works on.

    ``db_url`` wins; ``course_root`` alone means ``sqlite:///<course_root>/gradebook.db``
    (as for ``grade``); otherwise the course of the last ``grade`` run into ``out``
    (``OUT/run.json``), else ``CourseDirectory.root`` / ``.db_url`` of course/nbgrader_config.py.
    """
    from autograder.grading.options import course_gradebook

    options = _read_json(Path(out) / "run.json").get("options", {}) if out is not None else {}
    if course_root is not None:
        root = Path(course_root).resolve()
        return root, db_url or f"sqlite:///{root / 'gradebook.db'}"
    default_root, default_url = course_gradebook()
    if options.get("course_root") and options.get("db_url"):
        default_root, default_url = Path(options["course_root"]), options["db_url"]
        if "***" in default_url and db_url is None:
            raise GradebookError(f"the last grade run used {default_url} (its password is not stored): "
                                 "pass --db-url, or keep the password in ~/.pgpass")
    return default_root, db_url or default_url


# -- 1. worker side ------------------------------------------------------------------------------------
def snapshot_submission(gb: Gradebook, assignment: str, student: str) -> dict[str, Any]:
    """What nbgrader's autograde put into ``gb`` for one submission, as plain JSON-able data::

        {"version": 1, "assignment": a, "student": s, "timestamp": ISO-8601 UTC or None,
         "notebooks": {nb: {"late_submission_penalty": float | None,
                            "grades": {cell: {"auto_score": float | None, "max_score": float,
                                              "needs_manual_grade": bool, "cell_type": "code" | "markdown"}},
                            "comments": {cell: {"auto_comment": str | None}}}}}

    Raises ``MissingEntry`` when the submission is not in ``gb``.
    """
    sub = gb.find_submission(assignment, student)
    notebooks = {}
    for nb in sub.notebooks:
        notebooks[nb.name] = {
            "late_submission_penalty": nb.late_submission_penalty,
            "grades": {g.name: {"auto_score": None if g.auto_score is None else float(g.auto_score),
                                "max_score": float(g.max_score), "needs_manual_grade": bool(g.needs_manual_grade),
                                "cell_type": g.cell_type} for g in nb.grades},
            "comments": {c.name: {"auto_comment": c.auto_comment} for c in nb.comments},
        }
    return {"version": SNAPSHOT_VERSION, "assignment": assignment, "student": student,
            "timestamp": sub.timestamp.isoformat() if sub.timestamp else None, "notebooks": notebooks}


def _check_snapshot(snapshot: Any, assignment: str, student: str) -> None:
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("notebooks"), dict):
        raise ValueError(f"not a gradebook snapshot (snapshot_submission): {str(snapshot)[:200]}")
    if snapshot.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"gradebook snapshot version {snapshot.get('version')!r}, expected {SNAPSHOT_VERSION}")
    if (snapshot.get("assignment"), snapshot.get("student")) != (assignment, student):
        raise ValueError(f"the snapshot is of {snapshot.get('student')}/{snapshot.get('assignment')}, "
                         f"not {student}/{assignment}")


# -- 2. the assignment ------------------------------------------------------------------------------------
def _cells_of(nb: Notebook) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "grade": {c.name: {"max_score": c.max_score, "cell_type": c.cell_type} for c in nb.grade_cells},
        "solution": {c.name: {} for c in nb.solution_cells},
        "task": {c.name: {"max_score": c.max_score, "cell_type": c.cell_type} for c in nb.task_cells},
        "source": {c.name: {"cell_type": c.cell_type, "locked": c.locked, "source": c.source, "checksum": c.checksum}
                   for c in nb.source_cells},
    }


CELL_CLASSES = {"grade": GradeCell, "solution": SolutionCell, "task": TaskCell, "source": SourceCell}


def ensure_assignment(db_url: str, template_db_url: str, assignment: str) -> None:
    """Make the course gradebook at ``db_url`` know ``assignment`` as the template gradebook does.

    The template is one that ``nbgrader generate_assignment`` filled (the grader's course
    template). Idempotent. Changes follow nbgrader's ``generate_assignment``
    (``SaveCells``): a notebook without submissions is brought to the template's cells
    exactly (surviving cells keep their ids); a notebook with submissions gets new points,
    sources and checksums but may not gain or lose cells, and an assignment with
    submissions may not gain or lose notebooks (:class:`GradebookError`). A due date set
    in the course gradebook is kept. A new SQLite course gradebook file is created.
    """
    if not gradebook_exists(template_db_url):
        raise GradebookError(f"no template gradebook at {_sqlite_file(template_db_url)}")
    with _open(template_db_url) as tpl:
        try:
            source = tpl.find_assignment(assignment)
        except MissingEntry:
            raise GradebookError(f"the template gradebook has no assignment {assignment!r}: "
                                 "run nbgrader generate_assignment on it first") from None
        wanted = {nb.name: (nb.kernelspec, _cells_of(nb)) for nb in source.notebooks}
        duedate = source.duedate
    if not wanted:
        raise GradebookError(f"assignment {assignment!r} has no notebooks in the template gradebook")

    def work(gb: Gradebook) -> None:
        row = gb.db.query(Assignment).filter(Assignment.name == assignment).one_or_none()
        if row is None:
            row = Assignment(name=assignment, duedate=duedate, course_id=gb.course_id)
            gb.db.add(row)
        have = {nb.name: nb for nb in row.notebooks}
        if set(have) != set(wanted) and row.submissions:
            raise GradebookError(
                f"the instructor notebooks of {assignment!r} are now {sorted(wanted)}, the course gradebook has "
                f"{sorted(have)} with {len(row.submissions)} submission(s); nbgrader refuses to add or remove "
                "notebooks then. Keep the notebook names, or release the change as a new assignment.")
        for name in set(have) - set(wanted):
            _delete_notebook(gb, have[name])
        for name, (kernelspec, cells) in sorted(wanted.items()):
            nb = have.get(name)
            if nb is None:
                nb = Notebook(name=name, assignment=row, kernelspec=kernelspec)
                gb.db.add(nb)
            elif nb.kernelspec != kernelspec:
                nb.kernelspec = kernelspec
            _sync_cells(gb, assignment, nb, cells)

    _transaction(db_url, work, create=True)


def _delete_notebook(gb: Gradebook, nb: Notebook) -> None:
    for cell in [*nb._base_cells, *nb.source_cells]:
        gb.db.delete(cell)
    gb.db.delete(nb)


def _sync_cells(gb: Gradebook, assignment: str, nb: Notebook, cells: dict[str, dict[str, dict[str, Any]]]) -> None:
    existing = _cells_of(nb)
    if nb.submissions:
        changed = {kind: sorted(set(existing[kind]) ^ set(cells[kind])) for kind in CELL_CLASSES}
        changed = {k: v for k, v in changed.items() if v}
        if changed:
            raise GradebookError(
                f"notebook {assignment}/{nb.name} changed its cells {changed} but the course gradebook already "
                f"holds {len(nb.submissions)} submission(s) of it; nbgrader refuses this as well. Keep the cell "
                "ids (grade_id) of the released version, or release the change as a new assignment.")
    rows = {(kind, c.name): c for kind, cls in CELL_CLASSES.items()
            for c in (nb.source_cells if kind == "source" else [x for x in nb._base_cells if type(x) is cls])}
    for kind, cls in CELL_CLASSES.items():
        for name, info in cells[kind].items():
            row = rows.pop((kind, name), None)
            if row is None:
                gb.db.add(cls(name=name, notebook=nb, **info))
            else:
                for key, value in info.items():
                    if getattr(row, key) != value:
                        setattr(row, key, value)
    for row in rows.values():  # cells the notebook no longer has (only possible without submissions)
        gb.db.delete(row)


# -- 3. one submission ------------------------------------------------------------------------------------
def merge_submission(db_url: str, course_root: Path, assignment: str, student: str, snapshot: dict | None,
                     files: dict[str, bytes], result: dict) -> None:
    """Put one graded submission into the course gradebook and folder (formgrader then lists it).

    ``files`` keys are paths relative to the course folder; ``submitted/<student>/<assignment>/*``
    and ``autograded/<student>/<assignment>/*`` are written (atomically, file by file),
    other keys (``feedback/...``) are ignored. ``autograded/`` is replaced as nbgrader's
    autograde replaces it. ``submitted/`` is the collected work and may be the very
    folder that was graded: a file there is only replaced when this function wrote it
    before; anything else (a newer hand-in, the instructor's copy) is kept, with a warning.
    A ``timestamp.txt`` that nbgrader cannot parse is not written (one already there is
    renamed ``timestamp.txt.invalid``): formgrader fails on it. The submission's timestamp
    in the gradebook is the one in the course folder's ``timestamp.txt``, as formgrader requires.

    Then one transaction creates the student and the submission (rows for every cell)
    and sets the automatic scores and comments from ``snapshot``. What graders entered
    (manual scores, extra credit, manual comments) is never changed. As nbgrader's
    autograde (``SaveAutoGrades``) does, a cell with a manual score is marked
    ``needs_manual_grade`` for review when the regraded submission differs from the one
    merged before (``submitted/`` files) or the cell's automatic score changed; a re-merge
    of the same submission with the same scores leaves the graders' state alone.
    Re-running gives the same database; an interrupted run loses nothing (the files are
    replaced before the transaction, and the record of what was merged after it, so the
    re-run redoes both).

    When ``snapshot`` is None (nbgrader could not grade: ``result["status"]`` /
    ``result["message"]`` say why) every cell gets automatic score 0 (nbgrader's rule for
    a missing notebook), every answer cell the reason as automatic comment, and a
    placeholder ``autograded/`` notebook (the submission as handed in when it is a
    readable notebook, else one cell per graded cell) states the reason, so a grader can
    still open it in formgrader and give scores. Failed and suspicious submissions
    (:data:`FLAGGED_STATUSES`) are flagged in formgrader, once per version (a grader may
    clear the flag); a later clean merge clears a flag this function set.
    """
    if not _safe_name(assignment) or not _safe_name(student):
        raise ValueError(f"unusable assignment or student id: {assignment!r}, {student!r}")
    status = str(result.get("status") or "error")
    message = str(result.get("message") or "")
    if snapshot is not None:
        _check_snapshot(snapshot, assignment, student)
    course_root = Path(course_root).resolve()
    submitted, autograded = _split_files(files, assignment, student)
    if not gradebook_exists(db_url):
        raise GradebookError(f"no course gradebook at {_sqlite_file(db_url)}: run ensure_assignment first")
    layout = _transaction(db_url, lambda gb: _layout(gb, assignment))
    state_path = course_root / STATE_DIR / "merged" / assignment / f"{student}.json"
    state = _read_json(state_path)
    if submitted:
        digest = _digest(submitted)
        changed = state.get("digest") != digest
    else:  # no files handed over (the grader failed): the submission is unknown, not changed
        digest, changed = state.get("digest"), False

    sub_dir = course_root / "submitted" / student / assignment
    written = _write_submitted(sub_dir, submitted, state.get("files", {}))
    if snapshot is None:
        reason = f"Not graded automatically ({status}): {message}".strip().rstrip(":")
    else:
        reason = "This notebook was not handed in."
    for nb_name, cells in layout.items():
        if f"{nb_name}.ipynb" not in autograded:
            autograded[f"{nb_name}.ipynb"] = _placeholder(submitted.get(f"{nb_name}.ipynb"), cells, reason)
    _sync_folder(course_root / "autograded" / student / assignment, autograded)
    timestamp = _folder_timestamp(sub_dir)

    flag = snapshot is None or status in FLAGGED_STATUSES
    comment = reason[:2000] if snapshot is None else None
    if flag:  # set it once per failing version: a grader who cleared it after a look is not overruled
        set_flag = True if changed or not state.get("flagged") or state.get("status") != status else None
    else:  # clear only a flag this function set
        set_flag = False if state.get("flagged") else None

    def work(gb: Gradebook) -> None:
        _merge_rows(gb, assignment, student, snapshot, timestamp, changed, set_flag, comment)

    _transaction(db_url, work)
    _write_json(state_path, {"digest": digest, "files": {**state.get("files", {}), **written}, "flagged": flag,
                             "status": status})


def _safe_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def _split_files(files: dict[str, bytes], assignment: str, student: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    parts: dict[str, dict[str, bytes]] = {"submitted": {}, "autograded": {}}
    for key, data in files.items():
        pieces = key.replace("\\", "/").split("/")
        if pieces[0] not in parts:
            continue
        rel = pieces[3:]
        if pieces[1:3] != [student, assignment] or not rel or any(p in ("", ".", "..") for p in rel):
            raise ValueError(f"file {key!r} is not under {pieces[0]}/{student}/{assignment}/")
        if not isinstance(data, bytes):
            raise ValueError(f"file {key!r}: expected bytes, got {type(data).__name__}")
        parts[pieces[0]]["/".join(rel)] = data
    return parts["submitted"], parts["autograded"]


def _layout(gb: Gradebook, assignment: str) -> dict[str, list[dict[str, Any]]]:
    """Per notebook, its graded and answer cells (for placeholders)."""
    row = gb.db.query(Assignment).filter(Assignment.name == assignment).one_or_none()
    if row is None:
        raise GradebookError(f"the course gradebook has no assignment {assignment!r}: run ensure_assignment first")
    layout = {}
    for nb in row.notebooks:
        cells: dict[str, dict[str, Any]] = {}
        sources = {c.name: c for c in nb.source_cells}
        for c in nb._base_cells:
            info = cells.setdefault(c.name, {"name": c.name, "grade": False, "solution": False, "task": False,
                                             "points": 0.0, "cell_type": getattr(sources.get(c.name), "cell_type", "code"),
                                             "locked": bool(getattr(sources.get(c.name), "locked", False))})
            kind = {GradeCell: "grade", SolutionCell: "solution", TaskCell: "task"}[type(c)]
            info[kind] = True
            if kind in ("grade", "task"):
                info.update(points=float(c.max_score), cell_type=c.cell_type)
        layout[nb.name] = sorted(cells.values(), key=lambda c: c["name"])
    return layout


def _merge_rows(gb: Gradebook, assignment: str, student: str, snapshot: dict | None, timestamp: dt.datetime | None,
                changed: bool, flag: bool | None, comment: str | None) -> None:
    """The submission's rows; ``flag``: True/False sets/clears formgrader's flag, None leaves it."""
    a_row = gb.db.query(Assignment).filter(Assignment.name == assignment).one_or_none()
    if a_row is None:
        raise GradebookError(f"the course gradebook has no assignment {assignment!r}: run ensure_assignment first")
    st = gb.db.get(Student, student)
    if st is None:
        st = Student(id=student)
        gb.db.add(st)
    sub = (gb.db.query(SubmittedAssignment)
           .filter(SubmittedAssignment.assignment_id == a_row.id, SubmittedAssignment.student_id == student)
           .one_or_none())
    if sub is None:
        sub = SubmittedAssignment(assignment=a_row, student=st)
        gb.db.add(sub)
    if sub.timestamp != timestamp:
        sub.timestamp = timestamp
    snap_notebooks = snapshot["notebooks"] if snapshot is not None else {}
    unknown = set(snap_notebooks) - {nb.name for nb in a_row.notebooks}
    if unknown:
        raise GradebookError(f"graded notebooks {sorted(unknown)} are not in the course gradebook's {assignment!r}: "
                             "run ensure_assignment with the template the submission was graded against")
    have = {snb.notebook_id: snb for snb in sub.notebooks}
    for nb in a_row.notebooks:
        snb = have.get(nb.id)
        if snb is None:
            snb = SubmittedNotebook(notebook=nb, assignment=sub)
            gb.db.add(snb)
        _merge_notebook(gb, snb, nb, snap_notebooks.get(nb.name), snapshot is not None, changed, comment)
        if flag is not None and bool(snb.flagged) != flag:
            snb.flagged = flag


def _merge_notebook(gb: Gradebook, snb: SubmittedNotebook, nb: Notebook, snap: dict | None, graded: bool,
                    changed: bool, comment: str | None) -> None:
    """Grades and comments of one submitted notebook; ``snap`` None: not handed in or not graded (0 points)."""
    if snb.id is not None:  # lock the rows graders write, so a formgrader save cannot interleave
        gb.db.query(Grade).filter(Grade.notebook_id == snb.id).with_for_update().populate_existing().all()
    grades = {g.cell_id: g for g in snb.grades}
    comments = {c.cell_id: c for c in snb.comments}
    for cell in [*nb.grade_cells, *nb.task_cells]:
        grade = grades.get(cell.id)
        if grade is None:
            grade = Grade(cell=cell, notebook=snb)
            gb.db.add(grade)
        if snap is None:
            auto, needs = 0.0, False
        else:
            entry = snap["grades"].get(cell.name)
            if entry is None or float(entry["max_score"]) != float(cell.max_score):
                worth = "nothing" if entry is None else entry["max_score"]
                raise GradebookError(
                    f"cell {nb.name}/{cell.name} was graded out of {worth} but is worth {cell.max_score} in the "
                    "course gradebook: run ensure_assignment with the template the submission was graded against")
            auto = None if entry["auto_score"] is None else float(entry["auto_score"])
            needs = bool(entry["needs_manual_grade"]) or auto is None
        before = grade.auto_score
        if before != auto:
            grade.auto_score = auto
        if grade.manual_score is not None or grade.extra_credit is not None:
            if (changed or before != auto) and not grade.needs_manual_grade:  # a score given to another answer
                grade.needs_manual_grade = True
        elif grade.needs_manual_grade != needs:
            grade.needs_manual_grade = needs
    if not graded:
        notes = dict.fromkeys((c.name for c in [*nb.solution_cells, *nb.task_cells]), comment)
    elif snap is None:
        notes = dict.fromkeys((c.name for c in [*nb.solution_cells, *nb.task_cells]), "No response.")
    else:
        notes = {name: entry.get("auto_comment") for name, entry in snap.get("comments", {}).items()}
    for cell in [*nb.solution_cells, *nb.task_cells]:
        row = comments.get(cell.id)
        if row is None:
            row = Comment(cell=cell, notebook=snb)
            gb.db.add(row)
        if row.auto_comment != notes.get(cell.name):
            row.auto_comment = notes.get(cell.name)
    penalty = (snap or {}).get("late_submission_penalty")
    if snb.late_submission_penalty != penalty:
        snb.late_submission_penalty = penalty


# -- files --------------------------------------------------------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + _sha(files[rel]).encode() + b"\0")
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _valid_timestamp(data: bytes) -> bool:
    try:
        return parse_utc(data.decode("utf-8").strip()) is not None
    except (ValueError, OverflowError, UnicodeDecodeError):
        return False


def _write_submitted(folder: Path, files: dict[str, bytes], ours: dict[str, str]) -> dict[str, str]:
    """Write the collected files; returns {relative path: sha256} of the files now there that are ours."""
    written = {}
    for rel, data in sorted(files.items()):
        if rel == "timestamp.txt" and not _valid_timestamp(data):
            log.warning("%s: timestamp.txt is not a time nbgrader can read; not copied", folder)
            continue
        path = folder / rel
        if path.is_file():
            current = _sha(path.read_bytes())
            if current == _sha(data):
                written[rel] = current
                continue
            if ours.get(rel) != current:
                log.warning("%s exists and was not written by the grader (a newer hand-in?): kept", path)
                continue
        _atomic_write(path, data)
        written[rel] = _sha(data)
    return written


def _sync_folder(folder: Path, files: dict[str, bytes]) -> None:
    """``folder`` holds exactly ``files`` afterwards (each written atomically)."""
    for rel, data in sorted(files.items()):
        path = folder / rel
        if not (path.is_file() and path.read_bytes() == data):
            _atomic_write(path, data)
    if folder.is_dir():
        for path in sorted(folder.rglob("*"), reverse=True):
            rel = path.relative_to(folder).as_posix()
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            elif not path.is_dir() and rel not in files:
                path.unlink()


def _folder_timestamp(folder: Path) -> dt.datetime | None:
    """The time in ``folder/timestamp.txt`` (UTC, naive, as nbgrader stores it) or None."""
    path = folder / "timestamp.txt"
    if not path.is_file():
        return None
    data = path.read_bytes()
    if _valid_timestamp(data):
        return parse_utc(data.decode("utf-8").strip())
    os.replace(path, path.with_name("timestamp.txt.invalid"))
    log.warning("%s could not be read as a time; renamed timestamp.txt.invalid", path)
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_json(path: Path, value: dict[str, Any]) -> None:
    data = json.dumps(value, indent=1, sort_keys=True).encode("utf-8")
    if not (path.is_file() and path.read_bytes() == data):
        _atomic_write(path, data)


def _nbgrader_meta(cell: dict[str, Any]) -> dict[str, Any]:
    meta = {"grade": cell["grade"] or cell["task"], "grade_id": cell["name"], "locked": cell["locked"] or cell["task"],
            "schema_version": 3, "solution": cell["solution"]}
    if cell["grade"] or cell["task"]:
        meta["points"] = cell["points"]
    if cell["task"]:
        meta.update(task=True, grade=False, solution=False)
    return meta


def _placeholder(submitted: bytes | None, cells: list[dict[str, Any]], reason: str) -> bytes:
    """An ``autograded/`` notebook for formgrader when nbgrader produced none.

    The submitted notebook when it can be read (its nbgrader cells matched to the
    gradebook's), else one cell per graded or answer cell; a first cell gives ``reason``.
    """
    nb = None
    if submitted is not None:
        try:
            nb = nbformat.reads(submitted.decode("utf-8"), as_version=4)
        except Exception:  # corrupt JSON, a wrong schema, not UTF-8: fall back to the gradebook's cells
            nb = None
    by_name = {c["name"]: c for c in cells}
    seen = set()
    if nb is None:
        nb = nbformat.v4.new_notebook()
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in by_name and gid not in seen and cell.cell_type == by_name[gid]["cell_type"]:
            cell.metadata["nbgrader"] = _nbgrader_meta(by_name[gid])
            seen.add(gid)
        else:
            cell.get("metadata", {}).pop("nbgrader", None)
    for c in cells:
        if c["name"] not in seen:
            text = f"*`{c['name']}`: not in the submitted notebook.*"
            new = (nbformat.v4.new_markdown_cell(text) if c["cell_type"] == "markdown"
                   else nbformat.v4.new_code_cell("# " + text.strip("*")))
            new.metadata["nbgrader"] = _nbgrader_meta(c)
            nb.cells.append(new)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**{html.escape(reason)}**"))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # unique ids: a submitted notebook may repeat them
    return nbformat.writes(nb).encode("utf-8")


# -- 4. what graders entered ----------------------------------------------------------------------------------
class ManualGrade(NamedTuple):
    """One score a grader entered in formgrader (``score`` = manual or automatic score + extra credit)."""

    student: str
    assignment: str
    notebook: str
    cell: str
    score: float
    comment: str
    manual_score: float | None
    extra_credit: float | None
    needs_review: bool


def formgrader_grades(db_url: str, assignment: str | None = None) -> list[ManualGrade]:
    """Every grade with a manual score or extra credit, with the grader's comment on that cell."""
    if not gradebook_exists(db_url):
        return []

    def work(gb: Gradebook) -> list[ManualGrade]:
        def scoped(q: Any, row: Any) -> Any:
            q = (q.join(SubmittedNotebook, SubmittedNotebook.id == row.notebook_id)
                 .join(Notebook, Notebook.id == SubmittedNotebook.notebook_id)
                 .join(SubmittedAssignment, SubmittedAssignment.id == SubmittedNotebook.assignment_id)
                 .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id)
                 .join(BaseCell, BaseCell.id == row.cell_id))
            return q if assignment is None else q.filter(Assignment.name == assignment)

        notes = {(nb_id, name): text for nb_id, name, text in
                 scoped(gb.db.query(Comment.notebook_id, BaseCell.name, Comment.manual_comment), Comment)
                 .filter(Comment.manual_comment.isnot(None))}
        rows = (scoped(gb.db.query(Grade, SubmittedAssignment.student_id, Assignment.name, Notebook.name,
                                   BaseCell.name), Grade)
                .filter(Grade.manual_score.isnot(None) | Grade.extra_credit.isnot(None)))
        return [ManualGrade(st, a, nb, cell, float(g.score), notes.get((g.notebook_id, cell)) or "",
                            g.manual_score, g.extra_credit, bool(g.needs_manual_grade))
                for g, st, a, nb, cell in rows]

    return sorted(_transaction(db_url, work), key=lambda g: (g.assignment, g.student, g.notebook, g.cell))


def manual_grades(db_url: str, assignment: str | None = None) -> dict[tuple[str, str, str], tuple[float, str]]:
    """(student, assignment, grade cell) -> (score, comment) for every score a grader entered in formgrader.

    ``score`` is what nbgrader counts for the cell: the manual score (or, with extra
    credit only, the automatic one) plus extra credit. Covers written answers and
    manual overrides of autograded cells. An SQLite gradebook that does not exist has none.
    Raises GradebookError when one cell name is graded in two notebooks of an assignment.
    """
    return by_cell(formgrader_grades(db_url, assignment))


def by_cell(grades: list[ManualGrade]) -> dict[tuple[str, str, str], tuple[float, str]]:
    """:func:`formgrader_grades` keyed by (student, assignment, cell), as :func:`manual_grades` returns them."""
    found: dict[tuple[str, str, str], tuple[float, str]] = {}
    where: dict[tuple[str, str, str], str] = {}
    for g in grades:
        key = (g.student, g.assignment, g.cell)
        if key in found:
            raise GradebookError(f"cell {g.cell!r} is graded in notebooks {where[key]!r} and {g.notebook!r} of "
                                 f"{g.assignment!r}: scores per cell name are ambiguous")
        found[key], where[key] = (g.score, g.comment), g.notebook
    return found


# -- 5. feedback from the course gradebook -------------------------------------------------------------------
class FeedbackRun(NamedTuple):
    """Pages written per student, and what could not be rendered (one line each)."""

    written: dict[str, list[Path]]
    problems: list[str]


def regenerate_feedback(db_url: str, course_root: Path, assignment: str, out: Path,
                        students: list[str] | None = None, course_config: Path | None = None) -> FeedbackRun:
    """Render ``OUT/feedback/<s>/<assignment>/<notebook>.html`` from the course gradebook and folder.

    nbgrader's ``generate_feedback`` runs on ``course_root/autograded`` with the course
    config, hidden tests removed by :class:`~autograder.grading.feedback.RedactHiddenTests`;
    the grading notes (status, timeouts ...) come from ``OUT/results`` when present. Pages
    are rendered in a private folder and only copied into ``OUT`` when no hidden-test line
    survived (:func:`~autograder.grading.feedback.leaked_lines`); other files in the
    student's feedback folder (``<nb>.as_submitted.html``, ``grading.html``) are kept.
    ``students`` limits the run (each must have a graded submission).
    """
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades

    from autograder.grading import feedback
    from autograder.grading.options import COURSE_CONFIG, load_course_config
    from autograder.grading.results import result_path
    from autograder.grading.submission import hidden_test_lines

    course_root, out = Path(course_root).resolve(), Path(out).resolve()
    if not gradebook_exists(db_url):
        raise GradebookError(f"no course gradebook at {_sqlite_file(db_url)}")

    def read(gb: Gradebook) -> tuple[list[str], list[str], list[str]]:
        row = gb.db.query(Assignment).filter(Assignment.name == assignment).one_or_none()
        if row is None:
            raise GradebookError(f"the course gradebook has no assignment {assignment!r}")
        hidden = [line for nb in row.notebooks for c in nb.source_cells for line in hidden_test_lines(c.source or "")]
        return sorted(s.student_id for s in row.submissions), [nb.name for nb in row.notebooks], hidden

    known, notebooks, hidden = _transaction(db_url, read)
    graded = [s for s in known if any((course_root / "autograded" / s / assignment).glob("*.ipynb"))]
    problems = [f"{s}: no graded submission of {assignment!r} in the course gradebook and folder"
                for s in (students or []) if s not in graded]
    todo = [s for s in graded if students is None or s in students]
    written: dict[str, list[Path]] = {}
    if not todo:
        return FeedbackRun(written, problems)
    with tempfile.TemporaryDirectory(prefix="autograder-feedback-") as tmp:
        cfg = load_course_config(COURSE_CONFIG if course_config is None else course_config)
        cfg.CourseDirectory.root = str(course_root)
        cfg.CourseDirectory.db_url = db_url
        cfg.CourseDirectory.autograded_directory = "autograded"
        cfg.CourseDirectory.feedback_directory = tmp
        cfg.GenerateFeedback.preprocessors = [GetGrades, feedback.RedactHiddenTests, CSSHTMLHeaderPreprocessor]
        os.environ.update(_path_env())
        api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
        for student in todo:
            stored = _read_json(result_path(out, assignment, student))
            notes = stored.get("notes") or ([stored["message"]] if stored.get("message") else [])
            feedback.CONTEXT = feedback.FeedbackContext({}, list(notes), stored.get("status", "ok"))
            try:
                res = api.generate_feedback(assignment, student, force=True)
            finally:
                feedback.CONTEXT = None
            if not res["success"]:
                tail = " | ".join((res.get("error") or res.get("log") or "").strip().splitlines()[-3:])
                problems.append(f"{student}: nbgrader generate_feedback failed: {tail}")
                continue
            for nb in notebooks:
                page = Path(tmp) / student / assignment / f"{nb}.html"
                if not page.is_file():
                    continue
                data = page.read_bytes()
                if feedback.leaked_lines(data.decode("utf-8", "replace"), hidden):
                    problems.append(f"{student}: {nb}.html still shows hidden test code; not written")
                    continue
                dest = out / "feedback" / student / assignment / f"{nb}.html"
                _atomic_write(dest, data)
                written.setdefault(student, []).append(dest)
    return FeedbackRun(written, problems)


def _path_env() -> dict[str, str]:
    from autograder.grading.options import venv_path_env

    return venv_path_env()
