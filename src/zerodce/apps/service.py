"""HTTP API and web page: ``zerodce serve`` (FastAPI + uvicorn, extra ``zerodce[serve]``).

- ``GET /`` a page to upload a photo, compare before/after with a slider, adjust the options and
  download the result; ``GET /openapi.json`` the API's OpenAPI description (no ``/docs`` page: the
  Swagger UI would load its scripts from a CDN, which an offline machine cannot reach);
  ``GET /healthz`` liveness and queue state.
- ``POST /v1/enhance``: multipart ``file`` plus form options ``model``, ``preset``, ``paper``, ``strength``,
  ``exposure``, ``metering``, ``balance``, ``denoise``, ``denoiser``, ``format``, ``quality`` -> the
  enhanced image (same format as
  the upload unless ``format`` says otherwise), ICC profile and EXIF carried. The options are parsed
  by :meth:`zerodce.options.Options.parse` (the CLI's names, values, rules and messages) over the
  server's defaults; each request gets its enhancer from :func:`zerodce.enhance.pipeline`: one loaded
  model per session (model, backend, precision, device, tile), the request's controls bound per call.

Limits (:class:`Limits`), each answered with a one-line JSON ``detail``: request bodies over
``max_upload_bytes`` -> 413, refused from ``Content-Length`` or, for chunked uploads, as soon as the
count crosses the limit (the rest is never read); images over ``max_pixels`` -> 413 (checked from
the header, before decoding); undecodable input -> 400; a 16-bit colour PNG/TIFF on a server without
the ``16bit`` extra -> 415 (with it, 16 bits come back, as the CLI writes them); bad options -> 422;
more than ``max_jobs`` running plus ``max_queue`` admitted -> 503 at once, before a byte of the body
is read (a request holds its slot from its headers on, so at most ``max_jobs + max_queue`` bodies
are ever in memory); a job over ``timeout_s`` -> 504, and its work stops (below); a client that
disconnects stops its job the same way. Connections: request headers must be complete within
``header_timeout_s``, a request body may not stall for ``idle_timeout_s`` and must be complete
within ``body_timeout_s`` of its headers, else 408 and the connection is closed; at most
``max_connections`` are served at once (503 beyond). Served by :func:`server_config`, a request
whose ``Host`` is not this server's (DNS rebinding) is a 400 and a cross-site ``POST`` (an
``Origin`` of another site) a 403, both before the body is read.

Work runs in a pool of ``max_jobs`` threads (loading a session's model the first time, decoding,
enhancement, encoding); the event loop only parses and routes. A job that passes ``timeout_s``, or
whose client has gone, is stopped by cooperative cancellation: the enhancer calls the job's check
between tiles and bands (:func:`zerodce.enhance.interruptible`), so the work ends within one tile
(about 0.1 .. 0.5 s on two cores), its slot and memory are given back only then, and ``max_jobs``
threads is all there ever is (docs/robustness-service.md says why this rather than a process pool).
Once the last admitted request has ended, the C heap's free pages are returned to the system
(``malloc_trim`` on glibc), so a burst of large uploads does not leave its high-water mark behind.
"""

import asyncio
import ctypes
import ctypes.util
import functools
import ipaddress
import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from ..errors import MissingExtra
from ..files.highbit import HighBitImage, encode_as
from ..files.io import FORMATS, ImageReadError, encode_image, read_any

if TYPE_CHECKING:
    from ..options import Options

__all__ = ["Limits", "create_app", "serve", "server_config", "content_disposition", "default_hosts"]

log = logging.getLogger(__name__)

_MEDIA = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "HEIF": "image/heic",
}
# Multipart framing and the small form fields travel in the same body as the file.
_FORM_OVERHEAD = 64 * 2**10


