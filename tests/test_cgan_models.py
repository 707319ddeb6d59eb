"""Conditional generator / projection discriminator for MNIST (budget: < 10 s on CPU)."""

from __future__ import annotations

import pytest
import torch

from gan_utils.models.cgan import (
    ConditionalBatchNorm2d,
    ConditionalDiscriminator,
    ConditionalGenerator,
    check_labels,
    cycling_labels,
)

Z_DIM = 16


@pytest.fixture
def nets():
    torch.manual_seed(0)
    return ConditionalGenerator(z_dim=Z_DIM, base_channels=8), ConditionalDiscriminator(base_channels=8)


def test_shapes_range_and_attributes(nets):
    G, D = nets
    z, y = torch.randn(6, Z_DIM), torch.tensor([0, 1, 2, 7, 8, 9])
    x = G(z, y)
    assert x.shape == (6, 1, 28, 28)
    assert x.dtype == torch.float32
    assert float(x.detach().min()) >= -1.0 and float(x.detach().max()) <= 1.0
    logits = D(x, y)
    assert logits.shape == (6,)
    assert G.num_classes == D.num_classes == 10
    assert G.z_dim == Z_DIM


def test_generator_output_depends_on_the_label(nets):
    G, _ = nets
    G.eval()  # per-sample outputs, no batch statistics
    z = torch.randn(1, Z_DIM).repeat(10, 1)
    with torch.no_grad():
        x = G(z, torch.arange(10))
    # same noise, ten labels: every pair of images differs
    diffs = (x[:, None] - x[None]).abs().flatten(2).amax(-1)
    off_diag = diffs[~torch.eye(10, dtype=torch.bool)]
    assert float(off_diag.min()) > 1e-4
    # and the label path is used by a trained-like generator too: perturb only the label embedding
    with torch.no_grad():
        G.embed.weight.zero_()
        G.bn0.gamma.weight.zero_()
        G.bn0.beta.weight.zero_()
        G.bn1.gamma.weight.zero_()
        G.bn1.beta.weight.zero_()
    x0 = G(z, torch.arange(10))
    assert torch.allclose(x0, x0[:1].expand_as(x0), atol=1e-6)  # all label paths off -> label ignored


def test_class_conditional_batch_norm_uses_the_label():
    cbn = ConditionalBatchNorm2d(4, num_classes=3)
    with torch.no_grad():
        cbn.gamma.weight.copy_(torch.tensor([[0.0] * 4, [1.0] * 4, [-0.5] * 4]))
        cbn.beta.weight.copy_(torch.tensor([[0.0] * 4, [2.0] * 4, [0.0] * 4]))
    x = torch.randn(5, 4, 3, 3)
    normed = torch.nn.functional.batch_norm(x, None, None, training=True)
    out = cbn(x, torch.tensor([0, 1, 2, 1, 0]))
    torch.testing.assert_close(out[0], normed[0])
    torch.testing.assert_close(out[1], 2.0 * normed[1] + 2.0)
    torch.testing.assert_close(out[2], 0.5 * normed[2])


def test_discriminator_depends_on_the_label(nets):
    _, D = nets
    x = torch.rand(1, 1, 28, 28).mul(2).sub(1).repeat(10, 1, 1, 1)
    logits = D(x, torch.arange(10))
    assert logits.unique().numel() == 10
    # the projection term is exactly <embed(y), phi(x)>
    h = D.features(x[:1])
    expected = D.linear(h).squeeze(1) + h @ D.embed.weight.T
    torch.testing.assert_close(logits, expected.squeeze(0), rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_parameter(nets):
    G, D = nets
    y = torch.arange(10)
    D(G(torch.randn(10, Z_DIM), y), y).mean().backward()
    for name, net in (("G", G), ("D", D)):
        for pname, p in net.named_parameters():
            assert p.grad is not None, f"{name}.{pname} got no gradient"
            assert float(p.grad.abs().sum()) > 0, f"{name}.{pname} got a zero gradient"


def test_spectral_norm_variant_runs():
    D = ConditionalDiscriminator(base_channels=8, spectral_norm=True)
    y = torch.arange(4)
    out = D(torch.zeros(4, 1, 28, 28), y)
    assert out.shape == (4,)
    assert any("parametrizations" in n for n, _ in D.named_parameters())


@pytest.mark.parametrize(
    "labels,err,match",
    [
        (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "integer tensor"),
        (torch.zeros(4, 1, dtype=torch.long), ValueError, r"shape \(N,\)"),
        (torch.zeros(3, dtype=torch.long), ValueError, "expected 4 labels"),
        (torch.tensor([0, 1, 2, 10]), ValueError, r"\[0, 9\].*\[0, 10\]"),
        (torch.tensor([-1, 1, 2, 3]), ValueError, r"\[0, 9\]"),
        ([0, 1, 2, 3], TypeError, "torch.Tensor"),
    ],
)
def test_bad_labels_are_explained(nets, labels, err, match):
    G, D = nets
    with pytest.raises(err, match=match):
        G(torch.randn(4, Z_DIM), labels)
    with pytest.raises(err, match=match):
        D(torch.zeros(4, 1, 28, 28), labels)


def test_bad_inputs_are_explained(nets):
    G, D = nets
    y = torch.arange(4)
    with pytest.raises(ValueError, match=rf"z of shape \(N, {Z_DIM}\), got \(4, 3\)"):
        G(torch.randn(4, 3), y)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\), got \(4, 784\)"):
        D(torch.zeros(4, 784), y)
    with pytest.raises(ValueError, match="z_dim"):
        ConditionalGenerator(z_dim=0)


def test_helpers():
    assert cycling_labels(12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    y = torch.tensor([1, 2])
    assert check_labels(y, 3) is y
    G = ConditionalGenerator(z_dim=Z_DIM, base_channels=8).eval()
    out = G.sample(torch.tensor([3, 4, 5]), generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 28, 28)


def test_auxiliary_classifier_head():
    D = ConditionalDiscriminator(base_channels=4, auxiliary_classifier=True)
    x = torch.zeros(3, 1, 28, 28)
    assert D.classify(x).shape == (3, 10)
    with pytest.raises(RuntimeError, match="auxiliary_classifier=True"):
        ConditionalDiscriminator(base_channels=4).classify(x)
