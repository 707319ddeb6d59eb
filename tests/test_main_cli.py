"""`python -m gan_utils` entry point: help lists every command, errors are clear."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gan_utils.__main__ import main


def test_help_lists_subcommands():
    proc = subprocess.run([sys.executable, "-m", "gan_utils", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("demo", "train", "sample", "data"):
        assert command in proc.stdout, f"'{command}' missing from --help:\n{proc.stdout}"


def test_data_command_reports_the_fallback(capsys):
    with pytest.warns(UserWarning, match="mnist-5k-offline"):
        assert main(["data", "mnist", "--root", "/nonexistent/gan-data"]) == 0
    out = capsys.readouterr().out
    assert "mnist-5k-offline: 4500 images of shape (1, 28, 28)" in out


def test_unknown_dataset_is_a_clean_error(capsys):
    assert main(["data", "cifar10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "mnist" in err