@dataclass(frozen=True)
class Limits:
    """Service limits (defaults sized for a 2-core laptop)."""

    max_upload_bytes: int = 40 * 2**20
    max_pixels: int = 40_000_000
    max_jobs: int = 1
    max_queue: int = 8
    timeout_s: float = 120.0
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    # The whole body within this of its headers: a 40 MiB upload needs 5.6 Mbit/s. A byte every few
    # seconds never trips the idle deadline; this one ends it.
    body_timeout_s: float = 60.0
    max_connections: int = 1024


class _Gate:
    """At most ``capacity`` requests admitted (uploading, waiting or running); beyond that, refused at once.

    ``on_idle`` runs each time the last admitted request lets go (the server has nothing in hand).
    """

    def __init__(self, capacity: int, on_idle: Callable[[], None] | None = None) -> None:
        self.capacity = capacity
        self.admitted = 0
        self.lock = threading.Lock()
        self.on_idle = on_idle

    def admit(self) -> "_Ticket | None":
        """A slot for one request, or None when all are taken."""
        with self.lock:
            if self.admitted >= self.capacity:
                return None
            self.admitted += 1
        return _Ticket(self)

    def _leave(self) -> None:
        with self.lock:
            self.admitted -= 1
            idle = self.admitted == 0
        if idle and self.on_idle is not None:
            self.on_idle()


class _Ticket:
    """One request's slot, held by the request while its body arrives and by its job while that runs.

    The slot is free only when every holder has let go: a job whose request has ended (504, or its
    client gone) keeps it until the work has really stopped, so ``capacity`` bounds what is in memory.
    """

    def __init__(self, gate: _Gate) -> None:
        self.gate = gate
        self.holders = 1

    def hold(self) -> None:
        with self.gate.lock:
            self.holders += 1

    def release(self) -> None:
        with self.gate.lock:
            self.holders -= 1
            free = self.holders == 0
        if free:
            self.gate._leave()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None (musl, macOS, Windows: nothing to call)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the system.

    glibc keeps what a burst of uploads and images freed (in the heap of every thread that
    allocated it) as the process's resident size; the service calls this once it is idle.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class _TimedOut(Exception):
    """Raised between tiles once a job's deadline has passed."""


class _Abandoned(Exception):
    """Raised between tiles once the job's client has disconnected."""


class _Unavailable(Exception):
    """The request's pipeline could not be loaded (a server-side failure, not the upload's)."""


def _base_name(filename: str | None) -> str:
    """The last component of an upload's name, without control characters; ``""`` when nothing is left.

    Example:
        >>> _base_name("..\\\\..\\\\windows\\\\win.ini"), _base_name("a\\x00b.jpg"), _base_name("..")
        ('win.ini', 'ab.jpg', '')
    """
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    return name.strip(" .")[:200]


def content_disposition(filename: str | None, suffix: str) -> str:
    """``Content-Disposition`` for the result of the upload ``filename`` (RFC 6266, RFC 5987).

    An ASCII ``filename`` for old clients and the UTF-8 ``filename*``; only the upload's base name,
    never its folders.

    Example:
        >>> print(content_disposition("暗い写真.jpg", ".jpg"))
        attachment; filename="photo_enhanced.jpg"; filename*=UTF-8''%E6%9A%97%E3%81%84%E5%86%99%E7%9C%9F_enhanced.jpg
    """
    base = _base_name(filename)
    stem = base.rsplit(".", 1)[0].strip(" .") if "." in base else base
    stem = stem or "photo"
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    ascii_stem = re.sub(r"[^A-Za-z0-9 ._()+,=-]+", "_", ascii_stem).strip(" ._") or "photo"
    full = f"{stem}_enhanced{suffix}"
    return f"attachment; filename=\"{ascii_stem}_enhanced{suffix}\"; filename*=UTF-8''{quote(full, safe='')}"


