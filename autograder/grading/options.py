"""Options of a grading run, course paths, and the nbgrader configuration built from them."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

REPO_ROOT = Path(__file__).resolve().parents[2]
COURSE_CONFIG = REPO_ROOT / "course" / "nbgrader_config.py"

# Statuses, most important first: a submission gets the first one that applies.
STATUS_PRIORITY: tuple[str, ...] = (
    "error", "missing_notebook", "corrupt_notebook", "tampered", "memory", "kernel_died", "timeout",
    "output_truncated",
)
STATUSES: tuple[str, ...] = ("ok", *STATUS_PRIORITY)


@dataclass
class GradeOptions:
    """Everything a grading run needs; picklable so worker processes get a copy.

    Times in seconds, sizes in MiB/KiB as named. ``isolate`` is the kernels' isolation
    mode (:mod:`autograder.grading.sandbox`): ``None`` uses ``$AUTOGRADER_ISOLATION`` or
    else the strongest mode that works here; ``False`` / ``"none"`` means limits only;
    ``"namespaces"`` or ``"bwrap"`` must work here or grading stops with the reason.
    """

    assignment: str
    submissions: Path
    out: Path
    workers: int = 1
    kernel_threads: int | None = None  # None: the cores divided among the workers (see worker.kernel_threads)
    cell_timeout: int = 300
    timeout: int = 1200
    memory_mb: int = 4096
    max_output_kb: int = 2048
    fsize_mb: int = 1024
    force: bool = False
    students: tuple[str, ...] = ()
    source_root: Path | None = None
    course_config: Path | None = COURSE_CONFIG
    kernel_env: dict[str, str] = field(default_factory=lambda: {"GAN_COURSE_MODE": "quick"})
    isolate: bool | str | None = None
    preload: tuple[str, ...] | None = None
    course_root: Path | None = None
    db_url: str | None = None
    scheduler: str | None = None

    def __post_init__(self) -> None:
        self.submissions = Path(self.submissions).resolve()
        self.out = Path(self.out).resolve()
        if self.source_root is None:
            self.source_root = course_source_root(self.course_config)
        self.source_root = Path(self.source_root).resolve()
        if self.preload is None:
            self.preload = default_preload(self.assignment)
        if self.course_root is None:
            self.course_root, default_db = course_gradebook(self.course_config)
            self.db_url = self.db_url or default_db
        self.course_root = Path(self.course_root).resolve()
        if self.db_url is None:
            self.db_url = f"sqlite:///{self.course_root / 'gradebook.db'}"
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.kernel_threads is not None and self.kernel_threads < 1:
            raise ValueError(f"kernel_threads must be at least 1, got {self.kernel_threads}")
        for name in ("cell_timeout", "timeout", "memory_mb", "max_output_kb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def assignment_source(self) -> Path:
        return self.source_root / self.assignment

    def summary(self) -> dict[str, Any]:
        """The options as JSON values (a password in ``db_url`` is masked)."""
        d = asdict(self)
        if d.get("db_url"):
            d["db_url"] = masked_url(d["db_url"])
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def default_preload(assignment: str) -> tuple[str, ...]:
    """Modules a grading kernel imports before any student cell: the checks, the reference
    losses, and the assignment's own check modules (``autograder/assignments/<assignment>*.py``).

    Imported first, their functions are the originals the integrity checks compare with.
    """
    own = sorted(p.stem for p in (REPO_ROOT / "autograder" / "assignments").glob(f"{assignment}*.py"))
    return ("autograder.checks", "gan_utils.losses", *(f"autograder.assignments.{m}" for m in own))


def venv_path_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default ``os.environ``) with this interpreter's ``bin/`` first on PATH.

    nbgrader runs the ``alembic`` executable when it creates a gradebook; it must be
    found on PATH.
    """
    env = dict(os.environ if env is None else env)
    bindir = os.path.dirname(sys.executable)
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bindir]
    env["PATH"] = os.pathsep.join([bindir, *parts])
    return env


def load_course_config(path: Path | None = COURSE_CONFIG) -> Config:
    """The instructor's nbgrader config (an empty one when ``path`` is missing)."""
    if path is None or not Path(path).exists():
        return Config()
    loader = PyFileConfigLoader(Path(path).name, path=str(Path(path).parent))
    return loader.load_config()


def course_source_root(path: Path | None = COURSE_CONFIG) -> Path:
    """Absolute folder holding ``<assignment>/<assignment>.ipynb`` instructor notebooks."""
    cfg = load_course_config(path)
    root = Path(cfg.CourseDirectory.get("root", str(REPO_ROOT)))
    return (root / cfg.CourseDirectory.get("source_directory", "solutions")).resolve()


def masked_url(db_url: str) -> str:
    """``db_url`` with any password shown as ``***`` (for logs, ``run.json`` and results)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:  # not a URL: nothing to hide that SQLAlchemy could find either
        return db_url


def course_gradebook(path: Path | None = COURSE_CONFIG) -> tuple[Path, str]:
    """The instructor's course folder and gradebook URL (``CourseDirectory.root`` / ``.db_url``)."""
    cfg = load_course_config(path)
    root = Path(cfg.CourseDirectory.get("root", str(REPO_ROOT))).resolve()
    return root, cfg.CourseDirectory.get("db_url", f"sqlite:///{root / 'gradebook.db'}")


def worker_config(course_root: Path, opts: GradeOptions) -> Config:
    """nbgrader config for one worker's private course folder and gradebook."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        GetGrades,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from autograder.grading.executor import GuardedExecute
    from autograder.grading.feedback import RedactHiddenTests

    cfg = load_course_config(opts.course_config)
    cd = cfg.CourseDirectory
    cd.root = str(course_root)
    cd.source_directory = "source"
    cd.release_directory = "release"
    cd.submitted_directory = "submitted"
    cd.autograded_directory = "autograded"
    cd.feedback_directory = "feedback"
    cd.db_url = f"sqlite:///{course_root / 'gradebook.db'}"
    cfg.Autograde.autograde_preprocessors = [
        GuardedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
        AssignLatePenalties, CheckCellMetadata,
    ]
    cfg.OverwriteCells.add_missing_cells = True
    cfg.GuardedExecute.timeout = opts.cell_timeout
    cfg.GuardedExecute.startup_timeout = 120
    cfg.GenerateFeedback.preprocessors = [GetGrades, RedactHiddenTests, CSSHTMLHeaderPreprocessor]
    return cfg
