"""HTTP API and web page: ``zerodce serve`` (FastAPI + uvicorn, extra ``zerodce[serve]``).

- ``GET /`` a page to upload a photo, compare before/after with a slider, adjust the options and
  download the result; ``GET /docs`` the OpenAPI docs; ``GET /healthz`` liveness and queue state.
- ``POST /v1/enhance``: multipart ``file`` plus form options ``model``, ``preset``, ``paper``, ``strength``,
  ``exposure``, ``metering``, ``balance``, ``denoise``, ``denoiser``, ``format``, ``quality`` -> the
  enhanced image (same format as
  the upload unless ``format`` says otherwise), ICC profile and EXIF carried.

Limits (:class:`Limits`), each answered with a one-line JSON ``detail``: uploads over
``max_upload_bytes`` -> 413; images over ``max_pixels`` -> 413 (checked from the header, before
decoding); undecodable input -> 400; bad options -> 422; more than ``max_jobs`` running plus
``max_queue`` waiting -> 503 at once (a bounded queue, never an unbounded backlog); a job over
``timeout_s`` -> 504. Enhancement runs in worker threads; the event loop only parses and routes.
"""

import asyncio
import functools
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .io import FORMATS, ImageReadError, encode_image, read_image

__all__ = ["Limits", "create_app", "serve"]

_MEDIA = {"JPEG": "image/jpeg", "PNG": "image/png", "TIFF": "image/tiff", "WEBP": "image/webp", "BMP": "image/bmp"}


@dataclass(frozen=True)
class Limits:
    """Service limits (defaults sized for a 2-core laptop)."""

    max_upload_bytes: int = 40 * 2**20
    max_pixels: int = 40_000_000
    max_jobs: int = 1
    max_queue: int = 8
    timeout_s: float = 120.0


class _Gate:
    """At most ``jobs`` running and ``queue`` waiting; anything beyond is refused immediately."""

    def __init__(self, jobs: int, queue: int) -> None:
        self.capacity = jobs + queue
        self.admitted = 0
        self.lock = threading.Lock()
        self.run = asyncio.Semaphore(jobs)

    def try_enter(self) -> bool:
        with self.lock:
            if self.admitted >= self.capacity:
                return False
            self.admitted += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.admitted -= 1


