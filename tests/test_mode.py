import pytest
import torch

from gan_utils.mode import course_mode, pick


def test_mode_from_environment(monkeypatch):
    monkeypatch.setenv("GAN_COURSE_MODE", "full")
    assert course_mode() == "full" and pick(1, 2) == 2
    monkeypatch.setenv("GAN_COURSE_MODE", " Quick ")
    assert course_mode() == "quick" and pick(1, 2) == 1


def test_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("GAN_COURSE_MODE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert course_mode() == "quick"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert course_mode() == "full"


def test_bad_mode_is_explained(monkeypatch):
    monkeypatch.setenv("GAN_COURSE_MODE", "fast")
    with pytest.raises(ValueError, match="expected one of quick, full"):
        course_mode()
