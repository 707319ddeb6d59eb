"""The ``cgan_mnist`` assignment end to end (budget: under 3 minutes on two idle cores).

- The grading helpers accept independent correct implementations (``gan_utils``'
  conditional GAN with class-conditional batch norm and a projection discriminator,
  softplus losses, steps written another way) and name the usual slips.
- The student notebook is exactly what ``python -m autograder release`` generates
  from the solution notebook.
- The batch grader, run once on a small corpus (the solution, the blank notebook and
  three students whose answer cells carry known slips), gives the solution every
  automatic point with a clean run (no error, nothing on stderr, the figures drawn),
  the blank notebook none without failing, and takes from each slip exactly the tests
  that should catch it.

Run: ``pytest tests/test_assignment_cgan_mnist.py -q -s`` (``-s`` prints the timings).
"""

from __future__ import annotations

import copy
import csv
import functools
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
NAME = "cgan_mnist"
SOLUTION = ROOT / "solutions" / NAME / f"{NAME}.ipynb"
STUDENT = ROOT / "notebooks" / NAME / f"{NAME}.ipynb"
AUTO_POINTS = 30
NOTEBOOK_BUDGET_S = 120  # ~20-25 s per notebook on two idle cores; generous for a busy CI machine

# Slips in the solution's answer cells: (answer cell grade_id, text, replacement).
SLIPS: dict[str, list[tuple[str, str, str]]] = {
    "slip_label_detach": [  # G ignores the label; the D step does not detach the fakes
        ("cgan_generator", "h = torch.cat([z, self.label_embedding(labels)], dim=1)",
         "h = torch.cat([z, 0 * self.label_embedding(labels)], dim=1)"),
        ("cgan_d_step", "    with torch.no_grad():\n        fake = G(z, labels)", "    fake = G(z, labels)"),
    ],
    "slip_saturating_sigmoid": [  # the minimax loss log(1 - D) for G; D ends in a sigmoid
        ("cgan_generator_loss", "return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))",
         "return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))"),
        ("cgan_discriminator", "return self.net(h).squeeze(1)", "return torch.sigmoid(self.net(h)).squeeze(1)"),
    ],
    "slip_sum": [  # the discriminator loss sums over the batch
        ("cgan_discriminator_loss", "real_term = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))",
         "real_term = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits), reduction='sum')"),
        ("cgan_discriminator_loss", "fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))",
         "fake_term = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction='sum')"),
    ],
}
# Automatic tests each slip must fail (all others must keep full points).
EXPECTED_FAILURES: dict[str, set[str]] = {
    # the zeroed embedding also gets no gradient, which the shape test's gradient check names
    "slip_label_detach": {"test_generator_shapes", "test_generator_uses_label", "test_d_step"},
    # the stable test compares exact values too; the step tests run with the reference losses
    "slip_saturating_sigmoid": {"test_generator_loss", "test_losses_stable", "test_discriminator_label_and_logits"},
    "slip_sum": {"test_discriminator_loss", "test_losses_stable"},
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


def _other_d_step(G, D, opt_d, real, labels, z):
    """Fakes detached instead of no_grad, one forward on real + fake, a tensor returned."""
    fake = G(z, labels).detach()
    logits = D(torch.cat([real, fake]), torch.cat([labels, labels]))
    real_logits, fake_logits = logits[: len(real)], logits[len(real):]
    loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    D.zero_grad(set_to_none=True)
    loss.backward()
    opt_d.step()
    return loss.detach()


def _other_g_step(G, D, opt_g, labels, z):
    """D frozen during the G step, softplus form."""
    for p in D.parameters():
        p.requires_grad_(False)
    loss = F.softplus(-D(G(z, labels), labels)).mean()
    opt_g.zero_grad()
    loss.backward()
    for p in D.parameters():
        p.requires_grad_(True)
    opt_g.step()
    return float(loss.detach())


def test_helpers_accept_independent_implementations() -> None:
    from autograder.assignments import cgan_mnist as grading
    from gan_utils.losses import bce_discriminator_loss, nonsaturating_generator_loss
    from gan_utils.models import cgan

    # gan_utils' networks (class-conditional batch norm, projection discriminator), narrow for speed
    ConditionalGenerator = functools.partial(cgan.ConditionalGenerator, base_channels=16)
    ConditionalDiscriminator = functools.partial(cgan.ConditionalDiscriminator, base_channels=16, feature_dim=64)
    grading.check_generator(ConditionalGenerator)
    grading.check_generator_uses_label(ConditionalGenerator)
    grading.check_discriminator(ConditionalDiscriminator)
    grading.check_discriminator_uses_label(ConditionalDiscriminator)
    grading.check_discriminator_learns(ConditionalDiscriminator)
    grading.check_discriminator_loss(bce_discriminator_loss)
    grading.check_discriminator_loss(lambda r, f: -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean())
    grading.check_generator_loss(nonsaturating_generator_loss)
    grading.check_generator_loss(lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f)))
    grading.check_losses_stable(bce_discriminator_loss, nonsaturating_generator_loss)
    grading.check_d_step(_other_d_step)
    grading.check_g_step(_other_g_step)
    grading.check_training_smoke(ConditionalGenerator, ConditionalDiscriminator, _other_d_step, _other_g_step)


