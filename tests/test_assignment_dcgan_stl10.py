"""The ``dcgan_stl10`` assignment end to end (budget: under 4 minutes on two idle cores).

- The grading checks accept independent correct implementations (``gan_utils``' own
  DCGAN, upsampling block and losses) and name the usual slips.
- The student notebook is exactly what ``python -m autograder release`` generates from
  the solution notebook.
- The solution notebook runs top to bottom in quick mode: no error, nothing on stderr.
- The batch grader, run once on a small corpus (the solution, the blank notebook, and
  three students whose answer cells carry known slips), gives the solution every
  automatic point, the blank notebook none without failing, and takes from each slip
  exactly the tests that should catch it.

Run: ``pytest tests/test_assignment_dcgan_stl10.py -q -s`` (``-s`` prints the timings).
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

ROOT = Path(__file__).resolve().parents[1]
NAME = "dcgan_stl10"
SOLUTION = ROOT / "solutions" / NAME / f"{NAME}.ipynb"
STUDENT = ROOT / "notebooks" / NAME / f"{NAME}.ipynb"
NOTEBOOK_BUDGET_S = 150  # the notebook takes ~30-40 s on two cores; generous for a busy CI machine

# Slips in the solution's answer cells: (answer cell grade_id, text, replacement).
SLIPS: dict[str, list[tuple[str, str, str]]] = {
    "slip_bn_sign": [  # no BatchNorm in generator layers 2-4; WGAN critic loss with the sign flipped
        ("generator", "                nn.BatchNorm2d(c_out),\n", ""),
        ("wgan_losses", "return fake_scores.mean() - real_scores.mean()", "return real_scores.mean() - fake_scores.mean()"),
    ],
    "slip_pad_graph_clip": [  # padding 0 in the stride-2 layers; no create_graph; clip 0.01
        ("generator", "kernel_size=4, stride=2, padding=1, bias=False", "kernel_size=4, stride=2, padding=0, bias=False"),
        ("gradient_penalty", "create_graph=True", "create_graph=False"),
        ("wgan_clip", "WGAN_CLIP = 0.05", "WGAN_CLIP = 0.01"),
    ],
    "slip_detach_sum": [  # fakes not detached in the D step; penalty summed over the batch
        ("discriminator_step", "fake = G(z).detach()", "fake = G(z)"),
        ("gradient_penalty", "return ((norms - 1) ** 2).mean()", "return ((norms - 1) ** 2).sum()"),
    ],
}
# Automatic tests each slip must fail (all others must get full points).
EXPECTED_FAILURES: dict[str, set[str]] = {
    "slip_bn_sign": {
        "test_generator_table2", "test_generator_forward", "test_wgan_losses", "test_wgan_critic_step",
        "test_wgan_gp_critic_step",  # the GP step uses the (flipped) WGAN critic loss
    },
    "slip_pad_graph_clip": {
        "test_generator_shapes", "test_generator_table2", "test_generator_forward", "test_clip_weights",
        "test_wgan_critic_step", "test_gradient_penalty_backprop", "test_wgan_gp_critic_step",
        "test_dcgan_training", "test_all_runs_finite",  # a 94x94 generator cannot be trained with D
    },
    "slip_detach_sum": {
        "test_discriminator_step", "test_wgan_critic_step", "test_gradient_penalty_linear",
        "test_gradient_penalty_reference", "test_gradient_penalty_backprop", "test_wgan_gp_critic_step",
    },
}
MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)


def _env() -> dict[str, str]:
    """Quick mode, this venv first on PATH, and the kernel's own (inline) matplotlib backend."""
    env = dict(os.environ, GAN_COURSE_MODE="quick")
    env.pop("MPLBACKEND", None)
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


# --- the grading checks on independent implementations - ---------------------------------------


def test_checks_accept_gan_utils_implementations() -> None:
    from autograder.assignments import dcgan_stl10 as grading
    from autograder.assignments import dcgan_stl10_losses as grading_losses
    from gan_utils import losses
    from gan_utils.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init
    from gan_utils.models.upsample import UpsampleBlock

    # gan_utils' DCGAN: no conv bias before BatchNorm, layers wrapped in UpsampleBlock
    grading.check_generator_shapes(DCGANGenerator)
    grading.check_generator_table2(DCGANGenerator)
    grading.check_generator_forward(DCGANGenerator, width=2, batch=3, seed=1)
    grading.check_discriminator_shapes(DCGANDiscriminator)
    grading.check_discriminator_table2(DCGANDiscriminator)
    grading.check_discriminator_forward(DCGANDiscriminator, width=2, batch=3, seed=1)
    grading.check_dcgan_init(dcgan_init)
    for mode in ("convtranspose", "nearest", "bilinear"):
        grading.check_upsample_block(UpsampleBlock, mode, seed=2)
    grading.check_upsample_rejects_unknown_mode(UpsampleBlock)
    grading_losses.check_wgan_losses(losses.wgan_critic_loss, losses.wgan_generator_loss)
    grading_losses.check_lsgan_losses(losses.lsgan_discriminator_loss, losses.lsgan_generator_loss)
    grading_losses.check_clip_weights(losses.clip_weights_)


