"""Hidden checks of the ``theory`` assignment (the computable cores of its written questions).

Student interface: ``gdpp_losses(phi_fake, phi_real) -> (magnitude, structure)`` for ``(N, d)`` features,
``N <= d``; ``fade_in_generator(h, to_rgb_old, to_rgb_new, new_block, alpha)`` and
``fade_in_discriminator(images, from_rgb_old, from_rgb_new, new_block, alpha)``;
``adain(x, style_scale, style_bias, eps=1e-5)``; ``conv_input_grad(grad_out, f, image_size, stride, padding)``
and ``conv_filter_grad(grad_out, image, kernel_size, stride, padding)`` for one monochrome image and one
filter; ``conv_vjp(grad_out, weight, input_size, stride, padding)``; ``truncated_normal(n, dim, threshold)``;
``inception_score(probs, splits=10) -> (mean, std)``. References (:mod:`.theory_reference`) are computed at
grade time on the grading device: autograd for the convolution gradients, ``gan_utils.losses.gdpp_loss``
for GDPP, ``gan_utils.metrics.inception_score`` for the Inception Score, the notebook's formulas for the rest. The harness's tables are in :mod:`.theory_tables`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

import autograder.assignments.theory_reference as ref
import autograder.checks as checks
from autograder.assignments.theory_tables import (  # noqa: F401 - the tables the harness reads
    LIBRARY_COPIES,
    SLIPS,
    SOLUTION_FIGURES,
    VARIANTS,
)
from autograder.checks import core, fail
from gan_utils.losses import gdpp_loss

_GDPP = tuple(f"gan_utils.losses.{m}{n}" for m in ("", "gdpp.") for n in ("gdpp_loss", "dpp_kernel"))
_GRADS = ("gan_utils.losses.input_gradients", "gan_utils.losses.penalties.input_gradients")
_SCORES = (*(f"gan_utils.metrics.{m}{n}" for m in ("", "scores.") for n in ("inception_score", "mode_score")),
           "gan_utils.metrics.evaluate_samples")  # the kit's whole evaluation, which computes IS from probabilities
OFF_LIMITS: dict[str, tuple[str, ...]] = {
    "gdpp_losses": _GDPP, "fade_in": (), "adain": (), "conv_input_grad": _GRADS, "conv_filter_grad": _GRADS,
    "conv_vjp": _GRADS, "truncated_normal": (), "inception_score": _SCORES,
}
hidden = checks.hidden_checks(OFF_LIMITS)
Fn = Callable[..., Any]


@hidden("gdpp_losses")
def check_gdpp(gdpp_losses: Fn) -> None:
    """Both terms against ``gan_utils.losses.gdpp_loss`` (float64; value, and gradient w.r.t. the fakes)."""
    g = torch.Generator().manual_seed(101)
    for n, d in ref.GDPP_CASES:
        real, fake = ref.rand(n, d, g=g), ref.rand(n, d, g=g) + 0.3 * ref.rand(1, d, g=g)
        for k, term in enumerate(("magnitude", "structure")):
            def student(f: Tensor, k: int = k, real: Tensor = real) -> Tensor:
                out = core.call_student(gdpp_losses, f, core.tensor_clone(real), what="gdpp_losses")
                if not isinstance(out, (tuple, list)) or len(out) != 2:
                    fail(f"gdpp_losses should return (magnitude, structure), got {type(out).__name__}")
                return out[k]

            slips = {s: (lambda f, fn=fn, real=real: fn(f, real)) for s, fn in ref.GDPP_SLIPS[term].items()}
            checks.check_loss(student, lambda f, term=term, real=real: getattr(gdpp_loss(f, real), term), [(fake,)], rtol=1e-6,
                              atol=1e-8, what=f"the {term} loss (N={n}, d={d})", slips=slips)


def _check_fade(fn: Fn, side: str) -> None:
    reference = ref.ref_fade_in_generator if side == "generator" else ref.ref_fade_in_discriminator
    checks.check_loss(fn, reference, ref.fade_cases(side), rtol=1e-6, atol=1e-8, what=f"fade_in_{side}",
                      slips=ref.fade_slips(side))


@hidden("fade_in")
def check_fade_in_generator(fade_in_generator: Fn) -> None:
    """alpha = 0, 0.3, 1 on 4x4 features and 1x1-conv toRGB layers (value, and gradient w.r.t. the features)."""
    _check_fade(fade_in_generator, "generator")


@hidden("fade_in")
def check_fade_in_discriminator(fade_in_discriminator: Fn) -> None:
    """alpha = 0, 0.3, 1 on 8x8 images and 1x1-conv fromRGB layers (value, and gradient w.r.t. the images)."""
    _check_fade(fade_in_discriminator, "discriminator")


@hidden("adain")
def check_adain(adain: Fn) -> None:
    """Three seeded batches (one nearly constant channel, where eps matters); value and gradients."""
    checks.check_loss(adain, ref.ref_adain, ref.adain_cases(), rtol=1e-6, atol=1e-8, what="adain", slips=ref.ADAIN_SLIPS)


def _conv_label(name: str, image: Tensor, f: Tensor, s: int, p: int) -> str:
    return f"{name} (image {tuple(image.shape)}, k={f.shape[0]}, stride={s}, padding={p})"


@hidden("conv_input_grad")
def check_conv_input_grad(conv_input_grad: Fn) -> None:
    """dL/dI against autograd on five cases: strides 1-3, paddings 0-2, sizes the stride does not divide."""
    for g_out, image, f, s, p in ref.conv_cases():
        def reference(go: Tensor, ff: Tensor, size: Any, st: int, pd: int, image: Tensor = image) -> Tensor:
            return ref.conv_grads(go, image, ff, st, pd)[0]

        slips = {"the filter is not flipped (the input gradient is a full convolution with f, i.e. a correlation "
                 "with the flipped filter)": lambda go, ff, *a, reference=reference: reference(go, ff.flip(0, 1), *a)}
        checks.check_loss(conv_input_grad, reference, [(g_out, f, tuple(image.shape), s, p)], rtol=1e-6, atol=1e-9,
                          check_grad=False, what=_conv_label("conv_input_grad", image, f, s, p), slips=slips)


@hidden("conv_filter_grad")
def check_conv_filter_grad(conv_filter_grad: Fn) -> None:
    """dL/df against autograd on the same five cases."""
    for g_out, image, f, s, p in ref.conv_cases():
        def reference(go: Tensor, img: Tensor, size: Any, st: int, pd: int, f: Tensor = f) -> Tensor:
            return ref.conv_grads(go, img, f, st, pd)[1]

        slips = {"the result is flipped (the filter gradient is a correlation of the padded image with grad_out)":
                 lambda *a, reference=reference: reference(*a).flip(0, 1),
                 "the result is transposed": lambda *a, reference=reference: reference(*a).T}
        checks.check_loss(conv_filter_grad, reference, [(g_out, image, tuple(f.shape), s, p)], rtol=1e-6, atol=1e-9,
                          check_grad=False, what=_conv_label("conv_filter_grad", image, f, s, p), slips=slips)


@hidden("conv_vjp")
def check_conv_vjp(conv_vjp: Fn) -> None:
    """J^T v against autograd for several channels, strides and paddings (the output size first, then values)."""
    g = torch.Generator().manual_seed(307)
    twice = {"the filter is flipped twice (conv_transpose2d already applies it flipped)":
             lambda go, wt, *a: ref.ref_conv_vjp(go, wt.flip(2, 3), *a)}
    for n, c_in, c_out, h, w, k, s, p in ref.VJP_CASES:
        weight = ref.rand(c_out, c_in, k, k, g=g)
        grad_out = ref.rand(n, c_out, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1, g=g)
        what = f"conv_vjp (input {h}x{w}, k={k}, stride={s}, padding={p})"
        got = core.call_student(conv_vjp, grad_out.clone(), weight.clone(), (h, w), s, p, what="conv_vjp")
        lost = ((h + 2 * p - k) % s, (w + 2 * p - k) % s)
        if core.is_tensor(got) and lost != (0, 0) and tuple(got.shape) == (n, c_in, h - lost[0], w - lost[1]):
            fail(f"{what}: expected shape {(n, c_in, h, w)}, got {tuple(got.shape)}. A stride-{s} convolution maps "
                 f"several input sizes to one output size: the forward pass never read the last {lost} rows/columns; "
                 "pass output_padding = (H + 2p - k) mod stride to recover them.")
        checks.check_loss(conv_vjp, ref.ref_conv_vjp, [(grad_out, weight, (h, w), s, p)], rtol=1e-6, atol=1e-9,
                          check_grad=False, what=what, slips=twice)


@hidden("truncated_normal")
def check_truncated_normal(truncated_normal: Fn) -> None:
    """Shape, every |z| <= threshold, no pile-up at the threshold, and a Kolmogorov-Smirnov test against N(0, 1)
    restricted to [-t, t] (100,000 values per threshold; a correct sampler fails it with probability 1e-6)."""
    n, dim = 20000, 5
    for seed, t in ((1, 0.5), (2, 1.0), (3, 2.0)):
        what = f"truncated_normal({n}, {dim}, threshold={t})"
        torch.manual_seed(seed)  # inside the check's forked RNG
        z = core.call_student(truncated_normal, n, dim, t, what=what)
        if not core.is_tensor(z) or tuple(z.shape) != (n, dim):
            fail(f"{what}: expected a tensor of shape ({n}, {dim}), got {getattr(z, 'shape', type(z).__name__)}")
        z = core.tensor_detach(z).to("cpu", ref.D64).flatten()
        outside = int((~(z.abs() <= t + 1e-6)).sum())
        if outside:
            fail(f"{what}: {outside} of {z.numel()} values lie outside [-{t}, {t}] (or are not finite): redraw "
                 "until every value is inside")
        piled = float((z.abs() > t - 1e-9).double().mean())
        if piled > 1e-3:
            fail(f"{what}: {100 * piled:.1f}% of the values sit exactly at +-{t}: clamping is not resampling "
                 "(the tails' mass must be redrawn inside the range, not moved to its edge)")
        z = z.sort().values
        ks, limit = ref.ks_distance(z, ref.truncnorm_cdf(z, t)), math.sqrt(-0.5 * math.log(1e-6 / 2) / z.numel())
        if ks > limit:
            fail(f"{what}: the values are not distributed as N(0, 1) restricted to [-{t}, {t}]: Kolmogorov-Smirnov "
                 f"distance {ks:.4f} (allowed {limit:.4f}); std {float(z.std()):.4f}, expected "
                 f"{ref.truncnorm_std(t):.4f}. Draw from N(0, 1) and redraw the values outside.")


@hidden("inception_score")
def check_inception_score(inception_score: Fn) -> None:
    """Known cases (uniform -> 1, balanced one-hot -> C) and seeded softmax outputs with 1, 4, 5 and 10 splits."""
    for name, probs, splits in ref.is_cases():
        what = f"inception_score({name} probabilities {tuple(probs.shape)}, splits={splits})"
        got = core.call_student(inception_score, probs.clone(), splits, what="inception_score")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"{what} should return (mean, std), got {type(got).__name__}")
        mean, std = (checks.as_number(v, f"{what}[{i}]") for i, v in enumerate(got))
        want_mean, want_std = ref.ref_inception_score(probs, splits)
        if not math.isfinite(mean):
            fail(f"{what}: got {mean}; 0 * log 0 counts as 0 (torch.special.xlogy, or leave out the zero probabilities)")
        if not math.isclose(mean, want_mean, rel_tol=1e-5, abs_tol=1e-8):
            hint = ""
            if math.isclose(mean, math.log(want_mean), rel_tol=1e-4, abs_tol=1e-8):
                hint = " It is the log of the expected score: the Inception Score is exp of the mean KL."
            elif math.isclose(mean, ref.ref_inception_score(probs, splits, whole_set_marginal=True)[0], rel_tol=1e-5):
                hint = " It uses p(y) of the whole set: compute p(y) and the score within each split."
            fail(f"{what}: mean expected {want_mean:.6g}, got {mean:.6g}.{hint}")
        if not math.isclose(std, want_std, rel_tol=1e-4, abs_tol=1e-7):
            fail(f"{what}: std expected {want_std:.6g} (the population std over the splits, as np.std), got {std:.6g}")


core.watch_functions(sys.modules[__name__])
core.watch_functions(ref)
