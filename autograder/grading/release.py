"""Student notebooks from instructor notebooks: ``python -m autograder release``.

Runs nbgrader's ``generate_assignment`` through its API (solutions and hidden
tests removed, cells locked, checksums computed) against a throw-away gradebook,
then strips outputs and volatile metadata so the committed notebooks only change
when their source does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder.grading.gradebook import create_schema
from autograder.grading.options import COURSE_CONFIG, REPO_ROOT, load_course_config, venv_path_env

KEEP_CELL_METADATA = ("deletable", "editable", "nbgrader", "tags")


def assignments(course_config: Path | None = COURSE_CONFIG) -> list[str]:
    """Names of the assignments in the source folder (folders holding a notebook)."""
    cfg = load_course_config(course_config)
    root = Path(cfg.CourseDirectory.get("root", str(REPO_ROOT)))
    source = root / cfg.CourseDirectory.get("source_directory", "solutions")
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def normalize(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """No outputs, no execution counts, only stable metadata."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = nbformat.from_dict({k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA})
    meta = {}
    if "kernelspec" in nb.metadata:
        meta["kernelspec"] = nb.metadata["kernelspec"]
    meta["language_info"] = {"name": nb.metadata.get("language_info", {}).get("name", "python")}
    nb.metadata = nbformat.from_dict(meta)
    return nb


def generate(assignment: str, release_root: Path | None = None, course_config: Path | None = COURSE_CONFIG) -> list[Path]:
    """Generate ``<release>/<assignment>/`` from the source; returns the notebook paths.

    ``release_root`` overrides the configured release folder (tests generate into a
    temporary folder and compare with the committed notebooks).
    """
    import os

    os.environ.update(venv_path_env())
    cfg = load_course_config(course_config)
    root = Path(cfg.CourseDirectory.get("root", str(REPO_ROOT)))
    with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
        cfg.CourseDirectory.db_url = f"sqlite:///{Path(tmp) / 'gradebook.db'}"
        create_schema(cfg.CourseDirectory.db_url)  # nbgrader would create it through an alembic subprocess
        if release_root is not None:
            cfg.CourseDirectory.release_directory = str(Path(release_root).resolve())
        api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
        res = api.generate_assignment(assignment, force=True, create=True)
        if not res["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed for {assignment!r}:\n{res.get('error') or res.get('log')}")
    release_dir = Path(release_root).resolve() if release_root is not None else root / cfg.CourseDirectory.get("release_directory", "notebooks")
    paths = sorted((release_dir / assignment).glob("*.ipynb"))
    for path in paths:
        path.chmod(0o644)
        nb = normalize(nbformat.read(path, as_version=4))
        nbformat.write(nb, path)
    return paths


def comparable(nb: nbformat.NotebookNode) -> list[tuple]:
    """What must agree between a committed and a freshly generated notebook."""
    nb = normalize(nbformat.from_dict(nb))
    return [(c.get("id"), c.cell_type, c.source, dict(c.metadata)) for c in nb.cells] + [("metadata", dict(nb.metadata))]
