"""Command line of the autograder.

    python -m autograder release [ASSIGNMENT ... | --all]
    python -m autograder grade --assignment NAME --submissions DIR --out DIR
        [--workers K] [--timeout S] [--cell-timeout S] [--memory-mb M]
        [--max-output-kb KB] [--student ID ...] [--force] [--no-isolation]
    python -m autograder validate NOTEBOOK [--assignment NAME] [limits as above]
    python -m autograder export --out DIR

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
                   help="do not run kernels in private namespaces as an unprivileged user (limits still apply)")


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
    g.add_argument("--workers", type=int, default=1)
    g.add_argument("--student", action="append", default=[], help="grade only this student (repeatable)")
    g.add_argument("--force", action="store_true", help="regrade submissions that are already graded")
    _limits(g, cell=300, nb=1200)

    e = sub.add_parser("export", help="rebuild grades.csv / tests.csv with the scores in DIR/manual_scores.csv")
    e.add_argument("--out", required=True, type=Path)

    v = sub.add_parser("validate", help="grade one notebook; non-zero exit when a test fails")
    v.add_argument("notebook", type=Path)
    v.add_argument("--assignment")
    v.add_argument("--out", type=Path, help="keep results and feedback here")
    _limits(v, cell=300, nb=1200)
    return parser


def _limit_kwargs(args: argparse.Namespace) -> dict:
    return {
        "timeout": args.timeout, "cell_timeout": args.cell_timeout, "memory_mb": args.memory_mb,
        "max_output_kb": args.max_output_kb, "isolate": False if args.no_isolation else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "release":
        from autograder.grading.release import assignments, generate

        names = assignments() if args.all else args.assignments
        if not names:
            print("name an assignment or pass --all", file=sys.stderr)
            return 2
        for name in names:
            for path in generate(name):
                print(f"wrote {path}")
        return 0
    if args.command == "grade":
        from autograder.grading.batch import GradingError, grade
        from autograder.grading.options import GradeOptions

        try:
            opts = GradeOptions(assignment=args.assignment, submissions=args.submissions, out=args.out,
                                workers=args.workers, force=args.force, students=tuple(args.student),
                                **_limit_kwargs(args))
            summary = grade(opts)
        except (GradingError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary["status_counts"].items()))
        print(f"graded {summary['graded']}, skipped {summary['skipped']} already graded, "
              f"in {summary['wall_seconds']:.1f} s with {summary['workers']} worker(s); {counts}")
        print(f"grades: {opts.out / 'grades.csv'}  feedback: {opts.out / 'feedback'}")
        return 0
    if args.command == "export":
        from autograder.grading.results import write_reports

        try:
            results = write_reports(args.out)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        waiting = sum(1 for r in results if r["needs_manual"])
        print(f"wrote {args.out / 'grades.csv'} ({len(results)} submissions, {waiting} still need a manual score)")
        return 0
    from autograder.grading.batch import GradingError
    from autograder.grading.validate import report, validate

    try:
        code, result = validate(args.notebook, args.assignment, args.out, **_limit_kwargs(args))
    except (GradingError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
