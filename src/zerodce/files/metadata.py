"""What an output carries from its source: the portable EXIF tags, and pixels in a working mode.

A source's EXIF block is not copied whole. A TIFF's first IFD is also its image structure (width,
strip offsets, photometric, sample format, colour map...), and a camera's block can hold values
that do not serialise; copying it gave outputs that no reader opens and wrong colours. An output
gets a new block of the descriptive tags only, each one checked by writing it, with orientation 1
(the pixels are upright). Pixels come to the pipeline in a working mode: RGB, RGBA, grey or 16-bit
grey, converted through the file's ICC profile where it has one (CMYK, Lab), so that no output
carries a profile of a colour space its pixels are not in.
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, ImageCms

__all__ = ["portable_exif", "working_mode", "orient", "ORIENTATION"]

log = logging.getLogger(__name__)

ORIENTATION = 0x0112
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
# IFD0 tags that describe the photo rather than how its pixels are stored.
_IFD0_TAGS = frozenset({
    270, 271, 272, 282, 283, 296, 305, 306, 315, 316, 33432,  # description, make, model, resolution, ...
    18246, 18249, 40091, 40092, 40093, 40094, 40095,  # rating, Windows title/comment/author/keywords/subject
})  # fmt: skip
# Exif sub-IFD tags that no longer hold for the output: its pixel size, the interoperability pointer.
_EXIF_DROPPED = frozenset({40962, 40963, 40965})
# Pillow modes the pipeline takes as they are.
_WORKING = frozenset({"RGB", "RGBA", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N"})


def _writes(tags: dict) -> bool:
    """Whether a block of these tags serialises (Pillow raises on values of the wrong type)."""
    exif = Image.Exif()
    exif.update(tags)
    try:
        exif.tobytes()
    except Exception as exc:  # noqa: BLE001 - struct.error, TypeError...: whatever a hostile value raises
        log.debug("EXIF tag dropped: %s", exc)
        return False
    return True


def _checked(tags: dict, wrap: int | None = None) -> dict:
    """The entries of ``tags`` that serialise, each tested alone (inside sub-IFD ``wrap``)."""
    return {k: v for k, v in tags.items() if _writes({wrap: {k: v}} if wrap else {k: v})}


def portable_exif(source: Image.Image | None) -> bytes | None:
    """The EXIF block an output of ``source`` gets: its descriptive IFD0 tags, its Exif and GPS
    sub-IFDs (less the pixel size), orientation 1; ``None`` when nothing is left.

    A block that cannot be parsed at all is dropped with a warning: the photo is still enhanced.

    Example:
        >>> im = Image.new("RGB", (4, 2))
        >>> exif = Image.Exif()
        >>> exif[271], exif[ORIENTATION], exif[256] = "Cam", 6, 999  # 256: a structure tag (width)
        >>> im.info["exif"] = exif.tobytes()
        >>> out = Image.Exif()
        >>> out.load(portable_exif(im))
        >>> sorted(out.items())
        [(271, 'Cam'), (274, 1)]
    """
    if source is None:
        return None
    try:
        exif = source.getexif()
        tags = {k: v for k, v in exif.items() if k in _IFD0_TAGS}
        sub = {k: v for k, v in exif.get_ifd(_EXIF_IFD).items() if k not in _EXIF_DROPPED}
        gps = dict(exif.get_ifd(_GPS_IFD))
    except Exception as exc:  # noqa: BLE001 - a hostile block may raise anything from Pillow's parser
        name = getattr(source, "filename", None) or "image"
        log.warning("%s: unreadable EXIF dropped (%s)", name, (str(exc) or type(exc).__name__).splitlines()[0])
        return None
    if not (tags or sub or gps):
        return None
    out = Image.Exif()
    out.update(_checked(tags))
    out[ORIENTATION] = 1
    if sub := _checked(sub, _EXIF_IFD):
        out[_EXIF_IFD] = sub
    if gps := _checked(gps, _GPS_IFD):
        out[_GPS_IFD] = gps
    return out.tobytes()


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``pixels`` (H, W, ...) as displayed for an EXIF ``orientation`` (1..8), as
    :func:`PIL.ImageOps.exif_transpose` does to a PIL image; other values leave them as they are.

    Example:
        >>> a = np.arange(6).reshape(2, 3)
        >>> orient(a, 6).tolist()  # rotate 90 degrees clockwise for display
        [[3, 0], [4, 1], [5, 2]]
    """
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a[::-1].swapaxes(0, 1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: a[:, ::-1].swapaxes(0, 1),
    }
    op = ops.get(orientation)
    return pixels if op is None else np.ascontiguousarray(op(pixels))


