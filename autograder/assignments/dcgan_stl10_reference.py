"""What the ``dcgan_stl10`` checks share: the kit's names each answer cell may not call, the
``hidden`` decorator, the seed's constants, functional references (Table 2 and its mirror on the
student's own weights, one reference step of each kind, overlap counts, a gradient penalty that
takes ``eps``) and the seeded cases. The checks are in :mod:`.dcgan_stl10` (parts 1-3) and
:mod:`.dcgan_stl10_wgan` (parts 4-5).
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

import autograder.checks as checks
from autograder.checks import core, fail
from gan_utils import losses as ref

__all__ = [  # what the check modules share (the hidden module re-exports them)
    "CLIP", "DISPATCHERS", "D_KEYS", "GP_WEIGHT", "G_KEYS", "LOSSES", "LSGAN", "MIRROR", "MODES",
    "OFF_LIMITS", "OVERLAP_CASES", "PENALTY", "SEED_CLIP", "SLOPE", "TABLE2", "WGAN", "Z_DIM", "batch_norm",
    "build", "dev", "gp_case", "hidden", "layers_of", "linear_critic", "ref", "reference_clip_weights",
    "reference_discriminator", "reference_discriminator_step", "reference_generator",
    "reference_generator_step", "reference_gradient_penalty", "reference_overlap_counts",
    "reference_wgan_critic_loss", "run_step", "score_cases", "tiny_state",
]


def _kit(module: str, *names: str) -> tuple[str, ...]:
    """Each name under both spellings, ``gan_utils.<package>.<name>`` and ``gan_utils.<module>.<name>`` (one object)."""
    package = module.rpartition(".")[0]
    return tuple(f"gan_utils.{where}.{name}" for name in names for where in (package, module))


DISPATCHERS = _kit("losses.gan", "generator_loss", "discriminator_loss")
WGAN = _kit("losses.gan", "wgan_critic_loss", "wgan_generator_loss", "hinge_generator_loss")
LSGAN = _kit("losses.gan", "lsgan_discriminator_loss", "lsgan_generator_loss")
PENALTY = _kit("losses.penalties", "gradient_penalty", "input_gradients")
CLIP = _kit("losses.penalties", "clip_weights_")
OFF_LIMITS: dict[str, tuple[str, ...]] = {  # answer cell -> the kit's finished versions it may not call
    "generator": _kit("models.dcgan", "DCGANGenerator"),
    "discriminator": _kit("models.dcgan", "DCGANDiscriminator"),
    "dcgan_init": _kit("models.dcgan", "dcgan_init"),
    "upsample_block": _kit("models.upsample", "UpsampleBlock"),
    "discriminator_step": (),
    "generator_step": (),
    "overlap_counts": (),
    "wgan_losses": WGAN + DISPATCHERS,
    "lsgan_losses": LSGAN + DISPATCHERS,
    "wgan_clip": CLIP,
    "wgan_critic_step": WGAN + CLIP + DISPATCHERS,
    "gradient_penalty": PENALTY,
    "wgan_gp_critic_step": WGAN + PENALTY + DISPATCHERS,
}
hidden = checks.hidden_checks(OFF_LIMITS)

Z_DIM, SEED_CLIP, GP_WEIGHT, SLOPE = 100, 0.05, 10.0, 0.2  # Penn seed z; Montreal clip; Gulrajani lambda
TABLE2 = ((100, 1024), (1024, 512), (512, 256), (256, 128), (128, 3))  # (in, out) of the five 4x4 ConvT
MIRROR = ((3, 128), (128, 256), (256, 512), (512, 1024), (1024, 1))
LOSSES = {"bce": ref.bce_discriminator_loss, "lsgan": ref.lsgan_discriminator_loss,
          "nonsaturating": ref.nonsaturating_generator_loss, "lsgan_g": ref.lsgan_generator_loss}
MODES = ("convtranspose", "nearest", "bilinear")
OVERLAP_CASES = ((8, 4, 2, 1), (8, 3, 2, 1), (8, 3, 2, 0), (7, 5, 3, 1), (6, 4, 2, 0), (5, 2, 2, 0), (4, 1, 1, 0))
D_KEYS, G_KEYS = ("G", "D", "opt_d", "real", "z"), ("G", "D", "opt_g", "z")


# --- references ---------------------------------------------------------------------------------
def layers_of(model: nn.Module, kind: type | tuple[type, ...]) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def batch_norm(x: torch.Tensor, bn: nn.Module) -> torch.Tensor:
    return F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)


def reference_generator(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Table 2 in train mode on ``G``'s weights: ConvT -> BN -> ReLU (x4), ConvT -> tanh."""
    convs, bns = layers_of(G, nn.ConvTranspose2d), layers_of(G, nn.BatchNorm2d)
    if len(convs) != 5 or len(bns) != 4:
        fail(f"Table 2 has 5 ConvTranspose2d and 4 BatchNorm2d layers; found {len(convs)} and {len(bns)}")
    x = z.reshape(z.shape[0], -1, 1, 1)
    for i, conv in enumerate(convs):
        x = F.conv_transpose2d(x, conv.weight, conv.bias, stride=1 if i == 0 else 2, padding=0 if i == 0 else 1)
        x = F.relu(batch_norm(x, bns[i])) if i < 4 else torch.tanh(x)
    return x


