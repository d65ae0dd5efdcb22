"""The light install: enhance, serve, evaluate and video with the bundled models and no PyTorch.

These tests import nothing from torch, so ``scripts/test.sh`` runs them in a virtual environment
without it (``.venv-light``); in the full install they run too, and a subprocess checks that the
paths they exercise never import torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zerodce.options import Options

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    """The standard output of ``code`` run in a fresh interpreter, which must exit 0."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _dark(h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(5, 60, w)[None, :, None] * np.array([1.0, 0.8, 0.6])
    return np.clip(base + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


def test_enhance_cli_service_paths_import_no_torch():
    code = (
        "import sys, numpy as np, zerodce\n"
        "from zerodce.apps.cli import main\n"
        "out = zerodce.enhance(np.full((20, 30, 3), 20, np.uint8))\n"
        "assert out.mean() > 20, out.mean()\n"
        "out = zerodce.enhance(np.full((20, 30, 3), 20, np.uint8), model='fast', preset='night')\n"
        "import zerodce.apps.service, zerodce.apps.video, zerodce.files.batch, zerodce.evaluation.evaluate\n"
        "print('torch' in sys.modules)\n"
    )
    assert _python(code).strip() == "False"


@pytest.mark.parametrize("model", ["zerodce", "fast"])
def test_session_tiles_and_bands_give_the_whole_image_result(model):
    """Tiling is exercised, not bypassed: DCE-Net in 32-px tiles, Zero-DCE++ in 16-row bands, each
    with the denoiser's context, equal the whole-image run; tile=None takes the other code path."""
    from zerodce.runtime.session import Session

    x = (_dark(75, 90).transpose(2, 0, 1)[None] / 255.0).astype(np.float32)
    whole = Session(Options(model=model, tile=None))
    tiled = Session(Options(model=model, tile=32 if model == "zerodce" else 16))
    for preset in ("natural", "night"):
        a = whole.with_options(Options(model=model, tile=None, preset=preset)).run_float(x)
        b = tiled.with_options(Options(model=model, tile=tiled.tile, preset=preset)).run_float(x)
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=0)


def test_integer_path_equals_the_float_path_to_one_level():
    from zerodce.runtime.session import Session

    s = Session(Options(tile=None))
    img = _dark()
    x = img.transpose(2, 0, 1)[None]
    y8 = s.run_integer(x, 255)
    yf = s.run_float((x / 255.0).astype(np.float32))
    assert y8.dtype == np.uint8 and y8.shape == x.shape
    assert np.abs(y8.astype(np.float32) - yf * 255).max() <= 0.5 + 1e-3
    y16 = s.run_integer((img.astype(np.uint16) * 257).transpose(2, 0, 1)[None], 65535)
    assert y16.dtype == np.uint16
    assert np.abs(y16.astype(np.float64) / 257 - yf.astype(np.float64) * 255).max() < 0.51


def test_enhance_keeps_a_well_exposed_photo_and_brightens_a_dark_one():
    import zerodce

    rng = np.random.default_rng(3)
    bright = np.clip(rng.normal(120, 40, (64, 64, 3)), 0, 255).astype(np.uint8)
    out = zerodce.enhance(bright)
    assert np.abs(out.astype(int) - bright.astype(int)).mean() < 1.0  # do no harm
    dark = _dark()
    assert zerodce.enhance(dark).mean() > 2 * dark.mean()


def test_cli_enhances_the_bundled_examples(tmp_path):
    from zerodce.apps.cli import main

    assert main(["enhance", str(ROOT / "examples"), "-o", str(tmp_path), "--quiet"]) == 0
    outs = sorted(p.name for p in tmp_path.iterdir())
    assert outs == sorted(p.name for p in (ROOT / "examples").glob("*.jpg"))
    for name in outs:
        before = np.asarray(Image.open(ROOT / "examples" / name).convert("L"), dtype=np.float32)
        after = np.asarray(Image.open(tmp_path / name).convert("L"), dtype=np.float32)
        assert after.mean() > before.mean() + 5  # one of them is backlit: do no harm keeps its key


