"""The numba kernels (zerodce.core.kernels) against the numpy code they replace, and their dispatch."""

from __future__ import annotations

import os

import numpy as np
import pytest

from zerodce.core import filters, kernels, noise, tone

if not kernels.NUMBA_INSTALLED:
    pytest.skip("numba not installed", allow_module_level=True)

TOL = 1e-5
SIZES = [(1, 9), (1, 300), (7, 5), (37, 53), (9, 600)]  # 300 and 600 columns: several strips of 256


def _images(h: int, w: int, level: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((2, 3, h, w), dtype=np.float32)
    if level == "dark":
        x *= np.float32(0.01)
    elif level == "bright":
        x = np.float32(1.0) - x * np.float32(0.01)
    return x


@pytest.mark.parametrize(("h", "w"), SIZES)
@pytest.mark.parametrize("level", ["full", "dark", "bright"])
@pytest.mark.parametrize("bounded", [False, True])
def test_denoise_matches_numpy(h, w, level, bounded):
    y = _images(h, w, level)
    x = y * np.float32(0.3)
    sigma = np.array([0.02, 0.005], np.float32)
    chroma = np.array([0.01, 0.03], np.float32) if bounded else None
    want = filters._gain_aware_denoise(y, x, 1.0, sigma, 2, chroma)
    got = kernels.denoise(y, x, 1.0, sigma, 2, chroma)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.abs(got - want).max() <= TOL


@pytest.mark.parametrize("radius", [1, 3])
def test_denoise_other_radii(radius):
    y = _images(23, 290, "full", seed=1)
    x = y * np.float32(0.5)
    sigma, chroma = np.array([0.03, 0.01], np.float32), np.array([0.02, 0.02], np.float32)
    want = filters._gain_aware_denoise(y, x, 0.7, sigma, radius, chroma)
    assert np.abs(kernels.denoise(y, x, 0.7, sigma, radius, chroma) - want).max() <= TOL


def test_denoise_sigma_zero_is_nearly_identity():
    y = _images(37, 53, "full", seed=2)
    zero = np.zeros(2, np.float32)
    got = kernels.denoise(y, y * np.float32(0.3), 1.0, zero, 2, None)
    assert np.abs(got - filters._gain_aware_denoise(y, y * np.float32(0.3), 1.0, zero, 2, None)).max() <= TOL
    assert np.abs(got - y).max() < 1e-3  # eps = 1e-8: the guided filter keeps its input


@pytest.mark.parametrize(("h", "w"), [(1, 9), (7, 5), (37, 53)])
@pytest.mark.parametrize("channels", [3, 24])
@pytest.mark.parametrize("u", [-1.5, 0.0, 0.4, 1.0, 2.2])
@pytest.mark.parametrize("cast", [False, True])
def test_tone_matches_numpy(h, w, channels, u, cast):
    x = _images(h, w, "full", seed=3)
    x[:, :, :, 0] = 0.0  # black pixels: the value floor
    x[1, :, 0, -1] = np.float32(1.0 - 1e-4)  # near white
    maps = np.random.default_rng(4).uniform(-1, 1, (2, channels, h, w)).astype(np.float32)
    us = np.array([u, 0.7], np.float32)  # the second image: another branch of the gain
    gains = np.array([[1.1, 1.0, 0.9], [0.95, 1.0, 1.05]], np.float32) if cast else None
    want = tone._tone(x, maps, 8, us, gains)
    got = kernels.tone(x, maps, 8, us, gains)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.abs(got - want).max() <= TOL


def test_transfer_tables_match_color():
    """The kernels' sRGB curves (tables, linearly interpolated) against color's on a dense sweep of
    [0, 1], both sides of each knee ulp by ulp, 0 and 1: well within TOL (a table of 4096 cells
    uniform in v has 1.6e-5 at linear_to_srgb's knee; one of 256 cells 6e-6 anywhere)."""
    import numba

    from zerodce.core import color

    kernels._kernels()  # the helpers, now numba functions (inlined where called)
    s2l, l2s = kernels._srgb_to_linear, kernels._linear_to_srgb

    @numba.njit
    def curves(v, lin, coded):  # noqa: ANN001, ANN202
        for j in range(v.shape[0]):
            lin[j], coded[j] = s2l(v[j]), l2s(v[j])

    sweeps = [np.linspace(0, 1, 2**20 + 1, dtype=np.float32), np.array([0.0, 1.0], np.float32)]
    for knee in (np.float32(0.04045), np.float32(0.0031308)):
        sweeps.append(knee * np.linspace(0.9, 1.1, 20001, dtype=np.float32))
        ulps = np.float32(np.spacing(knee)) * np.arange(-64, 65, dtype=np.float32)
        sweeps.append(knee + ulps)
    v = np.concatenate(sweeps)
    lin, coded = np.empty_like(v), np.empty_like(v)
    curves(v, lin, coded)
    ends = np.isin(v, [0.0, 1.0])
    assert np.array_equal(lin[ends], v[ends]) and np.array_equal(coded[ends], v[ends])  # exact
    assert np.abs(lin - color.srgb_to_linear(v)).max() <= 1e-6
    assert np.abs(coded - color.linear_to_srgb(v)).max() <= 1e-6


@pytest.mark.parametrize("gains", [(0.5, 1.0, 2.0), (1.3, 0.8, 1.0), (0.999, 1.001, 1.0), (0.8972, 1.0962, 1.1215)])
def test_cast_matches_numpy_across_its_segments(gains):
    """The kernel's cast: affine in sRGB where both sRGB curves are on their power segments (and
    scaled, g v, where both are linear), the tables elsewhere and where a channel would pass 1.
    Every value of [0, 1] in steps of 1/4096 and a few ulps either side of each threshold, in
    every channel, against tone's numpy chain (identity curves: the tone is the cast alone)."""
    g = np.asarray(gains, np.float64)
    points = [np.linspace(0, 1, 4097), [0.0, 1.0, 1e-9]]
    for t in kernels._cast_constants(g[None])[0, 2:].ravel():
        t = np.float32(t)
        points.append(t + np.float32(np.spacing(t)) * np.arange(-4, 5, dtype=np.float32))
    v = np.clip(np.concatenate([np.asarray(p, np.float32) for p in points]), 0, 1).astype(np.float32)
    n = v.size
    x = np.stack([v, v[::-1], np.roll(v, n // 3)])[None, :, None, :].repeat(2, axis=0)  # (2, 3, 1, n)
    x[1] = x[1, ::-1]
    maps = np.zeros((2, 3, 1, n), np.float32)
    us, cast = np.ones(2, np.float32), np.stack([g, g[::-1]]).astype(np.float32)
    want = tone._tone(x, maps, 8, us, cast)
    got = kernels.tone(x, maps, 8, us, cast)
    assert np.abs(got - want).max() <= 1e-6


def test_tone_strided_maps():
    """DCE-Net maps arrive as crops of a larger array (tiles, bands)."""
    x = _images(9, 31, "dark", seed=5)
    full = np.random.default_rng(6).uniform(-1, 1, (2, 24, 20, 40)).astype(np.float32)
    maps = full[..., 3:12, 5:36]
    us = np.array([0.4, 2.2], np.float32)
    assert np.abs(kernels.tone(x, maps, 8, us, None) - tone._tone(x, maps, 8, us, None)).max() <= TOL


@pytest.mark.parametrize(
    ("k", "stride", "shape"), [(2, 1, (3, 5, 4)), (3, 2, (3, 30, 41)), (7, 5, (3, 61, 90)), (7, 3, (1, 20, 7))]
)
def test_patches_match_numpy(k, stride, shape, monkeypatch):
    """The fused sampling (every stride-th patch, mixed over channels, widened, its energy) against
    numpy's strided copy, product and differences; the last row and column of patches included."""
    x = np.random.default_rng(k).random(shape, dtype=np.float32)
    weights = np.random.default_rng(1).uniform(-1, 1, (3, shape[0])).astype(np.float32)
    p, energy = kernels.patches(x, k, stride, weights)
    monkeypatch.setenv("ZERODCE_NO_NUMBA", "1")
    want_p, want_energy = noise._patches(x, k, stride, weights)
    assert p.dtype == np.float64 and p.shape == want_p.shape and energy.shape == want_energy.shape
    np.testing.assert_allclose(p, want_p, rtol=1e-6, atol=1e-7)  # float32 mixes: the products' rounding
    np.testing.assert_allclose(energy, want_energy, rtol=1e-5, atol=1e-9)
    # one patch by hand: the last of the grid, mix 1
    n_h, n_w = (shape[1] - k) // stride + 1, (shape[2] - k) // stride + 1
    i0, j0 = (n_h - 1) * stride, (n_w - 1) * stride
    patch = np.tensordot(weights[1], x[:, i0 : i0 + k, j0 : j0 + k], axes=1).astype(np.float64)
    np.testing.assert_allclose(p[1, -1], patch.ravel(), rtol=1e-6, atol=1e-7)
    e = np.square(np.diff(patch, axis=0)).sum() + np.square(np.diff(patch, axis=1)).sum()
    np.testing.assert_allclose(energy[1, -1], e, rtol=1e-5, atol=1e-9)


def test_noise_levels_with_and_without_kernels(monkeypatch):
    rng = np.random.default_rng(7)
    ramp = np.linspace(0.2, 0.8, 120, dtype=np.float32)
    x = np.clip(ramp + np.float32(0.02) * rng.standard_normal((2, 3, 90, 120), np.float32), 0, 1)
    x[1, :, 40:] += np.float32(0.1) * (np.arange(120) % 2)  # texture: patches rejected
    got = noise.luma_chroma_noise(x)
    monkeypatch.setenv("ZERODCE_NO_NUMBA", "1")
    want = noise.luma_chroma_noise(x)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_public_functions_dispatch(monkeypatch):
    y = _images(7, 5, "full")
    maps = np.full((2, 3, 7, 5), 0.5, np.float32)
    us = np.array([0.4, 1.0], np.float32)
    calls = []
    # (the kernels' last argument, out, is None here)
    monkeypatch.setattr(kernels, "denoise", lambda *a: calls.append("denoise") or filters._gain_aware_denoise(*a[:6]))
    monkeypatch.setattr(kernels, "tone", lambda *a: calls.append("tone") or tone._tone(*a[:5]))
    monkeypatch.delenv("ZERODCE_NO_NUMBA", raising=False)
    filters.gain_aware_denoise(y, y, 1.0, np.array([0.01, 0.01]))
    tone.tone(y, maps, 8, us)
    filters.gain_aware_denoise(np.asfortranarray(y), y, 1.0, np.array([0.01, 0.01]))  # not C-contiguous: numpy
    assert calls == ["denoise", "tone"]
    monkeypatch.setenv("ZERODCE_NO_NUMBA", "1")  # the numpy code, whatever is installed
    filters.gain_aware_denoise(y, y, 1.0, np.array([0.01, 0.01]))
    tone.tone(y, maps, 8, us)
    assert calls == ["denoise", "tone"]
    assert not kernels.enabled()


def test_tone_rejects_maps_of_another_size():
    x = _images(7, 5, "full")
    with pytest.raises(ValueError, match="do not cover"):
        kernels.tone(x, np.zeros((2, 3, 7, 4), np.float32), 8, np.ones(2, np.float32), None)


@pytest.mark.parametrize(("h", "w"), SIZES)
@pytest.mark.parametrize("channels", [3, 24])
def test_curves_match_numpy(h, w, channels):
    from zerodce.core.curves import apply_curves

    x = _images(h, w, "full")
    maps = np.random.default_rng(1).uniform(-1, 1, (2, channels, h, w)).astype(np.float32)
    want = apply_curves(x.copy(), maps, 8, inplace=True)
    got = kernels.curves(x.copy(), maps, 8)
    assert np.abs(got - want).max() <= 1e-6


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_to_float_of_interleaved_samples_is_astype(dtype):
    scale = np.iinfo(dtype).max
    hwc = np.random.default_rng(2).integers(0, scale + 1, (2, 37, 53, 3)).astype(dtype)
    x = hwc.transpose(0, 3, 1, 2)  # the layout enhance() hands over: a view of interleaved samples
    got = kernels.to_float(x, scale)
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, x.astype(np.float32) * np.float32(1.0 / scale))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_to_integer_is_numpys_rounding_into_a_region(dtype):
    scale = int(np.iinfo(dtype).max)
    rng = np.random.default_rng(3)
    y = rng.uniform(-0.2, 1.2, (2, 3, 9, 11)).astype(np.float32)
    y[0, 0, 0, :4] = (np.arange(4, dtype=np.float32) + np.float32(0.5)) / np.float32(scale)  # near ties
    y[0, 1, 0, :2] = np.float32(np.inf), -np.float32(np.inf)
    region = y[..., 1:8, 2:9]  # a strided crop, as a band's inner rows
    out = np.zeros((2, 20, 30, 3), dtype)
    kernels.to_integer(region, scale, out, slice(5, 12), slice(10, 17))
    want = np.zeros_like(out)
    want[:, 5:12, 10:17, :] = np.rint(np.clip(region * np.float32(scale), 0, scale)).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize(("hs", "hp", "r0", "r1"), [(5, 37, 0, 37), (5, 37, 11, 29), (2, 300, 256, 300)])
def test_lerp_rows_is_upsample_rows(hs, hp, r0, r1, monkeypatch):
    from zerodce.core.resample import upsample_rows

    cols = np.random.default_rng(4).uniform(-1, 1, (2, 3, hs, 53)).astype(np.float32)
    got = upsample_rows(cols, hp, r0, r1)
    monkeypatch.setenv("ZERODCE_NO_NUMBA", "1")
    want = upsample_rows(cols, hp, r0, r1)
    assert got.shape == want.shape == (2, 3, r1 - r0, 53)
    np.testing.assert_array_equal(got, want)


def test_upsample_rows_into_its_own_columns(monkeypatch):
    """``out`` may be the buffer of ``cols`` (rows r1 - r0 == hs): the rows kernel reads rows of
    cols that it has already written, so the result must be made apart and copied in."""
    from zerodce.core.resample import upsample_rows

    cols = np.random.default_rng(21).uniform(-1, 1, (2, 3, 4, 53)).astype(np.float32)
    for numba_off in ("0", "1"):
        monkeypatch.setenv("ZERODCE_NO_NUMBA", numba_off)
        want = upsample_rows(cols, 7, 0, 4)
        own = cols.copy()
        got = upsample_rows(own, 7, 0, 4, own)
        assert got is own
        np.testing.assert_array_equal(got, want, err_msg=f"ZERODCE_NO_NUMBA={numba_off}")


def test_crops_of_maps_are_read_in_place():
    full = np.random.default_rng(7).uniform(-1, 1, (2, 24, 20, 40)).astype(np.float32)
    whole, r0, c0 = kernels._crop_of(full[..., 3:12, 5:36])
    assert whole is full and (r0, c0) == (3, 5)
    assert np.array_equal(whole[..., r0 : r0 + 9, c0 : c0 + 31], full[..., 3:12, 5:36])
    for other in (full[:, :3, 3:12], full[..., ::2], full[1:], full.astype(np.float64)[..., 1:]):
        copy, r0, c0 = kernels._crop_of(other)  # not a crop of all images and channels: copied
        assert copy.flags.c_contiguous and (r0, c0) == (0, 0) and np.array_equal(copy, other)


@pytest.mark.parametrize(
    ("h", "w", "size"), [(37, 53, (8, 11)), (1200, 900, (256, 192)), (9, 600, (9, 128)), (5, 7, (5, 7))]
)
def test_area_matches_numpy(h, w, size, monkeypatch):
    from zerodce.core.color import area_resize

    x = _images(h, w, "full")
    got = area_resize(x, size)
    monkeypatch.setenv("ZERODCE_NO_NUMBA", "1")
    want = area_resize(x, size)
    assert got.shape == want.shape == (2, 3, *size)
    assert np.abs(got - want).max() <= 1e-6


def test_every_kernel_loads_from_numba_cache_in_a_new_process():
    # A kernel that numba cannot cache (a call to a ctypes-backed function inside it, say) compiles
    # again in every process: about 15 s per photo's first enhancement, silently. Two fresh
    # processes run every kernel (kernels.warm: it must reach them all, or a count below is 0);
    # the second must load each from the cache the first wrote.
    import subprocess
    import sys

    code = (
        "import logging\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "from zerodce.core import kernels\n"
        "kernels.warm()\n"  # every kernel once (what scripts/setup.sh fast runs)
        "for name, d in vars(kernels._kernels()).items():\n"
        "    print(name, sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values()))\n"
    )
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
    stats = {name: (int(h), int(m)) for name, h, m in (line.split() for line in r.stdout.splitlines())}
    assert stats and all(h > 0 and m == 0 for h, m in stats.values()), stats
    assert "not compiled" not in r.stderr  # the first-use notice only where something will compile


def test_a_first_use_that_will_compile_says_so(tmp_path):
    # The first photo after installing numba waits about 30 s for the compiler, which looked like a
    # hang; the kernels now say so (an INFO line) when their cache is empty (and, in the test above,
    # not when it is warm).
    import subprocess
    import sys

    code = (
        "import logging\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "from zerodce.core import kernels\n"
        "print(sorted(kernels.uncached(vars(kernels._kernels()))))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    names = sorted(vars(kernels._kernels()))
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout.strip() == str(names)
    assert f"{len(names)} of {len(names)} numba kernels are not compiled for this machine yet" in cold.stderr


def test_kernels_build_once_when_two_threads_ask_first():
    # On a first photo the noise estimate's thread and the caller's thread both ask for the kernels;
    # building them twice at once failed ("a jit decorator was called on an already jitted function").
    import subprocess
    import sys

    code = (
        "import threading\n"
        "from zerodce.core import kernels\n"
        "gate, got, errors = threading.Barrier(4), [], []\n"
        "def ask():\n"
        "    gate.wait()\n"
        "    try:\n"
        "        got.append(kernels._kernels())\n"
        "    except Exception as e:\n"
        "        errors.append(repr(e))\n"
        "threads = [threading.Thread(target=ask) for _ in range(4)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "assert not errors, errors\n"
        "assert len(got) == 4 and all(k is got[0] for k in got)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr


def _calls_with_out(seed: int, gains: np.ndarray | None) -> dict:
    """The functions that take ``out`` (tone, the denoiser, the map rows of a map and of a one-row
    map) on small random (2, 3, 9, 31) inputs, each as a function of ``out``."""
    from zerodce.core import resample

    x = _images(9, 31, "dark", seed=seed)
    y = _images(9, 31, "full", seed=seed + 1)
    maps = np.random.default_rng(seed + 2).uniform(-1, 1, (2, 3, 9, 31)).astype(np.float32)
    us, sig = np.array([0.4, 2.2], np.float32), np.array([0.02, 0.01], np.float32)
    cols = np.random.default_rng(seed + 3).random((2, 3, 4, 31), dtype=np.float32)
    return {
        "tone": lambda out: tone.tone(x, maps, 8, us, gains, out=out),
        "denoise": lambda out: filters.gain_aware_denoise(y, x, 1.0, sig, 2, sig, out),
        "rows": lambda out: resample.upsample_rows(cols, 9, 0, 9, out),
        "one-row map": lambda out: resample.upsample_rows(cols[:, :, :1], 9, 0, 9, out),
    }


def test_results_go_into_the_buffers_given(monkeypatch):
    """tone, the denoiser and the map rows write into ``out`` (a band's reused buffer) what they
    would return new, with numba and in numpy; a buffer of another shape or layout is refused."""
    calls = _calls_with_out(8, np.ones((2, 3), np.float32))
    for numba_off in ("0", "1"):
        monkeypatch.setenv("ZERODCE_NO_NUMBA", numba_off)
        for name, call in calls.items():
            want = np.array(call(None))
            out = np.full((2, 3, 9, 31), np.nan, np.float32)
            assert call(out) is out, name
            np.testing.assert_array_equal(out, want, err_msg=name)
    monkeypatch.setenv("ZERODCE_NO_NUMBA", "0")
    for bad in (  # another shape, float64, not contiguous
        np.empty((2, 3, 9, 30), np.float32),
        np.empty((2, 3, 9, 31), np.float64),
        np.empty((2, 3, 9, 62), np.float32)[..., ::2],
    ):
        with pytest.raises(ValueError, match="out must be"):
            calls["tone"](bad)  # the kernel refuses it


@pytest.mark.parametrize("maps_per_step", [True, False])
@pytest.mark.parametrize("offset", [None, (0.7, 2.0)])
def test_value_curve_is_numpys_to_the_bit(maps_per_step, offset, monkeypatch):
    """The exposure search's value curve (clipped offsets and all) in numpy's float32 order: the
    same numbers, so the same exposure from the same bisection."""
    v = np.ascontiguousarray(_images(13, 300, "full", seed=12)[:, :1])  # contiguous: the kernel's input
    mm = np.random.default_rng(13).uniform(-1, 1, (2, 8 if maps_per_step else 1, 13, 300)).astype(np.float32)
    off = None if offset is None else np.asarray(offset, np.float32)
    assert kernels.takes(v, mm)
    got = tone.curve_value(v, mm, 8, off)
    monkeypatch.setenv("ZERODCE_NO_NUMBA", "1")
    want = tone.curve_value(v, mm, 8, off)
    assert got.dtype == np.float32 and np.array_equal(got, want)


@pytest.mark.parametrize("n_maps", [2, 4, 7])
def test_value_curve_refuses_too_few_maps(n_maps, monkeypatch):
    """Fewer per-step maps than steps: numpy raises; the kernel must not read past the maps."""
    v = np.ascontiguousarray(_images(5, 40, "full", seed=19)[:, :1])  # contiguous: the kernel's input
    mm = np.random.default_rng(20).uniform(-1, 1, (2, n_maps, 5, 40)).astype(np.float32)
    for numba_off in ("0", "1"):
        monkeypatch.setenv("ZERODCE_NO_NUMBA", numba_off)
        with pytest.raises(ValueError):
            tone.curve_value(v, mm, 8)


@pytest.mark.parametrize("into", ["y", "x"])
def test_denoise_into_one_of_its_inputs(into, monkeypatch):
    """``out`` may be the buffer of ``y`` or ``x`` (numpy's result is copied in at the end): the
    fused kernel reads its window rows after writing earlier strips, so it must not write there."""
    y = _images(23, 290, "full", seed=14)  # 290 columns: two strips of the kernel
    x = y * np.float32(0.3)
    sig, chroma = np.array([0.03, 0.01], np.float32), np.array([0.02, 0.02], np.float32)
    for numba_off in ("0", "1"):
        monkeypatch.setenv("ZERODCE_NO_NUMBA", numba_off)
        want = filters.gain_aware_denoise(y, x, 1.0, sig, 2, chroma)
        yy, xx = y.copy(), x.copy()
        out = yy if into == "y" else xx
        got = filters.gain_aware_denoise(yy, xx, 1.0, sig, 2, chroma, out)
        assert got is out
        np.testing.assert_array_equal(got, want, err_msg=f"ZERODCE_NO_NUMBA={numba_off}")


def test_out_buffers_refused_alike_with_and_without_numba(monkeypatch):
    """A buffer of another shape (even one the result would broadcast into), float64 or not
    contiguous is refused by tone, the denoiser and the map rows in numpy as with the kernels,
    not filled in one and refused in the other."""
    calls = _calls_with_out(15, None)
    bad = {
        "broadcast into": np.empty((3, 2, 3, 9, 31), np.float32),
        "another shape": np.empty((2, 3, 9, 30), np.float32),
        "float64": np.empty((2, 3, 9, 31), np.float64),
        "not contiguous": np.empty((2, 3, 9, 62), np.float32)[..., ::2],
    }
    for numba_off in ("0", "1"):
        monkeypatch.setenv("ZERODCE_NO_NUMBA", numba_off)
        for name, call in calls.items():
            for what, out in bad.items():
                with pytest.raises(ValueError, match="out must be"):
                    call(out)
                    pytest.fail(f"{name}, ZERODCE_NO_NUMBA={numba_off}: {what} accepted")
