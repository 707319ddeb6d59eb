"""What ``tests/test_assignments.py`` grades for ``inversion_restoration``: known slips (and exactly the tests
each must fail), correct variants (full marks: ``F.mse_loss`` with ``reduction="sum"``, boolean indexing, an
``nn.Parameter`` code with a warning, ``torch.autograd.grad`` feeding Adam, ``torch.lerp``, ``torch.var_mean``
with standardised codes, an explicit loop over the axes), and answers that call the kit's finished versions.
Edits apply to the solution's answer cells (markers removed); at most three entries per answer cell, so the
slips pack into three submissions and the variants into two.
"""

from __future__ import annotations

from autograder.checks import edit, library_copy, rewrite, slip, variant

MSE, INVERT = {"test_masked_mse"}, {"test_invert"}
INTERP, MOMENT = {"test_interpolate_codes"}, {"test_moment_loss"}
SOLUTION_FIGURES = 7  # GAN samples + losses, inversion, restoration, interpolation, moments, samples, 2 explorers
_MSE_RETURN = "return (m * (generated - target) ** 2).sum() / m.sum()"
_VAR = "var = (centred ** 2).mean(dim=0)"

SLIPS = [
    slip("masked_mse: no mask (all pixels count)", edit("masked_mse", _MSE_RETURN, "return ((generated - target) ** 2).mean()"),
         fails=MSE, message="missing ones too"),
    slip("invert: no zero_grad", edit("invert", "        opt.zero_grad()\n", ""), fails=INVERT, message="accumulate"),
    slip("interpolate: weights swapped", edit("interpolate_codes", "return a * z1 + (1 - a) * z2", "return (1 - a) * z1 + a * z2"),
         fails=INTERP, message="swapped"),
    slip("moment_loss: unbiased variance (torch.var's default)", edit("moment_loss", _VAR, "var = z.var(dim=0)"),
         fails=MOMENT, message="unbiased"),
    # second submission
    slip("masked_mse: divided by all pixels", edit("masked_mse", _MSE_RETURN, "return (m * (generated - target) ** 2).mean()"),
         fails=MSE, message="all pixels"),
    slip("invert: z_init optimised in place", edit("invert", "z = z_init.detach().clone().requires_grad_(True)",
                                                     "z = z_init.requires_grad_(True)"), fails=INVERT, message="in place"),
    slip("moment_loss: excess kurtosis compared with 3", edit("moment_loss", "/ var ** 2\n", "/ var ** 2 - 3\n"),
         fails=MOMENT, message="excess"),
    # third submission
    slip("masked_mse: absolute error", edit("masked_mse", "(generated - target) ** 2", "(generated - target).abs()"),
         fails=MSE, message="absolute"),
]

LIBRARY_COPIES = [
    library_copy("invert: the kit's invert_latents", rewrite("invert", """from gan_utils.inversion import invert_latents


def invert(G, target, mask, z_init, steps=300, lr=0.05):
    G.z_dim = z_init.shape[1]
    return invert_latents(G, target, mask, steps=steps, lr=lr, z_init=z_init).z
"""), fails=INVERT),
    library_copy("moment_loss: the kit's latent_moment_loss", rewrite("moment_loss", """import gan_utils.losses as L


def moment_loss(z):
    return L.latent_moment_loss(z).total
"""), fails=MOMENT),
]

VARIANTS = [
    variant("masked_mse: F.mse_loss(reduction='sum') on masked images", rewrite("masked_mse", """
def masked_mse(generated, target, mask):
    m = mask.expand_as(generated).to(generated.dtype)
    return F.mse_loss(generated * m, target * m, reduction="sum") / m.sum()
""")),
    variant("masked_mse: boolean indexing of the kept pixels", rewrite("masked_mse", """
def masked_mse(generated, target, mask):
    kept = mask.expand_as(generated) > 0.5
    return ((generated - target)[kept] ** 2).mean()
""")),
    variant("invert: nn.Parameter, set_to_none, and a UserWarning", rewrite("invert", """import warnings


def invert(G, target, mask, z_init, steps=300, lr=0.05):
    warnings.warn("invert: a harmless warning from a correct answer")
    z = torch.nn.Parameter(z_init.clone())
    optimizer = torch.optim.Adam(params=[z], lr=lr)
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        masked_mse(G(z), target, mask).backward()
        optimizer.step()
    return z.data.clone()
""")),
    variant("invert: torch.autograd.grad feeding Adam, G frozen and restored", rewrite("invert", """
def invert(G, target, mask, z_init, steps=300, lr=0.05):
    flags = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)
    z = z_init.clone().detach().requires_grad_()
    adam = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        (grad,) = torch.autograd.grad(masked_mse(G(z), target, mask), [z])
        z.grad = grad
        adam.step()
    for p, flag in zip(G.parameters(), flags):
        p.requires_grad_(flag)
    return z.detach()
""")),
    variant("interpolate: torch.lerp", rewrite("interpolate_codes", """
def interpolate_codes(z1, z2, alphas):
    return torch.lerp(z2.expand(len(alphas), -1), z1.expand(len(alphas), -1), alphas.unsqueeze(1))
""")),
    variant("interpolate: a list of rows stacked", rewrite("interpolate_codes", """
def interpolate_codes(z1, z2, alphas):
    return torch.stack([float(a) * z1 + (1.0 - float(a)) * z2 for a in alphas])
""")),
    variant("moment_loss: torch.var_mean(correction=0) and standardised codes", rewrite("moment_loss", """
def moment_loss(z):
    var, mean = torch.var_mean(z, dim=0, correction=0)
    kurt = (((z - mean) / var.sqrt()) ** 4).mean(dim=0)
    return torch.mean(mean.pow(2) + (var - 1).pow(2) + (kurt - 3).pow(2))
""")),
    variant("moment_loss: a loop over the axes, three separate averages", rewrite("moment_loss", """
def moment_loss(z):
    d = z.shape[1]
    m_term = v_term = k_term = 0.0
    for j in range(d):
        x = z[:, j]
        mu = x.mean()
        v = ((x - mu) ** 2).mean()
        k = ((x - mu) ** 4).mean() / (v * v)
        m_term = m_term + mu ** 2 / d
        v_term = v_term + (v - 1) ** 2 / d
        k_term = k_term + (k - 3) ** 2 / d
    return m_term + v_term + k_term
""")),
]
