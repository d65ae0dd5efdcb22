"""The light-enhancement (LE) curve of Zero-DCE and its iterated application.

This module is the single home of the curve maths: training, inference, export and every
backend call :func:`apply_curves`.

Sign convention (the paper's, Guo et al. CVPR 2020, eq. 2)::

    LE(x; a) = x + a * x * (1 - x)

With ``a`` in [-1, 1] the curve maps [0, 1] onto [0, 1] monotonically; ``a > 0`` brightens.
The authors' released code writes ``x + a * (x**2 - x)``, i.e. the opposite sign of ``a``;
:func:`zerodce.weights.convert_authors_state_dict` flips it once, when loading their files.
"""

from __future__ import annotations

import torch

from .core.curves import N_ITERATIONS  # defined in the torch-free twin of this module

__all__ = ["le_curve", "apply_curves", "N_ITERATIONS"]


def le_curve(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Apply one LE curve: ``x + a * x * (1 - x)``, pixel-wise.

    Args:
        x: image values in [0, 1].
        a: curve parameters in [-1, 1], broadcastable to ``x``.

    Returns:
        The adjusted image, same shape as ``x``.

    Example:
        >>> le_curve(torch.tensor([0.0, 0.5, 1.0]), torch.tensor(1.0))
        tensor([0.0000, 0.7500, 1.0000])
    """
    return x + a * x * (1.0 - x)


def _split_maps(curve_maps: torch.Tensor, n_iter: int) -> list[torch.Tensor]:
    """Split curve maps into one (B, 3, H, W) map per iteration.

    DCE-Net gives 3 * n_iter channels (one map per iteration); Zero-DCE++ gives 3 channels,
    re-used at every iteration.
    """
    if check_map_channels(curve_maps.shape[1], n_iter) == 3:
        return [curve_maps] * n_iter
    return list(torch.split(curve_maps, 3, dim=1))  # (B, 3n, H, W) -> n x (B, 3, H, W)


def check_map_channels(channels: int, n_iter: int) -> int:
    """``channels`` if curve maps with that many channels suit ``n_iter`` iterations, else ValueError."""
    if channels not in (3, 3 * n_iter):
        raise ValueError(f"curve maps have {channels} channels; expected 3 or {3 * n_iter}")
    return channels


def apply_curves(
    x: torch.Tensor,
    curve_maps: torch.Tensor,
    n_iter: int = N_ITERATIONS,
    *,
    inplace: bool = False,
) -> torch.Tensor:
    """Apply ``n_iter`` LE curves in sequence: ``LE_n = LE_{n-1} + A_n LE_{n-1} (1 - LE_{n-1})``.

    Args:
        x: input image in [0, 1].
        curve_maps: the per-pixel curve parameters ``A``, either ``3 * n_iter`` channels (one
            map per iteration, DCE-Net) or 3 channels (one map re-used, Zero-DCE++).
        n_iter: number of iterations.
        inplace: overwrite ``x`` and use a single temporary instead of one per iteration
            (inference only; autograd needs the intermediate values).

    Returns:
        The enhanced image, same shape as ``x``.

    Shape:
        - x: (B, 3, H, W)
        - curve_maps: (B, 3 * n_iter, H, W) or (B, 3, H, W)
        - output: (B, 3, H, W)

    Example:
        >>> x = torch.full((1, 3, 1, 1), 0.5)
        >>> apply_curves(x, torch.ones(1, 24, 1, 1)).flatten()[0].item() > 0.99
        True
    """
    maps = _split_maps(curve_maps, n_iter)
    if not inplace:
        for a in maps:
            x = le_curve(x, a)
        return x
    tmp = torch.empty_like(x)
    for a in maps:
        # tmp = x - x^2; x += a * tmp: two fused passes, no other allocation.
        torch.addcmul(x, x, x, value=-1.0, out=tmp)
        x.addcmul_(tmp, a)
    return x
