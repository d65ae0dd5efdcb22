"""How much each brightness meter varies across the lol-val100 references: a diagnostic, never a setting.

    .venv/bin/python scripts/metering_spread.py --data ../shared/data/lol-val100

An exposure rule sets one level for every image; the closer a meter reads the same on every
reference, the less a fixed level misses each one. For the three ``--metering`` modes (computed by
``zerodce.adjust.metered``) and a few other meters, prints the mean reading over the references and
its spread across them (standard deviation of the log reading: a relative spread, comparable
between meters). Reads the references only; no output is scored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with high/ (the references)")
    args = p.parse_args()

    import torch
    from PIL import Image

    from zerodce.adjust import METERINGS, luma, metered

    paths = sorted((Path(args.data) / "high").iterdir())
    readings: dict[str, list[float]] = {}
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        y = luma(x).flatten().numpy()
        for m in METERINGS:
            readings.setdefault(f"--metering {m}", []).append(float(metered(x, m)))
        readings.setdefault("median luma", []).append(float(np.median(y)))
        readings.setdefault("log-average luma", []).append(float(np.exp(np.log(y + 1 / 255).mean())))
        readings.setdefault("RMS luma", []).append(float(np.sqrt((y**2).mean())))
    print(f"{len(paths)} references in {Path(args.data) / 'high'}")
    print(f"{'meter':<22} {'mean reading':>12} {'spread (std of log)':>20}")
    for name, vals in readings.items():
        v = np.asarray(vals)
        print(f"{name:<22} {v.mean():>12.3f} {np.log(v).std():>20.3f}")


if __name__ == "__main__":
    main()
