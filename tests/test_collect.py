"""``python -m autograder collect``: LMS downloads into ``submitted/<student>/<assignment>/``.

Every download is built here as real zip files with the names Canvas and Moodle give
(a late resubmission, a renamed copy, files that match nothing, nested per-student
archives); the collected folders are checked file by file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from autograder.__main__ import main
from autograder.grading.batch import STUDENT_ID
from autograder.grading.collect import CollectError, collect, match_notebook, sanitize_student_id

A = "cgan_mnist"
NB = f"{A}.ipynb"


def notebook(tag: str) -> bytes:
    """A small valid notebook whose content tells the copies apart."""
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                     "source": f"print({tag!r})"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb).encode()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def placed(report) -> dict[str, str]:
    return {p.student: p.action for p in report.placed}


def skipped(report) -> dict[str, str]:
    return dict(report.skipped)


@pytest.fixture
def canvas_zip(tmp_path: Path) -> Path:
    return make_zip(tmp_path / "download" / "submissions.zip", {
        f"smithjohn_12345_67890_{NB}": notebook("smith first"),
        f"smithjohn_LATE_12345_67999_{A}-1.ipynb": notebook("smith late resubmission"),
        f"doejane_23456_67891_{NB}": notebook("doe"),
        f"kimann_34567_67892_Copy of {NB}": notebook("kim"),
        "leeann_45678_67893_notes.txt": b"I ran out of time\n",
        "random_notebook.ipynb": notebook("nobody"),
        "brownbob_56789_67894_homework.ipynb": notebook("brown"),
    })


def test_canvas_zip_keeps_the_newest_and_says_what_it_left_out(canvas_zip: Path, tmp_path: Path):
    target = tmp_path / "submitted"
    report = collect(A, canvas_zip, target)
    assert report.layout == "canvas"
    assert placed(report) == {"smithjohn_12345": "new", "doejane_23456": "new", "kimann_34567": "new"}
    assert (target / "smithjohn_12345" / A / NB).read_bytes() == notebook("smith late resubmission")
    assert (target / "doejane_23456" / A / NB).read_bytes() == notebook("doe")
    assert (target / "kimann_34567" / A / NB).read_bytes() == notebook("kim")
    smith = next(p for p in report.placed if p.student == "smithjohn_12345")
    assert any("newest of 2" in n and "67999" in n for n in smith.notes), smith.notes
    assert any("late" in n for n in smith.notes)
    notes = {p.student: p.notes for p in report.placed}
    assert notes["doejane_23456"] == [], "the LMS prefix is not a renaming"
    assert notes["kimann_34567"] == [f"Copy of {NB} renamed to {NB}"]
    assert not (target / "smithjohn_12345" / A / "timestamp.txt").exists(), "Canvas names carry no time"
    why = skipped(report)
    assert "not a notebook" in why["submissions/leeann_45678_67893_notes.txt"]
    assert "does not look like a canvas submission" in why["submissions/random_notebook.ipynb"]
    assert "not a notebook of the assignment" in why["submissions/brownbob_56789_67894_homework.ipynb"]
    assert sorted(p.name for p in target.iterdir()) == ["doejane_23456", "kimann_34567", "smithjohn_12345"]
    assert all(STUDENT_ID.match(p.name) for p in target.iterdir())


def test_rerun_changes_nothing_and_a_new_download_updates(canvas_zip: Path, tmp_path: Path):
    target = tmp_path / "submitted"
    collect(A, canvas_zip, target)
    files = sorted(p for p in target.rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    again = collect(A, canvas_zip, target)
    assert set(placed(again).values()) == {"unchanged"}
    assert sorted(p for p in target.rglob("*") if p.is_file()) == files
    assert {p: p.stat().st_mtime_ns for p in files} == stamps, "an unchanged re-run must not rewrite files"
    newer = make_zip(tmp_path / "later.zip", {f"doejane_23456_68000_{NB}": notebook("doe, second try")})
    report = collect(A, newer, target)
    assert placed(report) == {"doejane_23456": "updated"}
    assert (target / "doejane_23456" / A / NB).read_bytes() == notebook("doe, second try")


def test_moodle_folders_and_flat_names_with_accented_names(tmp_path: Path):
    download = tmp_path / "moodle"
    make_zip(download / "CS-GAN-cgan_mnist-123.zip", {
        f"José Núñez_4711_assignsubmission_file_/{NB}": notebook("jose"),
        f"Ann Lee_4712_assignsubmission_file_{A} (1).ipynb": notebook("ann"),
        "Ann Lee_4712_assignsubmission_onlinetext_/onlinetext.html": b"<p>see the notebook</p>",
    })
    target = tmp_path / "submitted"
    report = collect(A, download, target)
    assert report.layout == "moodle"
    assert placed(report) == {"Jose_Nunez_4711": "new", "Ann_Lee_4712": "new"}
    assert (target / "Jose_Nunez_4711" / A / NB).read_bytes() == notebook("jose")
    assert (target / "Ann_Lee_4712" / A / NB).read_bytes() == notebook("ann")
    assert any("onlinetext.html" in shown and "not a notebook" in why for shown, why in report.skipped)


def test_folder_of_per_student_zips(tmp_path: Path):
    download = tmp_path / "download"
    make_zip(download / "jsmith.zip", {NB: notebook("jsmith")})
    make_zip(download / "akim.zip", {f"akim/{A}/{NB}": notebook("akim"), "__MACOSX/akim/._x.ipynb": b"junk"})
    make_zip(download / "broken.zip", {})
    (download / "broken.zip").write_bytes(b"this is not a zip archive")
    (download / NB).write_bytes(notebook("loose"))
    target = tmp_path / "submitted"
    report = collect(A, download, target)
    assert report.layout == "folders"
    assert placed(report) == {"jsmith": "new", "akim": "new"}
    assert (target / "akim" / A / NB).read_bytes() == notebook("akim")
    why = skipped(report)
    assert why[NB] == "no student folder above it"
    assert "could not open the archive" in why["broken.zip"]
    assert not any("MACOSX" in shown for shown in why)


def test_two_copies_without_a_time_are_refused_not_guessed(tmp_path: Path):
    download = tmp_path / "download"
    (download / "jsmith").mkdir(parents=True)
    (download / "jsmith" / NB).write_bytes(notebook("one"))
    (download / "jsmith" / f"{A} (1).ipynb").write_bytes(notebook("two"))
    (download / "ada").mkdir()
    (download / "ada" / NB).write_bytes(notebook("ada"))
    target = tmp_path / "submitted"
    report = collect(A, download, target)
    assert placed(report) == {"ada": "new"}
    assert not (target / "jsmith").exists()
    assert all("no way to tell which is newest" in why for shown, why in report.skipped if shown.startswith("jsmith"))


def test_pattern_with_timestamps_writes_timestamp_txt(tmp_path: Path):
    download = make_zip(tmp_path / "lms.zip", {
        f"ps_bitdiddle_attempt_20160130T150000_{NB}": notebook("early"),
        f"ps_bitdiddle_attempt_20160201T093000_{NB}": notebook("late"),
        f"ps_hacker_attempt_20160129T100000_{NB}": notebook("hacker"),
        f"ps_lazy_attempt_20161399T999999_{NB}": notebook("bad time"),
        f"ps_nobody_{NB}": notebook("no attempt"),
    })
    pattern = r".*_(?P<student_id>[a-z]+)_attempt_(?P<timestamp>\d{8}T\d{6})_(?P<file_id>\w+)\.ipynb"
    target = tmp_path / "submitted"
    report = collect(A, download, target, pattern=pattern)
    assert report.layout == "pattern"
    assert placed(report) == {"bitdiddle": "new", "hacker": "new"}
    assert (target / "bitdiddle" / A / NB).read_bytes() == notebook("late")
    assert (target / "bitdiddle" / A / "timestamp.txt").read_text() == "2016-02-01 09:30:00"
    assert (target / "hacker" / A / "timestamp.txt").read_text() == "2016-01-29 10:00:00"
    why = skipped(report)
    assert "unreadable timestamp" in why[f"lms/ps_lazy_attempt_20161399T999999_{NB}"]
    assert "does not match --pattern" in why[f"lms/ps_nobody_{NB}"]


def test_dry_run_writes_nothing(canvas_zip: Path, tmp_path: Path):
    report = collect(A, canvas_zip, tmp_path / "submitted", dry_run=True)
    assert len(report.placed) == 3 and not (tmp_path / "submitted").exists()
    assert "would place 3 student(s)" in "\n".join(report.lines())


def test_unusable_input_is_a_clear_error(tmp_path: Path):
    with pytest.raises(CollectError, match="does not exist"):
        collect(A, tmp_path / "nowhere.zip", tmp_path / "submitted")
    with pytest.raises(CollectError, match="unknown assignment 'no_such'"):
        collect("no_such", tmp_path, tmp_path / "submitted")
    with pytest.raises(CollectError, match="student_id"):
        collect(A, tmp_path, tmp_path / "submitted", pattern=r"(?P<name>\w+)")
    with pytest.raises(CollectError, match="not a valid regular expression"):
        collect(A, tmp_path, tmp_path / "submitted", pattern=r"(?P<student_id>\w+")
    bad = tmp_path / "corrupt.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(CollectError, match="could not open"):
        collect(A, bad, tmp_path / "submitted")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(CollectError, match="neither a folder nor"):
        collect(A, notes, tmp_path / "submitted")


def test_archive_members_cannot_escape(tmp_path: Path):
    evil = make_zip(tmp_path / "evil.zip", {f"../../escaped_{NB}": notebook("x")})
    with pytest.raises(CollectError, match="could not open"):
        collect(A, evil, tmp_path / "out" / "submitted")
    assert not list(tmp_path.rglob(f"escaped_{NB}"))


@pytest.mark.parametrize(("raw", "expected"), [
    ("smithjohn_12345", "smithjohn_12345"), ("José Núñez_4711", "Jose_Nunez_4711"), ("  __ann lee!! ", "ann_lee"),
    ("o'brien@uni.edu", "o_brien@uni.edu"), ("李雷_42", "42"),
])
def test_student_ids_are_what_the_grader_accepts(raw: str, expected: str):
    assert sanitize_student_id(raw) == expected
    assert STUDENT_ID.match(expected)


def test_student_id_with_nothing_usable_is_refused():
    with pytest.raises(ValueError, match="cannot make a student id"):
        sanitize_student_id("李雷")


@pytest.mark.parametrize(("name", "expected"), [
    (NB, NB), (f"{A}-2.ipynb", NB), (f"Copy of {A}.ipynb", NB), (f"{A} (3).ipynb", NB), (f"JohnSmith_{A}_final.ipynb", NB),
    ("homework.ipynb", None),
])
def test_renamed_copies_map_to_the_released_name(name: str, expected: str | None):
    assert match_notebook(name, [NB, "extra.ipynb"])[0] == expected


def test_cli_collects_and_reports(canvas_zip: Path, tmp_path: Path, capsys):
    target = tmp_path / "submitted"
    assert main(["collect", "--assignment", A, "--from", str(canvas_zip), "--to", str(target)]) == 0
    out = capsys.readouterr().out
    assert "layout: canvas" in out and "placed 3 student(s)" in out and "3 new" in out
    assert "could not place 3 file(s)" in out and "random_notebook.ipynb" in out
    assert main(["collect", "--assignment", A, "--from", str(canvas_zip), "--to", str(target)]) == 0
    assert "3 unchanged" in capsys.readouterr().out
    assert main(["collect", "--assignment", A, "--from", str(tmp_path / "missing"), "--to", str(target)]) == 2
    assert "does not exist" in capsys.readouterr().err
