"""DCE-Net (Zero-DCE) and its depthwise-separable fast variant (Zero-DCE++).

Both networks map an image to per-pixel curve parameters ``A`` in [-1, 1] and then apply the
LE curves of :mod:`zerodce.curves`. The configuration dataclass travels inside every weights
file (:mod:`zerodce.weights`), so a file can always rebuild its own network.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .curves import apply_curves

__all__ = ["ModelConfig", "DCENet", "DCENetPP", "build_model", "count_parameters", "upsample_rows"]

ARCHITECTURES = ("dcenet", "dcenet++")


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a curve-estimation network.

    Args:
        arch: ``"dcenet"`` (Zero-DCE: 7 plain 3x3 convs, 8 maps) or ``"dcenet++"`` (Zero-DCE++:
            depthwise-separable convs, one map re-used for every iteration).
        channels: kernels per hidden convolution (32 in both papers).
        n_iter: curve iterations (8 in both papers).
        scale: Zero-DCE++ only: the curve map is estimated on the input downscaled by this
            factor, then upsampled (12 in the paper; 1 means full resolution).
    """

    arch: str = "dcenet"
    channels: int = 32
    n_iter: int = 8
    scale: int = 1

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {ARCHITECTURES}")
        for name in ("channels", "n_iter", "scale"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1024:
                raise ValueError(f"config field {name} must be an integer in [1, 1024], got {value!r}")
        if self.arch == "dcenet" and self.scale != 1:
            raise ValueError("scale applies to dcenet++ only")

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**d)  # type: ignore[arg-type]


