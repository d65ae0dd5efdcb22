"""One options model on every surface: :meth:`Options.parse` from strings, and the same strings giving
the same :class:`Options`, and the same refusals with the same message, from the CLI (``enhance``,
``enhance --ray``, ``serve``), the service's form and ``evaluate``'s method specs."""

from __future__ import annotations

import dataclasses
import importlib
import io
import pickle
import threading

import numpy as np
import pytest
from PIL import Image

from support.cli import run_cli as _exit
from zerodce.apps.cli import build_parser, main, options_from_args
from zerodce.evaluation.baselines import model_options, parse_method
from zerodce.options import CONTROL_FIELDS, Options

enhance_module = importlib.import_module("zerodce.enhance")  # the module, not the function of that name

CONTROLS = {"preset": "night", "strength": "0.5", "exposure": "0.4", "metering": "centre", "balance": "0.25",
            "denoise": "1.5", "denoiser": "guided"}  # fmt: skip
SESSION = {"model": "fast", "backend": "torch", "precision": "bf16", "tile": "none"}  # None: no default's stand-in
# Each rule about combinations, as strings; Options.parse's message is what every surface must say.
RULES = [
    {"paper": "true", "balance": "0.5"},
    {"paper": "true", "preset": "night", "metering": "centre"},
    {"denoiser": "guided", "denoise": "0"},
    {"model": "fast", "precision": "int8"},
    {"backend": "torch", "precision": "int8"},
    {"backend": "onnxruntime", "precision": "bf16"},
    {"backend": "onnxruntime", "device": "cuda"},
]


def _flags(values: dict[str, str]) -> list[str]:
    """Command-line flags for option strings (``paper=true`` is ``--paper``)."""
    out: list[str] = []
    for k, v in values.items():
        out += ["--paper"] if k == "paper" else [f"--{k}", v]
    return out


def _spec(values: dict[str, str]) -> str:
    """An ``evaluate`` method spec for option strings (``paper`` alone, as the docs write it)."""
    rest = {k: v for k, v in values.items() if k != "model"}
    opts = ["paper" if k == "paper" else f"{k}={v}" for k, v in rest.items()]
    return ",".join([f"model:{values.get('model', 'zerodce')}", *opts])


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((30, 40, 3)) * 50).astype(np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


# ---- Options.parse --------------------------------------------------------------------------------


def test_parse_converts_strings_by_hand():
    o = Options.parse({**CONTROLS, **SESSION, "tile": "256", "paper": "false", "device": "cuda:1"})
    assert (o.preset, o.strength, o.exposure, o.metering, o.balance) == ("night", 0.5, 0.4, "centre", 0.25)
    assert (o.denoise, o.denoiser, o.paper) == (1.5, "guided", False)
    assert (o.model, o.backend, o.precision, o.tile, o.device) == ("fast", "torch", "bf16", 256, "cuda:1")
    assert Options.parse({"tile": "none"}).tile is None and Options.parse({"tile": "AUTO"}).tile == "auto"
    assert Options.parse({"paper": "yes"}).paper is True
    assert Options.parse({"strength": None}) == Options()  # None: the default, as a missing key


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"presett": "night", "foo": "1"}, "unknown option(s) foo, presett; known: backend, balance, denoise, "
         "denoiser, device, exposure, metering, model, paper, precision, preset, strength, tile"),
        ({"strength": "half"}, "strength must be a number, got 'half'"),
        ({"exposure": "nan"}, "exposure must be in (0, 1), got nan"),
        ({"denoise": "11"}, "denoise strength must be in [0, 10], got 11.0"),
        ({"paper": "maybe"}, "paper must be true or false, got 'maybe'"),
        ({"tile": "big"}, "tile must be auto, none or an integer >= 16, got 'big'"),
        ({"tile": "8"}, "tile must be auto, none or an integer >= 16, got 8"),
        ({"preset": "vivid"}, "unknown preset 'vivid'; choose one of natural, bright, night"),
    ],
)  # fmt: skip
def test_parse_refuses_unknown_keys_and_bad_values(values, message):
    with pytest.raises(ValueError) as exc:
        Options.parse(values)
    assert str(exc.value) == message


