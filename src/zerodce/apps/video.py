"""Video: decode with PyAV, enhance frames in batches, re-encode; audio, frame rate and timing kept.

**Flicker.** Enhancing each frame on its own lets the curves and the exposure control react to noise
and moving content, so the mean brightness of the output jitters from frame to frame. The level is
smoothed over time instead: for every frame the mean luma ``b_t`` of the enhancer's own tone is
measured (on the exposure thumbnail), an exponential moving
average ``m_t = s m_{t-1} + (1 - s) b_t`` follows it (``s`` = ``smooth``), and the frame is
enhanced with the exposure scalar that gives it mean luma ``m_t`` (:meth:`Enhancer.scalars_following`,
:mod:`zerodce.tone`). The spatial curves of each frame are untouched; only their common level
varies slowly. ``smooth=0`` is per-frame enhancement; the paper's method has no exposure control
and is enhanced frame by frame.

**Codecs.** H.264 (``libx264``, CRF ``crf``), MPEG-4 Part 2 where libx264 is missing; ``.webm`` takes
neither, so it is written in VP9 (``libvpx-vp9``, constant quality). Audio streams are copied packet
for packet where the container takes their codec, and re-encoded (Opus for WebM, AAC elsewhere)
where it does not. Frames are written in 8 bits: a 10-bit (or deeper) input says so in one warning.

**Sizes.** H.264 in 4:2:0 (``yuv420p``, what every player decodes) needs even widths and heights, so
odd-sized videos are written in 4:4:4 (``yuv444p``, High 4:4:4 profile) at their exact size; FFmpeg-based
players (VLC, mpv, ffplay) play it, some browsers and QuickTime do not.

**Rotation.** Phones store a portrait clip as landscape frames plus a display matrix that players
apply. The matrix of the first frame is written to the output stream (MP4, MOV, Matroska and WebM
hold one; AVI cannot, which a warning says), so the output plays the way the input did.

**Pixel limit.** The stream's declared width x height is checked against ``max_pixels`` (the image
limit, :data:`zerodce.files.io.MAX_PIXELS`, by default) before any frame is decoded, and every
decoded frame again (a stream can change size mid-way; one that does is refused).

**Memory.** Frames are enhanced in batches of at most ``batch``, and only as many as fit together in
the enhancer's whole-image budget (:func:`zerodce.enhance.auto_tile`: 2 GiB of activations, or a
quarter of the memory available); a frame too large for it alone goes one at a time and is tiled.

**Damaged input.** The frames decoded are counted against the number the container declares (or its
duration at the frame rate); a truncated or damaged video is an error that says how many were lost,
and no output is written.

Extra ``zerodce[video]`` (PyAV, which bundles FFmpeg).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..enhance import Pipeline
from ..evaluation.metrics import luma
from ..files._atomic import atomic_write
from ..files.io import MAX_PIXELS, VIDEO_EXTENSIONS
from ..tiling import BYTES_PER_PIXEL, auto_tile

__all__ = ["VIDEO_EXTENSIONS", "VideoStats", "enhance_video", "video_frames"]

log = logging.getLogger(__name__)


@dataclass
class VideoStats:
    """What :func:`enhance_video` did: frames, and the mean brightness of every output frame."""

    frames: int = 0
    seconds: float = 0.0
    brightness: list[float] = field(default_factory=list)

    @property
    def flicker(self) -> float:
        """Frame-to-frame jitter of mean brightness: the RMS of ``b_t - (b_{t-1} + b_{t+1}) / 2``, each
        frame against the mean of its neighbours. A steady change (a lit object crossing, a sunset)
        is not flicker and scores ~0; the standard deviation of ``diff(b)`` would count it."""
        return jitter(self.brightness)


def jitter(brightness: list[float] | np.ndarray) -> float:
    """RMS of each value minus the mean of its two neighbours (0 for fewer than 3 values).

    Example:
        >>> round(jitter([0.1, 0.2, 0.3, 0.4]), 3), round(jitter([0.5, 0.6, 0.5, 0.6]), 3)
        (0.0, 0.1)
    """
    b = np.asarray(brightness, dtype=np.float64)
    return float(np.sqrt(np.mean((b[1:-1] - 0.5 * (b[:-2] + b[2:])) ** 2))) if b.size > 2 else 0.0


def _pix_fmt(codec: str, width: int, height: int) -> str:
    """4:2:0 where the size allows it; libx264 refuses odd sizes in 4:2:0, so those go 4:4:4."""
    return "yuv420p" if codec != "libx264" or (width % 2 == 0 and height % 2 == 0) else "yuv444p"


def _video_codec(fmt: str, available: set[str]) -> str:
    """The encoder for container ``fmt``: VP9 for WebM (which takes no H.264), else H.264 or MPEG-4."""
    if fmt == "webm":
        return "libvpx-vp9"
    return "libx264" if "libx264" in available else "mpeg4"


def _encoder_options(codec: str, crf: int) -> dict[str, str]:
    """Constant-quality settings: x264's CRF as given; for VP9 the same CRF scaled from x264's 0..51 to
    VP9's 0..63 (a rough equivalence, not a measured one), at libvpx's "good" speed 4 with row threads."""
    if codec == "libx264":
        return {"crf": str(crf), "preset": "medium"}
    if codec == "libvpx-vp9":
        return {"crf": str(round(crf * 63 / 51)), "deadline": "good", "cpu-used": "4", "row-mt": "1"}
    return {}


def _frames_per_batch(enhancer: Pipeline, width: int, height: int, batch: int) -> int:
    """Frames enhanced in one call: at most ``batch``, and no more than the enhancer runs whole in its budget."""
    bpp = BYTES_PER_PIXEL.get(enhancer.backend, BYTES_PER_PIXEL["torch"])
    n = max(1, batch)
    while n > 1 and auto_tile(height * n, width, bpp) is not None:  # n frames together as one tall image
        n -= 1
    return n


def _declared_frames(stream) -> tuple[int, int] | None:  # noqa: ANN001 - a PyAV stream
    """Frames the container says the stream has, and the slack allowed: its frame count (exact), else
    its duration at the frame rate (within one frame); None when it says neither."""
    if stream.frames:
        return int(stream.frames), 0
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        return None
    if stream.duration is not None and stream.time_base is not None:
        return round(float(stream.duration * stream.time_base * rate)), 1
    tag = (stream.metadata or {}).get("DURATION")  # Matroska: per-stream "HH:MM:SS.nnnnnnnnn"
    try:
        h, m, sec = tag.split(":")
        return round((int(h) * 3600 + int(m) * 60 + float(sec)) * float(rate)), 1
    except (AttributeError, ValueError):
        return None


def video_frames(path: str | Path) -> int | None:
    """Frames the container of the video at ``path`` declares (for a progress total); None when it
    declares none or cannot be opened (:func:`enhance_video` then reports why)."""
    try:
        av = _av()
    except RuntimeError:
        return None
    try:
        with av.open(str(path)) as inp:
            declared = _declared_frames(inp.streams.video[0]) if inp.streams.video else None
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None
    return declared[0] if declared and declared[0] > 0 else None


def _av():  # noqa: ANN202 - the av module
    try:
        import av
    except ImportError:
        raise RuntimeError("video needs PyAV: pip install 'zerodce[video]'") from None
    return av


@dataclass(frozen=True)
class _Settings:
    """What one :func:`enhance_video` call writes, as its caller chose it."""

    src: Path
    dst: Path
    enhancer: Pipeline
    fmt: str  # the output container (PyAV's name)
    codec: str  # the video encoder
    crf: int
    batch: int
    smooth: float
    max_pixels: int
    progress: Callable[[int], object] | None


class _Writer:
    """The output container of one :func:`enhance_video` call, fed the input's decoded frames and
    audio packets in demux order.

    Its streams are set up from the first decoded frame (its size, display matrix and bit depth):
    audio packets demuxed before it wait in ``held``. Frames are enhanced in batches of
    ``per_call``, each batch's exposure following the smoothed level of the frames before it.
    """

    def __init__(self, av, out, vin, audio: list, rate, settings: _Settings, stats: VideoStats) -> None:  # noqa: ANN001 - PyAV objects
        self.av, self.out, self.vin, self.audio_in, self.rate = av, out, vin, audio, rate
        self.s, self.stats = settings, stats
        self.vout = None
        self.size: tuple[int, int] = (0, 0)
        self.per_call = settings.batch
        self.pix_fmt = "yuv420p"
        self.aouts: dict[int, tuple[object, bool]] = {}  # input stream index -> (output stream, re-encoded)
        self.held: list = []
        self.pending: list = []
        self.level: float | None = None  # the smoothed mean luma the next frame follows
        self.decoded = 0

    def audio(self, packet) -> None:  # noqa: ANN001 - an av.Packet
        if self.vout is None:
            self.held.append(packet)
            return
        aout, reencode = self.aouts[packet.stream.index]
        if not reencode:
            packet.stream = aout
            self.out.mux(packet)
            return
        try:
            frames = packet.decode()
        except self.av.error.InvalidDataError:  # a damaged audio packet: a moment of silence
            return
        for fr in frames:
            self.out.mux(aout.encode(fr))

    def frame(self, fr) -> None:  # noqa: ANN001 - an av.VideoFrame
        """Take one decoded frame: checked against the pixel limit and the first frame's size."""
        self.decoded += 1
        src, size = self.s.src, (fr.width, fr.height)
        if fr.width * fr.height > self.s.max_pixels:
            raise ValueError(
                f"{src}: frame {self.decoded} is {fr.width}x{fr.height}, over the {self.s.max_pixels:,}-pixel limit"
            )
        if self.vout is None:
            self._start(fr)
            held, self.held = self.held, []
            for packet in held:
                self.audio(packet)
        elif size != self.size:
            raise ValueError(
                f"{src}: frame {self.decoded} is {fr.width}x{fr.height} where the video began at "
                f"{self.size[0]}x{self.size[1]} (a size change mid-stream is not supported)"
            )
        self.pending.append(fr)
        if len(self.pending) >= self.per_call:
            self.flush()

    def _start(self, fr) -> None:  # noqa: ANN001 - the first decoded av.VideoFrame
        s, codec = self.s, self.s.codec
        self.size = fr.width, fr.height
        self.per_call = _frames_per_batch(s.enhancer, *self.size, s.batch)
        vout = self.vout = self.out.add_stream(codec, rate=self.rate)
        vout.width, vout.height = self.size
        vout.pix_fmt = self.pix_fmt = _pix_fmt(codec, *self.size)
        vout.time_base = self.vin.time_base
        vout.options = _encoder_options(codec, s.crf)
        if codec == "libvpx-vp9":
            vout.bit_rate = 0  # constant quality, no bitrate target
        matrix = fr.side_data.get("DISPLAYMATRIX")
        if matrix is not None and s.fmt == "avi":
            log.warning("%s: AVI cannot store the display matrix; %s plays unrotated", s.src, s.dst.name)
        elif matrix is not None:
            vout.set_display_matrix(np.frombuffer(bytes(matrix), dtype=np.int32).tolist())
        bits = max(c.bits for c in fr.format.components)
        if bits > 8:
            log.warning("%s: %d-bit video written as 8-bit (%s)", s.src, bits, codec)
        for a in self.audio_in:
            if a.codec_context.name in self.out.supported_codecs:
                self.aouts[a.index] = self.out.add_stream_from_template(a), False
            else:  # e.g. AAC into WebM
                name = "libopus" if s.fmt == "webm" else "aac"
                aout = self.out.add_stream(name, rate=48000 if name == "libopus" else a.rate or 48000)
                aout.layout = a.layout
                self.aouts[a.index] = aout, True

    def _follow(self, native: np.ndarray) -> np.ndarray:
        """Each frame's own level (mean luma) smoothed over time; each frame then meets the average:
        the curves' common level varies slowly, their shape per frame."""
        levels = []
        for b in native.tolist():
            self.level = b if self.level is None else self.s.smooth * self.level + (1 - self.s.smooth) * b
            levels.append(min(max(self.level, 1e-3), 1 - 1e-3))
        return np.asarray(levels, dtype=np.float32)

    def flush(self) -> None:
        """Enhance and encode the pending frames."""
        if not self.pending:
            return
        enhancer = self.s.enhancer
        x = np.stack([fr.to_ndarray(format="rgb24") for fr in self.pending]).transpose(0, 3, 1, 2)  # (B, 3, H, W)
        scalars = None
        if not enhancer.paper and self.s.smooth > 0:
            scalars = enhancer.follow_scalars(x.astype(np.float32) / 255, self._follow)
        y = enhancer.run_integer(x, 255, scalars=scalars).transpose(0, 2, 3, 1)
        for fr, img in zip(self.pending, y, strict=True):
            frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts, frame.time_base = fr.pts, fr.time_base
            for packet in self.vout.encode(frame.reformat(format=self.pix_fmt)):
                self.out.mux(packet)
            self.stats.brightness.append(float(luma(img).mean() / 255))
        self.stats.frames += len(self.pending)
        if self.s.progress:
            self.s.progress(len(self.pending))
        self.pending.clear()

    def finish(self) -> None:
        """Flush the encoders (the pending frames are flushed already)."""
        if self.vout is None:
            raise ValueError(f"{self.s.src}: no video frame could be decoded")
        for packet in self.vout.encode():
            self.out.mux(packet)
        for aout, reencode in self.aouts.values():
            if reencode:
                self.out.mux(aout.encode(None))


