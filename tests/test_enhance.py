from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zerodce.adjust import luma
from zerodce.enhance import Enhancer, enhance


@pytest.fixture
def enh(small_model):
    return Enhancer(small_model, tile=None)


def _dark(shape, dtype):
    rng = np.random.default_rng(0)
    x = rng.random(shape) * 0.25
    if dtype == np.uint8:
        return (x * 255).astype(np.uint8)
    if dtype == np.uint16:
        return (x * 65535).astype(np.uint16)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(9, 13, 3), (9, 13), (9, 13, 1)])
def test_numpy_keeps_shape_dtype_and_brightens(enh, dtype, shape):
    x = _dark(shape, dtype)
    y = enhance(x, enh)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.astype(np.float64).mean() > x.astype(np.float64).mean()


def test_numpy_matches_tensor_contract(enh):
    x = _dark((10, 12, 3), np.float32)
    t = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]
    assert np.allclose(enhance(x, enh), enh(t)[0].permute(1, 2, 0).numpy(), atol=1e-7)


def test_uint8_is_rounded_from_float_result(enh):
    x = _dark((8, 8, 3), np.uint8)
    expected = np.clip(np.rint(enhance(x.astype(np.float32) / 255, enh) * 255), 0, 255)
    assert np.array_equal(enhance(x, enh), expected.astype(np.uint8))


def test_alpha_untouched(enh):
    x = _dark((7, 5, 4), np.uint8)
    x[..., 3] = np.arange(35, dtype=np.uint8).reshape(7, 5) * 7
    y = enhance(x, enh)
    assert np.array_equal(y[..., 3], x[..., 3])
    assert np.array_equal(y[..., :3], enhance(x[..., :3], enh))


def test_grey_stays_grey(enh):
    x = _dark((6, 6), np.uint8)
    y = enhance(x, enh)
    assert y.ndim == 2


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "I;16", "I", "CMYK"])
def test_pil_modes(enh, mode):
    base = Image.fromarray(_dark((11, 7, 3), np.uint8))
    if mode == "I;16":
        im = Image.fromarray(_dark((11, 7), np.uint16))
    elif mode == "I":
        im = Image.fromarray(_dark((11, 7), np.uint16).astype(np.int32), "I")
    elif mode == "P":
        im = base.convert("P")
    else:
        im = base.convert(mode)
    out = enhance(im, enh)
    assert isinstance(out, Image.Image) and out.size == im.size
    expected_mode = {"P": "RGB", "CMYK": "RGB"}.get(mode, mode)
    assert out.mode == expected_mode
    if mode in ("RGBA", "LA"):
        assert np.array_equal(np.asarray(out)[..., -1], np.asarray(im)[..., -1])
    if mode in ("I;16", "I"):  # 16-bit data keeps its scale: brighter, not clipped to 8 bits
        a, b = np.asarray(im).astype(float), np.asarray(out).astype(float)
        assert b.mean() > a.mean() and b.max() > 255


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_tensor_keeps_dtype_and_shape(enh, dtype):
    x = (torch.rand(2, 3, 5, 6) * 0.3).to(dtype)
    y = enhance(x, enh)
    assert y.shape == x.shape and y.dtype == dtype
    assert enhance(x[0], enh).shape == (3, 5, 6)


@pytest.mark.parametrize("hw", [(1, 1), (1, 37), (37, 1), (3, 500), (17, 23)])
def test_any_size(enh, hw):
    x = _dark((*hw, 3), np.uint8)
    assert enhance(x, enh).shape == x.shape


@pytest.mark.parametrize("tile", [16, 24, 40])
def test_tiled_equals_untiled(small_model, tile):
    x = torch.rand(1, 3, 70, 53) * 0.3
    whole = Enhancer(small_model, tile=None)(x)
    tiled = Enhancer(small_model, tile=tile)(x)
    assert (tiled - whole).abs().max() < 1e-5


def test_tiled_plus_equals_untiled():
    from zerodce.model import DCENetPP, ModelConfig, init_weights

    net = DCENetPP(ModelConfig(arch="dcenet++", scale=4))
    init_weights(net, torch.Generator().manual_seed(0))
    x = torch.rand(1, 3, 50, 45) * 0.3
    assert (Enhancer(net, tile=16)(x) - Enhancer(net, tile=None)(x)).abs().max() < 1e-6


