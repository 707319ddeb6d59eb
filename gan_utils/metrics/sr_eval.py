"""Super-resolution on the test set: MSE and LPIPS of the generator against the bilinear baseline.

For each test image ``t`` (in [0, 1]) the generator sees what it was trained on,
``lr = sr_degrade(t, low_size, degrade_mode)`` (antialiased down to ``low_size``,
back up with ``degrade_mode``, in the generator's value range), and

* ``mse`` = mean over images and pixels of ``(G(lr) - t)^2``, on [0, 1] images
  (the output clamped to [0, 1], as an image would be saved);
* ``mse_bilinear`` = the same for the baseline ``lr`` itself (the bilinear upsampling);
* ``lpips`` / ``lpips_bilinear`` = mean LPIPS (AlexNet, v0.1;
  :class:`gan_utils.metrics.perceptual.LPIPS`) of the two, or ``None`` with an
  ``lpips_reason`` when LPIPS cannot run: the AlexNet weights file is not on this
  machine (it is never downloaded, and a randomly initialised backbone is never
  used instead), the ``lpips`` package with the linear heads is missing, or the
  images are smaller than 32x32.
* ``lpips_uncalibrated`` / ``lpips_uncalibrated_bilinear``: only when the LPIPS
  module given is a code-path check (``calibrated = False``: a locally built,
  randomly initialised AlexNet, see :func:`load_lpips` with
  ``fallback="random-trunk"``). Those numbers are **not** LPIPS: ``lpips`` stays
  ``None`` and ``lpips_reason`` says what is missing.

>>> result = evaluate_sr_checkpoint("out/sr/checkpoint.pt")   # doctest: +SKIP
>>> result["mse"], result["mse_bilinear"], result["lpips"]    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_utils.data.degradations import sr_degrade
from gan_utils.data.transforms import to_tanh_range, to_unit_range

__all__ = ["DEFAULT_SR_IMAGES", "SREval", "evaluate_sr", "evaluate_sr_checkpoint", "load_lpips"]

DEFAULT_SR_IMAGES = 1000
LPIPS_MIN_SIDE = 32


@dataclass(frozen=True)
class SREval:
    """Test-set averages of a super-resolution generator and of its bilinear input.

    Attributes:
        mse, mse_bilinear: mean squared error per pixel on [0, 1] images.
        lpips, lpips_bilinear: mean LPIPS, or ``None`` (then ``lpips_reason`` says why).
        n: test images.
        low_size, degrade_mode: the degradation the generator was trained with.
        lpips_reason: why LPIPS is ``None`` (else ``None``).
        lpips_uncalibrated, lpips_uncalibrated_bilinear: the same distances through an
            uncalibrated (random-trunk) module, a code-path check only; ``None`` otherwise.
    """

    mse: float
    lpips: float | None
    mse_bilinear: float
    lpips_bilinear: float | None
    n: int
    low_size: int
    degrade_mode: str
    lpips_reason: str | None = None
    lpips_uncalibrated: float | None = None
    lpips_uncalibrated_bilinear: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``lpips_reason`` only when LPIPS is ``None``, the uncalibrated pair only when present."""
        out = asdict(self)
        for key in ("lpips_reason", "lpips_uncalibrated", "lpips_uncalibrated_bilinear"):
            if out[key] is None:
                del out[key]
        return out


def load_lpips(trunk: str | Path | None = None, heads: str | Path | None = None,
               device: str | torch.device = "cpu", fallback: str | None = None) -> tuple[nn.Module | None, str | None]:
    """``(LPIPS module, None)`` from local weight files, or ``(None, reason)`` saying what is missing.

    ``trunk``: torchvision's ``alexnet-owt-7be5be79.pth`` (default: looked for in
    ``$GAN_UTILS_WEIGHTS`` and ``$TORCH_HOME/hub/checkpoints``, see
    :func:`gan_utils.metrics.find_weights`); ``heads``: lpips' ``weights/v0.1/alex.pth``
    (default: inside the installed ``lpips`` package). Nothing is downloaded.

    ``fallback="random-trunk"``: when only the AlexNet file is missing, return
    ``(LPIPS(random_trunk_seed=0), reason)`` instead, an uncalibrated module
    (``calibrated = False``) that runs the whole code path; :func:`evaluate_sr`
    never reports its numbers as LPIPS. The reason still says what is missing.
    """
    from gan_utils.metrics.perceptual import LPIPS

    if fallback not in (None, "random-trunk"):
        raise ValueError(f"fallback must be None or 'random-trunk', got {fallback!r}")
    try:
        return LPIPS(trunk=trunk, heads=heads).to(device), None
    except FileNotFoundError as err:
        reason = f"LPIPS needs local weights: {err}"
        if fallback is None or trunk is not None:
            return None, reason
        try:
            module = LPIPS(heads=heads, random_trunk_seed=0).to(device)
        except FileNotFoundError:  # the heads are missing too: nothing to run
            return None, reason
        return module, reason + " (a randomly initialised AlexNet was built locally to run the code path: its numbers are not LPIPS)"