async def _answer(send, status: int, detail: str) -> None:  # noqa: ANN001 - ASGI send
    """A one-line JSON error sent straight from a middleware, closing the connection afterwards.

    Used before the body was read: closing is cheaper than reading, and discarding, the rest of it.
    """
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 and never read further.

    Refused at once when ``Content-Length`` declares too much; for chunked bodies the bytes are counted
    as they arrive and the application sees a disconnect when the count crosses the limit (so nothing
    beyond it is buffered or spooled to disk); its answer is replaced by the 413.
    """

    def __init__(self, app, limit: int) -> None:  # noqa: ANN001 - an ASGI app
        self.app = app
        self.limit = limit

    async def _refuse(self, send) -> None:  # noqa: ANN001
        await _answer(send, 413, f"upload larger than {self.limit - _FORM_OVERHEAD} bytes")

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen, over, started, complete = 0, False, False, False

        async def counted() -> dict:
            nonlocal seen, over, complete
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > self.limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: dict) -> None:
            nonlocal started
            if over:
                return  # the application's answer to a body cut short
            headers = message.get("headers", [])
            if message["type"] == "http.response.start" and not complete and (b"connection", b"close") not in headers:
                # Answered before the body ended (a 400 for a malformed upload): close the connection
                # afterwards rather than go on reading, and discarding, what the client still sends.
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(send)


class _Admission:
    """ASGI middleware: an upload takes its queue slot before a byte of its body is read.

    Over capacity, 503 at once and the connection is closed: fifty concurrent 40 MB uploads are
    never all buffered, only the ``capacity`` admitted ones. The slot (a :class:`_Ticket`) travels
    to the endpoint in ``scope["zerodce.ticket"]``; the job it starts holds it too.
    """

    def __init__(self, app, gate: _Gate, path: str) -> None:  # noqa: ANN001 - an ASGI app
        self.app = app
        self.gate = gate
        self.path = path

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(self.path):
            await self.app(scope, receive, send)
            return
        ticket = self.gate.admit()
        if ticket is None:
            await _answer(send, 503, "server busy: too many requests queued, retry later")
            return
        try:
            await self.app({**scope, "zerodce.ticket": ticket}, receive, send)
        finally:
            ticket.release()


_LOOPBACK_NAMES = ("localhost", ".localhost")


def default_hosts(bind: str) -> tuple[str, ...]:
    """The ``Host`` names a server bound to ``bind`` answers besides IP literals: loopback and ``bind``.

    A DNS-rebinding page reaches the server under a name of its own (``evil.example`` resolving to
    127.0.0.1), never as an IP literal, so any IP is accepted and names only when listed here or
    in ``zerodce serve``'s extra hosts. A leading dot allows a domain and its sub-domains.

    Example:
        >>> default_hosts("127.0.0.1"), default_hosts("photos.lan")
        (('localhost', '.localhost'), ('localhost', '.localhost', 'photos.lan'))
    """
    name = _host_name(bind)
    return _LOOPBACK_NAMES if not name or _is_ip(name) or name in _LOOPBACK_NAMES else (*_LOOPBACK_NAMES, name)


def _host_name(host: str) -> str:
    """The name of a ``Host`` value, without port, brackets or a final dot, in lower case.

    Example:
        >>> _host_name("LocalHost:8000"), _host_name("[::1]:8000"), _host_name("::1"), _host_name("a.lan.")
        ('localhost', '::1', '::1', 'a.lan')
    """
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _name_allowed(name: str, allowed: tuple[str, ...]) -> bool:
    return any(name == a or (a.startswith(".") and (name.endswith(a) or name == a[1:])) for a in allowed)


class _HostGuard:
    """ASGI middleware: requests must name this server, and a browser's ``POST`` must come from its page.

    - ``Host`` (when ``allowed`` is given): an IP literal or an allowed name, else 400. A page on
      another site that rebinds its own name to this machine's address is refused.
    - ``Origin`` (on every method but GET/HEAD/OPTIONS, whenever a browser sends one): the same host
      and port as ``Host``, or an allowed name (a proxy in front), else 403: a form on another site
      cannot make the user's browser spend this server's time. Clients that send no ``Origin``
      (curl, scripts) are not browsers carrying someone's cookies, and pass.

    Both are answered before the body is read, and the connection closed. ``"*"`` in ``allowed``
    turns both checks off.
    """

    def __init__(self, app, allowed: tuple[str, ...] | None) -> None:  # noqa: ANN001 - an ASGI app
        self.app = app
        self.allowed = None if allowed is None else tuple(_host_name(a) if not a.startswith(".") else a.lower()
                                                          for a in allowed)  # fmt: skip

    def _refusal(self, scope: dict) -> tuple[int, str] | None:
        if self.allowed is not None and "*" in self.allowed:
            return None
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        name = _host_name(host)
        if self.allowed is not None and host and not (_is_ip(name) or _name_allowed(name, self.allowed)):
            return 400, f"unknown Host {host[:100]!r}: this server answers to its address and {list(self.allowed)}"
        origin = headers.get(b"origin")
        if origin is None or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return None
        origin_text = origin.decode("latin-1")
        netloc = urlsplit(origin_text).netloc.lower()
        if netloc and netloc == host.lower() or _name_allowed(_host_name(netloc), self.allowed or ()):
            return None
        return 403, f"cross-site request refused: Origin {origin_text[:100]!r} is not this server ({host[:100]!r})"

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.warning("refused %s %s: %s", scope["method"], scope["path"], refusal[1])
        await _answer(send, *refusal)


async def _client_left(receive) -> None:  # noqa: ANN001 - ASGI receive
    """Return once the client has disconnected; called after the whole body was read.

    The server's ``receive`` then has nothing left to deliver but ``http.disconnect`` (uvicorn sends
    it when the socket closes, the test client once the response is complete).
    """
    while (await receive())["type"] != "http.disconnect":
        await asyncio.sleep(0.1)  # never a busy loop, whatever a server sends after the body


def _quietly(future: asyncio.Future) -> None:
    """Retrieve a future's outcome that nobody awaits (asyncio would log it as never retrieved)."""
    if not future.cancelled():
        future.exception()


