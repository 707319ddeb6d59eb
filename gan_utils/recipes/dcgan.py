"""DCGAN on STL-10 at 64x64 (Penn seed, Table 2 and its mirrored discriminator).

Batch 128, ``z`` of 100 dimensions, Adam (lr 2e-4, betas (0.5, 0.999)) for both
networks, non-saturating BCE loss, DCGAN initialisation (N(0, 0.02)).

    python -m gan_utils train dcgan --dataset stl10 --steps 20000 --out out/dcgan
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gan_utils.recipes.base import Recipe, dataset_image_shape

__all__ = ["DCGANRecipe", "RECIPE"]


class DCGANRecipe(Recipe):
    name = "dcgan"
    description = "DCGAN 64x64 (Penn Table 2), BCE non-saturating loss, STL-10"
    trainer_kind = "gan"
    default_dataset = "stl10"
    value_range = "tanh"
    image_size = 64
    config_defaults = {
        "loss": "nonsaturating",
        "batch_size": 128,
        "z_dim": 100,
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "betas": (0.5, 0.999),
        "n_critic": 1,
    }
    #: discriminator normalisation; the WGAN-GP recipe turns BatchNorm off
    critic_norm = "batch"

    def model_kwargs(self, dataset: Any, **overrides: Any) -> dict[str, Any]:
        channels, height, width = dataset_image_shape(dataset)
        if height != width:
            raise ValueError(f"DCGAN needs square images, got {height}x{width}")
        kwargs = {"z_dim": 100, "channels": channels, "image_size": height, "width": 128,
                  "upsample": "convtranspose", "norm": self.critic_norm}
        unknown = sorted(set(overrides) - set(kwargs))
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown} for recipe {self.name!r}; known: {sorted(kwargs)}")
        return {**kwargs, **overrides}

    def build_models(self, **kw: Any) -> dict[str, nn.Module]:
        from gan_utils.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init

        generator = DCGANGenerator(z_dim=kw["z_dim"], out_channels=kw["channels"], width=kw["width"],
                                   image_size=kw["image_size"], upsample=kw["upsample"])
        discriminator = DCGANDiscriminator(in_channels=kw["channels"], width=kw["width"],
                                           image_size=kw["image_size"], norm=kw["norm"])
        return {"generator": dcgan_init(generator), "discriminator": dcgan_init(discriminator)}


RECIPE = DCGANRecipe()
