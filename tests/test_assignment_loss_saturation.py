"""The ``loss_saturation`` assignment end to end (budget: under 3 minutes on two idle cores).

- The grading helpers accept independent correct implementations (``gan_utils.losses``,
  ``logsigmoid`` and ``binary_cross_entropy_with_logits`` forms, a derivative taken with
  autograd, a training iteration written another way) and name the usual slips.
- The student notebook is exactly what ``python -m autograder release`` generates from
  the solution notebook.
- The batch grader, run once on a small corpus (the solution, the blank notebook and
  three students whose answer cells carry known slips), gives the solution every
  automatic point with a clean run that shows the saturation (no error, nothing on
  stderr, the figures drawn, the minimax gradient norm collapsing while the others do
  not), the blank notebook none without failing, and takes from each slip exactly the
  tests that should catch it.

Run: ``pytest tests/test_assignment_loss_saturation.py -q -s`` (``-s`` prints the timings).
"""

from __future__ import annotations

import copy
import csv
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
NAME = "loss_saturation"
SOLUTION = ROOT / "solutions" / NAME / f"{NAME}.ipynb"
STUDENT = ROOT / "notebooks" / NAME / f"{NAME}.ipynb"
AUTO_POINTS = 22
NOTEBOOK_BUDGET_S = 120  # ~25-30 s per notebook on two idle cores; generous for a busy CI machine

# Slips in the solution's answer cells: (answer cell grade_id, text, replacement).
SLIPS: dict[str, list[tuple[str, str, str]]] = {
    "slip_saturating": [  # the saturating loss where the non-saturating one was asked
        ("sat_nonsaturating", "return F.softplus(-fake_logits).mean()", "return -F.softplus(fake_logits).mean()"),
    ],
    "slip_detach_wrt_p": [  # D steps do not detach the fakes; the minimax derivative taken w.r.t. p
        ("sat_train_iteration", "        with torch.no_grad():\n            fake = G(z)\n", "        fake = G(z)\n"),
        ("sat_derivative", "return -torch.sigmoid(logits)", "return -1.0 / (1.0 - torch.sigmoid(logits))"),
    ],
    "slip_lsgan": [  # least squares on sigmoid(l) for G; a factor 1/2 in the D loss
        ("sat_lsgan_g", "return ((fake_logits - 1.0) ** 2).mean()", "return ((torch.sigmoid(fake_logits) - 1.0) ** 2).mean()"),
        ("sat_lsgan_d", "return ((real_logits - 1.0) ** 2).mean() + (fake_logits ** 2).mean()",
         "return 0.5 * (((real_logits - 1.0) ** 2).mean() + (fake_logits ** 2).mean())"),
    ],
}
# Automatic tests each slip must fail (all others must keep full points).
EXPECTED_FAILURES: dict[str, set[str]] = {
    # the stable test compares exact values too; test_train_iteration runs with the reference losses
    "slip_saturating": {"test_nonsaturating_generator_loss", "test_losses_stable"},
    "slip_detach_wrt_p": {"test_train_iteration", "test_dloss_dlogit"},
    "slip_lsgan": {"test_lsgan_generator_loss", "test_lsgan_discriminator_loss"},
}
MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)


def _env() -> dict[str, str]:
    env = dict(os.environ, GAN_COURSE_MODE="quick", MPLBACKEND="Agg")
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def fill_answers(student: nbformat.NotebookNode, replacements: list[tuple[str, str, str]] = ()) -> nbformat.NotebookNode:
    """The student notebook with every code answer taken from the solution (markers removed),
    after applying ``replacements``; written answers stay empty."""
    solution = {_grade_id(c): c.source for c in nbformat.read(SOLUTION, as_version=4).cells if _grade_id(c)}
    nb = copy.deepcopy(student)
    todo = list(replacements)
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        source = MARKERS.sub("", solution[_grade_id(cell)])
        for item in [r for r in todo if r[0] == _grade_id(cell)]:
            assert source.count(item[1]) == 1, f"slip text not found once in cell {item[0]!r}: {item[1]!r}"
            source = source.replace(item[1], item[2])
            todo.remove(item)
        cell.source = source
    assert not todo, f"slips for unknown cells: {todo}"
    return nb


