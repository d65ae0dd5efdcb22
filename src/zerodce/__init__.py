"""zerodce: low-light image enhancement with Zero-DCE and Zero-DCE++.

Example:
    >>> import numpy as np, zerodce
    >>> dark = np.full((4, 6, 3), 20, dtype=np.uint8)
    >>> out = zerodce.enhance(dark)
    >>> out.shape, out.dtype, bool(out.mean() > dark.mean())
    ((4, 6, 3), dtype('uint8'), True)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .curves import apply_curves, le_curve
    from .enhance import enhance, pipeline
    from .model import DCENet, DCENetPP, ModelConfig, build_model
    from .options import Options
    from .runtime.session import Session
    from .torch_enhance import Enhancer
    from .weights import WeightsError, convert_checkpoint, load_model, save_weights

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "enhance",
    "Options",
    "pipeline",
    "Session",
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

# The public names are imported on first use (PEP 562), not with the package: torch takes about a
# second to import, and ``zerodce --help`` or a torch-free caller should not pay it (docs/startup.md).
# enhance, Options, pipeline and Session need no torch; Enhancer, the models and the weights tools do.
_LAZY = {
    "enhance": ".enhance",
    "Enhancer": ".torch_enhance",
    "Options": ".options",
    "pipeline": ".enhance",
    "Session": ".runtime.session",
    "load_model": ".weights",
    "save_weights": ".weights",
    "convert_checkpoint": ".weights",
    "WeightsError": ".weights",
    "ModelConfig": ".model",
    "DCENet": ".model",
    "DCENetPP": ".model",
    "build_model": ".model",
    "apply_curves": ".curves",
    "le_curve": ".curves",
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(types.ModuleType):
    """Keeps ``zerodce.enhance`` the function when the submodule of the same name is first imported.

    Importing ``zerodce.enhance`` (from anywhere: ``from zerodce.enhance import Enhancer``) sets the
    package's attribute ``enhance`` to the submodule; with eager imports the function was bound after
    that, with lazy ones it is not, so the binding is redirected here.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name == "enhance" and isinstance(value, types.ModuleType):
            value = value.enhance
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
