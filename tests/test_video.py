"""Video: frames, rate, duration and audio kept; temporal smoothing lowers flicker."""

from __future__ import annotations

import numpy as np
import pytest

av = pytest.importorskip("av")

from support.clips import declared_size_clip, pattern_clip, size_change_clip, synthetic_clip  # noqa: E402
from zerodce.apps.video import enhance_video  # noqa: E402
from zerodce.enhance import Enhancer  # noqa: E402


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


# ---------------------------------------------------------------- hostile videos (issue 16)


def _noisy_clip(path, w, h, frames=24, fmt=None, options=None, pix_fmt="yuv420p"):
    """A clip of noise (so that every frame has real data), keyframe every 6 frames."""
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        v = out.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt, v.options = w, h, pix_fmt, {"g": "6"}
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray((rng.random((h, w, 3)) * 60).astype(np.uint8), format="rgb24")
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    return path


def _decodable(path) -> int:
    """Frames an independent decoder gets out of ``path`` (damaged packets skipped)."""
    n = 0
    with av.open(str(path)) as c:
        for packet in c.demux(video=0):
            try:
                n += len(packet.decode())
            except av.error.InvalidDataError:
                pass
    return n


def _assert_lost_frames(message, src, decodable):
    """``message`` names the file and counts decoded + lost = 24 frames, never more decoded than exist."""
    import re

    m = re.fullmatch(rf"{re.escape(str(src))}: truncated or damaged: (\d+) of 24 frames decoded, (\d+) lost", message)
    assert m, message
    decoded, lost = int(m[1]), int(m[2])
    # Frame-threaded decoding may drop a few more frames around the damage than a single-threaded decoder.
    assert decoded + lost == 24 and 0 < decoded <= decodable, message


@pytest.mark.parametrize("size", [(33, 23), (32, 23), (33, 24)])
def test_odd_sized_video_keeps_its_size(tmp_path, size):
    src = _noisy_clip(tmp_path / "odd.mkv", *size, frames=6, fmt="matroska", pix_fmt="yuv444p")
    out = tmp_path / "out.mp4"
    stats = enhance_video(src, out, Enhancer("zerodce"))
    probe = _probe(out)
    assert probe["size"] == size and probe["frames"] == stats.frames == 6


@pytest.mark.parametrize(
    "name,fmt,options", [("cut.mp4", None, {"movflags": "faststart"}), ("cut.mkv", "matroska", None)]
)
def test_truncated_video_fails_saying_how_many_frames_were_lost(tmp_path, name, fmt, options):
    whole = _noisy_clip(tmp_path / f"whole{name[3:]}", 64, 48, frames=24, fmt=fmt, options=options)
    data = whole.read_bytes()
    src = tmp_path / name
    src.write_bytes(data[: int(len(data) * 0.6)])
    n = _decodable(src)
    assert 0 < n < 24
    with pytest.raises(ValueError) as err:
        enhance_video(src, tmp_path / "out.mp4", Enhancer("zerodce"))
    _assert_lost_frames(str(err.value), src, n)
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".*.part"))


def test_truncated_video_exits_1_on_the_cli(tmp_path):
    import subprocess
    import sys

    whole = _noisy_clip(tmp_path / "whole.mkv", 64, 48, frames=24, fmt="matroska")
    src = tmp_path / "in" / "cut.mkv"
    src.parent.mkdir()
    src.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    n = _decodable(src)
    r = subprocess.run([sys.executable, "-m", "zerodce", "enhance", src, "-o", tmp_path / "out", "--quiet"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    failed = [line for line in r.stdout.splitlines() if line.startswith("  failed: ")]
    assert len(failed) == 1, r.stdout
    _assert_lost_frames(failed[0].removeprefix("  failed: "), src, n)
    assert not (tmp_path / "out" / "cut.mkv").exists()


def test_video_batches_stay_within_the_activation_budget(clip, tmp_path, monkeypatch):
    """Frames are batched only as far as the whole batch fits the enhancer's budget (2 GiB by default)."""
    import importlib

    enhance_module = importlib.import_module("zerodce.tiling")

    budget = 2**20  # 1 MiB here, so that a 160x96 frame (29 MB of activations) already exceeds it
    monkeypatch.setattr(enhance_module, "WHOLE_BUDGET", (0.25, budget))
    shapes = []
    real = Enhancer.enhance_integer

    def spy(self, x, *a, **k):
        shapes.append(tuple(x.shape))
        return real(self, x, *a, **k)

    monkeypatch.setattr(Enhancer, "enhance_integer", spy)
    enh = Enhancer("zerodce", tile=64)
    stats = enhance_video(clip, tmp_path / "out.mp4", enh, batch=8)
    assert stats.frames == 36 and sum(s[0] for s in shapes) == 36
    per_frame = 160 * 96 * enhance_module.BYTES_PER_PIXEL[enh.backend]
    assert all(b == 1 or b * per_frame <= budget for b, *_ in shapes), shapes


# ---------------------------------------------------------------- pixel limit, rotation, WebM, depth (issue 26)


def test_a_declared_size_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    """A 1 KB clip declaring two 10240x10240 frames: refused from its header, as a PNG that size is."""
    src = declared_size_clip(tmp_path / "bomb.mkv")
    assert src.stat().st_size < 4096
    decoded = []
    monkeypatch.setattr(av.VideoFrame, "to_ndarray", lambda *a, **k: decoded.append(1))  # must not be reached
    with pytest.raises(ValueError) as err:
        enhance_video(src, tmp_path / "out.mkv", Enhancer("zerodce"))
    assert str(err.value) == f"{src}: 10240x10240 exceeds the 100,000,000-pixel limit"
    assert not decoded and not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".*.part"))


