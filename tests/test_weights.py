from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from zerodce.model import DCENet, DCENetPP, ModelConfig, init_weights
from zerodce.weights import WeightsError, convert_checkpoint, load_model, save_weights


def _authors_topology(conv, x: torch.Tensor) -> torch.Tensor:
    """Both authors' networks: 7 layers, concatenations [x3,x4], [x2,x5], [x1,x6], tanh."""
    x1 = torch.relu(conv(1, x))
    x2 = torch.relu(conv(2, x1))
    x3 = torch.relu(conv(3, x2))
    x4 = torch.relu(conv(4, x3))
    x5 = torch.relu(conv(5, torch.cat([x3, x4], 1)))
    x6 = torch.relu(conv(6, torch.cat([x2, x5], 1)))
    return torch.tanh(conv(7, torch.cat([x1, x6], 1)))


def authors_zerodce_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The authors' Zero-DCE forward, written from their description: x + r (x^2 - x)."""

    def conv(i: int, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, sd[f"e_conv{i}.weight"], sd[f"e_conv{i}.bias"], padding=1)

    r = _authors_topology(conv, x)
    for i in range(8):
        ri = r[:, 3 * i : 3 * i + 3]
        x = x + ri * (x * x - x)
    return x


def authors_zerodcepp_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    def conv(i: int, t: torch.Tensor) -> torch.Tensor:
        p = f"e_conv{i}."
        t = F.conv2d(t, sd[p + "depth_conv.weight"], sd[p + "depth_conv.bias"], padding=1, groups=t.shape[1])
        return F.conv2d(t, sd[p + "point_conv.weight"], sd[p + "point_conv.bias"])

    xd = F.interpolate(x, scale_factor=1 / scale, mode="bilinear") if scale != 1 else x
    r = _authors_topology(conv, xd)
    if scale != 1:
        r = F.interpolate(r, scale_factor=scale, mode="bilinear", align_corners=True)
    for _ in range(8):
        x = x + r * (x * x - x)
    return x


def _authors_layout(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    sd = {}
    for k, v in net.state_dict().items():
        k = "e_" + k.replace(".depth.", ".depth_conv.").replace(".point.", ".point_conv.")
        sd[k] = v.clone() * 10  # large enough that the sign of A visibly matters
    return sd


def test_safetensors_round_trip(tmp_path, small_model):
    path = save_weights(small_model, tmp_path / "m.safetensors", {"note": "x"})
    loaded = load_model(path)
    assert loaded.config == small_model.config
    for k, v in small_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], small_model(x)[0])


def test_plus_round_trip_keeps_config(tmp_path):
    net = DCENetPP(ModelConfig(arch="dcenet++", scale=6))
    loaded = load_model(save_weights(net, tmp_path / "pp.safetensors"))
    assert loaded.config == ModelConfig(arch="dcenet++", scale=6)


def test_authors_checkpoint_converts_and_matches_their_formula(tmp_path):
    torch.manual_seed(0)
    net = DCENet()
    init_weights(net)
    sd = _authors_layout(net)
    torch.save(sd, tmp_path / "Epoch99.pth")
    convert_checkpoint(tmp_path / "Epoch99.pth", tmp_path / "conv.safetensors")
    ours = load_model(tmp_path / "conv.safetensors")
    x = torch.rand(2, 3, 20, 24) * 0.4
    with torch.no_grad():
        expected = authors_zerodce_forward(sd, x)
        got = ours(x)[0]
        # Pin the convention: without the sign flip the result would be darker, not equal.
        wrong = authors_zerodce_forward(
            {**sd, "e_conv7.weight": -sd["e_conv7.weight"], "e_conv7.bias": -sd["e_conv7.bias"]}, x
        )
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, wrong, atol=1e-3)


def test_authors_plus_checkpoint_converts(tmp_path):
    torch.manual_seed(1)
    net = DCENetPP(ModelConfig(arch="dcenet++", scale=12))
    init_weights(net)
    sd = _authors_layout(net)
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, tmp_path / "pp.pth")
    ours = load_model(tmp_path / "pp.pth")
    assert ours.config.arch == "dcenet++" and ours.config.scale == 12
    x = torch.rand(1, 3, 48, 36) * 0.4
    with torch.no_grad():
        assert torch.allclose(ours(x)[0], authors_zerodcepp_forward(sd, x, 12), atol=1e-6)


