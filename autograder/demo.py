"""``make demo``: the instructor's pipeline on the shipped sample class, then the demo cGAN.

    python -m autograder demo [--out out/demo] [--skip-training] [--assignments example ...]
    python -m autograder gradebook [--course-root DIR | --db-url URL] [--grades OUT ...]

Steps, one line each with its time; each is idempotent (a second run is fast and
changes nothing; ``--force`` redoes them all):

1. release: student notebooks from ``solutions/`` (what ``python -m autograder release
   --all`` does), generated in a scratch folder and copied into ``notebooks/`` only
   where they differ; skipped while the solutions, the notebooks and the course config
   are as at the last run.
2. grade: ``python -m autograder grade`` on ``course/sample_class`` for each assignment,
   two workers, into ``OUT/grading/<a>/`` and the course folder ``OUT/course`` (its
   gradebook is what ``nbgrader formgrader`` shows). Already graded submissions are skipped.
3. gradebook: the course table, students x assignments, from the course gradebook
   (nbgrader's ``Gradebook`` API) with each submission's status from ``grades.csv``.
4. feedback: where the per-student HTML pages are.
5. train: ``python -m gan_utils demo`` (the conditional GAN on offline MNIST; writes
   ``OUT/samples.png`` and ``OUT/losses.png``); skipped when those exist from the same
   settings.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grading.options import COURSE_CONFIG, REPO_ROOT, load_course_config, venv_path_env

SAMPLE_CLASS = REPO_ROOT / "course" / "sample_class"
DEMO_ASSIGNMENTS = ("example", "cgan_mnist")
# The sample class has a student whose cell never ends: a 60 s cell limit (quick-mode cells
# take a few seconds) keeps the demo short; the grader's default is 300 s.
DEMO_LIMITS = ("--cell-timeout", "60", "--timeout", "600")
TRAIN_SECONDS = 180.0


class DemoError(RuntimeError):
    """A step of the demo could not run; the message says which and why."""


# --- the course table -----------------------------------------------------------------------

@dataclass
class Entry:
    """One submission in the course table."""

    score: float
    max_score: float
    status: str = ""
    needs_manual: bool = False
    message: str = ""


@dataclass
class CourseTable:
    """Students x assignments; ``source`` says where the scores came from."""

    source: str
    entries: dict[tuple[str, str], Entry] = field(default_factory=dict)
    assignments: list[str] = field(default_factory=list)

    @property
    def students(self) -> list[str]:
        return sorted({s for s, _ in self.entries})

    def render(self) -> str:
        """A plain-text table: ``score/max status`` per cell, ``*`` where written answers wait."""
        def cell(s: str, a: str) -> str:
            e = self.entries.get((s, a))
            if e is None:
                return "-"
            return f"{e.score:g}/{e.max_score:g} {e.status or 'graded'}" + (" *" if e.needs_manual else "")

        header = ["student", *self.assignments]
        rows = [[s, *(cell(s, a) for a in self.assignments)] for s in self.students]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if any(e.needs_manual for e in self.entries.values()):
            lines.append("* written answers wait for a score by hand (nbgrader formgrader, or manual_scores.csv + export)")
        return "\n".join(lines)


def _grades_csv(path: Path) -> Path:
    path = Path(path)
    return path / "grades.csv" if path.is_dir() else path


def table_from_grades(paths: Iterable[Path]) -> CourseTable:
    """The table from grading runs' ``grades.csv`` files (or their OUT folders)."""
    table = CourseTable(source="grades.csv")
    for path in paths:
        csv_path = _grades_csv(path)
        if not csv_path.is_file():
            raise DemoError(f"no grades.csv at {csv_path}")
        with open(csv_path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                a = row["assignment"]
                if a not in table.assignments:
                    table.assignments.append(a)
                table.entries[(row["student_id"], a)] = Entry(
                    float(row["score"]), float(row["max_score"]), row["status"], row.get("needs_manual") == "yes",
                    row.get("message", ""))
    return table


def sqlite_path(db_url: str) -> Path | None:
    """The file of a ``sqlite:///...`` URL, ``None`` for other databases."""
    prefix = "sqlite:///"
    return Path(db_url[len(prefix):]) if db_url.startswith(prefix) else None


def table_from_gradebook(db_url: str) -> CourseTable:
    """The table from the course gradebook through nbgrader's ``Gradebook`` API.

    A SQLite file that does not exist is an error (nbgrader would create an empty one).
    """
    from nbgrader.api import Gradebook

    path = sqlite_path(db_url)
    if path is not None and not path.is_file():
        raise DemoError(f"no gradebook at {path}: grade with --course-root {path.parent} first")
    os.environ.update(venv_path_env())
    table = CourseTable(source=f"course gradebook {path or db_url}")
    with Gradebook(db_url) as gb:
        for assignment in sorted(gb.assignments, key=lambda a: (a.duedate is None, a.duedate, a.name)):
            table.assignments.append(assignment.name)
            for sub in assignment.submissions:
                table.entries[(sub.student.id, assignment.name)] = Entry(
                    float(sub.score or 0.0), float(sub.max_score or 0.0), needs_manual=bool(sub.needs_manual_grade))
    return table


def with_statuses(table: CourseTable, grades: Iterable[Path]) -> CourseTable:
    """``table`` with each submission's status from ``grades.csv``; rows only the CSV has are added."""
    runs = table_from_grades(grades)
    for key, entry in runs.entries.items():
        if key in table.entries:
            table.entries[key].status, table.entries[key].message = entry.status, entry.message
        else:
            table.entries[key] = entry
    for a in runs.assignments:
        if a not in table.assignments:
            table.assignments.append(a)
    return table


def course_table(db_url: str | None, grades: list[Path]) -> CourseTable:
    """The gradebook's table with statuses; the grades.csv table when the gradebook holds no submission."""
    if db_url is not None:
        path = sqlite_path(db_url)
        if path is None or path.is_file():
            table = table_from_gradebook(db_url)
            if table.entries:
                return with_statuses(table, grades) if grades else table
    if not grades:
        raise DemoError("the gradebook holds no submission and no grades.csv was given")
    table = table_from_grades(grades)
    table.source = "grades.csv (the course gradebook holds no submission)"
    return table


def default_db_url(course_root: Path | None = None, db_url: str | None = None) -> str:
    """``--db-url``, else ``sqlite:///<course root>/gradebook.db``, else the course config's ``db_url``."""
    if db_url:
        return db_url
    if course_root is not None:
        return f"sqlite:///{Path(course_root).resolve() / 'gradebook.db'}"
    cfg = load_course_config(COURSE_CONFIG)
    return cfg.CourseDirectory.get("db_url", f"sqlite:///{REPO_ROOT / 'gradebook.db'}")


# --- the pipeline ---------------------------------------------------------------------------

def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path).encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
    return h.hexdigest()


