"""Run the solution notebooks and write a browsable HTML site of them (``make book``).

    python scripts/make_book.py                      # every solution notebook, cpu mode, into out/book/
    python scripts/make_book.py --mode quick --only example --out /tmp/book

Each notebook ``solutions/<a>/<a>.ipynb`` is executed top to bottom in a fresh kernel with
``GAN_COURSE_MODE`` set (``cpu`` by default: the laptop mode, up to about 10 minutes per
notebook on two cores), its working folder being the notebook's own, and rendered to
``OUT/<a>.html`` with its outputs. ``OUT/index.html`` links every page with the mode, the run
time and whether the run finished; a notebook that fails still gets its page (the error is in
it) and the script exits 1 at the end. Hidden tests stay in the pages: this is the instructor's
and the self-study reader's book, not the students'.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@dataclass
class Page:
    name: str
    seconds: float
    ok: bool
    error: str = ""


def solution_notebooks(only: list[str] | None = None) -> list[Path]:
    """``solutions/<a>/<a>.ipynb`` for every assignment (or the ones named in ``only``, checked)."""
    found = {p.parent.name: p for p in sorted((ROOT / "solutions").glob("*/*.ipynb")) if p.stem == p.parent.name}
    if not only:
        return list(found.values())
    unknown = sorted(set(only) - set(found))
    if unknown:
        raise SystemExit(f"error: no solution notebook for {', '.join(unknown)}; known: {', '.join(found)}")
    return [found[name] for name in only]


def build_page(path: Path, out: Path, mode: str, timeout: int) -> Page:
    """Execute one notebook (errors kept in the page) and write ``out/<name>.html``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.read(path, as_version=4)
    # The kernel's environment: the mode, and figures inline as in Jupyter (the Makefile and CI
    # export MPLBACKEND=Agg, under which plt.show() draws nothing into the page).
    kernel_env = {**os.environ, "GAN_COURSE_MODE": mode, "MPLBACKEND": INLINE_BACKEND}
    start, error = time.perf_counter(), ""
    try:
        # Unix sockets in a private folder, not TCP on loopback: nothing else on the machine can
        # reach the kernel, and ipykernel has no reason to warn about unencrypted TCP (TCP stays
        # where there are no Unix sockets for ZeroMQ, on Windows).
        with tempfile.TemporaryDirectory(prefix="book-kernel-") as sockets:
            config = Config()
            if os.name == "posix":
                config.KernelManager.transport = "ipc"
                config.KernelManager.ip = os.path.join(sockets, "kernel")
            NotebookClient(nb, config=config, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute(env=kernel_env)
    except (CellExecutionError, CellTimeoutError) as err:
        error = str(err).strip().splitlines()[-1][:300] if str(err).strip() else type(err).__name__
    seconds = time.perf_counter() - start
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    (out / f"{path.stem}.html").write_text(body, encoding="utf-8")
    return Page(path.stem, seconds, not error, error)


def write_index(pages: list[Page], out: Path, mode: str) -> Path:
    rows = "\n".join(
        f'<tr><td><a href="{html.escape(p.name)}.html">{html.escape(p.name)}</a></td><td>{p.seconds:.0f} s</td>'
        f"<td>{'finished' if p.ok else 'stopped: ' + html.escape(p.error)}</td></tr>" for p in pages)
    index = out / "index.html"
    index.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Course kit: the solution notebooks</title>
<style>body {{ font-family: sans-serif; max-width: 50em; margin: 2em auto; }} td {{ padding: 0.3em 1em; }}</style>
</head><body>
<h1>The solution notebooks, run in <code>{html.escape(mode)}</code> mode</h1>
<p>Each page is one notebook of <code>solutions/</code> executed top to bottom with
<code>GAN_COURSE_MODE={html.escape(mode)}</code>, with its outputs. Rebuild with <code>make book</code>.</p>
<table><tr><th>notebook</th><th>run time</th><th>run</th></tr>
{rows}
</table></body></html>
""", encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "book")
    parser.add_argument("--mode", default="cpu", choices=("quick", "cpu", "full"))
    parser.add_argument("--only", nargs="*", help="assignment names (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)
    notebooks = solution_notebooks(args.only)
    args.out.mkdir(parents=True, exist_ok=True)
    pages = []
    for path in notebooks:
        print(f"book: running {path.relative_to(ROOT)} in {args.mode} mode ...", flush=True)
        page = build_page(path, args.out, args.mode, args.timeout)
        print(f"book: {page.name}: {'finished' if page.ok else 'stopped: ' + page.error} in {page.seconds:.0f} s", flush=True)
        pages.append(page)
    index = write_index(pages, args.out, args.mode)
    print(f"book: wrote {index}")
    return 0 if all(p.ok for p in pages) else 1


if __name__ == "__main__":
    sys.exit(main())
