"""Before/after crops at 4x zoom: the noise the curves amplify, with and without ``--denoise``.

    .venv/bin/python scripts/denoise_crops.py --out docs/denoise_crops.jpg

Rows: two lol-val100 photos (with their reference) and one real photo from DICM. Columns: the
input, the plain model, the default denoiser (strength 2), a stronger one (4), the learned denoiser
(its default strength), and the reference where there is one. Crops are 96x96 px, enlarged 4x with
nearest-neighbour so pixels stay visible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROWS = [  # (low, reference or None, crop x, crop y)
    ("lol-val100/low/104.png", "lol-val100/high/104.png", 250, 150),
    ("lol-val100/low/160.png", "lol-val100/high/160.png", 260, 160),
    ("real-lowlight/DICM/01.jpg", None, 300, 150),
]


def main() -> None:
    from zerodce.enhance import Enhancer, enhance

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--out", default="docs/denoise_crops.jpg")
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--zoom", type=int, default=4)
    args = p.parse_args()
    columns = {
        "input": None,
        "plain model": Enhancer("zerodce", paper=True),
        "--denoise 2 (default)": Enhancer("zerodce", balance=0.0, denoise=2),
        "--denoise 4": Enhancer("zerodce", balance=0.0, denoise=4),
        "--denoiser learned": Enhancer("zerodce", balance=0.0, denoiser="learned"),
    }
    c, z = args.crop, args.zoom
    panels = []
    for low, ref, x0, y0 in ROWS:
        path = Path(args.data) / low
        if not path.exists():
            continue
        rgb = np.asarray(Image.open(path).convert("RGB"))
        x0, y0 = min(x0, rgb.shape[1] - c), min(y0, rgb.shape[0] - c)
        row = []
        for name, enh in columns.items():
            out = rgb if enh is None else enhance(rgb, enh)
            row.append((name, out[y0 : y0 + c, x0 : x0 + c]))
        if ref:
            row.append(
                ("reference", np.asarray(Image.open(Path(args.data) / ref).convert("RGB"))[y0 : y0 + c, x0 : x0 + c])
            )
        panels.append(row)
    ncol = max(len(r) for r in panels)
    label_h = 18
    sheet = Image.new("RGB", (ncol * c * z, len(panels) * (c * z + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(panels):
        for j, (name, crop) in enumerate(row):
            big = Image.fromarray(np.ascontiguousarray(crop)).resize((c * z, c * z), Image.Resampling.NEAREST)
            top = i * (c * z + label_h)
            sheet.paste(big, (j * c * z, top + label_h))
            draw.text((j * c * z + 4, top + 3), name, fill="black")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out} ({sheet.size[0]}x{sheet.size[1]})")


if __name__ == "__main__":
    main()
