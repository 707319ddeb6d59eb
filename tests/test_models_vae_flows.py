"""VAEs (Penn Table 1, conv VAE) and normalizing flows (CPU, ~5 s)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.autograd.functional import jacobian

from gan_utils.models import (
    FCVAE,
    IAF,
    UPSAMPLE_MODES,
    ConvVAE,
    FlowSequence,
    FlowVAE,
    PlanarFlow,
    reparameterize,
)

# ---------------------------------------------------------------- FC VAE (Table 1)


def test_fcvae_matches_table1():
    vae = FCVAE()
    spec = [(784, 400), (400, 20), (400, 20), (20, 400), (400, 784)]  # FC1, FC2a, FC2b, FC3, FC4
    linears = [m for m in vae.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == spec
    expected = sum(i * o + o for i, o in spec)
    assert expected == 652_824
    assert sum(p.numel() for p in vae.parameters()) == expected


@pytest.mark.parametrize("shape", [(4, 784), (4, 1, 28, 28)])
def test_fcvae_forward_shapes_and_ranges(shape):
    vae = FCVAE()
    x = torch.rand(shape)
    recon, mu, logvar = vae(x)
    assert recon.shape == x.shape and mu.shape == (4, 20) and logvar.shape == (4, 20)
    assert 0.0 <= recon.min() and recon.max() <= 1.0
    torch.manual_seed(5)
    logits, _, _ = vae(x, return_logits=True)
    torch.manual_seed(5)
    probs, _, _ = vae(x)
    torch.testing.assert_close(torch.sigmoid(logits), probs)
    assert vae.sample(6).shape == (6, 1, 28, 28)


def test_fcvae_encode_has_no_relu_on_heads():
    # A ReLU on (mu, logvar) would forbid negative means and variances below 1.
    vae = FCVAE()
    with torch.no_grad():
        vae.fc_mu.bias.fill_(-3.0)
        vae.fc_logvar.bias.fill_(-3.0)
    mu, logvar = vae.encode(torch.zeros(2, 784))
    assert (mu < 0).all() and (logvar < 0).all()


def test_fcvae_decode_accepts_importance_samples():
    vae = FCVAE()
    mu, logvar = vae.encode(torch.rand(3, 784))
    z = vae.reparameterize(mu, logvar, n_samples=5)
    assert z.shape == (5, 3, 20)
    assert vae.decode_logits(z).shape == (5, 3, 1, 28, 28)
    torch.testing.assert_close(vae.decode(z), torch.sigmoid(vae.decode_logits(z)))


def test_fcvae_bad_inputs():
    vae = FCVAE()
    with pytest.raises(ValueError, match=r"\(N, 784\).*\(2, 700\)"):
        vae(torch.rand(2, 700))
    with pytest.raises(ValueError, match=r"\(N, 20\)"):
        vae.decode(torch.randn(2, 19))
    with pytest.raises(ValueError, match="in_features"):
        FCVAE(image_shape=(1, 28, 27))


def test_reparameterize_moments_and_gradients():
    mu = torch.full((2, 3), 2.0, requires_grad=True)
    logvar = torch.full((2, 3), math.log(0.25), requires_grad=True)
    z = reparameterize(mu, logvar, n_samples=20_000)
    assert z.shape == (20_000, 2, 3)
    assert z.mean().item() == pytest.approx(2.0, abs=0.01)
    assert z.std().item() == pytest.approx(0.5, abs=0.01)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.full((2, 3), 20_000.0))
    # d z / d logvar = eps * std / 2 = (z - mu) / 2
    torch.testing.assert_close(logvar.grad, ((z.detach() - 2.0) / 2).sum(0), rtol=1e-4, atol=1e-2)
    single = reparameterize(torch.full((20_000, 2), -1.0), torch.full((20_000, 2), math.log(4.0)))
    assert single.shape == (20_000, 2)
    assert single.mean().item() == pytest.approx(-1.0, abs=0.04)
    assert single.std().item() == pytest.approx(2.0, abs=0.04)


# ---------------------------------------------------------------- conv VAE


@pytest.mark.parametrize("mode", UPSAMPLE_MODES)
def test_convvae_64_rgb_shapes(mode):
    vae = ConvVAE(image_size=64, channels=3, latent_dim=32, base_channels=8, upsample=mode)
    x = torch.rand(2, 3, 64, 64)
    recon, mu, logvar = vae(x)
    assert recon.shape == x.shape and mu.shape == (2, 32) and logvar.shape == (2, 32)
    assert 0.0 <= recon.min() and recon.max() <= 1.0
    assert vae.decode_logits(torch.randn(4, 2, 32)).shape == (4, 2, 3, 64, 64)
    assert vae.sample(3).shape == (3, 3, 64, 64)


def test_convvae_28_mnist_and_errors():
    vae = ConvVAE(image_size=28, channels=1, latent_dim=8, base_channels=8)
    assert vae.encoder.sizes == [28, 14, 7]
    recon, _, _ = vae(torch.rand(2, 1, 28, 28))
    assert recon.shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        vae(torch.rand(2, 3, 28, 28))


# ---------------------------------------------------------------- flows: log-dets against autograd


def _check_log_det(
    layer: nn.Module, z: torch.Tensor, context: torch.Tensor | None = None
) -> torch.Tensor:
    def fn(v, i=None):
        return layer(v, context if context is None else context[i : i + 1])

    jacs = torch.stack(
        [jacobian(lambda v, i=i: fn(v.unsqueeze(0), i)[0][0], z[i]) for i in range(z.shape[0])]
    )
    sign, logabs = torch.linalg.slogdet(jacs)
    _, log_det = layer(z, context)
    assert log_det.shape == (z.shape[0],)
    assert (sign > 0).all()  # orientation-preserving, hence invertible
    torch.testing.assert_close(log_det, logabs, rtol=1e-9, atol=1e-9)
    return jacs


@pytest.mark.parametrize("wu", [-8.0, 0.3, 5.0])
def test_planar_log_det_matches_autograd_jacobian(wu):
    torch.manual_seed(2)
    flow = PlanarFlow(4).double()
    with torch.no_grad():
        flow.w.copy_(torch.randn(4, dtype=torch.float64))
        u = torch.randn(4, dtype=torch.float64)
        u += (wu - flow.w @ u) / (flow.w @ flow.w) * flow.w  # make w.u = wu exactly
        flow.u.copy_(u)
        flow.b.fill_(0.4)
    _check_log_det(flow, torch.randn(6, 4, dtype=torch.float64) * 2)


@pytest.mark.parametrize("wu", [-10.0, -1.0, 0.0, 2.5, 10.0])
def test_planar_constraint_keeps_w_dot_u_hat_above_minus_one(wu):
    flow = PlanarFlow(3).double()
    w = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    u0 = torch.tensor([0.5, -0.3, 2.0], dtype=torch.float64)
    u0 = u0 - (u0 @ w) / (w @ w) * w  # orthogonal to w
    with torch.no_grad():
        flow.w.copy_(w)
        flow.u.copy_(u0 + wu / (w @ w) * w)  # w.u = wu
    u_hat = flow.u_hat()
    w_dot = (w @ u_hat).item()
    assert w_dot == pytest.approx(-1.0 + math.log1p(math.exp(wu)), rel=1e-9, abs=1e-12)
    assert w_dot > -1.0
    # only the component along w changes
    torch.testing.assert_close(u_hat - (u_hat @ w) / (w @ w) * w, u0)


def _randomise_iaf(layer: IAF) -> IAF:
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, 0.7)
    return layer


@pytest.mark.parametrize("reverse", [False, True])
def test_iaf_jacobian_is_triangular_and_log_det_matches(reverse):
    torch.manual_seed(4)
    layer = _randomise_iaf(
        IAF(5, hidden=16, context_dim=3, n_hidden_layers=2, reverse=reverse)
    ).double()
    z = torch.randn(4, 5, dtype=torch.float64)
    ctx = torch.randn(4, 3, dtype=torch.float64)
    jacs = _check_log_det(layer, z, ctx)
    strictly_upper = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
    zero_part = strictly_upper.T if reverse else strictly_upper
    assert torch.count_nonzero(jacs[:, zero_part]) == 0
    assert torch.count_nonzero(jacs[:, ~zero_part]).item() > 0.8 * (~zero_part).sum().item() * 4
    # the diagonal is sigma = exp(log_det terms): the sum of its logs is the log-det
    torch.testing.assert_close(jacs.diagonal(dim1=1, dim2=2).log().sum(1), layer(z, ctx)[1])


def test_iaf_context_changes_output_and_is_required():
    layer = _randomise_iaf(IAF(3, hidden=8, context_dim=2))
    z = torch.randn(2, 3)
    a, _ = layer(z, torch.zeros(2, 2))
    b, _ = layer(z, torch.ones(2, 2))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match=r"context of shape \(2, 2\)"):
        layer(z)


def test_flow_sequence_log_det_sums_layers():
    torch.manual_seed(6)
    layers = [
        PlanarFlow(3),
        _randomise_iaf(IAF(3, hidden=8)),
        PlanarFlow(3),
        _randomise_iaf(IAF(3, hidden=8, reverse=True)),
    ]
    flow = FlowSequence(layers).double()
    with torch.no_grad():
        for layer in flow.layers:
            if isinstance(layer, PlanarFlow):
                layer.u.normal_()
                layer.w.normal_()
    _check_log_det(flow, torch.randn(5, 3, dtype=torch.float64))
    z = torch.randn(4, 3)
    out, log_det = FlowSequence([])(z)
    assert torch.equal(out, z) and torch.equal(log_det, torch.zeros(4))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        flow(torch.randn(4, 5, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_flow_vae_outputs(kind):
    vae = FlowVAE(flow=kind, n_flows=3)
    x = torch.rand(5, 1, 28, 28)
    out = vae(x)
    assert out.recon_logits.shape == x.shape
    for t in (out.mu, out.logvar, out.z0, out.zk):
        assert t.shape == (5, 20)
    assert out.sum_log_det.shape == (5,)
    assert not torch.allclose(out.z0, out.zk)
    # z0 really is the posterior sample: recompute it from the same noise
    torch.manual_seed(11)
    first = vae(x)
    torch.manual_seed(11)
    mu, logvar = vae.vae.encode(x)
    torch.testing.assert_close(first.z0, reparameterize(mu, logvar))
    recon_logits, mu, logvar, z0, zk, sum_log_det = first  # plain tuple unpacking works too
    torch.testing.assert_close(recon_logits, vae.vae.decode_logits(zk).reshape(x.shape))
    assert vae.sample(2).shape == (2, 1, 28, 28)


def test_flow_vae_without_flows_is_the_plain_vae():
    vae = FlowVAE(flow="planar", n_flows=0)
    out = vae(torch.rand(3, 784))
    assert torch.equal(out.z0, out.zk) and torch.equal(out.sum_log_det, torch.zeros(3))
    with pytest.raises(ValueError, match="flow"):
        FlowVAE(flow="radial")
