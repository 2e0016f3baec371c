"""PNG figures of an FPGA export: firmware against float scores, and the scan."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FIGURES_VERSION", "plot_consistency", "plot_scan"]

log = logging.getLogger(__name__)

#: Changes with the drawing code, so that figures kept in the cache are redrawn.
FIGURES_VERSION = 1


def plot_consistency(
    float_scores: np.ndarray,
    firmware_scores: np.ndarray,
    threshold: float,
    path: Path,
    *,
    title: str,
) -> Path:
    """Firmware against float score, and their difference, at one working point.

    Multiclass scores are drawn with every class probability as one entry. The
    figure is laid out by hand (no constrained layout) to keep an export of an
    unchanged model within a second or two.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    from trigml.plots import hep_style

    a = np.asarray(float_scores, dtype=np.float64).reshape(-1)
    b = np.asarray(firmware_scores, dtype=np.float64).reshape(-1)
    low, high = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    if not high > low:
        high = low + 1.0
    counts, edges_a, edges_b = np.histogram2d(a, b, bins=100, range=[[low, high]] * 2)
    same = float(np.mean((a >= threshold) == (b >= threshold)))
    with hep_style():
        figure = Figure(figsize=(16.0, 7.0))
        figure.subplots_adjust(left=0.07, right=0.97, bottom=0.12, top=0.9, wspace=0.3)
        left, right = figure.subplots(1, 2)
        mesh = left.pcolormesh(
            edges_a,
            edges_b,
            np.ma.masked_where(counts <= 0, counts).T,
            norm=LogNorm(vmin=1.0, vmax=max(float(counts.max()), 1.0)),
        )
        figure.colorbar(mesh, ax=left, label="Events")
        for line in (left.axvline, left.axhline):
            line(threshold, color="red", linestyle="--", linewidth=1.5)
        left.set_xlabel("Float model score")
        left.set_ylabel("Firmware emulation score")
        right.hist(b - a, bins=100, histtype="step", linewidth=2)
        right.set_yscale("log")
        right.set_xlabel("Firmware − float score")
        right.set_ylabel("Events")
        figure.suptitle(
            f"{title}: decision agreement {same:.4%} at score ≥ {threshold:.4g}",
            fontsize="small",
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=80)
    log.info("wrote %s", path)
    return path


def plot_scan(scan: dict[str, Any], path: Path, *, title: str) -> Path:
    """Decision agreement of every type a precision scan tried, against its width."""
    from matplotlib.figure import Figure

    from trigml.plots import hep_style

    trials = scan["trials"]
    with hep_style():
        figure = Figure(figsize=(10.0, 8.0))
        figure.subplots_adjust(left=0.15, right=0.96, bottom=0.12, top=0.9)
        axes = figure.subplots()
        for integer in sorted({t["integer"] for t in trials}):
            rows = sorted(
                (t for t in trials if t["integer"] == integer), key=lambda t: t["width"]
            )
            axes.plot(
                [t["width"] for t in rows],
                [1.0 - t["agreement"] for t in rows],
                marker="o",
                label=f"I = {integer}",
            )
        axes.axhline(
            1.0 - scan["target_agreement"], color="red", linestyle="--", label="target"
        )
        if scan.get("best"):
            axes.set_title(
                f"{title}: narrowest passing {scan['best']}", fontsize="small"
            )
        else:
            axes.set_title(f"{title}: no type reached the target", fontsize="small")
        axes.set_yscale("symlog", linthresh=1e-5)
        axes.set_xlabel("Total bits W of ap_fixed<W,I>")
        axes.set_ylabel("1 − decision agreement")
        axes.legend()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=100)
    log.info("wrote %s", path)
    return path
