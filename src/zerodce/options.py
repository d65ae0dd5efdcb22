"""One options model for every surface: :class:`Options`, parsed and validated in one place.

The CLI, the web service's form, ``zerodce evaluate`` method specs, the Ray path and the Python API
all describe an enhancement with the same frozen :class:`Options`; :meth:`Options.parse` turns
strings (a form field, a ``key=value`` spec, a command-line value) into one, and every rule about
which options combine (the paper's method takes no controls, a denoiser needs a strength, int8 needs
a quantised graph, ...) lives in :meth:`Options.__post_init__`, so no surface can disagree with
another. An options object has two parts:

- **the session** (:meth:`Options.session_key`): model, backend, precision, device and tile. A
  loaded pipeline is built once per session key (weights read, graphs loaded);
- **the controls** (:meth:`Options.controls`): preset, strength, exposure, metering, balance and
  the denoiser, resolved against the preset into a :class:`Controls` that is applied per call.

Torch-free: the CLI parses options before anything heavy is imported.

Example:
    >>> o = Options.parse({"preset": "night", "strength": "0.5", "tile": "256"})
    >>> o.strength, o.tile, o.controls().exposure, o.controls().denoiser
    (0.5, 256, 0.32, 'learned')
    >>> Options(paper=True, balance=0.5)
    Traceback (most recent call last):
    ...
    ValueError: balance: no effect with paper=True (the paper's method, nothing added)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .presets import (
    BACKENDS,
    DEFAULT_DENOISE,
    DEFAULT_PRESET,
    DENOISERS,
    LEARNED_STRENGTH,
    METERINGS,
    PRECISIONS,
    PRESETS,
    get_preset,
)

__all__ = [
    "Options",
    "Controls",
    "BoundControls",
    "BUNDLED_MODELS",
    "DEFAULT_MODEL",
    "INT8_MODELS",
    "CONTROL_FIELDS",
    "SESSION_FIELDS",
]

# Bundled weights (src/zerodce/models/); zerodce.weights re-exports these.
BUNDLED_MODELS = {"zerodce": "zerodce.safetensors", "fast": "fast.safetensors"}
DEFAULT_MODEL = "zerodce"
# Statically quantised curve-map graphs shipped beside the weights (scripts/quantize.py).
INT8_MODELS = {"zerodce": "zerodce-int8.onnx"}

TileArg = int | Literal["auto"] | None
CONTROL_FIELDS = ("preset", "paper", "strength", "exposure", "metering", "balance", "denoise", "denoiser")
SESSION_FIELDS = ("model", "backend", "precision", "device", "tile")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Controls:
    """The controls of one enhancement, resolved against the preset (what the pipeline applies).

    ``preset`` is ``"paper"`` for the paper's method (then nothing else applies). ``exposure`` is the
    target level (``None``: the model's own tone), ``adaptive`` whether the do-no-harm rule scales the
    effect down on well-exposed inputs (presets; an explicit exposure is honoured on every image).
    """

    preset: str
    paper: bool
    strength: float
    exposure: float | None
    adaptive: bool
    metering: str
    balance: float
    denoiser: str
    denoise: float

    def as_dict(self) -> dict[str, object]:
        """For reports and logs (``Enhancer.options()``)."""
        if self.paper:
            return {"preset": self.preset}
        d = dataclasses.asdict(self)
        del d["paper"]
        return d


@dataclass(frozen=True)
class Options:
    """Everything that describes one enhancement; ``None`` means the preset's value (or the default).

    Args:
        preset: ``"natural"`` (default), ``"bright"`` or ``"night"`` (:data:`zerodce.presets.PRESETS`).
        paper: the paper's method exactly (per-channel curves, nothing added); takes no control.
        strength: 0..1, how much of the effect (default 1).
        exposure: target brightness in (0, 1) as ``metering`` measures it, honoured on every image.
        metering: ``"mean"``, ``"linear"`` or ``"centre"``.
        balance: 0..1, share of the colour cast removed.
        denoise: 0..10, the denoiser's strength (0: off).
        denoiser: ``"guided"`` or ``"learned"``.
        model: bundled name (``"zerodce"``, ``"fast"``) or a weights path.
        backend: ``"auto"``, ``"onnxruntime"`` or ``"torch"``.
        precision: ``"fp32"``, ``"bf16"`` (torch) or ``"int8"`` (onnxruntime, bundled ``zerodce``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (anything but the CPU runs on torch).
        tile: tile side (>= 16), ``None`` (never tile) or ``"auto"`` (from the memory available).
    """

    preset: str | None = None
    paper: bool = False
    strength: float | None = None
    exposure: float | None = None
    metering: str | None = None
    balance: float | None = None
    denoise: float | None = None
    denoiser: str | None = None
    model: str = DEFAULT_MODEL
    backend: str = "auto"
    precision: str = "fp32"
    device: str = "cpu"
    tile: TileArg = "auto"

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise types once, here
        for name in ("strength", "exposure", "balance", "denoise"):
            v = getattr(self, name)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ValueError(f"{name} must be a number, got {v!r}")
                set_(self, name, float(v))
        set_(self, "model", str(self.model))
        set_(self, "device", str(self.device))
        set_(self, "paper", bool(self.paper))
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        given = {k: getattr(self, k) for k in CONTROL_FIELDS if k != "paper"}
        if self.paper and any(v is not None for v in given.values()):
            names = ", ".join(k for k, v in given.items() if v is not None)
            raise ValueError(f"{names}: no effect with paper=True (the paper's method, nothing added)")
        _check_range("strength", self.strength, 0.0, 1.0)
        if self.exposure is not None and not 0.0 < self.exposure < 1.0:
            raise ValueError(f"exposure must be in (0, 1), got {self.exposure!r}")
        _check_range("balance", self.balance, 0.0, 1.0)
        _check_range("denoise strength", self.denoise, 0.0, 10.0)
        if self.denoiser is not None and self.denoiser not in DENOISERS:
            raise ValueError(f"denoiser must be one of {DENOISERS}, got {self.denoiser!r}")
        if self.metering is not None and self.metering not in METERINGS:
            raise ValueError(f"metering must be one of {METERINGS}, got {self.metering!r}")
        if self.denoiser is not None and self.denoise == 0.0:
            raise ValueError(f"denoiser {self.denoiser!r}: no effect with denoise 0")
        if isinstance(self.tile, int) and not isinstance(self.tile, bool) and self.tile == 0:
            object.__setattr__(self, "tile", None)  # 0: no tiles, as --tile 0 (Real-ESRGAN's convention)
        t = self.tile
        if t is not None and t != "auto" and (isinstance(t, bool) or not isinstance(t, int) or t < 16):
            raise ValueError(f"tile must be auto, none or an integer >= 16, got {t!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; expected one of {BACKENDS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; expected one of {PRECISIONS}")
        cpu = self.device == "cpu"
        if self.precision == "int8":
            if self.backend == "torch" or not cpu:
                raise ValueError("int8 runs on onnxruntime on the CPU")
            if self.model not in INT8_MODELS:
                raise ValueError(
                    f"int8 precision needs a quantised graph, which only the {', '.join(sorted(INT8_MODELS))} "
                    f"model has: use --model {DEFAULT_MODEL} or drop --precision int8 "
                    "(scripts/quantize.py makes one for other weights)"
                )
        if self.precision == "bf16" and self.backend == "onnxruntime":
            raise ValueError("bf16 runs on the PyTorch backend (--backend torch or auto)")
        if self.backend == "onnxruntime" and not cpu:
            raise ValueError(f"the onnxruntime backend runs on the CPU, not {self.device!r}")

    # ---- construction from strings ---------------------------------------------------------------
    @classmethod
    def parse(cls, values: Mapping[str, object]) -> Options:
        """Options from strings (or values): a form, a ``key=value`` spec, parsed CLI arguments.

        ``None`` and missing keys take the default; unknown keys are a ValueError naming them.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        kw: dict[str, object] = {}
        for k, v in values.items():
            if v is None:
                continue
            if k in ("strength", "exposure", "balance", "denoise"):
                kw[k] = _number(k, v)
            elif k == "paper":
                kw[k] = _flag(k, v)
            elif k == "tile":
                kw[k] = _tile(v)
            else:
                kw[k] = str(v)
        return cls(**kw)  # type: ignore[arg-type]

    def controls_onto(self, session: Options) -> Options:
        """``session``'s session (model, backend, precision, device, tile) with these controls: what a
        loaded pipeline binds (``with_options``). A session field set here to something other than
        ``session``'s and the default names another pipeline: a ValueError says so.

        Example:
            >>> Options(preset="night").controls_onto(Options(model="fast")).model
            'fast'
        """
        default = Options()
        for f in SESSION_FIELDS:
            mine, theirs = getattr(self, f), getattr(session, f)
            if mine != theirs and mine != getattr(default, f):
                raise ValueError(
                    f"{f}={mine!r}: this pipeline was loaded with {f}={theirs!r}; "
                    "load one for it with zerodce.pipeline(options)"
                )
        return session.replace(**{k: getattr(self, k) for k in CONTROL_FIELDS})

    def replace(self, **changes: object) -> Options:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # ---- the two parts -----------------------------------------------------------------------------
    def session_key(self) -> tuple[str, str, str, str, TileArg]:
        """What a loaded pipeline depends on: (model, backend, precision, device, tile)."""
        return (self.model, self.backend, self.precision, self.device, self.tile)

    def control_options(self) -> dict[str, object]:
        """The controls given explicitly (not ``None``), e.g. for ``Enhancer(**...)``."""
        out = {k: getattr(self, k) for k in CONTROL_FIELDS if getattr(self, k) is not None}
        if not self.paper:
            out.pop("paper")
        return out

    def controls(self) -> Controls:
        """The controls resolved against the preset (the rules of the README's options table)."""
        if self.paper:
            return Controls("paper", True, 1.0, None, False, "mean", 0.0, "guided", 0.0)
        p = get_preset(self.preset or DEFAULT_PRESET)
        denoise = self.denoise
        if denoise is None:
            if self.denoiser is None or self.denoiser == p.denoiser:
                denoise = p.denoise
            else:
                denoise = DEFAULT_DENOISE if self.denoiser == "guided" else LEARNED_STRENGTH
        return Controls(
            preset=p.name,
            paper=False,
            strength=1.0 if self.strength is None else self.strength,
            exposure=self.exposure if self.exposure is not None else p.exposure,
            adaptive=p.adaptive and self.exposure is None,
            metering=self.metering or p.metering,
            balance=p.balance if self.balance is None else self.balance,
            denoiser=self.denoiser or p.denoiser,
            denoise=float(denoise),
        )


class BoundControls:
    """What every pipeline (the light ``Session``, the PyTorch ``Enhancer``) keeps of its bound
    options: ``options_``, the resolved ``controls`` and one attribute per control, in one place."""

    options_: Options
    controls: Controls

    def _bind_controls(self, options: Options) -> None:
        c = options.controls()
        self.options_, self.controls = options, c
        self.preset, self.paper, self.strength = c.preset, c.paper, c.strength
        self.exposure = options.exposure  # explicit: honoured on every image
        self.level, self.adaptive = c.exposure, c.adaptive
        self.metering, self.balance = c.metering, c.balance
        self.denoiser, self.denoise, self.denoise_radius = c.denoiser, c.denoise, 2

    def _rebound(self, options: Options | None, controls: dict[str, object]) -> Options:
        """The options ``with_options(options, **controls)`` binds: this pipeline's session, their controls."""
        options = options if options is not None else self.options_
        if controls:
            options = options.replace(**controls)
        return options.controls_onto(self.options_)

    def options(self) -> dict[str, object]:
        """The resolved controls (preset values with the explicit options applied), for reports and logs."""
        return self.controls.as_dict()


def _check_range(name: str, v: float | None, lo: float, hi: float) -> None:
    if v is not None and not lo <= v <= hi:
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got {v!r}")


def _number(name: str, v: object) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        raise ValueError(f"{name} must be a number, got {v!r}") from None


def _flag(name: str, v: object) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, got {v!r}")


def _tile(v: object) -> TileArg:
    if v is None or isinstance(v, int) and not isinstance(v, bool):
        return v  # type: ignore[return-value]  # 0 becomes None in Options itself
    s = str(v).strip().lower()
    if s == "auto":
        return "auto"
    if s in ("none", "off"):
        return None
    try:
        return int(s)
    except ValueError:
        raise ValueError(f"tile must be auto, none or an integer >= 16, got {v!r}") from None
