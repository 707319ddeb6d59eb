"""Before/after integrity snapshots of a grading kernel.

The grader sends :func:`snapshot_code` to the kernel (as fresh source each time,
so nothing the notebook defines is called) before the first student cell, before
every test cell and after the last cell. The snapshot maps names to object ids:
callables of torch, ``torch.nn.functional``, numpy, builtins, the autograder
checks and ``gan_utils.losses`` (with their code objects), the classes
``torch.Tensor`` / ``nn.Module``, the IPython shell and kernel classes, the
IPython hooks and input transformers, trace functions, and names in the
notebook's namespace that shadow check helpers.

:func:`compare` runs in the grader. A test cell that would run after a change is
not run (it scores 0) and the submission is flagged ``tampered``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

# Public names of autograder.checks (kept here so the grader need not import torch;
# tests/test_checks.py verifies it matches ``autograder.checks.__all__``).
CHECK_NAMES: tuple[str, ...] = (
    "Edit", "LibraryCopy", "STABLE_HINT", "Slip", "TinyDiscriminator", "TinyGenerator", "Variant",
    "as_number", "build_model", "call_model", "call_student", "check_close",
    "check_every_parameter_learns", "check_finite", "check_invariant", "check_loss",
    "check_loss_stable", "check_monotone", "check_output_range", "check_reduction_mean",
    "check_shapes", "check_smoke_training", "check_step", "check_step_updates_only", "checked",
    "compare_close", "compare_naming_slips", "core", "edit", "fail", "grading_device", "hidden_checks", "library_copy",
    "make_logit_cases", "max_param_diff", "own_work", "rewrite", "same_values", "slip", "snapshot", "swapped_in",
    "toy_class_images", "variant",
)
WATCHED_MODULES: tuple[str, ...] = (
    "builtins", "sys", "math", "torch", "torch.nn", "torch.nn.functional", "torch.autograd",
    "torch.testing", "numpy", "numpy.testing", "IPython.core.interactiveshell",
    "ipykernel.zmqshell", "ipykernel.ipkernel", "ipykernel.kernelbase",
)
WATCHED_PREFIXES: tuple[str, ...] = ("autograder.checks", "autograder.assignments", "gan_utils")
# Packages allowed to add IPython hooks / input transformers while a notebook runs.
TRUSTED_HOOK_MODULES: tuple[str, ...] = (
    "IPython", "ipykernel", "matplotlib", "matplotlib_inline", "ipywidgets", "comm", "tqdm", "traitlets",
)

# Rebound by ipykernel on every execution (stdin forwarding, exception display).
VOLATILE: frozenset[str] = frozenset({
    "builtins.input", "builtins.input.__code__", "builtins.getpass", "builtins.getpass.__code__",
    "sys.excepthook", "sys.excepthook.__code__",
})

_SNAPSHOT_SRC = r'''
def __autograder_snapshot(nonce, check_names, modules, prefixes):
    import sys, os, types, json, builtins
    torch = sys.modules.get("torch")
    tdir = os.path.dirname(torch.__file__) + os.sep if torch is not None else None
    def canon(o):
        for _ in range(8):
            inner = getattr(o, "__wrapped__", None)
            code = getattr(o, "__code__", None)
            if inner is None or code is None or tdir is None or not str(code.co_filename).startswith(tdir):
                return o
            o = inner
        return o
    out = {}
    def record(label, d, private):
        for k, v in list(d.items()):
            if k.startswith("_") and not private:
                continue
            if isinstance(v, types.ModuleType):
                continue
            if not (callable(v) or isinstance(v, (property, staticmethod, classmethod))):
                continue
            v = canon(v)
            out[label + "." + k] = id(v)
            c = getattr(v, "__code__", None)
            if isinstance(c, types.CodeType):
                out[label + "." + k + ".__code__"] = id(c)
    names = [m for m in modules if m in sys.modules]
    names += sorted(m for m in list(sys.modules) if m.startswith(prefixes) and m not in names)
    for name in names:
        mod = sys.modules[name]
        out["sys.modules[" + name + "]"] = id(mod)
        record(name, vars(mod), name.startswith(prefixes))
    for name in ("__import__", "__build_class__"):
        out["builtins." + name] = id(getattr(builtins, name))
    classes = []
    if torch is not None:
        classes += [torch.Tensor, torch._C.TensorBase, torch.nn.Module]
    ip = get_ipython()
    for obj in (ip, getattr(ip, "kernel", None), getattr(getattr(ip, "kernel", None), "session", None),
                getattr(ip, "displayhook", None), getattr(ip, "display_pub", None)):
        if obj is None:
            continue
        classes += [c for c in type(obj).__mro__ if c is not object]
        record("instance:" + type(obj).__name__, vars(obj), True)
    for cls in classes:
        record("class:" + cls.__module__ + "." + cls.__qualname__, cls.__dict__, True)
    for event, callbacks in ip.events.callbacks.items():
        out["hooks:" + event] = [[id(f), str(getattr(f, "__module__", "") or "")] for f in callbacks]
    for attr in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
        out["hooks:" + attr] = [[id(f), str(getattr(f, "__module__", "") or type(f).__module__)] for f in getattr(ip, attr, [])]
    out["sys.gettrace()"] = id(sys.gettrace())
    out["sys.getprofile()"] = id(sys.getprofile())
    for name in list(check_names) + ["checks"]:
        if name in ip.user_ns:
            out["user_ns:" + name] = id(ip.user_ns[name])
    print(nonce + json.dumps(out, separators=(",", ":")))
'''


def snapshot_code(nonce: str, preload: tuple[str, ...] = ()) -> str:
    """Kernel source that imports ``preload`` (first run only) and prints ``nonce`` + snapshot JSON."""
    imports = "".join(
        f"try:\n    __import__({m!r})\nexcept Exception:\n    pass\n" for m in preload
    )
    call = (
        f"__autograder_snapshot({nonce!r}, {list(CHECK_NAMES)!r}, {list(WATCHED_MODULES)!r}, "
        f"{WATCHED_PREFIXES!r})\ndel __autograder_snapshot\n"
    )
    return imports + _SNAPSHOT_SRC + call


def new_nonce() -> str:
    return "AUTOGRADER-" + secrets.token_hex(16) + ":"


def parse(text: str, nonce: str) -> dict[str, Any] | None:
    """The snapshot printed after ``nonce`` in ``text`` (``None`` when absent or malformed)."""
    start = text.find(nonce)
    if start < 0:
        return None
    line = text[start + len(nonce):].split("\n", 1)[0]
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _trusted(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in TRUSTED_HOOK_MODULES)


def compare(baseline: dict[str, Any], current: dict[str, Any] | None) -> list[str]:
    """Human-readable list of changes from ``baseline`` to ``current`` (empty = intact)."""
    if current is None:
        return ["the integrity snapshot could not be taken (the kernel's output was altered)"]
    changes: list[str] = []
    for key, before in baseline.items():
        if key.startswith("user_ns:") or key in VOLATILE:
            continue
        after = current.get(key)
        if key.startswith("hooks:"):
            old = {i for i, _ in before}
            added = [m for i, m in (after or []) if i not in old and not _trusted(m)]
            if added:
                changes.append(f"{key[6:]} gained a callback from {added[0] or 'the notebook'}")
            continue
        if after is None:
            changes.append(f"{key} was deleted")
        elif after != before:
            changes.append(f"{key} was replaced")
    for key, value in current.items():
        if key.startswith("user_ns:"):
            name = key[len("user_ns:"):]
            original = baseline.get("sys.modules[autograder.checks]" if name == "checks" else f"autograder.checks.{name}")
            if value != original:
                changes.append(f"the notebook defines its own {name!r} (graded cells use autograder.checks.{name})")
    return changes


def affects_grading(changes: list[str]) -> bool:
    """Changes to shared objects void later tests; a shadowing name in the notebook does not."""
    return any("the notebook defines its own" not in c for c in changes)
