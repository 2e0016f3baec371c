"""Tests that every figure of trigml.plots is written as a sane PNG."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trigml import metrics, plots
from trigml.errors import UsageError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _assert_png(written: Path, expected: Path) -> None:
    assert written == expected
    assert written.stat().st_size > 5_000  # an empty canvas compresses to far less
    width, height = _png_size(written)
    assert 300 <= width <= 4000
    assert 300 <= height <= 4000


@pytest.fixture(scope="module")
def sample() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(21)
    n = 5000
    labels = rng.random(n) < 0.5
    pt = rng.uniform(0.0, 60.0, n)
    return {
        "labels": labels,
        "scores": 1 / (1 + np.exp(-(rng.normal(size=n) + 2.0 * labels))),
        "pt": pt,
        "passed": rng.random(n) < 0.5 * (1 + np.vectorize(math.erf)((pt - 20) / 7)),
        "m2_ab": rng.uniform(0.0, 20.0, n),
        "m2_bc": rng.uniform(0.0, 20.0, n),
    }


def test_plot_roc(tmp_path: Path, sample: dict[str, np.ndarray]) -> None:
    fpr, tpr, _ = metrics.roc_curve(sample["scores"], sample["labels"])
    curves = {"BDT": (fpr, tpr), "cuts": (fpr**0.5, tpr)}
    target = tmp_path / "roc.png"
    _assert_png(plots.plot_roc(curves, target), target)
    linear = tmp_path / "sub" / "roc_linear.png"
    _assert_png(plots.plot_roc(curves, linear, log_rejection=False), linear)


def test_plot_turn_on(tmp_path: Path, sample: dict[str, np.ndarray]) -> None:
    curve = metrics.turn_on(sample["pt"], sample["passed"], bins=np.linspace(0, 60, 25))
    fit = metrics.fit_turn_on(curve)
    target = tmp_path / "turn_on.png"
    written = plots.plot_turn_on(
        {"L1 muon": curve, "no fit": curve}, {"L1 muon": fit}, target, style="CMS"
    )
    _assert_png(written, target)


def test_plot_rate_vs_threshold(tmp_path: Path, sample: dict[str, np.ndarray]) -> None:
    curve = metrics.rate_curve(sample["scores"][~sample["labels"]], 30e6)
    target = tmp_path / "rate.png"
    written = plots.plot_rate_vs_threshold(
        {"topo BDT": curve}, target, 30e6, budget_hz=1e6, style="LHCb2"
    )
    _assert_png(written, target)


def test_plot_efficiency_vs(tmp_path: Path) -> None:
    centres = np.linspace(0.5, 9.5, 10)
    effs = {"uBoost": np.full(10, 0.7), "BDT": np.linspace(0.5, 0.9, 10)}
    errs = {"uBoost": np.full(10, 0.02), "BDT": np.full((2, 10), 0.03)}
    target = tmp_path / "eff_vs_time.png"
    written = plots.plot_efficiency_vs(
        centres, effs, errs, target, "Decay time [ps]", title="Flatness"
    )
    _assert_png(written, target)


def test_plot_efficiency_map_2d(tmp_path: Path, sample: dict[str, np.ndarray]) -> None:
    passed = sample["m2_ab"] + sample["m2_bc"] < 25.0
    target = tmp_path / "dalitz.png"
    written = plots.plot_efficiency_map_2d(
        sample["m2_ab"],
        sample["m2_bc"],
        passed,
        10,
        target,
        (r"$m^2(K\pi)$ [GeV$^2$]", r"$m^2(\pi\pi)$ [GeV$^2$]"),
    )
    _assert_png(written, target)


def test_plot_resolution(tmp_path: Path, sample: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(3)
    true = sample["pt"] + 20.0
    tables = {
        "DNN": metrics.response_bias_resolution(
            true * rng.normal(1.0, 0.1, true.size), true, true, bins=8
        ),
        "standard": metrics.response_bias_resolution(
            true * rng.normal(0.92, 0.13, true.size), true, true, bins=8
        ),
    }
    target = tmp_path / "resolution.png"
    _assert_png(plots.plot_resolution(tables, target), target)
    single = tmp_path / "residual.png"
    residual = metrics.response_bias_resolution(
        rng.normal(0.0, 0.01, true.size),
        np.zeros(true.size),
        true,
        5,
        kind="difference",
    )
    _assert_png(plots.plot_resolution(residual, single, unit="cm"), single)


def test_plot_agreement(tmp_path: Path, sample: dict[str, np.ndarray]) -> None:
    offline = sample["scores"]
    online = np.round(offline * 1024) / 1024  # a fixed-point emulation
    target = tmp_path / "agreement.png"
    written = plots.plot_agreement(offline, online, target, threshold=0.7)
    _assert_png(written, target)


def test_plotting_leaves_global_style_alone(tmp_path: Path) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    plots.plot_roc({"a": ([0.0, 0.5, 1.0], [0.0, 0.9, 1.0])}, tmp_path / "r.png")
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend


def test_bad_plot_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown plot style"):
        plots.plot_roc({"a": ([0, 1], [0, 1])}, tmp_path / "r.png", style="Nope")
    with pytest.raises(metrics.MetricInputError, match="curves"):
        plots.plot_roc({}, tmp_path / "r.png")
    with pytest.raises(metrics.MetricInputError, match="scores_b"):
        plots.plot_agreement([0.1, 0.2], [0.1], tmp_path / "a.png", 0.5)


def test_metrics_import_stays_light() -> None:
    code = (
        "import sys, trigml.metrics, trigml.plots; "
        "heavy = [m for m in ('matplotlib', 'mplhep', 'scipy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
