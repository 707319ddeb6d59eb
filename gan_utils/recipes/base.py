"""The :class:`Recipe` interface: how a named experiment builds its parts.

A recipe knows its default dataset, how to size its networks for a dataset,
the trainer config defaults of its handout, and how to draw samples from
trained networks. Subclasses implement :meth:`Recipe.model_kwargs` and
:meth:`Recipe.build_models`; the rest has working defaults::

    class MyRecipe(Recipe):
        name, trainer_kind, default_dataset = "my_gan", "gan", "mnist"
        config_defaults = {"loss": "hinge", "batch_size": 64}

        def model_kwargs(self, dataset, **overrides):
            c, h, _ = dataset_image_shape(dataset)
            return {"channels": c, "image_size": h, "z_dim": 64, **overrides}

        def build_models(self, **kw):
            return {"generator": ..., "discriminator": ...}

    RECIPE = MyRecipe()

Checkpoints written by a recipe's trainer carry ``meta = {"recipe": name,
"model_kwargs": {...}, "dataset": ...}``, which :func:`load_checkpoint_models`
uses to rebuild the networks (the ``sample`` command relies on it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["Recipe", "dataset_image_shape", "load_checkpoint_models"]

TRAINER_KINDS = ("gan", "sr", "vae")


def dataset_image_shape(dataset: Any) -> tuple[int, int, int]:
    """``(C, H, W)`` of the dataset's images (``image_shape`` attribute or the first item)."""
    shape = getattr(dataset, "image_shape", None)
    if shape is None:
        item = dataset[0]
        image = item[0] if isinstance(item, (tuple, list)) else item
        shape = tuple(image.shape)
    if len(shape) != 3:
        raise ValueError(f"expected images of shape (C, H, W), got {tuple(shape)}")
    return tuple(int(s) for s in shape)  # type: ignore[return-value]


class Recipe:
    """Base class of the recipes in :mod:`gan_utils.recipes` (see the module docstring).

    Class attributes:
        name: registry name.
        description: one line for ``--help``.
        trainer_kind: ``"gan"`` (:class:`GANTrainer`), ``"sr"`` (:class:`SRTrainer`)
            or ``"vae"`` (:class:`VAETrainer`).
        default_dataset: dataset name for :func:`gan_utils.data.load_dataset`.
        value_range: ``"tanh"`` ([-1, 1] data) or ``"unit"`` ([0, 1] data).
        image_size: resize images to this side (``None``: native size).
        config_defaults: trainer config fields that differ from the config class defaults.
    """

    name: str = ""
    description: str = ""
    trainer_kind: str = "gan"
    default_dataset: str = "mnist"
    value_range: str = "tanh"
    image_size: int | None = None
    config_defaults: Mapping[str, Any] = {}

    # -- to implement ------------------------------------------------------------------------
    def model_kwargs(self, dataset: Any, **overrides: Any) -> dict[str, Any]:
        """JSON-serialisable keyword arguments of :meth:`build_models` for ``dataset``."""
        raise NotImplementedError

    def build_models(self, **model_kwargs: Any) -> dict[str, nn.Module]:
        """``{"generator", "discriminator"}`` (gan, sr) or ``{"model"}`` (vae), freshly initialised."""
        raise NotImplementedError

    # -- defaults ----------------------------------------------------------------------------------
    def config_class(self) -> type:
        from gan_utils.train.config import GANTrainConfig, SRTrainConfig, VAETrainConfig

        return {"gan": GANTrainConfig, "sr": SRTrainConfig, "vae": VAETrainConfig}[self.trainer_kind]

    def make_config(self, **overrides: Any) -> Any:
        """The trainer config: class defaults < :attr:`config_defaults` < ``overrides``."""
        cls = self.config_class()
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"recipe {self.name!r} has no config field(s) {unknown}; known: {sorted(fields)}")
        return cls(**{**dict(self.config_defaults), **overrides})

    def load_data(self, dataset: str | None = None, *, split: str = "train", root: str | None = None,
                  image_size: int | None = None, download: bool = False) -> Any:
        """``load_dataset(dataset or default_dataset, ...)`` in this recipe's value range and size."""
        from gan_utils.data import load_dataset

        size = image_size if image_size is not None else self.image_size
        return load_dataset(dataset or self.default_dataset, split=split, root=root, image_size=size,
                            value_range=self.value_range, download=download)

    def make_trainer(self, models: Mapping[str, nn.Module], config: Any, data: Any, *,
                     callbacks: Sequence[Any] = (), meta: dict[str, Any] | None = None) -> Any:
        """The trainer of :attr:`trainer_kind` for ``models``."""
        from gan_utils.train import GANTrainer, SRTrainer, VAETrainer

        if self.trainer_kind == "vae":
            return VAETrainer(models["model"], config, data, callbacks=callbacks, meta=meta)
        cls = SRTrainer if self.trainer_kind == "sr" else GANTrainer
        return cls(models["generator"], models["discriminator"], config, data, callbacks=callbacks, meta=meta)

    def build(
        self,
        dataset: str | Any | None = None,
        *,
        data_root: str | None = None,
        image_size: int | None = None,
        model: Mapping[str, Any] | None = None,
        callbacks: Sequence[Any] = (),
        **config_overrides: Any,
    ) -> Any:
        """Data + models + config -> a ready trainer (call ``.train()`` on it).

        Args:
            dataset: a dataset name (default :attr:`default_dataset`) or a dataset object.
            data_root: where dataset files live (default ``gan_utils.data.default_root()``).
            image_size: resize images (default :attr:`image_size`).
            model: overrides of :meth:`model_kwargs` (e.g. ``{"width": 32}``).
            **config_overrides: trainer config fields (``steps=500, out_dir="out/x"``).
        """
        data = dataset if dataset is not None and not isinstance(dataset, str) else self.load_data(
            dataset, root=data_root, image_size=image_size)
        kwargs = self.model_kwargs(data, **dict(model or {}))
        models = self.build_models(**kwargs)
        config = self.make_config(**config_overrides)
        meta = {
            "recipe": self.name,
            "model_kwargs": kwargs,
            "dataset": getattr(data, "name", dataset if isinstance(dataset, str) else type(data).__name__),
            "dataset_request": dataset if isinstance(dataset, str) else None,
            "image_size": image_size if image_size is not None else self.image_size,
            "value_range": self.value_range,
        }
        return self.make_trainer(models, config, data, callbacks=callbacks, meta=meta)

    @torch.no_grad()
    def sample(self, models: Mapping[str, nn.Module], n: int, *, labels: Sequence[int] | None = None,
               seed: int = 0, device: str | torch.device = "cpu", meta: Mapping[str, Any] | None = None,
               batch_size: int = 256) -> dict[str, torch.Tensor]:
        """``{"images": (n, C, H, W) float32 in [0, 1]}`` (+ ``"labels"`` for conditional models).

        GAN default: ``z ~ N(0, I)`` from a generator seeded with ``seed``; a
        conditional generator (one with ``num_classes``) gets ``labels`` (cycled
        to length ``n``) or ``0, 1, ..., K-1, 0, 1, ...`` when none are given.
        """
        from gan_utils.data.transforms import to_unit_range

        G = models["generator"].to(device).eval()
        z_dim = getattr(G, "z_dim", None) or (meta or {}).get("model_kwargs", {}).get("z_dim")
        if not z_dim:
            raise ValueError("cannot sample: the generator has no z_dim attribute")
        num_classes = getattr(G, "num_classes", None)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, z_dim, generator=g)
        y = None
        if num_classes is not None:
            y = cycled_labels(labels, n, num_classes)
        elif labels:
            raise ValueError(f"recipe {self.name!r} trains an unconditional generator: --labels is not supported")
        outs = []
        for start in range(0, n, batch_size):
            zb = z[start:start + batch_size].to(device)
            out = G(zb, y[start:start + batch_size].to(device)) if y is not None else G(zb)
            outs.append(out.float().cpu())
        images = torch.cat(outs) if outs else torch.empty(0)
        if self.value_range == "tanh":
            images = to_unit_range(images)
        result = {"images": images.clamp(0.0, 1.0)}
        if y is not None:
            result["labels"] = y
        return result


