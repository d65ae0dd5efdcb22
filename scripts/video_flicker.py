"""Flicker of enhanced video, per-frame vs temporally smoothed, on the generated dark test clip.

    .venv/bin/python scripts/video_flicker.py --out docs/video

Writes the clip, both enhanced versions, and ``flicker.png`` (mean brightness per frame); prints
the frame-to-frame standard deviation of mean brightness for the input and both outputs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from zerodce.enhance import Enhancer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test helpers
    from support.clips import synthetic_clip
    from zerodce.apps.video import enhance_video, jitter

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="docs/video")
    p.add_argument("--frames", type=int, default=96)
    p.add_argument("--smooth", type=float, default=0.8)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = synthetic_clip(out / "dark.mp4", frames=args.frames, size=(320, 192))
    enh = Enhancer("zerodce")
    runs = {}
    for label, smooth in (("per-frame", 0.0), (f"smoothed (s={args.smooth})", args.smooth)):
        t = time.perf_counter()
        stats = enhance_video(clip, out / f"enhanced_{'smooth' if smooth else 'perframe'}.mp4", enh, smooth=smooth)
        runs[label] = (stats, stats.frames / (time.perf_counter() - t))
    import av

    with av.open(str(clip)) as c:
        src = [
            float((f.to_ndarray(format="rgb24") @ np.array([0.299, 0.587, 0.114])).mean() / 255)
            for f in c.decode(video=0)
        ]
    lines = [f"{args.frames} frames 320x192; flicker (RMS of each frame's mean brightness minus its neighbours'):"]
    lines.append(f"  input              {jitter(src):.5f}")
    for label, (stats, fps) in runs.items():
        lines.append(
            f"  {label:18s} {stats.flicker:.5f}  (mean brightness {np.mean(stats.brightness):.3f}, {fps:.1f} frames/s)"
        )
    print("\n".join(lines))
    (out / "flicker.txt").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    for label, (stats, _) in runs.items():
        ax.plot(stats.brightness, label=f"{label}: flicker {stats.flicker:.4f}")
    ax.plot(src, color="0.5", label=f"input: flicker {jitter(src):.4f}")
    ax.set_xlabel("frame")
    ax.set_ylabel("mean brightness")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "flicker.png")
    print(f"wrote {out / 'flicker.png'}")


if __name__ == "__main__":
    main()
