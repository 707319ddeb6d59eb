"""HUJI conv autoencoder / discriminator and the Penn super-resolution models (CPU, ~5 s)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_utils.models import (
    UPSAMPLE_MODES,
    ConvAutoencoder,
    ConvDecoder,
    ConvDiscriminator,
    ConvEncoder,
    PatchDiscriminator,
    SRUNetGenerator,
    reduce_patch_logits,
)

# ---------------------------------------------------------------- HUJI conv autoencoder


def test_encoder_mnist_layout_and_parameter_count():
    enc = ConvEncoder(image_size=28, channels=1, latent_dim=10)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.stride[0]) for m in convs] == [
        (1, 16, 2),
        (16, 32, 2),
    ]
    assert enc.sizes == [28, 14, 7]
    expected = (16 * 1 * 16 + 16) + (16 * 16 * 32 + 32) + (32 * 7 * 7 * 10 + 10)
    assert sum(p.numel() for p in enc.parameters()) == expected


def test_celeba64_has_one_more_layer():
    ae = ConvAutoencoder(image_size=64, channels=3, latent_dim=64, out_activation="tanh")
    convs = [m for m in ae.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [16, 32, 64]
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    recon, z = ae(x)
    assert recon.shape == x.shape and z.shape == (2, 64)
    assert recon.abs().max() <= 1.0


@pytest.mark.parametrize("n_layers", [2, 3])
@pytest.mark.parametrize("mode", UPSAMPLE_MODES)
def test_autoencoder_mnist_shapes(n_layers, mode):
    # 3 layers go 28 -> 14 -> 7 -> 3; the decoder must come back 3 -> 7 -> 14 -> 28
    ae = ConvAutoencoder(image_size=28, channels=1, latent_dim=10, n_layers=n_layers, upsample=mode)
    x = torch.rand(3, 1, 28, 28)
    recon, z = ae(x)
    assert recon.shape == x.shape and z.shape == (3, 10)
    assert 0.0 <= recon.min() and recon.max() <= 1.0
    torch.testing.assert_close(ae.encode(x), z)
    ae.eval()
    torch.testing.assert_close(ae.decode(z), ae(x)[0])


def test_decoder_as_gan_generator():
    G = ConvDecoder(latent_dim=12, image_size=28, channels=1, out_activation="tanh")
    assert G.z_dim == 12
    x = G(G.sample_latent(4))
    assert x.shape == (4, 1, 28, 28) and x.abs().max() <= 1.0 and x.min() < 0
    with pytest.raises(ValueError, match=r"\(N, 12\)"):
        G(torch.randn(4, 10))
    with pytest.raises(ValueError, match="out_activation"):
        ConvDecoder(out_activation="relu")


def test_conv_discriminator_logits_and_errors():
    D = ConvDiscriminator(image_size=28, channels=1)
    x = torch.rand(5, 1, 28, 28)
    assert D(x).shape == (5,)
    torch.testing.assert_close(D.probability(x), torch.sigmoid(D(x)))
    with pytest.raises(
        ValueError, match=r"ConvDiscriminator expects images of shape \(N, 1, 28, 28\)"
    ):
        D(torch.rand(5, 784))
    with pytest.raises(ValueError, match="too small"):
        ConvEncoder(image_size=4, n_layers=3)


def test_conv_discriminator_spectral_norm_bounds_linear_too():
    D = ConvDiscriminator(image_size=28, channels=1, spectral_norm=True, fc_hidden=32).train()
    with torch.no_grad():
        for _ in range(60):  # power iteration converges slowest for the wide linear layer
            D(torch.rand(2, 1, 28, 28))
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 4
    for m in layers:
        w = m.weight.detach()
        assert torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item() == pytest.approx(
            1.0, abs=1e-3
        )


# ---------------------------------------------------------------- super-resolution U-Net


def test_sr_generator_layers_follow_the_seed_table():
    G = SRUNetGenerator()
    enc = [m for m in G.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]) for m in enc] == [
        (c, 4, 2, 1) for c in (32, 64, 128, 256, 512)
    ]
    dec = [m for m in G.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    # inputs: bottleneck, then (up + skip) concatenations
    assert [(m.in_channels, m.out_channels) for m in dec] == [
        (512, 256),
        (512, 128),
        (256, 64),
        (128, 32),
        (64, 16),
    ]
    assert (G.final.in_channels, G.final.out_channels, G.final.kernel_size) == (16 + 3, 3, (3, 3))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 10


def test_sr_generator_maps_64_to_64_through_every_resolution():
    G = SRUNetGenerator(base=8)
    sides = []
    for block in [*G.encoder, *G.decoder]:
        block.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1]))
    y = G(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1.0
    assert sides == [32, 16, 8, 4, 2, 4, 8, 16, 32, 64]


def test_sr_generator_concatenates_skips_and_input():
    G = SRUNetGenerator(base=8)
    enc_out, dec_in = [], []
    for block in G.encoder:
        block.register_forward_hook(lambda m, i, o: enc_out.append(o.detach()))
    for block in [*G.decoder, G.final]:
        block.register_forward_hook(lambda m, i, o: dec_in.append(i[0].detach()))
    x = torch.randn(2, 3, 64, 64)
    G(x)
    # decoder stage k+1 (and the final conv) sees [upsampled, skip]; the skip is the matching encoder map
    skips = [*enc_out[-2::-1], x]
    for seen, skip in zip(dec_in[1:], skips, strict=True):
        torch.testing.assert_close(seen[:, -skip.shape[1] :], skip, rtol=0, atol=0)


def test_sr_generator_last_layer_sees_the_input_image():
    # Silence everything but the final conv: the output is then a 3x3 conv of the input alone.
    G = SRUNetGenerator(base=8)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if not name.startswith("final."):
                p.zero_()
    x = torch.randn(2, 3, 64, 64)
    w, b = G.final.weight, G.final.bias
    expected = torch.tanh(F.conv2d(x, w[:, -3:], b, padding=1))
    torch.testing.assert_close(G(x), expected)
    x2 = x.clone()
    x2[0, 1, 10, 20] += 1.0  # a pixel change reaches the output only through the concatenated input
    diff = (G(x2) - G(x)).abs()[0].amax(0)
    assert diff[10, 20] > 0 and diff[9:12, 19:22].count_nonzero() == 9 and diff.count_nonzero() == 9


def test_sr_generator_bad_inputs():
    G = SRUNetGenerator(base=8)
    with pytest.raises(ValueError, match=r"divisible by 32.*\(N, 3, 64, 64\)"):
        G(torch.randn(1, 3, 60, 60))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        G(torch.randn(1, 1, 64, 64))


# ---------------------------------------------------------------- patch discriminator


def test_patch_discriminator_follows_the_seed_table():
    D = PatchDiscriminator()
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs] == [
        (32, 4, 2),
        (64, 4, 2),
        (128, 4, 2),
        (256, 4, 2),
        (512, 4, 2),
        (1, 3, 2),
    ]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 5


@pytest.mark.parametrize(
    "kwargs, side", [({}, 1), ({"final_stride": 1}, 2), ({"n_layers": 3, "final_stride": 1}, 8)]
)
def test_patch_discriminator_map_sizes(kwargs, side):
    D = PatchDiscriminator(base=8, **kwargs)
    logits = D(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 1, side, side)
    torch.testing.assert_close(reduce_patch_logits(logits), logits.mean(dim=(1, 2, 3)))


def test_patch_discriminator_reduce_and_pairs():
    D = PatchDiscriminator(in_channels=6, base=8, n_layers=3, final_stride=1, reduce=True).eval()
    pair = torch.randn(2, 6, 64, 64)
    assert D(pair).shape == (2,)
    torch.testing.assert_close(D.probability(pair), torch.sigmoid(D(pair)))
    with pytest.raises(ValueError, match=r"\(N, 6, H, W\)"):
        D(torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match="at least 8x8"):
        D(torch.randn(2, 6, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, 1, h, w\)"):
        reduce_patch_logits(torch.randn(2, 3))
