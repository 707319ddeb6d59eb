"""Super-resolution GAN 16 -> 64 (Penn seed, part 3): U-Net generator + patch discriminator.

Inputs are the 64x64 images downsampled to 16x16 and upsampled back
(bilinear); the generator loss is MSE + non-saturating GAN loss, 1:1; batch
32, Adam 2e-4 (betas (0.5, 0.999)).

    python -m gan_utils train sr --dataset stl10 --steps 20000 --out out/sr

``sample`` on an SR checkpoint super-resolves ``n`` test images and also
writes the degraded ``inputs`` and the ``targets``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gan_utils.recipes.base import Recipe, dataset_image_shape

__all__ = ["RECIPE", "SRRecipe"]


class SRRecipe(Recipe):
    name = "sr"
    description = "super-resolution 16->64: U-Net + patch discriminator, MSE + GAN 1:1, STL-10"
    trainer_kind = "sr"
    default_dataset = "stl10"
    value_range = "tanh"
    image_size = 64
    config_defaults = {"batch_size": 32, "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999),
                       "loss": "nonsaturating", "recon_loss": "mse", "recon_weight": 1.0, "gan_weight": 1.0,
                       "low_size": 16}

    def model_kwargs(self, dataset: Any, **overrides: Any) -> dict[str, Any]:
        c, h, w = dataset_image_shape(dataset)
        kwargs = {"channels": c, "base": 32, "n_levels": 5, "d_layers": 5}
        unknown = sorted(set(overrides) - set(kwargs))
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown} for recipe {self.name!r}; known: {sorted(kwargs)}")
        kwargs.update(overrides)
        if h % 2 ** kwargs["n_levels"] or w % 2 ** kwargs["n_levels"]:
            raise ValueError(f"SR images must have sides divisible by {2 ** kwargs['n_levels']}, got {h}x{w}")
        return kwargs

    def build_models(self, **kw: Any) -> dict[str, nn.Module]:
        from gan_utils.models.sr import PatchDiscriminator, SRUNetGenerator

        return {
            "generator": SRUNetGenerator(in_channels=kw["channels"], base=kw["base"], n_levels=kw["n_levels"]),
            "discriminator": PatchDiscriminator(in_channels=kw["channels"], base=kw["base"], n_layers=kw["d_layers"]),
        }

    @torch.no_grad()
    def sample(self, models, n, *, labels=None, seed=0, device="cpu", meta=None, batch_size=64):
        """Super-resolve ``n`` test images: ``images`` (outputs), ``inputs``, ``targets``, all in [0, 1]."""
        from gan_utils.data.degradations import sr_degrade
        from gan_utils.data.transforms import to_unit_range

        if labels:
            raise ValueError("the SR generator is not class-conditional: --labels is not supported")
        meta = dict(meta or {})
        data = self.load_data(meta.get("dataset_request") or self.default_dataset, split="test",
                              image_size=meta.get("image_size"))
        n = min(n, len(data))
        idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
        targets = torch.stack([data[int(i)][0] for i in idx])
        low_size = int((meta.get("config") or {}).get("low_size", self.config_defaults["low_size"]))
        inputs = sr_degrade(targets, low_size=low_size)
        G = models["generator"].to(device).eval()
        outs = [G(inputs[i:i + batch_size].to(device)).float().cpu() for i in range(0, n, batch_size)]
        unit = lambda x: to_unit_range(x).clamp(0.0, 1.0)  # noqa: E731
        return {"images": unit(torch.cat(outs)), "inputs": unit(inputs), "targets": unit(targets)}


RECIPE = SRRecipe()
