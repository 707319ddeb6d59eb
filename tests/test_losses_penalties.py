"""Critic penalties: WGAN-GP, R1/R2 and weight clipping on critics with known gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_utils import losses as L

# CPU budget: the whole tests/test_losses*.py set runs in well under 30 s.
pytestmark = pytest.mark.timeout(30)

D64 = torch.float64


def _images(n: int = 6, seed: int = 0, dtype=D64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 3, 3, generator=g, dtype=dtype)


def _linear_critic(w: torch.Tensor, b: float = 0.3):
    return lambda x: x.flatten(1) @ w + b


# --- WGAN-GP -----------------------------------------------------------------------------


def test_gp_linear_critic_equals_closed_form():
    # f(x) = w . x has gradient w everywhere: penalty = (||w|| - 1)^2 exactly
    w = torch.randn(18, dtype=D64, generator=torch.Generator().manual_seed(1))
    gp, norms = L.gradient_penalty(
        _linear_critic(w), _images(), _images(seed=1), return_grad_norm=True
    )
    torch.testing.assert_close(gp, (w.norm() - 1) ** 2)
    torch.testing.assert_close(norms, w.norm().expand(6))
    gp0 = L.gradient_penalty(_linear_critic(w), _images(), _images(seed=1), target=0.0)
    torch.testing.assert_close(gp0, w.norm() ** 2)


def test_gp_is_zero_for_unit_norm_linear_critic():
    w = torch.randn(18, dtype=D64)
    w = w / w.norm()
    gp = L.gradient_penalty(_linear_critic(w), _images(), _images(seed=2))
    assert gp.item() == pytest.approx(0.0, abs=1e-20)


def test_gp_gradient_flows_to_critic_parameters():
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||, only reachable with create_graph=True
    w = torch.randn(18, dtype=D64, requires_grad=True)
    gp = L.gradient_penalty(_linear_critic(w), _images(), _images(seed=3))
    (gw,) = torch.autograd.grad(gp, w)
    wd = w.detach()
    torch.testing.assert_close(gw, 2 * (wd.norm() - 1) * wd / wd.norm())


def test_gp_interpolates_and_quadratic_critic():
    """Nonlinear critic f(x) = 0.5 x^T A x: grad = A x at the recorded interpolates."""
    real, fake = _images(seed=4), _images(seed=5)
    a = torch.randn(18, 18, dtype=D64, generator=torch.Generator().manual_seed(6))
    a = a + a.T
    seen = {}

    def critic(x):
        seen["x"] = x.detach().clone()
        v = x.flatten(1)
        return 0.5 * ((v @ a) * v).sum(dim=1)

    gp = L.gradient_penalty(critic, real, fake, target=1.0)
    x_hat = seen["x"]
    # each interpolate lies on its real-fake segment with one weight per sample
    t = (x_hat - fake).flatten(1) / (real - fake).flatten(1)
    torch.testing.assert_close(t, t[:, :1].expand_as(t))
    assert ((t >= 0) & (t <= 1)).all()
    expected = (((x_hat.flatten(1) @ a).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(gp, expected)


def test_gp_reproducible_with_generator():
    w = torch.randn(18, dtype=D64)

    def critic(x):
        return torch.tanh(x.flatten(1) @ w)

    a = L.gradient_penalty(
        critic, _images(), _images(seed=7), generator=torch.Generator().manual_seed(3)
    )
    b = L.gradient_penalty(
        critic, _images(), _images(seed=7), generator=torch.Generator().manual_seed(3)
    )
    assert a.item() == b.item()


def test_gp_conditional_critic_through_closure():
    # f(x, y) = w_y . x: per-sample gradient norm is ||w_{y_i}||
    w = torch.randn(3, 18, dtype=D64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])

    def critic(x, y):
        return (x.flatten(1) * w[y]).sum(dim=1)

    gp, norms = L.gradient_penalty(
        lambda x: critic(x, labels), _images(), _images(seed=8), return_grad_norm=True
    )
    torch.testing.assert_close(norms, w[labels].norm(dim=1))
    torch.testing.assert_close(gp, ((w[labels].norm(dim=1) - 1) ** 2).mean())


def test_gp_with_module_critic_column_output_and_no_grad_context():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(18, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    real, fake = _images(), _images(seed=9)
    with torch.no_grad():  # grad mode is switched on inside
        gp = L.gradient_penalty(critic, real, fake)
    assert torch.isfinite(gp) and gp.item() >= 0
    gp = L.gradient_penalty(critic, real, fake.requires_grad_(True))
    gp.backward()
    # every weight gets a gradient; the output bias cannot change an input gradient
    for name, p in critic.named_parameters():
        if name == "3.bias":
            assert p.grad is None or p.grad.abs().max() == 0
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert fake.grad is None  # a penalty never reaches the generator


def test_gradcheck_gp_and_r1_wrt_critic_params():
    real, fake = _images(n=4), _images(n=4, seed=10)
    w1 = torch.randn(18, 3, dtype=D64, generator=torch.Generator().manual_seed(2)).requires_grad_(
        True
    )
    w2 = torch.randn(3, dtype=D64, generator=torch.Generator().manual_seed(3)).requires_grad_(True)

    def make(w1, w2):
        return lambda x: torch.tanh(x.flatten(1) @ w1) @ w2

    def gp(w1, w2):
        g = torch.Generator().manual_seed(0)
        return L.gradient_penalty(make(w1, w2), real, fake, generator=g)

    assert torch.autograd.gradcheck(gp, (w1, w2))
    assert torch.autograd.gradcheck(lambda a, b: L.r1_penalty(make(a, b), real), (w1, w2))
    assert torch.autograd.gradcheck(lambda a, b: L.r2_penalty(make(a, b), fake), (w1, w2))


# --- R1 / R2 ------------------------------------------------------------------------------


def test_r1_r2_linear_critic_is_squared_norm():
    w = torch.randn(18, dtype=D64)
    torch.testing.assert_close(L.r1_penalty(_linear_critic(w), _images()), w.norm() ** 2)
    torch.testing.assert_close(L.r2_penalty(_linear_critic(w), _images(seed=1)), w.norm() ** 2)
    _, norms = L.r1_penalty(_linear_critic(w), _images(), return_grad_norm=True)
    torch.testing.assert_close(norms, w.norm().expand(6))


def test_r1_quadratic_critic():
    a = torch.randn(18, 18, dtype=D64)
    x = _images(seed=11)

    def critic(x):
        v = x.flatten(1)
        return 0.5 * ((v @ (a + a.T)) * v).sum(dim=1)

    expected = (x.flatten(1) @ (a + a.T)).pow(2).sum(dim=1).mean()
    torch.testing.assert_close(L.r1_penalty(critic, x), expected)


# --- errors -------------------------------------------------------------------------------


def test_penalty_errors_are_clear():
    x = _images()
    with pytest.raises(ValueError, match="one score per sample"):
        L.r1_penalty(lambda v: v.sum(), x)
    with pytest.raises(RuntimeError, match="does not depend on its input"):
        L.r1_penalty(lambda v: torch.zeros(v.shape[0], dtype=D64), x)
    with pytest.raises(ValueError, match="same shape"):
        L.gradient_penalty(_linear_critic(torch.randn(18, dtype=D64)), x, x[:3])
    with pytest.raises(TypeError, match="floating-point"):
        L.r1_penalty(lambda v: v.flatten(1).sum(1), torch.zeros(2, 3, dtype=torch.uint8))


# --- weight clipping ----------------------------------------------------------------------


def test_clip_weights_bounds_all_parameters_in_place():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    before = [p.detach().clone() for p in net.parameters()]
    ids = [id(p) for p in net.parameters()]
    assert L.clip_weights_(net, 0.05) is net
    for p, old in zip(net.parameters(), before, strict=True):
        assert p.abs().max() <= torch.tensor(0.05)
        torch.testing.assert_close(p.detach(), old.clamp(-0.05, 0.05))
        assert p.requires_grad
    assert ids == [id(p) for p in net.parameters()]
    L.clip_weights_(net)  # default 0.01
    assert max(p.abs().max() for p in net.parameters()) <= torch.tensor(0.01)
    with pytest.raises(ValueError, match="positive"):
        L.clip_weights_(net, 0.0)
    with pytest.raises(TypeError, match="nn.Module"):
        L.clip_weights_([torch.zeros(2)], 0.1)
