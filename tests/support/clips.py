"""Synthetic video clips for the tests and scripts/video_flicker.py (not part of the package)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def synthetic_clip(
    path: str | Path, frames: int = 48, size: tuple[int, int] = (160, 96), fps: int = 24, seed: int = 0
) -> Path:
    """Write a dark test clip: a dim room with a moving bright square, sensor noise, and a 440 Hz tone.

    Used by the tests and ``scripts/video_flicker.py``; ``size`` is (width, height).
    """
    import av

    from zerodce.apps.video import _pix_fmt

    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    room = (0.03 + 0.05 * xx / w + 0.02 * np.sin(yy / 7.0))[..., None] * np.array([1.0, 0.9, 0.8])
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, _pix_fmt(v.codec_context.name, w, h)
        a = out.add_stream("aac", rate=44100)
        for i in range(frames):
            img = room.copy()
            x0 = int((w - 24) * i / max(frames - 1, 1))
            img[h // 3 : h // 3 + 24, x0 : x0 + 24] = [0.25, 0.22, 0.15]  # a lamp-lit object moving across
            img = img + rng.normal(0, 0.012, img.shape)
            frame = av.VideoFrame.from_ndarray((np.clip(img, 0, 1) * 255).astype(np.uint8), format="rgb24")
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        samples = int(44100 * frames / fps)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = tone[start : start + 1024][None]
            af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            af.sample_rate, af.pts = 44100, start
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode():
            out.mux(p)
    return Path(path)


def pattern_clip(
    path: str | Path,
    size: tuple[int, int] = (48, 32),
    frames: int = 4,
    fmt: str | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
) -> Path:
    """Write a clip whose every frame is dark with a bright block in its top-left corner (so that its
    orientation shows), optionally with a display matrix rotating it ``rotation`` degrees
    counter-clockwise, as phones write portrait clips."""
    import av

    w, h = size
    img = np.full((h, w, 3), 30, np.uint8)
    img[: h // 4, : w // 4] = 220
    with av.open(str(path), "w", format=fmt) as out:
        v = out.add_stream(codec, rate=12)
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        if rotation is not None:
            v.set_display_rotation(rotation)
        for _ in range(frames):
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    return Path(path)


def declared_size_clip(path: str | Path, size: int = 10240) -> Path:
    """A 1 KB Matroska clip of two FFV1 frames whose header declares them ``size`` x ``size`` pixels.

    FFV1 takes its frame size from the container alone, so the 256x256 clip written here is patched
    in its PixelWidth / PixelHeight elements (IDs 0xB0 / 0xBA, two-byte values)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        v = out.add_stream("ffv1", rate=12)
        v.width, v.height, v.pix_fmt = 256, 256, "yuv420p"
        for _ in range(2):
            for p in v.encode(av.VideoFrame.from_ndarray(np.full((256, 256, 3), 20, np.uint8), format="rgb24")):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    data = buf.getvalue()
    new = size.to_bytes(2, "big")
    for element in (b"\xb0\x82", b"\xba\x82"):
        assert data.count(element + b"\x01\x00") == 1, "the clip's header moved: patch by hand"
        data = data.replace(element + b"\x01\x00", element + new)
    Path(path).write_bytes(data)
    return Path(path)


def size_change_clip(path: str | Path, sizes: tuple[tuple[int, int], ...] = ((32, 24), (96, 64))) -> Path:
    """An AVI clip of MPEG-4 Part 2 frames, 3 at each of ``sizes`` (the container declares the first):
    each part comes from its own encoder, whose in-band headers change the decoder's size mid-stream."""
    from fractions import Fraction

    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = *sizes[0], "yuv420p"
        pts = 0
        for i, (w, h) in enumerate(sizes):
            enc = stream.codec_context if i == 0 else av.CodecContext.create("mpeg4", "w")
            if i:
                enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
                enc.time_base, enc.framerate = Fraction(1, 12), Fraction(12)
            for _ in range(3):
                frame = av.VideoFrame.from_ndarray((rng.random((h, w, 3)) * 80).astype(np.uint8), format="rgb24")
                frame.pts, pts = pts, pts + 1
                for p in enc.encode(frame):
                    p.stream = stream
                    out.mux(p)
            for p in enc.encode(None):
                p.stream = stream
                out.mux(p)
    return Path(path)