def _srgb(im: Image.Image, profile: ImageCms.ImageCmsProfile, mode: str) -> Image.Image:
    out = ImageCms.profileToProfile(im, profile, ImageCms.createProfile("sRGB"), outputMode=mode)
    assert out is not None  # noqa: S101 - profileToProfile returns None only with inPlace=True
    return out


def _float_grey(im: Image.Image) -> Image.Image:
    """A float grey image (mode F) as 16-bit grey: [0, 1] data (the usual float convention) scaled by
    65535, [0, 255] data by 257, larger values clipped at 65535; NaN and negatives are black."""
    a = np.nan_to_num(np.asarray(im, np.float64), nan=0.0, posinf=65535.0, neginf=0.0)
    top = float(a.max(initial=0.0))
    scale = 65535.0 if top <= 1.0 else 257.0 if top <= 255.0 else 1.0
    return Image.fromarray(np.clip(a * scale, 0, 65535).round().astype(np.uint16))


def _through(im: Image.Image, profile: ImageCms.ImageCmsProfile) -> Image.Image | None:
    """CMYK or Lab ``im`` in sRGB through ``profile``. A profile LittleCMS cannot use (a damaged one
    parses, then fails to build a transform) is warned about and left out: Lab then goes through
    the standard D50 Lab profile, CMYK gets None (Pillow's formula follows)."""
    try:
        return _srgb(im, profile, "RGB")
    except (ImageCms.PyCMSError, ValueError, OSError) as exc:
        log.warning("a %s %s's ICC profile cannot be applied (%s); converted without it", im.mode, im.format, exc)
    return _srgb(im, ImageCms.createProfile("LAB"), "RGB") if im.mode == "LAB" else None


def _by_formula(im: Image.Image, info: dict) -> Image.Image:
    mode = im.mode
    if mode == "F":
        return _float_grey(im)
    if mode in ("1", "La"):
        return im.convert("LA" if mode == "La" else "L")
    if mode in ("P", "PA"):
        return im.convert("RGBA" if mode == "PA" or "transparency" in info else "RGB")
    if mode == "RGBa":
        return im.convert("RGBA")
    return im.convert("RGB")  # CMYK without a profile, YCbCr, HSV, RGBX, I;16 variants Pillow knows ...


def working_mode(im: Image.Image) -> Image.Image:
    """``im`` in a mode the pipeline takes (RGB, RGBA, L, LA, 16- or 32-bit grey), its ``info``
    kept; CMYK and Lab converted to sRGB through the file's ICC profile (or Pillow's formula
    without one), and that profile dropped, since it no longer describes the pixels.

    Raises:
        ValueError: a mode that has no conversion to RGB.
    """
    mode = im.mode
    if mode in _WORKING:
        return im
    info = dict(im.info)
    icc = info.get("icc_profile")
    profile = None
    if icc and mode in ("CMYK", "LAB"):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if profile.profile.xcolor_space.strip() != ("CMYK" if mode == "CMYK" else "Lab"):
                profile = None  # a profile of another colour space: it cannot describe these pixels
        except (OSError, ImageCms.PyCMSError):
            profile = None
    if mode == "LAB" and profile is None:
        profile = ImageCms.createProfile("LAB")  # Pillow's LAB mode is CIE L*a*b* (D50)
    out = _through(im, profile) if profile is not None else None
    if out is None:
        out = _by_formula(im, info)
    if mode in ("CMYK", "LAB", "YCbCr", "HSV"):
        info.pop("icc_profile", None)
    info.pop("transparency", None)
    out.info = info  # not the conversion's own: LittleCMS tags its result with its sRGB profile
    out.format = im.format  # the source format names the output's when its suffix does not
    return out