def test_cli_int8_and_fast_model(tmp_path):
    from zerodce.apps.cli import main

    Image.fromarray(_dark()).save(tmp_path / "a.png")
    assert main(["enhance", str(tmp_path / "a.png"), "-o", str(tmp_path / "i8"), "--precision", "int8", "-q"]) == 0
    assert main(["enhance", str(tmp_path / "a.png"), "-o", str(tmp_path / "f"), "--model", "fast", "-q"]) == 0
    a = np.asarray(Image.open(tmp_path / "i8" / "a.png"), dtype=np.float32)
    b = np.asarray(Image.open(tmp_path / "f" / "a.png"), dtype=np.float32)
    assert a.mean() > _dark().mean() + 10 and b.mean() > _dark().mean() + 10


def test_cli_asks_for_torch_only_where_it_is_needed(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    if __import__("importlib").util.find_spec("torch") is not None:
        pytest.skip("torch is installed: the light-install message cannot show")
    from zerodce.apps.cli import main

    Image.fromarray(_dark()).save(tmp_path / "a.png")
    code = main(["enhance", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--backend", "torch", "-q"])
    assert code != 0
    err = capsys.readouterr().err
    assert "backend torch runs on PyTorch, which is not installed" in err and "scripts/setup.sh torch" in err


def test_service_enhances_without_torch():
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import io

    from fastapi.testclient import TestClient

    from zerodce.apps.service import create_app

    buf = io.BytesIO()
    Image.fromarray(_dark()).save(buf, "PNG")
    c = TestClient(create_app())
    r = c.post("/v1/enhance", files={"file": ("a.png", buf.getvalue(), "image/png")}, data={"preset": "night"})
    assert r.status_code == 200, r.text
    out = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), dtype=np.float32)
    assert out.mean() > _dark().mean() + 10


def test_evaluate_bundled_models_without_torch(tmp_path):
    pytest.importorskip("skimage")
    from zerodce.apps.cli import main

    low, high = tmp_path / "low", tmp_path / "high"
    low.mkdir()
    high.mkdir()
    for i in range(2):
        ref = _dark(48, 64, seed=i).astype(np.float32) * 3
        Image.fromarray(np.clip(ref, 0, 255).astype(np.uint8)).save(high / f"{i}.png")
        Image.fromarray(_dark(48, 64, seed=i)).save(low / f"{i}.png")
    code = main(["evaluate", "--low", str(low), "--high", str(high), "--model", "zerodce", "--model", "fast",
                 "--report", str(tmp_path / "r")])  # fmt: skip
    assert code == 0
    assert (tmp_path / "r" / "summary.json").is_file()


def test_video_without_torch(tmp_path):
    pytest.importorskip("av")
    from support.clips import synthetic_clip
    from zerodce.apps.cli import main
    from zerodce.apps.video import video_frames

    clip = synthetic_clip(tmp_path / "in.mp4", frames=6, size=(64, 48))
    assert main(["enhance", str(clip), "-o", str(tmp_path / "o"), "--quiet"]) == 0
    assert video_frames(tmp_path / "o" / "in.mp4") == 6


@pytest.mark.parametrize(
    "argv",
    [
        ["enhance", "x.jpg", "-o", "o", "--device", "cuda"],
        ["train", "--data", "d", "--out", "o"],
        ["convert", "a.pth", "b.safetensors"],
        ["export", "-o", "m.onnx"],
    ],
)
def test_what_needs_torch_says_so_in_one_line(argv, capsys):
    if __import__("importlib").util.find_spec("torch") is not None:
        pytest.skip("torch is installed: the light-install message cannot show")
    from zerodce.apps.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "runs on PyTorch, which is not installed" in err
    assert "scripts/setup.sh torch" in err and "torch==2.13.0" in err


def test_per_call_controls_bind_to_a_loaded_session():
    import zerodce

    s = zerodce.Session(model="fast", tile=None)
    img = _dark()
    a = zerodce.enhance(img, s, preset="night")
    b = zerodce.enhance(img, s.with_options(preset="night"))
    c = zerodce.enhance(img, zerodce.Session(model="fast", tile=None, preset="night"))
    assert np.array_equal(a, b) and np.array_equal(a, c)
    with pytest.raises(ValueError, match="precision='int8': this pipeline was loaded with precision='fp32'"):
        s.with_options(zerodce.Options(preset="night", precision="int8"))
    # No session yet (None where a session goes): the default model, not "unknown model 'None'".
    assert np.array_equal(zerodce.enhance(img, None, preset="night"), zerodce.enhance(img, preset="night"))


def test_graphs_flush_denormals_in_their_own_thread_only():
    # onnxruntime's set_denormal_as_zero flushes denormals on the thread that creates a session; the
    # sessions are created and run in zerodce's onnxruntime thread, so the caller's floats keep their
    # denormals (1e-38 / 10 is 1e-39, not 0), and the graphs still give their outputs.
    code = (
        "import threading, numpy as np\n"
        "from zerodce.runtime import graphs\n"
        "from zerodce.runtime.session import Session\n"
        "from zerodce.options import Options\n"
        "tiny = lambda: float(np.float32(1e-38) / np.float32(10))\n"
        "s = Session(Options(model='fast'))\n"
        "y = s.run_float(np.full((1, 3, 30, 40), 0.1, np.float32))\n"
        "inside = graphs.on_ort_thread(tiny)\n"
        "name = graphs.on_ort_thread(lambda: threading.current_thread().name)\n"
        "print(tiny(), inside, name, float(y.mean()) > 0.1)\n"
    )
    out = _python(code)
    caller, inside, name, brighter = out.split()
    assert float(caller) > 0 and float(inside) == 0.0, out
    assert name.startswith("zerodce-onnxruntime") and brighter == "True"


def _blas_threads() -> list[int]:
    from zerodce.runtime import threads

    threads._BLAS.enter()  # its controller made (once), as the runtime makes it
    threads._BLAS.exit()
    return [i["num_threads"] for i in threads._BLAS._controller.info() if i["user_api"] == "blas"]


def _overlapping_estimates(start) -> list[set[int]]:  # noqa: ANN001
    """Two ``one_blas_thread()`` blocks that overlap, the first leaving before the second; each is
    run by ``start(fn)``, which returns a call that waits for it (a thread's join, a future's
    result). Returns the BLAS thread counts the second saw after the first had left."""
    import threading

    from zerodce.runtime import threads

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    during: list[set[int]] = []

    def first() -> None:
        with threads.one_blas_thread():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with threads.one_blas_thread():
            second_in.set()
            first_out.wait(5)
            during.append(set(_blas_threads()))  # the first has left; this one is still inside

    for wait in [start(first), start(second)]:
        wait()
    return during


def test_noise_estimate_holds_blas_to_one_thread_and_restores_it(monkeypatch):
    # OpenBLAS's spinning threads beside onnxruntime's cost the full model's defaults a tenth of
    # its time on 2 cores: the noise estimate runs with one BLAS thread, and BLAS gets its threads
    # back after, also when two estimates overlap (the limit is process-wide, so it is counted).
    pytest.importorskip("threadpoolctl")
    import threading

    from zerodce.runtime import session

    if not _blas_threads():
        pytest.skip("no BLAS that threadpoolctl controls")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):  # a known starting point, even on one core
        seen = []
        monkeypatch.setattr(session, "luma_chroma_noise", lambda x: (seen.append(_blas_threads()), x)[1:] * 2)
        session._noise_beside_networks(np.zeros((1, 3, 8, 8), np.float32))
        assert seen == [[1] * len(_blas_threads())]
        assert set(_blas_threads()) == {2}

        def start(fn):  # noqa: ANN001, ANN202 - a thread of its own
            t = threading.Thread(target=fn)
            t.start()
            return lambda: t.join(10)

        assert _overlapping_estimates(start) == [{1}]
        assert set(_blas_threads()) == {2}


