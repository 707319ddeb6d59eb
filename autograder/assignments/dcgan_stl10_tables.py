"""What ``tests/test_assignments.py`` grades for ``dcgan_stl10``: known slips (and exactly the tests each
must fail), correct variants (full marks), and answers that call the kit's references.

Edits apply to the solution's answer cells (markers removed); see :mod:`autograder.checks.assignment`.
Slips are ordered so that the harness packs them into five submissions.
"""

from __future__ import annotations

from autograder.checks import edit, library_copy, rewrite, slip, variant

G_TESTS = {"test_generator_shapes", "test_generator_table2", "test_generator_forward", "test_generator_gradients"}
GP_TESTS = {"test_gradient_penalty_linear", "test_gradient_penalty_reference", "test_gradient_penalty_backprop"}
SOLUTION_FIGURES = 11

SLIPS = [
    # one submission: a generator that cannot be trained, no create_graph, sigmoid in D, flipped WGAN sign
    slip("padding 0 in the stride-2 generator layers",
         edit("generator", "kernel_size=4, stride=2, padding=1, bias=False", "kernel_size=4, stride=2, padding=0, bias=False"),
         fails={"test_generator_shapes", "test_generator_table2", "test_generator_forward", "test_dcgan_training",
                "test_all_runs_finite"}, why="a 92x92 generator: D cannot score it, so the DCGAN run and everything built on it fail"),
    slip("penalty without create_graph", edit("gradient_penalty", "create_graph=True", "create_graph=False"),
         fails={"test_gradient_penalty_backprop"}, message="create_graph"),
    slip("sigmoid at the end of D", edit("discriminator", "return self.net(x).reshape(x.shape[0])",
                                          "return torch.sigmoid(self.net(x)).reshape(x.shape[0])"),
         fails={"test_discriminator_forward"}, message="raw logits"),
    slip("WGAN critic sign flipped", edit("wgan_losses", "return fake_scores.mean() - real_scores.mean()",
                                          "return real_scores.mean() - fake_scores.mean()"),
         fails={"test_wgan_losses"}, message="should fall"),
    # one submission: no BatchNorm in G, summed penalty, LeakyReLU slope, fakes not detached
    slip("no BatchNorm in generator layers 2-4", edit("generator", "                nn.BatchNorm2d(c_out),\n", ""),
         fails={"test_generator_table2", "test_generator_forward"}, message="BatchNorm"),
    slip("penalty summed over the batch", edit("gradient_penalty", "return ((norms - 1) ** 2).mean()", "return ((norms - 1) ** 2).sum()"),
         fails=GP_TESTS, message="average", why="the step and training tests run with the reference penalty: only the penalty's tests fail"),
    slip("LeakyReLU default slope 0.01 in D",
         edit("discriminator", "nn.LeakyReLU(0.2, inplace=True)]", "nn.LeakyReLU(inplace=True)]"),
         edit("discriminator", "nn.LeakyReLU(0.2, inplace=True),\n", "nn.LeakyReLU(inplace=True),\n"),
         fails={"test_discriminator_forward"}, message="slope"),
    slip("fakes not detached in the D step", edit("discriminator_step", "fake = G(z).detach()", "fake = G(z)"),
         fails={"test_discriminator_step"}, message="detach"),
    # one submission
    slip("BatchNorm scales initialised around 0", edit("dcgan_init", "nn.init.normal_(module.weight, 1.0, 0.02)",
                                                      "nn.init.normal_(module.weight, 0.0, 0.02)"),
         fails={"test_dcgan_init"}),
    slip("no zero_grad in the G step", edit("generator_step", "    opt_g.zero_grad()\n", ""),
         fails={"test_generator_step"}, message="zero_grad"),
    slip("bilinear with align_corners=True", edit("upsample_block", 'mode="bilinear", align_corners=False',
                                                  'mode="bilinear", align_corners=True'),
         fails={"test_upsample_layers"}, message="align_corners"),
    slip("overlap counts ignore the padding", edit("overlap_counts", "offset = j + padding - i * stride", "offset = j - i * stride"),
         fails={"test_overlap_counts"}),
    # one submission
    slip("LSGAN with a factor 1/2", edit("lsgan_losses", "return ((real_scores - 1) ** 2).mean() + (fake_scores ** 2).mean()",
                                         "return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores ** 2).mean())"),
         fails={"test_lsgan_losses"}, message="1/2"),
    slip("clip constant 0.01", edit("wgan_clip", "WGAN_CLIP = 0.05", "WGAN_CLIP = 0.01"),
         fails={"test_clip_weights"}, message="WGAN_CLIP",
         why="the critic step is graded with explicit clip values, so only the constant's test fails"),
    slip("clipping before the critic update", edit(
        "wgan_critic_step", "    loss = discriminator_step(G, D, opt_d, real, z, loss_fn=wgan_critic_loss)\n    clip_weights(D, clip)\n",
        "    clip_weights(D, clip)\n    loss = discriminator_step(G, D, opt_d, real, z, loss_fn=wgan_critic_loss)\n"),
        fails={"test_wgan_critic_step"}),
    slip("GP step ignores lam", edit("wgan_gp_critic_step", "+ lam * gradient_penalty(D, real, fake)",
                                     "+ GP_WEIGHT * gradient_penalty(D, real, fake)"),
         fails={"test_wgan_gp_critic_step"}, message="instead of lam"),
]

