from __future__ import annotations

import pytest
import torch

from zerodce.model import DCENet, DCENetPP, ModelConfig, build_model, count_parameters, init_weights
from zerodce.training.losses import zero_dce_loss


def test_parameter_counts():
    assert count_parameters(DCENet()) == 79_416
    assert count_parameters(DCENetPP()) == 10_561


def test_forward_shapes_and_range():
    net = DCENet()
    x = torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        y, a = net(x)
    assert y.shape == x.shape and a.shape == (2, 24, 13, 17)
    assert float(a.abs().max()) <= 1.0
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0


def test_forward_applies_the_paper_curve_to_its_maps():
    net = DCENet()
    x = torch.rand(1, 3, 6, 6)
    y, a = net(x)
    ref = x
    for i in range(8):
        ai = a[:, 3 * i : 3 * i + 3]
        ref = ref + ai * ref * (1 - ref)
    assert torch.allclose(y, ref, atol=1e-6)


@pytest.mark.parametrize("arch", ["dcenet", "dcenet++"])
@pytest.mark.parametrize("kind", ["black", "white", "random"])
def test_gradients_reach_every_parameter(arch, kind):
    cfg = ModelConfig(arch=arch, scale=2) if arch == "dcenet++" else ModelConfig()
    net = build_model(cfg)
    init_weights(net, torch.Generator().manual_seed(1))
    x = {"black": torch.zeros(2, 3, 32, 32), "white": torch.ones(2, 3, 32, 32), "random": torch.rand(2, 3, 32, 32)}[
        kind
    ]
    y, a = net(x)
    loss, _ = zero_dce_loss(x, y, a)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    if kind == "random":  # on black/white inputs x(1-x) = 0 blocks the curve path by design
        assert all(float(p.grad.abs().sum()) > 0 for p in net.parameters())


@pytest.mark.parametrize("h,w", [(24, 36), (25, 13), (1, 1), (5, 40)])
def test_plus_pads_and_never_crops(h, w):
    net = DCENetPP(ModelConfig(arch="dcenet++", scale=12))
    with torch.no_grad():
        net.conv7.point.bias.fill_(0.5)  # positive curves everywhere
    x = torch.full((1, 3, h, w), 0.3)
    y, a = net(x)
    assert y.shape == x.shape and a.shape == (1, 3, h, w)
    assert bool((y > 0.3).all())  # every pixel was enhanced


def test_plus_multiple_of_scale_equals_explicit_resampling():
    import torch.nn.functional as F

    net = DCENetPP(ModelConfig(arch="dcenet++", scale=4))
    init_weights(net, torch.Generator().manual_seed(3))
    x = torch.rand(1, 3, 16, 24)
    small = F.interpolate(x, scale_factor=0.25, mode="bilinear", align_corners=False)
    a = F.interpolate(net._estimate(small), scale_factor=4, mode="bilinear", align_corners=True)
    assert torch.allclose(net.curve_maps(x), a, atol=1e-6)


def test_config_validation_and_round_trip():
    cfg = ModelConfig(arch="dcenet++", scale=12)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ModelConfig(arch="unet")
    with pytest.raises(ValueError):
        ModelConfig(channels=0)
    with pytest.raises(ValueError):
        ModelConfig.from_dict({"arch": "dcenet", "evil": 1})


@pytest.mark.parametrize("s", [2, 3, 12])
@pytest.mark.parametrize("hw", [(25, 37), (24, 36), (1, 13), (13, 1)])
def test_downscale_equals_pad_and_interpolate(s, hw):
    import torch.nn.functional as F

    from zerodce.model import downscale

    h, w = hw
    x = torch.rand(2, 3, h, w)
    xp = F.pad(x, (0, -w % s, 0, -h % s), mode="replicate")
    ref = F.interpolate(xp, size=(xp.shape[-2] // s, xp.shape[-1] // s), mode="bilinear", align_corners=False)
    assert torch.allclose(downscale(x, s), ref, atol=1e-6)


def test_upsample_rows_matches_interpolate():
    import torch.nn.functional as F

    from zerodce.model import upsample_rows

    small = torch.rand(1, 3, 7, 9)
    full = F.interpolate(small, (83, 101), mode="bilinear", align_corners=True)
    cols = F.interpolate(small, (7, 101), mode="bilinear", align_corners=True)
    for r0, r1 in ((0, 83), (10, 50), (80, 83)):
        assert torch.allclose(upsample_rows(cols, 83, r0, r1), full[..., r0:r1, :], atol=1e-6)
        cl = upsample_rows(cols.contiguous(memory_format=torch.channels_last), 83, r0, r1)
        assert torch.allclose(cl, full[..., r0:r1, :], atol=1e-6)
