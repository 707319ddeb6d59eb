"""Student notebooks from instructor notebooks: ``python -m autograder release``.

Runs nbgrader's ``generate_assignment`` through its API (solutions and hidden
tests removed, cells locked, checksums computed) against a throw-away gradebook,
then strips outputs and volatile metadata so the committed notebooks only change
when their source does, and puts first the cell that installs the kit where it is
missing (Colab), pinned to the repository and release named in ``course/colab.cfg``.
The same file gives the README's Colab links (:func:`write_colab_links`).
"""

from __future__ import annotations

import configparser
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder.grading.gradebook import create_schema
from autograder.grading.options import COURSE_CONFIG, REPO_ROOT, load_course_config, venv_path_env

KEEP_CELL_METADATA = ("cellView", "deletable", "editable", "nbgrader", "tags")
KIT_CONFIG = REPO_ROOT / "course" / "colab.cfg"
INSTALL_CELL_ID = "install-kit"
README = REPO_ROOT / "README.md"
LINKS_BEGIN = "<!-- colab-links: written by `python -m autograder release` from course/colab.cfg -->"
LINKS_END = "<!-- /colab-links -->"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


@dataclass(frozen=True)
class KitSource:
    """Where a notebook without the kit installs it from (``course/colab.cfg``)."""

    repository: str = ""
    ref: str = ""
    packages: tuple[str, ...] = ()

    @property
    def github(self) -> str | None:
        """``OWNER/REPO`` when the repository is on github.com (Colab opens notebooks from there)."""
        m = re.fullmatch(r"(?:https://|git@)github\.com[/:]([\w.-]+)/([\w.-]+?)(?:\.git)?/?", self.repository)
        return f"{m.group(1)}/{m.group(2)}" if m else None


def kit_source(path: Path | None = KIT_CONFIG) -> KitSource:
    """Read ``course/colab.cfg`` (a missing file means no repository); the ref defaults to
    ``v<version>``."""
    from autograder import __version__

    cfg = configparser.ConfigParser()
    if path is not None and Path(path).exists():
        cfg.read(path, encoding="utf-8")
    kit = cfg["kit"] if cfg.has_section("kit") else {}
    repository = kit.get("repository", "").strip()
    ref = kit.get("ref", "").strip() or f"v{__version__}"
    if any(v.startswith("-") or any(c.isspace() for c in v) for v in (repository, ref)):
        raise ValueError(f"{path}: [kit] repository must be one Git URL and ref one tag or branch; got {repository!r}, {ref!r}")
    return KitSource(repository, ref, tuple(kit.get("packages", "").split()))


INSTALL_SOURCE = '''\
#@title The course kit: fetched where it is missing (Colab); where it is installed, nothing happens
# gan_utils and autograder.checks. Where they are not importable, this cell clones the release this
# notebook came from; where they are, it returns at once.
def _install_kit(repository={repository!r}, ref={ref!r}, packages={packages!r}):
    import importlib, importlib.util, os, subprocess, sys
    folder = os.path.abspath("gan-course-kit")
    if importlib.util.find_spec("gan_utils") is not None:
        return
    if not repository:
        raise RuntimeError("The course kit (gan_utils) is not installed here, and this notebook names no "
                           "repository to fetch it from: install it as the kit's README says, or ask your instructor.")
    if not os.path.isdir(folder):  # a restarted kernel reuses the clone
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "-c", "advice.detachedHead=false",
                        "--branch", ref, repository, folder], check=True)
    if packages:  # --no-deps keeps the machine's own PyTorch
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *packages], check=True)
    sys.path.insert(0, folder)  # this kernel, and (below) the commands it starts
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (folder, os.environ.get("PYTHONPATH")) if p)
    importlib.invalidate_caches()


_install_kit()
del _install_kit'''


def install_cell(source: KitSource) -> nbformat.NotebookNode:
    """The first cell of every student notebook: fetches ``source`` where the kit is missing."""
    code = INSTALL_SOURCE.format(repository=source.repository, ref=source.ref, packages=source.packages)
    # Colab shows such a cell folded to its title line (a "form"); JupyterLab shows the code
    cell = nbformat.v4.new_code_cell(code, metadata={"cellView": "form"})
    cell.id = INSTALL_CELL_ID
    return cell


def colab_links(names: list[str], source: KitSource, release_dir: str = "notebooks") -> str:
    """The README's block of Colab links, one per student notebook, between the markers."""
    lines = [LINKS_BEGIN]
    if source.github is None:
        why = ("no repository is set" if not source.repository
               else f"the repository ({source.repository}) is not on github.com, where Colab opens notebooks from")
        lines += [f"There are no Colab links yet: in `course/colab.cfg` {why}. Set `repository` to the GitHub "
                  "address of your copy of the kit (and `ref` to the tag of the release), run "
                  "`python -m autograder release --all`, and commit `notebooks/` and this file."]
    else:
        lines += [f"Each link opens the student notebook of release `{source.ref}` of {source.repository}:", "",
                  "| notebook | |", "|---|---|"]
        for name in names:
            url = f"https://colab.research.google.com/github/{source.github}/blob/{source.ref}/{release_dir}/{name}/{name}.ipynb"
            lines.append(f"| `{name}` | [![Open in Colab]({COLAB_BADGE})]({url}) |")
    lines.append(LINKS_END)
    return "\n".join(lines)


def write_colab_links(names: list[str], source: KitSource, readme: Path = README) -> bool:
    """Rewrite the README's block of Colab links; returns whether the file changed."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(LINKS_BEGIN), text.find(LINKS_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no block of Colab links ({LINKS_BEGIN!r} ... {LINKS_END!r})")
    new = text[:start] + colab_links(names, source) + text[end + len(LINKS_END):]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


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


def generate(assignment: str, release_root: Path | None = None, course_config: Path | None = COURSE_CONFIG,
             kit_config: Path | None = KIT_CONFIG) -> list[Path]:
    """Generate ``<release>/<assignment>/`` from the source; returns the notebook paths.

    ``release_root`` overrides the configured release folder (tests generate into a
    temporary folder and compare with the committed notebooks). Each notebook starts
    with the install cell of ``kit_config``.
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
    cell = install_cell(kit_source(kit_config))
    for path in paths:
        path.chmod(0o644)
        nb = normalize(nbformat.read(path, as_version=4))
        nb.cells = [cell, *(c for c in nb.cells if c.get("id") != INSTALL_CELL_ID)]
        nbformat.write(nb, path)
    return paths


def comparable(nb: nbformat.NotebookNode) -> list[tuple]:
    """What must agree between a committed and a freshly generated notebook."""
    nb = normalize(nbformat.from_dict(nb))
    return [(c.get("id"), c.cell_type, c.source, dict(c.metadata)) for c in nb.cells] + [("metadata", dict(nb.metadata))]
