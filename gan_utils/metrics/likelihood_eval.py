"""Held-out log-likelihood of a VAE by importance sampling, and bits per dim done right.

``log p(x)`` is estimated by the importance-weighted bound with ``K`` samples
from the encoder, ``L_K(x) = log (1/K) sum_k p(x, z_k) / q(z_k | x)``
(:func:`gan_utils.losses.iwae_from_samples`; Burda et al. 2016). ``L_K`` is a
lower bound of ``log p(x)`` that rises with ``K`` on average and reaches it as
``K -> inf``, so ``nll_nats = -mean_x L_K(x)`` is an upper bound of the true NLL
(nats per image); the handouts use ``K = 2000``.

Bits per dim (the Montreal recipe) needs a *density* of continuous data:

1. the test images are 8-bit: levels ``x in {0..255}`` (``round(255 * image)``);
2. uniform dequantization: ``y = (x + u) / 256``, ``u ~ U[0, 1)^D``
   (:func:`gan_utils.losses.uniform_dequantize`; one draw per image, seeded);
3. ``nll_nats = -log p(y)`` by importance sampling, in nats per image;
4. ``bpd = (nll_nats + D ln 256) / (D ln 2)`` (:func:`gan_utils.losses.bits_per_dim`):
   the ``D ln 256`` term is the Jacobian of dividing by 256, ``/ ln 2`` turns
   nats into bits and ``D = C * H * W`` counts every pixel value.

Which decoders qualify (:data:`gan_utils.losses.LIKELIHOODS`): ``"gaussian"``
(means ``decode(z)``; the standard deviation is the model's ``decoder_sigma()``,
learned per pixel by :class:`~gan_utils.models.vae.GaussianFCVAE`, or 1 for a
model without one) gets a bits-per-dim value. ``"bernoulli"`` gives probabilities of *binary* pixels,
not a density of dequantized data, so its ``bpd`` is ``None`` with a
``bpd_reason``; its ``nll_nats`` is ``-log p`` of the test images as the model
was trained on them (grey levels in [0, 1] as Bernoulli targets), or of the
binarized images (``x > 0.5``, a proper discrete likelihood) with ``binarize=True``.

>>> result = evaluate_vae_checkpoint("out/vae/checkpoint.pt", k=2000)   # doctest: +SKIP
>>> result["nll_nats"], result["bpd"]                                   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_utils.losses.likelihood import bits_per_dim, iwae_from_samples, uniform_dequantize

__all__ = [
    "CONTINUOUS_LIKELIHOODS",
    "LikelihoodEval",
    "evaluate_vae_checkpoint",
    "evaluate_vae_likelihood",
    "importance_sampled_log_likelihood",
    "to_8bit_levels",
]

CONTINUOUS_LIKELIHOODS: tuple[str, ...] = ("gaussian",)
DEFAULT_K = 2000
# decoder outputs held at once: images x samples x pixels (float32, ~32 MB)
_MAX_DECODED = 8_000_000

BERNOULLI_BPD_REASON = (
    "the Bernoulli decoder gives probabilities of binary pixels, not a density of dequantized 8-bit data, "
    "so bits per dim are undefined; train a continuous decoder (--set likelihood=gaussian) for bpd"
)


@dataclass(frozen=True)
class LikelihoodEval:
    """Importance-sampled test NLL of a VAE.

    Attributes:
        nll_nats: ``-mean L_K`` in nats per image (of the dequantized ``y`` for
            continuous decoders, of the Bernoulli targets otherwise).
        bpd: bits per dim (continuous decoders), else ``None``.
        k: importance samples per image.
        n: test images.
        num_dims: ``D = C * H * W``.
        likelihood: the decoder's likelihood.
        targets: what was scored (``"dequantized 8-bit"``, ``"grey levels in [0, 1]"``, ``"binarized"``).
        bpd_reason: why ``bpd`` is ``None`` (else ``None``).
    """

    nll_nats: float
    bpd: float | None
    k: int
    n: int
    num_dims: int
    likelihood: str
    targets: str
    bpd_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``bpd_reason`` only when ``bpd`` is ``None``."""
        out = asdict(self)
        if out["bpd_reason"] is None:
            del out["bpd_reason"]
        return out


