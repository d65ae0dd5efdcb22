"""The four non-reference losses of Zero-DCE, as the authors' released training computes them.

Each loss is a pure function of tensors. Where the paper (CVPR 2020) and the released code
differ, the code's version is implemented (it produced the published weights); the docstrings
name the difference. ``I`` is the input, ``Y`` the enhanced output, both (B, 3, H, W) in [0, 1];
``A`` the curve maps (B, 3n, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "spatial_consistency",
    "exposure_control",
    "color_constancy",
    "illumination_smoothness",
    "LossWeights",
    "zero_dce_loss",
]


def _neighbour_differences(z: torch.Tensor) -> torch.Tensor:
    """Differences to the 4 neighbours with zero padding: (B, 1, h, w) -> (B, 4, h, w)."""
    p = F.pad(z, (1, 1, 1, 1))
    return torch.cat(
        [
            z - p[..., 1:-1, :-2],  # left
            z - p[..., 1:-1, 2:],  # right
            z - p[..., :-2, 1:-1],  # up
            z - p[..., 2:, 1:-1],  # down
        ],
        dim=1,
    )


def spatial_consistency(enhanced: torch.Tensor, original: torch.Tensor, region: int = 4) -> torch.Tensor:
    """Spatial consistency ``L_spa``: keep the contrast between neighbouring 4x4 regions.

    ``mean((D_d(pool(mean_c I)) - D_d(pool(mean_c Y)))^2)`` summed over the 4 directions, with
    ``D_d`` the difference to the neighbour in direction d (zero outside the map). The paper
    squares the difference of absolute values instead.

    Shape:
        - enhanced, original: (B, 3, H, W)
        - output: scalar
    """
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), region)  # (B, 1, H/4, W/4)
    i = F.avg_pool2d(original.mean(1, keepdim=True), region)
    e = (_neighbour_differences(i) - _neighbour_differences(y)).pow(2).sum(1)  # (B, H/4, W/4)
    return e.mean()


def exposure_control(enhanced: torch.Tensor, level: float | torch.Tensor = 0.6, patch: int = 16) -> torch.Tensor:
    """Exposure control ``L_exp``: mean of ``(pool_16(mean_c Y) - E)^2`` (the paper: ``|.|``).

    ``level`` may be a tensor broadcastable to (B, 1, 1, 1), one well-exposedness level per image.
    """
    m = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)  # (B, 1, H/16, W/16)
    return (m - level).pow(2).mean()


COLOR_EPS = 1e-8


def color_constancy(enhanced: torch.Tensor, eps: float = COLOR_EPS) -> torch.Tensor:
    """Colour constancy ``L_col``: ``sqrt(((r-g)^2)^2 + ((r-b)^2)^2 + ((g-b)^2)^2 + eps)``, batch mean.

    ``r, g, b`` are the channel means of each image. ``eps`` is this project's addition: the
    released code has none and its gradient is NaN on grey images (derivative of sqrt at 0).
    The paper uses ``(r-g)^2 + (r-b)^2 + (g-b)^2`` without the root.
    """
    r, g, b = enhanced.mean((2, 3)).unbind(1)  # (B, 3, H, W) -> 3 x (B,)
    k = (r - g).pow(2).pow(2) + (r - b).pow(2).pow(2) + (g - b).pow(2).pow(2)
    return torch.sqrt(k + eps).mean()


def illumination_smoothness(curve_maps: torch.Tensor) -> torch.Tensor:
    """Illumination smoothness ``L_tvA``: squared total variation of the curve maps.

    ``2 * (sum(dA_v^2) / ((H-1) W) + sum(dA_h^2) / (H (W-1))) / B``, summed over all maps.
    The paper uses the squared sum of absolute gradients per map instead.
    """
    b, _, h, w = curve_maps.shape
    dh = (curve_maps[:, :, 1:, :] - curve_maps[:, :, :-1, :]).pow(2).sum()
    dw = (curve_maps[:, :, :, 1:] - curve_maps[:, :, :, :-1]).pow(2).sum()
    count_h = max((h - 1) * w, 1)
    count_w = max(h * (w - 1), 1)
    return 2.0 * (dh / count_h + dw / count_w) / b


@dataclass(frozen=True)
class LossWeights:
    """Weights of the total loss; the defaults are the authors' released training."""

    spatial: float = 1.0
    exposure: float = 10.0
    color: float = 5.0
    smoothness: float = 200.0
    exposure_level: float = 0.6


def zero_dce_loss(
    original: torch.Tensor,
    enhanced: torch.Tensor,
    curve_maps: torch.Tensor,
    weights: LossWeights = LossWeights(),
    exposure_level: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted total non-reference loss and its (weighted) terms.

    Returns:
        ``(total, {"spatial", "exposure", "color", "smoothness"})``, all scalars; the terms are
        already multiplied by their weights, so they sum to ``total``.
    """
    level = weights.exposure_level if exposure_level is None else exposure_level
    terms = {
        "spatial": weights.spatial * spatial_consistency(enhanced, original),
        "exposure": weights.exposure * exposure_control(enhanced, level),
        "color": weights.color * color_constancy(enhanced),
        "smoothness": weights.smoothness * illumination_smoothness(curve_maps),
    }
    total = terms["spatial"] + terms["exposure"] + terms["color"] + terms["smoothness"]
    return total, terms