def test_checks_name_the_slips() -> None:
    from autograder.assignments import dcgan_stl10 as grading
    from autograder.assignments import dcgan_stl10_losses as grading_losses
    from gan_utils import losses
    from gan_utils.models.dcgan import DCGANDiscriminator

    class SigmoidD(DCGANDiscriminator):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(super().forward(x))

    with pytest.raises(AssertionError, match="raw logits"):
        grading.check_discriminator_forward(SigmoidD)
    with pytest.raises(AssertionError, match="sign is flipped"):
        grading_losses.check_wgan_losses(lambda r, f: r.mean() - f.mean(), losses.wgan_generator_loss)
    with pytest.raises(AssertionError, match="mean"):
        grading_losses.check_lsgan_losses(lambda r, f: ((r - 1) ** 2).sum() + (f ** 2).sum(), losses.lsgan_generator_loss)
    # overlap counts: a formula that ignores the padding crop
    with pytest.raises(AssertionError, match="expected counts"):
        grading.check_overlap_counts(lambda n, k, s, p: [min(k, 2)] * ((n - 1) * s - 2 * p + k))

    def penalty_sum(critic, real, fake, eps=None):
        eps = torch.rand(real.shape[0], 1, 1, 1, dtype=real.dtype) if eps is None else eps
        x = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        return ((g.flatten(1).norm(dim=1) - 1) ** 2).sum()

    with pytest.raises(AssertionError, match="mean"):
        grading_losses.check_gradient_penalty_reference(penalty_sum)


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
    for leaked in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "Model answer"):
        assert leaked not in text, f"the student notebook contains {leaked!r}"


@pytest.fixture(scope="module")
def executed_solution() -> tuple[nbformat.NotebookNode, float]:
    from nbclient import NotebookClient

    nb = nbformat.read(SOLUTION, as_version=4)
    saved, env = dict(os.environ), _env()
    os.environ.clear()  # the kernel inherits this process's environment
    os.environ.update(env)
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(SOLUTION.parent)}}).execute()
        seconds = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    print(f"\n[{NAME}] solution notebook, quick mode, kernel start included: {seconds:.1f} s")
    return nb, seconds


@pytest.mark.slow
def test_solution_runs_clean_in_quick_mode(executed_solution) -> None:
    nb, seconds = executed_solution
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i} ({_grade_id(cell)}): {out.ename}: {out.evalue[:200]}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"cell {i} ({_grade_id(cell)}) wrote to stderr: {out.text[:200]}")
    assert not problems, "\n".join(problems)
    assert seconds < NOTEBOOK_BUDGET_S, f"quick mode took {seconds:.0f} s (budget {NOTEBOOK_BUDGET_S} s)"


@pytest.mark.slow
def test_solution_figures_are_drawn(executed_solution) -> None:
    nb, _ = executed_solution
    images = sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images >= 10, f"expected the data grid, loss curves and sample grids (>= 10 figures), got {images}"


# --- the batch grader on a small corpus -------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp(NAME)
    student = nbformat.read(STUDENT, as_version=4)
    corpus = {"solution": fill_answers(student), "blank": student}
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
    return {name: {"grade": grades[name], "tests": tests.get(name, {})} for name in corpus}


def _auto_tests(result: dict) -> dict[str, dict]:
    return {cell: row for cell, row in result["tests"].items() if row["kind"] == "auto"}


@pytest.mark.slow
def test_solution_gets_every_automatic_point(graded) -> None:
    result = graded["solution"]
    grade = result["grade"]
    assert grade["status"] == "ok", grade["message"]
    lost = {c: r["message"] for c, r in _auto_tests(result).items() if float(r["score"]) < float(r["max_score"])}
    assert not lost, f"the solution lost points: {lost}"
    assert math.isclose(float(grade["auto_score"]), float(grade["auto_max_score"])), grade
    assert float(grade["auto_max_score"]) == 53


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
        f"unexpected passes {sorted(EXPECTED_FAILURES[slip] - failed)}"
    )
    lost = sum(float(auto[c]["max_score"]) for c in failed)
    assert math.isclose(float(result["grade"]["auto_score"]), 53 - lost)