def test_blas_limit_is_restored_when_the_last_out_did_not_set_it():
    # The noise pool's threads outlive each estimate. threadpoolctl 3.8 lets only the thread that
    # set OpenBLAS's (process-wide) limit change it again while that thread lives: if the one that
    # set it kept that control, the restore by another pool thread, last out, was silently ignored
    # and BLAS stayed on one thread for good (each later estimate then "restored" that one thread).
    pytest.importorskip("threadpoolctl")
    import functools
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import ThreadpoolController

    from zerodce.runtime import threads

    if not _blas_threads():
        pytest.skip("no BLAS that threadpoolctl controls")
    ctl = ThreadpoolController().select(user_api="blas")

    def release() -> None:  # the main thread leaves OpenBLAS to whichever thread sets it next
        for lib in ctl.lib_controllers:
            if hasattr(lib, "clear_controlling_thread"):
                lib.clear_controlling_thread()

    start = ctl.limit(limits=2)  # a known starting point, even on one core
    release()
    try:
        with ThreadPoolExecutor(2) as pool:  # both threads alive after, as the noise pool's are
            assert _overlapping_estimates(lambda fn: functools.partial(pool.submit(fn).result, 10)) == [{1}]
            assert set(_blas_threads()) == {2}
            with threads.one_blas_thread():  # and a later estimate still gets its one thread
                assert set(_blas_threads()) == {1}
            assert set(_blas_threads()) == {2}
    finally:
        start.restore_original_limits()
        release()