class _CurveNet(nn.Module):
    """Shared forward: estimate curve maps, then apply them."""

    config: ModelConfig

    def curve_maps(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _estimate(self, x: torch.Tensor) -> torch.Tensor:
        """The shared topology: 7 layers, symmetric concatenation, tanh (conv1..conv7 per subclass)."""
        x1 = F.relu(self.conv1(x))  # (B, 3, H, W) -> (B, c, H, W)
        x2 = F.relu(self.conv2(x1))
        x3 = F.relu(self.conv3(x2))
        x4 = F.relu(self.conv4(x3))
        x5 = F.relu(self.conv5(torch.cat([x3, x4], 1)))  # (B, 2c, H, W) -> (B, c, H, W)
        x6 = F.relu(self.conv6(torch.cat([x2, x5], 1)))
        return torch.tanh(self.conv7(torch.cat([x1, x6], 1)))  # (B, 3 * n_iter or 3, H, W)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Enhance ``x`` (B, 3, H, W) in [0, 1]; return (enhanced (B, 3, H, W), curve maps A)."""
        a = self.curve_maps(x)
        return apply_curves(x, a, self.config.n_iter), a


class DCENet(_CurveNet):
    """Zero-DCE's DCE-Net: seven 3x3 convs, symmetric skip concatenations, tanh output.

    Example:
        >>> net = DCENet()
        >>> count_parameters(net)
        79416
        >>> y, a = net(torch.rand(1, 3, 8, 8))
        >>> tuple(y.shape), tuple(a.shape)
        ((1, 3, 8, 8), (1, 24, 8, 8))
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        c, out = self.config.channels, 3 * self.config.n_iter

        def conv(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, 3, 1, 1, bias=True)

        self.conv1 = conv(3, c)
        self.conv2 = conv(c, c)
        self.conv3 = conv(c, c)
        self.conv4 = conv(c, c)
        self.conv5 = conv(2 * c, c)
        self.conv6 = conv(2 * c, c)
        self.conv7 = conv(2 * c, out)

    def curve_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self._estimate(x)  # (B, 3 * n_iter, H, W)


class _SeparableConv(nn.Module):
    """Depthwise 3x3 conv followed by a pointwise 1x1 conv (Zero-DCE++'s building block)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depth = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin)
        self.point = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point(self.depth(x))


class DCENetPP(_CurveNet):
    """Zero-DCE++: depthwise-separable DCE-Net, one 3-channel map estimated at 1/scale.

    Sizes that are not multiples of ``scale`` are padded (edge-replicated) before the
    downscale and the curve map is cropped back after the upscale: every pixel is enhanced.

    Example:
        >>> net = DCENetPP(ModelConfig(arch="dcenet++", scale=12))
        >>> count_parameters(net)
        10561
        >>> y, a = net(torch.rand(1, 3, 25, 13))
        >>> tuple(y.shape), tuple(a.shape)
        ((1, 3, 25, 13), (1, 3, 25, 13))
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig(arch="dcenet++", scale=12)
        c = self.config.channels
        self.conv1 = _SeparableConv(3, c)
        self.conv2 = _SeparableConv(c, c)
        self.conv3 = _SeparableConv(c, c)
        self.conv4 = _SeparableConv(c, c)
        self.conv5 = _SeparableConv(2 * c, c)
        self.conv6 = _SeparableConv(2 * c, c)
        self.conv7 = _SeparableConv(2 * c, 3)

    def small_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """The curve map at 1/scale, (B, 3, hp/s, wp/s), and the padded size (hp, wp) it spans.

        The downscale reads only the pixels bilinear interpolation uses (see :func:`downscale`),
        without building the padded full-size copy; equal to :meth:`curve_maps`' pad + interpolate.
        """
        s = self.config.scale
        h, w = x.shape[-2:]
        hp, wp = h + (-h % s), w + (-w % s)
        return self._estimate(downscale(x, s)), hp, wp

    def curve_maps(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.scale
        if s == 1:
            return self._estimate(x)
        h, w = x.shape[-2:]
        ph, pw = -h % s, -w % s
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        hp, wp = h + ph, w + pw
        small = F.interpolate(xp, size=(hp // s, wp // s), mode="bilinear", align_corners=False)
        a = F.interpolate(self._estimate(small), size=(hp, wp), mode="bilinear", align_corners=True)
        return a[..., :h, :w]


def downscale(x: torch.Tensor, s: int) -> torch.Tensor:
    """Edge-replicate ``x`` to a multiple of ``s``, then bilinear-downscale by ``s`` (align_corners=False).

    For an integer factor each output sample sits at ``s*i + (s-1)/2``: the mean of at most 2x2
    input pixels, indices clamped to the image (which is what replicate padding gives). Reading just
    those rows and columns avoids touching the other pixels of a 12 MP photo.
    """
    h, w = x.shape[-2:]

    def taps(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = torch.arange((n + (-n % s)) // s, dtype=torch.float64) * s + (s - 1) / 2
        i0 = pos.floor().long()
        frac = (pos - i0).to(x.dtype)
        return i0.clamp(max=n - 1), (i0 + 1).clamp(max=n - 1), frac

    r0, r1, fr = taps(h)
    c0, c1, fc = taps(w)
    rows = x.index_select(-2, r0) * (1 - fr).view(-1, 1) + x.index_select(-2, r1) * fr.view(-1, 1)
    return rows.index_select(-1, c0) * (1 - fc) + rows.index_select(-1, c1) * fc


def upsample_rows(cols: torch.Tensor, hp: int, r0: int, r1: int) -> torch.Tensor:
    """Rows ``r0:r1`` of the bilinear (align_corners=True) upsampling of a small map to height ``hp``.

    ``cols`` is the small map already upsampled along the width, (B, C, hs, W). Equal (to float
    rounding) to ``F.interpolate(small, (hp, W), mode="bilinear", align_corners=True)[..., r0:r1, :]``
    without materialising the full-resolution map: Zero-DCE++ applies its curves band by band.
    """
    hs = cols.shape[-2]
    if hs == 1 or hp == 1:
        return cols[..., :1, :].expand(*cols.shape[:2], r1 - r0, cols.shape[-1])
    pos = torch.arange(r0, r1, dtype=torch.float64) * ((hs - 1) / (hp - 1))
    i0 = pos.floor().long().clamp_(max=hs - 1)
    i1 = (i0 + 1).clamp_(max=hs - 1)
    # Work in the map's own memory layout (channels-last: rows of (W, C) blocks), so the result has
    # it too and the curve loop never mixes layouts.
    last = cols.dim() == 4 and cols.is_contiguous(memory_format=torch.channels_last)
    src, dim = (cols.permute(0, 2, 3, 1), 1) if last else (cols, 2)
    wgt = (pos - i0).to(cols.dtype).view((1, -1, 1, 1) if last else (1, 1, -1, 1))
    top, bottom = src.index_select(dim, i0), src.index_select(dim, i1)
    out = top.add_(bottom.sub_(top).mul_(wgt))
    return out.permute(0, 3, 1, 2) if last else out


def build_model(config: ModelConfig) -> _CurveNet:
    """Instantiate the network a config describes."""
    return DCENet(config) if config.arch == "dcenet" else DCENetPP(config)


def init_weights(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """The authors' initialisation: conv weights from N(0, 0.02); biases keep PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            with torch.no_grad():
                m.weight.normal_(0.0, 0.02, generator=generator)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
