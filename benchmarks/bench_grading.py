"""Grading throughput: submissions per minute with the local pool and on a Dask cluster.

On one sample class (``--class-size`` submissions of ``example`` built from the
committed student notebook: correct answers written two ways, wrong ones, a blank
release, a cell that raises) the batch grader runs in three set-ups, side by side in
this process, each from a cold start (new worker processes, every submission graded
with ``force``):

- ``pool1``: the local pool with 1 worker (the reference);
- ``pool2``: the local pool with 2 workers;
- ``dask2``: a 2-worker ``LocalCluster`` (one thread per worker, as ``--scheduler
  local:2`` starts), started before the timed run and reached by its address.

Repeats interleave the set-ups (pool1, pool2, dask2, pool1, ...). The report gives
submissions per minute (wall clock of ``grade()``, including worker start-up and
nbgrader's per-process preparation), its ratio to ``pool1``, and the grades, which
must be the same in every set-up. Then, unless ``--no-course``, one student's whole
course: every assignment under ``solutions/`` with the solution notebook as the
submission, graded in quick mode with 1 worker, with its time and score.

    python benchmarks/bench_grading.py                      # 6 submissions, 1 repeat, + the course
    python benchmarks/bench_grading.py --repeats 3 --part class --json grading.json

Every run uses the grader's default limits (300 s per cell, 1200 s per notebook) and
quick mode, as ``python -m autograder grade`` does. The last line printed is one JSON
object with everything, including the load average before and after (the numbers are
only comparable on an otherwise idle machine).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from autograder.grading.batch import grade
from autograder.grading.options import REPO_ROOT, GradeOptions

STUB = "# YOUR CODE HERE\n    raise NotImplementedError()"
LOSS = "def generator_loss(fake_logits):\n    return {}\n"
# student -> answer cell source (None: the release as handed out)
SAMPLE = {
    "correct": LOSS.format("F.softplus(-fake_logits).mean()"),
    "correct_bce": LOSS.format("F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))"),
    "wrong_sign": LOSS.format("F.softplus(fake_logits).mean()"),
    "blank": None,
    "cell_raises": LOSS.format("F.softplus(-fake_logits).mean()") + "raise RuntimeError('left in by mistake')\n",
    "sum_for_mean": LOSS.format("F.softplus(-fake_logits).sum()"),
}
def write_sample_class(root: Path, size: int) -> list[str]:
    """``size`` submissions of ``example`` under ``root/<student>/example/`` (the sample cycled)."""
    base = nbformat.read(REPO_ROOT / "notebooks" / "example" / "example.ipynb", as_version=4)
    names = list(SAMPLE)
    students = []
    for i in range(size):
        kind = names[i % len(names)]
        student = kind if i < len(names) else f"{kind}{i // len(names)}"
        nb = copy.deepcopy(base)
        if SAMPLE[kind] is not None:
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "generator_loss_answer")
            if STUB not in cell.source:
                raise SystemExit("notebooks/example/example.ipynb changed: its answer stub is gone")
            cell.source = SAMPLE[kind]
        folder = root / student / "example"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "example.ipynb")
        students.append(student)
    return students


def _grades(out: Path) -> dict[str, list[Any]]:
    with open(out / "grades.csv", newline="") as f:
        return {r["student_id"]: [r["assignment"], float(r["score"]), float(r["max_score"]), r["status"]]
                for r in csv.DictReader(f)}


def _messages(out: Path) -> dict[str, str]:
    with open(out / "grades.csv", newline="") as f:
        return {r["student_id"]: r["message"] for r in csv.DictReader(f)}


def _grade_once(assignment: str, subs: Path, work: Path, tag: str, **kw: Any) -> dict[str, Any]:
    out = work / tag
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / f"{tag}-course", ignore_errors=True)
    opts = GradeOptions(assignment=assignment, submissions=subs, out=out, course_root=work / f"{tag}-course",
                        force=True, **kw)
    t0 = time.perf_counter()
    summary = grade(opts, log=lambda line: None)
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 2), "graded": summary["graded"], "grades": _grades(out),
            "per_minute": round(60 * summary["graded"] / wall, 2) if wall > 0 else None,
            "status_counts": summary["status_counts"], "mode": opts.kernel_env.get("GAN_COURSE_MODE")}


def throughput(work: Path, size: int, repeats: int) -> dict[str, Any]:
    from distributed import LocalCluster

    subs = work / "class"
    students = write_sample_class(subs, size)
    runs: dict[str, list[dict[str, Any]]] = {"pool1": [], "pool2": [], "dask2": []}
    for r in range(repeats):
        for tag in runs:
            if tag == "dask2":
                t0 = time.perf_counter()
                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster:
                    start = time.perf_counter() - t0
                    res = _grade_once("example", subs, work, f"{tag}-{r}", scheduler=cluster.scheduler_address)
                res["cluster_start_s"] = round(start, 2)
            else:
                res = _grade_once("example", subs, work, f"{tag}-{r}", workers=int(tag[-1]))
            runs[tag].append(res)
            print(f"repeat {r} {tag}: {res['graded']} graded in {res['wall_s']:.1f} s = "
                  f"{res['per_minute']:.1f} per minute", flush=True)
    reference = runs["pool1"][0]["grades"]
    same = all(res["grades"] == reference for rs in runs.values() for res in rs)
    out: dict[str, Any] = {"students": students, "repeats": repeats, "same_grades_everywhere": same}
    for tag, rs in runs.items():
        per_min = [res["per_minute"] for res in rs]
        ratios = [res["per_minute"] / ref["per_minute"] for res, ref in zip(rs, runs["pool1"], strict=True)]
        out[tag] = {"per_minute_median": statistics.median(per_min), "per_minute": per_min,
                    "wall_s": [res["wall_s"] for res in rs], "ratio_to_pool1_median": round(statistics.median(ratios), 3)}
        if tag == "dask2":
            out[tag]["cluster_start_s"] = [res["cluster_start_s"] for res in rs]
    out["grades"] = reference
    return out


def whole_course(work: Path, student: str = "solution_student") -> dict[str, Any]:
    """Every assignment under solutions/, the solution notebook handed in as the submission."""
    assignments = sorted(p.parent.name for p in (REPO_ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
    subs = work / "course-submissions"
    per: dict[str, Any] = {}
    t0 = time.perf_counter()
    for a in assignments:
        folder = subs / student / a
        folder.mkdir(parents=True)
        shutil.copy2(REPO_ROOT / "solutions" / a / f"{a}.ipynb", folder / f"{a}.ipynb")
        res = _grade_once(a, subs, work, f"course-{a}", workers=1)
        _, score, max_score, status = res["grades"][student]
        per[a] = {"wall_s": res["wall_s"], "score": score, "max_score": max_score, "status": status,
                  "mode": res["mode"], "message": _messages(work / f"course-{a}")[student][:300]}
        print(f"course {a}: {score:g}/{max_score:g} {status} in {res['wall_s']:.1f} s", flush=True)
    return {"assignments": per, "total_s": round(time.perf_counter() - t0, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--class-size", type=int, default=6, help="submissions of `example` in the sample class")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--part", choices=("all", "class", "course"), default="all",
                   help="class: the throughput runs only; course: one student's whole course only")
    p.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temp folder)")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    if args.class_size < 1 or args.repeats < 1:
        p.error("--class-size and --repeats must be at least 1")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-grading-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    try:
        result: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before]}
        if args.part in ("all", "class"):
            result["throughput"] = throughput(work, args.class_size, args.repeats)
        if args.part in ("all", "course"):
            result["course"] = whole_course(work)
        result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    t = result.get("throughput")
    if t:
        print(f"per minute: pool1 {t['pool1']['per_minute_median']:.1f}, pool2 {t['pool2']['per_minute_median']:.1f} "
              f"(x{t['pool2']['ratio_to_pool1_median']:.2f}), dask2 {t['dask2']['per_minute_median']:.1f} "
              f"(x{t['dask2']['ratio_to_pool1_median']:.2f}); same grades: {t['same_grades_everywhere']}")
    if "course" in result:
        print(f"whole course of one student: {result['course']['total_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result))
    return 0 if not t or t["same_grades_everywhere"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
