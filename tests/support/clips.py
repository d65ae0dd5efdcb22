"""A synthetic dark video clip for the tests and scripts/video_flicker.py (not part of the package)."""

from __future__ import annotations

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