# --- the grading helpers on independent implementations ---------------------------------------


@pytest.fixture(autouse=True)
def _one_thread():
    """The checks run tiny models: one thread is fastest, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _autograd_derivative(kind: str, logits: torch.Tensor) -> torch.Tensor:
    from gan_utils.losses import (
        lsgan_generator_loss,
        minimax_generator_loss,
        nonsaturating_generator_loss,
    )

    fn = {"minimax": minimax_generator_loss, "nonsaturating": nonsaturating_generator_loss, "lsgan": lsgan_generator_loss}[kind]
    leaf = logits.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(leaf, reduction="sum"), leaf)
    return grad


def _other_iteration(kind, G, D, opt_g, opt_d, real_batches, latents):
    """Fakes detached, D frozen in the G step, clip_grad_norm_ for the norm, tensors returned."""
    from gan_utils.losses import discriminator_loss, generator_loss

    for real, z in zip(real_batches, latents[:-1], strict=True):
        fake = G(z).detach()
        opt_d.zero_grad(set_to_none=True)
        loss_d = discriminator_loss(kind, D(real), D(fake))
        loss_d.backward()
        opt_d.step()
    for p in D.parameters():
        p.requires_grad_(False)
    logits = D(G(latents[-1]))
    loss_g = generator_loss(kind, logits)
    G.zero_grad()
    loss_g.backward()
    for p in D.parameters():
        p.requires_grad_(True)
    norm = torch.nn.utils.clip_grad_norm_(G.parameters(), float("inf"))
    opt_g.step()
    score = logits if kind == "lsgan" else torch.sigmoid(logits)
    return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "d_fake": score.mean().item(), "grad_norm": norm}


def test_helpers_accept_independent_implementations() -> None:
    from autograder.assignments import loss_saturation as grading
    from gan_utils import losses

    grading.check_minimax_generator_loss(losses.minimax_generator_loss)
    grading.check_minimax_generator_loss(lambda x: F.logsigmoid(-x).mean())
    grading.check_minimax_generator_loss(lambda x: -F.binary_cross_entropy_with_logits(x, torch.zeros_like(x)))
    grading.check_nonsaturating_generator_loss(losses.nonsaturating_generator_loss)
    grading.check_nonsaturating_generator_loss(lambda x: F.binary_cross_entropy_with_logits(x, torch.ones_like(x)))
    grading.check_lsgan_generator_loss(losses.lsgan_generator_loss)
    grading.check_lsgan_generator_loss(lambda x: F.mse_loss(x, torch.ones_like(x)))
    grading.check_bce_discriminator_loss(losses.bce_discriminator_loss)
    grading.check_lsgan_discriminator_loss(losses.lsgan_discriminator_loss)
    grading.check_lsgan_discriminator_loss(lambda r, f: F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f)))
    grading.check_stable(lambda x: F.logsigmoid(-x).mean(), lambda x: -F.logsigmoid(x).mean(),
                         lambda r, f: -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean())
    grading.check_dloss_dlogit(_autograd_derivative)
    grading.check_dloss_dlogit(lambda k, x: {"minimax": -torch.sigmoid(x), "nonsaturating": torch.sigmoid(x) - 1,
                                             "lsgan": 2 * x - 2}[k])
    grading.check_train_iteration(_other_iteration)


def test_helpers_name_the_slips() -> None:
    from autograder.assignments import loss_saturation as grading
    from gan_utils import losses

    def no_detach(kind, G, D, opt_g, opt_d, real_batches, latents):
        for real, z in zip(real_batches, latents[:-1], strict=True):
            loss_d = losses.discriminator_loss(kind, D(real), D(G(z)))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        logits = D(G(latents[-1]))
        loss_g = losses.generator_loss(kind, logits)
        opt_g.zero_grad()
        loss_g.backward()
        norm = torch.nn.utils.clip_grad_norm_(G.parameters(), float("inf"))
        opt_g.step()
        score = logits if kind == "lsgan" else torch.sigmoid(logits)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_fake": score.mean().item(), "grad_norm": norm.item()}

    def kind_ignored(kind, *args):
        return _other_iteration("minimax" if kind == "nonsaturating" else kind, *args)

    def norm_after_step(kind, G, D, opt_g, opt_d, real_batches, latents):
        logs = _other_iteration(kind, G, D, opt_g, opt_d, real_batches, latents)
        logs["grad_norm"] = sum(float(p.detach().norm() ** 2) for p in G.parameters()) ** 0.5  # parameter norm
        return logs

    with pytest.raises(AssertionError, match="non-saturating loss"):
        grading.check_minimax_generator_loss(losses.nonsaturating_generator_loss)
    with pytest.raises(AssertionError, match="saturating \\(minimax\\)"):
        grading.check_nonsaturating_generator_loss(losses.minimax_generator_loss)
    with pytest.raises(AssertionError, match="sigmoid"):
        grading.check_lsgan_generator_loss(lambda x: ((torch.sigmoid(x) - 1) ** 2).mean())
    with pytest.raises(AssertionError, match="factor 1/2"):
        grading.check_lsgan_discriminator_loss(lambda r, f: 0.5 * losses.lsgan_discriminator_loss(r, f))
    with pytest.raises(AssertionError, match="swap roles"):
        grading.check_bce_discriminator_loss(lambda r, f: losses.bce_discriminator_loss(f, r))
    with pytest.raises(AssertionError, match="numerically stable|softplus"):
        grading.check_stable(lambda x: torch.log(1 - torch.sigmoid(x)).mean(), losses.nonsaturating_generator_loss,
                             losses.bce_discriminator_loss)
    with pytest.raises(AssertionError, match="batch mean"):
        grading.check_dloss_dlogit(lambda k, x: _autograd_derivative(k, x) / x.numel())
    with pytest.raises(AssertionError, match="with respect to p"):
        grading.check_dloss_dlogit(lambda k, x: -1 / (1 - torch.sigmoid(x)) if k == "minimax" else _autograd_derivative(k, x))
    with pytest.raises(AssertionError, match="derivative of the nonsaturating loss"):
        grading.check_dloss_dlogit(lambda k, x: _autograd_derivative("nonsaturating" if k == "minimax" else k, x))
    with pytest.raises(AssertionError, match="reached G 4 times"):
        grading.check_train_iteration(no_detach)
    with pytest.raises(AssertionError, match="is `kind` used"):
        grading.check_train_iteration(kind_ignored)
    with pytest.raises(AssertionError, match="grad_norm"):
        grading.check_train_iteration(norm_after_step)


# --- the notebooks ----------------------------------------------------------------------------


@pytest.mark.slow
def test_student_notebook_is_generated_from_solution(tmp_path: Path) -> None:
    from autograder.grading.release import comparable, generate

    start = time.perf_counter()
    (fresh,) = generate(NAME, release_root=tmp_path)
    print(f"\n[{NAME}] release: {time.perf_counter() - start:.1f} s")
    committed = nbformat.read(STUDENT, as_version=4)
    assert comparable(committed) == comparable(nbformat.read(fresh, as_version=4)), (
        f"{STUDENT} differs from what `python -m autograder release {NAME}` generates; re-run it"
    )
    text = STUDENT.read_text(encoding="utf-8")
    for leaked in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "Model answer", "grading.check_", "softplus(fake_logits)"):
        assert leaked not in text, f"the student notebook contains {leaked!r}"


# --- the batch grader on a small corpus -------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp(NAME)
    student = nbformat.read(STUDENT, as_version=4)
    corpus = {"solution": nbformat.read(SOLUTION, as_version=4), "blank": student}
    corpus.update({name: fill_answers(student, slips) for name, slips in SLIPS.items()})
    for name, nb in corpus.items():
        folder = base / "submitted" / name / NAME
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{NAME}.ipynb")
    out = base / "out"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "--assignment", NAME, "--submissions", str(base / "submitted"),
         "--out", str(out), "--workers", "2"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900,
    )
    seconds = time.perf_counter() - start
    print(f"\n[{NAME}] grading {len(corpus)} submissions with 2 workers: {seconds:.1f} s")
    assert proc.returncode == 0, f"the grader could not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        grades = {row["student_id"]: row for row in csv.DictReader(f)}
    with open(out / "tests.csv", newline="", encoding="utf-8") as f:
        tests: dict[str, dict[str, dict]] = {}
        for row in csv.DictReader(f):
            tests.setdefault(row["student_id"], {})[row["cell"]] = row
    assert set(grades) == set(corpus), f"graded {sorted(grades)}, submitted {sorted(corpus)}"
    for name, row in grades.items():
        print(f"  {name}: {row['auto_score']}/{row['auto_max_score']} automatic, status {row['status']}, {row['seconds']} s")
    return {name: {"grade": grades[name], "tests": tests.get(name, {}), "out": out} for name in corpus}


def _auto_tests(result: dict) -> dict[str, dict]:
    return {cell: row for cell, row in result["tests"].items() if row["kind"] == "auto"}


@pytest.mark.slow
def test_solution_gets_every_automatic_point(graded) -> None:
    result = graded["solution"]
    grade = result["grade"]
    assert grade["status"] == "ok", grade["message"]
    lost = {c: r["message"] for c, r in _auto_tests(result).items() if float(r["score"]) < float(r["max_score"])}
    assert not lost, f"the solution lost points: {lost}"
    assert float(grade["auto_max_score"]) == AUTO_POINTS
    assert math.isclose(float(grade["auto_score"]), AUTO_POINTS), grade
    assert float(grade["seconds"]) < NOTEBOOK_BUDGET_S, f"grading the solution took {grade['seconds']} s"


@pytest.mark.slow
def test_solution_runs_clean_and_shows_the_saturation(graded) -> None:
    path = graded["solution"]["out"] / "autograded" / "solution" / NAME / f"{NAME}.ipynb"
    nb = nbformat.read(path, as_version=4)
    problems, printed = [], ""
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i} ({_grade_id(cell)}): {out.ename}: {out.evalue[:200]}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"cell {i} ({_grade_id(cell)}) wrote to stderr: {out.text[:200]}")
            elif out.output_type == "stream":
                printed += out.text
    assert not problems, "\n".join(problems)
    images = sum(1 for c in nb.cells for o in c.get("outputs", [])
                 if {"image/png", "image/jpeg"} & set(o.get("data", {})))
    assert images >= 3, f"expected the derivative plot, the training curves and the sample grids, got {images} figures"
    # The summary line per loss: "<kind>: grad norm A -> B, D(G(z)) C -> D"
    norms = {m.group(1): (float(m.group(2)), float(m.group(3)))
             for m in re.finditer(r"(\w+): grad norm ([\d.e+-]+) -> ([\d.e+-]+)", printed)}
    assert set(norms) == {"minimax", "nonsaturating", "lsgan"}, printed[-500:]
    start, end = norms["minimax"]
    assert end < start / 20, f"the minimax gradient norm should collapse when D wins: {start} -> {end}"
    assert norms["nonsaturating"][1] > 100 * end and norms["lsgan"][1] > 100 * end, norms


@pytest.mark.slow
def test_blank_notebook_gets_zero_without_failing(graded) -> None:
    grade = graded["blank"]["grade"]
    assert grade["status"] == "ok", f"grading the blank notebook failed: {grade['message']}"
    assert float(grade["auto_score"]) == 0, {c: r["score"] for c, r in _auto_tests(graded["blank"]).items()}


@pytest.mark.slow
@pytest.mark.parametrize("slip", sorted(SLIPS))
def test_slips_lose_exactly_the_tests_that_catch_them(graded, slip: str) -> None:
    result = graded[slip]
    assert result["grade"]["status"] == "ok", result["grade"]["message"]
    auto = _auto_tests(result)
    failed = {c for c, r in auto.items() if float(r["score"]) < float(r["max_score"])}
    assert failed == EXPECTED_FAILURES[slip], (
        f"{slip}: unexpected failures {sorted(failed - EXPECTED_FAILURES[slip])}, "
        f"unexpected passes {sorted(EXPECTED_FAILURES[slip] - failed)}; messages: "
        + "; ".join(f"{c}: {auto[c]['message']}" for c in sorted(failed))
    )
    lost = sum(float(auto[c]["max_score"]) for c in failed)
    assert math.isclose(float(result["grade"]["auto_score"]), AUTO_POINTS - lost)
