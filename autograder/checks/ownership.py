"""The answer must be the student's own: tripwires on the kit's finished references.

``gan_utils`` ships finished versions of much of what the assignments ask students to
write (``nonsaturating_generator_loss``, ``gradient_penalty``, the DCGAN models, ...).
An answer that only calls them must lose its points. While a hidden check runs,
:func:`own_work` arms a tripwire on every library object that the answer cell may not
use:

- a **function** gets its ``__code__`` swapped for a tripwire, so every way of reaching
  it is caught: ``import gan_utils.losses as L; L.x(...)``, ``from ... import x as y``,
  a default argument, a closure, ``functools.partial``;
- a **class** (an ``nn.Module``) gets its ``__init__`` and ``forward`` swapped, which
  catches aliases, subclasses and composition alike.

The tripwire looks at who called: the first frame outside torch, the standard
library and this module. A call from ``autograder`` (the check computing its
reference) or from ``gan_utils`` itself (a helper that the notebook hands out and
that uses the reference internally) goes through to the original; a call from
anywhere else (the student's cell) raises :class:`LibraryCopy`, which the checks
turn into "write this yourself: gan_utils.X is the kit's reference". An answer that
*is* the library object (``generator_loss = nonsaturating_generator_loss``, a
``partial`` of it, a subclass) is caught before it is called.

Everything is restored when the check ends, whatever happens inside it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
import sysconfig
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])

COPY_MESSAGE = "write this yourself: {name} is the kit's reference"


class LibraryCopy(Exception):
    """Raised when an answer uses a library object that its cell may not use."""

    def __init__(self, name: str) -> None:
        super().__init__(COPY_MESSAGE.format(name=name))
        self.name = name


# --- who called -------------------------------------------------------------------------
_HERE = os.path.abspath(__file__)
_AUTOGRADER = os.path.dirname(os.path.dirname(_HERE)) + os.sep
_SKIP = tuple(
    sorted({os.path.dirname(torch.__file__) + os.sep,
            sysconfig.get_paths()["stdlib"] + os.sep,
            sysconfig.get_paths()["platstdlib"] + os.sep})
)


def _gan_utils_dir() -> str:
    try:
        import gan_utils

        return os.path.dirname(os.path.abspath(gan_utils.__file__)) + os.sep
    except Exception:  # the checks work without gan_utils
        return "\0"  # matches no file


def _trusted_caller(depth: int) -> bool:
    """Whether the call ``depth`` frames up may use the original.

    Frames of torch and the standard library are looked through. The first other frame
    decides: ``gan_utils`` (the library using its own reference) is trusted; anything
    that is not ``autograder`` is not. An ``autograder`` frame is trusted only when no
    untrusted frame lies between it and the check that armed the tripwire, so student
    code cannot launder a call through a check helper such as ``call_student``.
    """
    frame = sys._getframe(depth + 1)
    library = _gan_utils_dir()
    first = True
    while frame is not None and frame not in _ENTRIES:
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename.startswith(_SKIP) or filename == _HERE:
            frame = frame.f_back
            continue
        if filename.startswith(library):
            if first:
                return True
        elif not filename.startswith(_AUTOGRADER):
            return False
        first = False
        frame = frame.f_back
    return True


# --- the tripwires ----------------------------------------------------------------------
# key -> (label, original function copy); filled while armed
_ARMED: dict[int, tuple[str, Callable[..., Any]]] = {}
# frames that entered own_work: the walk up the stack stops there
_ENTRIES: list[types.FrameType] = []


def tripped(key: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Body of every tripwire: call through for trusted callers, else raise."""
    __tracebackhide__ = True
    label, original = _ARMED[key]
    if _trusted_caller(2):
        return original(*args, **kwargs)
    raise LibraryCopy(label)


def _tripwire_code(key: int, n_free: int) -> types.CodeType:
    """A code object ``(*args, **kwargs) -> tripped(key, ...)`` with ``n_free`` free variables."""
    names = [f"_free{i}" for i in range(n_free)]
    body = "def _tripwire(*args, **kwargs):\n"
    if names:
        body += "    " + ", ".join(names) + "\n"
    body += (f"    return __import__('autograder.checks.ownership', fromlist=['tripped'])"
             f".tripped({key}, args, kwargs)\n")
    if names:
        body = "def _outer():\n" + "".join(f"    {n} = None\n" for n in names) + "".join(
            "    " + line + "\n" for line in body.splitlines()) + "    return _tripwire\n"
    namespace: dict[str, Any] = {}
    exec(compile(body, _HERE, "exec"), namespace)
    fn = namespace["_outer"]() if names else namespace["_tripwire"]
    return fn.__code__