def _decoder(model: nn.Module, likelihood: str) -> tuple[Callable[[Tensor], Tensor], Tensor | float]:
    """What the likelihood reads from the decoder (the trainer's choice: logits or means) and the
    Gaussian decoder's std (learned per pixel by :class:`~gan_utils.models.vae.GaussianFCVAE`, else 1)."""
    from gan_utils.train.config import VAETrainConfig
    from gan_utils.train.vae_trainer import VAEObjective

    objective = VAEObjective(model, VAETrainConfig(likelihood=likelihood))
    return (lambda z: objective.decoder_output(z).float()), objective.decoder_sigma()


@torch.no_grad()
def importance_sampled_log_likelihood(
    model: nn.Module,
    x: Tensor,
    k: int,
    likelihood: str = "bernoulli",
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``L_K(x)`` per image ``(N,)``: the IS estimate of ``log p(x)`` in nats.

    Args:
        model: a VAE with ``encode(x) -> (mu, logvar)`` and the decoder the
            likelihood needs (``decode_logits`` for Bernoulli, ``decode`` for Gaussian means).
        x: ``(N, ...)`` data as the model takes it (``[0, 1]`` for Bernoulli targets).
        k: importance samples per image.
        chunk_size: samples decoded at once per image (memory bound; the value does not change the result).
        generator: for the encoder samples (on ``x``'s device).
    """
    mu, logvar = model.encode(x)
    decode, sigma = _decoder(model, likelihood)
    return iwae_from_samples(decode, x.float(), mu.float(), logvar.float(), k=k, likelihood=likelihood,
                             sigma=sigma, chunk_size=chunk_size, generator=generator)


def to_8bit_levels(images: Tensor) -> Tensor:
    """``[0, 1]`` images -> float levels ``round(255 * x)`` in ``{0..255}`` (exact for 8-bit data)."""
    return torch.round(images.float().clamp(0.0, 1.0) * 255.0)


def evaluate_vae_likelihood(
    model: nn.Module,
    batches: Iterable[Tensor],
    *,
    k: int = DEFAULT_K,
    likelihood: str = "bernoulli",
    value_range: str = "unit",
    binarize: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    chunk_size: int | None = None,
    progress: bool = False,
) -> LikelihoodEval:
    """Importance-sampled NLL (and bits per dim for continuous decoders) over image batches.

    Args:
        model: a VAE in eval mode (see :func:`importance_sampled_log_likelihood`).
        batches: ``(B, C, H, W)`` test images in ``[0, 1]`` (8-bit levels / 255, as
            :func:`gan_utils.data.load_dataset` gives them).
        k: importance samples per image (2000 in the handouts).
        likelihood: the decoder's, ``"bernoulli"`` or ``"gaussian"``.
        value_range: what the model was trained on, ``"unit"`` ([0, 1]) or ``"tanh"``
            ([-1, 1]: dequantized into ``[-1, 1)``, bits per dim with ``data_width=2``).
        binarize: Bernoulli only: score ``x > 0.5`` instead of the grey levels.
        seed: seeds the dequantization noise and the encoder samples.
        chunk_size: samples decoded at once per image (default: ~8M decoder outputs at a time).
    """
    if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
        raise ValueError(f"k must be a positive number of importance samples, got {k!r}")
    continuous = likelihood in CONTINUOUS_LIKELIHOODS
    if not continuous and likelihood != "bernoulli":
        raise ValueError(f"unknown likelihood {likelihood!r}; expected 'bernoulli' or one of {CONTINUOUS_LIKELIHOODS}")
    if binarize and continuous:
        raise ValueError("binarize applies to Bernoulli decoders; a continuous decoder is scored on dequantized data")
    if not continuous and value_range != "unit":
        raise ValueError(f"a Bernoulli decoder needs targets in [0, 1], but the model was trained on {value_range!r} data")
    device = torch.device(device)
    gen_device = device if device.type == "cuda" else torch.device("cpu")
    noise = torch.Generator(device=gen_device).manual_seed(seed)
    # encoder samples are drawn where the model runs: seeded on CPU and CUDA, from the global RNG elsewhere (MPS)
    samples = torch.Generator(device=device).manual_seed(seed + 1) if device.type in ("cpu", "cuda") else None
    total, count, num_dims = 0.0, 0, None
    iterator: Iterable[Tensor] = batches
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(batches, desc=f"IS log-likelihood (K={k})", leave=False)
    for batch in iterator:
        x = batch.to(gen_device).float()
        if continuous:
            y = uniform_dequantize(to_8bit_levels(x), generator=noise, value_range=value_range)
        else:
            y = (x > 0.5).float() if binarize else x
        y = y.to(device)
        d = int(y[0].numel())
        num_dims = d if num_dims is None else num_dims
        step = chunk_size or max(1, min(k, _MAX_DECODED // max(1, y.shape[0] * d)))
        log_px = importance_sampled_log_likelihood(model, y, k, likelihood, chunk_size=step, generator=samples)
        total += float(log_px.double().sum())
        count += int(y.shape[0])
    if not count:
        raise ValueError("no test images to evaluate")
    nll = -total / count
    if not math.isfinite(nll):
        raise ValueError(f"the importance-sampled NLL is {nll}: the model gives no finite density to the test images")
    if continuous:
        bpd = float(bits_per_dim(nll, num_dims, data_width=2.0 if value_range == "tanh" else 1.0))
        targets, reason = "dequantized 8-bit: (round(255 x) + u) / 256, u ~ U[0, 1)", None
    else:
        bpd, reason = None, BERNOULLI_BPD_REASON
        targets = "binarized (x > 0.5)" if binarize else "grey levels in [0, 1]"
    return LikelihoodEval(nll_nats=nll, bpd=bpd, k=k, n=count, num_dims=int(num_dims), likelihood=likelihood,
                          targets=targets, bpd_reason=reason)


def evaluate_vae_checkpoint(
    path: str | Path,
    *,
    k: int = DEFAULT_K,
    n: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 100,
    root: str | Path | None = None,
    binarize: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """:func:`evaluate_vae_likelihood` of a VAE checkpoint on its dataset's ``test`` split.

    ``n`` test images (a seeded random subset; default all). Returns a JSON-ready
    dict: ``source``, ``recipe``, ``step``, then :meth:`LikelihoodEval.as_dict`
    (``nll_nats``, ``bpd``, ``k``, ...) and ``data`` (which dataset).
    """
    from gan_utils.metrics.sources import dataset_source
    from gan_utils.recipes import load_checkpoint_models
    from gan_utils.train.config import load_config

    recipe, models, payload = load_checkpoint_models(path, device=device)
    config = load_config(payload.get("config") or {})
    if recipe.trainer_kind != "vae" or getattr(config, "model_kind", None) != "vae":
        raise ValueError(f"{path} holds a {getattr(config, 'model_kind', recipe.trainer_kind)!r} model of recipe "
                         f"{recipe.name!r}, not a VAE: it has no likelihood to evaluate")
    meta = payload.get("meta") or {}
    source = dataset_source(meta.get("dataset_request") or recipe.default_dataset, "test", n, root=root,
                            batch_size=batch_size, seed=seed, image_size=meta.get("image_size"))
    result = evaluate_vae_likelihood(models["model"], source, k=k, likelihood=config.likelihood,
                                     value_range=recipe.value_range, binarize=binarize, seed=seed, device=device,
                                     progress=progress)
    return {"source": str(path), "recipe": recipe.name, "step": int(payload.get("step", 0)), **result.as_dict(),
            "data": {**source.info, "seed": seed}}
