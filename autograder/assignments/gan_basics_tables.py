"""What ``tests/test_assignments.py`` grades for ``gan_basics``: known slips (and exactly the tests each must
fail), correct variants (full marks: textbook forms, autograd with and without ``grad_outputs``, explicit
loops, ``torch.linalg``, an answer that warns), and answers that call the kit's penalties. Edits apply to the
solution's answer cells (markers removed); see :mod:`autograder.checks.assignment`. At most three entries per
answer cell, so the harness packs them into three submissions (the variants join them or share a fourth).
"""

from __future__ import annotations

from autograder.checks import edit, library_copy, rewrite, slip, variant

OD, JS, DIRAC = {"test_optimal_discriminator"}, {"test_js_divergence"}, {"test_dirac_field"}
R1, GP, POWER = {"test_r1_penalty"}, {"test_gradient_penalty"}, {"test_power_iteration"}
SOLUTION_FIGURES = 7  # D* and JSD/W1, |dl/dl|, the mixture GAN, Dirac fields, clip vs GP, sigma, fade-in
_GP_X = "x_hat = (e * real.detach() + (1 - e) * fake.detach()).requires_grad_(True)"
_R1_SQ = "grad.pow(2).flatten(1).sum(dim=1).mean()"

SLIPS = [
    slip("D*: p_data and p_g swapped", edit("optimal_discriminator", "p_data / safe", "p_g / safe"), fails=OD, message="swapped"),
    slip("JSD: the factor 1/2 missing (the lecture's KL + KL)", edit("js_divergence", "return 0.5 * (kl_data + kl_g)",
                                                                     "return kl_data + kl_g"), fails=JS, message="1/2"),
    slip("Dirac: D climbs its loss (sign)", edit("dirac_field", "d_psi = -theta * torch.sigmoid(u)", "d_psi = theta * torch.sigmoid(u)"),
         fails=DIRAC, message="descends its loss"),
    slip("R1: no create_graph", edit("r1_penalty", ", create_graph=True)", ")"), fails=R1, message="create_graph"),
    slip("GP: eps on the fakes", edit("gradient_penalty", _GP_X, "x_hat = (e * fake.detach() + (1 - e) * real.detach()).requires_grad_(True)"),
         fails=GP, message="eps multiplies the fakes"),
    slip("power iteration: no normalisation", edit("power_iteration", "        v = v / v.norm()\n", ""),
         edit("power_iteration", "        u = u / u.norm()\n", ""), fails=POWER, message="not normalised"),
    # second submission
    slip("D*: no care for p_data + p_g = 0 (nan)", rewrite("optimal_discriminator", """
def optimal_discriminator(p_data, p_g):
    return p_data / (p_data + p_g)
"""), fails=OD, message="1/2 there"),
    slip("JSD: naive p log(p / m) (nan where p = 0)", edit("js_divergence", "(torch.special.xlogy(p_data, p_data) - torch.special.xlogy(p_data, m))",
                                                         "(p_data * torch.log(p_data / m))"), fails=JS, message="0 log 0"),
    slip("Dirac: non-saturating written as minimax", edit("dirac_field", "d_theta = psi * torch.sigmoid(-u)", "d_theta = psi * torch.sigmoid(u)"),
         fails=DIRAC, message="non-saturating"),
    slip("GP: at the real samples", edit("gradient_penalty", _GP_X, "x_hat = real.detach().requires_grad_(True)"), fails=GP,
         message="at the real samples"),
    slip("power iteration: sigma from the old u", edit("power_iteration", "        v = v / v.norm()\n",
                                                        "        sigma = v.norm()\n        v = v / v.norm()\n"),
         edit("power_iteration", "    sigma = u @ weight @ v\n", ""), fails=POWER, message="previous step"),
    # third submission
    slip("JSD: no dx", edit("js_divergence", ").sum() * dx\n    kl_g", ").sum()\n    kl_g"),
         edit("js_divergence", "torch.special.xlogy(p_g, m)).sum() * dx", "torch.special.xlogy(p_g, m)).sum()"), fails=JS),
    slip("R1: sum over the batch", edit("r1_penalty", _R1_SQ, "grad.pow(2).flatten(1).sum(dim=1).sum()"), fails=R1, message="sum"),
    slip("Dirac: penalty (psi - 1)^2 without the sign", edit("dirac_field", "(psi.abs() - 1) * torch.sign(psi)", "(psi - 1)"),
         fails=DIRAC, message="sign(psi)"),
]

