"""Each loss against an independent float64 loop implementation written from LOSSES.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zerodce.training.losses import (
    COLOR_EPS,
    LossWeights,
    color_constancy,
    exposure_control,
    illumination_smoothness,
    spatial_consistency,
    zero_dce_loss,
)


def _pool(z: np.ndarray, k: int) -> np.ndarray:
    h, w = z.shape[0] // k, z.shape[1] // k
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = z[i * k : (i + 1) * k, j * k : (j + 1) * k].mean()
    return out


def ref_spatial(Y: np.ndarray, I: np.ndarray) -> float:
    total, count = 0.0, 0
    for b in range(Y.shape[0]):
        y, i = _pool(Y[b].mean(0), 4), _pool(I[b].mean(0), 4)
        h, w = y.shape
        for r in range(h):
            for c in range(w):
                e = 0.0
                for dr, dc in ((0, -1), (0, 1), (-1, 0), (1, 0)):
                    rr, cc = r + dr, c + dc
                    inside = 0 <= rr < h and 0 <= cc < w
                    ny, ni = (y[rr, cc], i[rr, cc]) if inside else (0.0, 0.0)
                    e += ((i[r, c] - ni) - (y[r, c] - ny)) ** 2
                total += e
                count += 1
    return total / count


def ref_exposure(Y: np.ndarray, level: float = 0.6) -> float:
    vals = [(m - level) ** 2 for b in range(Y.shape[0]) for m in _pool(Y[b].mean(0), 16).ravel()]
    return float(np.mean(vals))


def ref_color(Y: np.ndarray, eps: float = 0.0) -> float:
    ks = []
    for b in range(Y.shape[0]):
        r, g, bl = (Y[b, c].mean() for c in range(3))
        ks.append(np.sqrt(((r - g) ** 2) ** 2 + ((r - bl) ** 2) ** 2 + ((g - bl) ** 2) ** 2 + eps))
    return float(np.mean(ks))


def ref_tv(A: np.ndarray) -> float:
    B, C, H, W = A.shape
    h = sum(
        (A[b, c, i + 1, j] - A[b, c, i, j]) ** 2
        for b in range(B)
        for c in range(C)
        for i in range(H - 1)
        for j in range(W)
    )
    w = sum(
        (A[b, c, i, j + 1] - A[b, c, i, j]) ** 2
        for b in range(B)
        for c in range(C)
        for i in range(H)
        for j in range(W - 1)
    )
    return 2 * (h / ((H - 1) * W) + w / (H * (W - 1))) / B


@pytest.fixture
def tensors():
    g = torch.Generator().manual_seed(7)
    I = torch.rand(2, 3, 32, 48, generator=g, dtype=torch.float64) * 0.3
    Y = torch.rand(2, 3, 32, 48, generator=g, dtype=torch.float64)
    A = torch.rand(2, 6, 9, 7, generator=g, dtype=torch.float64) * 2 - 1
    return I, Y, A


def test_spatial_matches_reference(tensors):
    I, Y, _ = tensors
    assert float(spatial_consistency(Y, I)) == pytest.approx(ref_spatial(Y.numpy(), I.numpy()), rel=1e-10)


def test_spatial_zero_when_unchanged(tensors):
    I, _, _ = tensors
    assert float(spatial_consistency(I, I)) == 0.0


def test_exposure_matches_reference(tensors):
    _, Y, _ = tensors
    assert float(exposure_control(Y)) == pytest.approx(ref_exposure(Y.numpy()), rel=1e-10)
    assert float(exposure_control(Y, 0.4)) == pytest.approx(ref_exposure(Y.numpy(), 0.4), rel=1e-10)


def test_exposure_hand_value():
    # A flat 0.2 image: (0.2 - 0.6)^2 = 0.16 everywhere.
    assert float(exposure_control(torch.full((1, 3, 32, 32), 0.2, dtype=torch.float64))) == pytest.approx(0.16)


def test_color_matches_reference(tensors):
    _, Y, _ = tensors
    assert float(color_constancy(Y, eps=0.0)) == pytest.approx(ref_color(Y.numpy()), rel=1e-10)


def test_color_hand_value():
    # Channel means 0.5, 0.3, 0.1: diffs 0.2, 0.4, 0.2 -> sqrt(0.04^2 + 0.16^2 + 0.04^2).
    Y = torch.tensor([0.5, 0.3, 0.1], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    assert float(color_constancy(Y, eps=0.0)) == pytest.approx(np.sqrt(0.04**2 + 0.16**2 + 0.04**2))


def test_tv_matches_reference(tensors):
    _, _, A = tensors
    assert float(illumination_smoothness(A)) == pytest.approx(ref_tv(A.numpy()), rel=1e-10)


def test_total_uses_authors_weights(tensors):
    I, Y, A = tensors
    A = A[:, :, :1, :1].expand(2, 6, 32, 48).contiguous()
    total, terms = zero_dce_loss(I, Y, A)
    expected = (
        ref_spatial(Y.numpy(), I.numpy())
        + 10 * ref_exposure(Y.numpy())
        + 5 * ref_color(Y.numpy(), COLOR_EPS)
        + 200 * ref_tv(A.numpy())
    )
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert float(sum(terms.values())) == pytest.approx(float(total))
    assert LossWeights() == LossWeights(1.0, 10.0, 5.0, 200.0, 0.6)


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5])
def test_finite_gradients_on_flat_images(value):
    Y = torch.full((2, 3, 32, 32), value, dtype=torch.float32, requires_grad=True)
    A = torch.zeros(2, 24, 32, 32, requires_grad=True)
    total, _ = zero_dce_loss(Y.detach(), Y, A)
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(Y.grad).all() and torch.isfinite(A.grad).all()


def test_gradcheck_losses(tensors):
    I, Y, A = (t[:1, :, :16, :16].clone() for t in tensors)
    Y.requires_grad_()
    A.requires_grad_()
    assert torch.autograd.gradcheck(lambda y: spatial_consistency(y, I), (Y,))
    assert torch.autograd.gradcheck(lambda y: exposure_control(y), (Y,))
    assert torch.autograd.gradcheck(lambda y: color_constancy(y), (Y,))
    assert torch.autograd.gradcheck(illumination_smoothness, (A,))
