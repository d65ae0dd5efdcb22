"""The HTTP API (FastAPI TestClient) and the web page in a real headless Chromium (Playwright)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from zerodce.service import Limits, create_app  # noqa: E402


def _jpeg(w=40, h=30, seed=0, **save) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray((rng.random((h, w, 3)) * 50).astype(np.uint8)).save(buf, "JPEG", **save)
    return buf.getvalue()


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(limits=Limits(max_upload_bytes=200_000, max_pixels=1_000_000)))


def test_enhance_roundtrip_matches_library(client):
    from zerodce import enhance
    from zerodce.enhance import Enhancer

    data = _jpeg()
    r = client.post("/v1/enhance", files={"file": ("dark.jpg", data, "image/jpeg")}, data={"format": "png"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert 'filename="dark_enhanced.png"' in r.headers["content-disposition"]
    got = np.asarray(Image.open(io.BytesIO(r.content)))
    want = np.asarray(enhance(Image.open(io.BytesIO(data)).convert("RGB"), Enhancer("zerodce")))
    assert np.array_equal(got, want)


def test_options_change_result_and_keep_format(client):
    data = _jpeg(seed=1)
    base = client.post("/v1/enhance", files={"file": ("a.jpg", data)})
    assert base.status_code == 200 and base.headers["content-type"] == "image/jpeg"
    bright = client.post("/v1/enhance", files={"file": ("a.jpg", data)}, data={"exposure": "0.7", "format": "png"})
    dark = client.post("/v1/enhance", files={"file": ("a.jpg", data)}, data={"exposure": "0.35", "format": "png"})
    mean = lambda r: np.asarray(Image.open(io.BytesIO(r.content))).mean()  # noqa: E731
    assert mean(bright) > mean(dark) + 40


@pytest.mark.parametrize(
    "payload,status,words",
    [
        (b"", 400, "empty"),
        (b"GIF89a not really", 400, "upload"),
        (b"hello, I am text", 400, "not a recognised image"),
        (_jpeg()[:200], 400, "upload"),
        (b"\xff" * 300_000, 413, "larger than"),
    ],
)
def test_bad_uploads_are_4xx_one_line(client, payload, status, words):
    r = client.post("/v1/enhance", files={"file": ("upload", payload)})
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert words in detail and "\n" not in detail


def test_pixel_limit_checked_before_decoding(client):
    from corpus import bomb_png

    r = client.post("/v1/enhance", files={"file": ("bomb.png", bomb_png(5000, 5000))})
    assert r.status_code == 413 and "pixel limit" in r.json()["detail"]


def test_bad_options_422(client):
    files = {"file": ("a.jpg", _jpeg())}
    assert client.post("/v1/enhance", files=files, data={"exposure": "1.5"}).status_code == 422
    assert client.post("/v1/enhance", files=files, data={"model": "nope"}).status_code == 422
    assert client.post("/v1/enhance", files=files, data={"format": "gif"}).status_code == 422
    assert client.post("/v1/enhance", files=files, data={"balance": "2"}).status_code == 422
    assert client.post("/v1/enhance", files=files, data={"denoiser": "bm3d"}).status_code == 422
    assert client.post("/v1/enhance", files=files, data={"metering": "spot"}).status_code == 422
    assert client.post("/v1/enhance", files=files, data={"preset": "vivid"}).status_code == 422
    assert client.post("/v1/enhance", files=files, data={"strength": "1.5"}).status_code == 422
    r = client.post("/v1/enhance", files=files, data={"paper": "true", "exposure": "0.5"})
    assert r.status_code == 422 and "no effect with paper=True" in r.text


def test_learned_denoiser_option_matches_library(client):
    from zerodce import enhance
    from zerodce.enhance import Enhancer

    data = _jpeg(seed=2)
    r = client.post("/v1/enhance", files={"file": ("a.jpg", data)}, data={"denoiser": "learned", "format": "png"})
    assert r.status_code == 200, r.text
    got = np.asarray(Image.open(io.BytesIO(r.content)))
    src = Image.open(io.BytesIO(data)).convert("RGB")
    assert np.array_equal(got, np.asarray(enhance(src, Enhancer("zerodce", denoiser="learned"))))
    assert not np.array_equal(got, np.asarray(enhance(src, Enhancer("zerodce"))))


def test_metering_option_matches_library(client):
    from zerodce import enhance
    from zerodce.enhance import Enhancer

    data = _jpeg(seed=3)
    form = {"exposure": "0.46", "metering": "centre", "format": "png"}
    r = client.post("/v1/enhance", files={"file": ("a.jpg", data)}, data=form)
    assert r.status_code == 200, r.text
    got = np.asarray(Image.open(io.BytesIO(r.content)))
    src = Image.open(io.BytesIO(data)).convert("RGB")
    assert np.array_equal(got, np.asarray(enhance(src, Enhancer("zerodce", exposure=0.46, metering="centre"))))
    assert not np.array_equal(got, np.asarray(enhance(src, Enhancer("zerodce", exposure=0.46, metering="mean"))))


def test_preset_and_strength_match_library(client):
    from zerodce import enhance
    from zerodce.enhance import Enhancer

    data = _jpeg(seed=4)
    form = {"preset": "bright", "strength": "0.6", "format": "png"}
    r = client.post("/v1/enhance", files={"file": ("a.jpg", data)}, data=form)
    assert r.status_code == 200, r.text
    got = np.asarray(Image.open(io.BytesIO(r.content)))
    src = Image.open(io.BytesIO(data)).convert("RGB")
    assert np.array_equal(got, np.asarray(enhance(src, Enhancer("zerodce", preset="bright", strength=0.6))))


def test_health_and_openapi(client):
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and "zerodce" in h["models"]
    spec = client.get("/openapi.json").json()
    assert "/v1/enhance" in spec["paths"]
    assert "slider" in client.get("/").text


def test_queue_full_answers_503():
    """One job running, none allowed to wait: concurrent requests beyond that get 503 at once."""
    app = create_app(limits=Limits(max_jobs=1, max_queue=0))
    c = TestClient(app)
    data = _jpeg(600, 400)
    codes: list[int] = []

    def post() -> None:
        codes.append(c.post("/v1/enhance", files={"file": ("a.jpg", data)}).status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 200 in codes and 503 in codes and set(codes) <= {200, 503}


# ---------------------------------------------------------------- the browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server():
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _chromium() -> str:
    path = os.environ.get("ZERODCE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no chromium on PATH (Debian package 'chromium'; scripts/setup.sh test installs it)")
    return path


def test_browser_upload_compare_download(live_server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    photo = tmp_path / "night.jpg"
    sample = Path(__file__).resolve().parents[1] / "examples" / "lime1.jpg"
    photo.write_bytes(sample.read_bytes() if os.environ.get("ZERODCE_SCREENSHOT") else _jpeg(320, 240, seed=3))
    width, height = Image.open(photo).size
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900}, accept_downloads=True)
        page.goto(live_server + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length > 0")
        page.set_input_files("#file", str(photo))
        page.select_option("#preset", "night")
        page.select_option("#denoise", "4")
        page.click("#go")
        page.wait_for_selector("#download", state="visible", timeout=60_000)
        assert "Done" in page.inner_text("#status")
        assert page.evaluate("document.getElementById('after').naturalWidth") == width
        page.fill("#slider", "70")
        page.dispatch_event("#slider", "input")
        shot = Path(__file__).resolve().parents[1] / "docs" / "service.png"
        page.screenshot(path=str(tmp_path / "service.png"), full_page=True)
        with page.expect_download() as dl:
            page.click("#download")
        saved = tmp_path / dl.value.suggested_filename
        dl.value.save_as(saved)
        browser.close()
    assert saved.name == "night_enhanced.jpg"
    out = np.asarray(Image.open(saved))
    assert out.shape == (height, width, 3) and out.mean() > np.asarray(Image.open(photo)).mean()
    if os.environ.get("ZERODCE_SCREENSHOT"):  # scripts/make_screenshot.sh refreshes the README's picture
        shutil.copy(tmp_path / "service.png", shot)


def test_load_test_script_short():
    """The CI-sized run of scripts/load_test.py: valid inputs all 2xx, bad ones all 4xx."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        [sys.executable, str(root / "scripts" / "load_test.py"), "--requests", "40", "--clients", "4",
         "--photos", str(root / "examples")],
        capture_output=True, text=True, timeout=600, cwd=root,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid inputs not 2xx: 0; bad inputs not 4xx: 0" in r.stdout