def test_bad_inputs_rejected(enh):
    from zerodce.files.io import ImageReadError

    with pytest.raises(ImageReadError, match="^not an image: no such file$"):  # a string is a path
        enhance("not an image", enh)
    with pytest.raises(TypeError):
        enhance([[0, 1], [2, 3]], enh)
    with pytest.raises(TypeError):
        enhance(np.zeros((4, 4, 3), dtype=np.int32), enh)
    with pytest.raises(ValueError):
        enhance(np.zeros((4, 4, 5), dtype=np.uint8), enh)
    with pytest.raises(ValueError):
        enh(torch.zeros(1, 3, 0, 4))
    with pytest.raises(TypeError):
        enh(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


def test_nan_and_out_of_range_are_sanitised(enh):
    x = torch.tensor([[[[float("nan"), 2.0], [-1.0, 0.5]]]]).expand(1, 3, 2, 2).contiguous()
    y = enh(x)
    assert torch.isfinite(y).all() and float(y.min()) >= 0 and float(y.max()) <= 1


def test_with_curves_of_applies_the_sources_curves(small_model):
    torch.manual_seed(5)
    source = torch.rand(1, 3, 40, 36) * 0.3
    opts = {"tile": None, "exposure": 0.5, "balance": 0.5}
    denoised = Enhancer(small_model, denoise=2, **opts)
    assert torch.allclose(denoised.with_curves_of(source, source), denoised(source), atol=1e-6)
    # Without a denoiser the curves are pixel-wise: where x equals source the output is source's
    # enhancement; where x differs, the same curves give a different value, its luma ordered as the
    # inputs' (one gain per pixel, increasing in the pixel's value; the saturation step keeps luma).
    plain = Enhancer(small_model, denoise=0, **opts)
    x = source.clone()
    x[..., 10:20, 10:20] *= 0.5
    out, ref = plain.with_curves_of(x, source), plain(source)
    inside = torch.zeros_like(x, dtype=torch.bool)
    inside[..., 10:20, 10:20] = True
    assert torch.allclose(out[~inside], ref[~inside], atol=1e-6)
    lo, hi = luma(out)[..., 10:20, 10:20], luma(ref)[..., 10:20, 10:20]
    assert bool((lo <= hi + 1e-6).all()) and float((hi - lo).mean()) > 0.01
    assert not torch.allclose(plain.with_curves_of(x, x), out, atol=1e-3)  # x's own curves differ
    with pytest.raises(ValueError, match="same shape"):
        plain.with_curves_of(x, source[..., :20])


def test_a_file_path_is_read_upright_and_enhanced_like_its_pil_image(enh, tmp_path):
    """A path gives the PIL result of the image as read: EXIF orientation applied (a 6 = rotate 90
    photo 8x6 comes back 6x8), the same pixels as enhancing the upright image; a broken file is an
    ImageReadError naming it."""
    from zerodce.files.io import ImageReadError

    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 60, (6, 8, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    im.save(path, quality=100, exif=exif)
    got = enhance(path, enh)
    assert isinstance(got, Image.Image) and got.size == (6, 8)
    upright = Image.open(path)
    upright = upright.transpose(Image.Transpose.ROTATE_270)  # what orientation 6 means
    assert np.array_equal(np.asarray(got), np.asarray(enhance(upright, enh)))
    assert np.array_equal(np.asarray(enhance(str(path), enh)), np.asarray(got))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        enhance(bad, enh)


def test_with_options_equals_a_fresh_enhancer_and_shares_the_model():
    from zerodce.options import Options

    x = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(3)) * 0.3
    base = Enhancer("zerodce", tile=None)
    for opts in (Options(preset="night", tile=None), Options(strength=0.4, tile=None), Options(tile=None)):
        fresh = Enhancer(options=opts)
        bound = base.with_options(opts)
        assert bound.model is base.model and bound.options() == fresh.options()
        torch.testing.assert_close(bound(x), fresh(x), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="model='fast': this pipeline was loaded with model='zerodce'"):
        base.with_options(Options(model="fast", tile=None))
    kw = base.with_options(preset="night")  # keywords, and an Options with the default session, bind too
    assert kw.options() == Enhancer(options=Options(preset="night", tile=None)).options()
    assert base.with_options(Options(preset="night")).tile is None  # the session's tile stays


def test_pipeline_loads_once_per_session_and_applies_each_calls_controls():
    import sys

    from zerodce.options import Options

    mod = sys.modules["zerodce.enhance"]  # the module, not the function of that name
    x = (torch.rand(1, 3, 30, 41, generator=torch.Generator().manual_seed(4)) * 0.3).numpy()
    before = len(mod._PIPELINES)
    a, b = mod.pipeline(Options(tile=19)), mod.pipeline(Options(preset="night", tile=19))
    assert len(mod._PIPELINES) == before + 1  # one load for the session key
    assert b.options() == Enhancer(options=Options(preset="night", tile=19)).options()
    assert not np.allclose(a.run_float(x), b.run_float(x))
