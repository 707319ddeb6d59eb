"""The core of the check API: the grading environment every check runs in.

- **Originals.** The torch functions the checks compare with (``allclose``,
  ``isclose``, ``autograd.grad`` ...) are bound here when ``autograder.checks`` is
  first imported. The grader imports it before any student cell runs, so a
  notebook that later replaces ``torch.allclose`` cannot change what the checks use.
- **Guard.** :func:`guard` verifies that the watched namespaces (torch,
  ``torch.nn.functional``, ``torch.autograd``, ``torch.Tensor``, ``nn.Module``,
  ``gan_utils.losses`` and the checks themselves) still hold the objects seen at
  import time; a check refuses to run (``AssertionError``) when they do not.
- **Determinism.** :func:`grading_context` switches TF32 off and deterministic
  algorithms on (warn-only) for the duration of a check, and silences warnings and
  stderr: nbgrader scores a test cell 0 as soon as it writes to stderr.
- **Failures.** :func:`checked` wraps a check so a failure surfaces as one
  ``AssertionError`` with a readable message, raised from a frame marked
  ``__tracebackhide__`` with the internal chain cut (``from None``).
- **Random state.** Checks seed their own inputs inside a forked RNG, so a
  notebook's later cells (training, sampling) are reproducible whether or not a
  check ran before them.
- **Student calls.** :func:`call_student` runs student code and turns what it
  raises into a check failure that names the call (``NotImplementedError`` reads
  "not implemented yet"; a use of the kit's reference reads "write this yourself").
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from autograder.checks.ownership import LibraryCopy

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

# --- originals, bound once --------------------------------------------------------------
allclose = torch.allclose
isclose = torch.isclose
isfinite = torch.isfinite
equal = torch.equal
as_tensor = torch.as_tensor
autograd_grad = torch.autograd.grad
no_grad = torch.no_grad
enable_grad = torch.enable_grad
cat = torch.cat
stack = torch.stack
is_tensor = torch.is_tensor
# The C switch itself: torch.use_deterministic_algorithms also imports the compiler
# stack (~900 modules, seconds per kernel) only to set a torch.compile option.
_set_deterministic = torch._C._set_deterministic_algorithms
are_deterministic_algorithms_enabled = torch.are_deterministic_algorithms_enabled
tensor_detach = torch.Tensor.detach
tensor_clone = torch.Tensor.clone
_getattr = getattr
_isinstance = isinstance
_id = id

F = TypeVar("F", bound=Callable[..., Any])


class CheckFailure(Exception):
    """Raised inside a check; :func:`checked` turns it into an ``AssertionError``."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


def fail(message: str, cause: BaseException | None = None) -> None:
    """Stop the current check with ``message`` (what was expected, what came)."""
    __tracebackhide__ = True
    raise CheckFailure(message, cause)


# --- guard --------------------------------------------------------------------------------
_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def canonical(obj: Any) -> Any:
    """``obj`` with torch's own lazy wrappers removed.

    torch replaces some functions by ``functools.wraps`` wrappers defined in its own
    files on first use (e.g. ``torch.manual_seed`` after
    ``use_deterministic_algorithms``); those are the same function. A wrapper whose
    code lives anywhere else is not unwrapped.
    """
    for _ in range(8):
        inner = _getattr(obj, "__wrapped__", None)
        code = _getattr(obj, "__code__", None)
        if inner is None or code is None or not code.co_filename.startswith(_TORCH_DIR):
            return obj
        obj = inner
    return obj


# (namespace dict, attribute name, original object, label)
_WATCHED: list[tuple[Any, str, object, str]] = []
_CODES: list[tuple[types.FunctionType, types.CodeType, str]] = []
_MODULES: list[tuple[str, types.ModuleType]] = []


def _watch_namespace(namespace: Any, label: str, include_private: bool = False) -> None:
    for name, value in list(namespace.items()):
        if not include_private and name.startswith("_"):
            continue
        if _isinstance(value, types.ModuleType) or not callable(value):
            continue
        _WATCHED.append((namespace, name, canonical(value), f"{label}.{name}"))


def watch_module(module: types.ModuleType, include_private: bool = False) -> None:
    """Record every public callable of ``module``; :func:`guard` checks they stay the same."""
    if any(m is module for _, m in _MODULES):
        return
    _MODULES.append((module.__name__, module))
    _watch_namespace(vars(module), module.__name__, include_private)


def watch_class(cls: type, label: str | None = None) -> None:
    """Record the attributes defined on ``cls`` itself (methods, properties, dunders)."""
    namespace = cls.__dict__
    label = label or f"{cls.__module__}.{cls.__qualname__}"
    for name, value in list(namespace.items()):
        if callable(value) or _isinstance(value, (property, staticmethod, classmethod)):
            _WATCHED.append((namespace, name, canonical(value), f"{label}.{name}"))


