"""Feedback without hidden tests.

nbgrader's feedback HTML is rendered from the autograded notebook, whose test
cells hold the hidden tests, and tracebacks quote the lines they failed on. The
:class:`RedactHiddenTests` preprocessor (registered in ``GenerateFeedback``) fixes
that before rendering:

- every locked cell shows the released source (hidden tests removed);
- tracebacks in test cells keep the error message and the frames of student
  code, and drop frames of the test cell itself and of the autograder package;
- any output that quotes a hidden-test line (e.g. a cell printing IPython's
  ``In`` history) is replaced by a note;
- a first cell lists the grading notes (status, timeouts, restored cells ...).

It reads the released notebooks and notes from :data:`CONTEXT` (set by the worker),
and :func:`leaked_lines` double-checks the final HTML.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.grading.submission import NotebookInfo

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CELL_FRAME = re.compile(r"^\s*(?:Cell In\s*\[(\d+)\]|Input In \[(\d+)\]|<ipython-input-(\d+))")
FILE_FRAME = re.compile(r"^\s*File\s+(\S+?):\d+")
AUTOGRADER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REMOVED = "[output removed by the autograder: it quoted hidden test code]\n"


@dataclass
class FeedbackContext:
    notebooks: dict[str, NotebookInfo]
    notes: list[str] = field(default_factory=list)
    status: str = "ok"
    leaks: int = 0
    as_submitted: dict[str, str] = field(default_factory=dict)  # notebook name -> file beside the feedback page


CONTEXT: FeedbackContext | None = None


def _plain(text: str) -> str:
    return ANSI.sub("", text)


def filter_traceback(traceback: list[str], hidden_counts: set[int]) -> list[str]:
    """Drop frames of test cells (``hidden_counts``) and of the autograder package."""
    kept = []
    for entry in traceback:
        first = _plain(entry).lstrip("\n").split("\n", 1)[0]
        if "skipping hidden" in first:
            continue
        cell = CELL_FRAME.match(first)
        if cell:
            count = int(next(g for g in cell.groups() if g))
            if count in hidden_counts:
                continue
        path = FILE_FRAME.match(first)
        if path and os.path.abspath(path.group(1)).startswith(AUTOGRADER_DIR):
            continue
        kept.append(entry)
    return kept


def _texts(output: NotebookNode) -> list[str]:
    if output.output_type == "stream":
        return [output.get("text", "")]
    if output.output_type == "error":
        return [output.get("evalue", ""), *map(_plain, output.get("traceback", []))]
    data = output.get("data", {})
    return [v if isinstance(v, str) else "\n".join(v) for k, v in data.items() if k.startswith("text/")]


def _quotes(texts: list[str], lines: list[str]) -> bool:
    return any(line in text for text in texts for line in lines)


class RedactHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests, and the traces of them, from the notebook before feedback is rendered."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        ctx = CONTEXT if CONTEXT is not None else FeedbackContext({})
        name = resources.get("nbgrader", {}).get("notebook")
        info = ctx.notebooks.get(name) or notebook_info_from_gradebook(resources)
        if info is None:
            raise RuntimeError(f"no release information for notebook {name!r}: cannot render feedback safely")
        hidden = [line for c in info.cells.values() for line in c.hidden_lines]
        test_counts = {
            c.execution_count for c in nb.cells
            if c.cell_type == "code" and nbutils.is_locked(c) and c.get("execution_count")
        }
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            ref = info.cells.get(gid) if gid else None
            if ref is not None and ref.locked:
                cell.source = ref.public_source
            if cell.cell_type != "code":
                continue
            outputs = []
            for out in cell.outputs:
                if out.output_type == "error" and ref is not None and ref.locked:
                    out.traceback = filter_traceback(out.traceback, test_counts)
                if hidden and _quotes(_texts(out), hidden):
                    ctx.leaks += 1
                    out = nbformat.v4.new_output("stream", name="stdout", text=REMOVED)
                outputs.append(out)
            cell.outputs = outputs
        link = ctx.as_submitted.get(name) or next(
            (_as_submitted_file(c) for c in nb.cells if _as_submitted_file(c)), None)
        nb.cells = [c for c in nb.cells if not _as_submitted_file(c)]
        if link:
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(
                f"**Your notebook as you submitted it**, with the outputs of your own run: [{link}]({link})"))
        if ctx.notes or ctx.status != "ok":
            lines = [f"**Autograder status: `{ctx.status}`**", ""] + [f"- {html.escape(n)}" for n in ctx.notes]
            nb.cells.insert(0, nbformat.v4.new_markdown_cell("\n".join(lines)))
        return nb, resources


def _as_submitted_file(cell: NotebookNode) -> str | None:
    """The file name a grader's link cell points at (see ``Worker._export_autograded``), or None."""
    if not cell.metadata.get("autograder", {}).get("as_submitted_link"):
        return None
    found = re.search(r"\(([^()]*)\)", cell.source)
    return found.group(1).rsplit("/", 1)[-1] if found else None


def notebook_info_from_gradebook(resources: ResourcesDict) -> NotebookInfo | None:
    """Public sources and hidden lines from the gradebook (for plain ``nbgrader generate_feedback``)."""
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.grading.submission import CellInfo, hidden_test_lines

    meta = resources.get("nbgrader", {})
    try:
        with Gradebook(meta["db_url"]) as gb:
            source_cells = gb.find_notebook(meta["notebook"], meta["assignment"]).source_cells
            cells = {}
            for c in source_cells:
                public = "\n".join(_without_hidden(c.source))
                cells[c.name] = CellInfo(c.name, c.cell_type, False, False, bool(c.locked), 0.0, None, set(),
                                         public, hidden_test_lines(c.source), {})
    except (KeyError, MissingEntry):
        return None
    return NotebookInfo(meta["notebook"], cells)


def _without_hidden(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif not inside:
            lines.append(line)
    return lines


def leaked_lines(html_text: str, hidden: list[str]) -> list[str]:
    """Hidden-test lines that still appear in rendered HTML (tags and entities removed)."""
    plain = html.unescape(re.sub(r"<[^>]+>", "", html_text))
    plain = re.sub(r"[ \t]+", " ", plain)
    return [line for line in hidden if re.sub(r"[ \t]+", " ", line) in plain]
