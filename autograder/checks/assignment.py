"""What an assignment's grading module declares, and the decorator of its hidden checks.

An ``autograder/assignments/<name>.py`` module reads like a table::

    OFF_LIMITS = {"answer_cell_id": ("gan_utils.losses.nonsaturating_generator_loss", ...)}
    hidden = hidden_checks(OFF_LIMITS)

    @hidden("answer_cell_id")
    def check_generator_loss(generator_loss, device=None): ...

    SLIPS = [slip("sum for mean", edit("answer_cell_id", ".mean()", ".sum()"), fails={"test_generator_loss"})]
    VARIANTS = [variant("softplus form", rewrite("answer_cell_id", "def generator_loss(l): ..."))]
    LIBRARY_COPIES = [library_copy("calls the kit", rewrite(...), fails={"test_generator_loss"})]

- :func:`hidden_checks` turns a check into a graded one: the tamper guard and grading
  context of :func:`~autograder.checks.core.checked`, and, while it runs, tripwires on
  the library names its answer cells may not use (:mod:`autograder.checks.ownership`).
- ``SLIPS``: code a test must catch, and exactly which test cells it must fail.
- ``VARIANTS``: correct code written another way, which must keep full marks.
- ``LIBRARY_COPIES``: answers that call the kit's finished reference; they lose the
  listed tests with the message "write this yourself".

Edits apply to the solution's answer cells (markers removed); the one harness in
``tests/test_assignments.py`` grades every table (the real batch grader grades the solution,
in ``cgan_mnist`` the blank notebook and one slip submission too; ``tests/table_runner.py``,
checked against it on those, grades every submission).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from autograder.checks.core import checked
from autograder.checks.ownership import off_limits_for, own_work

F = TypeVar("F", bound=Callable[..., Any])
COPY_MARK = "write this yourself"


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (which must occur exactly once) by ``new`` in an answer cell; ``old=None``
    replaces the whole cell."""

    cell: str
    old: str | None
    new: str

    def apply(self, source: str) -> str:
        if self.old is None:
            return self.new
        count = source.count(self.old)
        if count != 1:
            raise ValueError(f"edit of cell {self.cell!r}: {self.old!r} occurs {count} times, expected once")
        return source.replace(self.old, self.new)


@dataclass(frozen=True)
class Slip:
    """A known slip: the edits, and the automatic test cells it must fail (and only those)."""

    name: str
    edits: tuple[Edit, ...]
    fails: frozenset[str]
    message: str = ""  # when given, each failed test's message must contain it
    why: str = ""

    @property
    def cells(self) -> frozenset[str]:
        return frozenset(e.cell for e in self.edits)


@dataclass(frozen=True)
class Variant:
    """A correct answer written another way: must keep every automatic point."""

    name: str
    edits: tuple[Edit, ...]
    why: str = ""
    cells: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", frozenset(e.cell for e in self.edits))


def edit(cell: str, old: str, new: str) -> Edit:
    return Edit(cell, old, new)


def rewrite(cell: str, source: str) -> Edit:
    return Edit(cell, None, source)


def slip(name: str, *edits: Edit, fails: Iterable[str], message: str = "", why: str = "") -> Slip:
    if not edits:
        raise ValueError(f"slip {name!r} has no edits")
    return Slip(name, tuple(edits), frozenset(fails), message, why)


def variant(name: str, *edits: Edit, why: str = "") -> Variant:
    if not edits:
        raise ValueError(f"variant {name!r} has no edits")
    return Variant(name, tuple(edits), why)


def library_copy(name: str, *edits: Edit, fails: Iterable[str]) -> Slip:
    """An answer that calls the kit's reference: it loses ``fails``, each with "write this yourself"."""
    return slip(name, *edits, fails=fails, message=COPY_MARK)


def hidden_checks(off_limits: Mapping[str, Sequence[str]]) -> Callable[..., Callable[[F], F]]:
    """Decorator factory for an assignment's hidden checks.

    ``@hidden("cell_a", "cell_b")`` marks a check as grading those answer cells: it
    runs like every check (guard, grading context, forked RNG, one readable
    ``AssertionError``) and, while it runs, the library names ``off_limits`` lists for
    those cells are tripwired. Student objects passed to the check that *are* such a
    library object (an alias, a ``partial``, a subclass) fail at once.
    """

    def hidden(*cells: str) -> Callable[[F], F]:
        names = off_limits_for(off_limits, cells)

        def decorate(fn: F) -> F:
            @functools.wraps(fn)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                __tracebackhide__ = True
                answers = [a for a in (*args, *kwargs.values()) if callable(a)]
                with own_work(names, answers):
                    return fn(*args, **kwargs)

            wrapped = checked(guarded)
            wrapped.cells = cells  # type: ignore[attr-defined]
            return wrapped  # type: ignore[return-value]

        return decorate

    return hidden
