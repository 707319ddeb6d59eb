"""What the ``vae`` checks compare with: functional references, the seeded cases, and what each known
slip computes (so a wrong answer is told which slip it matches). The checks are in :mod:`.vae`.

Conventions (stated in the notebook): the encoder's second head is the log-variance, ``sigma =
exp(logvar / 2)``; the KL is per data point, summed over the latent dims; the negative ELBO sums over
pixels and averages over the batch, with the Bernoulli term on logits and the Gaussian term on
``sigmoid(logits)`` means with every constant; ``L_k`` is ``logsumexp - log k`` over the ``k`` rows;
the planar log-determinant keeps the absolute value; bits per dim are those of ``y = (x + u) / 256``.
All references run in float64 on the grading device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

import autograder.checks as checks

D64 = torch.float64
LAYERS = {"fc1": (400, 784), "fc_mu": (20, 400), "fc_logvar": (20, 400), "fc3": (400, 20), "fc4": (784, 400)}


def rand(*shape: int, g: torch.Generator, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    """Seeded float64 normal values on the grading device."""
    return (torch.randn(*shape, generator=g, dtype=D64) * scale + shift).to(checks.grading_device())


def uniform(*shape: int, g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> Tensor:
    return (lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=D64)).to(checks.grading_device())


# --- the Table 1 encoder --------------------------------------------------------------------
def table_one_state(seed: int) -> dict[str, Tensor]:
    """Seeded weights for the five layers (PyTorch's default scale, 1 / sqrt(fan_in))."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, (out, inp) in LAYERS.items():
        state[f"{name}.weight"] = rand(out, inp, g=g, scale=1 / math.sqrt(inp))
        state[f"{name}.bias"] = rand(out, g=g, scale=1 / math.sqrt(inp))
    return state


def ref_encode(state: dict[str, Tensor], x: Tensor, slip: str = "") -> tuple[Tensor, Tensor]:
    lin = lambda name, v: v @ state[f"{name}.weight"].T + state[f"{name}.bias"]  # noqa: E731
    h = F.relu(lin("fc1", x.flatten(1)))
    mu, logvar = lin("fc_mu", h), lin("fc_logvar", h)
    if slip == "relu":
        return F.relu(mu), F.relu(logvar)
    if slip == "std":
        return mu, torch.exp(0.5 * logvar)
    if slip == "swap":
        return logvar, mu
    return mu, logvar


ENCODE_SLIPS = {"relu": "a ReLU follows the two heads (Table 1 lists one; it forbids negative means and log-variances)",
                "std": "the second head returns the standard deviation exp(logvar / 2) instead of the log-variance",
                "swap": "mu and logvar are swapped (return (mu, logvar), mu from fc_mu)"}


# --- KL, negative ELBO ---------------------------------------------------------------------
def ref_kl(mu: Tensor, logvar: Tensor, slip: str = "") -> Tensor:
    if slip == "logstd":
        return 0.5 * (mu**2 + torch.exp(2 * logvar) - 1 - 2 * logvar).sum(-1)
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar)
    if slip == "sign":
        return -kl.sum(-1)
    if slip == "dim_mean":
        return kl.mean(-1)
    if slip == "no_half":
        return 2 * kl.sum(-1)
    return kl.sum(-1)


KL_SLIPS = {"sign": "the sign is flipped (a KL divergence is >= 0: +mu^2 + sigma^2 - 1 - log sigma^2)",
            "dim_mean": "the latent dims are averaged (mean) instead of summed",
            "logstd": "logvar is treated as log sigma (it is log sigma^2: sigma^2 = exp(logvar))",
            "no_half": "the factor 1/2 is missing"}


def kl_cases() -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(31)
    return [(rand(n, d, g=g, scale=1.5), rand(n, d, g=g)) for n, d in ((7, 5), (3, 20), (1, 1), (64, 2))]


def ref_negative_elbo(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor, likelihood: str = "bernoulli",
                      beta: float = 1.0, sigma: Tensor | float = 1.0, slip: str = "") -> Tensor:
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        mean = logits if slip == "no_sigmoid" else torch.sigmoid(logits)
        nll = 0.5 * ((x - mean) / s) ** 2
        if slip != "no_log_sigma":
            nll = nll + torch.log(s)
        if slip != "no_constant":
            nll = nll + 0.5 * math.log(2 * math.pi)
    recon = nll.flatten(1).mean(1) if slip == "pixel_mean" else nll.flatten(1).sum(1)
    kl = ref_kl(mu, logvar)
    per = beta * recon + kl if slip == "beta_on_recon" else recon + beta * kl
    return per.sum() if slip == "batch_sum" else per.mean()


ELBO_SLIPS = {"pixel_mean": "the reconstruction term is averaged over pixels (reduction='mean') instead of summed",
              "batch_sum": "the batch is summed instead of averaged",
              "beta_on_recon": "beta multiplies the reconstruction term instead of the KL",
              "no_constant": "the Gaussian term drops the constant 0.5 log(2 pi) per pixel (part 4 needs a true density)",
              "no_log_sigma": "the Gaussian term drops log sigma per pixel",
              "no_sigmoid": "the Gaussian means are the logits themselves (use sigmoid(logits))"}


