"""Hidden checks of the ``vae`` assignment (the Table 1 VAE, IWAE, a planar-flow posterior, bits per dim).

Student interface: ``TableOneVAE`` (answer: ``encode(x) -> (mu, logvar)``; layers ``fc1``, ``fc_mu``,
``fc_logvar``, ``fc3``, ``fc4``); ``reparameterize(mu, logvar)``; ``gaussian_kl(mu, logvar) -> (N,)``;
``negative_elbo(logits, x, mu, logvar, likelihood, beta, sigma) -> 0-d``; ``iwae_bound(log_px_given_z,
log_pz, log_qz_given_x) -> (N,)`` from ``(k, N)`` tensors; ``planar_log_det(z, w, u_hat, b) -> (N,)``;
``bits_per_dim(nll_nats, num_dims)``. References (:mod:`.vae_reference`) are computed at grade time in
float64 on the grading device; the harness's tables are in :mod:`.vae_tables`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch

import autograder.assignments.vae_reference as ref
import autograder.checks as checks
from autograder.assignments.vae_tables import (  # noqa: F401 - the tables the harness reads
    LIBRARY_COPIES,
    SLIPS,
    SOLUTION_FIGURES,
    VARIANTS,
)
from autograder.checks import core, fail
from autograder.checks.tensors import compare_close

_M, _L, _LL = "gan_utils.models", "gan_utils.losses", "gan_utils.losses.likelihood"
_MODELS = tuple(f"{_M}{m}.{n}" for m in ("", ".vae") for n in ("FCVAE", "ConvVAE", "reparameterize")) + (
    f"{_M}.vae.GaussianFCVAE", f"{_M}.flows.FlowVAE", f"{_M}.FlowVAE")
_KL = tuple(f"{_L}{m}.gaussian_kl" for m in ("", ".vae"))
_ELBO = _KL + tuple(f"{_L}{m}.{n}" for m in ("", ".vae") for n in (
    "elbo", "flow_elbo", "bernoulli_nll", "gaussian_nll", "reconstruction_nll", "log_normal_diag"))
_IWAE = tuple(f"{_L}{m}.{n}" for m in ("", ".likelihood") for n in (
    "log_mean_exp", "iwae_bound", "iwae_log_weights", "iwae_from_samples"))
OFF_LIMITS: dict[str, tuple[str, ...]] = {
    "vae_model": _MODELS, "reparameterize": _MODELS, "gaussian_kl": _KL, "negative_elbo": _ELBO, "iwae_bound": _IWAE,
    "planar_log_det": (f"{_M}.flows.PlanarFlow", f"{_M}.flows.FlowSequence", f"{_M}.PlanarFlow"),
    "bits_per_dim": (f"{_LL}.bits_per_dim", f"{_LL}.dequantization_offset", f"{_L}.bits_per_dim"),
}
hidden = checks.hidden_checks(OFF_LIMITS)
Fn = Callable[..., Any]
STABLE = (" The log weights are near -1000 here and exp(-1000) is 0 in floating point: subtract the maximum "
          "before exponentiating, or use torch.logsumexp.")


def _shape(got: Any, shape: tuple[int, ...], what: str, hint: str = "") -> None:
    __tracebackhide__ = True
    if not core.is_tensor(got) or tuple(got.shape) != shape:
        came = f"shape {tuple(got.shape)}" if core.is_tensor(got) else type(got).__name__
        fail(f"{what}: expected a tensor of shape {shape}, got {came}.{hint}")


@hidden("vae_model")
def check_encode(model_class: Fn) -> None:
    """Seeded weights loaded into the student's model; encode of (N, 1, 28, 28) grey and (N, 784) binary digits."""
    model = core.call_student(model_class, what="TableOneVAE()")
    state = ref.table_one_state(81)
    missing = sorted(set(state) - set(model.state_dict()))
    if missing:
        fail(f"TableOneVAE has no parameters {missing}: keep the layer names fc1, fc_mu, fc_logvar, fc3, fc4")
    model = model.to(device=checks.grading_device(), dtype=ref.D64)
    model.load_state_dict(state, strict=False)
    g = torch.Generator().manual_seed(82)
    for x in (ref.uniform(8, 1, 28, 28, g=g), (ref.uniform(5, 784, g=g) < 0.4).to(ref.D64)):
        what = f"encode(x of shape {tuple(x.shape)})"
        got = core.call_student(model.encode, x.clone(), what=what)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"{what} should return (mu, logvar), got {type(got).__name__}")
        slips = {text: ref.ref_encode(state, x, slip=name) for name, text in ref.ENCODE_SLIPS.items()}
        checks.compare_naming_slips(tuple(core.tensor_detach(t) if core.is_tensor(t) else t for t in got), ref.ref_encode(state, x), what, slips)


