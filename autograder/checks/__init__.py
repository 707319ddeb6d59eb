"""Check functions for graded notebook cells.

Graded cells call them through the module, never through names copied into the
notebook, so a notebook that defines its own ``check_loss`` changes nothing::

    import autograder.checks as checks
    checks.check_close(generator_loss(torch.zeros(4)), math.log(2), what="loss at logit 0")
    checks.check_loss(generator_loss, nonsaturating_generator_loss, checks.make_logit_cases(seed=1))

Every check computes its reference at grade time on the same inputs, device and
dtype (TF32 off, deterministic algorithms on), writes nothing to stderr, and
fails with an ``AssertionError`` whose message says what was expected and what
came. See ``_env`` for the tamper guard.
"""

from autograder.checks import _env
from autograder.checks._env import grading_device
from autograder.checks.losses import check_loss, check_reduction_mean, make_logit_cases
from autograder.checks.models import check_gradients, check_output_range, check_parameter_count
from autograder.checks.tensors import (
    check_close,
    check_finite,
    check_invariant,
    check_monotone,
    check_shapes,
)
from autograder.checks.training import (
    check_gan_steps,
    check_smoke_training,
    check_step_updates_only,
)

__all__ = [
    "check_close",
    "check_finite",
    "check_gan_steps",
    "check_gradients",
    "check_invariant",
    "check_loss",
    "check_monotone",
    "check_output_range",
    "check_parameter_count",
    "check_reduction_mean",
    "check_shapes",
    "check_smoke_training",
    "check_step_updates_only",
    "grading_device",
    "make_logit_cases",
]


def _watch_self() -> None:
    import sys

    from autograder.checks import losses, models, tensors, training

    for module in (tensors, losses, models, training):
        _env.watch_functions(module)
    _env.watch_module(sys.modules[__name__])
    _env.watch_references()


_watch_self()
del _watch_self