def test_helpers_name_the_slips() -> None:
    from autograder.assignments import cgan_mnist as grading
    from gan_utils.models.cgan import ConditionalDiscriminator, ConditionalGenerator

    class LabelBlindG(ConditionalGenerator):
        def forward(self, z, labels):
            return super().forward(z, torch.zeros_like(labels))

    class SigmoidD(ConditionalDiscriminator):
        def forward(self, x, labels):
            return torch.sigmoid(super().forward(x, labels))

    def naive_d(r, f):
        return -(torch.log(torch.sigmoid(r)) + torch.log(1 - torch.sigmoid(f))).mean()

    def d_step_no_detach(G, D, opt_d, real, labels, z):
        loss = F.softplus(-D(real, labels)).mean() + F.softplus(D(G(z, labels), labels)).mean()
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        return loss.item()

    def d_step_no_zero_grad(G, D, opt_d, real, labels, z):
        with torch.no_grad():
            fake = G(z, labels)
        loss = F.softplus(-D(real, labels)).mean() + F.softplus(D(fake, labels)).mean()
        loss.backward()
        opt_d.step()
        return loss.item()

    def g_step_minimax(G, D, opt_g, labels, z):
        loss = -F.softplus(D(G(z, labels), labels)).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        return loss.item()

    with pytest.raises(AssertionError, match="same image"):
        grading.check_generator_uses_label(LabelBlindG)
    with pytest.raises(AssertionError, match="no sigmoid"):
        grading.check_discriminator_learns(SigmoidD)
    with pytest.raises(AssertionError, match="sign is flipped"):
        grading.check_discriminator_loss(lambda r, f: -(F.softplus(-r).mean() + F.softplus(f).mean()))
    with pytest.raises(AssertionError, match="sum over the batch"):
        grading.check_discriminator_loss(lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum())
    with pytest.raises(AssertionError, match="saturating"):
        grading.check_generator_loss(lambda f: -F.softplus(f).mean())
    with pytest.raises(AssertionError, match="numerically stable|softplus"):
        grading.check_losses_stable(naive_d, lambda f: -torch.log(torch.sigmoid(f)).mean())
    with pytest.raises(AssertionError, match="detach"):
        grading.check_d_step(d_step_no_detach)
    with pytest.raises(AssertionError, match="zero_grad"):
        grading.check_d_step(d_step_no_zero_grad)
    with pytest.raises(AssertionError, match="saturating"):
        grading.check_g_step(g_step_minimax)


def test_checks_leave_the_random_state_alone() -> None:
    from autograder.assignments import cgan_mnist as grading
    from gan_utils.losses import nonsaturating_generator_loss

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    grading.check_generator_loss(nonsaturating_generator_loss)
    assert torch.equal(torch.rand(3), expected)


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
    for leaked in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "Model answer", "grading.check_"):
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
def test_solution_runs_clean_and_draws_its_figures(graded) -> None:
    path = graded["solution"]["out"] / "autograded" / "solution" / NAME / f"{NAME}.ipynb"
    nb = nbformat.read(path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i} ({_grade_id(cell)}): {out.ename}: {out.evalue[:200]}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"cell {i} ({_grade_id(cell)}) wrote to stderr: {out.text[:200]}")
    assert not problems, "\n".join(problems)
    images = sum(1 for c in nb.cells for o in c.get("outputs", [])
                 if {"image/png", "image/jpeg"} & set(o.get("data", {})))
    assert images >= 4, f"expected the real-digit grid, loss curves, snapshots and the 10x10 grid, got {images} figures"


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