@hidden("reparameterize")
def check_reparameterize(reparameterize: Fn) -> None:
    """Shapes (3000, 4) and (5, 600, 3): dz/dmu = 1 and dz/dlogvar = (z - mu) / 2 exactly, the noise is
    standard normal, and each call draws new noise."""
    g = torch.Generator().manual_seed(91)
    for shape in ((3000, 4), (5, 600, 3)):
        mu = ref.rand(*shape, g=g).requires_grad_(True)
        logvar = ref.rand(*shape, g=g, scale=0.7).requires_grad_(True)
        what = f"reparameterize(mu, logvar of shape {shape})"
        z = core.call_student(reparameterize, mu, logvar, what=what)
        _shape(z, shape, what)
        grads = core.autograd_grad(z, [mu, logvar], grad_outputs=torch.ones_like(z), allow_unused=True) if z.requires_grad else (None, None)
        if any(gr is None or not bool(gr.abs().sum() > 0) for gr in grads):
            fail(f"{what}: no gradient reaches mu and logvar (the encoder), so the encoder cannot learn: the sample "
                 "was drawn without the reparameterisation trick; write z = mu + exp(logvar / 2) * eps with eps ~ N(0, I)")
        delta = core.tensor_detach(z) - core.tensor_detach(mu)
        compare_close(grads[0], torch.ones_like(grads[0]), 1e-9, 1e-9, f"{what}: dz/dmu (expected 1 everywhere)")
        checks.compare_naming_slips(grads[1], 0.5 * delta, f"{what}: dz/dlogvar (expected sigma * eps / 2 = (z - mu) / 2)",
                                    {"sigma is exp(logvar) instead of exp(logvar / 2) (logvar is the log variance)": delta})
        eps = delta / torch.exp(0.5 * core.tensor_detach(logvar))
        mean, std = float(eps.mean()), float(eps.std())
        if abs(mean) > 0.06 or abs(std - 1) > 0.05:
            fail(f"{what}: (z - mu) / sigma should be standard normal, got mean {mean:.3f} and std {std:.3f}")
        again = core.call_student(reparameterize, mu, logvar, what=what)
        if checks.same_values(core.tensor_detach(again), core.tensor_detach(z)):
            fail(f"{what}: two calls returned the same z; draw new noise eps on every call")


@hidden("gaussian_kl")
def check_gaussian_kl(gaussian_kl: Fn) -> None:
    """Four (N, d) cases, (7, 5) to (64, 2): the (N,) KL against the closed form."""
    for mu, logvar in ref.kl_cases():
        what = f"gaussian_kl(mu, logvar of shape {tuple(mu.shape)})"
        got = core.call_student(gaussian_kl, mu.clone(), logvar.clone(), what=what)
        _shape(got, (mu.shape[0],), what, " Return one KL per data point: sum over the latent dims, not over the batch.")
        slips = {text: ref.ref_kl(mu, logvar, slip=name) for name, text in ref.KL_SLIPS.items()}
        checks.compare_naming_slips(core.tensor_detach(got), ref.ref_kl(mu, logvar), what, slips)


@hidden("negative_elbo")
def check_negative_elbo(negative_elbo: Fn) -> None:
    """Bernoulli (binary and grey targets) and Gaussian (sigma 1, 0.3 and a per-pixel tensor) cases, with the
    reference gaussian_kl swapped in, so a slip in gaussian_kl costs only its own test."""
    with checks.swapped_in(negative_elbo, gaussian_kl=ref.ref_kl):
        for what, case in ref.elbo_cases():
            call = f"negative_elbo ({what})"
            logits = case["logits"].clone().requires_grad_(True)
            got = core.call_student(negative_elbo, **{**case, "logits": logits}, what=call)
            if not core.is_tensor(got) or not got.requires_grad:
                fail(f"{call}: expected a differentiable tensor (no .item(), float() or detach), got {type(got).__name__}")
            value = checks.as_number(got, call)
            slips = {text: float(ref.ref_negative_elbo(**case, slip=name)) for name, text in ref.ELBO_SLIPS.items()}
            checks.compare_naming_slips(value, float(ref.ref_negative_elbo(**case)), call, slips)


@hidden("iwae_bound")
def check_iwae_bound(iwae_bound: Fn) -> None:
    """k = 5 near -100 and near -1000 (stability), k = 1 and k = 50: the (N,) bound against logsumexp - log k."""
    for what, (lpx, lpz, lqz) in ref.iwae_cases():
        call = f"iwae_bound ({what}, shape {tuple(lpx.shape)})"
        got = core.call_student(iwae_bound, lpx.clone(), lpz.clone(), lqz.clone(), what=call)
        _shape(got, (lpx.shape[1],), call, " Reduce over the k samples (dim 0) only.")
        slips = {text: ref.ref_iwae(lpx, lpz, lqz, slip=name) for name, text in ref.IWAE_SLIPS.items()}
        checks.compare_naming_slips(core.tensor_detach(got), ref.ref_iwae(lpx, lpz, lqz), call, slips, STABLE)


@hidden("planar_log_det")
def check_planar_log_det(planar_log_det: Fn) -> None:
    """Three cases, one with w.u = -3 where 1 + u.psi changes sign: log|1 + u.psi(z)| per row."""
    for what, (z, w, u, b) in ref.planar_cases():
        call = f"planar_log_det ({what})"
        got = core.call_student(planar_log_det, z.clone(), w.clone(), u.clone(), b.clone(), what=call)
        _shape(got, (z.shape[0],), call)
        slips = {text: ref.ref_planar(z, w, u, b, slip=name) for name, text in ref.PLANAR_SLIPS.items()}
        checks.compare_naming_slips(core.tensor_detach(got), ref.ref_planar(z, w, u, b), call, slips,
                                    " Take the absolute value: log|1 + u.psi(z)|.")


@hidden("bits_per_dim")
def check_bits_per_dim(bits_per_dim: Fn) -> None:
    """NLLs as tensors and as a float, for 784, 3072 and 12288 dims."""
    for what, nll, d in ref.bpd_cases():
        call = f"bits_per_dim ({what})"
        got = core.call_student(bits_per_dim, nll.clone() if core.is_tensor(nll) else nll, d, what=call)
        if core.is_tensor(nll):
            _shape(got, tuple(nll.shape), call, " Convert each NLL elementwise.")
            got = core.tensor_detach(got)
        else:
            got = checks.as_number(got, call)
        slips = {text: ref.ref_bpd(nll, d, slip=name) for name, text in ref.BPD_SLIPS.items()}
        checks.compare_naming_slips(got, ref.ref_bpd(nll, d), call, slips)


core.watch_functions(sys.modules[__name__])
core.watch_functions(ref)