def _notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ipynb"))


class Demo:
    """The steps of ``make demo``; ``log`` receives one line per step."""

    def __init__(self, out: Path, submissions: Path = SAMPLE_CLASS, assignments: tuple[str, ...] = DEMO_ASSIGNMENTS,
                 release: tuple[str, ...] | None = None, workers: int = 2, force: bool = False,
                 train_seconds: float = TRAIN_SECONDS, log: Callable[[str], None] = print) -> None:
        self.out = Path(out).resolve()
        self.submissions = Path(submissions).resolve()
        self.assignments, self.release_names = assignments, release
        self.workers, self.force, self.train_seconds, self.log = workers, force, train_seconds, log
        self.course_root = self.out / "course"
        self.state_path = self.out / "state.json"
        self.state: dict = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}

    def _save_state(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def timed(self, label: str, step: Callable[[], str]) -> str:
        t0 = time.monotonic()
        summary = step()
        self.log(f"{label:<22s} {summary}  [{time.monotonic() - t0:.1f} s]")
        return summary

    # 1. release
    def release(self) -> str:
        import nbformat

        from autograder.grading.release import assignments, comparable, generate

        names = list(self.release_names) if self.release_names is not None else assignments()
        cfg = load_course_config(COURSE_CONFIG)
        root = Path(cfg.CourseDirectory.get("root", str(REPO_ROOT)))
        source = root / cfg.CourseDirectory.get("source_directory", "solutions")
        release = root / cfg.CourseDirectory.get("release_directory", "notebooks")
        seen = self.state.setdefault("release", {})
        current, regenerated, written = [], [], []
        for a in names:
            key = _digest([*_notebooks(source / a), *_notebooks(release / a), COURSE_CONFIG])
            if not self.force and seen.get(a) == key:
                current.append(a)
                continue
            with tempfile.TemporaryDirectory(prefix="demo-release-") as tmp:
                for fresh in generate(a, release_root=Path(tmp)):
                    committed = release / a / fresh.name
                    if not committed.is_file() or comparable(nbformat.read(committed, as_version=4)) != comparable(
                            nbformat.read(fresh, as_version=4)):
                        committed.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(fresh, committed)
                        written.append(str(committed.relative_to(root)))
            regenerated.append(a)
            seen[a] = _digest([*_notebooks(source / a), *_notebooks(release / a), COURSE_CONFIG])
        if regenerated:
            self._save_state()
        parts = []
        if regenerated:
            parts.append(f"generated {len(regenerated)} ({', '.join(regenerated)})")
        if current:
            parts.append(f"{len(current)} up to date since the last run")
        parts.append(f"updated {', '.join(written)}: commit them" if written else "notebooks/ unchanged")
        return "; ".join(parts)

    # 2. grade
    def grading_out(self, assignment: str) -> Path:
        return self.out / "grading" / assignment

    def grade(self, assignment: str) -> str:
        if not self.submissions.is_dir():
            raise DemoError(f"no sample class at {self.submissions}: run python scripts/make_sample_class.py")
        out = self.grading_out(assignment)
        cmd = [sys.executable, "-m", "autograder", "grade", "--assignment", assignment,
               "--submissions", str(self.submissions), "--out", str(out), "--workers", str(self.workers),
               "--course-root", str(self.course_root), *DEMO_LIMITS, *(["--force"] if self.force else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=venv_path_env(), cwd=REPO_ROOT)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise DemoError(f"grading {assignment} failed (exit {proc.returncode}):\n{tail}")
        run = json.loads((out / "run.json").read_text(encoding="utf-8"))
        counts: dict[str, int] = {}
        for entry in table_from_grades([out]).entries.values():
            counts[entry.status] = counts.get(entry.status, 0) + 1
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
        summary = (f"{run['students']} students: {run['graded']} graded, {run['skipped']} already graded; "
                   + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        return summary + "".join(f"\n    {w}" for w in warnings)

    # 3. gradebook
    def table(self) -> CourseTable:
        grades = [self.grading_out(a) for a in self.assignments]
        table = course_table(default_db_url(self.course_root), grades)
        table.assignments = [a for a in self.assignments if a in table.assignments] + [
            a for a in table.assignments if a not in self.assignments]
        return table

    # 4. feedback
    def feedback(self) -> str:
        pages = {a: sorted((self.grading_out(a) / "feedback").rglob("*.html")) for a in self.assignments}
        total = sum(len(p) for p in pages.values())
        example = next((p for ps in pages.values() for p in ps if "full_marks" in p.parts and
                        not p.name.endswith(".as_submitted.html")), None)
        where = ", ".join(str(self._rel(self.grading_out(a) / "feedback")) for a in self.assignments)
        text = f"{total} HTML pages in {where}"
        if example is not None:
            text += f"; open {self._rel(example)}"
        course = self.course_root / "feedback"
        if course.is_dir():
            text += f"; course copy in {self._rel(course)}"
        return text

    # 5. train
    def train(self) -> str:
        samples, losses = self.out / "samples.png", self.out / "losses.png"
        settings = {"seconds": self.train_seconds}
        done = self.state.get("train")
        if (not self.force and done and done.get("settings") == settings and samples.is_file() and losses.is_file()
                and done.get("files") == _digest([samples, losses])):
            return f"already trained: {self._rel(samples)}, {self._rel(losses)} (--force retrains)"
        cmd = [sys.executable, "-m", "gan_utils", "demo", "--out", str(self.out), "--seconds", f"{self.train_seconds:g}"]
        self.log(f"{'train':<22s} python -m gan_utils demo --out {self._rel(self.out)} (about {self.train_seconds:g} s)")
        proc = subprocess.run(cmd, env=venv_path_env(), cwd=REPO_ROOT)
        if proc.returncode != 0 or not samples.is_file():
            raise DemoError(f"training the demo cGAN failed (exit {proc.returncode})")
        self.state["train"] = {"settings": settings, "files": _digest([samples, losses])}
        self._save_state()
        return f"wrote {self._rel(samples)} and {self._rel(losses)}"

    def _rel(self, path: Path) -> Path:
        try:
            return path.relative_to(Path.cwd())
        except ValueError:
            return path

    def run(self, skip_training: bool = False) -> CourseTable:
        t0 = time.monotonic()
        self.timed("1 release", self.release)
        for a in self.assignments:
            self.timed(f"2 grade {a}", lambda a=a: self.grade(a))
        tables: list[CourseTable] = []

        def gradebook() -> str:
            tables.append(self.table())
            return f"from {tables[0].source}"

        self.timed("3 gradebook", gradebook)
        table = tables[0]
        self.log(table.render())
        for (s, a), e in sorted(table.entries.items()):
            if e.status not in ("", "ok"):
                self.log(f"    {s} / {a}: {e.status}: {e.message[:160]}")
        self.timed("4 feedback", self.feedback)
        if skip_training:
            self.log(f"{'5 train':<22s} skipped (--skip-training)")
        else:
            self.timed("5 train", self.train)
        self.log(f"demo finished in {time.monotonic() - t0:.0f} s; everything is under {self._rel(self.out)}")
        return table


# --- command line ---------------------------------------------------------------------------

def register(sub: argparse._SubParsersAction) -> None:
    """The ``demo`` sub-command of ``python -m autograder``."""
    p = sub.add_parser("demo", help="release, grade the shipped sample class, print the gradebook, train the demo cGAN")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="default out/demo")
    p.add_argument("--skip-training", action="store_true", help="leave out the demo cGAN (about 3 minutes)")
    p.add_argument("--assignments", nargs="+", default=list(DEMO_ASSIGNMENTS),
                   help=f"assignments to grade (default {' '.join(DEMO_ASSIGNMENTS)}); when given, only these are released")
    p.add_argument("--submissions", type=Path, default=SAMPLE_CLASS, help="class to grade (default course/sample_class)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--train-seconds", type=float, default=TRAIN_SECONDS, help=f"training budget (default {TRAIN_SECONDS:g})")
    p.add_argument("--force", action="store_true", help="redo every step")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    explicit = args.assignments != list(DEMO_ASSIGNMENTS)
    demo = Demo(args.out, args.submissions, tuple(args.assignments), tuple(args.assignments) if explicit else None,
                args.workers, args.force, args.train_seconds, log=lambda line: print(line, flush=True))
    try:
        demo.run(skip_training=args.skip_training)
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def register_gradebook(sub: argparse._SubParsersAction) -> None:
    """The ``gradebook`` sub-command: the course table from nbgrader's gradebook."""
    p = sub.add_parser("gradebook", help="print the course gradebook: students x assignments, score/max and status")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--course-root", type=Path, metavar="DIR", help="course folder holding gradebook.db")
    where.add_argument("--db-url", metavar="URL", help="gradebook URL (default: CourseDirectory.db_url of the course config)")
    p.add_argument("--grades", type=Path, action="append", default=[], metavar="OUT",
                   help="a grading run's OUT folder or grades.csv: adds each submission's status (repeatable)")
    p.set_defaults(func=run_gradebook)


def run_gradebook(args: argparse.Namespace) -> int:
    url = default_db_url(args.course_root, args.db_url)
    try:
        table = table_from_gradebook(url)
        if args.grades:
            table = with_statuses(table, args.grades)
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"from {table.source}")
    print(table.render() if table.entries else "no graded submission yet")
    return 0
