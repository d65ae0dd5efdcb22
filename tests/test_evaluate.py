from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from zerodce.evaluation.baselines import gamma_to_mean, parse_method
from zerodce.evaluation.evaluate import evaluate_paired, pair_folders, summarise
from zerodce.evaluation.metrics import colourfulness, mae, no_reference_stats, noise_sigma, psnr, ssim


def test_psnr_closed_form():
    rng = np.random.default_rng(0)
    a = rng.integers(10, 240, (20, 30, 3)).astype(np.uint8)
    b = a.copy()
    b[:10] += 8  # half of the values off by 8: MSE = 32
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 32), abs=1e-12)
    assert psnr(a, a) == float("inf")
    assert mae(a, b) == pytest.approx(4.0)


def test_ssim_identity_and_symmetry():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)
    assert ssim(a, b) < 0.99


def test_no_reference_hand_values():
    grey = np.full((16, 16, 3), 128, np.uint8)
    assert colourfulness(grey) == 0.0
    s = no_reference_stats(grey)
    assert s["brightness"] == pytest.approx(128 / 255) and s["contrast"] == 0.0 and s["cast"] == 0.0
    img = np.zeros((10, 10, 3), np.uint8)
    img[..., 0] = 51
    img[:2, :, 1] = 255  # 20 of 100 pixels clipped in green
    s = no_reference_stats(img)
    assert s["clipped"] == pytest.approx(0.2) and s["crushed"] == 0.0
    assert s["cast"] == pytest.approx((51 - 0) / 255)  # red mean 51, blue 0, green 51


@pytest.mark.parametrize("sigma", [2.0, 8.0])
def test_noise_estimate_recovers_known_sigma(sigma):
    rng = np.random.default_rng(2)
    ramp = np.linspace(50, 150, 300)[None, :].repeat(300, 0)  # smooth structure is cancelled
    assert noise_sigma(ramp + rng.normal(0, sigma, ramp.shape)) == pytest.approx(sigma, rel=0.05)


def test_gamma_to_mean_hits_level():
    rng = np.random.default_rng(3)
    x = (rng.random((40, 40, 3)) * 60 + 5).astype(np.uint8)
    y = gamma_to_mean(x, 0.45)
    assert no_reference_stats(y)["brightness"] == pytest.approx(0.45, abs=0.005)


@pytest.fixture
def paired(tmp_path):
    rng = np.random.default_rng(4)
    low, high = tmp_path / "low", tmp_path / "high"
    low.mkdir()
    high.mkdir()
    for i in range(4):
        ref = (rng.random((24, 32, 3)) * 120 + 80).astype(np.uint8)
        Image.fromarray(ref).save(high / f"{i}.png")
        Image.fromarray((ref * 0.2).astype(np.uint8)).save(low / f"{i}.png")
    return low, high


def test_pairing_rejects_mismatched_folders(paired):
    low, high = paired
    (high / "extra.png").write_bytes((high / "0.png").read_bytes())
    with pytest.raises(ValueError, match="do not pair by name.*extra.png"):
        pair_folders(low, high)


def test_brightening_ranks_above_identity(paired, small_model, tmp_path):
    from zerodce.weights import save_weights

    path = save_weights(small_model, tmp_path / "m.safetensors")
    plain = f"model:{path},paper"  # this random model brightens every channel
    methods = {s: parse_method(s) for s in ("identity", "gamma:0.5", plain)}
    summary = summarise(evaluate_paired(pair_folders(*paired), methods))
    assert summary["gamma:0.5"]["psnr"] > summary["identity"]["psnr"] + 3
    assert summary[plain]["psnr"] > summary["identity"]["psnr"]
    assert summary["identity"]["n"] == 4


def test_metrics_match_independent_skimage(paired):
    rows = evaluate_paired(pair_folders(*paired), {"gamma:0.5": parse_method("gamma:0.5")})
    low, high = paired
    for row in rows:
        x = np.asarray(Image.open(low / row["image"]).convert("RGB"))
        ref = np.asarray(Image.open(high / row["image"]).convert("RGB"))
        y = np.clip(np.rint((x / 255.0) ** 0.5 * 255), 0, 255).astype(np.uint8)
        assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(ref, y, data_range=255), abs=0.01)
        assert row["ssim"] == pytest.approx(structural_similarity(y, ref, channel_axis=2, data_range=255), abs=0.001)