def _fork_while_held(setup: str, held: str, child: str, after: str) -> str:
    """The output of a fresh interpreter that runs ``setup``, has a thread stay inside ``with held:``
    while it forks, runs ``child`` in the child (which writes its answer to the pipe ``w``), then
    lets the thread leave, waits for the child and runs ``after`` (its prints are the output)."""
    indent = lambda code: "".join(f"    {line}\n" for line in code.splitlines())  # noqa: E731
    return _python(
        f"import os, threading\n{setup}\n"
        "inside, leave = threading.Event(), threading.Event()\n"
        "def hold():\n"
        f"    with {held}:\n"
        "        inside.set()\n"
        "        leave.wait(10)\n"
        "t = threading.Thread(target=hold)\n"
        "t.start()\n"
        "inside.wait(10)\n"
        "r, w = os.pipe()\n"
        "pid = os.fork()\n"
        f"if pid == 0:\n{indent(child)}    os._exit(0)\n"
        "leave.set()\n"
        "t.join()\n"
        "os.waitpid(pid, 0)\n"
        f"{after}\n"
    )


def test_a_child_forked_while_blas_is_held_to_one_thread_gets_its_threads_back():
    # The child has none of the parent's threads, so none of them leaves the block to restore the
    # limit there: the child restores it itself (else its numpy runs on one BLAS thread for good).
    pytest.importorskip("threadpoolctl")
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    out = _fork_while_held(
        "import numpy as np  # loads OpenBLAS, which threadpoolctl then finds\n"
        "from threadpoolctl import ThreadpoolController\n"
        "from zerodce.runtime import threads\n"
        "ctl = ThreadpoolController().select(user_api='blas')\n"
        "if not ctl.lib_controllers:\n"
        "    print('skip'); raise SystemExit\n"
        "ctl.limit(limits=2)  # a known starting point, even on one core\n"
        "for lib in ctl.lib_controllers:\n"
        "    getattr(lib, 'clear_controlling_thread', lambda: None)()",
        "threads.one_blas_thread()",
        "n = {i['num_threads'] for i in ThreadpoolController().select(user_api='blas').info()}\n"
        "os.write(w, str(sorted(n)).encode())",
        "print(os.read(r, 100).decode(), sorted({i['num_threads'] for i in ctl.info()}))",
    ).strip()
    if out == "skip":
        pytest.skip("no BLAS that threadpoolctl controls")
    assert out == "[2] [2]", out


def test_a_child_forked_while_another_thread_holds_the_kernel_locks_can_take_them():
    # A child forked while another thread was launching a kernel (or building the kernels) kept
    # those locks held for ever: its first kernel launch hung. The child gets fresh locks.
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    out = _fork_while_held(
        "from zerodce.core import coded, kernels\nassert kernels._LAUNCH is coded._LAUNCH",
        "coded._LAUNCH, kernels._BUILDING",
        "done = threading.Event()\n"
        "def take():\n"
        "    with coded._LAUNCH, kernels._BUILDING:\n"
        "        done.set()\n"
        "threading.Thread(target=take, daemon=True).start()\n"
        "os.write(w, b'free' if done.wait(5) else b'held')",
        "print(os.read(r, 16).decode(), coded._LAUNCH.locked())",
    )
    assert out.split() == ["free", "False"]


def test_a_child_forked_after_enhancing_enhances_too():
    # numba's default threading layer on Linux is GNU OpenMP, which cannot run in a forked child:
    # numba terminated the child at its first kernel launch (every multiprocessing worker with the
    # fork start method whose parent had enhanced). The child now runs the numpy code, same result.
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    code = (
        "import os, numpy as np\n"
        "from zerodce.enhance import pipeline\n"
        "from zerodce.options import Options\n"
        "p = pipeline(Options(model='fast'))\n"
        "x = np.linspace(0, 60, 3 * 50 * 70).astype(np.uint8).reshape(1, 3, 50, 70)\n"
        "a = p.run_integer(x, 255)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    b = p.run_integer(x, 255)\n"
        "    os._exit(0 if np.abs(a.astype(int) - b).max() <= 1 else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    assert _python(code).split() == ["0"]
