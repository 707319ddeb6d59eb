"""What ``tests/test_assignments.py`` grades for ``vae``: known slips (and exactly the tests each must fail),
correct variants (full marks: the PyTorch-example VAE loss, ``torch.distributions`` forms, a hand-written
stable log-mean-exp, the full planar Jacobian, an answer that warns), and answers that call the kit's
finished pieces. Edits apply to the solution's answer cells (markers removed); see
:mod:`autograder.checks.assignment`. At most three entries per answer cell.
"""

from __future__ import annotations

from autograder.checks import edit, library_copy, rewrite, slip, variant

ENC, REP, KL = {"test_encode"}, {"test_reparameterize"}, {"test_gaussian_kl"}
ELBO, IWAE, PLANAR, BPD = {"test_negative_elbo"}, {"test_iwae_bound"}, {"test_planar_log_det"}, {"test_bits_per_dim"}
SOLUTION_FIGURES = 8  # training, beta sweep, model samples, NLL vs K, bpd, traversal, interpolation, explorer
_HEADS = "return self.fc_mu(h), self.fc_logvar(h)"
_KL_BODY = "return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)"
_LSE = "return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])"
_BPD = "return (nll_nats + num_dims * math.log(256)) / (num_dims * math.log(2))"

SLIPS = [
    slip("encode: ReLU after the heads (Table 1 read literally)",
         edit("vae_model", _HEADS, "return F.relu(self.fc_mu(h)), F.relu(self.fc_logvar(h))"), fails=ENC, message="relu"),
    slip("reparameterize: exp(logvar) used as the standard deviation",
         edit("reparameterize", "std = torch.exp(0.5 * logvar)", "std = torch.exp(logvar)"), fails=REP, message="exp(logvar / 2)"),
    slip("KL: sign flipped", edit("gaussian_kl", _KL_BODY, "return -0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)"),
         fails=KL, message="sign"),
    slip("ELBO: reconstruction averaged over pixels (BCE's default reduction)",
         edit("negative_elbo", "recon = nll.flatten(1).sum(dim=1)", "recon = nll.flatten(1).mean(dim=1)"), fails=ELBO,
         message="averaged over pixels"),
    slip("IWAE: naive log(mean(exp)) underflows", edit("iwae_bound", _LSE, "return torch.log(torch.exp(log_w).mean(dim=0))"),
         fails=IWAE, message="logsumexp"),
    slip("planar: tanh instead of its derivative", edit("planar_log_det", "psi_dot_u = (1 - torch.tanh(a) ** 2)", "psi_dot_u = torch.tanh(a)"),
         fails=PLANAR, message="derivative"),
    # second submission
    slip("encode: the second head returns sigma instead of log sigma^2",
         edit("vae_model", _HEADS, "return self.fc_mu(h), torch.exp(0.5 * self.fc_logvar(h))"), fails=ENC, message="standard deviation"),
    slip("reparameterize: sampled without the trick (no gradient to the encoder)", rewrite("reparameterize", """
def reparameterize(mu, logvar):
    return torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).sample()
"""), fails=REP, message="no gradient reaches"),
    slip("KL: latent dims averaged instead of summed", edit("gaussian_kl", ".sum(dim=-1)", ".mean(dim=-1)"), fails=KL, message="averaged"),
    slip("ELBO: batch summed instead of averaged",
         edit("negative_elbo", "return (recon + beta * gaussian_kl(mu, logvar)).mean()", "return (recon + beta * gaussian_kl(mu, logvar)).sum()"),
         fails=ELBO, message="summed"),
    slip("IWAE: - log k missing", edit("iwae_bound", _LSE, "return torch.logsumexp(log_w, dim=0)"), fails=IWAE, message="log k"),
    slip("planar: no absolute value", edit("planar_log_det", "torch.log(torch.abs(1 + psi_dot_u))", "torch.log(1 + psi_dot_u)"),
         fails=PLANAR, message="absolute value"),
    slip("bpd: no D ln 256 correction", edit("bits_per_dim", _BPD, "return nll_nats / (num_dims * math.log(2))"), fails=BPD,
         message="correction"),
    # third submission
    slip("ELBO: Gaussian term without 0.5 log(2 pi)",
         edit("negative_elbo", " + torch.log(sigma) + 0.5 * math.log(2 * math.pi)", " + torch.log(sigma)"), fails=ELBO, message="constant"),
    slip("IWAE: the mean log weight (the ELBO) instead of L_k", edit("iwae_bound", _LSE, "return log_w.mean(dim=0)"), fails=IWAE,
         message="averaged"),
    slip("bpd: left in nats", edit("bits_per_dim", _BPD, "return (nll_nats + num_dims * math.log(256)) / num_dims"), fails=BPD,
         message="ln 2"),
]

LIBRARY_COPIES = [
    library_copy("reparameterize: the kit's reparameterize", rewrite("reparameterize", """from gan_utils.models.vae import reparameterize as kit_reparameterize


def reparameterize(mu, logvar):
    return kit_reparameterize(mu, logvar)
"""), fails=REP),
    library_copy("KL: the kit's gaussian_kl", rewrite("gaussian_kl", """import gan_utils.losses as L


def gaussian_kl(mu, logvar):
    return L.gaussian_kl(mu, logvar, reduction="none")
"""), fails=KL),
]

VARIANTS = [
    variant("encode: x.view(-1, 784) and torch.relu (the PyTorch VAE example)",
            edit("vae_model", "h = F.relu(self.fc1(x.flatten(1)))", "h = torch.relu(self.fc1(x.view(-1, 784)))")),
    variant("reparameterize: Normal(...).rsample() and a UserWarning", rewrite("reparameterize", """import warnings


def reparameterize(mu, logvar):
    warnings.warn("reparameterize: a harmless warning from a correct answer")
    return torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample()
""")),
    variant("KL: torch.distributions.kl_divergence", rewrite("gaussian_kl", """from torch.distributions import Normal, kl_divergence


def gaussian_kl(mu, logvar):
    q = Normal(mu, torch.exp(0.5 * logvar))
    return kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
""")),
    variant("ELBO: the PyTorch-example form (BCE on probabilities, reduction='sum', KLD inline) and Normal.log_prob",
            rewrite("negative_elbo", """
def negative_elbo(logits, x, mu, logvar, likelihood="bernoulli", beta=1.0, sigma=1.0):
    n = x.shape[0]
    if likelihood == "bernoulli":
        rec = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")
    else:
        sd = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand_as(x)
        rec = -torch.distributions.Normal(torch.sigmoid(logits), sd).log_prob(x).sum()
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (rec + beta * kld) / n
""")),
    variant("IWAE: max-subtraction by hand", rewrite("iwae_bound", """
def iwae_bound(log_px_given_z, log_pz, log_qz_given_x):
    a = log_px_given_z + log_pz - log_qz_given_x
    m = a.max(dim=0, keepdim=True).values
    return m.squeeze(0) + torch.log(torch.exp(a - m).mean(dim=0))
""")),
    variant("planar: slogdet of the full Jacobian I + psi-bar u^T", rewrite("planar_log_det", """
def planar_log_det(z, w, u_hat, b):
    deriv = 1 - torch.tanh(z @ w + b) ** 2
    jac = torch.eye(z.shape[1], dtype=z.dtype, device=z.device) + deriv[:, None, None] * torch.outer(u_hat, w)
    return torch.linalg.slogdet(jac)[1]
""")),
    variant("bpd: log2 form (+ 8 bits)", rewrite("bits_per_dim", """
def bits_per_dim(nll_nats, num_dims):
    return nll_nats / (num_dims * math.log(2)) + math.log2(256)
""")),
]
