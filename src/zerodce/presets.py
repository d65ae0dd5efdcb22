"""Named settings a photographer chooses without knowing the meters: ``--preset NAME``.

Each preset is a full set of controls (:class:`Preset`); an option given explicitly (``exposure=``,
``balance=``, ...) replaces the preset's value. ``natural`` is the default. The paper's method
itself (per-channel curves, nothing added) is not a preset but ``Enhancer(paper=True)`` /
``--paper``: it can shift hue (docs/quality/), so it is there for comparison. The levels were chosen
by 5-fold cross-validation on lol-val100 and checked for false colour on real and well-exposed
photos (``scripts/quality_report.py``, docs/quality/): see :data:`PRESETS` for what each is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Preset",
    "PRESETS",
    "DEFAULT_PRESET",
    "get_preset",
    "METERINGS",
    "DENOISERS",
    "LEARNED_STRENGTH",
    "DEFAULT_DENOISE",
    "BACKENDS",
    "PRECISIONS",
]

# The choices a preset (and --metering, --denoiser) names; defined here, torch-free, so that the
# CLI's parser is built without importing torch. zerodce.adjust and zerodce.denoiser re-export them.
Metering = Literal["mean", "linear", "centre"]
METERINGS: tuple[Metering, ...] = ("mean", "linear", "centre")
DENOISERS = ("guided", "learned")  # zerodce.adjust's guided filter, or zerodce.denoiser's network
BACKENDS = ("auto", "torch", "onnxruntime")  # zerodce.backends: where the curve maps are computed
PRECISIONS = ("fp32", "bf16", "int8")
DEFAULT_DENOISE = 2.0  # the guided filter's strength when chosen without one (presets set their own)
LEARNED_STRENGTH = 2.0  # the learned denoiser's default strength, chosen by validation on lol-val100 (README)


@dataclass(frozen=True)
class Preset:
    """One named set of controls.

    Attributes:
        name: the name given to ``--preset``.
        help: one line for ``--help``.
        exposure: target brightness as ``metering`` measures it; ``None``: the model's own.
        metering: what ``exposure`` measures (:func:`zerodce.adjust.metered`).
        balance: share of the colour cast removed, 0..1 (bounded: :func:`zerodce.tone.cast_gains`).
        denoiser: ``"guided"`` or ``"learned"``; ``denoise`` its strength (0: off).
        adaptive: scale the effect down on inputs that are already well exposed
            (:func:`zerodce.tone.auto_strength`); never darker than the input.
    """

    name: str
    help: str
    exposure: float | None = None
    metering: Metering = "centre"
    balance: float = 0.0
    denoiser: Literal["guided", "learned"] = "guided"
    denoise: float = 0.0
    adaptive: bool = True


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "natural",
            "dark photos brightened to a natural level, colours and well-exposed photos kept",
            exposure=0.46,
            metering="centre",
            balance=0.5,
            denoiser="guided",
            denoise=3.0,
        ),
        Preset(
            "bright",
            "brighter, for very dark indoor photos (the best LOL scores)",
            exposure=0.5,
            metering="centre",
            balance=0.5,
            denoiser="learned",
            denoise=2.0,
        ),
        Preset(
            "night",
            "night scenes with lamps: shadows lifted less, lamp colours kept, stronger denoising",
            exposure=0.32,
            metering="centre",
            balance=0.0,
            denoiser="learned",
            denoise=3.0,
        ),
    )
}
DEFAULT_PRESET = "natural"


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (a :class:`Preset` is returned as is); a ValueError listing the choices otherwise."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