def watch_functions(module: types.ModuleType) -> None:
    """Record the functions of one of our own modules and their code objects."""
    watch_module(module, include_private=True)
    for name, value in vars(module).items():
        if _isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            _CODES.append((value, value.__code__, f"{module.__name__}.{name}"))
            wrapped = _getattr(value, "__wrapped__", None)
            if _isinstance(wrapped, types.FunctionType):
                _CODES.append((wrapped, wrapped.__code__, f"{module.__name__}.{name}"))


def changed_names(limit: int = 5) -> list[str]:
    """Names whose object differs from the one recorded at import time."""
    changed: list[str] = []
    missing = object()
    for namespace, name, original, label in _WATCHED:
        if canonical(namespace.get(name, missing)) is not original:
            changed.append(label)
    for fn, code, label in _CODES:
        if fn.__code__ is not code:
            changed.append(label + ".__code__")
    for name, module in _MODULES:
        if sys.modules.get(name, module) is not module:
            changed.append(f"sys.modules[{name!r}]")
    return changed[:limit] if limit else changed


def guard() -> None:
    """Fail when the notebook replaced a watched torch, gan_utils or autograder object."""
    __tracebackhide__ = True
    changed = changed_names()
    if changed:
        fail(
            "Integrity check failed: this notebook replaced "
            + ", ".join(changed)
            + ". Checks only run against the original torch, gan_utils and autograder "
            "functions; remove the code that reassigns them and restart the kernel."
        )


def _install_default_watches() -> None:
    import torch.nn as nn
    import torch.nn.functional as functional

    watch_module(torch)
    watch_module(functional)
    watch_module(torch.autograd)
    watch_module(nn)
    watch_class(torch.Tensor, "torch.Tensor")
    watch_class(torch._C.TensorBase, "torch._C.TensorBase")
    watch_class(nn.Module, "torch.nn.Module")
    watch_functions(sys.modules[__name__])


def watch_references() -> None:
    """Watch the reference implementations (``gan_utils.losses``) when importable."""
    try:
        import gan_utils.losses as losses
    except Exception:  # the checks work without gan_utils; references are then passed in
        return
    watch_module(losses)
    for name in list(sys.modules):
        if name.startswith("gan_utils.losses."):
            watch_module(sys.modules[name])


# --- determinism and silence --------------------------------------------------------------
def grading_device() -> torch.device:
    """The device graded inputs are created on: CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def grading_context() -> Iterator[None]:
    """TF32 off, deterministic algorithms on (warn-only), grad enabled, warnings and stderr silenced."""
    cuda_tf32 = torch.backends.cuda.matmul.allow_tf32
    cudnn = torch.backends.cudnn
    saved = (cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    was_deterministic = are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.backends.cuda.matmul.allow_tf32 = False
    cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = False, True, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _set_deterministic(True, warn_only=True)
            with contextlib.redirect_stderr(io.StringIO()), enable_grad():
                yield
    finally:
        _set_deterministic(was_deterministic, warn_only=was_warn_only)
        torch.backends.cuda.matmul.allow_tf32 = cuda_tf32
        cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved


def checked(fn: F) -> F:
    """Decorator for public checks: guard, grading context, forked RNG, one readable ``AssertionError``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        failure: CheckFailure | None = None
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        try:
            guard()
            with grading_context(), torch.random.fork_rng(devices=devices):
                return fn(*args, **kwargs)
        except CheckFailure as exc:
            failure = exc
        except LibraryCopy as exc:
            failure = CheckFailure(str(exc))
        if failure.cause is not None:
            raise AssertionError(str(failure)) from failure.cause
        raise AssertionError(str(failure)) from None

    return wrapper  # type: ignore[return-value]


def call_student(fn: Callable[..., Any], *args: Any, what: str = "the function", **kwargs: Any) -> Any:
    """Call student code; an exception becomes a check failure naming the call.

    The guard runs again afterwards, so code that patches torch while it runs is caught
    before any comparison.
    """
    __tracebackhide__ = True
    try:
        result = fn(*args, **kwargs)
    except CheckFailure:
        raise
    except LibraryCopy as exc:
        fail(str(exc))
    except NotImplementedError:
        fail(f"{what} is not implemented yet (replace `raise NotImplementedError()` with your code)")
    except Exception as exc:  # student code may raise anything
        fail(f"{what} raised {type(exc).__name__}: {exc}", cause=exc)
    guard()
    return result


def describe(value: Any) -> str:
    """Short description of an input for messages: shape, dtype and value range."""
    if is_tensor(value):
        t = tensor_detach(value)
        text = f"tensor of shape {tuple(t.shape)}"
        if t.numel() and t.is_floating_point():
            finite = t[isfinite(t)]
            if finite.numel():
                text += f", values in [{finite.min().item():.4g}, {finite.max().item():.4g}]"
        return text
    if _isinstance(value, torch.nn.Module):
        return type(value).__name__
    return repr(value) if len(repr(value)) < 60 else type(value).__name__


_install_default_watches()
