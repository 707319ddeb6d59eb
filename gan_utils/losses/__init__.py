"""Losses for the course kit: adversarial losses, critic penalties, VAE terms,
importance-weighted bounds and bits per dim, latent moment matching, GDPP and
pixel reconstruction.

All GAN losses take raw logits (no sigmoid in the model) and return a value to
minimise, averaged over the batch::

    from gan_utils.losses import discriminator_loss, generator_loss, gradient_penalty

    d_loss = discriminator_loss("nonsaturating", D(real), D(fake.detach()))
    g_loss = generator_loss("nonsaturating", D(fake))
    d_loss = discriminator_loss("wgan", D(real), D(fake)) + 10 * gradient_penalty(D, real, fake)

Modules: :mod:`.gan`, :mod:`.penalties`, :mod:`.vae`, :mod:`.likelihood`,
:mod:`.moments`, :mod:`.gdpp`, :mod:`.reconstruction`, :mod:`.mode_seeking`.
"""

from gan_utils.losses.gan import (
    GAN_LOSS_KINDS,
    bce_discriminator_loss,
    discriminator_loss,
    generator_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    wgan_critic_loss,
    wgan_generator_loss,
)
from gan_utils.losses.gdpp import GDPPLoss, dpp_kernel, gdpp_loss
from gan_utils.losses.likelihood import (
    bits_per_dim,
    dequantization_offset,
    iwae_bound,
    iwae_from_samples,
    iwae_log_weights,
    log_mean_exp,
    uniform_dequantize,
)
from gan_utils.losses.mode_seeking import mode_seeking_term, same_label_pairs
from gan_utils.losses.moments import MomentLoss, latent_moment_loss, latent_moments
from gan_utils.losses.penalties import (
    clip_weights_,
    gradient_penalty,
    input_gradients,
    r1_penalty,
    r2_penalty,
)
from gan_utils.losses.reconstruction import (
    RECON_KINDS,
    GeneratorLossTerms,
    masked_reconstruction_loss,
    pix2pix_generator_loss,
    reconstruction_loss,
    sr_generator_loss,
)
from gan_utils.losses.vae import (
    LIKELIHOODS,
    ELBOTerms,
    FlowELBOTerms,
    bernoulli_nll,
    elbo,
    flow_elbo,
    gaussian_kl,
    gaussian_nll,
    log_normal_diag,
    log_standard_normal,
    reconstruction_nll,
)

__all__ = [
    # gan
    "GAN_LOSS_KINDS",
    "discriminator_loss",
    "generator_loss",
    "bce_discriminator_loss",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "wgan_critic_loss",
    "wgan_generator_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    # penalties
    "gradient_penalty",
    "r1_penalty",
    "r2_penalty",
    "clip_weights_",
    "input_gradients",
    # vae
    "LIKELIHOODS",
    "ELBOTerms",
    "FlowELBOTerms",
    "log_normal_diag",
    "log_standard_normal",
    "gaussian_kl",
    "bernoulli_nll",
    "gaussian_nll",
    "reconstruction_nll",
    "elbo",
    "flow_elbo",
    # likelihood
    "log_mean_exp",
    "iwae_bound",
    "iwae_log_weights",
    "iwae_from_samples",
    "dequantization_offset",
    "bits_per_dim",
    "uniform_dequantize",
    # moments
    "MomentLoss",
    "latent_moments",
    "latent_moment_loss",
    # mode seeking
    "mode_seeking_term",
    "same_label_pairs",
    # gdpp
    "GDPPLoss",
    "dpp_kernel",
    "gdpp_loss",
    # reconstruction
    "RECON_KINDS",
    "GeneratorLossTerms",
    "reconstruction_loss",
    "masked_reconstruction_loss",
    "sr_generator_loss",
    "pix2pix_generator_loss",
]
