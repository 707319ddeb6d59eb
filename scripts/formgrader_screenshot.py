"""Open nbgrader's formgrader on a course folder in headless Chromium and save screenshots.

    python scripts/formgrader_screenshot.py out/demo/course --assignment example --out out/demo/formgrader

Starts ``jupyter lab`` on loopback with a token in COURSE (formgrader reads the
``nbgrader_config.py`` there; ``python -m autograder grade --course-root COURSE`` writes
one), opens the assignment's submission list and the first submission's manual-grading
view, and writes ``submissions.png`` and ``grading.png``. It needs Debian's ``chromium``
(``scripts/setup_system.sh``) and Playwright's Python package
(``playwright``, in requirements.lock; Playwright's own browser download is not used).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not answer at {url}") from None
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("course", type=Path, help="course folder (holds nbgrader_config.py and gradebook)")
    parser.add_argument("--assignment", required=True)
    parser.add_argument("--out", type=Path, default=Path("out/formgrader"))
    args = parser.parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("error: Playwright is not installed: pip install -r requirements.lock", file=sys.stderr)
        return 2
    course = args.course.resolve()
    if not (course / "nbgrader_config.py").exists():
        print(f"error: {course} has no nbgrader_config.py (grade with --course-root {course} first)", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"error: no {CHROMIUM}: run scripts/setup_system.sh", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    port, token = _free_port(), uuid.uuid4().hex
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    log = open(args.out / "jupyter.log", "w")
    proc = subprocess.Popen(cmd, cwd=course, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/api/status?token={token}", proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            # formgrader's pages call its API from JavaScript: send the token with every request
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          extra_http_headers={"Authorization": f"token {token}"})
            page = context.new_page()
            page.goto(f"{base}/formgrader/manage_submissions/{args.assignment}?token={token}")
            page.on("console", lambda msg: print(f"browser console: {msg.text}") if msg.type == "error" else None)
            # the list is filled by JavaScript from formgrader's API; wait until the placeholder is gone
            page.wait_for_function("() => !document.body.innerText.includes('Loading, please wait')", timeout=90_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(args.out / "submissions.png"), full_page=True)
            rows = page.locator("table tbody tr").count()
            page.goto(f"{base}/formgrader/gradebook/{args.assignment}/{args.assignment}?token={token}")
            page.wait_for_function("() => !document.body.innerText.includes('Loading, please wait')", timeout=90_000)
            page.screenshot(path=str(args.out / "notebook_submissions.png"), full_page=True)
            page.locator("table tbody tr td a").first.click()
            page.wait_for_load_state("networkidle", timeout=90_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.out / "grading.png"))
            link = page.get_by_text("the notebook with the student's own outputs")
            shown = "no as-submitted link"
            if link.count():
                href = link.first.get_attribute("href")
                href = href if href.startswith("http") else base + "/" + href.lstrip("/")
                reply = context.request.get(href)
                shown = f"as-submitted page {href}: HTTP {reply.status}"
            browser.close()
        print(shown)
        print(f"formgrader listed {rows} submission row(s); wrote {args.out / 'submissions.png'} and "
              f"{args.out / 'grading.png'}")
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
