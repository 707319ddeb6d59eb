"""DCGAN generator / discriminator, upsampling blocks, spectral norm and init (CPU, ~5 s)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gan_utils.models import (
    UPSAMPLE_MODES,
    DCGANDiscriminator,
    DCGANGenerator,
    UpsampleBlock,
    dcgan_init,
)


def _convs(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- Table 2 structure and counts

TABLE2 = [  # (in, out, kernel, stride, padding, followed by BN)
    (100, 1024, 4, 1, 0, True),
    (1024, 512, 4, 2, 1, True),
    (512, 256, 4, 2, 1, True),
    (256, 128, 4, 2, 1, True),
    (128, 3, 4, 2, 1, False),
]


def test_generator_matches_table2_layer_by_layer():
    G = DCGANGenerator()
    layers = _convs(G, nn.ConvTranspose2d)
    got = [
        (m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]) for m in layers
    ]
    assert got == [row[:5] for row in TABLE2]
    assert [m.num_features for m in _convs(G, nn.BatchNorm2d)] == [
        row[1] for row in TABLE2 if row[5]
    ]
    assert isinstance(list(G.net)[-1], nn.Tanh)


def test_generator_parameter_count_table2():
    # k*k*cin*cout weights; BN layers add (gamma, beta); only the last conv keeps its bias.
    expected = sum(
        k * k * cin * cout + (2 * cout if bn else cout) for cin, cout, k, _, _, bn in TABLE2
    )
    assert expected == 12_658_435
    assert _n_params(DCGANGenerator()) == expected


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_discriminator_mirror_parameter_count(norm):
    spec = [
        (3, 128, 4, False),
        (128, 256, 4, True),
        (256, 512, 4, True),
        (512, 1024, 4, True),
        (1024, 1, 4, False),
    ]
    expected = 0
    for cin, cout, k, normed in spec:
        expected += k * k * cin * cout
        expected += 2 * cout if (normed and norm == "batch") else cout  # BN affine, else conv bias
    D = DCGANDiscriminator(norm=norm)
    assert _n_params(D) == expected
    got = [(m.in_channels, m.out_channels, m.stride[0]) for m in _convs(D, nn.Conv2d)]
    assert got == [(3, 128, 2), (128, 256, 2), (256, 512, 2), (512, 1024, 2), (1024, 1, 1)]
    leaky = [m for m in D.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 4 and all(m.negative_slope == 0.2 for m in leaky)
    assert (len(_convs(D, nn.BatchNorm2d)) == 3) == (norm == "batch")


def test_generator_resolution_ladder_at_64():
    G = DCGANGenerator(width=8)
    shapes = []
    for bn in _convs(G, nn.BatchNorm2d):
        bn.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    G(torch.randn(2, 100))
    assert shapes == [(64, 4, 4), (32, 8, 8), (16, 16, 16), (8, 32, 32)]


def test_mnist_variant_7_14_28():
    G = DCGANGenerator(z_dim=64, out_channels=1, width=32, image_size=28)
    first = _convs(G, nn.ConvTranspose2d)[0]
    assert (first.in_channels, first.out_channels, first.kernel_size, first.padding) == (
        64,
        64,
        (7, 7),
        (0, 0),
    )
    shapes = []
    for bn in _convs(G, nn.BatchNorm2d):
        bn.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    x = G(torch.randn(3, 64))
    assert shapes == [(64, 7, 7), (32, 14, 14)] and x.shape == (3, 1, 28, 28)
    D = DCGANDiscriminator(in_channels=1, width=32, image_size=28)
    assert _convs(D, nn.Conv2d)[-1].kernel_size == (7, 7)
    assert D(x).shape == (3,)


@pytest.mark.parametrize("image_size", [28, 32, 64])
@pytest.mark.parametrize("mode", UPSAMPLE_MODES)
def test_generator_shapes_every_upsample_mode(image_size, mode):
    G = DCGANGenerator(z_dim=16, out_channels=3, width=8, image_size=image_size, upsample=mode)
    x = G(torch.randn(2, 16))
    assert x.shape == (2, 3, image_size, image_size)
    assert x.abs().max() <= 1.0
    assert all(b.mode == mode for b in G.modules() if isinstance(b, UpsampleBlock))


def test_generator_accepts_4d_latent_and_rejects_bad_shapes():
    G = DCGANGenerator(z_dim=10, width=8, image_size=16).eval()
    z = torch.randn(3, 10)
    torch.testing.assert_close(G(z), G(z[:, :, None, None]))
    for bad in (
        torch.randn(3, 12),
        torch.randn(3, 10, 1),
        torch.randn(10),
        torch.randn(3, 10, 2, 2),
    ):
        with pytest.raises(ValueError, match=r"\(N, 10\)"):
            G(bad)


def test_discriminator_output_logits_and_probability():
    D = DCGANDiscriminator(width=8).eval()
    x = torch.randn(4, 3, 64, 64)
    logits = D(x)
    assert logits.shape == (4,)
    torch.testing.assert_close(D.probability(x), torch.sigmoid(logits))
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\).*\(4, 3, 32, 32\)"):
        D(torch.randn(4, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        D(torch.randn(4, 1, 64, 64))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="image_size"):
        DCGANGenerator(image_size=48)
    with pytest.raises(ValueError, match="upsample"):
        DCGANGenerator(upsample="pixelshuffle")
    with pytest.raises(ValueError, match="norm"):
        DCGANDiscriminator(norm="weird")


@pytest.mark.parametrize("norm", ["none", "layer", "instance"])
def test_critic_norms_are_per_sample(norm):
    # A WGAN-GP critic must score each sample independently of the rest of the batch.
    D = DCGANDiscriminator(width=8, image_size=32, norm=norm).train()
    assert not _convs(D, nn.BatchNorm2d)
    x = torch.randn(5, 3, 32, 32)
    torch.testing.assert_close(D(x)[:2], D(x[:2]))


def test_batchnorm_discriminator_mixes_batch_in_train_mode():
    D = DCGANDiscriminator(width=8, image_size=32, norm="batch").train()
    x = torch.randn(5, 3, 32, 32)
    assert not torch.allclose(D(x)[:2], D(x[:2]))


# ---------------------------------------------------------------- spectral norm


def _sigma(layer: nn.Module) -> float:
    w = layer.weight  # the parametrised (normalised) weight
    return torch.linalg.matrix_norm(w.detach().reshape(w.shape[0], -1), ord=2).item()


def test_spectral_norm_bounds_largest_singular_value():
    D = DCGANDiscriminator(width=8, image_size=16, norm="none", spectral_norm=True).train()
    convs = _convs(D, nn.Conv2d)
    assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs)
    raw = [
        torch.linalg.matrix_norm(
            m.parametrizations.weight.original.reshape(m.out_channels, -1), ord=2
        )
        for m in convs
    ]
    assert any(abs(r.item() - 1) > 0.05 for r in raw)  # the normalisation is doing something
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        for _ in range(40):  # one power iteration per training-mode forward
            D(x)
    for m in convs:
        assert _sigma(m) == pytest.approx(1.0, abs=1e-3)


def test_dcgan_init_rewarms_spectral_norm():
    D = dcgan_init(
        DCGANDiscriminator(width=8, image_size=32, norm="none", spectral_norm=True)
    ).eval()
    for m in _convs(D, nn.Conv2d):
        assert m.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.2)
        assert _sigma(m) == pytest.approx(1.0, abs=2e-2)


# ---------------------------------------------------------------- dcgan_init


def test_dcgan_init_statistics():
    torch.manual_seed(1)
    G = dcgan_init(DCGANGenerator(width=64))
    D = dcgan_init(DCGANDiscriminator(width=64))
    for model in (G, D):
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                w = m.weight.detach()
                assert abs(w.std().item() - 0.02) < 0.002, m
                assert abs(w.mean().item()) < 0.002, m
                if m.bias is not None:
                    assert torch.count_nonzero(m.bias) == 0
            elif isinstance(m, nn.BatchNorm2d):
                assert abs(m.weight.mean().item() - 1.0) < 0.01
                assert 0.01 < m.weight.std().item() < 0.03
                assert torch.count_nonzero(m.bias) == 0
    assert G.apply(dcgan_init) is G


# ---------------------------------------------------------------- upsampling blocks


@pytest.mark.parametrize("mode", UPSAMPLE_MODES)
@pytest.mark.parametrize("output_padding", [0, 1])
def test_upsample_block_shapes(mode, output_padding):
    block = UpsampleBlock(6, 4, mode=mode, output_padding=output_padding)
    assert block(torch.randn(2, 6, 5, 7)).shape == (2, 4, 10 + output_padding, 14 + output_padding)


def _identity_conv(block: UpsampleBlock) -> None:
    with torch.no_grad():
        block.conv.weight.zero_()
        block.conv.weight[0, 0, 1, 1] = 1.0
        block.conv.bias.zero_()


def test_nearest_mode_copies_each_pixel_to_a_2x2_block():
    block = UpsampleBlock(1, 1, mode="nearest")
    _identity_conv(block)
    x = torch.randn(1, 1, 3, 4)
    expected = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(block(x), expected)


def _bilinear_1d(v: np.ndarray) -> np.ndarray:
    # align_corners=False, factor 2: out[2i] = .25 v[i-1] + .75 v[i], out[2i+1] = .75 v[i] + .25 v[i+1]
    left, right = np.r_[v[0], v[:-1]], np.r_[v[1:], v[-1]]
    out = np.empty(2 * len(v))
    out[0::2], out[1::2] = 0.25 * left + 0.75 * v, 0.75 * v + 0.25 * right
    return out


def test_bilinear_mode_interpolates():
    block = UpsampleBlock(1, 1, mode="bilinear").double()
    _identity_conv(block)
    x = torch.randn(1, 1, 4, 5, dtype=torch.float64)
    rows = np.stack([_bilinear_1d(r) for r in x[0, 0].numpy()])
    expected = np.stack([_bilinear_1d(c) for c in rows.T]).T
    np.testing.assert_allclose(block(x)[0, 0].detach().numpy(), expected, atol=1e-12)


def test_convtranspose_impulse_footprint_is_4x4():
    block = UpsampleBlock(1, 1, mode="convtranspose")
    with torch.no_grad():
        block.conv.weight.uniform_(0.5, 1.0)
        block.conv.bias.zero_()
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, 2, 3] = 1.0
    nz = block(x)[0, 0].abs() > 0
    expected = torch.zeros(12, 12, dtype=torch.bool)
    expected[3:7, 5:9] = True  # rows 2i-1 .. 2i+2, cols 2j-1 .. 2j+2
    assert torch.equal(nz, expected)


def test_constant_input_checkerboard_only_for_convtranspose():
    torch.manual_seed(3)
    x = torch.ones(1, 4, 8, 8)
    outs = {m: UpsampleBlock(4, 1, mode=m)(x)[0, 0, 2:-2, 2:-2].detach() for m in UPSAMPLE_MODES}
    for mode in ("nearest", "bilinear"):
        assert outs[mode].std() < 1e-5  # one kernel everywhere: a flat map stays flat
    ct = outs["convtranspose"]
    assert ct.std() > 1e-3  # even and odd output positions use different kernel taps
    torch.testing.assert_close(ct[:-2, :-2], ct[2:, 2:])  # ... with period 2
