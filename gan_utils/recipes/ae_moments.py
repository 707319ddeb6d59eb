"""Conv autoencoder whose codes are pushed towards N(0, I) by latent moment losses (HUJI seed).

The HUJI autoencoder (:class:`~gan_utils.models.autoencoder.ConvAutoencoder`:
2 stride-2 convs and a 10-d code for 28x28 MNIST, 3 convs and a 64-d code from
64x64 on) trained on

    loss = mse(decoder(encoder(x)), x) + moment_weight * moment(z),
    moment(z) = avg_j [ mean_j^2 + (var_j - 1)^2 + (kurt_j - 3)^2 ]

(:func:`gan_utils.losses.latent_moment_loss`: the first, second and fourth
moments of ``N(0, 1)`` per latent axis, over the batch), ``moment_weight = 1``.
Matching them makes ``decoder(z)`` with ``z ~ N(0, I)`` produce digits, which a
plain autoencoder's decoder does not. Images in [0, 1] (sigmoid output), Adam
1e-3, batch 128 (the moments are batch statistics).

The codes start with variances near 1e-4 and Adam grows their scale slowly
(the decoder's BatchNorm makes the reconstruction nearly blind to it): on
offline MNIST the variance term reaches ~1 after 300-400 steps (moment loss
1.4 -> 0.07 in 800 steps, MSE 0.028; measured on CPU).

    python -m gan_utils train ae_moments --dataset mnist --steps 3000 --out out/ae_moments
    python -m gan_utils sample out/ae_moments/checkpoint.pt --n 64 --out ae_samples.npz

``sample`` decodes ``z ~ N(0, I)``; the trainer is :class:`~gan_utils.train.VAETrainer`
in its ``model_kind="ae"`` mode (logged: ``loss``, ``recon``, ``moment``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gan_utils.recipes.base import dataset_image_shape
from gan_utils.recipes.vae import VAERecipe

__all__ = ["RECIPE", "AEMomentsRecipe"]


class AEMomentsRecipe(VAERecipe):
    """The conv autoencoder + latent moment loss; sampling as :class:`VAERecipe` (decode ``z ~ N(0, I)``)."""

    name = "ae_moments"
    description = "conv autoencoder (HUJI) with latent moment losses (mean 0, var 1, kurtosis 3), MNIST"
    trainer_kind = "vae"
    default_dataset = "mnist"
    value_range = "unit"
    image_size = None
    config_defaults = {"model_kind": "ae", "recon_loss": "mse", "moment_weight": 1.0, "lr": 1e-3,
                       "batch_size": 128, "eval_iwae_k": 0, "n_fixed_samples": 36}

    def model_kwargs(self, dataset: Any, **overrides: Any) -> dict[str, Any]:
        c, h, w = dataset_image_shape(dataset)
        if h != w:
            raise ValueError(f"the conv autoencoder takes square images, got {h}x{w}; pass --image-size")
        kwargs = {"image_size": h, "channels": c, "latent_dim": 64 if h >= 64 else 10, "n_layers": None,
                  "base_channels": 16, "upsample": "convtranspose"}
        unknown = sorted(set(overrides) - set(kwargs))
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown} for recipe {self.name!r}; known: {sorted(kwargs)}")
        return {**kwargs, **overrides}

    def build_models(self, **kw: Any) -> dict[str, nn.Module]:
        from gan_utils.models.autoencoder import ConvAutoencoder

        return {"model": ConvAutoencoder(image_size=kw["image_size"], channels=kw["channels"],
                                         latent_dim=kw["latent_dim"], n_layers=kw["n_layers"],
                                         out_activation="sigmoid", base_channels=kw["base_channels"],
                                         upsample=kw["upsample"])}


RECIPE = AEMomentsRecipe()
