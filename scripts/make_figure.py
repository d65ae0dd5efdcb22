"""Before/after figure of the bundled sample photos with the bundled model (docs/before_after.jpg).

.venv/bin/python scripts/make_figure.py [--model zerodce] [--out docs/before_after.jpg]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from zerodce import Enhancer, enhance
from zerodce.files.io import read_image

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="zerodce")
    p.add_argument("--out", default=str(ROOT / "docs" / "before_after.jpg"))
    p.add_argument("--height", type=int, default=300)
    args = p.parse_args()
    enhancer = Enhancer(args.model)
    pairs = []
    for path in sorted((ROOT / "examples").glob("*.jpg")):
        im = read_image(path).convert("RGB")
        im.thumbnail((10_000, args.height))
        pairs.append((im, enhance(im, enhancer)))
    gap = 6
    width = sum(2 * a.width + 2 * gap for a, _ in pairs)
    canvas = Image.new("RGB", (width, args.height + 22), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for before, after in pairs:
        for label, im in (("input", before), (f"enhanced, model {args.model}", after)):
            canvas.paste(im, (x, 22))
            draw.text((x + 4, 4), label, fill="black")
            x += im.width + gap
        x += gap
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, quality=88)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
