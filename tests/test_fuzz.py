"""Short property-based fuzzing (hypothesis); scripts/fuzz.py runs the long version."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from support.fuzz import array_target, bytes_target, seed_files, seed_files_16bit, video_seed_files, video_target
from zerodce.enhance import Enhancer

SEEDS = seed_files()
SEEDS16 = seed_files_16bit()
FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def enh():
    from zerodce.model import DCENet, init_weights

    net = DCENet()
    init_weights(net)
    return Enhancer(net, tile=None)


@st.composite
def mutated(draw, seeds=SEEDS):
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FAST
@given(data=st.one_of(mutated(), st.binary(max_size=300)), suffix=st.sampled_from([".png", ".jpg", ".tif", ".bmp"]))
def test_fuzz_bytes(enh, tmp_path_factory, data, suffix):
    bytes_target(data, enh, tmp_path_factory.mktemp("f"), suffix)


@pytest.mark.skipif(not SEEDS16, reason="needs zerodce[16bit] (opencv, tifffile)")
@FAST
@given(data=mutated(SEEDS16 or [b""]), suffix=st.sampled_from([".png", ".tif"]))
def test_fuzz_bytes_16bit(enh, tmp_path_factory, data, suffix):
    """Mutated 16-bit colour PNG/TIFF through OpenCV / tifffile: read, enhanced and written back
    losslessly, or rejected with ImageReadError; anything else fails."""
    bytes_target(data, enh, tmp_path_factory.mktemp("f"), suffix)


DTYPES = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int32, np.bool_, np.float16, np.complex64])


@FAST
@given(a=arrays(DTYPES, array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9)))
def test_fuzz_arrays(enh, a):
    array_target(a, enh)


# ---------------------------------------------------------------- video containers

VIDEO_SEEDS = video_seed_files() if importlib.util.find_spec("av") else []


@st.composite
def mutated_video(draw):
    suffix, data = draw(st.sampled_from(VIDEO_SEEDS))
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return suffix, bytes(data)


@pytest.mark.skipif(not VIDEO_SEEDS, reason="needs PyAV")
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(clip=mutated_video())
def test_fuzz_video(enh, tmp_path_factory, clip):
    """Damaged containers: enhanced in full or refused with a ValueError and no output, never anything else."""
    suffix, data = clip
    video_target(data, enh, tmp_path_factory.mktemp("v"), suffix)
