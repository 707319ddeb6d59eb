"""Training configurations: plain dataclasses, dumped to JSON beside every run.

>>> cfg = GANTrainConfig(loss="wgan", gp_weight=10.0, n_critic=5, steps=2000)
>>> text = cfg.to_json()
>>> GANTrainConfig.from_json(text) == cfg
True
>>> load_config(text).loss          # any config back from its JSON
'wgan'

``BaseTrainConfig`` holds what every trainer shares (budget, device, AMP,
cadences); :class:`GANTrainConfig` (and its conditional extension
:class:`CGANTrainConfig`), :class:`SRTrainConfig` and :class:`VAETrainConfig`
add their own fields.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

__all__ = [
    "AMP_MODES",
    "LOSS_KINDS",
    "BaseTrainConfig",
    "CGANTrainConfig",
    "GANTrainConfig",
    "SRTrainConfig",
    "VAETrainConfig",
    "load_config",
]

AMP_MODES = ("off", "bf16", "fp16")
LOSS_KINDS = ("minimax", "nonsaturating", "lsgan", "wgan", "hinge")
C = TypeVar("C", bound="BaseTrainConfig")


@dataclass
class BaseTrainConfig:
    """Fields shared by every trainer.

    Attributes:
        batch_size: images per optimisation step *per process* (under DDP the
            global batch is ``batch_size * world_size``).
        steps: number of training steps (GAN: generator steps).
        max_seconds: wall-clock budget; training stops cleanly (samples,
            checkpoint, history) after the step that crosses it. ``None`` = no budget.
        amp: ``"off"``, ``"bf16"`` (autocast, no scaler) or ``"fp16"`` (autocast + GradScaler).
        channels_last: convert models and image batches to NHWC memory format.
        compile: wrap the networks' forward in ``torch.compile``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        seed: seeds the models' noise, the data order and the fixed sample batch.
        out_dir: where samples / checkpoints / config / history go (``None``: nothing written).
        checkpoint_every: steps between checkpoints (0: only the final one; needs ``out_dir``).
        sample_every: steps between fixed-sample grids (0: only the final one).
        n_fixed_samples: images in each grid (36 = 6x6).
        log_every: steps between host transfers of the logged values (and callbacks' ``on_log``).
        progress: show a ``tqdm`` progress bar.
        num_workers: DataLoader workers for datasets without a ``batch()`` method.
        deterministic: switch on deterministic algorithms (slower on GPU).
    """

    batch_size: int = 64
    steps: int = 1000
    max_seconds: float | None = None
    amp: str = "off"
    channels_last: bool = False
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    out_dir: str | None = None
    checkpoint_every: int = 0
    sample_every: int = 0
    n_fixed_samples: int = 36
    log_every: int = 50
    progress: bool = True
    num_workers: int = 0
    deterministic: bool = False

    kind: ClassVar[str] = "base"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that holds an impossible value."""
        _positive_int(self, "batch_size")
        _positive_int(self, "steps", allow_zero=True)
        _positive_int(self, "n_fixed_samples")
        _positive_int(self, "log_every")
        for name in ("checkpoint_every", "sample_every", "num_workers"):
            _positive_int(self, name, allow_zero=True)
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be positive or None, got {self.max_seconds!r}")

    # -- JSON ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of all fields plus ``"config_kind"`` (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["config_kind"] = self.kind
        return data

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text of :meth:`to_dict`; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n")
        return text

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` listing the known ones."""
        data = dict(data)
        kind = data.pop("config_kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"this JSON holds a {kind!r} config, not {cls.kind!r}: use load_config()")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(names)}")
        for key, value in data.items():
            if isinstance(value, list):  # JSON has no tuples
                data[key] = tuple(value)
        return cls(**data)

    @classmethod
    def from_json(cls: type[C], source: str | Path) -> C:
        """Build from JSON text or from the path of a JSON file."""
        return cls.from_dict(json.loads(_read_json_source(source)))

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


@dataclass
class GANTrainConfig(BaseTrainConfig):
    """Adversarial training (:class:`gan_utils.train.GANTrainer`).

    Attributes:
        loss: one of ``LOSS_KINDS`` (see ``gan_utils.losses.discriminator_loss``).
        n_critic: discriminator steps per generator step (each on a new real batch).
        lr_g, lr_d, betas: Adam settings of the generator / discriminator.
        z_dim: latent size; ``None`` takes ``generator.z_dim``.
        gp_weight: WGAN-GP weight (0 = off).
        r1_gamma: R1 weight gamma; the penalty added is ``gamma / 2 * E||grad D(x)||^2`` (0 = off).
        clip: clip every critic weight to ``[-clip, clip]`` after each D step (WGAN); ``None`` = off.
        ema_decay: exponential moving average of the generator (e.g. 0.999); ``None`` = off.
        conditional: pass labels to G and D; ``None`` decides from ``generator.num_classes``.
        num_classes: number of classes of a conditional model (``None``: from the model).
        reuse_fake: the generator step reuses the fakes (same z) of the last
            discriminator step, as the PyTorch DCGAN example does: one generator
            forward per step instead of two.
    """

    loss: str = "nonsaturating"
    n_critic: int = 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    z_dim: int | None = None
    gp_weight: float = 0.0
    r1_gamma: float = 0.0
    clip: float | None = None
    ema_decay: float | None = None
    conditional: bool | None = None
    num_classes: int | None = None
    reuse_fake: bool = True

    kind: ClassVar[str] = "gan"

    def validate(self) -> None:
        super().validate()
        if self.loss not in LOSS_KINDS:
            raise ValueError(f"loss must be one of {LOSS_KINDS}, got {self.loss!r}")
        _positive_int(self, "n_critic")
        _betas(self.betas)
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("gp_weight", "r1_gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be positive or None, got {self.clip!r}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1) or None, got {self.ema_decay!r}")


@dataclass
class CGANTrainConfig(GANTrainConfig):
    """Conditional GAN with extras (:class:`gan_utils.train.ConditionalGANTrainer`).

    Attributes:
        mode_seeking: weight of :func:`gan_utils.losses.mode_seeking_term` in G's loss (0 = off).
        ema_rampup: ramp the EMA decay up as ``min(ema_decay, (1 + t) / (10 + t))``
            (:class:`gan_utils.train.ema.RampedEMA`).
        aux_weight: AC-GAN weight: D's auxiliary head is fitted to the real
            labels (cross-entropy) and G is asked to make it predict the
            requested label on fakes (needs a discriminator with ``classify``; 0 = off).
    """

    mode_seeking: float = 0.3
    ema_rampup: bool = True
    aux_weight: float = 0.0

    kind: ClassVar[str] = "cgan"

    def validate(self) -> None:
        super().validate()
        if not self.mode_seeking >= 0:
            raise ValueError(f"mode_seeking must be >= 0, got {self.mode_seeking!r}")
        if not self.aux_weight >= 0:
            raise ValueError(f"aux_weight must be >= 0, got {self.aux_weight!r}")


@dataclass
class SRTrainConfig(GANTrainConfig):
    """Super-resolution GAN (:class:`gan_utils.train.SRTrainer`), Penn seed defaults.

    The generator maps the degraded image (``high -> low_size -> high``,
    bilinear) to the high-resolution one; its loss is
    ``recon_weight * recon + gan_weight * adversarial`` (1:1 by default).

    Attributes:
        recon_loss: ``"mse"`` or ``"l1"``.
        recon_weight, gan_weight: weights of the two generator terms.
        low_size: side of the low-resolution image (16 for 64 -> 16 -> 64).
        degrade_mode: interpolation used to go back up (``"bilinear"``).
    """

    batch_size: int = 32
    recon_loss: str = "mse"
    recon_weight: float = 1.0
    gan_weight: float = 1.0
    low_size: int = 16
    degrade_mode: str = "bilinear"
    n_fixed_samples: int = 8

    kind: ClassVar[str] = "sr"

    def validate(self) -> None:
        super().validate()
        if self.recon_loss not in ("mse", "l1"):
            raise ValueError(f"recon_loss must be 'mse' or 'l1', got {self.recon_loss!r}")
        if self.recon_weight < 0 or self.gan_weight < 0:
            raise ValueError(f"recon_weight and gan_weight must be >= 0, got {self.recon_weight}, {self.gan_weight}")
        _positive_int(self, "low_size")


@dataclass
class VAETrainConfig(BaseTrainConfig):
    """VAE / autoencoder training (:class:`gan_utils.train.VAETrainer`).

    Attributes:
        model_kind: ``"vae"`` (model has ``encode(x) -> (mu, logvar)`` and
            ``decode(z) -> logits``) or ``"ae"`` (``encode(x) -> z``,
            ``decode(z) -> image``).
        beta: weight of the KL term (1 = the ELBO).
        likelihood: ``"bernoulli"`` (decoder returns logits, targets in [0, 1])
            or ``"gaussian"`` (unit-variance Gaussian: squared error / 2).
        train_samples: importance samples per image in training; 1 = ELBO,
            ``k > 1`` = the IWAE bound with ``k`` samples.
        eval_iwae_k: samples of the IWAE bound logged on the fixed batch at log time (0 = off).
        recon_loss: AE reconstruction loss, ``"mse"``, ``"l1"`` or ``"bce"`` (mean per pixel).
        moment_weight: AE latent moment loss weight (mean 0, variance 1,
            kurtosis 3 on every latent axis; 0 = off).
        lr, betas: Adam settings.
    """

    model_kind: str = "vae"
    beta: float = 1.0
    likelihood: str = "bernoulli"
    train_samples: int = 1
    eval_iwae_k: int = 5
    recon_loss: str = "mse"
    moment_weight: float = 0.0
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 128

    kind: ClassVar[str] = "vae"

    def validate(self) -> None:
        super().validate()
        if self.model_kind not in ("vae", "ae"):
            raise ValueError(f"model_kind must be 'vae' or 'ae', got {self.model_kind!r}")
        if self.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {self.likelihood!r}")
        if self.recon_loss not in ("mse", "l1", "bce"):
            raise ValueError(f"recon_loss must be 'mse', 'l1' or 'bce', got {self.recon_loss!r}")
        _positive_int(self, "train_samples")
        _positive_int(self, "eval_iwae_k", allow_zero=True)
        if self.beta < 0 or self.moment_weight < 0:
            raise ValueError(f"beta and moment_weight must be >= 0, got {self.beta}, {self.moment_weight}")
        _betas(self.betas)
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")


_KINDS: dict[str, type[BaseTrainConfig]] = {
    c.kind: c for c in (BaseTrainConfig, GANTrainConfig, SRTrainConfig, VAETrainConfig)
}


def load_config(source: str | Path | dict[str, Any]) -> BaseTrainConfig:
    """Any config back from JSON text, a JSON file path or a dict (uses ``"config_kind"``)."""
    data = dict(source) if isinstance(source, dict) else json.loads(_read_json_source(source))
    kind = data.get("config_kind")
    if kind not in _KINDS:
        raise ValueError(f"config_kind must be one of {sorted(_KINDS)}, got {kind!r}")
    return _KINDS[kind].from_dict(data)


def _read_json_source(source: str | Path) -> str:
    if isinstance(source, Path):
        return source.read_text()
    text = source.lstrip()
    if text.startswith("{"):
        return source
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"expected JSON text or the path of a JSON file, got {source!r}")
    return path.read_text()


def _positive_int(cfg: object, name: str, allow_zero: bool = False) -> None:
    value = getattr(cfg, name)
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        want = "a non-negative int" if allow_zero else "a positive int"
        raise ValueError(f"{name} must be {want}, got {value!r}")


def _betas(betas: Any) -> None:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0.0 <= float(b) < 1.0 for b in betas)):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")