def cycled_labels(labels: Sequence[int] | None, n: int, num_classes: int) -> torch.Tensor:
    """``labels`` repeated to length ``n`` (``0..K-1`` cycled when ``None``), checked against ``num_classes``."""
    base = list(labels) if labels else list(range(num_classes))
    bad = [v for v in base if not 0 <= int(v) < num_classes]
    if bad:
        raise ValueError(f"labels must lie in [0, {num_classes}), got {bad}")
    return torch.tensor([int(base[i % len(base)]) for i in range(n)], dtype=torch.long)


def load_checkpoint_models(path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True
                           ) -> tuple[Recipe, dict[str, nn.Module], dict[str, Any]]:
    """Rebuild a recipe's networks from a checkpoint: ``(recipe, models, checkpoint_dict)``.

    With ``use_ema`` the generator gets the EMA weights when the run kept them.
    Models are returned in eval mode on ``device``.
    """
    from gan_utils.recipes import get_recipe
    from gan_utils.train.checkpoint import load_checkpoint

    payload = load_checkpoint(path, map_location="cpu")
    meta = payload.get("meta") or {}
    if "recipe" not in meta or "model_kwargs" not in meta:
        raise ValueError(
            f"{path} does not say which recipe built it (meta has {sorted(meta)}); "
            "it was not written by a recipe's trainer"
        )
    recipe = get_recipe(meta["recipe"])
    models = recipe.build_models(**meta["model_kwargs"])
    for name, module in models.items():
        if name not in payload["models"]:
            raise KeyError(f"checkpoint {path} has no weights for {name!r}; it holds {sorted(payload['models'])}")
        module.load_state_dict(payload["models"][name])
    ema = payload.get("ema")
    if use_ema and ema is not None and "generator" in models:
        models["generator"].load_state_dict(ema["module"])
    for module in models.values():
        module.to(device).eval()
    return recipe, models, payload