class _Evil:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_malicious_pickle_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pth"
    torch.save({"e_conv1.weight": _Evil(marker)}, bad)
    with pytest.raises(WeightsError, match="refused"):
        load_model(bad)
    with pytest.raises(WeightsError):
        convert_checkpoint(bad, tmp_path / "out.safetensors")
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_bad_metadata_and_shapes_give_clear_errors(tmp_path):
    sd = {k: v.contiguous() for k, v in DCENet().state_dict().items()}
    save_file(sd, str(tmp_path / "nometa.safetensors"))
    with pytest.raises(WeightsError, match="no zerodce.config"):
        load_model(tmp_path / "nometa.safetensors")
    meta = {"zerodce.format": "1", "zerodce.config": json.dumps({"arch": "dcenet", "channels": "32; rm -rf"})}
    save_file(sd, str(tmp_path / "badcfg.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="invalid zerodce.config"):
        load_model(tmp_path / "badcfg.safetensors")
    meta = {"zerodce.format": "1", "zerodce.config": json.dumps({"arch": "dcenet++", "scale": 12})}
    save_file(sd, str(tmp_path / "wrongarch.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="does not match architecture dcenet\\+\\+"):
        load_model(tmp_path / "wrongarch.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(WeightsError, match="not a readable"):
        load_model(tmp_path / "junk.safetensors")
    with pytest.raises(WeightsError, match="no such"):
        load_model(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("stem", ["dicm01", "dicm13", "dicm42"])
def test_reproduces_authors_reference_outputs(shared, stem):
    from PIL import Image

    ref_dir = shared / "reference"
    x = torch.from_numpy(
        np.asarray(Image.open(ref_dir / "vectors" / f"{stem}_input.png").convert("RGB"), dtype=np.float32) / 255.0
    ).permute(2, 0, 1)[None]
    for ckpt, suffix in (("zerodce-authors-epoch99.pth", "zerodce"), ("zerodcepp-authors-epoch99.pth", "zerodcepp")):
        net = load_model(ref_dir / ckpt)
        with torch.no_grad():
            y = net(x)[0][0].permute(1, 2, 0).numpy()
        expected = np.load(ref_dir / "vectors" / f"{stem}_{suffix}_output.npy")
        assert np.abs(y - expected).max() < 1e-5, suffix


def _cli(*args):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "zerodce", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused_at_load_and_convert(tmp_path, small_model, bad):
    with torch.no_grad():
        small_model.conv3.weight[0, 0, 1, 1] = bad
    path = save_weights(small_model, tmp_path / "bad.safetensors")
    with pytest.raises(WeightsError, match=r"bad.safetensors: conv3.weight holds NaN or infinite values"):
        load_model(path)
    sd = {"e_" + k: v for k, v in small_model.state_dict().items()}
    torch.save(sd, tmp_path / "bad.pth")
    for src in (path, tmp_path / "bad.pth"):
        r = _cli("convert", src, tmp_path / "out.safetensors")
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.splitlines() == [f"error: {src}: conv3.weight holds NaN or infinite values"], r.stderr
        assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize(("scale", "what"), [(1e30, "NaN or infinite"), (-1e30, "NaN or infinite")])
def test_finite_but_absurd_weights_are_refused_before_any_photo(tmp_path, small_model, scale, what):
    """Weights scaled by 1e30 pass every check of the file (all finite) and gave an all-black image
    with exit 0. The pipeline's probe at load refuses them: one line, exit 2, nothing written."""
    with torch.no_grad():
        for p in small_model.parameters():
            p.mul_(scale)
    path = save_weights(small_model, tmp_path / "huge.safetensors")
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((24, 32, 3), 40, np.uint8)).save(photo)
    r = _cli("enhance", photo, "-o", tmp_path / "out", "--model", path, "-q")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: {path}: the model's output is {what} (broken weights, not a trained model)"
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_weights_that_turn_every_image_black_are_refused(small_model):
    """Finite weights whose curves are -1 everywhere (x -> x^2 eight times) make black of anything."""
    from zerodce.enhance import _probed
    from zerodce.torch_enhance import Enhancer

    with torch.no_grad():
        small_model.conv7.weight.zero_()
        small_model.conv7.bias.fill_(-50.0)  # tanh(-50) = -1: A = -1 at every pixel and iteration
    with pytest.raises(WeightsError, match=r"^black-net: the model turns a grey ramp black"):
        _probed(Enhancer(small_model), "black-net")
    small_model.conv7.bias.data.fill_(0.5)  # a model that brightens passes, and is handed back
    pipe = Enhancer(small_model)
    assert _probed(pipe, "fine") is pipe


def test_deeply_nested_config_is_one_line_error(tmp_path, small_model):
    tensors = {k: v.contiguous() for k, v in small_model.state_dict().items()}
    path = tmp_path / "deep.safetensors"
    save_file(tensors, str(path), metadata={"zerodce.format": "1", "zerodce.config": "[" * 100_000 + "]" * 100_000})
    with pytest.raises(WeightsError, match="invalid zerodce.config metadata"):
        load_model(path)
    r = _cli("convert", path, tmp_path / "out.safetensors")
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"error: {path}: invalid zerodce.config metadata (nested too deeply)")
    assert not (tmp_path / "out.safetensors").exists()