async def _unless_client_leaves(job: Future, receive) -> "asyncio.Future | None":  # noqa: ANN001
    """``job`` as a finished asyncio future, or None when the client disconnects first.

    Starlette never cancels an endpoint whose client has gone, so the request watches for the
    disconnect itself; stopping the job is the caller's (its check sees the flag at the next tile).
    """
    result = asyncio.wrap_future(job)
    left = asyncio.ensure_future(_client_left(receive))
    try:
        await asyncio.wait({result, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        left.cancel()
        if not result.done():
            result.add_done_callback(_quietly)
    return result if result.done() else None


def _validation_line(errors: list[dict]) -> str:
    """FastAPI's list of validation errors as one line: ``exposure: Input should be less than 1 (got '1.5')``."""
    parts = []
    for e in errors:
        field = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "form")) or "request"
        got = e.get("input")
        shown = f" (got {str(got)[:40]!r})" if isinstance(got, str | int | float) and e.get("type") != "missing" else ""
        parts.append(f"{field}: {e.get('msg', 'invalid')}{shown}")
    return " ".join("; ".join(parts).split())


# The fields /v1/enhance reads; any other is a 422 (a typo must not be silently ignored).
FORM_FIELDS = frozenset(
    {"file", "model", "preset", "paper", "strength", "exposure", "metering", "balance", "denoise", "denoiser"}
    | {"format", "quality"}
)