def test_the_callers_pixel_limit_applies(tmp_path):
    src = pattern_clip(tmp_path / "small.mp4", size=(48, 32))
    with pytest.raises(ValueError, match=r"small\.mp4: 48x32 exceeds the 1,535-pixel limit$"):
        enhance_video(src, tmp_path / "out.mp4", Enhancer("zerodce"), max_pixels=48 * 32 - 1)
    assert enhance_video(src, tmp_path / "out.mp4", Enhancer("zerodce"), max_pixels=48 * 32).frames == 4


def test_every_decoded_frame_is_checked_against_the_limit_and_the_first_size(tmp_path):
    """The header declares 32x24; frames 4 to 6 are 96x64 (a stream can change size mid-way)."""
    src = size_change_clip(tmp_path / "grows.avi")
    with av.open(str(src)) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (32, 24)
    enh = Enhancer("zerodce")
    with pytest.raises(ValueError) as err:
        enhance_video(src, tmp_path / "out.avi", enh, max_pixels=2000)
    assert str(err.value) == f"{src}: frame 4 is 96x64, over the 2,000-pixel limit"
    with pytest.raises(ValueError) as err:
        enhance_video(src, tmp_path / "out.avi", enh)
    assert str(err.value) == (
        f"{src}: frame 4 is 96x64 where the video began at 32x24 (a size change mid-stream is not supported)"
    )
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".*.part"))


def _rotation_and_corner(path):
    """The display rotation of the first frame of ``path`` and the mean of each of its corners."""
    with av.open(str(path)) as c:
        fr = next(c.decode(video=0))
        img = fr.to_ndarray(format="rgb24").astype(float)
        corners = [img[:4, :4].mean(), img[:4, -4:].mean(), img[-4:, :4].mean(), img[-4:, -4:].mean()]
        return fr.rotation, fr.side_data.get("DISPLAYMATRIX"), corners


@pytest.mark.parametrize("name,fmt,codec", [("portrait.mp4", None, "libx264"), ("portrait.mov", None, "libx264"),
                                            ("portrait.mkv", "matroska", "libx264"),
                                            ("portrait.webm", "webm", "libvpx-vp9")])  # fmt: skip
def test_rotation_is_kept(tmp_path, name, fmt, codec):
    """A phone's portrait clip: landscape frames with a -90 degree display matrix. The output keeps
    the matrix (and the frames as they were coded), so it plays upright where the input did."""
    src = pattern_clip(tmp_path / name, fmt=fmt, codec=codec, rotation=-90)
    rotation, matrix, _ = _rotation_and_corner(src)
    assert rotation == -90
    out = tmp_path / f"out{src.suffix}"
    enhance_video(src, out, Enhancer("zerodce"))
    out_rotation, out_matrix, corners = _rotation_and_corner(out)
    assert out_rotation == -90 and bytes(out_matrix) == bytes(matrix)
    assert _probe(out)["size"] == (48, 32)
    assert corners[0] > corners[1] + 50 and corners[0] > corners[2] + 50 and corners[0] > corners[3] + 50


def test_rotation_into_avi_says_it_is_lost(tmp_path, caplog):
    src = pattern_clip(tmp_path / "portrait.mp4", rotation=90)
    with caplog.at_level("WARNING", logger="zerodce.apps.video"):
        enhance_video(src, tmp_path / "out.avi", Enhancer("zerodce"))
    assert [r.getMessage() for r in caplog.records] == [
        f"{src}: AVI cannot store the display matrix; out.avi plays unrotated"
    ]


def test_webm_is_written_in_vp9_and_its_audio_in_opus(tmp_path):
    """WebM takes VP9/AV1 video and Opus/Vorbis audio only: the clip's AAC is re-encoded to Opus, and
    a WebM input's Opus is then copied."""
    clip = synthetic_clip(tmp_path / "dark.mp4", frames=12)
    enh = Enhancer("zerodce")
    out = tmp_path / "out.webm"
    stats = enhance_video(clip, out, enh)
    src, dst = _probe(clip), _probe(out)
    with av.open(str(out)) as c:
        assert c.format.name.split(",")[0] in ("matroska", "webm") and c.streams.video[0].codec_context.name == "vp9"
    assert dst["frames"] == stats.frames == 12 and dst["size"] == src["size"]
    assert dst["audio"] == [("opus", 48000)]
    assert dst["duration"] == pytest.approx(src["duration"], abs=0.1)
    assert dst["mean"] > 2 * src["mean"]
    again = tmp_path / "again.webm"
    enhance_video(out, again, enh)
    assert _probe(again)["audio"] == [("opus", 48000)] and _probe(again)["frames"] == 12


def test_10bit_input_says_it_is_written_as_8bit(tmp_path, caplog):
    src = pattern_clip(tmp_path / "deep.mkv", fmt="matroska", pix_fmt="yuv420p10le")
    with caplog.at_level("WARNING", logger="zerodce.apps.video"):
        stats = enhance_video(src, tmp_path / "out.mkv", Enhancer("zerodce"), batch=2)
    assert stats.frames == 4
    assert [r.getMessage() for r in caplog.records] == [f"{src}: 10-bit video written as 8-bit (libx264)"]
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
    caplog.clear()
    with caplog.at_level("WARNING", logger="zerodce.apps.video"):
        enhance_video(pattern_clip(tmp_path / "eight.mkv", fmt="matroska"), tmp_path / "o8.mkv", Enhancer("zerodce"))
    assert not caplog.records
