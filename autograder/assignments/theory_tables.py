"""What ``tests/test_assignments.py`` grades for ``theory``: known slips (and exactly the tests each must
fail), correct variants (full marks: the textbook, PyTorch-docs and im2col ways of writing each answer), and
answers that call the kit's references. Edits apply to the solution's answer cells (markers removed); see
:mod:`autograder.checks.assignment`. At most four slips per answer cell, so the harness packs them into few
submissions.
"""

from __future__ import annotations

from autograder.checks import edit, library_copy, rewrite, slip, variant

GDPP, FADE_G, FADE_D, ADAIN = {"test_gdpp"}, {"test_fade_in_generator"}, {"test_fade_in_discriminator"}, {"test_adain"}
CONV_I, CONV_F, VJP = {"test_conv_input_grad"}, {"test_conv_filter_grad"}, {"test_conv_vjp"}
TRUNC, IS = {"test_truncated_normal"}, {"test_inception_score"}
SOLUTION_FIGURES = 1  # the truncated-normal histograms
_IS_KL = "kl = (torch.special.xlogy(part, part) - torch.special.xlogy(part, marginal)).sum(dim=1)"
_TRUNC_LOOP = ("    while outside.any():\n        z[outside] = torch.randn(int(outside.sum()))\n"
               "        outside = z.abs() > threshold\n")

SLIPS = [  # in the order the harness packs them: five submissions (the library copies join the last)
    # submission 1
    slip("IS: p(y) of the whole set", edit("inception_score", "marginal = part.mean(dim=0, keepdim=True)",
                                           "marginal = probs.double().mean(dim=0, keepdim=True)"), fails=IS, message="whole set"),
    slip("conv input grad: stride ignored (no zeros between the entries)",
         edit("conv_input_grad", "dilated[::stride, ::stride] = grad_out", "dilated[:h_out, :w_out] = grad_out"), fails=CONV_I),
    slip("gdpp: the paper's signed cosine", edit("gdpp_losses", "(1 - cos.abs())", "(1 - cos)"), fails=GDPP, message="sign"),
    slip("fade D: max pooling", edit("fade_in", "F.avg_pool2d(images, 2)", "F.max_pool2d(images, 2)"), fails=FADE_D,
         message="average pooling"),
    slip("truncation: clamping", edit("truncated_normal", _TRUNC_LOOP, "    z = z.clamp(-threshold, threshold)\n"), fails=TRUNC,
         message="clamping is not resampling"),
    slip("conv filter grad: flipped", edit("conv_filter_grad", "return corr[:k_h, :k_w]", "return corr[:k_h, :k_w].flip(0, 1)"),
         fails=CONV_F, message="flipped"),
    # submission 2
    slip("IS: naive p log p (nan at 0)", edit("inception_score", _IS_KL, "kl = (part * (part.log() - marginal.log())).sum(dim=1)"),
         fails=IS, message="0 * log 0"),
    slip("conv input grad: filter not flipped", edit("conv_input_grad", "f.flip(0, 1)[None, None]", "f[None, None]"), fails=CONV_I,
         message="not flipped"),
    slip("vjp: filter flipped twice", edit("conv_vjp", "F.conv_transpose2d(grad_out, weight,", "F.conv_transpose2d(grad_out, weight.flip(2, 3),"),
         fails=VJP, message="flipped twice"),
    slip("gdpp: features not normalised", edit("gdpp_losses", "        phi = phi / phi.norm(dim=1, keepdim=True)\n", ""),
         fails=GDPP, message="L2-normalised"),
    slip("truncation: rescaled into the range", edit("truncated_normal", _TRUNC_LOOP, "    z = z * threshold / z.abs().max()\n"),
         fails=TRUNC, message="Kolmogorov-Smirnov"),
    # submission 3
    slip("vjp: no output padding", edit("conv_vjp", ", output_padding=output_padding)", ")"), fails=VJP, message="output_padding"),
    slip("adain: batch statistics", edit("adain", "x.mean(dim=(2, 3), keepdim=True)", "x.mean(dim=(0, 2, 3), keepdim=True)"),
         edit("adain", "** 2).mean(dim=(2, 3), keepdim=True)", "** 2).mean(dim=(0, 2, 3), keepdim=True)"), fails=ADAIN,
         message="batch normalisation"),
    slip("conv input grad: padding cropped from one side", edit("conv_input_grad", "return full[padding:padding + H, padding:padding + W]",
                                                                "return full[:H, :W]"), fails=CONV_I),
    slip("truncation: one redraw only", edit("truncated_normal", _TRUNC_LOOP, "    z[outside] = torch.randn(int(outside.sum()))\n"),
         fails=TRUNC, message="outside"),
    slip("conv filter grad: stride as stride, not dilation", edit("conv_filter_grad", "dilation=stride)", "stride=stride)"),
         fails=CONV_F),
    # submission 4
    slip("IS: sample std", edit("inception_score", "scores.std(unbiased=False)", "scores.std()"), fails=IS, message="population"),
    slip("adain: unbiased variance", edit("adain", "var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)",
                                          "var = x.var(dim=(2, 3), keepdim=True)"), fails=ADAIN, message="unbiased"),
    slip("conv filter grad: transposed", edit("conv_filter_grad", "return corr[:k_h, :k_w]", "return corr[:k_w, :k_h].T"),
         fails=CONV_F, message="transposed"),
    slip("fade G: alpha swapped", edit("fade_in", "return (1 - alpha) * old + alpha * to_rgb_new(new_block(up))",
                                       "return alpha * old + (1 - alpha) * to_rgb_new(new_block(up))"), fails=FADE_G, message="swapped"),
    slip("gdpp: rows of eigh's matrix", edit("gdpp_losses", "(vec_real * vec_fake).sum(dim=0)", "(vec_real * vec_fake).sum(dim=1)"),
         fails=GDPP, message="columns"),
    slip("vjp: padding left out", edit("conv_vjp", "stride=stride, padding=padding, output_padding", "stride=stride, output_padding"),
         fails=VJP),
    # submission 5
    slip("adain: eps outside the square root", edit("adain", "torch.sqrt(var + eps)", "(torch.sqrt(var) + eps)"), fails=ADAIN,
         message="inside the square root"),
    slip("fade G: bilinear upsampling", edit("fade_in", 'F.interpolate(to_rgb_old(h), scale_factor=2, mode="nearest")',
                                             'F.interpolate(to_rgb_old(h), scale_factor=2, mode="bilinear")'),
         fails=FADE_G, message="nearest"),
]

