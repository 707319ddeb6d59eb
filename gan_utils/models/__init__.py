"""Models of the course kit.

Generators map ``z (N, z_dim)`` to images in ``[-1, 1]`` (tanh); VAEs and
autoencoders decode to ``[0, 1]`` (sigmoid) unless told otherwise;
discriminators return raw logits of shape ``(N,)`` (``PatchDiscriminator``:
``(N, 1, h, w)`` unless ``reduce=True``).

============================  ===============================================
module                        contents
============================  ===============================================
``dcgan``                     ``DCGANGenerator``, ``DCGANDiscriminator``, ``dcgan_init`` (Penn Table 2)
``upsample``                  ``UpsampleBlock``: convtranspose / nearest / bilinear x2
``vae``                       ``FCVAE`` (Penn Table 1), ``ConvVAE``
``flows``                     ``PlanarFlow``, ``IAF``, ``FlowSequence``, ``FlowVAE``
``autoencoder``               ``ConvEncoder``, ``ConvDecoder``, ``ConvAutoencoder``, ``ConvDiscriminator`` (HUJI)
``sr``                        ``SRUNetGenerator``, ``PatchDiscriminator`` (Penn super-resolution)
``layers``                    norms, ``apply_spectral_norm``, input checks
``cgan``                      conditional GAN (imported on its own: ``gan_utils.models.cgan``)
============================  ===============================================
"""

from gan_utils.models.autoencoder import (
    ConvAutoencoder,
    ConvDecoder,
    ConvDiscriminator,
    ConvEncoder,
)
from gan_utils.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init
from gan_utils.models.flows import (
    IAF,
    FlowSequence,
    FlowVAE,
    FlowVAEOutput,
    MaskedLinear,
    PlanarFlow,
)
from gan_utils.models.layers import apply_spectral_norm, make_norm
from gan_utils.models.sr import PatchDiscriminator, SRUNetGenerator, reduce_patch_logits
from gan_utils.models.upsample import UPSAMPLE_MODES, UpsampleBlock
from gan_utils.models.vae import FCVAE, ConvVAE, reparameterize

__all__ = [
    "DCGANGenerator",
    "DCGANDiscriminator",
    "dcgan_init",
    "UpsampleBlock",
    "UPSAMPLE_MODES",
    "FCVAE",
    "ConvVAE",
    "reparameterize",
    "PlanarFlow",
    "MaskedLinear",
    "IAF",
    "FlowSequence",
    "FlowVAE",
    "FlowVAEOutput",
    "ConvEncoder",
    "ConvDecoder",
    "ConvAutoencoder",
    "ConvDiscriminator",
    "SRUNetGenerator",
    "PatchDiscriminator",
    "reduce_patch_logits",
    "apply_spectral_norm",
    "make_norm",
]

_LAZY_CGAN = ("ConditionalGenerator", "ConditionalDiscriminator")


def __getattr__(name: str) -> object:
    # The conditional models live in their own module; load it only when asked for.
    if name in _LAZY_CGAN:
        import importlib

        return getattr(importlib.import_module("gan_utils.models.cgan"), name)
    raise AttributeError(f"module 'gan_utils.models' has no attribute {name!r}")