def _enhance_upload(
    options: "Options", data: bytes, name: str, fmt_name: str | None, quality: int, limits: Limits,
    abandoned: threading.Event,
) -> tuple[bytes, str]:  # fmt: skip
    """One upload's job, in a pool thread: decode, enhance and encode ``data``; the encoded bytes
    and their Pillow format. Stops between tiles (:class:`_Abandoned`, :class:`_TimedOut`) once
    ``abandoned`` is set or ``limits.timeout_s`` has passed since the job started."""
    from ..enhance import enhance, interruptible, pipeline

    deadline = time.monotonic() + limits.timeout_s

    def check() -> None:
        if abandoned.is_set():
            raise _Abandoned
        if time.monotonic() > deadline:
            raise _TimedOut

    try:  # here, in the pool: the first request of a session loads it, off the event loop
        enh = pipeline(options)
    except (ValueError, RuntimeError, OSError, ImportError) as exc:
        raise _Unavailable(str(exc).splitlines()[0] if str(exc) else repr(exc)) from exc
    with interruptible(check):
        im = read_any(data, max_pixels=limits.max_pixels, name=name)  # 16-bit colour: HighBitImage
        fmt = FORMATS[fmt_name.lower()][0] if fmt_name else (im.format if im.format in _MEDIA else "PNG")
        check()
        if isinstance(im, HighBitImage):  # 16 bits in, 16 out (8 for JPEG, WebP...), as the CLI
            im.pixels = enhance(im.pixels, enh)
            check()
            return encode_as(im, fmt, quality), fmt
        out = enhance(im, enh)
        check()
        return encode_image(out, fmt, source=im, quality=quality), fmt


def _failure(exc: BaseException, name: str, limits: Limits) -> tuple[int, str] | None:
    """The status and one-line detail a failed job of the upload ``name`` is answered with; None for
    an exception that is not the upload's (a bug: it propagates, a 500 with its traceback logged)."""
    if isinstance(exc, _Unavailable):
        return 500, f"cannot load the model: {exc}"
    if isinstance(exc, _TimedOut):
        return 504, f"enhancement took longer than {limits.timeout_s:g} s"
    if isinstance(exc, ImageReadError):
        return (413 if "pixel limit" in str(exc) else 400), str(exc)
    if isinstance(exc, MissingExtra):  # e.g. a 16-bit colour PNG on a server without the 16bit extra
        return 415, f"{name}: {exc}"
    if isinstance(exc, (ValueError, TypeError, OSError)):
        return 400, f"{name}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    return None