LIBRARY_COPIES = [
    library_copy("gdpp: the kit's gdpp_loss", rewrite("gdpp_losses", """from gan_utils.losses import gdpp_loss


def gdpp_losses(phi_fake, phi_real):
    out = gdpp_loss(phi_fake, phi_real)
    return out.magnitude, out.structure
"""), fails=GDPP),
    library_copy("conv input grad: the kit's input_gradients", rewrite("conv_input_grad", """import gan_utils.losses as L


def conv_input_grad(grad_out, f, image_size, stride=1, padding=0):
    image = torch.zeros(1, 1, *image_size, dtype=f.dtype, device=f.device)
    score = lambda x: (F.conv2d(x, f[None, None], stride=stride, padding=padding)[:, 0] * grad_out).sum(dim=(1, 2))
    return L.input_gradients(score, image)[0, 0]
"""), fails=CONV_I),
    library_copy("IS: the kit's inception_score", rewrite("inception_score", """from gan_utils.metrics import inception_score as kit_score


def inception_score(probs, splits=10):
    return kit_score(probs, splits=splits)
"""), fails=IS),
]

VARIANTS = [
    variant("gdpp: spectrum from the SVD of the features (lambda = s^2, v = U)", rewrite("gdpp_losses", """
def gdpp_losses(phi_fake, phi_real):
    def spectrum(phi):
        u, s, _ = torch.linalg.svd(F.normalize(phi, dim=1), full_matrices=False)
        return (s ** 2).flip(0), u.flip(1)  # ascending, like eigh

    (lf, vf), (lr, vr) = spectrum(phi_fake), spectrum(phi_real)
    weights = (lr - lr.min()) / (lr.max() - lr.min())
    return torch.sum(torch.abs(lr - lf)), torch.sum(weights * (1 - torch.abs(torch.einsum("ij,ij->j", vr, vf))))
""")),
    variant("fade-in: torch.lerp, toRGB after repeat_interleave, 2x2 means by reshape", rewrite("fade_in", """
def fade_in_generator(h, to_rgb_old, to_rgb_new, new_block, alpha):
    up = h.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    return torch.lerp(to_rgb_old(up), to_rgb_new(new_block(up)), alpha)  # a 1x1 conv commutes with copying pixels


def fade_in_discriminator(images, from_rgb_old, from_rgb_new, new_block, alpha):
    n, c, hh, ww = images.shape
    halved = images.reshape(n, c, hh // 2, 2, ww // 2, 2).mean(dim=(3, 5))
    return torch.lerp(from_rgb_old(halved), new_block(from_rgb_new(images)), alpha)
""")),
    variant("adain: F.instance_norm, with a UserWarning", rewrite("adain", """import warnings


def adain(x, style_scale, style_bias, eps=1e-5):
    warnings.warn("adain: a harmless warning from a correct answer")
    return style_scale[..., None, None] * F.instance_norm(x, eps=eps) + style_bias[..., None, None]
""")),
    variant("adain: torch.var_mean and rsqrt (the textbook formula)", rewrite("adain", """
def adain(x, style_scale, style_bias, eps=1e-5):
    var, mean = torch.var_mean(x, dim=(-2, -1), keepdim=True, correction=0)
    return style_scale.unsqueeze(-1).unsqueeze(-1) * (x - mean) * torch.rsqrt(var + eps) + style_bias.unsqueeze(-1).unsqueeze(-1)
""")),
    variant("conv input grad: F.conv_transpose2d (the PyTorch docs' gradient of conv2d)", rewrite("conv_input_grad", """
def conv_input_grad(grad_out, f, image_size, stride=1, padding=0):
    (H, W), (k_h, k_w), (h_out, w_out) = image_size, f.shape, grad_out.shape
    extra = ((H + 2 * padding - k_h) % stride, (W + 2 * padding - k_w) % stride)
    return F.conv_transpose2d(grad_out[None, None], f[None, None], stride=stride, padding=padding, output_padding=extra)[0, 0]
""")),
    variant("conv filter grad: im2col with F.unfold and a matrix product", rewrite("conv_filter_grad", """
def conv_filter_grad(grad_out, image, kernel_size, stride=1, padding=0):
    patches = F.unfold(image[None, None], kernel_size, padding=padding, stride=stride)[0]  # (k*k, H_out*W_out)
    return (patches @ grad_out.reshape(-1)).reshape(kernel_size)
""")),
    variant("vjp: torch.autograd.grad through the layer", rewrite("conv_vjp", """
def conv_vjp(grad_out, weight, input_size, stride=1, padding=0):
    x = torch.zeros(grad_out.shape[0], weight.shape[1], *input_size, dtype=weight.dtype, device=weight.device, requires_grad=True)
    y = F.conv2d(x, weight.detach(), stride=stride, padding=padding)
    (vjp,) = torch.autograd.grad(y, x, grad_out)
    return vjp
""")),
    variant("vjp: col2im, F.fold of the filter-times-error columns", rewrite("conv_vjp", """
def conv_vjp(grad_out, weight, input_size, stride=1, padding=0):
    n, c_out = grad_out.shape[:2]
    k_h, k_w = weight.shape[-2:]
    columns = torch.einsum("ok,nol->nkl", weight.reshape(c_out, -1), grad_out.reshape(n, c_out, -1))
    return F.fold(columns, input_size, (k_h, k_w), padding=padding, stride=stride)
""")),
    variant("truncation: torch.nn.init.trunc_normal_ (inverse-CDF sampling)", rewrite("truncated_normal", """
def truncated_normal(n, dim, threshold):
    return torch.nn.init.trunc_normal_(torch.empty(n, dim), mean=0.0, std=1.0, a=-threshold, b=threshold)
""")),
    variant("truncation: rejection sampling of whole candidate batches", rewrite("truncated_normal", """
def truncated_normal(n, dim, threshold):
    kept = torch.empty(0)
    while kept.numel() < n * dim:
        draw = torch.randn(4 * n * dim)
        kept = torch.cat([kept, draw[draw.abs() <= threshold]])
    return kept[: n * dim].reshape(n, dim)
""")),
    variant("IS: entropy form H(p(y)) - E H(p(y|x)) in numpy, np.std", rewrite("inception_score", """import numpy as np


def inception_score(probs, splits=10):
    scores = []
    for part in np.split(probs.double().cpu().numpy(), splits):
        p_y = part.mean(axis=0)
        marginal_entropy = -np.sum(p_y[p_y > 0] * np.log(p_y[p_y > 0]))
        conditional_entropy = -np.mean(np.sum(np.where(part > 0, part * np.log(np.where(part > 0, part, 1.0)), 0.0), axis=1))
        scores.append(np.exp(marginal_entropy - conditional_entropy))
    return float(np.mean(scores)), float(np.std(scores))
""")),
]
