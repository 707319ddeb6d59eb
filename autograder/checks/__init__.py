"""The one public check API: what graded notebook cells and assignment modules call.

Graded cells call checks through the module, never through names copied into the
notebook, so a notebook that defines its own ``check_loss`` changes nothing::

    import autograder.checks as checks
    checks.check_close(generator_loss(torch.zeros(4)), math.log(2), what="loss at logit 0")
    checks.check_loss(generator_loss, reference, checks.make_logit_cases(seed=1),
                      slips={"the sign is flipped": lambda l: -reference(l)})

Every check computes its reference at grade time on the same inputs, device and
dtype (TF32 off, deterministic algorithms on), leaves the notebook's random state
alone, writes nothing to stderr, and fails with an ``AssertionError`` whose message
says what was expected and what came.

- :mod:`.core`: the grading environment (originals of torch functions, tamper guard,
  :func:`checked`, :func:`call_student`);
- :mod:`.tensors`, :mod:`.losses`, :mod:`.models`, :mod:`.training`: the checks;
- :mod:`.toys`: tiny models and toy class images for step checks;
- :mod:`.ownership`: tripwires on the kit's finished references;
- :mod:`.assignment`: what an assignment's grading module declares (slips, variants,
  library copies) and the ``hidden_checks`` decorator.
"""

from autograder.checks import core
from autograder.checks.assignment import (
    Edit,
    Slip,
    Variant,
    edit,
    hidden_checks,
    library_copy,
    rewrite,
    slip,
    variant,
)
from autograder.checks.core import call_student, checked, fail, grading_device
from autograder.checks.losses import (
    STABLE_HINT,
    check_loss,
    check_loss_stable,
    check_reduction_mean,
    make_logit_cases,
)
from autograder.checks.models import (
    build_model,
    call_model,
    check_every_parameter_learns,
    check_output_range,
)
from autograder.checks.ownership import LibraryCopy, own_work
from autograder.checks.tensors import (
    as_number,
    check_close,
    check_finite,
    check_invariant,
    check_monotone,
    check_shapes,
    compare_close,
    compare_naming_slips,
    same_values,
)
from autograder.checks.toys import TinyDiscriminator, TinyGenerator, toy_class_images
from autograder.checks.training import (
    check_smoke_training,
    check_step,
    check_step_updates_only,
    max_param_diff,
    snapshot,
    swapped_in,
)

__all__ = [
    "STABLE_HINT",
    "Edit",
    "LibraryCopy",
    "Slip",
    "TinyDiscriminator",
    "TinyGenerator",
    "Variant",
    "as_number",
    "build_model",
    "call_model",
    "call_student",
    "check_close",
    "check_every_parameter_learns",
    "check_finite",
    "check_invariant",
    "check_loss",
    "check_loss_stable",
    "check_monotone",
    "check_output_range",
    "check_reduction_mean",
    "check_shapes",
    "check_smoke_training",
    "check_step",
    "check_step_updates_only",
    "checked",
    "compare_close",
    "compare_naming_slips",
    "core",
    "edit",
    "fail",
    "grading_device",
    "hidden_checks",
    "library_copy",
    "make_logit_cases",
    "max_param_diff",
    "own_work",
    "rewrite",
    "same_values",
    "slip",
    "snapshot",
    "swapped_in",
    "toy_class_images",
    "variant",
]


def _watch_self() -> None:
    import sys

    from autograder.checks import assignment, losses, models, ownership, tensors, toys, training

    for module in (tensors, losses, models, training, ownership, assignment, toys):
        core.watch_functions(module)
    core.watch_module(sys.modules[__name__])
    core.watch_references()


_watch_self()
del _watch_self