def elbo_cases() -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(41)
    n = 6
    logits, mu, lv = rand(n, 1, 28, 28, g=g, scale=3.0), rand(n, 20, g=g), rand(n, 20, g=g, scale=0.5)
    binary = (uniform(n, 1, 28, 28, g=g) < 0.3).to(D64)
    grey = uniform(n, 1, 28, 28, g=g)
    sigma_px = uniform(1, 28, 28, g=g, lo=0.05, hi=0.5)
    return [("bernoulli, binary x, beta=1", dict(logits=logits, x=binary, mu=mu, logvar=lv)),
            ("bernoulli, grey x, beta=0.5", dict(logits=logits, x=grey, mu=mu, logvar=lv, likelihood="bernoulli", beta=0.5)),
            ("gaussian, sigma=1.0", dict(logits=logits, x=grey, mu=mu, logvar=lv, likelihood="gaussian")),
            ("gaussian, sigma=0.3, beta=2", dict(logits=logits, x=grey, mu=mu, logvar=lv, likelihood="gaussian", beta=2.0, sigma=0.3)),
            ("gaussian, per-pixel sigma tensor (1, 28, 28)", dict(logits=logits, x=grey, mu=mu, logvar=lv,
                                                                  likelihood="gaussian", sigma=sigma_px))]


# --- IWAE, planar flow, bits per dim --------------------------------------------------------
def ref_iwae(lpx: Tensor, lpz: Tensor, lqz: Tensor, slip: str = "") -> Tensor:
    lw = lpx + lpz + lqz if slip == "q_sign" else lpx + lpz - lqz
    if slip == "mean":
        return lw.mean(0)
    if slip == "no_log_k":
        return torch.logsumexp(lw, 0)
    return torch.logsumexp(lw, 0) - math.log(lw.shape[0])


IWAE_SLIPS = {"mean": "the log weights are averaged (that is the ELBO estimate, not L_k)",
              "no_log_k": "the - log k is missing (logsumexp alone is log of the sum, not of the mean)",
              "q_sign": "log q(z|x) is added instead of subtracted"}


def iwae_cases() -> list[tuple[str, tuple[Tensor, Tensor, Tensor]]]:
    g = torch.Generator().manual_seed(51)
    cases = []
    for what, k, n, shift in (("k=5, log weights near -100", 5, 7, -100.0), ("k=5, log weights near -1000", 5, 4, -1000.0),
                              ("k=1", 1, 3, -50.0), ("k=50", 50, 2, -300.0)):
        cases.append((what, (rand(k, n, g=g, scale=5.0, shift=shift), rand(k, n, g=g, scale=3.0, shift=-20.0),
                             rand(k, n, g=g, scale=3.0, shift=-15.0))))
    return cases


def ref_planar(z: Tensor, w: Tensor, u: Tensor, b: Tensor, slip: str = "") -> Tensor:
    a = z @ w + b
    deriv = torch.tanh(a) if slip == "tanh" else 1 - torch.tanh(a) ** 2
    inner = deriv * torch.dot(w, u) if slip == "no_one" else 1 + deriv * torch.dot(w, u)
    return torch.log(inner) if slip == "no_abs" else torch.log(inner.abs())


PLANAR_SLIPS = {"tanh": "psi uses tanh(w.z + b) instead of its derivative 1 - tanh^2",
                "no_one": "the 1 + is missing (det(I + u psi^T) = 1 + u^T psi)",
                "no_abs": "the absolute value is missing (log of a negative number is nan)"}


def planar_cases() -> list[tuple[str, tuple[Tensor, Tensor, Tensor, Tensor]]]:
    g = torch.Generator().manual_seed(61)
    dev = checks.grading_device()
    negative = (torch.tensor([2.0, 0.0, 0.0], dtype=D64, device=dev), torch.tensor([-1.5, 0.3, 0.0], dtype=D64, device=dev))
    return [("z (9, 3)", (rand(9, 3, g=g), rand(3, g=g), rand(3, g=g, scale=0.5), rand(1, g=g).reshape(()))),
            ("z (6, 20)", (rand(6, 20, g=g), rand(20, g=g, scale=0.3), rand(20, g=g, scale=0.3), rand(1, g=g).reshape(()))),
            ("z (12, 3), w.u = -3 (1 + u.psi < 0 near w.z + b = 0)", (rand(12, 3, g=g, scale=0.3), *negative,
                                                                   torch.tensor(0.0, dtype=D64, device=dev)))]


def ref_bpd(nll: Tensor | float, d: int, slip: str = "") -> Tensor | float:
    if slip == "no_offset":
        return nll / (d * math.log(2))
    if slip == "nats":
        return (nll + d * math.log(256)) / d
    if slip == "log255":
        return (nll + d * math.log(255)) / (d * math.log(2))
    if slip == "no_d":
        return (nll + d * math.log(256)) / math.log(2)
    if slip == "minus":
        return (nll - d * math.log(256)) / (d * math.log(2))
    return (nll + d * math.log(256)) / (d * math.log(2))


BPD_SLIPS = {"no_offset": "the D ln 256 correction for the division by 256 is missing",
             "nats": "the result stays in nats (divide by ln 2 for bits)",
             "log255": "the correction uses 255 levels; y = (x + u) / 256 divides by 256",
             "no_d": "it is not divided by the number of pixels D",
             "minus": "D ln 256 is subtracted instead of added"}


def bpd_cases() -> list[tuple[str, Tensor | float, int]]:
    g = torch.Generator().manual_seed(71)
    return [("a (5,) tensor of NLLs, D=784", rand(5, g=g, scale=300.0, shift=-1500.0), 784),
            ("a float NLL, D=3072", 1234.5, 3072),
            ("a (2, 3) tensor, D=12288", rand(2, 3, g=g, scale=1000.0, shift=-20000.0), 12288)]
