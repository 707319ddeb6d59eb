from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from gan_utils.device import deterministic_mode, seed_everything, select_device


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device(None).type == "cpu"


def test_string_override_and_errors(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        select_device("cuda:0")
    with pytest.raises(ValueError, match="expected one of auto, cpu, cuda, mps"):
        select_device("tpu")


def test_seed_everything_reproduces_all_generators():
    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3)

    seed_everything(123)
    a = draw()
    seed_everything(123)
    b = draw()
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    seed_everything(124)
    assert not torch.equal(draw()[2], a[2])


def test_seed_must_be_int():
    with pytest.raises(TypeError, match="seed must be an int"):
        seed_everything("0")  # type: ignore[arg-type]


def test_deterministic_mode_restores_state():
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_mode():
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cuda.matmul.allow_tf32
    assert torch.are_deterministic_algorithms_enabled() == before
