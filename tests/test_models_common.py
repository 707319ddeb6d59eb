"""Properties every model must have: gradients everywhere, channels_last, exports (CPU, ~5 s)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest
import torch
from torch import nn

import gan_utils.models as models
from gan_utils.models import (
    FCVAE,
    ConvAutoencoder,
    ConvDecoder,
    ConvDiscriminator,
    ConvVAE,
    DCGANDiscriminator,
    DCGANGenerator,
    FlowVAE,
    PatchDiscriminator,
    SRUNetGenerator,
)

# name -> (factory, input factory); all small so the whole table runs in seconds
CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[], torch.Tensor]]] = {
    "dcgan_g_convtranspose": (lambda: DCGANGenerator(16, 1, 8, 28), lambda: torch.randn(3, 16)),
    "dcgan_g_nearest": (
        lambda: DCGANGenerator(16, 3, 8, 32, upsample="nearest"),
        lambda: torch.randn(3, 16),
    ),
    "dcgan_g_bilinear": (
        lambda: DCGANGenerator(16, 3, 8, 32, upsample="bilinear"),
        lambda: torch.randn(3, 16),
    ),
    "dcgan_d_batch": (lambda: DCGANDiscriminator(3, 8, 32), lambda: torch.randn(3, 3, 32, 32)),
    "dcgan_d_none_sn": (
        lambda: DCGANDiscriminator(1, 8, 28, norm="none", spectral_norm=True),
        lambda: torch.randn(3, 1, 28, 28),
    ),
    "dcgan_d_layer": (
        lambda: DCGANDiscriminator(3, 8, 32, norm="layer"),
        lambda: torch.randn(3, 3, 32, 32),
    ),
    "dcgan_d_instance": (
        lambda: DCGANDiscriminator(3, 8, 32, norm="instance"),
        lambda: torch.randn(3, 3, 32, 32),
    ),
    "fcvae": (lambda: FCVAE(), lambda: torch.rand(3, 1, 28, 28)),
    "convvae_64": (lambda: ConvVAE(64, 3, 16, base_channels=4), lambda: torch.rand(3, 3, 64, 64)),
    "convvae_28": (
        lambda: ConvVAE(28, 1, 8, base_channels=4, upsample="bilinear"),
        lambda: torch.rand(3, 1, 28, 28),
    ),
    "flowvae_planar": (lambda: FlowVAE(flow="planar", n_flows=2), lambda: torch.rand(3, 784)),
    "flowvae_iaf": (
        lambda: FlowVAE(flow="iaf", n_flows=2, flow_hidden=32),
        lambda: torch.rand(3, 784),
    ),
    "autoencoder_28": (
        lambda: ConvAutoencoder(28, 1, 10, n_layers=3),
        lambda: torch.rand(3, 1, 28, 28),
    ),
    "autoencoder_64": (
        lambda: ConvAutoencoder(64, 3, 48, upsample="nearest"),
        lambda: torch.rand(3, 3, 64, 64),
    ),
    "conv_decoder": (
        lambda: ConvDecoder(10, 28, 1, out_activation="tanh"),
        lambda: torch.randn(3, 10),
    ),
    "conv_discriminator_sn": (
        lambda: ConvDiscriminator(28, 1, spectral_norm=True, fc_hidden=16),
        lambda: torch.rand(3, 1, 28, 28),
    ),
    "sr_unet": (lambda: SRUNetGenerator(base=4), lambda: torch.randn(3, 3, 64, 64)),
    "patch_d": (
        lambda: PatchDiscriminator(base=4, final_stride=1),
        lambda: torch.randn(3, 3, 64, 64),
    ),
}


def _outputs(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for t in out if isinstance(t, torch.Tensor) and t.is_floating_point()]


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_reach_every_parameter(name):
    factory, make_input = CASES[name]
    model = factory().train()
    outs = _outputs(model(make_input()))
    # random weights so that no output symmetry (e.g. BN's zero-mean) cancels a gradient
    loss = sum((o * torch.randn_like(o)).sum() for o in outs)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_channels_last_gives_the_same_result(name):
    factory, make_input = CASES[name]
    model = factory().eval()
    x = make_input()
    torch.manual_seed(7)
    ref = _outputs(model(x))
    cl_model = model.to(memory_format=torch.channels_last)
    cl_x = x.to(memory_format=torch.channels_last) if x.dim() == 4 else x
    torch.manual_seed(7)
    got = _outputs(cl_model(cl_x))
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_exports():
    for name in models.__all__:
        assert hasattr(models, name), name
    with pytest.raises(AttributeError):
        models.NoSuchModel  # noqa: B018


@pytest.mark.skipif(
    importlib.util.find_spec("gan_utils.models.cgan") is None, reason="cgan module not present"
)
def test_conditional_models_are_exported_lazily():
    from gan_utils.models import cgan

    assert models.ConditionalGenerator is cgan.ConditionalGenerator
    assert models.ConditionalDiscriminator is cgan.ConditionalDiscriminator
