"""zerodce: low-light image enhancement with Zero-DCE and Zero-DCE++.

Example:
    >>> import numpy as np, zerodce
    >>> dark = np.full((4, 6, 3), 20, dtype=np.uint8)
    >>> out = zerodce.enhance(dark)
    >>> out.shape, out.dtype, bool(out.mean() > dark.mean())
    ((4, 6, 3), dtype('uint8'), True)
"""

from __future__ import annotations

from .curves import apply_curves, le_curve
from .enhance import Enhancer, enhance
from .model import DCENet, DCENetPP, ModelConfig, build_model
from .weights import WeightsError, convert_checkpoint, load_model, save_weights

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "enhance",
    "Enhancer",
    "load_model",
    "save_weights",
    "convert_checkpoint",
    "WeightsError",
    "ModelConfig",
    "DCENet",
    "DCENetPP",
    "build_model",
    "apply_curves",
    "le_curve",
]
