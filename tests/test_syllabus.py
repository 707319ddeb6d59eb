"""The syllabus agrees with the notebooks: every assignment under ``solutions/`` has a row marked
built, and its "automatic + written" points are those of the nbgrader metadata."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SYLLABUS = ROOT / "course" / "syllabus.md"
ASSIGNMENTS = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
ROW = re.compile(r"^\| *\d+ *\| *`(?P<name>\w+)` *\| *(?P<status>\w+) *\|.*\| *(?P<auto>\d+) \+ (?P<written>\d+) = \*\*(?P<total>\d+)\*\* *\|")


def points(name: str) -> tuple[int, int]:
    """(automatic, written) points of the solution notebook's graded cells."""
    nb = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    auto = written = 0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade") and not meta.get("task"):
            continue
        value = meta.get("points", 0)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            auto += value
        else:
            written += value
    return int(auto), int(written)


def rows() -> dict[str, re.Match]:
    return {m["name"]: m for m in map(ROW.match, SYLLABUS.read_text().splitlines()) if m}


def test_the_syllabus_lists_every_assignment_as_built() -> None:
    table = rows()
    missing = [a for a in ASSIGNMENTS if a not in table]
    assert not missing, f"course/syllabus.md has no row with points for {missing}"
    assert all(table[a]["status"] == "built" for a in ASSIGNMENTS), {a: table[a]["status"] for a in ASSIGNMENTS}


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_syllabus_points_are_the_notebooks(name: str) -> None:
    row = rows().get(name)
    assert row is not None, f"course/syllabus.md has no row with points for {name}"
    auto, written = points(name)
    assert (int(row["auto"]), int(row["written"]), int(row["total"])) == (auto, written, auto + written), (
        f"syllabus says {row['auto']} + {row['written']} = {row['total']} for {name}; "
        f"the notebook's nbgrader metadata has {auto} automatic + {written} written")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_handout_points_are_the_notebooks(name: str) -> None:
    text = " ".join((ROOT / "course" / "handouts" / f"{name}.md").read_text().split())
    found = re.search(r"\*\*(\d+) automatic \+ (\d+) written = (\d+)\*\*", text)
    assert found, f"course/handouts/{name}.md does not state its points as **A automatic + W written = T**"
    auto, written = points(name)
    assert tuple(map(int, found.groups())) == (auto, written, auto + written), (
        f"the handout says {found[0]}; the notebook's nbgrader metadata has {auto} automatic + {written} written")
