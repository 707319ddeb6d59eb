"""gan_utils.inversion: latent optimisation for GAN inversion and masked restoration."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_utils.data import center_box_mask
from gan_utils.inversion import interpolate_latents, invert_latents, per_image_masked_mse


class LinearGenerator(nn.Module):
    """G(z) = sigmoid(W z + b) on 1x6x6 images: smooth and (for a generic W) injective."""

    z_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(3, 36)
        self.drop = nn.Dropout(0.5)  # eval mode must switch it off

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.drop(self.net(z))).reshape(-1, 1, 6, 6)


@pytest.fixture()
def generator() -> LinearGenerator:
    torch.manual_seed(0)
    return LinearGenerator()


def test_per_image_masked_mse_ignores_missing_pixels() -> None:
    target = torch.rand(2, 1, 6, 6)
    mask = center_box_mask(6, 0.5)
    wrong_inside = target + (1 - mask) * 5.0  # differs only where the mask is 0
    assert torch.allclose(per_image_masked_mse(wrong_inside, target, mask), torch.zeros(2))
    off = target + 0.1
    assert torch.allclose(per_image_masked_mse(off, target, mask), torch.full((2,), 0.01))  # a mean, not a sum


def test_inversion_recovers_the_code_and_leaves_the_generator_alone(generator: LinearGenerator) -> None:
    z_true = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = generator.eval()(z_true)
    generator.train()
    before = [p.detach().clone() for p in generator.parameters()]
    result = invert_latents(generator, target, steps=400, lr=0.05, restarts=2, seed=3)
    assert result.z.shape == (4, 3) and result.images.shape == target.shape and result.loss.shape == (4,)
    assert float(result.loss.max()) < 1e-5
    assert torch.allclose(result.z, z_true, atol=1e-2)
    assert result.history[-1] < result.history[0]
    assert generator.training, "the generator's mode must be restored"
    assert all(p.requires_grad for p in generator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters(), strict=True))
    assert all(p.grad is None for p in generator.parameters())


def test_restoration_fills_the_hole_from_the_kept_pixels(generator: LinearGenerator) -> None:
    z_true = torch.randn(3, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        clean = generator.eval()(z_true)
    mask = center_box_mask(6, 0.5)
    result = invert_latents(generator, clean * mask, mask, steps=400, restarts=2)
    hole = (1 - mask).bool().expand_as(clean)
    assert torch.allclose(result.images[hole], clean[hole], atol=1e-3)


def test_results_do_not_depend_on_the_rest_of_the_batch(generator: LinearGenerator) -> None:
    target = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    z0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(5))
    full = invert_latents(generator, target, steps=30, z_init=z0)
    alone = invert_latents(generator, target[:2], steps=30, z_init=z0[:2])
    assert torch.allclose(full.z[:2], alone.z, atol=1e-5)


def test_more_restarts_never_lose(generator: LinearGenerator) -> None:
    target = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(6))
    one = invert_latents(generator, target, steps=20, restarts=1, seed=7)
    four = invert_latents(generator, target, steps=20, restarts=4, seed=7)  # the first start is the same
    assert bool((four.loss <= one.loss + 1e-7).all())


def test_interpolate_latents_endpoints_and_order() -> None:
    z1, z2 = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.0])
    codes = interpolate_latents(z1, z2, torch.tensor([0.0, 0.25, 1.0]))
    assert torch.allclose(codes, torch.tensor([[-1.0, 0.0], [-0.5, 0.5], [1.0, 2.0]]))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mask": torch.zeros(1, 6, 6)}, "keeps no pixel"),
    ({"mask": torch.ones(1, 5, 5)}, "does not broadcast"),
    ({"steps": 0}, "positive ints"),
    ({"z_init": torch.zeros(2, 4)}, "z_init must have shape"),
])
def test_bad_input_says_what_was_expected(generator: LinearGenerator, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        invert_latents(generator, torch.rand(2, 1, 6, 6), **kwargs)
    with pytest.raises(ValueError, match="N, C, H, W"):
        invert_latents(generator, torch.rand(6, 6))
