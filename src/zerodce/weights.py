"""Self-describing weights: safetensors with the model config in the metadata; safe conversion.

A zerodce weights file is a ``.safetensors`` file whose metadata holds ``zerodce.format``
(the layout version) and ``zerodce.config`` (the :class:`~zerodce.model.ModelConfig` as JSON),
so :func:`load_model` needs nothing else. Pickle checkpoints (``.pth``) are only ever read with
``torch.load(weights_only=True)``, which refuses to run code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from .files._atomic import atomic_write_bytes
from .model import ModelConfig, build_model

__all__ = [
    "WeightsError",
    "BUNDLED_MODELS",
    "save_weights",
    "load_model",
    "load_state_dict",
    "convert_authors_state_dict",
    "convert_checkpoint",
    "bundled_path",
    "weights_sha256",
]

FORMAT_VERSION = "1"
from .errors import WeightsError  # noqa: E402, F401 - torch-free home, re-exported
from .options import BUNDLED_MODELS, DEFAULT_MODEL  # noqa: E402 - torch-free home of the names


def save_weights(
    model: nn.Module, path: str | Path, metadata: Mapping[str, str] | None = None, config_key: str = "zerodce.config"
) -> Path:
    """Write ``model``'s weights and config to ``path`` atomically (temporary file, then rename).

    ``config_key`` names the metadata entry holding ``model.config`` as JSON: ``zerodce.config`` for
    curve models, ``zerodce.denoiser`` for the learned denoiser (:mod:`zerodce.denoiser`).
    """
    path = Path(path)
    config: ModelConfig = model.config  # type: ignore[assignment]
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update({"zerodce.format": FORMAT_VERSION, config_key: json.dumps(config.to_dict())})
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def bundled_path(name: str) -> Path:
    """Path of a model shipped inside the package (``"zerodce"``)."""
    if name not in BUNDLED_MODELS:
        raise WeightsError(f"unknown bundled model {name!r}; available: {sorted(BUNDLED_MODELS)}")
    return Path(str(resources.files("zerodce") / "models" / BUNDLED_MODELS[name]))


def resolve_model(model: str | Path) -> Path:
    """A bundled model name or a path -> the weights file path."""
    return bundled_path(str(model)) if str(model) in BUNDLED_MODELS else Path(model)


def weights_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a weights file's bytes: what a prebuilt ONNX graph records as its source."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _canonical(state: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Unwrap ``state_dict``/``model`` containers and strip DataParallel ``module.`` prefixes."""
    for key in ("state_dict", "model", "params", "params_ema"):
        inner = state.get(key) if isinstance(state, Mapping) else None
        if isinstance(inner, Mapping):
            state = inner
            break
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"entry {k!r} is not a tensor ({type(v).__name__})")
        out[k.removeprefix("module.")] = v
    return out


def convert_authors_state_dict(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """Map the authors' ``e_conv1..e_conv7`` state dict (Zero-DCE or Zero-DCE++) to this layout.

    The authors apply curves as ``x + A (x^2 - x)``; this project uses the paper's
    ``x + A x (1 - x)``. Since ``A = tanh(conv7(.))`` and tanh is odd, negating conv7's last
    weight and bias turns one convention into the other exactly.
    """
    state = _canonical(state)
    plus = any("depth_conv" in k for k in state)
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if not k.startswith("e_conv"):
            raise WeightsError(f"unexpected key {k!r} in an authors' checkpoint")
        nk = k.removeprefix("e_")
        nk = nk.replace(".depth_conv.", ".depth.").replace(".point_conv.", ".point.")
        out[nk] = v.detach().clone().float()
    last = "conv7.point." if plus else "conv7."
    for suffix in ("weight", "bias"):
        if last + suffix not in out:
            raise WeightsError(f"authors' checkpoint lacks {'e_' + last + suffix}")
        out[last + suffix] = -out[last + suffix]
    config = ModelConfig(arch="dcenet++", scale=12) if plus else ModelConfig()
    return out, config


def _read_any(path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig | None, dict[str, str]]:
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), "pt") as f:
                meta = dict(f.metadata() or {})
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
        if "zerodce.config" not in meta:
            raise WeightsError(f"{path}: safetensors file has no zerodce.config metadata")
        try:
            cfg_dict = json.loads(meta["zerodce.config"])
            if not isinstance(cfg_dict, dict):
                raise TypeError("config is not a JSON object")
            config = ModelConfig.from_dict(cfg_dict)
        except (ValueError, TypeError) as exc:
            raise WeightsError(f"{path}: invalid zerodce.config metadata ({exc})") from None
        except RecursionError:  # json.loads of "[[[[..." thousands deep
            raise WeightsError(f"{path}: invalid zerodce.config metadata (nested too deeply)") from None
        return tensors, config, meta
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: refused to load checkpoint (weights_only): {first}") from None
    if not isinstance(raw, Mapping):
        raise WeightsError(f"{path}: checkpoint is not a state dict")
    state = _canonical(raw)
    if any(k.startswith("e_conv") for k in state):
        converted, config = convert_authors_state_dict(state)
        return converted, config, {}
    return state, None, {}


def load_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Load ``state`` strictly, with one clear error for missing, extra, mis-shaped or non-finite tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}")
        if extra:
            parts.append(f"unexpected {extra[:3]}")
        if wrong:
            k = wrong[0]
            parts.append(f"shape of {k} is {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}")
        raise WeightsError(f"{source} does not match architecture {model.config.arch}: " + "; ".join(parts))  # type: ignore[union-attr]
    # NaN or inf weights turn every image black or white without an error: refuse them here, where
    # every path (load_model, convert, the trainer's resume) passes.
    bad = next((k for k in sorted(state) if not bool(torch.isfinite(state[k]).all())), None)
    if bad is not None:
        raise WeightsError(f"{source}: {bad} holds NaN or infinite values")
    model.load_state_dict({k: v.float() for k, v in state.items()})


def load_model(model: str | Path = DEFAULT_MODEL, device: str | torch.device = "cpu") -> nn.Module:
    """Load a model by bundled name (``"zerodce"``) or path (``.safetensors`` or ``.pth``), in eval mode.

    Example:
        >>> net = load_model("zerodce")
        >>> net.config.arch, sum(p.numel() for p in net.parameters())
        ('dcenet', 79416)
    """
    path = bundled_path(str(model)) if str(model) in BUNDLED_MODELS else Path(model)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    state, config, _ = _read_any(path)
    if config is None:
        config = ModelConfig()
    net = build_model(config)
    load_state_dict(net, state, str(path))
    return net.to(device).eval()


def convert_checkpoint(src: str | Path, dst: str | Path, scale: int | None = None) -> Path:
    """Convert a checkpoint (the authors' ``.pth`` or another zerodce file) to zerodce safetensors."""
    src, dst = Path(src), Path(dst)
    state, config, _ = _read_any(src)
    config = config or ModelConfig()
    if scale is not None:
        config = ModelConfig(**{**config.to_dict(), "scale": scale})
    net = build_model(config)
    load_state_dict(net, state, str(src))
    return save_weights(net, dst, {"zerodce.source": src.name})
