"""``make book``: solution notebooks executed and rendered to a linked HTML site."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_book  # noqa: E402

pytestmark = pytest.mark.slow


def test_the_book_runs_a_solution_notebook_and_links_its_page(tmp_path: Path) -> None:
    out = tmp_path / "book"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_book.py"), "--mode", "quick", "--only", "example",
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WARNING" not in run.stderr, run.stderr  # the kernel talks over Unix sockets: no warning about plain TCP
    index = (out / "index.html").read_text()
    assert 'href="example.html"' in index and "finished" in index and "quick" in index
    page = (out / "example.html").read_text()
    nb = nbformat.read(ROOT / "solutions" / "example" / "example.ipynb", as_version=4)
    code_cells = sum(1 for c in nb.cells if c.cell_type == "code")
    assert re.search(rf"In(\s|&nbsp;|\xa0)\[{code_cells}\]:", page)  # every code cell ran, in order, in one kernel
    assert "generator_loss: visible checks passed" in page  # with its outputs (the example draws no figure; see below)


def test_a_failing_notebook_still_gets_its_page_and_the_reason(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('before')"),
                                         nbformat.v4.new_code_cell("raise RuntimeError('broken on purpose')")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "book"
    out.mkdir()
    page = make_book.build_page(path, out, "quick", timeout=120)
    assert not page.ok and "broken on purpose" in page.error
    text = (out / "broken.html").read_text()
    assert "before" in text and "broken on purpose" in text
    make_book.write_index([page], out, "quick")
    assert "stopped: " in (out / "index.html").read_text()


def test_figures_shown_with_plt_show_reach_the_page_under_a_non_interactive_backend(tmp_path: Path, monkeypatch) -> None:
    # make test and CI export MPLBACKEND=Agg; the book's kernel must still draw figures inline
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()\nprint(plt.get_fignums())")])
    path = tmp_path / "figure.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "book"
    out.mkdir()
    page = make_book.build_page(path, out, "quick", timeout=120)
    assert page.ok, page.error
    text = (out / "figure.html").read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png', text)) == 1, "the figure of plt.show() is not in the page"
    assert "[]" in text  # and the inline backend closed it once shown
    assert os.environ["MPLBACKEND"] == "Agg"  # the caller's environment is left as it was


def test_unknown_assignments_are_named():
    with pytest.raises(SystemExit, match="no solution notebook for nope"):
        make_book.solution_notebooks(["nope"])