@torch.no_grad()
def evaluate_sr(
    generator: nn.Module,
    batches: Iterable[Tensor],
    *,
    low_size: int = 16,
    degrade_mode: str = "bilinear",
    value_range: str = "tanh",
    lpips: nn.Module | None = None,
    lpips_reason: str | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> SREval:
    """MSE / LPIPS of ``generator`` and of the bilinear baseline over test batches.

    Args:
        generator: degraded images -> images, both in ``value_range`` (eval mode).
        batches: ``(B, C, H, W)`` ground-truth images in ``[0, 1]``.
        low_size, degrade_mode: the degradation of training (:func:`gan_utils.data.sr_degrade`).
        value_range: the generator's range, ``"tanh"`` ([-1, 1]) or ``"unit"``.
        lpips: an LPIPS module taking [0, 1] images (``None``: LPIPS not reported,
            ``lpips_reason`` says why). A module with ``calibrated = False`` runs, but its
            means go to ``lpips_uncalibrated*`` and ``lpips`` stays ``None``.
    """
    if value_range not in ("tanh", "unit"):
        raise ValueError(f"value_range must be 'tanh' or 'unit', got {value_range!r}")
    to_model = to_tanh_range if value_range == "tanh" else (lambda t: t)
    to_image = to_unit_range if value_range == "tanh" else (lambda t: t)
    sq_out = sq_base = 0.0
    lp_out = lp_base = 0.0
    pixels = count = 0
    calibrated = lpips is None or bool(getattr(lpips, "calibrated", True))
    reason = lpips_reason if lpips is None or not calibrated else None
    if (lpips is None or not calibrated) and reason is None:
        reason = "LPIPS was not given" if lpips is None else "the LPIPS module given is uncalibrated (a random trunk)"
    iterator: Iterable[Tensor] = batches
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(batches, desc="SR test set", leave=False)
    for batch in iterator:
        target = batch.to(device).float()
        if lpips is not None and min(target.shape[-2:]) < LPIPS_MIN_SIDE:
            lpips, reason = None, (f"LPIPS's AlexNet needs images of at least {LPIPS_MIN_SIDE}x{LPIPS_MIN_SIDE}, "
                                   f"these are {target.shape[-2]}x{target.shape[-1]}")
        degraded = sr_degrade(to_model(target), low_size=low_size, mode=degrade_mode)
        output = to_image(generator(degraded).float()).clamp(0.0, 1.0)
        baseline = to_image(degraded).clamp(0.0, 1.0)
        sq_out += float(((output - target) ** 2).double().sum())
        sq_base += float(((baseline - target) ** 2).double().sum())
        if lpips is not None:
            lp_out += float(lpips(output, target).double().sum())
            lp_base += float(lpips(baseline, target).double().sum())
        pixels += target.numel()
        count += target.shape[0]
    if not count:
        raise ValueError("no test images to evaluate")
    ran = lpips is not None
    have_lpips = ran and calibrated
    return SREval(mse=sq_out / pixels, lpips=lp_out / count if have_lpips else None, mse_bilinear=sq_base / pixels,
                  lpips_bilinear=lp_base / count if have_lpips else None, n=count, low_size=int(low_size),
                  degrade_mode=degrade_mode, lpips_reason=None if have_lpips else reason,
                  lpips_uncalibrated=lp_out / count if ran and not calibrated else None,
                  lpips_uncalibrated_bilinear=lp_base / count if ran and not calibrated else None)


def evaluate_sr_checkpoint(
    path: str | Path,
    *,
    n: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    root: str | Path | None = None,
    lpips_trunk: str | Path | None = None,
    use_ema: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """:func:`evaluate_sr` of an SR checkpoint on its dataset's ``test`` split.

    ``n`` test images (a seeded random subset; default all of the split, at most
    :data:`DEFAULT_SR_IMAGES`). ``lpips_trunk``: the AlexNet weights file (default:
    the documented places, see :func:`load_lpips`). Returns a JSON-ready dict:
    ``source``, ``recipe``, ``step``, then :meth:`SREval.as_dict` and ``data``.
    """
    from gan_utils.metrics.sources import dataset_source
    from gan_utils.recipes import load_checkpoint_models

    recipe, models, payload = load_checkpoint_models(path, device=device, use_ema=use_ema)
    if recipe.trainer_kind != "sr":
        raise ValueError(f"{path} is a {recipe.trainer_kind!r} checkpoint of recipe {recipe.name!r}, "
                         "not a super-resolution one")
    meta, config = payload.get("meta") or {}, payload.get("config") or {}
    name = meta.get("dataset_request") or recipe.default_dataset
    image_size = meta.get("image_size")
    source = dataset_source(name, "test", n, root=root, batch_size=batch_size, seed=seed, image_size=image_size)
    if n is None and source.n > DEFAULT_SR_IMAGES:
        source = dataset_source(name, "test", DEFAULT_SR_IMAGES, root=root, batch_size=batch_size, seed=seed,
                                image_size=image_size)
    if lpips_trunk is not None and not Path(lpips_trunk).expanduser().is_file():
        raise FileNotFoundError(f"--weights {lpips_trunk}: no such file (expected torchvision's AlexNet weights "
                                "alexnet-owt-7be5be79.pth for LPIPS)")
    lpips, reason = load_lpips(lpips_trunk, device=device)
    result = evaluate_sr(models["generator"], source, low_size=int(config.get("low_size", 16)),
                         degrade_mode=str(config.get("degrade_mode", "bilinear")), value_range=recipe.value_range,
                         lpips=lpips, lpips_reason=reason, device=device, progress=progress)
    out = {"source": str(path), "recipe": recipe.name, "step": int(payload.get("step", 0)), **result.as_dict(),
           "data": {**source.info, "seed": seed}}
    if lpips is not None:
        out["lpips_info"] = lpips.info
    return out