LIBRARY_COPIES = [
    library_copy("R1: the kit's r1_penalty", rewrite("r1_penalty", """from gan_utils.losses import r1_penalty as kit_r1


def r1_penalty(critic, real):
    return kit_r1(critic, real)
"""), fails=R1),
    library_copy("GP: the kit's input_gradients", rewrite("gradient_penalty", """import gan_utils.losses as L


def gradient_penalty(critic, real, fake, eps):
    e = eps.reshape(-1, *([1] * (real.dim() - 1)))
    grad = L.input_gradients(critic, e * real + (1 - e) * fake)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
"""), fails=GP),
]

VARIANTS = [
    variant("D*: the textbook ratio with nan_to_num", rewrite("optimal_discriminator", """
def optimal_discriminator(p_data, p_g):
    return torch.nan_to_num(p_data / (p_data + p_g), nan=0.5)
""")),
    variant("JSD as an entropy difference H(m) - (H(p) + H(q)) / 2", rewrite("js_divergence", """
def js_divergence(p_data, p_g, dx):
    entropy = lambda p: -torch.special.xlogy(p, p).sum() * dx
    return entropy((p_data + p_g) / 2) - 0.5 * (entropy(p_data) + entropy(p_g))
""")),
    variant("Dirac: torch.autograd.grad of the two losses, with grad_outputs", rewrite("dirac_field", """
def dirac_field(theta, psi, kind, gamma=1.0, lam=1.0):
    theta = theta.detach().requires_grad_(True)
    psi = psi.detach().requires_grad_(True)
    u = psi * theta
    if kind in ("wgan", "wgan-gp"):
        loss_d, loss_g = u, -u
        if kind == "wgan-gp":
            loss_d = loss_d + lam * (psi.abs() - 1) ** 2
    else:
        loss_d = F.softplus(torch.zeros_like(u)) + F.softplus(u)
        loss_g = -F.softplus(u) if kind == "minimax" else F.softplus(-u)
        if kind == "r1":
            loss_d = loss_d + gamma / 2 * psi ** 2
    (g_theta,) = torch.autograd.grad(loss_g, theta, grad_outputs=torch.ones_like(loss_g), retain_graph=True)
    (g_psi,) = torch.autograd.grad(loss_d, psi, grad_outputs=torch.ones_like(loss_d))
    return -g_theta, -g_psi
""")),
    variant("R1: grad_outputs and a UserWarning", rewrite("r1_penalty", """import warnings


def r1_penalty(critic, real):
    warnings.warn("r1_penalty: a harmless warning from a correct answer")
    x = real.clone().requires_grad_(True)
    scores = critic(x).reshape(-1)
    grad = torch.autograd.grad(outputs=scores, inputs=x, grad_outputs=torch.ones_like(scores), create_graph=True)[0]
    return (grad.reshape(len(x), -1) ** 2).sum(1).mean()
""")),
    variant("GP: torch.lerp and torch.linalg.vector_norm", rewrite("gradient_penalty", """
def gradient_penalty(critic, real, fake, eps):
    e = eps.view(-1, *([1] * (real.dim() - 1)))
    x_hat = torch.lerp(fake.detach(), real.detach(), e).requires_grad_(True)
    out = critic(x_hat)
    grad, = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones_like(out), create_graph=True)
    norms = torch.linalg.vector_norm(grad, dim=tuple(range(1, grad.dim())))
    return torch.mean((norms - 1.0) ** 2)
""")),
    variant("power iteration: F.normalize, torch.mv, sigma = ||W v||", rewrite("power_iteration", """
def power_iteration(weight, u, n_iters):
    for _ in range(n_iters):
        v = F.normalize(torch.mv(weight.t(), u), dim=0)
        wv = torch.mv(weight, v)
        u = F.normalize(wv, dim=0)
    return torch.linalg.vector_norm(wv), u, v
""")),
    variant("power iteration: explicit loops over the entries", rewrite("power_iteration", """
def power_iteration(weight, u, n_iters):
    rows, cols = weight.shape
    for _ in range(n_iters):
        v = torch.stack([sum(weight[i, j] * u[i] for i in range(rows)) for j in range(cols)])
        v = v / torch.sqrt((v * v).sum())
        u = torch.stack([sum(weight[i, j] * v[j] for j in range(cols)) for i in range(rows)])
        u = u / torch.sqrt((u * u).sum())
    return sum(u[i] * weight[i, j] * v[j] for i in range(rows) for j in range(cols)), u, v
""")),
]
