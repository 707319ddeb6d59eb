"""Normalizing flows for a richer VAE posterior (Montreal seed, VAE variant (a)).

A flow pushes the Gaussian sample ``z0 ~ q0(z|x) = N(mu, diag(exp(logvar)))``
through invertible maps ``zK = f_K(... f_1(z0))``. By the change of variables,

    log qK(zK|x) = log q0(z0|x) - sum_k log |det d f_k / d z_{k-1}|,

so the ELBO becomes

    E_q0[ log p(x|zK) + log p(zK) - log q0(z0|x) + sum_k log|det J_k| ].

Every layer here maps ``(z (N, D), context (N, C) or None)`` to
``(z_new (N, D), log_det (N,))``, with ``log_det = log|det J|`` of that layer.

* :class:`PlanarFlow` (Rezende & Mohamed, 2015): ``f(z) = z + u_hat tanh(w.z + b)``.
  It is invertible only when ``w.u_hat >= -1``; ``u_hat`` is the
  reparameterisation ``u + (m(w.u) - w.u) w / |w|^2`` with
  ``m(a) = -1 + softplus(a)`` that guarantees it. Its parameters are global
  (shared by all ``x``).
* :class:`IAF` (Kingma et al., 2016): ``z_new = sigma * z + (1 - sigma) * m``
  where ``(m, s)`` come from a MADE network that is autoregressive in ``z``
  (output ``i`` sees only ``z_<i``) and may also see a context vector from the
  encoder; ``sigma = sigmoid(s)``. The Jacobian is triangular with diagonal
  ``sigma``, so ``log_det = sum log sigma``.
* :class:`FlowSequence` chains layers and sums their log-dets.
* :class:`FlowVAE` puts a flow on top of :class:`~gan_utils.models.vae.FCVAE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from gan_utils.models.vae import FCVAE

__all__ = ["PlanarFlow", "MaskedLinear", "IAF", "FlowSequence", "FlowVAE", "FlowVAEOutput"]


def _check_z(z: torch.Tensor, dim: int, name: str) -> None:
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != dim:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"{name} expects z of shape (N, {dim}), got {shape}")


class PlanarFlow(nn.Module):
    """Planar flow ``f(z) = z + u_hat * tanh(w . z + b)`` on ``(N, dim)``.

    ``forward(z, context=None) -> (f(z) (N, dim), log|det J| (N,))`` with
    ``log|det J| = log(1 + tanh'(w . z + b) * w . u_hat)``; since
    ``w . u_hat = -1 + softplus(w . u) > -1`` and ``0 < tanh' <= 1``, the
    argument is always positive. ``context`` is accepted and ignored.
    """

    def __init__(self, dim: int, init_scale: float = 0.1) -> None:
        super().__init__()
        self.dim = dim
        self.u = nn.Parameter(torch.randn(dim) * init_scale)
        self.w = nn.Parameter(torch.randn(dim) * init_scale)
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> torch.Tensor:
        """The constrained ``u`` (``(dim,)``), with ``w . u_hat >= -1``."""
        wu = torch.dot(self.w, self.u)
        m = -1.0 + F.softplus(wu)
        w_sq = torch.dot(self.w, self.w).clamp_min(1e-12)
        return self.u + (m - wu) * self.w / w_sq

    def forward(
        self, z: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``z (N, dim)`` -> ``(z_new (N, dim), log_det (N,))``."""
        _check_z(z, self.dim, type(self).__name__)
        u_hat = self.u_hat()
        h = torch.tanh(z @ self.w + self.b)  # (N,)
        z_new = z + h.unsqueeze(1) * u_hat
        # det(I + u psi^T) = 1 + psi^T u, with psi = tanh'(a) w (matrix determinant lemma)
        log_det = torch.log1p((1.0 - h.pow(2)) * torch.dot(self.w, u_hat))
        return z_new, log_det


class MaskedLinear(nn.Linear):
    """Linear layer whose weight is multiplied by a fixed 0/1 ``mask`` (``(out, in)``)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor) -> None:
        super().__init__(in_features, out_features)
        if mask.shape != (out_features, in_features):
            raise ValueError(
                f"mask must have shape ({out_features}, {in_features}), got {tuple(mask.shape)}"
            )
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class IAF(nn.Module):
    """One inverse-autoregressive-flow layer with a MADE network.

    Args:
        dim: latent size ``D``.
        hidden: MADE hidden units (default ``max(32, 4 * D)``).
        context_dim: size of an optional context vector (e.g. the encoder's
            hidden layer) added, unmasked, to the first hidden layer; 0 = none.
        n_hidden_layers: masked hidden layers (>= 1).
        reverse: use the order ``z_D, ..., z_1`` instead of ``z_1, ..., z_D``
            (alternate it between stacked layers so every coordinate gets to
            depend on every other).
        s_bias: initial bias of ``s`` so ``sigma = sigmoid(s)`` starts near 1
            (the layer starts close to the identity).

    ``forward(z (N, D), context (N, context_dim) | None) -> (z_new (N, D), log_det (N,))``.
    In the natural order ``dz_new_i / dz_j = 0`` for ``j > i`` (lower-triangular
    Jacobian); with ``reverse=True`` it is upper-triangular.
    """

    def __init__(
        self,
        dim: int,
        hidden: int | None = None,
        context_dim: int = 0,
        n_hidden_layers: int = 1,
        reverse: bool = False,
        s_bias: float = 2.0,
    ) -> None:
        super().__init__()
        if n_hidden_layers < 1:
            raise ValueError(f"n_hidden_layers must be >= 1, got {n_hidden_layers}")
        hidden = max(32, 4 * dim) if hidden is None else hidden
        self.dim, self.hidden, self.context_dim, self.reverse = dim, hidden, context_dim, reverse
        order = torch.arange(1, dim + 1)
        in_deg = order.flip(0) if reverse else order
        # hidden degrees in 1..D-1 (a unit of degree k may see inputs of degree <= k)
        hid_deg = torch.arange(hidden) % max(dim - 1, 1) + 1
        layers: list[nn.Module] = []
        prev_deg, prev_size = in_deg, dim
        for _ in range(n_hidden_layers):
            mask = (hid_deg.unsqueeze(1) >= prev_deg.unsqueeze(0)).float()
            layers.append(MaskedLinear(prev_size, hidden, mask))
            prev_deg, prev_size = hid_deg, hidden
        self.hidden_layers = nn.ModuleList(layers)
        # outputs of degree d may only see hidden units of degree < d (strict: no z_i -> (m_i, s_i))
        out_mask = (in_deg.unsqueeze(1) > hid_deg.unsqueeze(0)).float()
        self.out = MaskedLinear(hidden, 2 * dim, torch.cat([out_mask, out_mask], dim=0))
        self.context = nn.Linear(context_dim, hidden) if context_dim > 0 else None
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias[dim:].fill_(s_bias)

    def forward(
        self, z: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``z (N, D)`` -> ``(sigma * z + (1 - sigma) * m, sum(log sigma) (N,))``."""
        _check_z(z, self.dim, type(self).__name__)
        h = self.hidden_layers[0](z)
        if self.context is not None:
            if (
                context is None
                or context.dim() != 2
                or context.shape != (z.shape[0], self.context_dim)
            ):
                got = None if context is None else tuple(context.shape)
                raise ValueError(
                    f"IAF expects a context of shape ({z.shape[0]}, {self.context_dim}), got {got}"
                )
            h = h + self.context(context)
        h = F.elu(h)
        for layer in self.hidden_layers[1:]:
            h = F.elu(layer(h))
        m, s = self.out(h).chunk(2, dim=1)
        sigma = torch.sigmoid(s)
        z_new = sigma * z + (1.0 - sigma) * m
        return z_new, F.logsigmoid(s).sum(dim=1)


class FlowSequence(nn.Module):
    """Chain of flow layers: ``(z0 (N, D), context) -> (zK (N, D), sum_k log|det J_k| (N,))``.

    ``FlowSequence.planar(D, K)`` and ``FlowSequence.iaf(D, K, ...)`` build the
    usual stacks; an empty sequence is the identity with log-det 0.
    """

    def __init__(self, layers: Iterable[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    @classmethod
    def planar(cls, dim: int, n_layers: int) -> FlowSequence:
        """``n_layers`` planar flows on ``dim`` dimensions."""
        return cls(PlanarFlow(dim) for _ in range(n_layers))

    @classmethod
    def iaf(
        cls,
        dim: int,
        n_layers: int,
        hidden: int | None = None,
        context_dim: int = 0,
        n_hidden_layers: int = 1,
    ) -> FlowSequence:
        """``n_layers`` IAF layers, alternating the variable order."""
        return cls(
            IAF(dim, hidden, context_dim, n_hidden_layers, reverse=k % 2 == 1)
            for k in range(n_layers)
        )

    def forward(
        self, z: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``z0 (N, D)`` -> ``(zK (N, D), sum_log_det (N,))``."""
        total = z.new_zeros(z.shape[0])
        for layer in self.layers:
            z, log_det = layer(z, context)
            total = total + log_det
        return z, total


class FlowVAEOutput(NamedTuple):
    """What :meth:`FlowVAE.forward` returns (a tuple; fields by name or position).

    ``recon_logits``: Bernoulli logits of ``p(x|zK)``, shaped like the input;
    ``mu, logvar``: ``q0`` parameters ``(N, D)``; ``z0``: the Gaussian sample
    ``(N, D)``; ``zk``: the sample after the flow ``(N, D)``; ``sum_log_det``:
    ``sum_k log|det J_k|`` ``(N,)``.
    """

    recon_logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z0: torch.Tensor
    zk: torch.Tensor
    sum_log_det: torch.Tensor


class FlowVAE(nn.Module):
    """:class:`FCVAE` whose posterior sample goes through a normalizing flow.

    Args:
        in_features, hidden, latent_dim, image_shape: as for :class:`FCVAE`.
        flow: ``"planar"`` (global parameters) or ``"iaf"`` (conditioned on the
            encoder's hidden layer ``h (N, hidden)``).
        n_flows: number of flow layers ``K`` (0 gives the plain VAE).
        flow_hidden: IAF MADE width (default ``max(32, 4 * latent_dim)``).

    ``forward(x)`` returns a :class:`FlowVAEOutput`. The ELBO per sample is::

        log p(x|zK) + log N(zK; 0, I) - log N(z0; mu, exp(logvar)) + sum_log_det

    The prior is still ``N(0, I)``, so ``sample(n)`` decodes prior draws directly.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: int = 400,
        latent_dim: int = 20,
        flow: Literal["planar", "iaf"] = "planar",
        n_flows: int = 4,
        flow_hidden: int | None = None,
        image_shape: Sequence[int] | None = (1, 28, 28),
    ) -> None:
        super().__init__()
        self.vae = FCVAE(in_features, hidden, latent_dim, image_shape)
        self.latent_dim, self.flow_kind = latent_dim, flow
        if flow == "planar":
            self.flow = FlowSequence.planar(latent_dim, n_flows)
        elif flow == "iaf":
            self.flow = FlowSequence.iaf(latent_dim, n_flows, flow_hidden, context_dim=hidden)
        else:
            raise ValueError(f"flow must be 'planar' or 'iaf', got {flow!r}")

    def forward(self, x: torch.Tensor) -> FlowVAEOutput:
        """``x (N, 784)`` or ``(N, 1, 28, 28)`` -> :class:`FlowVAEOutput`."""
        mu, logvar, h = self.vae.encode(x, return_features=True)
        z0 = self.vae.reparameterize(mu, logvar)
        zk, sum_log_det = self.flow(z0, h if self.flow_kind == "iaf" else None)
        logits = self.vae.decode_logits(zk).reshape(x.shape)
        return FlowVAEOutput(logits, mu, logvar, z0, zk, sum_log_det)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., latent_dim)`` -> images in ``[0, 1]``, ``(..., *image_shape)``."""
        return self.vae.decode(z)

    @torch.no_grad()
    def sample(self, n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` images decoded from the prior ``N(0, I)``."""
        return self.vae.sample(n, device)
