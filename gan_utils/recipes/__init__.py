"""Named training recipes: models + trainer config + default dataset.

>>> from gan_utils.recipes import get_recipe, list_recipes
>>> list_recipes()
['ae_moments', 'cgan_mnist', 'dcgan', 'sr', 'vae', 'wgan_gp']
>>> recipe = get_recipe("dcgan")
>>> trainer = recipe.build(dataset="stl10", steps=500, out_dir="out/dcgan")  # doctest: +SKIP
>>> history = trainer.train()                                                 # doctest: +SKIP

Each recipe lives in ``gan_utils/recipes/<name>.py`` and exposes ``RECIPE``, an
instance of :class:`gan_utils.recipes.base.Recipe`. Modules are imported only
when asked for, so a recipe's models are not loaded until it is used.
"""

from __future__ import annotations

import importlib

from gan_utils.recipes.base import Recipe, load_checkpoint_models

__all__ = ["RECIPE_NAMES", "Recipe", "get_recipe", "list_recipes", "load_checkpoint_models"]

RECIPE_NAMES: tuple[str, ...] = ("ae_moments", "cgan_mnist", "dcgan", "sr", "vae", "wgan_gp")


def list_recipes() -> list[str]:
    """Names accepted by :func:`get_recipe` (sorted)."""
    return sorted(RECIPE_NAMES)


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; ``ValueError`` listing the known names otherwise."""
    if not isinstance(name, str) or name not in RECIPE_NAMES:
        raise ValueError(f"unknown recipe {name!r}: expected one of {', '.join(list_recipes())}")
    module = importlib.import_module(f"gan_utils.recipes.{name}")
    recipe = getattr(module, "RECIPE", None)
    if not isinstance(recipe, Recipe):
        raise RuntimeError(
            f"gan_utils.recipes.{name} must define RECIPE, an instance of gan_utils.recipes.base.Recipe; "
            f"found {type(recipe).__name__}"
        )
    return recipe