LIBRARY_COPIES = [
    library_copy("Generator subclasses the kit's DCGANGenerator", rewrite("generator", '''
from gan_utils.models.dcgan import DCGANGenerator

class Generator(DCGANGenerator):
    def __init__(self, z_dim: int = 100, width: int = 128, out_channels: int = 3) -> None:
        super().__init__(z_dim=z_dim, out_channels=out_channels, width=width)
'''), fails=G_TESTS),
    library_copy("gradient_penalty aliases the kit's", rewrite("gradient_penalty", '''
from gan_utils.losses import gradient_penalty as gp

def gradient_penalty(critic, real, fake, eps=None):
    return gp(critic, real, fake)
'''), fails=GP_TESTS),
    library_copy("Upsample2x subclasses the kit's UpsampleBlock", rewrite("upsample_block", '''
from gan_utils.models.upsample import UpsampleBlock

UPSAMPLE_MODES = ("convtranspose", "nearest", "bilinear")

class Upsample2x(UpsampleBlock):
    pass
'''), fails={"test_upsample_shapes", "test_upsample_layers"}),
    library_copy("module alias for the WGAN critic loss", rewrite("wgan_losses", '''
import gan_utils.losses as L

def wgan_critic_loss(real_scores, fake_scores):
    return L.wgan_critic_loss(real_scores, fake_scores)

def wgan_generator_loss(fake_scores):
    return -fake_scores.mean()
'''), fails={"test_wgan_losses"}),
]

