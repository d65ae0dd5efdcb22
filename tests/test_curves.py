from __future__ import annotations

import pytest
import torch

from zerodce.curves import apply_curves, le_curve


def test_le_curve_hand_values():
    # x + a x (1 - x): 0.5 + 1 * 0.25 = 0.75; 0.2 - 0.5 * 0.16 = 0.12; fixed points 0 and 1.
    x = torch.tensor([0.5, 0.2, 0.0, 1.0, 0.25])
    a = torch.tensor([1.0, -0.5, 0.7, -0.3, 0.0])
    assert torch.allclose(le_curve(x, a), torch.tensor([0.75, 0.12, 0.0, 1.0, 0.25]))


def test_apply_curves_iterates_hand_values():
    # Two iterations with a = 1 from 0.5: 0.75, then 0.75 + 0.75 * 0.25 = 0.9375.
    x = torch.full((1, 3, 1, 1), 0.5)
    maps = torch.ones(1, 6, 1, 1)
    assert torch.allclose(apply_curves(x, maps, n_iter=2), torch.full((1, 3, 1, 1), 0.9375))


def test_apply_curves_uses_each_map_in_order():
    x = torch.full((1, 3, 1, 1), 0.5)
    maps = torch.cat([torch.ones(1, 3, 1, 1), -torch.ones(1, 3, 1, 1)], 1)
    # 0.5 -> 0.75 (a=+1) -> 0.75 - 0.1875 = 0.5625 (a=-1); the reverse order gives 0.25 -> 0.4375.
    assert torch.allclose(apply_curves(x, maps, 2), torch.full((1, 3, 1, 1), 0.5625))


def test_three_channel_map_is_reused():
    x = torch.rand(2, 3, 5, 4)
    a = torch.rand(2, 3, 5, 4) * 2 - 1
    assert torch.allclose(apply_curves(x, a, 8), apply_curves(x, a.repeat(1, 8, 1, 1), 8))


def test_inplace_matches_functional():
    x = torch.rand(2, 3, 7, 9)
    a = torch.rand(2, 24, 7, 9) * 2 - 1
    expected = apply_curves(x, a)
    got = apply_curves(x.clone(), a, inplace=True)
    assert torch.allclose(got, expected, atol=1e-6)


def test_range_preserved_and_monotone():
    x = torch.linspace(0, 1, 101).view(1, 1, 1, 101).expand(1, 3, 1, 101)
    for sign in (1.0, -1.0):
        a = torch.full((1, 24, 1, 101), sign)
        y = apply_curves(x, a)
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        assert bool((y[..., 1:] >= y[..., :-1]).all())


def test_wrong_channel_count_rejected():
    with pytest.raises(ValueError, match="channels"):
        apply_curves(torch.rand(1, 3, 2, 2), torch.rand(1, 9, 2, 2))


def test_gradcheck_float64():
    x = torch.rand(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    a = (torch.rand(1, 24, 3, 3, dtype=torch.float64) * 2 - 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, a: apply_curves(x, a), (x, a))
