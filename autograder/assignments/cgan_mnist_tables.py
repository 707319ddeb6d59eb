"""What ``tests/test_assignments.py`` grades for ``cgan_mnist``: known slips (and exactly the tests each
must fail), correct variants (full marks), and answers that call the kit's references.

Edits apply to the solution's answer cells (markers removed); see :mod:`autograder.checks.assignment`.
The harness packs the slips into five graded submissions.
"""

from __future__ import annotations

import sys

import torch.nn.functional as F

from autograder.checks import core, edit, library_copy, rewrite, slip, variant
from gan_utils.losses import (
    bce_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
)

# Wrong formulas the loss checks recognise and name in their message (value and gradient compared on the same logits)
D_LOSS_SLIPS = {
    "the sign is flipped": lambda r, f: -bce_discriminator_loss(r, f),
    "you sum over the batch instead of averaging": lambda r, f: bce_discriminator_loss(r, f, reduction="sum"),
    "the two terms are averaged instead of added (one BCE over the 2N logits)": lambda r, f: bce_discriminator_loss(r, f) / 2,
    "real and fake swap roles (real images are labelled 1, fakes 0)": lambda r, f: bce_discriminator_loss(f, r),
    "a sigmoid is applied to values that are already logits": lambda r, f: bce_discriminator_loss(r.sigmoid(), f.sigmoid()),
}
G_LOSS_SLIPS = {
    "you use the saturating (minimax) loss log(1 - D(G(z))) instead of -log D(G(z))": minimax_generator_loss,
    "the sign is flipped": lambda f: -nonsaturating_generator_loss(f),
    "you sum over the batch instead of averaging": lambda f: nonsaturating_generator_loss(f, reduction="sum"),
    "the fakes are labelled 0 (that is the discriminator's target)": lambda f: F.softplus(f).mean(),
    "a sigmoid is applied to values that are already logits": lambda f: nonsaturating_generator_loss(f.sigmoid()),
}

G, D, DL, GL, DS, GS = "cgan_generator", "cgan_discriminator", "cgan_discriminator_loss", "cgan_generator_loss", \
    "cgan_d_step", "cgan_g_step"
T_GS, T_GL, T_DS, T_DLL = "test_generator_shapes", "test_generator_uses_label", "test_discriminator_shapes", \
    "test_discriminator_label_and_logits"
T_DLOSS, T_GLOSS, T_STABLE = "test_discriminator_loss", "test_generator_loss", "test_losses_stable"
T_DSTEP, T_GSTEP, T_SMOKE = "test_d_step", "test_g_step", "test_training_smoke"
SOLUTION_FIGURES = 5  # real digits, loss curves, snapshots, the 10x10 grid, the latent explorer (static)
_SIGNATURES = {"discriminator_loss": "real_logits, fake_logits", "generator_loss": "fake_logits",
               "d_step": "G, D, opt_d, real, labels, z", "g_step": "G, D, opt_g, labels, z"}


def _def(name: str, body: str, head: str = "") -> str:
    """Source of an answer cell: ``head``, then ``def name(<its arguments>):`` with ``body`` indented."""
    return f"{head}def {name}({_SIGNATURES[name]}):\n    " + body.replace("\n", "\n    ") + "\n"


_R, _F = ("F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))",
          "F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))")
