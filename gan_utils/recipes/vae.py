"""Fully connected VAE of Penn Table 1 on MNIST (784-400-(20, 20)-400-784).

Bernoulli likelihood on pixels in [0, 1], KL weight 1 (the ELBO), Adam 1e-3,
batch 128; the IWAE bound with 5 samples is logged on a fixed batch.

    python -m gan_utils train vae --dataset mnist --steps 5000 --out out/vae

For bits per dim, a continuous decoder: a Gaussian with one learned standard
deviation per pixel (:class:`~gan_utils.models.vae.GaussianFCVAE`)::

    python -m gan_utils train vae --set likelihood=gaussian --model learned_scale=true --out out/vae_gauss
    python -m gan_utils eval out/vae_gauss/checkpoint.pt --k 2000
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gan_utils.recipes.base import Recipe, dataset_image_shape

__all__ = ["RECIPE", "VAERecipe"]


class VAERecipe(Recipe):
    name = "vae"
    description = "fully connected VAE (Penn Table 1), Bernoulli ELBO, MNIST"
    trainer_kind = "vae"
    default_dataset = "mnist"
    value_range = "unit"
    image_size = None
    config_defaults = {"model_kind": "vae", "beta": 1.0, "likelihood": "bernoulli", "lr": 1e-3,
                       "batch_size": 128, "eval_iwae_k": 5, "n_fixed_samples": 36}

    def model_kwargs(self, dataset: Any, **overrides: Any) -> dict[str, Any]:
        c, h, w = dataset_image_shape(dataset)
        kwargs = {"in_features": c * h * w, "hidden": 400, "latent_dim": 20, "image_shape": [c, h, w],
                  "learned_scale": False}
        unknown = sorted(set(overrides) - set(kwargs))
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown} for recipe {self.name!r}; known: {sorted(kwargs)}")
        return {**kwargs, **overrides}

    def build_models(self, **kw: Any) -> dict[str, nn.Module]:
        from gan_utils.models.vae import FCVAE, GaussianFCVAE

        learned = kw.get("learned_scale", False)
        if isinstance(learned, str):
            if learned.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"learned_scale must be true or false, got {learned!r}")
            learned = learned.lower() in ("true", "1")
        cls = GaussianFCVAE if learned else FCVAE
        return {"model": cls(in_features=kw["in_features"], hidden=kw["hidden"],
                             latent_dim=kw["latent_dim"], image_shape=tuple(kw["image_shape"]))}

    @torch.no_grad()
    def sample(self, models, n, *, labels=None, seed=0, device="cpu", meta=None, batch_size=256):
        """``{"images": (n, C, H, W)}`` decoded from ``z ~ N(0, I)``, in [0, 1]."""
        if labels:
            raise ValueError(f"recipe {self.name!r} is unconditional: --labels is not supported")
        model = models["model"].to(device).eval()
        z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
        outs = [model.decode(z[i:i + batch_size].to(device)).float().cpu() for i in range(0, n, batch_size)]
        images = torch.cat(outs) if outs else torch.empty(0)
        shape = getattr(model, "image_shape", None)  # the FC VAE decodes flat vectors; conv models images
        if shape is not None and outs:
            images = images.reshape(n, *shape)
        return {"images": images.clamp(0.0, 1.0)}


RECIPE = VAERecipe()
