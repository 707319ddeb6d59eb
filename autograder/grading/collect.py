"""Turn a download from an LMS into the nbgrader layout: ``python -m autograder collect``.

    python -m autograder collect --assignment cgan_mnist --from ~/Downloads/submissions.zip
    python -m autograder collect --assignment cgan_mnist --from downloads/ --to submitted \\
        --pattern '(?P<student_id>[a-z]+\\d+)_(?P<timestamp>\\d{8}T\\d{6})_.*'

``--from`` is one archive or a folder of files and archives (per-student zips, one
big zip, or both); archives inside archives are opened too. Each notebook found is
placed at ``TO/<student>/<assignment>/<notebook>.ipynb``, the layout the grader reads,
with a ``timestamp.txt`` (nbgrader's format) when the file name carries a time.

Extraction uses nbgrader's own :func:`nbgrader.utils.unzip` (zip and tar.gz, nested
archives, members that would land outside the target refused), and timestamps are
read with :func:`nbgrader.utils.parse_utc`; ``--pattern`` takes the named groups of
nbgrader's ``FileNameCollectorPlugin.named_regexp`` (``student_id``, optional
``file_id`` and ``timestamp``). ``nbgrader zip_collect`` itself is not called: it
needs its ``downloaded/<a>/archive`` folder structure, stops at the first resubmission
that has no timestamp, keeps student ids as the LMS spells them, and refuses to run
twice unless ``--force`` wipes the collected folders. This command instead

- recognises the file names of Canvas (``smithjohn_12345_67890_cgan_mnist.ipynb``,
  ``smithjohn_LATE_12345_67891_cgan_mnist-1.ipynb``) and Moodle
  (``John Smith_4711_assignsubmission_file_cgan_mnist.ipynb``, or the same as a folder
  name), and per-student folders (``jsmith/cgan_mnist.ipynb``), choosing the layout
  that explains most files;
- turns each student into an id the grader accepts (``^[A-Za-z0-9][A-Za-z0-9_.@-]*$``:
  accents dropped, other characters replaced by ``_``), keeping the LMS's number so ids
  stay unique and can be matched when grades go back;
- keeps the newest of several files for one student (by timestamp, else by the LMS's
  file number), maps renamed copies (``cgan_mnist-1.ipynb``, ``Copy of cgan_mnist.ipynb``,
  ``cgan_mnist (2).ipynb``) to the released name, and says why each file it could not
  place was left out;
- is idempotent: a re-run writes only files whose content changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ARCHIVE_SUFFIXES = (".zip", ".gz")  # what nbgrader's unzip opens (.gz: .tar.gz)
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
IGNORED_PARTS = ("__MACOSX", ".ipynb_checkpoints")

# Built-in layouts. Groups: ``name`` and ``number`` (the id is built from them) or ``student_id``;
# ``rest`` is the submitted file (or a folder above it); ``order`` sorts resubmissions.
LAYOUTS: dict[str, re.Pattern[str]] = {
    "canvas": re.compile(r"^(?P<name>[^\W_]+)_(?P<late>LATE_)?(?P<number>\d+)_(?P<order>\d+)_(?P<rest>.+)$"),
    "moodle": re.compile(r"^(?P<name>[^/]+?)_(?P<number>\d+)_assignsubmission_file_/?(?P<rest>.+)$"),
}


class CollectError(ValueError):
    """The download cannot be collected at all (missing path, bad pattern, unknown assignment)."""


@dataclass
class Found:
    """One notebook of the download and who it belongs to."""

    path: Path  # extracted file
    shown: str  # its path inside the download, for messages
    student: str
    raw_student: str
    notebook: str  # released notebook name it maps to, e.g. "cgan_mnist.ipynb"
    timestamp: dt.datetime | None = None
    order: int | None = None  # the LMS's file number: higher is newer
    late: bool = False
    note: str = ""


@dataclass
class Placed:
    student: str
    assignment: str
    files: list[str]
    action: str  # "new", "updated" or "unchanged"
    notes: list[str] = field(default_factory=list)


@dataclass
class CollectReport:
    """What a collect run did; :meth:`lines` renders it for people."""

    assignment: str
    target: Path
    layout: str
    placed: list[Placed] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path in the download, why)
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        out = {"new": 0, "updated": 0, "unchanged": 0}
        for p in self.placed:
            out[p.action] += 1
        return out

    def lines(self) -> list[str]:
        verb = "would place" if self.dry_run else "placed"
        rows = [f"layout: {self.layout}"]
        for p in self.placed:
            extra = f" ({'; '.join(p.notes)})" if p.notes else ""
            rows.append(f"  {p.action:9s} {p.student}: {', '.join(p.files)}{extra}")
        c = self.counts()
        rows.append(f"{verb} {len(self.placed)} student(s) in {self.target} for {self.assignment}: "
                    f"{c['new']} new, {c['updated']} updated, {c['unchanged']} unchanged")
        if self.skipped:
            rows.append(f"could not place {len(self.skipped)} file(s):")
            rows += [f"  {shown}: {why}" for shown, why in self.skipped]
        return rows


def sanitize_student_id(raw: str) -> str:
    """An id the grader accepts: accents dropped, runs of other characters replaced by ``_``.

    >>> sanitize_student_id("José Núñez_4711")
    'Jose_Nunez_4711'

    Raises ``ValueError`` when nothing usable is left.
    """
    ascii_ = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    sid = re.sub(r"[^A-Za-z0-9_.@-]+", "_", ascii_.strip())
    sid = re.sub(r"^[^A-Za-z0-9]+", "", sid).rstrip("_.-")
    if not STUDENT_ID.match(sid):
        raise ValueError(f"cannot make a student id from {raw!r}")
    return sid


def released_notebooks(assignment: str, course_config: Path | None = None) -> list[str]:
    """File names of the released notebooks of ``assignment`` (the course's release folder)."""
    from autograder.grading.options import COURSE_CONFIG, REPO_ROOT, load_course_config

    cfg = load_course_config(COURSE_CONFIG if course_config is None else course_config)
    root = Path(cfg.CourseDirectory.get("root", str(REPO_ROOT)))
    folder = root / cfg.CourseDirectory.get("release_directory", "notebooks") / assignment
    names = sorted(p.name for p in folder.glob("*.ipynb"))
    if not names:
        raise CollectError(f"unknown assignment {assignment!r}: no released notebook in {folder}")
    return names


def _norm(stem: str) -> str:
    return re.sub(r"[\s\-]+", "_", stem.lower())


def match_notebook(filename: str, notebooks: list[str]) -> tuple[str | None, str]:
    """The released notebook a submitted file name stands for, and a note when it was renamed.

    Exact names win; then names with a copy decoration (``-1``, `` (2)``, ``Copy of ``);
    then the one released notebook whose name the file name contains.
    """
    if filename in notebooks:
        return filename, ""
    stem = PurePosixPath(filename).stem
    plain = re.sub(r"^(copy of\s+)+", "", stem, flags=re.I)
    plain = re.sub(r"(\s*\(\d+\)|-\d+)+$", "", plain)
    for nb in notebooks:
        if plain == PurePosixPath(nb).stem:
            return nb, f"{filename} renamed to {nb}"
    inside = [nb for nb in notebooks if _norm(PurePosixPath(nb).stem) in _norm(stem)]
    if len(inside) == 1:
        return inside[0], f"{filename} renamed to {inside[0]}"
    return None, f"{filename} is not a notebook of the assignment ({', '.join(notebooks)})"


def extract(source: Path, into: Path) -> tuple[Path, list[tuple[str, str]]]:
    """Unpack ``source`` (an archive or a folder) below ``into``; returns the root to walk and
    the archives that could not be opened (path, reason).

    An archive given alone is unpacked into a folder named after it (so ``jsmith.zip``
    reads as the folder ``jsmith/``); a folder's own files keep their paths below the root.
    """
    from nbgrader.utils import unzip

    failures: list[tuple[str, str]] = []
    if source.is_file():
        if not source.name.endswith(ARCHIVE_SUFFIXES):
            raise CollectError(f"{source} is neither a folder nor a .zip / .tar.gz archive")
        try:
            unzip(str(source), str(into), zip_ext=list(ARCHIVE_SUFFIXES), create_own_folder=True, tree=True)
        except Exception as exc:  # a corrupt download: say so instead of a traceback
            raise CollectError(f"could not open {source}: {type(exc).__name__}: {exc}") from None
        return into, failures
    root = into / source.name
    for path in sorted(source.rglob("*")):
        if not path.is_file() or _ignored(path.relative_to(source)):
            continue
        rel = path.relative_to(source)
        dest = root / rel.parent
        dest.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(ARCHIVE_SUFFIXES):
            try:
                unzip(str(path), str(dest), zip_ext=list(ARCHIVE_SUFFIXES), create_own_folder=True, tree=True)
            except Exception as exc:
                failures.append((str(rel), f"could not open the archive ({type(exc).__name__}: {exc})"))
        else:
            shutil.copy2(path, dest / path.name)
    root.mkdir(parents=True, exist_ok=True)
    return root, failures


def _ignored(rel: Path | PurePosixPath) -> bool:
    return any(part in IGNORED_PARTS or part.startswith(".") for part in rel.parts)


def _tails(rel: PurePosixPath) -> list[str]:
    """``a/b/c.ipynb`` -> ``["c.ipynb", "b/c.ipynb", "a/b/c.ipynb"]``."""
    parts = rel.parts
    return ["/".join(parts[i:]) for i in range(len(parts) - 1, -1, -1)]


def _identify(layout: str, rel: PurePosixPath, assignment: str, custom: re.Pattern[str] | None) -> dict | None:
    """Student and file of one path under a layout, or None when the layout does not explain it."""
    if layout == "folders":
        parents = [p for p in rel.parts[:-1]]
        if parents and parents[-1] == assignment:
            parents = parents[:-1]
        if not parents:
            return None
        return {"raw": parents[-1], "file": rel.name}
    pattern = custom if layout == "pattern" else LAYOUTS[layout]
    assert pattern is not None
    for tail in _tails(rel):
        m = pattern.match(tail)
        if not m:
            continue
        g = m.groupdict()
        if layout == "pattern":
            raw = g.get("student_id")
            file_id = g.get("file_id") or rel.name
        else:
            raw = f"{g['name']}_{g['number']}"
            file_id = g["rest"]
        if not raw:
            continue
        return {"raw": raw, "file": PurePosixPath(file_id).name, "timestamp": g.get("timestamp"),
                "order": int(g["order"]) if g.get("order") else None, "late": bool(g.get("late"))}
    return None


def _choose_layout(rels: list[PurePosixPath], assignment: str, custom: re.Pattern[str] | None) -> str:
    if custom is not None:
        return "pattern"
    best, hits = "folders", 0
    for layout in LAYOUTS:
        n = sum(1 for r in rels if _identify(layout, r, assignment, None))
        if n > hits:
            best, hits = layout, n
    return best


def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise CollectError(f"--pattern is not a valid regular expression: {exc}") from None
    if "student_id" not in compiled.groupindex:
        raise CollectError("--pattern needs a (?P<student_id>...) group (optional: (?P<file_id>...), (?P<timestamp>...))")
    return compiled


def find_notebooks(root: Path, assignment: str, notebooks: list[str], pattern: re.Pattern[str] | None,
                   report: CollectReport) -> list[Found]:
    """Every notebook under ``root`` with its student; the others go to ``report.skipped``."""
    from nbgrader.utils import parse_utc

    files = sorted(p for p in root.rglob("*") if p.is_file())
    rels = {p: PurePosixPath(p.relative_to(root).as_posix()) for p in files}
    wanted = [r for p, r in rels.items() if not _ignored(r) and r.suffix == ".ipynb"]
    report.layout = _choose_layout(wanted, assignment, pattern)
    found: list[Found] = []
    for path, rel in rels.items():
        if _ignored(rel):
            continue
        shown = str(rel)
        if rel.suffix != ".ipynb":
            report.skipped.append((shown, "not a notebook (only .ipynb files are collected)"))
            continue
        info = _identify(report.layout, rel, assignment, pattern)
        if info is None:
            why = ("the file name does not match --pattern" if report.layout == "pattern"
                   else f"the name does not look like a {report.layout} submission"
                   if report.layout != "folders" else "no student folder above it")
            report.skipped.append((shown, why))
            continue
        try:
            student = sanitize_student_id(info["raw"])
        except ValueError as exc:
            report.skipped.append((shown, str(exc)))
            continue
        notebook, note = match_notebook(info["file"], notebooks)
        if notebook is None:
            report.skipped.append((shown, note))
            continue
        stamp = None
        if info.get("timestamp"):
            try:
                stamp = parse_utc(info["timestamp"])
            except (ValueError, OverflowError):
                report.skipped.append((shown, f"unreadable timestamp {info['timestamp']!r}"))
                continue
        found.append(Found(path, shown, student, info["raw"], notebook, stamp, info.get("order"),
                           info.get("late", False), note))
    return found


def _newest(files: list[Found]) -> tuple[Found | None, str]:
    """The latest of several files for one student and notebook, or None when it cannot be told."""
    if len(files) == 1:
        return files[0], ""
    if len({f.path.read_bytes() for f in files}) == 1:
        return files[0], f"{len(files)} identical copies"
    for key, what in ((lambda f: f.timestamp, "timestamp"), (lambda f: f.order, "file number")):
        if all(key(f) is not None for f in files):
            ranked = sorted(files, key=key)
            if key(ranked[-1]) != key(ranked[-2]):
                return ranked[-1], f"kept the newest of {len(files)} files by {what}: {ranked[-1].shown}"
    return None, (f"{len(files)} files and no way to tell which is newest ({', '.join(f.shown for f in files)}); "
                  "keep one, or pass --pattern with a (?P<timestamp>...) group")


def _write_if_changed(path: Path, data: bytes, dry_run: bool) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    if not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".collect-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return True


def place(found: list[Found], assignment: str, target: Path, report: CollectReport) -> None:
    """Write each student's newest files to ``target/<student>/<assignment>/``."""
    by_student: dict[str, list[Found]] = {}
    for f in found:
        by_student.setdefault(f.student, []).append(f)
    for student, files in sorted(by_student.items()):
        raws = sorted({f.raw_student for f in files})
        if len(raws) > 1:
            for f in files:
                report.skipped.append((f.shown, f"{', '.join(map(repr, raws))} all become the student id {student!r}; "
                                                "pass --pattern to tell them apart"))
            continue
        chosen: dict[str, Found] = {}
        notes: list[str] = []
        problem = ""
        for nb in sorted({f.notebook for f in files}):
            pick, note = _newest([f for f in files if f.notebook == nb])
            if pick is None:
                problem = note
                break
            chosen[nb] = pick
            notes += [n for n in (note, pick.note) if n]
        if problem:
            for f in files:
                report.skipped.append((f.shown, problem))
            continue
        if any(f.late for f in chosen.values()):
            notes.append("marked late by the LMS")
        folder = target / student / assignment
        changed = existed = False
        for nb, f in chosen.items():
            existed |= (folder / nb).exists()
            changed |= _write_if_changed(folder / nb, f.path.read_bytes(), report.dry_run)
        stamps = [f.timestamp for f in chosen.values() if f.timestamp is not None]
        stamp_file = folder / "timestamp.txt"
        if stamps:
            changed |= _write_if_changed(stamp_file, max(stamps).isoformat(" ").encode(), report.dry_run)
        elif stamp_file.exists():  # the new download carries no time: an old one would be stale
            changed = True
            if not report.dry_run:
                stamp_file.unlink()
        action = "unchanged" if not changed else "updated" if existed else "new"
        report.placed.append(Placed(student, assignment, sorted(chosen), action, notes))


def collect(assignment: str, source: Path, target: Path, pattern: str | None = None,
            notebooks: list[str] | None = None, dry_run: bool = False) -> CollectReport:
    """Collect ``source`` (archive or folder) into ``target/<student>/<assignment>/``.

    ``notebooks`` are the released notebook names (default: read from the course's
    release folder). Raises :class:`CollectError` when nothing can be collected at all.
    """
    source, target = Path(source).expanduser(), Path(target).expanduser()
    if not source.exists():
        raise CollectError(f"{source} does not exist")
    names = released_notebooks(assignment) if notebooks is None else list(notebooks)
    compiled = compile_pattern(pattern) if pattern else None
    report = CollectReport(assignment, target.resolve(), layout="", dry_run=dry_run)
    with tempfile.TemporaryDirectory(prefix="autograder-collect-") as tmp:
        root, failures = extract(source.resolve(), Path(tmp))
        report.skipped += failures
        found = find_notebooks(root, assignment, names, compiled, report)
        place(found, assignment, target, report)
    report.skipped.sort()
    return report


def register(sub: argparse._SubParsersAction) -> None:
    """The ``collect`` sub-command of ``python -m autograder``."""
    p = sub.add_parser("collect", help="turn an LMS download (zips or a folder) into TO/<student>/<assignment>/")
    p.add_argument("--assignment", required=True)
    p.add_argument("--from", dest="source", required=True, type=Path, help="a .zip / .tar.gz or a folder of them")
    p.add_argument("--to", dest="target", type=Path, default=Path("submitted"), help="default: submitted")
    p.add_argument("--pattern", help="regex with (?P<student_id>...), optional (?P<file_id>...) and (?P<timestamp>...), "
                                     "matched against the file's path inside the download, from its name upwards")
    p.add_argument("--dry-run", action="store_true", help="report what would be placed, write nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the download was read (files it could not place are listed), 2 when it could not be."""
    try:
        report = collect(args.assignment, args.source, args.target, args.pattern, dry_run=args.dry_run)
    except CollectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    return 0
