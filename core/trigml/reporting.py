"""Outputs of a run: ``report.json`` and plots from the accounting of a run."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from trigml.runtime import RunAccounting
from trigml.schema.report import RunReport

__all__ = ["write_run_outputs"]

log = logging.getLogger(__name__)


def write_run_outputs(
    report: RunReport, accounting: RunAccounting, out: Path, *, plots: bool = True
) -> list[Path]:
    """Write ``report.json`` and, unless ``plots`` is False, the run's PNG plots.

    Plots: the output rate against the threshold of each line (with the input rate of
    the run, else the accepted fraction), and with a signal field the event-level ROC
    of each line.
    """
    written = []
    if plots:
        written += _plots(report, accounting, out)
        report.outputs += [str(p) for p in written]
    path = out / "report.json"
    path.write_text(report.model_dump_json(indent=2) + "\n")
    return [path, *written]


def _plots(report: RunReport, accounting: RunAccounting, out: Path) -> list[Path]:
    from trigml import metrics, plots

    rate = report.input_rate_hz or 1.0
    signal = (
        np.concatenate(accounting.signal)
        if accounting.signal
        else np.zeros(0, dtype=bool)
    )
    curves = {}
    rocs = {}
    for line in report.lines:
        scores = accounting.line_scores(line.name)
        finite = np.isfinite(scores)
        if finite.sum() < 2:
            continue
        # events without candidates score -inf: put them below every threshold
        low, high = scores[finite].min(), scores[finite].max()
        scores = np.where(finite, scores, low - 1.0)
        thresholds = np.linspace(low, high, 101)
        background = scores[~signal[: len(scores)]] if len(signal) else scores
        curves[line.name] = metrics.rate_curve(background, rate, thresholds)
        if len(signal) and signal.any() and (~signal).any():
            n = min(len(scores), len(signal))
            fpr, tpr, _ = metrics.roc_curve(scores[:n], signal[:n])
            rocs[line.name] = (fpr, tpr)
    written = []
    if curves:
        written.append(
            plots.plot_rate_vs_threshold(curves, out / "rate_vs_threshold.png", rate)
        )
    if rocs:
        written.append(plots.plot_roc(rocs, out / "roc.png"))
    return written
