"""The first cell of every student notebook: it fetches the kit where it is missing (Colab),
pinned to the release named in ``course/colab.cfg``, and does nothing where the kit is importable.
The README's Colab links come from the same file.

The end-to-end test clones this repository through a ``file://`` URL, the way Colab would clone
it from its Git host, into a fresh virtual environment that sees PyTorch and the other packages
(this environment's, so pip finds the configured ones already there and needs no index) but not
the kit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from autograder import __version__
from autograder.grading.release import (
    INSTALL_CELL_ID,
    LINKS_BEGIN,
    LINKS_END,
    README,
    KitSource,
    assignments,
    colab_links,
    install_cell,
    kit_source,
    write_colab_links,
)

REPO = Path(__file__).resolve().parents[1]


def offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", GIT_TERMINAL_PROMPT="0", **extra)
    return env


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=offline_env(GIT_AUTHOR_NAME="kit", GIT_AUTHOR_EMAIL="kit@example.org",
                                          GIT_COMMITTER_NAME="kit", GIT_COMMITTER_EMAIL="kit@example.org")).stdout.strip()


def test_every_student_notebook_starts_with_the_install_cell() -> None:
    expected = install_cell(kit_source())
    assert expected.source.startswith("#@title ") and expected.metadata == {"cellView": "form"}  # folded on Colab
    for name in assignments():
        for path in sorted((REPO / "notebooks" / name).glob("*.ipynb")):
            first = nbformat.read(path, as_version=4).cells[0]
            assert (first.get("id"), first.cell_type) == (INSTALL_CELL_ID, "code"), f"{path}: the first cell is not the install cell"
            assert (first.source, first.metadata) == (expected.source, expected.metadata), \
                f"{path}: the install cell differs from course/colab.cfg; run `make release`"


def test_install_cell_does_nothing_where_the_kit_is_installed(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"the install cell ran {args} where the kit is installed")

    monkeypatch.setattr(subprocess, "run", refuse)
    namespace: dict = {}
    exec(install_cell(KitSource("https://github.com/acme/kit", "v1.0.0", ("mlxtend",))).source, namespace)
    assert set(namespace) == {"__builtins__"}, "the install cell left names in the student's namespace"


def test_install_cell_without_a_repository_says_what_to_do(tmp_path) -> None:
    # -S: no site-packages, so the kit (installed there) is not importable
    cell = install_cell(KitSource("", "v1.0.0")).source
    run = subprocess.run([sys.executable, "-S", "-c", cell], cwd=tmp_path, capture_output=True, text=True,
                         env=offline_env(), timeout=60)
    assert run.returncode == 1
    assert "RuntimeError: The course kit (gan_utils) is not installed here" in run.stderr
    assert "names no repository" in run.stderr
    assert list(tmp_path.iterdir()) == []


PROBE = "import importlib.util as u; print(*(s and s.origin for s in map(u.find_spec, ('torch', 'gan_utils'))))"


@dataclass
class ColabLike:
    origin: Path  # a clone of this repository, tagged v9.9.9, with one commit after the tag
    released: str  # the tagged commit
    venv: Path
    python: str


@pytest.fixture(scope="module")
def colab(tmp_path_factory) -> ColabLike:
    root = tmp_path_factory.mktemp("colab")
    origin = root / "origin"
    git("clone", "--quiet", "--no-local", str(REPO), str(origin), cwd=root)
    git("tag", "v9.9.9", cwd=origin)
    released = git("rev-parse", "HEAD", cwd=origin)
    (origin / "AFTER_THE_RELEASE").write_text("a later commit\n")
    git("add", "AFTER_THE_RELEASE", cwd=origin)
    git("commit", "--quiet", "-m", "after the release", cwd=origin)
    # Colab-like: a fresh environment that sees PyTorch and the other packages (this environment's
    # site-packages as a plain path entry, so the .pth file of the kit's editable install does not
    # run) but not the kit
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=offline_env(), timeout=300)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "colab_like.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    before = subprocess.run([python, "-c", PROBE], cwd=root, capture_output=True, text=True, env=offline_env(), check=True)
    assert before.stdout.split()[1] == "None", "the fresh environment already has the kit"
    assert before.stdout.split()[0] != "None", "the fresh environment has no PyTorch"
    return ColabLike(origin, released, venv, python)


def colab_cell(colab: ColabLike) -> str:
    """The install cell for the tagged clone, with the shipped packages (already there, so pip
    needs no index)."""
    return install_cell(KitSource(f"file://{colab.origin}", "v9.9.9", kit_source().packages)).source


@pytest.mark.slow
def test_install_cell_fetches_the_pinned_release_into_an_environment_without_the_kit(colab, tmp_path) -> None:
    cell = colab_cell(colab)
    kit = tmp_path / "gan-course-kit"
    use = ("import torch, gan_utils, autograder.checks as checks; print(gan_utils.__file__, checks.__file__); "
           "checks.check_close(torch.ones(2), torch.ones(2), what='x')")
    child = "import subprocess, sys; print(subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True).stdout)"
    program = f"PROBE = {PROBE!r}\n{cell}\n{use}\n{child}"
    run = subprocess.run([colab.python, "-c", program], cwd=tmp_path, capture_output=True, text=True,
                         env=offline_env(), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    origin_of = str(kit / "gan_utils" / "__init__.py")
    assert run.stdout.split()[:2] == [origin_of, str(kit / "autograder" / "checks" / "__init__.py")], run.stdout
    assert run.stdout.split()[-1] == origin_of, "a command the kernel starts does not find the kit"
    assert git("rev-parse", "HEAD", cwd=kit) == colab.released, "the cell did not clone the pinned tag"
    assert not (kit / "AFTER_THE_RELEASE").exists()

    # a restarted kernel reuses the clone (git is not run again)
    again = subprocess.run([colab.python, "-c", f"{cell}\n{PROBE}"], cwd=tmp_path, capture_output=True, text=True,
                           env=offline_env(PATH=str(colab.venv / "bin")), timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.split()[1] == origin_of


@pytest.mark.slow
def test_a_student_notebook_runs_top_to_bottom_where_the_kit_is_not_installed(colab, tmp_path, monkeypatch) -> None:
    """The ``example`` student notebook, answered, in a kernel of the Colab-like environment: its
    first cell fetches the kit and every later cell runs on it."""
    from nbclient import NotebookClient
    from test_assignments import fill_answers

    spec = tmp_path / "jupyter" / "kernels" / "colab-like"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [colab.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                                  "display_name": "Colab-like", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = fill_answers("example")
    nb.cells[0].source = colab_cell(colab)
    nb.cells.append(nbformat.v4.new_code_cell("import gan_utils, autograder.checks; print(gan_utils.__file__)"))
    work = tmp_path / "work"
    work.mkdir()
    NotebookClient(nb, kernel_name="colab-like", timeout=300, resources={"metadata": {"path": str(work)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell did not run"
    errors = [o for c in code for o in c.outputs if o.output_type == "error" or o.get("name") == "stderr"]
    assert not errors, errors[:2]
    text = "".join(o.get("text", "") for c in code for o in c.outputs)
    assert "visible checks passed" in text
    assert code[-1].outputs[0].text.strip() == str(work / "gan-course-kit" / "gan_utils" / "__init__.py")


def test_kit_source_reads_the_config(tmp_path) -> None:
    cfg = tmp_path / "colab.cfg"
    cfg.write_text("[kit]\n# a comment\nrepository = https://github.com/acme/gan-kit.git\nref = spring-2027\npackages = mlxtend lpips==0.1.4\n")
    assert kit_source(cfg) == KitSource("https://github.com/acme/gan-kit.git", "spring-2027", ("mlxtend", "lpips==0.1.4"))
    assert kit_source(cfg).github == "acme/gan-kit"
    cfg.write_text("[kit]\nrepository =\nref =\n")
    assert kit_source(cfg) == KitSource("", f"v{__version__}", ())
    assert kit_source(tmp_path / "missing.cfg") == KitSource("", f"v{__version__}", ())
    cfg.write_text("[kit]\nrepository = https://github.com/acme/kit --upload-pack=evil\n")
    with pytest.raises(ValueError, match="one Git URL"):
        kit_source(cfg)


def test_colab_links_open_the_committed_notebooks_of_the_release(tmp_path) -> None:
    names = assignments()
    block = colab_links(names, KitSource("https://github.com/acme/gan-kit", "v1.2.0"))
    for name in names:
        url = f"https://colab.research.google.com/github/acme/gan-kit/blob/v1.2.0/notebooks/{name}/{name}.ipynb"
        assert f"]({url})" in block
        assert (REPO / "notebooks" / name / f"{name}.ipynb").exists()
    assert block.count("colab.research.google.com/github/") == len(names)
    for other in (KitSource("", "v1.2.0"), KitSource("https://gitlab.com/acme/gan-kit.git", "v1.2.0")):
        assert "colab.research.google.com/github/" not in colab_links(names, other)
        assert "There are no Colab links yet" in colab_links(names, other)

    readme = tmp_path / "README.md"
    readme.write_text(f"# kit\n\nbefore\n\n{LINKS_BEGIN}\nold\n{LINKS_END}\n\nafter\n")
    assert write_colab_links(names, KitSource("https://github.com/acme/gan-kit", "v1.2.0"), readme)
    text = readme.read_text()
    assert text.startswith("# kit\n\nbefore\n\n") and text.endswith("\n\nafter\n") and "old" not in text
    assert not write_colab_links(names, KitSource("https://github.com/acme/gan-kit", "v1.2.0"), readme)
    readme.write_text("# kit without the block\n")
    with pytest.raises(ValueError, match="no block of Colab links"):
        write_colab_links(names, KitSource(), readme)


def test_readme_links_agree_with_the_config() -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index(LINKS_BEGIN):text.index(LINKS_END) + len(LINKS_END)]
    assert block == colab_links(assignments(), kit_source()), "README's Colab links differ from course/colab.cfg; run `make release`"
