from __future__ import annotations

import os
from pathlib import Path

import pytest

try:  # the light install (no torch) runs tests/light only; every other test needs torch
    import torch
except ImportError:
    torch = None
else:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

try:  # property tests: the same examples on every run (the light install has no hypothesis)
    from hypothesis import settings as _hypothesis_settings
except ImportError:
    pass
else:
    # Derandomized and without the saved-example database: the same commit gives the same result
    # on every run and every clone. Random exploration is scripts/fuzz.py's job; what it finds
    # becomes a fixed test case. HYPOTHESIS_PROFILE=explore draws fresh examples by hand.
    _hypothesis_settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
    _hypothesis_settings.register_profile("explore", database=None, print_blob=True)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

SHARED = Path(os.environ.get("ZERODCE_SHARED", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} not present")
    return SHARED


@pytest.fixture
def small_model():
    """A randomly initialised DCE-Net with curve maps large enough to matter."""
    from zerodce.model import DCENet, init_weights

    torch.manual_seed(0)
    net = DCENet()
    init_weights(net, torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.conv7.weight.mul_(20)  # visible curves, not all ~0
    return net.eval()


@pytest.fixture
def model_file(tmp_path, small_model):
    """``small_model`` saved as a weights file, for the command line."""
    from zerodce.weights import save_weights

    return save_weights(small_model, tmp_path / "m.safetensors")