def test_cli_report_files_parse(paired, tmp_path):
    low, high = paired
    rep = tmp_path / "rep"
    r = subprocess.run(
        [sys.executable, "-m", "zerodce", "evaluate", "--low", low, "--high", high, "--method", "identity",
         "--method", "he", "--method", "clahe", "--method", "gamma-mean:0.45", "--ssim-variant", "gaussian",
         "--report", rep],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(rep / "per_image.csv")))
    assert len(rows) == 16 and {"psnr", "ssim", "ssim_gaussian", "noise"} <= set(rows[0])
    summary = json.loads((rep / "summary.json").read_text())
    assert set(summary) == {"identity", "he", "clahe", "gamma-mean:0.45"}
    assert summary["he"]["psnr"] == pytest.approx(np.mean([float(r["psnr"]) for r in rows if r["method"] == "he"]))
    assert (rep / "summary.md").read_text().count("\n|") >= 5
    assert Image.open(rep / "grid.png").size[0] > 100
    r = subprocess.run([sys.executable, "-m", "zerodce", "evaluate", "--low", low, "--report", rep / "u",
                        "--method", "identity"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0 and "colourfulness" in (rep / "u" / "summary.md").read_text()


def test_chain_and_bilateral_match_direct_calls(paired):
    import cv2

    x = np.asarray(Image.open(next(iter(sorted(paired[0].iterdir())))).convert("RGB"))
    chained = parse_method("gamma:0.5+bilateral+gamma-mean:0.45")(x)
    step = cv2.bilateralFilter(np.clip(np.rint((x / 255.0) ** 0.5 * 255), 0, 255).astype(np.uint8), 9, 40, 9)
    assert np.array_equal(chained, parse_method("gamma-mean:0.45")(step))
    # The options' own messages, as the CLI and the service give them.
    with pytest.raises(ValueError, match=r"^model:zerodce,vivid=2: unknown option\(s\) vivid; known: backend, "):
        parse_method("model:zerodce,vivid=2")
    with pytest.raises(ValueError, match="strength must be in"):
        parse_method("model:zerodce,strength=2")
    with pytest.raises(ValueError, match="unknown preset 'vivid'"):
        parse_method("model:zerodce,preset=vivid")
    with pytest.raises(ValueError, match="denoiser must be one of"):
        parse_method("model:zerodce,denoiser=bm3d")
    with pytest.raises(ValueError, match="metering must be one of"):
        parse_method("model:zerodce,metering=spot")
    with pytest.raises(ValueError, match="'night' is not key=value"):
        parse_method("model:zerodce,night")
    with pytest.raises(ValueError, match="exposure given twice"):
        parse_method("model:zerodce,exposure=0.3,exposure=0.5")
    with pytest.raises(ValueError, match="the model is the spec's name"):
        parse_method("model:zerodce,model=fast")


def test_model_spec_with_the_learned_denoiser(paired):
    from zerodce.enhance import Enhancer, enhance

    x = np.asarray(Image.open(next(iter(sorted(paired[0].iterdir())))).convert("RGB"))
    got = parse_method("model:zerodce,exposure=0.45,denoiser=learned,denoise=1.5")(x)
    assert np.array_equal(got, enhance(x, Enhancer("zerodce", exposure=0.45, denoise=1.5, denoiser="learned")))
    assert not np.array_equal(got, parse_method("model:zerodce,exposure=0.45,denoise=1.5")(x))


def test_model_spec_with_metering(paired):
    from zerodce.enhance import Enhancer, enhance

    x = np.asarray(Image.open(next(iter(sorted(paired[0].iterdir())))).convert("RGB"))
    got = parse_method("model:zerodce,metering=centre,exposure=0.47,balance=0.5")(x)
    assert np.array_equal(got, enhance(x, Enhancer("zerodce", exposure=0.47, balance=0.5, metering="centre")))
    assert not np.array_equal(got, parse_method("model:zerodce,metering=mean,exposure=0.47,balance=0.5")(x))


def test_model_spec_with_preset_strength_and_paper(paired):
    from zerodce.enhance import enhance
    from zerodce.options import Options
    from zerodce.runtime.session import Session

    x = np.asarray(Image.open(next(iter(sorted(paired[0].iterdir())))).convert("RGB"))
    got = parse_method("model:zerodce,preset=night,strength=0.5")(x)
    assert np.array_equal(got, enhance(x, Session(Options(preset="night", strength=0.5))))
    assert np.array_equal(parse_method("model:zerodce,paper")(x), enhance(x, Session(Options(paper=True))))
    with pytest.raises(ValueError, match="no effect with paper=True"):
        parse_method("model:zerodce,paper,exposure=0.5")


def test_hue_fidelity_columns_in_both_modes(paired, tmp_path):
    from zerodce.evaluation.evaluate import evaluate_paired, evaluate_unpaired, summarise

    pairs = list(zip(sorted(paired[0].iterdir()), sorted(paired[1].iterdir()), strict=True))[:2]
    swap = lambda rgb: rgb[..., [1, 2, 0]].copy()  # every coloured pixel turned by 120 degrees
    methods = {"identity": parse_method("identity"), "swap": swap}
    for rows in (evaluate_paired(pairs, methods), evaluate_unpaired([p for p, _ in pairs], methods)):
        s = summarise(rows)
        assert s["identity"]["false_colour"] == 0.0 and s["identity"]["hue_p99_worst"] == 0.0
        coloured = [r for r in rows if r["method"] == "swap" and r["hue_median"] > 0]
        assert all(r["false_colour"] == 1.0 and abs(r["hue_median"] - 120.0) < 1e-6 for r in coloured)


def test_exposure_plot_in_report(paired, small_model, tmp_path):
    from zerodce.evaluation.evaluate import exposure_series, write_report
    from zerodce.weights import save_weights

    path = save_weights(small_model, tmp_path / "m.safetensors")
    specs = [f"model:{path},exposure={e},denoise=0" for e in (0.3, 0.45, 0.6)]
    methods = {s: parse_method(s) for s in specs}
    summary = summarise(evaluate_paired(pair_folders(*paired), methods))
    ((family, pts),) = exposure_series(summary).items()
    assert family == f"model:{path},denoise=0" and [p[0] for p in pts] == [0.3, 0.45, 0.6]
    achieved = [p[1] for p in pts]
    assert achieved == sorted(achieved) and all(abs(a - r) < 0.03 for r, a in pts)
    written = write_report(tmp_path / "rep", [], summary)
    assert tmp_path / "rep" / "exposure.png" in written
    assert Image.open(tmp_path / "rep" / "exposure.png").size[0] > 100


def test_options_without_effect_warn(paired, tmp_path, capsys, caplog):
    import logging

    from zerodce.apps.cli import main

    low, _ = paired
    with caplog.at_level(logging.WARNING):
        assert main(["evaluate", "--low", str(low), "--method", "identity", "--show", "0.png",
                     "--ssim-variant", "gaussian"]) == 0  # fmt: skip
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.split(":")[0] for w in said] == ["--show", "--ssim-variant"], said