def reference_discriminator(D: nn.Module, x: torch.Tensor, slope: float = SLOPE) -> torch.Tensor:
    """The mirror in train mode on ``D``'s weights: Conv -> LReLU; (Conv -> BN -> LReLU) x3; Conv -> logit."""
    convs, bns = layers_of(D, nn.Conv2d), layers_of(D, nn.BatchNorm2d)
    if len(convs) != 5 or len(bns) != 3:
        fail(f"the mirrored Table 2 has 5 Conv2d and 3 BatchNorm2d layers; found {len(convs)} and {len(bns)}")
    for i, conv in enumerate(convs[:4]):
        x = F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)
        x = F.leaky_relu(batch_norm(x, bns[i - 1]) if i else x, slope)
    return F.conv2d(x, convs[4].weight, convs[4].bias).reshape(x.shape[0])


def reference_discriminator_step(G, D, opt_d, real, z, loss_fn=ref.bce_discriminator_loss, zero_grad=True) -> float:
    loss = loss_fn(D(real), D(G(z).detach()))
    if zero_grad:
        opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss.item()


def reference_generator_step(G, D, opt_g, z, loss_fn=ref.nonsaturating_generator_loss, zero_grad=True) -> float:
    loss = loss_fn(D(G(z)))
    if zero_grad:
        opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    return loss.item()


def reference_wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return fake_scores.mean() - real_scores.mean()


def reference_clip_weights(module: nn.Module, clip: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-clip, clip)


def reference_gradient_penalty(critic, real, fake, eps=None) -> torch.Tensor:
    """``mean_i (||grad f(x_hat_i)|| - 1)^2``, ``x_hat = eps real + (1 - eps) fake``; depends on the critic only."""
    if eps is None:
        eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (eps.detach() * real.detach() + (1 - eps.detach()) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def reference_overlap_counts(in_size: int, kernel_size: int, stride: int, padding: int) -> torch.Tensor:
    """Ones pushed through a 1-D transposed conv with an all-ones kernel."""
    ones, kernel = torch.ones(1, 1, in_size, dtype=torch.float64), torch.ones(1, 1, kernel_size, dtype=torch.float64)
    return F.conv_transpose1d(ones, kernel, stride=stride, padding=padding).reshape(-1).round().long()


# --- cases ----------------------------------------------------------------------------------------
def dev() -> torch.device:
    return checks.grading_device()


def build(cls, what: str, seed: int, randomise: bool = False, device=None, **kwargs) -> nn.Module:
    """``cls(**kwargs)`` built after ``manual_seed(seed)``; optionally with non-trivial weights, BN scales and biases."""
    torch.manual_seed(seed)
    model = checks.build_model(cls, what, dev() if device is None else device, **kwargs)
    with torch.no_grad():
        for p in model.parameters() if randomise else ():
            p.normal_(0.0, 0.2) if p.dim() > 1 else p.uniform_(0.5, 1.5)
    return model.train()


def tiny_state(seed: int, critic=None, scale: float = 1.0, lr: float = 0.1):
    """``make_state`` for ``checks.check_step``: tiny G and D (no BatchNorm), an SGD optimiser each, real images, latents."""
    def make() -> dict:
        torch.manual_seed(seed)
        G = checks.TinyGenerator(z_dim=8, image_shape=(3, 8, 8)).to(dev())
        D = (critic() if critic else checks.TinyDiscriminator(image_shape=(3, 8, 8))).to(dev())
        with torch.no_grad():
            for p in D.parameters():
                p.mul_(scale)
        return {"G": G, "D": D, "opt_d": torch.optim.SGD(D.parameters(), lr=lr), "opt_g": torch.optim.SGD(G.parameters(), lr=lr),
                "real": torch.rand(6, 3, 8, 8, device=dev()) * 2 - 1, "z": torch.randn(6, 8, device=dev())}
    return make


def run_step(step, keys: tuple[str, ...], swap: dict | None = None, **kwargs):
    """``state -> step(*state[keys], **kwargs)``, with ``swap`` bound in the step's notebook namespace."""
    def run(state: dict):
        with checks.swapped_in(step, **(swap or {})):
            return step(*(state[k] for k in keys), **kwargs)
    return run


def linear_critic() -> nn.Module:
    """f(x) = w.x + b with ||w|| well above 1: its penalty (||w|| - 1)^2 does not depend on eps."""
    critic = nn.Sequential(nn.Flatten(), nn.Linear(192, 1), nn.Flatten(0))
    with torch.no_grad():
        critic[1].weight.mul_(20.0)
    return critic


def gp_case(seed: int, n: int = 5):
    torch.manual_seed(seed)
    critic = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(64, 1), nn.Flatten(0))
    real, fake, eps = (torch.rand(n, 3, 4, 4, dtype=torch.float64) * 2 - 1, torch.rand(n, 3, 4, 4, dtype=torch.float64) * 2 - 1,
                       torch.rand(n, 1, 1, 1, dtype=torch.float64))
    return critic.double().to(dev()), real.to(dev()), fake.to(dev()), eps.to(dev())


def score_cases(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Real scores (6,) and fake scores (4,): different batch sizes catch sum-for-mean and broadcasting."""
    g = torch.Generator().manual_seed(seed)
    return [((torch.randn(6, generator=g, dtype=torch.float64) + 0.5).to(dev()),
             (torch.randn(4, generator=g, dtype=torch.float64) - 0.3).to(dev())) for _ in range(2)]


core.watch_functions(sys.modules[__name__])