def test_options_round_trip_through_pickle():
    o = Options.parse({**CONTROLS, **SESSION})
    back = pickle.loads(pickle.dumps(o))
    assert back == o and hash(back) == hash(o) and back.controls() == o.controls()
    assert back.session_key() == ("fast", "torch", "bf16", "cpu", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.strength = 1.0  # type: ignore[misc]


# ---- the same strings, the same Options -----------------------------------------------------------


def test_the_same_strings_give_the_same_options_on_every_surface(tmp_path, monkeypatch):
    """CLI enhance, enhance --ray, serve's flags plus the service's form, an evaluate spec: one Options."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import zerodce.apps.cluster
    from zerodce.apps.service import create_app

    expected = Options.parse({**CONTROLS, **SESSION})
    got: dict[str, Options] = {}
    argv = ["enhance", "x.jpg", "-o", "out", *_flags({**CONTROLS, **SESSION})]
    got["cli"] = options_from_args(build_parser().parse_args(argv))

    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (20, 20, 20)).save(photo)
    monkeypatch.setattr(
        zerodce.apps.cluster, "enhance_on_ray", lambda jobs, options, **kw: got.update(ray=options) or []
    )
    assert main(["enhance", str(photo), "-o", str(tmp_path / "o"), "--ray", *_flags({**CONTROLS, **SESSION})]) == 0

    real = enhance_module.pipeline
    seen: list[Options] = []
    monkeypatch.setattr(enhance_module, "pipeline", lambda o: seen.append(o) or real(Options()))
    server = options_from_args(build_parser().parse_args(["serve", *_flags(SESSION)]))
    client = TestClient(create_app(server))
    r = client.post("/v1/enhance", files={"file": ("a.jpg", _jpeg())}, data=CONTROLS)
    assert r.status_code == 200, r.text
    got["service"] = seen.pop()

    parse_method(_spec({**CONTROLS, **SESSION}))
    got["evaluate"] = seen.pop()
    assert got == dict.fromkeys(("cli", "ray", "service", "evaluate"), expected)
    assert model_options("fast,paper").paper and options_from_args(
        build_parser().parse_args(["enhance", "x", "-o", "o", "--paper"])
    ) == Options.parse({"paper": "true"})


@pytest.mark.parametrize("rule", RULES, ids=lambda r: ",".join(r))
def test_every_rule_is_refused_on_every_surface_with_one_message(rule, tmp_path, monkeypatch, capsys):
    import zerodce.apps.cluster
    import zerodce.apps.service
    import zerodce.files.batch

    with pytest.raises(ValueError) as exc:
        Options.parse(rule)
    message = str(exc.value)

    # CLI, local and --ray: one line, exit 2, before a file is listed or a model loaded
    never = lambda *a, **k: pytest.fail("ran past an invalid combination")  # noqa: E731
    monkeypatch.setattr(enhance_module, "pipeline", never)
    monkeypatch.setattr(zerodce.files.batch, "plan_jobs", never)
    monkeypatch.setattr(zerodce.apps.cluster, "enhance_on_ray", never)
    monkeypatch.setattr(zerodce.apps.service, "serve", never)
    for extra in ([], ["--ray"]):
        code, out, err = _exit(["enhance", tmp_path / "a.png", "-o", tmp_path / "o", *_flags(rule), *extra], capsys)
        assert (code, out, err) == (2, "", f"error: {message}\n"), extra
    assert not (tmp_path / "o").exists()

    form_keys = {"model", *CONTROL_FIELDS}
    form = {k: v for k, v in rule.items() if k in form_keys}
    server = {k: v for k, v in rule.items() if k not in form_keys}
    if not set(rule) & set(CONTROL_FIELDS):  # all of it can be serve's flags
        code, out, err = _exit(["serve", *_flags(rule)], capsys)
        assert (code, out, err) == (2, "", f"error: {message}\n")
    try:
        Options.parse(server)
    except ValueError:
        pass  # the server's part alone is refused by serve (above); no request can reach it
    else:  # the service's form completes what serve was given
        from fastapi.testclient import TestClient  # zerodce[serve], installed for the tests

        client = TestClient(zerodce.apps.service.create_app(Options.parse(server)))
        r = client.post("/v1/enhance", files={"file": ("a.jpg", _jpeg())}, data=form)
        assert (r.status_code, r.json()["detail"]) == (422, message)

    spec = _spec(rule)
    with pytest.raises(ValueError) as exc:
        parse_method(spec)
    assert str(exc.value) == f"{spec}: {message}"


# ---- sessions ---------------------------------------------------------------------------------------


def test_the_service_loads_one_pipeline_for_requests_with_different_controls(monkeypatch):
    """Two requests with different controls: one model load, in the job pool (not the event loop),
    and each request's own controls applied."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from zerodce.apps.service import create_app

    monkeypatch.setattr(enhance_module, "_PIPELINES", {})
    loads: list[str] = []
    from zerodce.runtime.session import Session  # what pipeline() loads for a bundled model on the CPU

    init = Session.__init__

    def counted(self, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        loads.append(threading.current_thread().name)
        init(self, *args, **kwargs)

    monkeypatch.setattr(Session, "__init__", counted)
    client = TestClient(create_app())
    data = _jpeg()
    outs = []
    for form in ({"preset": "night"}, {"exposure": "0.6", "balance": "0"}, {"exposure": "0.3"}):
        r = client.post("/v1/enhance", files={"file": ("a.jpg", data)}, data={**form, "format": "png"})
        assert r.status_code == 200, r.text
        outs.append(np.asarray(Image.open(io.BytesIO(r.content)), dtype=float))
    assert len(loads) == 1 and loads[0].startswith("zerodce-job"), loads
    assert outs[1].mean() > outs[2].mean() + 20  # the second request's controls, not the first's


def test_serve_checks_and_loads_its_options_before_listening(monkeypatch, capsys):
    import zerodce.apps.service

    monkeypatch.setattr(enhance_module, "_PIPELINES", {})
    started = []
    monkeypatch.setattr(
        zerodce.apps.service, "serve", lambda host, port, defaults, limits, hosts=(): started.append(defaults)
    )
    code, _, err = _exit(["serve", "--model", "fast", "--backend", "torch", "--tile", "none"], capsys)
    assert code == 0, err
    assert started == [Options(model="fast", backend="torch", tile=None)]
    assert list(enhance_module._PIPELINES) == [("fast", "torch", "fp32", "cpu", None)]  # loaded, once
