"""Exporting a model to a backend, and the consistency report every export writes.

The report compares the deployed model with the float model it came from on the
held-out sample stored in the artifact: decision agreement at each working point of
the card, quantiles of the score difference, the candidates that flip and their
features, and the efficiencies computed with the deployed scores.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trigml.artifact import Artifact
from trigml.components import ExportResult

if TYPE_CHECKING:
    from trigml.components import Backend

__all__ = ["consistency_report", "cpu_export", "write_report"]

#: Flipping candidates listed with their features in a report.
MAX_FLIPS_LISTED = 20


def consistency_report(
    artifact: Artifact,
    deployed: np.ndarray,
    *,
    rows: int | None = None,
    backend: str = "",
) -> dict[str, Any]:
    """Compare deployed scores with the float scores of the artifact's held-out sample.

    Parameters
    ----------
    artifact : Artifact
    deployed : ndarray, shape (n,) or (n, k)
        Scores of the deployed model on the first ``n`` held-out rows.
    rows : int, optional
        Number of held-out rows used (defaults to ``len(deployed)``).
    backend : str
        Name recorded in the report.

    Returns
    -------
    dict
        ``n``, ``score_difference`` quantiles, ``working_points`` (agreement, flips
        each way, efficiencies with both scorers) and ``flips`` (the first few flipping
        candidates with their features).
    """
    from trigml.metrics import agreement, score_difference_quantiles

    hold = artifact.holdout()
    n = rows or len(deployed)
    reference = hold["scores"][:n]
    labels = hold["labels"][:n]
    features = hold["features"][:n]
    deployed = np.asarray(deployed)[:n]
    report: dict[str, Any] = {
        "model": artifact.card.name,
        "backend": backend,
        "n": int(n),
        "score_difference": score_difference_quantiles(reference, deployed),
        "max_abs_difference": float(np.max(np.abs(reference - deployed))) if n else 0.0,
        "working_points": [],
        "flips": [],
    }
    if deployed.ndim != 1:
        return report
    signal = labels > 0 if artifact.card.task == "binary" else None
    for wp in artifact.card.working_points:
        ref_pass = reference >= wp.threshold
        dep_pass = deployed >= wp.threshold
        agree = agreement(ref_pass, dep_pass)
        entry: dict[str, Any] = {
            "name": wp.name,
            "threshold": wp.threshold,
            "agreement": agree.fraction,
            "flips_to_pass": agree.n_b_only,
            "flips_to_fail": agree.n_a_only,
        }
        if signal is not None and signal.any() and (~signal).any():
            entry["signal_efficiency_float"] = float(ref_pass[signal].mean())
            entry["signal_efficiency_deployed"] = float(dep_pass[signal].mean())
            entry["background_efficiency_float"] = float(ref_pass[~signal].mean())
            entry["background_efficiency_deployed"] = float(dep_pass[~signal].mean())
            if wp.input_rate_hz:
                entry["rate_hz_deployed"] = (
                    entry["background_efficiency_deployed"] * wp.input_rate_hz
                )
        report["working_points"].append(entry)
        for i in agree.flips[: MAX_FLIPS_LISTED - len(report["flips"])]:
            report["flips"].append(
                {
                    "working_point": wp.name,
                    "row": int(i),
                    "float_score": float(reference[i]),
                    "deployed_score": float(deployed[i]),
                    "features": dict(
                        zip(artifact.card.feature_names, map(float, features[i]))
                    ),
                }
            )
    if report["working_points"]:
        report["min_agreement"] = min(w["agreement"] for w in report["working_points"])
    return report


def write_report(report: dict[str, Any], path: Path) -> Path:
    """Write a report as indented JSON."""
    path.write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def cpu_export(backend: Backend, artifact: Artifact, out_dir: Path) -> ExportResult:
    """Export for backends that run the artifact as it is.

    Copies the artifact into ``out_dir/model``, runs the backend on the held-out
    sample, and writes ``consistency.json`` with the comparison against the float
    model and the measured throughput.
    """
    model_dir = out_dir / "model"
    shutil.copytree(artifact.path, model_dir, dirs_exist_ok=True)
    scorer = backend.load(artifact)
    hold = artifact.holdout()
    features = hold["features"]
    t0 = time.perf_counter()
    deployed = scorer.predict(features)
    seconds = time.perf_counter() - t0
    report = consistency_report(artifact, deployed, backend=backend.name)
    report["throughput_events_per_second"] = len(features) / seconds if seconds else 0.0
    path = write_report(report, out_dir / "consistency.json")
    return ExportResult(directory=out_dir, files=[model_dir, path], report=report)
