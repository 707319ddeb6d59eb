import pytest
import torch

from gan_utils.mode import course_mode, pick


def test_mode_from_environment(monkeypatch):
    monkeypatch.setenv("GAN_COURSE_MODE", "full")
    assert course_mode() == "full" and pick(1, 2, cpu=3) == 2
    monkeypatch.setenv("GAN_COURSE_MODE", " Quick ")
    assert course_mode() == "quick" and pick(1, 2, cpu=3) == 1
    monkeypatch.setenv("GAN_COURSE_MODE", "cpu")
    assert course_mode() == "cpu" and pick(1, 2, cpu=3) == 3


def test_cpu_mode_without_a_cpu_value_uses_the_quick_one(monkeypatch):
    monkeypatch.setenv("GAN_COURSE_MODE", "cpu")
    assert pick(quick=1, full=2) == 1
    assert pick(quick=1, full=2, cpu=None) is None  # None is a value, not "missing"


def test_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("GAN_COURSE_MODE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert course_mode() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert course_mode() == "full"


def test_bad_mode_is_explained(monkeypatch):
    monkeypatch.setenv("GAN_COURSE_MODE", "fast")
    with pytest.raises(ValueError, match="expected one of quick, cpu, full"):
        course_mode()