def create_app(default_model: str = "zerodce", limits: Limits | None = None, models: tuple[str, ...] | None = None):  # noqa: ANN201
    """Build the FastAPI application."""
    from fastapi import FastAPI, File, Form, HTTPException, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from . import __version__
    from .enhance import Enhancer, enhance
    from .weights import BUNDLED_MODELS

    limits = limits or Limits()
    allowed = models or tuple(BUNDLED_MODELS)
    app = FastAPI(title="zerodce", version=__version__, description="Low-light enhancement with Zero-DCE.")
    gate = _Gate(limits.max_jobs, limits.max_queue)
    served = {"ok": 0, "failed": 0}

    @functools.lru_cache(maxsize=8)
    def enhancer(model: str, options: tuple[tuple[str, object], ...]) -> Enhancer:
        return Enhancer(model, **dict(options))  # type: ignore[arg-type]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (resources.files("zerodce") / "static" / "index.html").read_text()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "version": __version__, "models": list(allowed), "in_flight": gate.admitted, **served}

    @app.post(
        "/v1/enhance",
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}, 400: {}, 413: {}, 422: {}, 503: {}, 504: {}},
    )
    async def enhance_endpoint(
        file: UploadFile = File(..., description="the photo (JPEG, PNG, TIFF, WebP, BMP, HEIC)"),  # noqa: B008
        model: str = Form(default_model),
        preset: str | None = Form(None, description="natural (default), bright or night"),
        paper: bool = Form(False, description="the paper's method exactly, nothing added (no other option)"),
        strength: float | None = Form(None, ge=0.0, le=1.0, description="0 .. 1, how much of the effect (default 1)"),
        exposure: float | None = Form(None, gt=0.0, lt=1.0, description="target brightness, e.g. 0.3 .. 0.7"),
        metering: str | None = Form(None, description="what exposure measures: mean, linear or centre (camera-like)"),
        balance: float | None = Form(None, ge=0.0, le=1.0, description="share of the colour cast removed, 0 .. 1"),
        denoise: float | None = Form(None, ge=0.0, le=10.0, description="denoising strength (default: the preset's)"),
        denoiser: str | None = Form(None, description="guided (fast filter) or learned (denoising network)"),
        format: str | None = Form(None, description="output format: jpeg, png, tiff, webp (default: the input's)"),
        quality: int = Form(95, ge=1, le=100),
    ) -> Response:
        from .adjust import METERINGS
        from .denoiser import DENOISERS
        from .presets import PRESETS

        if model not in allowed:
            raise HTTPException(422, f"unknown model {model!r}; available: {list(allowed)}")
        if preset is not None and preset not in PRESETS:
            raise HTTPException(422, f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
        if denoiser is not None and denoiser not in DENOISERS:
            raise HTTPException(422, f"unknown denoiser {denoiser!r}; expected one of {list(DENOISERS)}")
        if metering is not None and metering not in METERINGS:
            raise HTTPException(422, f"unknown metering {metering!r}; expected one of {list(METERINGS)}")
        if format is not None and format.lower() not in FORMATS:
            raise HTTPException(422, f"unknown format {format!r}; expected one of {sorted(FORMATS)}")
        given = {"preset": preset, "strength": strength, "exposure": exposure, "metering": metering}
        given.update(balance=balance, denoise=denoise, denoiser=denoiser, paper=paper or None)
        options = tuple((k, v) for k, v in given.items() if v is not None)
        try:
            enhancer(model, options)  # built (and cached) before the upload is read: option errors are 422
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        data = await file.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise HTTPException(413, f"upload larger than {limits.max_upload_bytes} bytes")
        if not gate.try_enter():
            raise HTTPException(503, "server busy: too many requests queued, retry later")
        try:
            name = Path(file.filename or "upload").name
            try:
                im = read_image(data, max_pixels=limits.max_pixels, name=name)
            except ImageReadError as exc:
                status = 413 if "pixel limit" in str(exc) else 400
                raise HTTPException(status, str(exc)) from None
            fmt = FORMATS[format.lower()][0] if format else (im.format if im.format in _MEDIA else "PNG")
            enh = enhancer(model, options)

            def work() -> bytes:
                return encode_image(enhance(im, enh), fmt, source=im, quality=quality)

            async with gate.run:
                try:
                    body = await asyncio.wait_for(asyncio.to_thread(work), limits.timeout_s)
                except TimeoutError:
                    raise HTTPException(504, f"enhancement took longer than {limits.timeout_s:.0f} s") from None
                except (ValueError, TypeError, OSError) as exc:
                    raise HTTPException(400, f"{name}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
        except HTTPException:
            served["failed"] += 1
            raise
        finally:
            gate.leave()
        served["ok"] += 1
        stem = Path(name).stem or "photo"
        suffix = FORMATS[fmt.lower()][1] if fmt.lower() in FORMATS else ".png"
        return Response(
            body,
            media_type=_MEDIA.get(fmt, "application/octet-stream"),
            headers={"Content-Disposition": f'attachment; filename="{stem}_enhanced{suffix}"'},
        )

    @app.exception_handler(HTTPException)
    async def one_line(_request, exc: HTTPException) -> JSONResponse:  # noqa: ANN001
        return JSONResponse({"detail": str(exc.detail).splitlines()[0]}, status_code=exc.status_code)

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, model: str = "zerodce", limits: Limits | None = None) -> None:
    """Run the service with uvicorn (blocking)."""
    import uvicorn

    uvicorn.run(create_app(model, limits), host=host, port=port, log_level="info")
