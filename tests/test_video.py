"""Video: frames, rate, duration and audio kept; temporal smoothing lowers flicker."""

from __future__ import annotations

import numpy as np
import pytest

av = pytest.importorskip("av")

from zerodce.enhance import Enhancer  # noqa: E402
from zerodce.video import enhance_video, synthetic_clip  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return synthetic_clip(tmp_path_factory.mktemp("v") / "dark.mp4", frames=36)


def _probe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return {
            "rate": v.average_rate,
            "frames": len(frames),
            "size": (v.codec_context.width, v.codec_context.height),
            "audio": [(a.codec_context.name, a.sample_rate) for a in c.streams.audio],
            "duration": float(c.duration) / 1e6 if c.duration else None,
            "mean": float(np.mean(frames)),
        }


def test_video_keeps_timing_audio_and_brightens(clip, tmp_path):
    enh = Enhancer("zerodce")
    out = tmp_path / "out.mp4"
    stats = enhance_video(clip, out, enh, batch=5)
    src, dst = _probe(clip), _probe(out)
    assert dst["frames"] == src["frames"] == stats.frames == 36
    assert dst["rate"] == src["rate"] and dst["size"] == src["size"]
    assert dst["audio"] == src["audio"] and dst["audio"]
    assert dst["duration"] == pytest.approx(src["duration"], abs=0.05)
    assert dst["mean"] > 2 * src["mean"]
    assert not list(tmp_path.glob(".*.part"))


def test_smoothing_lowers_flicker(clip, tmp_path):
    enh = Enhancer("zerodce")
    per_frame = enhance_video(clip, tmp_path / "a.mp4", enh, smooth=0.0)
    smoothed = enhance_video(clip, tmp_path / "b.mp4", enh, smooth=0.8)
    assert smoothed.flicker < 0.7 * per_frame.flicker
    # Same overall brightness: smoothing regulates the level, it does not darken or brighten.
    assert np.mean(smoothed.brightness) == pytest.approx(np.mean(per_frame.brightness), abs=0.02)


def test_not_a_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="bad.mp4"):
        enhance_video(bad, tmp_path / "o.mp4", Enhancer("zerodce"))
    assert not (tmp_path / "o.mp4").exists()