# Ordered by answer cell; the harness packs them into five graded submissions.
SLIPS = [
    slip("G without the final tanh", edit(G, "nn.Linear(2 * hidden, 28 * 28), nn.Tanh(),", "nn.Linear(2 * hidden, 28 * 28),"),
         fails={T_GS}, message="tanh"),
    slip("G ignores the label", edit(G, "self.label_embedding(labels)]", "self.label_embedding(labels * 0)]"),
         fails={T_GL}, message="same image"),
    slip("D ends in a sigmoid", edit(D, "return self.net(h).squeeze(1)", "return torch.sigmoid(self.net(h)).squeeze(1)"),
         fails={T_DLL}, message="no sigmoid"),
    slip("D ignores the label", edit(D, "self.label_embedding(labels)]", "self.label_embedding(labels * 0)]"),
         fails={T_DLL}, message="whatever the label"),
    slip("D loss sums over the batch", edit(DL, _R, _R[:-1] + ", reduction='sum')"), edit(DL, _F, _F[:-1] + ", reduction='sum')"),
         fails={T_DLOSS}, message="sum over the batch"),
    slip("D loss with nn.BCELoss on probabilities", rewrite(DL, _def("discriminator_loss", "bce = nn.BCELoss()\nreturn "
         "bce(real_logits.sigmoid(), torch.ones_like(real_logits)) + bce(fake_logits.sigmoid(), torch.zeros_like(fake_logits))")),
         fails={T_STABLE}, message="numerically stable"),
    slip("D loss is one BCE over the 2N logits (a mean of the two terms)", rewrite(DL, _def("discriminator_loss", (
        "targets = torch.cat([torch.ones_like(real_logits), torch.zeros_like(fake_logits)])\n"
        "return F.binary_cross_entropy_with_logits(torch.cat([real_logits, fake_logits]), targets)"))),
        fails={T_DLOSS}, message="averaged"),
    slip("G loss is the saturating minimax loss", edit(GL, "fake_logits, torch.ones_like(fake_logits))",
         "fake_logits, torch.zeros_like(fake_logits)).neg()"), fails={T_GLOSS}, message="saturating"),
    slip("G loss as naive log(sigmoid)", rewrite(GL, _def("generator_loss", "return -torch.log(torch.sigmoid(fake_logits)).mean()")),
         fails={T_STABLE}, message="numerically stable"),
    slip("d_step steps before backward", edit(DS, "    loss.backward()\n    opt_d.step()", "    opt_d.step()\n    loss.backward()"),
         fails={T_DSTEP, T_SMOKE}),
    slip("d_step swaps real and fake", edit(DS, "discriminator_loss(D(real, labels), D(fake, labels))",
         "discriminator_loss(D(fake, labels), D(real, labels))"), fails={T_DSTEP}, message="swapped"),
    slip("d_step does not detach the fakes", edit(DS, "    with torch.no_grad():\n        fake = G(z, labels)",
         "    fake = G(z, labels)"), fails={T_DSTEP}, message="detach"),
    slip("d_step without zero_grad", edit(DS, "    opt_d.zero_grad()\n", ""), fails={T_DSTEP}, message="zero_grad"),
    slip("g_step without zero_grad", edit(GS, "    opt_g.zero_grad()\n", ""), fails={T_GSTEP}, message="zero_grad"),
    slip("g_step returns the loss after the update", edit(GS, "    return loss.item()",
         "    return generator_loss(D(G(z, labels), labels)).item()"), fails={T_GSTEP}, message="before the update"),
]