def enhance_video(
    src: str | Path,
    dst: str | Path,
    enhancer: Pipeline,
    *,
    smooth: float = 0.8,
    batch: int = 8,
    crf: int = 18,
    max_pixels: int = MAX_PIXELS,
    progress: Callable[[int], object] | None = None,
) -> VideoStats:
    """Enhance the video ``src`` into ``dst`` (H.264, MPEG-4 where libx264 is missing, VP9 for ``.webm``).

    Audio streams are copied packet for packet (re-encoded where the container does not take their
    codec); video frames keep their timestamps, so frame rate and duration are those of the input,
    and the display matrix (rotation) is carried over. The output is written atomically.

    Raises:
        ValueError: a message that names ``src`` on one line: not a video, over ``max_pixels`` (the
            declared size, or any decoded frame), a size change mid-stream, truncated or damaged.
    """
    av = _av()
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {smooth}")
    src, dst = Path(src), Path(dst)
    stats = VideoStats()
    try:
        inp = av.open(str(src))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:  # mangled metadata is not UTF-8
        raise ValueError(f"{src}: cannot open video ({str(exc).splitlines()[0]})") from None
    with inp:
        if not inp.streams.video:
            raise ValueError(f"{src}: no video stream")
        vin = inp.streams.video[0]
        if vin.codec_context is None:
            raise ValueError(f"{src}: unsupported video codec")
        declared_w, declared_h = vin.codec_context.width, vin.codec_context.height
        if declared_w * declared_h > max_pixels:  # before any frame is decoded: a small file can declare 100 MP frames
            raise ValueError(f"{src}: {declared_w}x{declared_h} exceeds the {max_pixels:,}-pixel limit")
        vin.thread_type = "AUTO"
        audio = [s for s in inp.streams.audio if s.codec_context is not None]
        if len(audio) < len(inp.streams.audio):  # a codec FFmpeg does not know: nothing to copy it by
            log.warning("%s: %d audio stream(s) of an unknown codec left out", src, len(inp.streams.audio) - len(audio))
        rate = vin.average_rate or vin.guessed_rate or 25
        declared = _declared_frames(vin)
        fmt = _container_format(dst)

        settings = _Settings(src, dst, enhancer, fmt, _video_codec(fmt, av.codecs_available), crf, batch, smooth,
                             max_pixels, progress)  # fmt: skip

        def write(f) -> None:  # noqa: ANN001 - a binary file object
            with av.open(f, "w", format=fmt) as out:
                writer = _Writer(av, out, vin, audio, rate, settings, stats)
                for packet in inp.demux(vin, *audio):
                    if packet.stream.type == "audio":
                        if packet.dts is not None:
                            writer.audio(packet)
                        continue
                    try:
                        frames = packet.decode()
                    except av.error.InvalidDataError:  # a damaged packet: its frames are counted as lost below
                        continue
                    for fr in frames:
                        writer.frame(fr)
                writer.flush()
                expected, slack = declared if declared is not None else (None, 0)
                if expected is not None and stats.frames < expected - slack:
                    lost = expected - stats.frames
                    raise ValueError(
                        f"{src}: truncated or damaged: {stats.frames} of {expected} frames decoded, {lost} lost"
                    )
                writer.finish()
                if vin.duration is not None and vin.time_base is not None:
                    stats.seconds = float(vin.duration * vin.time_base)

        try:
            atomic_write(dst, write)
        except (av.error.FFmpegError, ValueError) as exc:  # damaged streams: decoder errors
            if str(exc).startswith(f"{src}: "):
                raise
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{src}: video processing failed ({first})") from None
    return stats


def _container_format(path: Path) -> str:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}.get(
        path.suffix.lower(), "mp4"
    )