def _innermost(fn: types.FunctionType) -> types.FunctionType:
    """The function a ``functools.wraps`` chain (``@torch.no_grad()``) finally calls."""
    for _ in range(8):
        inner = getattr(fn, "__wrapped__", None)
        if not isinstance(inner, types.FunctionType):
            return fn
        fn = inner
    return fn


def _copy(fn: types.FunctionType) -> types.FunctionType:
    clone = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    clone.__kwdefaults__ = fn.__kwdefaults__
    clone.__dict__.update(fn.__dict__)
    return clone


def resolve(name: str) -> Any:
    """The object a dotted name such as ``gan_utils.losses.gradient_penalty`` refers to."""
    module_name, _, attr = name.rpartition(".")
    try:
        obj: Any = importlib.import_module(name)
        return obj
    except ImportError:
        pass
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError:
        owner_name, _, cls = module_name.rpartition(".")
        owner = getattr(importlib.import_module(owner_name), cls)
    try:
        return getattr(owner, attr)
    except AttributeError:
        raise LookupError(f"off-limits name {name!r} does not exist") from None


def _unwrap_partial(obj: Any) -> Any:
    while isinstance(obj, functools.partial):
        obj = obj.func
    return getattr(obj, "__func__", obj)


def is_copy_of(candidate: Any, target: Any) -> bool:
    """``candidate`` is ``target`` itself, a partial or bound method of it, or a subclass."""
    candidate = _unwrap_partial(candidate)
    if candidate is target:
        return True
    if isinstance(target, types.FunctionType) and isinstance(candidate, types.FunctionType):
        return _innermost(candidate) is _innermost(target)
    return isinstance(candidate, type) and isinstance(target, type) and issubclass(candidate, target)


@contextlib.contextmanager
def own_work(names: Iterable[str], answers: Iterable[Any] = ()) -> Iterator[None]:
    """Arm tripwires on ``names`` (dotted library names) for the duration of the block.

    ``answers`` are the student's objects the check was given: one that is itself an
    off-limits object fails at once.
    """
    __tracebackhide__ = True
    targets = [(name, resolve(name)) for name in dict.fromkeys(names)]
    for answer in answers:
        for name, target in targets:
            if callable(answer) and is_copy_of(answer, target):
                raise LibraryCopy(name)
    restore: list[Callable[[], None]] = []
    _ENTRIES.append(sys._getframe(2))  # the frame of the `with own_work(...)` statement
    try:
        for name, target in targets:
            if isinstance(target, type):
                for attr in ("__init__", "forward"):
                    method = target.__dict__.get(attr)
                    if isinstance(method, types.FunctionType):
                        restore.append(_arm_function(f"{name}", method))
            elif isinstance(target, types.FunctionType):
                restore.append(_arm_function(name, _innermost(target)))
            else:
                raise TypeError(f"cannot guard {name!r}: a function or a class was expected, got {type(target).__name__}")
        yield
    finally:
        for undo in reversed(restore):
            undo()
        _ENTRIES.pop()


def _arm_function(label: str, fn: types.FunctionType) -> Callable[[], None]:
    key = id(fn)
    if key in _ARMED:  # already armed by an enclosing block
        return lambda: None
    original_code = fn.__code__
    _ARMED[key] = (label, _copy(fn))
    fn.__code__ = _tripwire_code(key, len(original_code.co_freevars))

    def undo() -> None:
        fn.__code__ = original_code
        _ARMED.pop(key, None)

    return undo


def off_limits_for(table: Mapping[str, Iterable[str]], cells: Iterable[str]) -> list[str]:
    """The union of the off-limits names of ``cells`` in an assignment's table."""
    names: list[str] = []
    for cell in cells:
        if cell not in table:
            raise KeyError(f"no off-limits entry for answer cell {cell!r}")
        names.extend(table[cell])
    return list(dict.fromkeys(names))
