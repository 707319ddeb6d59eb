"""LPIPS (Zhang et al. 2018), version 0.1 with the AlexNet trunk, from local weights only.

``LPIPS(x, y) = sum_l mean_hw( w_l . (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2 )``
where ``f_l`` are the ReLU outputs of AlexNet's five conv stages (on inputs
shifted and scaled channel-wise as the reference code does), ``|.|`` is the norm
over channels at each pixel and ``w_l`` are the learned non-negative linear heads.

Two weight files are needed, and neither is ever downloaded:

* the linear heads ``alex.pth`` (a few KB), shipped inside the ``lpips`` wheel
  (``pip install lpips``; found automatically) or given as ``heads=PATH``;
* torchvision's ImageNet AlexNet ``alexnet-owt-7be5be79.pth`` (233 MB) from
  https://download.pytorch.org/models/alexnet-owt-7be5be79.pth, put in
  ``default_weights_dir()`` (``$GAN_UTILS_WEIGHTS``, default
  ``~/.cache/gan_utils/weights``) or ``$TORCH_HOME/hub/checkpoints``, or given as
  ``trunk=PATH``.

>>> metric = LPIPS()                                   # doctest: +SKIP
>>> metric(sr_images, hr_images).mean()                 # images in [0, 1]  # doctest: +SKIP

Without the AlexNet file, ``LPIPS(random_trunk_seed=0)`` builds a randomly
initialised AlexNet locally (with the real heads) so that the whole LPIPS code
path can run, e.g. in a quick smoke run. Such a module has ``calibrated = False``
and says so in ``info``: its distances are **not** LPIPS and must never be
reported as LPIPS (:func:`gan_utils.metrics.evaluate_sr` files them under
``lpips_uncalibrated``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn

from gan_utils.metrics.extractors import check_unit_images, find_weights

__all__ = ["LPIPS", "lpips_heads_path"]

_CHANNELS = (64, 192, 384, 256, 256)
# AlexNet ``features`` indices that end each of the five stages (after the ReLU)
_STAGE_ENDS = (2, 5, 8, 10, 12)


def lpips_heads_path(heads: str | Path | None = None) -> Path:
    """The LPIPS v0.1 AlexNet heads file: ``heads``, or the one inside the installed ``lpips`` package."""
    if heads is not None:
        path = Path(heads).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no LPIPS heads file at {path} (expected lpips' weights/v0.1/alex.pth)")
        return path
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the LPIPS linear heads ship with the lpips package: pip install lpips==0.1.4, "
                                "or pass heads=PATH to its weights/v0.1/alex.pth")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / "alex.pth"
    if not path.is_file():
        raise FileNotFoundError(f"the installed lpips package has no {path}")
    return path


def _alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet convolutional trunk, parameters allocated but not initialised.

    The model is built on the meta device, so its 58 M classifier parameters, which LPIPS
    never uses, are neither allocated nor initialised (about 0.6 s on a CPU)."""
    from torchvision.models import alexnet

    with torch.device("meta"):
        features = alexnet(weights=None).features
    return features.to_empty(device="cpu")


class LPIPS(nn.Module):
    """Learned perceptual distance between image batches (lower = more alike; 0 for identical images).

    Args:
        trunk: AlexNet ImageNet weights (torchvision's state dict), default found
            by :func:`gan_utils.metrics.find_weights` ``("alexnet")``.
        heads: the v0.1 linear heads, default from the ``lpips`` package.
        random_trunk_seed: build a seeded random AlexNet instead of loading one
            (``calibrated`` is then False: a code-path check, not LPIPS).

    ``forward(x, y)`` takes ``(N, 3, H, W)`` (or 1-channel, repeated) images in
    **[0, 1]** and returns ``(N,)`` distances. Parameters are frozen; the module
    is in eval mode (dropout off), and gradients flow to the inputs (usable as a
    loss).
    """

    def __init__(self, trunk: str | Path | None = None, heads: str | Path | None = None, *,
                 random_trunk_seed: int | None = None) -> None:
        super().__init__()
        if random_trunk_seed is not None:
            if trunk is not None:
                raise ValueError("give either trunk=PATH (real LPIPS) or random_trunk_seed (a code-path check), not both")
            if not isinstance(random_trunk_seed, int) or isinstance(random_trunk_seed, bool):
                raise TypeError(f"random_trunk_seed must be an int, got {type(random_trunk_seed).__name__}")
            net = _alexnet_features()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(random_trunk_seed)
                for layer in net:  # in construction order: the values alexnet(weights=None) gives its features
                    if isinstance(layer, nn.Conv2d):
                        layer.reset_parameters()
            trunk_info = (f"randomly initialised AlexNet (seed {random_trunk_seed}), built locally: NOT LPIPS, "
                          "for code-path checks only")
        else:
            trunk_path = find_weights("alexnet", trunk)
            state = torch.load(trunk_path, map_location="cpu", weights_only=True)
            features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
            if not features:
                raise ValueError(f"{trunk_path} is not a torchvision AlexNet state dict (no 'features.*' keys)")
            net = _alexnet_features()
            net.load_state_dict(features)
            trunk_info = str(trunk_path)
        self.calibrated = random_trunk_seed is None
        self.stages = nn.ModuleList(net[start:end] for start, end in zip((0, *_STAGE_ENDS[:-1]), _STAGE_ENDS, strict=True))
        head_state = torch.load(lpips_heads_path(heads), map_location="cpu", weights_only=True)
        with torch.random.fork_rng(devices=[]):  # overwritten below: building them must not use the caller's RNG
            self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS)
        for i, head in enumerate(self.heads):
            key = f"lin{i}.model.1.weight" if f"lin{i}.model.1.weight" in head_state else f"lin{i}.model.0.weight"
            head.weight.data.copy_(head_state[key])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])
        self.info = {"trunk": trunk_info, "heads": str(lpips_heads_path(heads)), "calibrated": self.calibrated}
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def _stage_features(self, x: Tensor) -> list[Tensor]:
        h = ((2 * x - 1) - self.shift) / self.scale
        out = []
        for stage in self.stages:
            h = stage(h)
            out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Distances ``(N,)`` between ``x`` and ``y`` (both ``(N, C, H, W)`` in [0, 1], C in {1, 3})."""
        x, y = check_unit_images(x, "x"), check_unit_images(y, "y")
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[1] not in (1, 3):
            raise ValueError(f"LPIPS takes 1- or 3-channel images, got {x.shape[1]} channels")
        if min(x.shape[2:]) < 32:  # AlexNet's stride-4 conv and two stride-2 pools
            raise ValueError(f"LPIPS's AlexNet needs images of at least 32x32, got {x.shape[2]}x{x.shape[3]}")
        if x.shape[1] == 1:
            x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
        total = x.new_zeros(x.shape[0])
        for head, fx, fy in zip(self.heads, self._stage_features(x), self._stage_features(y), strict=True):
            total = total + head((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total