_TUTORIAL = """class Generator(nn.Module):  # eriklindernoren/PyTorch-GAN, implementations/cgan/cgan.py
    def __init__(self, z_dim=64, num_classes=10):
        super().__init__()
        self.label_emb = nn.Embedding(num_classes, num_classes)

        def block(in_feat, out_feat, normalize=True):
            layers = [nn.Linear(in_feat, out_feat)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_feat, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(*block(z_dim + num_classes, 128, normalize=False), *block(128, 256),
                                   *block(256, 512), *block(512, 1024), nn.Linear(1024, 784), nn.Tanh())

    def forward(self, noise, labels):
        img = self.model(torch.cat((self.label_emb(labels), noise), -1))
        return img.view(img.size(0), 1, 28, 28)
""", """class Discriminator(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.label_embedding = nn.Embedding(num_classes, num_classes)
        self.model = nn.Sequential(nn.Linear(num_classes + 784, 512), nn.LeakyReLU(0.2, inplace=True),
                                   nn.Linear(512, 512), nn.Dropout(0.4), nn.LeakyReLU(0.2, inplace=True),
                                   nn.Linear(512, 512), nn.Dropout(0.4), nn.LeakyReLU(0.2, inplace=True),
                                   nn.Linear(512, 1))

    def forward(self, img, labels):
        return self.model(torch.cat((img.view(img.size(0), -1), self.label_embedding(labels)), -1)).squeeze(1)
"""
_CONV = """def weights_init(m):  # the DCGAN initialisation
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, z_dim=64, num_classes=10):
        super().__init__()
        self.num_classes = num_classes
        self.fc = nn.Sequential(nn.Linear(z_dim + num_classes, 64 * 7 * 7), nn.BatchNorm1d(64 * 7 * 7), nn.ReLU(True))
        self.up = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(True),
                                nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Tanh())
        self.apply(weights_init)

    def forward(self, z, labels):
        h = self.fc(torch.cat([z, F.one_hot(labels, self.num_classes).float()], 1))
        return self.up(h.view(-1, 64, 7, 7))
""", """class Discriminator(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.label_map = nn.Embedding(num_classes, 28 * 28)  # the label as a second image channel
        self.net = nn.Sequential(nn.Conv2d(2, 32, 4, 2, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(32, 64, 4, 2, 1),
                                 nn.LeakyReLU(0.2, True), nn.Flatten(), nn.Linear(64 * 7 * 7, 1))
        self.apply(weights_init)

    def forward(self, x, labels):
        return self.net(torch.cat([x, self.label_map(labels).view(-1, 1, 28, 28)], 1)).view(-1)
"""
_STEP_TAIL = "loss.backward()\nopt_{}.step()\nreturn loss.item()"
VARIANTS = [
    variant("PyTorch-GAN cgan.py MLPs (Embedding concatenated, BatchNorm1d(n, 0.8), Dropout)",
            rewrite(G, _TUTORIAL[0]), rewrite(D, _TUTORIAL[1])),
    variant("softplus losses", rewrite(DL, _def("discriminator_loss", "return F.softplus(-real_logits).mean() + "
            "F.softplus(fake_logits).mean()")), rewrite(GL, _def("generator_loss", "return F.softplus(-fake_logits).mean()"))),
    variant("d_step with .detach(), zero_grad(set_to_none=True) first, float(loss)", rewrite(DS, _def("d_step", (
        "opt_d.zero_grad(set_to_none=True)\nfake = G(z, labels).detach()\n"
        "loss = discriminator_loss(D(real, labels), D(fake, labels))\nloss.backward()\nopt_d.step()\nreturn float(loss)")))),
    variant("g_step freezing D (requires_grad_(False)) and G.zero_grad()", rewrite(GS, _def("g_step", (
        "D.requires_grad_(False)\nG.zero_grad()\nloss = generator_loss(D(G(z, labels), labels))\n"
        "D.requires_grad_(True)\n" + _STEP_TAIL.format("g"))))),
    variant("DCGAN-style conv G with F.one_hot labels and N(0, 0.02) init; conv D with a label channel",
            rewrite(G, _CONV[0]), rewrite(D, _CONV[1])),
    variant("logsigmoid and nn.BCEWithLogitsLoss forms", rewrite(DL, _def("discriminator_loss", (
        "return -(F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean())"))), rewrite(GL, _def(
        "generator_loss", "criterion = nn.BCEWithLogitsLoss()\nreturn criterion(fake_logits, torch.ones_like(fake_logits))"))),
    variant("d_step with one D forward on real + fake and D.zero_grad()", rewrite(DS, _def("d_step", (
        "fake = G(z, labels).detach()\nlogits = D(torch.cat([real, fake]), torch.cat([labels, labels]))\n"
        "loss = discriminator_loss(logits[: len(real)], logits[len(real):])\nD.zero_grad()\n" + _STEP_TAIL.format("d"))))),
    variant("g_step that warns (torch.tensor on a tensor) and zero_grad(set_to_none=True)", rewrite(GS, _def("g_step", (
        "labels = torch.tensor(labels, device=z.device)  # UserWarning: copy construct from a tensor\n"
        "opt_g.zero_grad(set_to_none=True)\nloss = generator_loss(D(G(z, labels), labels))\n" + _STEP_TAIL.format("g"))))),
]
LIBRARY_COPIES = [
    library_copy("discriminator_loss imports bce_discriminator_loss under another name", rewrite(DL, _def(
        "discriminator_loss", "return d(real_logits, fake_logits)", "from gan_utils.losses import bce_discriminator_loss as d\n\n\n")),
        fails={T_DLOSS, T_STABLE}),
    library_copy("Discriminator is an alias of the kit's ConditionalDiscriminator", rewrite(D, (
        "import gan_utils.models.cgan as cgan\n\nDiscriminator = cgan.ConditionalDiscriminator\n")), fails={T_DS, T_DLL, T_SMOKE}),
    library_copy("generator_loss calls the kit through a module alias", rewrite(GL, _def(
        "generator_loss", "return L.nonsaturating_generator_loss(fake_logits)", "import gan_utils.losses as L\n\n\n")),
        fails={T_GLOSS, T_STABLE}),
    library_copy("Generator subclasses the kit's ConditionalGenerator", rewrite(G, (
        "from gan_utils.models.cgan import ConditionalGenerator\n\n\nclass Generator(ConditionalGenerator):\n"
        "    def __init__(self, z_dim=64, num_classes=10):\n"
        "        super().__init__(z_dim=z_dim, num_classes=num_classes, base_channels=16)\n")), fails={T_GS, T_GL, T_SMOKE}),
]

core.watch_functions(sys.modules[__name__])