def create_app(  # noqa: ANN201
    defaults: "Options | str" = "zerodce",
    limits: Limits | None = None,
    models: tuple[str, ...] | None = None,
    allowed_hosts: tuple[str, ...] | None = None,
):
    """Build the FastAPI application.

    Args:
        defaults: the options every request starts from (``zerodce serve``'s ``--model``, ``--device``,
            ``--backend``, ``--precision``, ``--tile``), or just the default model's name; a request's
            form fields replace its controls and model.
        models: the names a request's ``model`` may take (default: the bundled ones and the default).
        allowed_hosts: the ``Host`` names answered besides IP literals (:func:`default_hosts`;
            ``"*"``: any); None checks no ``Host``, for an app embedded behind a proxy of one's own
            (:func:`server_config` always passes them). A cross-site ``POST`` is refused either way.
    """
    from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from .. import __version__
    from ..options import BUNDLED_MODELS, Options

    base = Options(model=defaults) if isinstance(defaults, str) else defaults
    limits = limits or Limits()
    # The default model first (the page selects the first); a served weights file is allowed too.
    allowed = models or tuple(dict.fromkeys([base.model, *BUNDLED_MODELS]))
    # No /docs or /redoc: FastAPI's pages load swagger-ui and redoc from a CDN (blank offline).
    app = FastAPI(title="zerodce", version=__version__, description="Low-light enhancement with Zero-DCE.",
                  docs_url=None, redoc_url=None)  # fmt: skip
    pool = ThreadPoolExecutor(limits.max_jobs, thread_name_prefix="zerodce-job")
    gate = _Gate(limits.max_jobs + limits.max_queue, on_idle=lambda: pool.submit(_trim_heap))
    # Outermost first: a foreign Host or Origin, then an oversized body, then a full queue are each
    # refused before anything inside reads the body.
    app.add_middleware(_Admission, gate=gate, path="/v1/enhance")
    app.add_middleware(_BodyLimit, limit=limits.max_upload_bytes + _FORM_OVERHEAD)
    app.add_middleware(_HostGuard, allowed=allowed_hosts)
    served = {"ok": 0, "failed": 0, "abandoned": 0}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (resources.files("zerodce") / "static" / "index.html").read_text()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "version": __version__, "models": list(allowed), "in_flight": gate.admitted, **served}

    @app.post(
        "/v1/enhance",
        responses={
            200: {"content": {"image/png": {}, "image/jpeg": {}}},
            **{code: {} for code in (400, 403, 413, 422, 500, 503, 504)},
        },
    )
    async def enhance_endpoint(
        request: Request,
        file: UploadFile = File(..., description="the photo (JPEG, PNG, TIFF, WebP, BMP, HEIC)"),  # noqa: B008
        model: str | None = Form(None, description=f"one of /healthz's models (default: {base.model})"),
        preset: str | None = Form(None, description="natural (default), bright or night"),
        paper: str | None = Form(None, description="true: the paper's method exactly, nothing added (no other option)"),
        strength: str | None = Form(None, description="0 .. 1, how much of the effect (default 1)"),
        exposure: str | None = Form(None, description="target brightness in (0, 1), e.g. 0.3 .. 0.7"),
        metering: str | None = Form(None, description="what exposure measures: mean, linear or centre (camera-like)"),
        balance: str | None = Form(None, description="share of the colour cast removed, 0 .. 1"),
        denoise: str | None = Form(None, description="denoising strength 0 .. 10, 0 = off (default: the preset's)"),
        denoiser: str | None = Form(None, description="guided (fast filter) or learned (denoising network)"),
        format: str | None = Form(None, description="output format: jpeg, png, tiff, webp (default: the input's)"),
        quality: int = Form(95, ge=1, le=100),
    ) -> Response:
        fields = set((await request.form()).keys())  # parsed once already, for the parameters above
        server = sorted(fields & {"device", "backend", "precision", "tile"})
        if server:
            flags = " ".join(f"--{f}" for f in server)
            raise HTTPException(
                422, f"{', '.join(server)}: the server's setting, not a request's (zerodce serve {flags})"
            )
        unknown = sorted(fields - FORM_FIELDS)
        if unknown:
            raise HTTPException(
                422, f"unknown form field(s) {', '.join(unknown)}; known: {', '.join(sorted(FORM_FIELDS))}"
            )
        if model is not None and model not in allowed:
            raise HTTPException(422, f"unknown model {model!r}; available: {list(allowed)}")
        if format is not None and format.lower() not in FORMATS:
            raise HTTPException(422, f"unknown format {format!r}; expected one of {sorted(FORMATS)}")
        form = {"model": model, "preset": preset, "paper": paper, "strength": strength, "exposure": exposure}
        form.update(metering=metering, balance=balance, denoise=denoise, denoiser=denoiser)
        given = {k: v for k, v in form.items() if v is not None}
        try:  # the CLI's and evaluate's parser, then every rule again over the server's settings
            parsed = Options.parse(given)
            options = base.replace(**{k: getattr(parsed, k) for k in given})
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        data = await file.read(limits.max_upload_bytes + 1)
        await file.close()
        if len(data) > limits.max_upload_bytes:
            raise HTTPException(413, f"upload larger than {limits.max_upload_bytes} bytes")
        ticket: _Ticket = request.scope["zerodce.ticket"]  # taken by _Admission before the body was read
        name = _base_name(file.filename) or "upload"
        abandoned = threading.Event()
        ticket.hold()  # for the job, beside the request's own hold: the slot is free when the work has ended
        job = pool.submit(_enhance_upload, options, data, name, format, quality, limits, abandoned)
        job.add_done_callback(lambda _: ticket.release())

        def stop() -> None:  # the work ends at its next check (queued: it never starts)
            abandoned.set()
            job.cancel()

        try:
            done = await _unless_client_leaves(job, request.receive)
            if done is None:  # nobody to answer: stop the work and say so in the log
                stop()
                served["abandoned"] += 1
                log.info("%s: client disconnected, its job stopped", name)
                return Response(status_code=499)
            body, fmt = done.result()
        except asyncio.CancelledError:  # the request's task was cancelled (the server stopping): stop its work too
            stop()
            raise
        except Exception as exc:  # noqa: BLE001 - _failure says which are the upload's; others propagate
            failure = _failure(exc, name, limits)
            if failure is None:
                raise
            served["failed"] += 1
            raise HTTPException(*failure) from None
        served["ok"] += 1
        # the format asked for, else the first name FORMATS gives the upload's (HEIF: .heic)
        suffix = FORMATS[format.lower()][1] if format else next((s for f, s in FORMATS.values() if f == fmt), ".png")
        return Response(
            body,
            media_type=_MEDIA.get(fmt, "application/octet-stream"),
            headers={"Content-Disposition": content_disposition(file.filename, suffix)},
        )

    @app.exception_handler(HTTPException)
    async def one_line(_request, exc: HTTPException) -> JSONResponse:  # noqa: ANN001
        return JSONResponse({"detail": str(exc.detail).splitlines()[0]}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def one_line_422(_request, exc: RequestValidationError) -> JSONResponse:  # noqa: ANN001
        return JSONResponse({"detail": _validation_line(list(exc.errors()))}, status_code=422)

    return app


def _timed_protocol(limits: Limits) -> type:
    """uvicorn's h11 protocol with deadlines on the client, which uvicorn alone does not have.

    Request headers must be complete within ``header_timeout_s`` of the connection opening (or of the
    previous request ending): half-open and slowloris connections are closed. While a request body
    arrives, ``idle_timeout_s`` without a byte closes the connection, and so does the body not being
    complete ``body_timeout_s`` after its headers (a byte every few seconds is never idle, and would
    hold its connection, and its queue slot, for as long as it likes). Each is answered 408 when
    no response has started. While the application works on a complete request no deadline runs
    (``timeout_s`` bounds that).
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None
        _body_due: float | None = None  # loop time by which the current request's body must be complete

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expire(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or not self.cycle.response_started:
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()

        def connection_made(self, transport) -> None:  # noqa: ANN001
            super().connection_made(transport)
            self._arm(limits.header_timeout_s)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                now = self.loop.time()
                if self._body_due is None:
                    self._body_due = now + limits.body_timeout_s
                # each arriving piece of body restarts the idle clock, never past the body's deadline
                self._arm(max(0.0, min(limits.idle_timeout_s, self._body_due - now)))
                return
            self._body_due = None
            if state is h11.IDLE:
                if self._timer is None:  # a new request began: its headers get one deadline, not one per byte
                    self._arm(limits.header_timeout_s)
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedH11Protocol


def server_config(  # noqa: ANN201
    host: str = "127.0.0.1",
    port: int = 8000,
    defaults: "Options | str" = "zerodce",
    limits: Limits | None = None,
    allowed_hosts: tuple[str, ...] = (),
):
    """The uvicorn configuration ``zerodce serve`` runs: the app, the client deadlines and the connection cap.

    The app answers only requests addressed to it: an IP literal, a loopback name, ``host``, or one
    of ``allowed_hosts`` (names a proxy or the LAN reaches it by; ``".example.org"`` a domain and
    its sub-domains; ``"*"`` any).
    """
    import uvicorn

    limits = limits or Limits()
    return uvicorn.Config(
        create_app(defaults, limits, allowed_hosts=(*default_hosts(host), *allowed_hosts)),
        host=host,
        port=port,
        log_level="info",
        http=_timed_protocol(limits),
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=5,
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    defaults: "Options | str" = "zerodce",
    limits: Limits | None = None,
    allowed_hosts: tuple[str, ...] = (),
) -> None:
    """Run the service with uvicorn (blocking); the arguments as :func:`server_config`'s."""
    import uvicorn

    uvicorn.Server(server_config(host, port, defaults, limits, allowed_hosts)).run()
