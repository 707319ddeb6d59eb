"""environment.yml, pyproject.toml and requirements.lock must agree on pins."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock line is not an exact pin: {line!r}"
            pins[_norm(name)] = version
    return pins


def _split(req: str) -> tuple[str, str | None]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:==\s*([^\s;]+))?", req)
    assert m, f"cannot parse requirement {req!r}"
    return _norm(m.group(1)), m.group(2)


def _environment_pip() -> list[str]:
    text = (ROOT / "environment.yml").read_text()
    return [m.group(1).strip() for m in re.finditer(r"^\s{6}-\s+(.+)$", text, re.M)]


def test_lock_pins_the_required_torch_builds():
    lock = _lock()
    assert lock["torch"] == "2.14.1"
    assert lock["torchvision"] == "0.29.1"


def test_every_pyproject_dependency_is_locked_at_its_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = _lock()
    for req in project["dependencies"]:
        name, pin = _split(req)
        assert name in lock, f"{name} is a dependency in pyproject.toml but missing from requirements.lock"
        if pin is not None:
            assert lock[name] == pin, f"{name}: pyproject pins {pin}, requirements.lock has {lock[name]}"


def test_environment_yml_matches_lock():
    lock = _lock()
    entries = _environment_pip()
    assert "-e ." in entries, "environment.yml must install the kit itself with '-e .'"
    pinned = [e for e in entries if e != "-e ."]
    assert pinned, "environment.yml lists no pip pins"
    for req in pinned:
        name, pin = _split(req)
        assert pin is not None, f"environment.yml entry {req!r} is not pinned with =="
        assert lock.get(name) == pin, f"{name}: environment.yml pins {pin}, requirements.lock has {lock.get(name)}"
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.M), "environment.yml must ask for python 3.11"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci
    assert "make test" in readme and "make demo" in readme


def test_the_installed_lock_is_complete():
    """`make setup` installs the lock with --no-deps, so every requirement of every package it
    installs must be in it: pip check finds none missing or at the wrong version."""
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"the environment does not satisfy its own requirements:\n{proc.stdout}{proc.stderr}"
