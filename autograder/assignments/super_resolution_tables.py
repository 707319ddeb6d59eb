"""What ``tests/test_assignments.py`` grades for ``super_resolution``: known slips (and exactly the tests each must
fail), correct variants (full marks: explicit layers with the skip first, a transposed last layer, biases,
F.mse_loss with BCE-with-logits, logsigmoid with a warning, the PyTorch-tutorial step), and answers that call
the kit's U-Net or loss. Edits apply to the solution's answer cells (markers removed); see
:mod:`autograder.checks.assignment`. At most three entries per answer cell, so the slips pack into three
submissions.
"""

from __future__ import annotations

from autograder.checks import edit, library_copy, rewrite, slip, variant

SHAPES, TABLE = {"test_sr_generator_shapes"}, {"test_sr_generator_table"}
LOSS, STEP = {"test_generator_sr_loss"}, {"test_sr_g_step"}
SOLUTION_FIGURES = 4  # the degradation, the losses, the fixed image during training, ten rows of results
_CAT = "h = torch.cat([layer(h), feats.pop()], dim=1)"

SLIPS = [
    slip("U-Net: the input image not joined before the last layer", edit(
        "sr_generator", "skips = [8 * base, 4 * base, 2 * base, base, in_channels]", "skips = [8 * base, 4 * base, 2 * base, base, 0]"),
        edit("sr_generator", _CAT, "h = torch.cat([layer(h), feats.pop()], dim=1) if len(feats) > 1 else layer(h)"),
        fails=TABLE, message="input image is not concatenated"),
    slip("loss: minimax instead of non-saturating", edit("generator_sr_loss", "F.softplus(-fake_logits).mean()",
                                                         "-F.softplus(fake_logits).mean()"), fails=LOSS, message="minimax"),
    slip("G step: no zero_grad", edit("sr_g_step", "    opt_g.zero_grad()\n", ""), fails=STEP, message="zero_grad"),
    # second submission
    slip("U-Net: no tanh at the end", edit("sr_generator", "return torch.tanh(self.out(h))", "return self.out(h)"),
         fails=SHAPES, message="end with tanh"),
    slip("loss: summed squared errors", edit("generator_sr_loss", "((fake - real) ** 2).mean()", "((fake - real) ** 2).sum()"),
         fails=LOSS, message="summed"),
    slip("G step: fakes detached before D", edit("sr_g_step", "generator_sr_loss(D(fake), fake", "generator_sr_loss(D(fake.detach()), fake"),
         fails=STEP, message="detached"),
    # third submission
    slip("U-Net: no skip at 4x4 (dec 2 sees only dec 1)", edit(
        "sr_generator", "skips = [8 * base, 4 * base, 2 * base, base, in_channels]", "skips = [0, 4 * base, 2 * base, base, in_channels]"),
        edit("sr_generator", _CAT, "h = layer(h) if len(feats) == 5 and feats.pop() is not None else torch.cat([layer(h), feats.pop()], dim=1)"),
        fails=TABLE, message="transposed conv"),
    slip("loss: log(sigmoid) overflows for a confident D", edit("generator_sr_loss", "F.softplus(-fake_logits).mean()",
                                                                "-torch.log(torch.sigmoid(fake_logits)).mean()"), fails=LOSS),
    slip("G step: reconstruction against the degraded input", edit("sr_g_step", "fake, high, adv_weight)", "fake, low, adv_weight)"),
         fails=STEP, message="degraded input"),
]

LIBRARY_COPIES = [
    library_copy("U-Net: a subclass of the kit's SRUNetGenerator", rewrite("sr_generator", """from gan_utils.models.sr import SRUNetGenerator


class SRGenerator(SRUNetGenerator):
    def __init__(self, in_channels: int = 3, base: int = 32) -> None:
        super().__init__(in_channels=in_channels, base=base, n_levels=5)
"""), fails=SHAPES | TABLE),
    library_copy("loss: the kit's sr_generator_loss", rewrite("generator_sr_loss", """import gan_utils.losses as L


def generator_sr_loss(fake_logits, fake, real, adv_weight=1.0):
    return L.sr_generator_loss(fake_logits, fake, real, recon_weight=1.0, adv_weight=adv_weight).total
"""), fails=LOSS),
]