# --- correct variants ---------------------------------------------------------------------------
TUTORIAL_G = '''
class Generator(nn.Module):
    # the PyTorch DCGAN tutorial's layout: one nn.Sequential, no biases
    def __init__(self, z_dim: int = 100, width: int = 128, out_channels: int = 3) -> None:
        super().__init__()
        self.z_dim = z_dim
        ngf = width
        self.main = nn.Sequential(
            nn.ConvTranspose2d(z_dim, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, out_channels, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, input):
        return self.main(input.view(-1, self.z_dim, 1, 1))
'''
TUTORIAL_D = '''
class Discriminator(nn.Module):
    def __init__(self, width: int = 128, in_channels: int = 3) -> None:
        super().__init__()
        ndf = width
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))  # logits: the tutorial's Sigmoid is left to the loss

    def forward(self, input):
        return self.main(input).view(-1)
'''
TUTORIAL_INIT = '''
def dcgan_weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)
'''
BCE_STEP = '''
def bce_with_logits_loss(real_logits, fake_logits):
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))

def discriminator_step(G, D, opt_d, real, z, loss_fn=bce_with_logits_loss) -> float:
    with torch.no_grad():
        fake = G(z)
    opt_d.zero_grad(set_to_none=True)
    loss = loss_fn(D(real), D(fake))
    loss.backward()
    opt_d.step()
    return float(loss)
'''
SOFTPLUS_G_STEP = '''
def softplus_generator_loss(fake_logits):
    return F.softplus(-fake_logits).mean()

def generator_step(G, D, opt_g, z, loss_fn=softplus_generator_loss) -> float:
    opt_g.zero_grad(set_to_none=True)
    loss = loss_fn(D(G(z)))
    loss.backward()
    opt_g.step()
    return loss.item()
'''
NN_UPSAMPLE = '''
UPSAMPLE_MODES = ("convtranspose", "nearest", "bilinear")

class Upsample2x(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, mode: str = "convtranspose") -> None:
        super().__init__()
        if mode not in UPSAMPLE_MODES:
            raise ValueError(mode)
        self.mode = mode
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False) if mode == "bilinear" else nn.Identity()
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1) if mode == "convtranspose" else nn.Conv2d(in_ch, out_ch, 3, padding=1)

    def forward(self, x):
        if self.mode == "nearest":
            x = F.upsample(x, scale_factor=2, mode="nearest")  # the deprecated alias of F.interpolate: a UserWarning
        return self.conv(self.up(x))
'''
GRAD_OUTPUTS_GP = '''
def gradient_penalty(critic, real, fake, eps=None):
    if eps is None:
        eps = torch.rand(real.size(0), 1, 1, 1, device=real.device, dtype=real.dtype)
    interpolates = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    scores = critic(interpolates)
    gradients = torch.autograd.grad(outputs=scores, inputs=interpolates, grad_outputs=torch.ones_like(scores),
                                    create_graph=True, retain_graph=True, only_inputs=True)[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean()
'''
LOOP_OVERLAP = '''
def transposed_conv_overlap(in_size, kernel_size, stride, padding):
    out_size = (in_size - 1) * stride - 2 * padding + kernel_size
    counts = [0] * out_size
    for i in range(in_size):
        for t in range(kernel_size):
            j = i * stride - padding + t
            if 0 <= j < out_size:
                counts[j] += 1
    return torch.tensor(counts)
'''
INLINE_WGAN_STEP = '''
def wgan_critic_step(G, D, opt_d, real, z, clip=WGAN_CLIP) -> float:
    opt_d.zero_grad(set_to_none=True)
    loss = torch.mean(D(G(z).detach())) - torch.mean(D(real))
    loss.backward()
    opt_d.step()
    for p in D.parameters():
        p.data.clamp_(-clip, clip)
    return loss.item()
'''

VARIANTS = [
    variant("PyTorch DCGAN tutorial models and weights_init", rewrite("generator", TUTORIAL_G), rewrite("discriminator", TUTORIAL_D),
            rewrite("dcgan_init", TUTORIAL_INIT)),
    variant("BCEWithLogits default loss, fakes under torch.no_grad(), zero_grad(set_to_none=True)",
            rewrite("discriminator_step", BCE_STEP)),
    variant("softplus default loss and zero_grad(set_to_none=True)", rewrite("generator_step", SOFTPLUS_G_STEP)),
    variant("F.upsample (a deprecation UserWarning) for nearest, nn.Upsample for bilinear", rewrite("upsample_block", NN_UPSAMPLE)),
    variant("gradient penalty with grad_outputs=torch.ones_like", rewrite("gradient_penalty", GRAD_OUTPUTS_GP)),
    variant("LSGAN with F.mse_loss", rewrite("lsgan_losses", '''
def lsgan_discriminator_loss(real_scores, fake_scores):
    return F.mse_loss(real_scores, torch.ones_like(real_scores)) + F.mse_loss(fake_scores, torch.zeros_like(fake_scores))

def lsgan_generator_loss(fake_scores):
    return F.mse_loss(fake_scores, torch.ones_like(fake_scores))
''')),
    variant("WGAN losses with torch.mean", edit("wgan_losses", "return -fake_scores.mean()", "return -torch.mean(fake_scores)")),
    variant("clipping through p.data", rewrite("wgan_clip", '''
WGAN_CLIP = 5e-2

def clip_weights(module, clip):
    for p in module.parameters():
        p.data.clamp_(min=-clip, max=clip)
''')),
    variant("WGAN critic step written inline", rewrite("wgan_critic_step", INLINE_WGAN_STEP)),
    variant("GP step with set_to_none and the penalty added separately", edit(
        "wgan_gp_critic_step", "    loss = wgan_critic_loss(D(real), D(fake)) + lam * gradient_penalty(D, real, fake)\n    opt_d.zero_grad()\n",
        "    opt_d.zero_grad(set_to_none=True)\n    loss = wgan_critic_loss(D(real), D(fake))\n"
        "    loss = loss + lam * gradient_penalty(D, real, fake)\n")),
    variant("overlap counts by scattering in Python loops", rewrite("overlap_counts", LOOP_OVERLAP)),
]
