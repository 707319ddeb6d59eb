"""GDPP loss: constructed spectra with known eigenpairs, invariances, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_utils import losses as L

# CPU budget: the whole tests/test_losses*.py set runs in well under 30 s.
pytestmark = pytest.mark.timeout(30)

D64 = torch.float64


def _feats(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, dtype=D64, generator=torch.Generator().manual_seed(seed))


def _numpy_reference(phi_f: np.ndarray, phi_r: np.ndarray) -> tuple[float, float]:
    """Samples kernel with row-normalised features, eigenvector signs aligned."""

    def spectrum(phi):
        phi = phi / np.linalg.norm(phi, axis=1, keepdims=True)
        return np.linalg.eigh(phi @ phi.T)

    lf, vf = spectrum(phi_f)
    lr, vr = spectrum(phi_r)
    lam_hat = (lr - lr.min()) / (lr.max() - lr.min())
    magnitude = np.abs(lr - lf).sum()
    structure = 0.0
    for i in range(len(lr)):
        v_fake = vf[:, i] * np.sign(vf[:, i] @ vr[:, i])  # align the arbitrary sign
        structure += lam_hat[i] * (1.0 - v_fake @ vr[:, i])
    return magnitude, structure


def test_zero_for_identical_features_and_positive_otherwise():
    real = _feats(8, 32, 0)
    for kernel in ("samples", "features"):
        same = L.gdpp_loss(real.clone(), real, kernel=kernel)
        assert same.total.item() == pytest.approx(0.0, abs=1e-10)
        diff = L.gdpp_loss(_feats(8, 32, 1), real, kernel=kernel)
        assert diff.magnitude.item() > 0.01 and diff.structure.item() > 0.01
        torch.testing.assert_close(diff.total, diff.magnitude + diff.structure)


def test_matches_numpy_reference():
    fake, real = _feats(6, 10, 2), _feats(6, 10, 3)
    out = L.gdpp_loss(fake, real)
    mag, struct = _numpy_reference(fake.numpy(), real.numpy())
    assert out.magnitude.item() == pytest.approx(mag, rel=1e-8)
    assert out.structure.item() == pytest.approx(struct, rel=1e-8)


def test_constructed_diagonal_kernels():
    # normalize=False, orthogonal rows: L = diag(row norms^2), eigenvectors = basis vectors
    real = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=D64).sqrt())
    bigger = torch.diag(torch.tensor([1.0, 2.0, 5.0], dtype=D64).sqrt())
    out = L.gdpp_loss(bigger, real, normalize=False)
    assert out.magnitude.item() == pytest.approx(2.0)  # |3 - 5|
    assert out.structure.item() == pytest.approx(0.0, abs=1e-12)  # same eigenvectors
    sq = L.gdpp_loss(bigger, real, normalize=False, magnitude="squared")
    assert sq.magnitude.item() == pytest.approx(4.0)
    # same spectrum, eigenvectors of lambda=1 and lambda=2 swapped:
    # lam_hat = (0, 0.5, 1); |cos| = (0, 0, 1) -> structure = 0 * 1 + 0.5 * 1 + 1 * 0
    swapped = torch.diag(torch.tensor([2.0, 1.0, 3.0], dtype=D64).sqrt())
    out = L.gdpp_loss(swapped, real, normalize=False)
    assert out.magnitude.item() == pytest.approx(0.0, abs=1e-12)
    assert out.structure.item() == pytest.approx(0.5)


def test_sign_flip_of_a_sample_and_feature_rotation():
    real = _feats(5, 12, 4)
    q, _ = torch.linalg.qr(_feats(12, 12, 5))
    rotated = real @ q  # same Gram matrix of samples, rotated feature space
    assert L.gdpp_loss(rotated, real, kernel="samples").total.item() == pytest.approx(
        0.0, abs=1e-10
    )
    feat = L.gdpp_loss(rotated, real, kernel="features")
    assert feat.magnitude.item() == pytest.approx(0.0, abs=1e-10)
    assert feat.structure.item() > 0.01


def test_feature_kernel_ignores_sample_order():
    fake, real = _feats(6, 10, 6), _feats(6, 10, 7)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    a = L.gdpp_loss(fake, real, kernel="features")
    b = L.gdpp_loss(fake[perm], real, kernel="features")
    torch.testing.assert_close(a.total, b.total)
    # the eigenvalues (magnitude) are order-free for either kernel
    torch.testing.assert_close(
        L.gdpp_loss(fake[perm], real).magnitude, L.gdpp_loss(fake, real).magnitude
    )


def test_gradcheck_both_kernels():
    real = _feats(5, 8, 8)
    fake = _feats(5, 8, 9).requires_grad_(True)
    for kernel in ("samples", "features"):
        assert torch.autograd.gradcheck(
            lambda f, kernel=kernel: L.gdpp_loss(f, real, kernel=kernel).total, (fake,)
        )
    small = _feats(4, 3, 10).requires_grad_(True)  # N > d: rank-deficient samples kernel
    (g,) = torch.autograd.grad(L.gdpp_loss(small, _feats(4, 3, 11)).total, small)
    assert torch.isfinite(g).all()


def test_float32_input_and_descent():
    real = _feats(8, 16, 12).float()
    fake = _feats(8, 16, 13).float().requires_grad_(True)
    out = L.gdpp_loss(fake, real)
    assert out.total.dtype == torch.float32
    (g,) = torch.autograd.grad(out.magnitude, fake)
    assert L.gdpp_loss(fake.detach() - 0.05 * g, real).magnitude < out.magnitude


def test_gdpp_errors():
    with pytest.raises(ValueError, match="same shape"):
        L.gdpp_loss(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="kernel"):
        L.gdpp_loss(torch.ones(4, 3), torch.ones(4, 3), kernel="items")
    with pytest.raises(ValueError, match="magnitude"):
        L.gdpp_loss(torch.ones(4, 3), torch.ones(4, 3), magnitude="l1")
    with pytest.raises(ValueError, match="at least 2 dims"):
        L.gdpp_loss(torch.ones(4), torch.ones(4))
