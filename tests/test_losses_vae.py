"""VAE terms, flows, IWAE and bits per dim against torch.distributions and closed forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from gan_utils import losses as L

# CPU budget: the whole tests/test_losses*.py set runs in well under 30 s.
pytestmark = pytest.mark.timeout(30)

D64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _enc(n: int = 5, d: int = 3, seed: int = 0):
    g = _gen(seed)
    return torch.randn(n, d, generator=g, dtype=D64), 0.5 * torch.randn(
        n, d, generator=g, dtype=D64
    )


# --- densities, KL, NLL -------------------------------------------------------------------


def test_log_normal_diag_and_standard_normal_match_distributions():
    mu, logvar = _enc()
    x = torch.randn(4, 5, 3, dtype=D64, generator=_gen(1))  # broadcasts over k
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)
    torch.testing.assert_close(L.log_normal_diag(x, mu, logvar), ref)
    torch.testing.assert_close(L.log_standard_normal(x), Normal(0.0, 1.0).log_prob(x).sum(-1))
    assert L.log_normal_diag(x, mu, logvar, dim=None).shape == (4, 5, 3)


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = _enc(seed=2)
    q = Normal(mu, torch.exp(0.5 * logvar))
    ref = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    torch.testing.assert_close(L.gaussian_kl(mu, logvar, reduction="none"), ref)
    torch.testing.assert_close(L.gaussian_kl(mu, logvar), ref.mean())
    torch.testing.assert_close(L.gaussian_kl(mu, logvar, reduction="sum"), ref.sum())
    assert L.gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    assert torch.autograd.gradcheck(L.gaussian_kl, (mu.requires_grad_(), logvar.requires_grad_()))


def test_bernoulli_nll_matches_bce_on_probabilities():
    g = _gen(3)
    logits = 3 * torch.randn(4, 1, 5, 5, generator=g, dtype=D64)
    x = torch.rand(4, 1, 5, 5, generator=g, dtype=D64)
    ref = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(L.bernoulli_nll(logits, x, reduction="none"), ref)
    torch.testing.assert_close(L.bernoulli_nll(logits, x), ref.mean())
    torch.testing.assert_close(
        L.bernoulli_nll(torch.sigmoid(logits), x, from_probs=True), ref.mean()
    )
    assert torch.autograd.gradcheck(lambda lg: L.bernoulli_nll(lg, x), (logits.requires_grad_(),))


def test_bernoulli_nll_stable_at_extreme_logits():
    logits = torch.tensor([[100.0, -100.0]], requires_grad=True)
    x = torch.tensor([[0.0, 1.0]])  # both maximally wrong: 100 nats each
    nll = L.bernoulli_nll(logits, x)
    nll.backward()
    assert nll.item() == pytest.approx(200.0)
    torch.testing.assert_close(logits.grad, torch.tensor([[1.0, -1.0]]))


def test_bernoulli_nll_rejects_tanh_range_targets_and_bad_probs():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        L.bernoulli_nll(torch.zeros(2, 3), torch.full((2, 3), -1.0))
    with pytest.raises(ValueError, match="probabilities"):
        L.bernoulli_nll(torch.full((2, 3), 2.0), torch.zeros(2, 3), from_probs=True)
    with pytest.raises(ValueError, match="same shape"):
        L.bernoulli_nll(torch.zeros(2, 784), torch.zeros(2, 1, 28, 28))


def test_gaussian_nll_matches_normal_log_prob():
    g = _gen(4)
    mean, x = torch.randn(3, 6, generator=g, dtype=D64), torch.randn(3, 6, generator=g, dtype=D64)
    ref = -Normal(mean, 0.7).log_prob(x).sum(-1)
    torch.testing.assert_close(L.gaussian_nll(mean, x, sigma=0.7, reduction="none"), ref)
    torch.testing.assert_close(L.gaussian_nll(mean, x, logvar=2 * math.log(0.7)), ref.mean())
    unit = -Normal(mean, 1.0).log_prob(x).sum(-1).mean()
    torch.testing.assert_close(L.gaussian_nll(mean, x), unit)
    lv = torch.randn(3, 6, generator=g, dtype=D64)
    ref_t = -Normal(mean, torch.exp(0.5 * lv)).log_prob(x).sum(-1).mean()
    torch.testing.assert_close(L.gaussian_nll(mean, x, logvar=lv), ref_t)
    with pytest.raises(ValueError, match="not both"):
        L.gaussian_nll(mean, x, logvar=0.0, sigma=1.0)
    with pytest.raises(ValueError, match="positive"):
        L.gaussian_nll(mean, x, sigma=0.0)


def test_elbo_terms_and_beta():
    g = _gen(5)
    mu, logvar = _enc(n=4, d=2, seed=6)
    logits = torch.randn(4, 10, generator=g, dtype=D64)
    x = (torch.rand(4, 10, generator=g, dtype=D64) > 0.5).to(D64)
    t = L.elbo(logits, x, mu, logvar, beta=4.0)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / 4
    kl = L.gaussian_kl(mu, logvar)
    torch.testing.assert_close(t.recon, rec)
    torch.testing.assert_close(t.kl, kl)
    torch.testing.assert_close(t.elbo, -(rec + kl))
    torch.testing.assert_close(t.loss, rec + 4.0 * kl)
    assert set(t.as_dict()) == {"elbo", "recon", "kl", "loss"}
    tg = L.elbo(logits, x, mu, logvar, likelihood="gaussian", sigma=0.5)
    torch.testing.assert_close(tg.recon, -Normal(logits, 0.5).log_prob(x).sum(-1).mean())
    with pytest.raises(ValueError, match="bernoulli, gaussian"):
        L.elbo(logits, x, mu, logvar, likelihood="laplace")


# --- flows --------------------------------------------------------------------------------


def test_flow_elbo_affine_flow_closed_form():
    """z_K = a * z_0 + b: q_K is N(a mu + b, a^2 var), so log q_K has a closed form."""
    mu, logvar = _enc(n=6, d=3, seed=7)
    z0 = mu + torch.exp(0.5 * logvar) * torch.randn(6, 3, dtype=D64, generator=_gen(8))
    a = torch.tensor([2.0, -0.5, 1.5], dtype=D64)
    b = torch.tensor([0.1, 0.2, -0.3], dtype=D64)
    zk = a * z0 + b
    log_det = torch.log(a.abs()).sum().expand(6)
    log_px = -torch.rand(6, dtype=D64, generator=_gen(9)) * 50
    t = L.flow_elbo(log_px, z0, zk, mu, logvar, log_det)
    log_qk = Normal(a * mu + b, a.abs() * torch.exp(0.5 * logvar)).log_prob(zk).sum(-1)
    log_p = Normal(0.0, 1.0).log_prob(zk).sum(-1)
    torch.testing.assert_close(t.log_q, log_qk.mean())
    torch.testing.assert_close(t.log_p, log_p.mean())
    torch.testing.assert_close(t.kl, (log_qk - log_p).mean())
    torch.testing.assert_close(t.elbo, (log_px + log_p - log_qk).mean())
    torch.testing.assert_close(t.recon, -log_px.mean())


def test_flow_elbo_identity_flow_kl_is_unbiased():
    mu, logvar = _enc(n=2, d=3, seed=10)
    n_mc = 20000
    mu_r, lv_r = mu.repeat(n_mc, 1), logvar.repeat(n_mc, 1)
    z0 = mu_r + torch.exp(0.5 * lv_r) * torch.randn(mu_r.shape, dtype=D64, generator=_gen(11))
    t = L.flow_elbo(
        torch.zeros(len(z0), dtype=D64), z0, z0, mu_r, lv_r, torch.zeros(len(z0), dtype=D64)
    )
    assert t.kl.item() == pytest.approx(L.gaussian_kl(mu, logvar).item(), abs=0.05)


# --- IWAE ---------------------------------------------------------------------------------


def test_iwae_bound_formula_k1_and_jensen():
    g = _gen(12)
    lpx, lpz, lqz = (torch.randn(7, 4, generator=g, dtype=D64) * 3 for _ in range(3))
    log_w = lpx + lpz - lqz
    bound = L.iwae_bound(lpx, lpz, lqz)
    assert bound.shape == (4,)
    torch.testing.assert_close(bound, torch.log(torch.exp(log_w).mean(0)))
    assert (bound >= log_w.mean(0)).all()  # Jensen: L_k >= average single-sample ELBO
    torch.testing.assert_close(L.iwae_bound(lpx[:1], lpz[:1], lqz[:1]), log_w[0])
    const = torch.full((5, 3), -123.0, dtype=D64)
    torch.testing.assert_close(L.iwae_bound(const, const * 0, const * 0), const[0])
    with pytest.raises(ValueError, match=r"\(k, N\)"):
        L.iwae_bound(lpx[0], lpz[0], lqz[0])


def _bernoulli_model(seed: int = 13):
    g = _gen(seed)
    w = torch.randn(3, 8, generator=g, dtype=D64)
    x = (torch.rand(5, 8, generator=g, dtype=D64) > 0.5).to(D64)
    mu, logvar = _enc(n=5, d=3, seed=seed + 1)
    return (lambda z: z @ w), x, mu, logvar


def test_iwae_k1_equals_single_sample_elbo_exactly():
    decode, x, mu, logvar = _bernoulli_model()
    eps = torch.randn(1, 5, 3, dtype=D64, generator=_gen(20))
    z = mu + torch.exp(0.5 * logvar) * eps[0]
    elbo_1 = (
        -F.binary_cross_entropy_with_logits(decode(z), x, reduction="none").sum(-1)
        + Normal(0.0, 1.0).log_prob(z).sum(-1)
        - Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    )
    torch.testing.assert_close(L.iwae_from_samples(decode, x, mu, logvar, k=1, eps=eps), elbo_1)
    # and it is an unbiased estimate of the analytic-KL ELBO
    many = L.iwae_log_weights(decode, x, mu, logvar, k=4000, generator=_gen(21))
    zs = mu + torch.exp(0.5 * logvar) * torch.randn(4000, 5, 3, dtype=D64, generator=_gen(21))
    rec = -F.binary_cross_entropy_with_logits(
        decode(zs), x.expand(4000, 5, 8), reduction="none"
    ).sum(-1)
    analytic = rec.mean(0) - L.gaussian_kl(mu, logvar, reduction="none")
    torch.testing.assert_close(many.mean(0), analytic, atol=0.15, rtol=0)


def test_iwae_chunking_and_jensen_for_fixed_samples():
    decode, x, mu, logvar = _bernoulli_model(seed=30)
    eps = torch.randn(10, 5, 3, dtype=D64, generator=_gen(31))
    full = L.iwae_from_samples(decode, x, mu, logvar, k=10, eps=eps)
    chunked = L.iwae_from_samples(decode, x, mu, logvar, k=10, eps=eps, chunk_size=3)
    torch.testing.assert_close(full, chunked)
    log_w = L.iwae_log_weights(decode, x, mu, logvar, k=10, eps=eps)
    assert (full >= log_w.mean(0)).all()


def test_iwae_increases_with_k_towards_exact_log_likelihood():
    """Linear-Gaussian model: p(z) = N(0, 1), p(x|z) = N(z, s^2) so p(x) = N(0, 1 + s^2)."""
    s = 0.5
    x = torch.tensor([[-1.5], [1.0], [2.0]], dtype=D64)
    exact = Normal(0.0, math.sqrt(1 + s**2)).log_prob(x).squeeze(1)
    # a deliberately poor posterior: E[L_k] rises with k and stays below log p(x)
    mu = torch.zeros(3, 1, dtype=D64)
    logvar = torch.full((3, 1), math.log(0.3), dtype=D64)
    reps, k_max = 2000, 50
    log_w = L.iwae_log_weights(
        lambda z: z,
        x,
        mu,
        logvar,
        k=reps * k_max,
        likelihood="gaussian",
        sigma=s,
        generator=_gen(100),
    ).view(reps, k_max, 3)
    means = [L.log_mean_exp(log_w[:, :k], dim=1).mean(0) for k in (1, 5, 50)]
    assert (means[0] < means[1]).all() and (means[1] < means[2]).all()
    assert (means[2] < exact).all()
    assert (exact - means[2] < 0.5 * (exact - means[0])).all()  # closes most of the gap
    # with the exact posterior every weight equals p(x): L_k = log p(x) for any k
    post_var = s**2 / (1 + s**2)
    mu_post = x / (1 + s**2)
    lv_post = torch.full_like(x, math.log(post_var))
    for k in (1, 7):
        bound = L.iwae_from_samples(
            lambda z: z, x, mu_post, lv_post, k=k, likelihood="gaussian", sigma=s
        )
        torch.testing.assert_close(bound, exact)


def test_iwae_gradients_flow_to_encoder_and_decoder():
    decode_w = torch.randn(3, 8, dtype=D64, requires_grad=True)
    _, x, mu, logvar = _bernoulli_model()
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    loss = -L.iwae_from_samples(lambda z: z @ decode_w, x, mu, logvar, k=3).mean()
    loss.backward()
    for t in (decode_w, mu, logvar):
        assert t.grad is not None and torch.isfinite(t.grad).all()


def test_iwae_input_errors():
    decode, x, mu, logvar = _bernoulli_model()
    with pytest.raises(ValueError, match="eps must have shape"):
        L.iwae_from_samples(decode, x, mu, logvar, k=2, eps=torch.zeros(3, 5, 3, dtype=D64))
    with pytest.raises(ValueError, match="decode returned shape"):
        L.iwae_from_samples(lambda z: z, x, mu, logvar, k=2)
    with pytest.raises(ValueError, match="positive int"):
        L.iwae_from_samples(decode, x, mu, logvar, k=0)


# --- bits per dim -------------------------------------------------------------------------


def test_bits_per_dim_uniform_density_is_eight_bits():
    # uniform density on [0, 1]^D: -log p(y) = 0 -> 8 bits per dim
    assert L.bits_per_dim(0.0, 3 * 64 * 64) == pytest.approx(8.0)
    # uniform on [-1, 1]^D has density 2^-D: nll = D log 2, still 8 bits with data_width=2
    d = 784
    assert L.bits_per_dim(d * math.log(2.0), d, data_width=2.0) == pytest.approx(8.0)
    assert L.dequantization_offset(d) == pytest.approx(d * math.log(256))
    assert L.bits_per_dim(d * math.log(2.0), d, n_bins=None) == pytest.approx(1.0)


def test_bits_per_dim_piecewise_constant_density_recovers_discrete_entropy():
    """Density 256 * P_k on bin k: continuous bpd equals -log2 P(x) per dim."""
    g = _gen(40)
    probs = torch.softmax(torch.randn(256, generator=g, dtype=D64), 0)
    x = torch.randint(0, 256, (2, 3, 4, 4), generator=g)
    y = L.uniform_dequantize(x, generator=g)
    assert ((y >= 0) & (y < 1)).all() and (torch.floor(y * 256).long() == x).all()
    bins = torch.floor(y * 256).long()
    nll = -torch.log(256 * probs[bins]).flatten(1).sum(1)  # continuous NLL of y, nats
    bpd = L.bits_per_dim(nll, num_dims=48)
    expected = -torch.log2(probs[x]).flatten(1).sum(1) / 48
    torch.testing.assert_close(bpd, expected)


def test_uniform_dequantize_ranges_and_errors():
    x = torch.tensor([0, 255], dtype=torch.uint8)
    y = L.uniform_dequantize(x, value_range="tanh", generator=_gen(0))
    assert y.dtype == torch.float32 and (y >= -1).all() and (y < 1).all()
    with pytest.raises(ValueError, match="integer levels"):
        L.uniform_dequantize(torch.tensor([0.0, 300.0]))
    with pytest.raises(ValueError, match="positive"):
        L.bits_per_dim(1.0, 0)
