"""Command line of the autograder.

    python -m autograder release [ASSIGNMENT ... | --all]
    python -m autograder collect --assignment NAME --from ZIP_OR_DIR [--to submitted] [--pattern REGEX]
    python -m autograder gradebook [--course-root DIR | --db-url URL] [--grades OUT ...]
    python -m autograder demo [--out out/demo] [--skip-training]
    python -m autograder grade --assignment NAME --submissions DIR --out DIR
        [--workers K | --scheduler ADDRESS] [--course-root DIR] [--db-url URL] [--timeout S] [--cell-timeout S] [--memory-mb M]
        [--max-output-kb KB] [--student ID ...] [--force] [--no-isolation]
    python -m autograder validate NOTEBOOK [--assignment NAME] [limits as above]
    python -m autograder export --out DIR [--course-root DIR | --db-url URL]
    python -m autograder feedback --assignment NAME --out DIR [--student ID ...] [--course-root DIR] [--db-url URL]

``grade`` exits 0 whenever grading ran (whatever the grades), 2 when it could not
run (unknown assignment, missing folder, broken source notebook).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _limits(p: argparse.ArgumentParser, cell: int, nb: int) -> None:
    p.add_argument("--timeout", type=int, default=nb, help=f"wall-clock seconds per notebook (default {nb})")
    p.add_argument("--cell-timeout", type=int, default=cell, help=f"seconds per cell (default {cell})")
    p.add_argument("--memory-mb", type=int, default=4096, help="memory cap of the student kernel, RLIMIT_DATA (default 4096)")
    p.add_argument("--max-output-kb", type=int, default=2048, help="output kept per notebook (default 2048)")
    p.add_argument("--no-isolation", action="store_true",
                   help="run kernels with limits only, without a private view of the files (isolation mode "
                        "'none'); by default the strongest mode that works here is used: 'namespaces' as root, "
                        "'bwrap' otherwise (or the mode in $AUTOGRADER_ISOLATION)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Release, grade and validate course notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)

    rel = sub.add_parser("release", help="generate student notebooks (notebooks/<a>/) from solutions/<a>/")
    rel.add_argument("assignments", nargs="*", help="assignment names")
    rel.add_argument("--all", action="store_true", help="every assignment in the source folder")

    g = sub.add_parser("grade", help="grade DIR/<student>/<assignment>/*.ipynb")
    g.add_argument("--assignment", required=True)
    g.add_argument("--submissions", required=True, type=Path)
    g.add_argument("--out", required=True, type=Path)
    g.add_argument("--workers", type=int, default=1, help="local grading processes (default 1)")
    g.add_argument("--kernel-threads", type=int, metavar="N",
                   help="CPU threads of each student kernel, OMP_NUM_THREADS and MKL_NUM_THREADS (default: the "
                        "cores divided among the workers; on a cluster, the Dask worker's OMP_NUM_THREADS)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on a Dask cluster: tcp://HOST:PORT, a scheduler file, or local[:N] for a LocalCluster")
    g.add_argument("--course-root", type=Path, metavar="DIR",
                   help="nbgrader course folder that receives the graded submissions for formgrader "
                        "(default: CourseDirectory.root of course/nbgrader_config.py)")
    g.add_argument("--db-url", metavar="URL",
                   help="course gradebook (SQLAlchemy URL; default: CourseDirectory.db_url, or "
                        "sqlite:///DIR/gradebook.db with --course-root)")
    g.add_argument("--student", action="append", default=[], help="grade only this student (repeatable)")
    g.add_argument("--force", action="store_true", help="regrade submissions that are already graded")
    _limits(g, cell=300, nb=1200)

    e = sub.add_parser("export", help="rebuild grades.csv / tests.csv with the manual scores from formgrader "
                                      "(course gradebook) and DIR/manual_scores.csv")
    e.add_argument("--out", required=True, type=Path)
    _course_args(e)

    f = sub.add_parser("feedback", help="feedback pages from the course gradebook, with manual scores and comments")
    f.add_argument("--assignment", required=True)
    f.add_argument("--out", required=True, type=Path, help="pages go to DIR/feedback/<student>/<assignment>/")
    f.add_argument("--student", action="append", default=[], help="only this student (repeatable)")
    _course_args(f)

    v = sub.add_parser("validate", help="grade one notebook; non-zero exit when a test fails")
    v.add_argument("notebook", type=Path)
    v.add_argument("--assignment")
    v.add_argument("--out", type=Path, help="keep results and feedback here")
    _limits(v, cell=300, nb=1200)

    from autograder import demo
    from autograder.grading import collect

    collect.register(sub)
    demo.register_gradebook(sub)
    demo.register(sub)
    return parser


def _course_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--course-root", type=Path, metavar="DIR",
                   help="course folder (default: that of the last grade run into --out, else course/nbgrader_config.py)")
    p.add_argument("--db-url", metavar="URL",
                   help="course gradebook, an SQLAlchemy URL (default: sqlite:///DIR/gradebook.db with --course-root)")


def _limit_kwargs(args: argparse.Namespace) -> dict:
    return {
        "timeout": args.timeout, "cell_timeout": args.cell_timeout, "memory_mb": args.memory_mb,
        "max_output_kb": args.max_output_kb, "isolate": False if args.no_isolation else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("collect", "gradebook", "demo"):
        return args.func(args)
    if args.command == "release":
        from autograder.grading.release import (
            KIT_CONFIG,
            README,
            assignments,
            generate,
            kit_source,
            write_colab_links,
        )

        names = assignments() if args.all else args.assignments
        if not names:
            print("name an assignment or pass --all", file=sys.stderr)
            return 2
        try:
            source = kit_source()
        except ValueError as e:
            print(e, file=sys.stderr)
            return 2
        for name in names:
            for path in generate(name):
                print(f"wrote {path}")
        try:
            if write_colab_links(assignments(), source):
                print(f"wrote the Colab links of {README} (from {KIT_CONFIG})")
        except ValueError as e:  # a README without the block: the notebooks are written all the same
            print(f"the Colab links were not written: {e}", file=sys.stderr)
        return 0
    if args.command == "grade":
        from autograder.grading.batch import GradingError, grade
        from autograder.grading.options import GradeOptions

        try:
            opts = GradeOptions(assignment=args.assignment, submissions=args.submissions, out=args.out,
                                workers=args.workers, kernel_threads=args.kernel_threads, force=args.force,
                                students=tuple(args.student), scheduler=args.scheduler, course_root=args.course_root, db_url=args.db_url,
                                **_limit_kwargs(args))
            summary = grade(opts)
        except (GradingError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary["status_counts"].items()))
        where = f"on {summary['scheduler']}" if summary.get("scheduler") else f"with {summary['workers']} worker(s)"
        print(f"graded {summary['graded']}, skipped {summary['skipped']} already graded, "
              f"in {summary['wall_seconds']:.1f} s {where}; {counts}")
        print(f"kernel isolation: {summary['isolation']}" + (
            "" if summary["isolation"] != "none" else " (limits only: student code can read what this user can read)"))
        print(f"grades: {opts.out / 'grades.csv'}  feedback: {opts.out / 'feedback'}")
        print(f"course gradebook: {summary['gradebook']} (course folder {opts.course_root})")
        for problem in summary.get("gradebook_errors", []):
            print(f"warning: not in the course gradebook, the next run retries: {problem}", file=sys.stderr)
        return 0
    if args.command in ("export", "feedback"):
        return _from_gradebook(args)
    from autograder.grading.batch import GradingError
    from autograder.grading.validate import report, validate

    try:
        code, result = validate(args.notebook, args.assignment, args.out, **_limit_kwargs(args))
    except (GradingError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report(result))
    return code


def _from_gradebook(args: argparse.Namespace) -> int:
    """``export`` and ``feedback``: read what graders entered in the course gradebook."""
    from autograder.grading.gradebook import (
        GradebookError,
        course_location,
        formgrader_grades,
        regenerate_feedback,
    )
    from autograder.grading.results import write_reports

    root, db_url = course_location(args.out, args.course_root, args.db_url)
    try:
        if args.command == "export":
            results = write_reports(args.out, db_url)
            review = sum(1 for g in formgrader_grades(db_url) if g.needs_review)
        else:
            run = regenerate_feedback(db_url, root, args.assignment, args.out, args.student or None)
    except (GradebookError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "export":
        waiting = sum(1 for r in results if r["needs_manual"])
        print(f"wrote {args.out / 'grades.csv'} ({len(results)} submissions, {waiting} still need a manual score; "
              f"course gradebook {root})")
        if review:
            print(f"note: {review} manual score(s) were given to an earlier version of a regraded submission "
                  "(formgrader marks them 'needs manual grade'): check them")
        return 0
    pages = sum(len(v) for v in run.written.values())
    print(f"wrote {pages} feedback page(s) for {len(run.written)} student(s) into {args.out / 'feedback'}")
    for problem in run.problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if run.problems else 0


if __name__ == "__main__":
    sys.exit(main())
