"""WGAN-GP with the DCGAN architecture: critic without BatchNorm, gradient penalty 10.

Five critic steps per generator step, Adam (lr 1e-4, betas (0.0, 0.9)) as in
Gulrajani et al. The default data is MNIST at its native 28x28 (the Aalto home
assignment); ``--dataset stl10 --image-size 64`` gives the STL-10 variant.

    python -m gan_utils train wgan_gp --dataset mnist --steps 5000 --out out/wgan_gp
"""

from __future__ import annotations

from typing import Any

from gan_utils.recipes.dcgan import DCGANRecipe

__all__ = ["RECIPE", "WGANGPRecipe"]


class WGANGPRecipe(DCGANRecipe):
    name = "wgan_gp"
    description = "WGAN-GP (critic without BatchNorm, GP 10, 5 critic steps), DCGAN layers, MNIST"
    default_dataset = "mnist"
    image_size = None
    config_defaults = {
        "loss": "wgan",
        "gp_weight": 10.0,
        "n_critic": 5,
        "batch_size": 64,
        "z_dim": 100,
        "lr_g": 1e-4,
        "lr_d": 1e-4,
        "betas": (0.0, 0.9),
    }
    # per-sample gradient penalties need a critic that does not mix the batch
    critic_norm = "none"

    def model_kwargs(self, dataset: Any, **overrides: Any) -> dict[str, Any]:
        return super().model_kwargs(dataset, **{"width": 64, **overrides})


RECIPE = WGANGPRecipe()