VARIANTS = [
    variant("U-Net: explicit layers, skip first in the cat, biases, a transposed 3x3 last layer, F.leaky_relu", rewrite("sr_generator", """
def block(c_in, c_out, up=False):
    conv = (nn.ConvTranspose2d if up else nn.Conv2d)(c_in, c_out, kernel_size=4, stride=2, padding=1)
    return nn.ModuleDict({"conv": conv, "bn": nn.BatchNorm2d(c_out)})


class SRGenerator(nn.Module):
    def __init__(self, in_channels=3, base=32):
        super().__init__()
        b = base
        self.e1, self.e2, self.e3 = block(in_channels, b), block(b, 2 * b), block(2 * b, 4 * b)
        self.e4, self.e5 = block(4 * b, 8 * b), block(8 * b, 16 * b)
        self.d1, self.d2 = block(16 * b, 8 * b, up=True), block(16 * b, 4 * b, up=True)
        self.d3, self.d4 = block(8 * b, 2 * b, up=True), block(4 * b, b, up=True)
        self.d5 = block(2 * b, b // 2, up=True)
        self.last = nn.ConvTranspose2d(b // 2 + in_channels, in_channels, kernel_size=3, stride=1, padding=1)

    @staticmethod
    def run(blk, h):
        return F.leaky_relu(blk["bn"](blk["conv"](h)), negative_slope=0.2)

    def forward(self, x):
        e1 = self.run(self.e1, x)
        e2 = self.run(self.e2, e1)
        e3 = self.run(self.e3, e2)
        e4 = self.run(self.e4, e3)
        e5 = self.run(self.e5, e4)
        h = torch.cat((e4, self.run(self.d1, e5)), 1)
        h = torch.cat((e3, self.run(self.d2, h)), 1)
        h = torch.cat((e2, self.run(self.d3, h)), 1)
        h = torch.cat((e1, self.run(self.d4, h)), 1)
        h = torch.cat((x, self.run(self.d5, h)), 1)
        return self.last(h).tanh()
""")),
    variant("U-Net: recursive inner block, nn.Sequential, inplace LeakyReLU and a UserWarning", rewrite("sr_generator", """import warnings


class Level(nn.Module):
    def __init__(self, c_in, c_mid, inner):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(c_in, c_mid, 4, 2, 1), nn.BatchNorm2d(c_mid), nn.LeakyReLU(0.2, inplace=True))
        self.inner = inner
        c_up_in = c_mid if inner is None else inner.out_channels
        self.out_channels = c_mid // 2 + c_in
        self.up = nn.Sequential(nn.ConvTranspose2d(c_up_in, c_mid // 2, 4, 2, 1), nn.BatchNorm2d(c_mid // 2),
                                nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x):
        h = self.down(x)
        if self.inner is not None:
            h = self.inner(h)
        return torch.cat([self.up(h), x], 1)


class SRGenerator(nn.Module):
    def __init__(self, in_channels=3, base=32):
        super().__init__()
        warnings.warn("SRGenerator: a harmless warning from a correct answer")
        chans = [base * 2 ** i for i in range(5)]
        inner = None
        for i in range(4, -1, -1):
            inner = Level(in_channels if i == 0 else chans[i - 1], chans[i], inner)
        self.unet = inner
        self.final = nn.Conv2d(inner.out_channels, in_channels, 3, padding=1)

    def forward(self, x):
        return torch.tanh(self.final(self.unet(x)))
""")),
    variant("loss: F.mse_loss + BCE with logits against ones", rewrite("generator_sr_loss", """
def generator_sr_loss(fake_logits, fake, real, adv_weight=1.0):
    adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return F.mse_loss(fake, real) + adv_weight * adversarial
""")),
    variant("loss: nn.MSELoss, -logsigmoid, and a DeprecationWarning", rewrite("generator_sr_loss", """import warnings

mse = nn.MSELoss()


def generator_sr_loss(fake_logits, fake, real, adv_weight=1.0):
    warnings.warn("generator_sr_loss: an old-style call", DeprecationWarning)
    return mse(fake, real) + adv_weight * (-F.logsigmoid(fake_logits)).mean()
""")),
    variant("G step: the PyTorch DCGAN-tutorial form (zero_grad first, errG, view(-1))", rewrite("sr_g_step", """
def g_step(G, D, opt_g, low, high, adv_weight=1.0):
    G.zero_grad()
    fake = G(low)
    output = D(fake).view(-1)
    errG = generator_sr_loss(output, fake, high, adv_weight=adv_weight)
    errG.backward()
    opt_g.step()
    return errG.item()
""")),
    variant("G step: set_to_none and float(loss.detach())", rewrite("sr_g_step", """
def g_step(G, D, opt_g, low, high, adv_weight=1.0):
    opt_g.zero_grad(set_to_none=True)
    sharp = G(low)
    loss = generator_sr_loss(fake_logits=D(sharp), fake=sharp, real=high, adv_weight=adv_weight)
    loss.backward()
    opt_g.step()
    return float(loss.detach())
""")),
]
