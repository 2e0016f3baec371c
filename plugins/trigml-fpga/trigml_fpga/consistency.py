"""Consistency of emulated firmware with the float model on held-out events.

For every working point: the fraction of events whose decision is the same, the
events that flip with their features, and the efficiency and rate computed once with
the float scores and once with the firmware scores. Also the quantiles of the score
difference, and for multiclass models the agreement of the top class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DecisionPoint",
    "agreement_summary",
    "consistency_report",
    "decision_points",
]

QUANTILES = (0.001, 0.01, 0.16, 0.5, 0.84, 0.99, 0.999)
ABS_QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)
N_FLIPS_LISTED = 20


@dataclass(frozen=True)
class DecisionPoint:
    """A threshold at which the trigger decides, with what the card says about it.

    Attributes
    ----------
    name : str
    threshold : float
        An event passes when its score is at or above it.
    level : str
        ``candidate`` or ``event`` (as recorded in the card).
    input_rate_hz : float or None
        Rate of the events entering the trigger, to express pass fractions as rates.
    card : dict
        Efficiency and rate recorded in the model card at training.
    derived : bool
        True when the card has no working point and this one was derived here.
    """

    name: str
    threshold: float
    level: str = "candidate"
    input_rate_hz: float | None = None
    card: dict[str, Any] | None = None
    derived: bool = False


def decision_points(
    card: Any, float_scores: np.ndarray, labels: np.ndarray
) -> list[DecisionPoint]:
    """The card's working points, or defaults derived from the float scores.

    Without working points in the card: an anomaly model cuts at the 99th and 99.9th
    percentiles of its score (rates of 1% and 0.1%); a binary model at 50, 70 and 90%
    signal efficiency. Regression and multiclass models get none (multiclass models
    are compared on their top class).
    """
    points = [
        DecisionPoint(
            name=wp.name,
            threshold=float(wp.threshold),
            level=wp.level,
            input_rate_hz=wp.input_rate_hz,
            card={
                "signal_efficiency": wp.signal_efficiency,
                "background_efficiency": wp.background_efficiency,
                "rate_hz": wp.rate_hz,
            },
        )
        for wp in card.working_points
    ]
    if points or float_scores.ndim != 1:
        return points
    if card.task == "anomaly":
        return [
            DecisionPoint(
                f"q{q:g}", float(np.quantile(float_scores, q / 100)), derived=True
            )
            for q in (99.0, 99.9)
        ]
    if card.task == "binary":
        signal = float_scores[np.asarray(labels) == 1]
        if len(signal):
            return [
                DecisionPoint(
                    f"eff{e}", float(np.quantile(signal, 1 - e / 100)), derived=True
                )
                for e in (50, 70, 90)
            ]
    return []


def _decide(scores: np.ndarray, threshold: float) -> np.ndarray:
    return np.asarray(scores) >= threshold


def _compare(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, int, int]:
    """Agreement of two sets of decisions, the flipped events, and flips each way.

    For multiclass scores an event agrees when every class decision agrees.
    """
    from trigml.metrics import agreement

    if a.ndim == 1:
        result = agreement(a, b)
        return result.fraction, result.flips, result.n_a_only, result.n_b_only
    same = (a == b).all(axis=1)
    idx = np.flatnonzero(~same)
    float_only = int((a & ~b).any(axis=1).sum())
    firmware_only = int((b & ~a).any(axis=1).sum())
    return float(same.mean()), idx, float_only, firmware_only


def _fraction(mask: np.ndarray, pick: np.ndarray) -> float | None:
    n = int(pick.sum())
    return float(mask[pick].sum() / n) if n else None


def _rates(
    passed: np.ndarray, labels: np.ndarray, task: str, input_rate_hz: float | None
) -> dict[str, Any]:
    if passed.ndim != 1 or task == "regression":
        return {"pass_fraction": float(passed.mean()) if passed.size else None}
    labels = np.asarray(labels).reshape(-1)
    signal = _fraction(passed, labels == 1)
    background = _fraction(passed, labels == 0)
    rate = (
        background * input_rate_hz
        if (background is not None and input_rate_hz)
        else None
    )
    return {
        "pass_fraction": float(passed.mean()),
        "signal_efficiency": signal,
        "background_efficiency": background,
        "rate_hz": rate,
    }


def _flip_rows(
    idx: np.ndarray,
    float_scores: np.ndarray,
    firmware_scores: np.ndarray,
    labels: np.ndarray,
    features: np.ndarray,
    names: Sequence[str],
    threshold: float,
) -> list[dict[str, Any]]:
    """The listed flips, nearest to the threshold last (most surprising first)."""
    distance = np.abs(np.asarray(float_scores)[idx] - threshold)
    if distance.ndim == 2:
        distance = distance.min(axis=1)
    order = idx[np.argsort(-distance, kind="stable")][:N_FLIPS_LISTED]
    rows = []
    for i in order:
        rows.append(
            {
                "index": int(i),
                "float_score": np.asarray(float_scores[i]).round(6).tolist(),
                "firmware_score": np.asarray(firmware_scores[i]).round(6).tolist(),
                "label": np.asarray(labels[i]).tolist(),
                "features": {n: float(v) for n, v in zip(names, features[i])},
            }
        )
    return rows


def _feature_shift(
    idx: np.ndarray, features: np.ndarray, names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Median of each feature for flipped events and for all events."""
    if not len(idx):
        return {}
    flipped = np.median(features[idx], axis=0)
    everyone = np.median(features, axis=0)
    return {
        n: {"flipped_median": float(a), "all_median": float(b)}
        for n, a, b in zip(names, flipped, everyone)
    }


def consistency_report(
    *,
    float_scores: np.ndarray,
    firmware_scores: np.ndarray,
    labels: np.ndarray,
    features: np.ndarray,
    feature_names: Sequence[str],
    points: Sequence[DecisionPoint],
    task: str,
    target_agreement: float,
) -> dict[str, Any]:
    """Compare firmware and float scores event by event.

    Parameters
    ----------
    float_scores, firmware_scores : ndarray, shape (n,) or (n, k)
        Scores of the trained float model and of the emulated firmware.
    labels : ndarray, shape (n,)
    features : ndarray, float32, shape (n, n_features)
        Raw (unscaled) features, reported for the events that flip.
    feature_names : sequence of str
    points : sequence of DecisionPoint
    task : str
    target_agreement : float
        Agreement the export must reach at every working point.

    Returns
    -------
    dict
        JSON-ready report (see the plugin README for the keys).
    """
    float_scores = np.asarray(float_scores, dtype=np.float64)
    firmware_scores = np.asarray(firmware_scores, dtype=np.float64)
    from trigml.metrics import score_difference_quantiles

    diff = (firmware_scores - float_scores).reshape(-1)
    absolute = score_difference_quantiles(float_scores, firmware_scores, ABS_QUANTILES)
    report: dict[str, Any] = {
        "n_events": len(float_scores),
        "task": task,
        "target_agreement": target_agreement,
        "score_difference": {
            "mean": float(diff.mean()) if diff.size else 0.0,
            "std": float(diff.std()) if diff.size else 0.0,
            "quantiles": _quantiles(diff, QUANTILES),
            "abs_quantiles": {f"{q:g}": v for q, v in absolute.items()},
        },
        "working_points": [],
    }
    agreements = []
    for point in points:
        a = _decide(float_scores, point.threshold)
        b = _decide(firmware_scores, point.threshold)
        agreement, idx, float_only, firmware_only = _compare(a, b)
        agreements.append(agreement)
        report["working_points"].append(
            {
                "name": point.name,
                "threshold": point.threshold,
                "level": point.level,
                "derived": point.derived,
                "agreement": agreement,
                "meets_target": agreement >= target_agreement,
                "n_flips": len(idx),
                "flips_to_fail": float_only,
                "flips_to_pass": firmware_only,
                "float": _rates(a, labels, task, point.input_rate_hz),
                "firmware": _rates(b, labels, task, point.input_rate_hz),
                "card": point.card,
                "flips": _flip_rows(
                    idx,
                    float_scores,
                    firmware_scores,
                    labels,
                    features,
                    feature_names,
                    point.threshold,
                ),
                "flip_features": _feature_shift(idx, features, feature_names),
            }
        )
    if float_scores.ndim == 2 and float_scores.shape[1] > 1:
        top = float(
            (float_scores.argmax(axis=1) == firmware_scores.argmax(axis=1)).mean()
        )
        report["top_class_agreement"] = top
        agreements.append(top)
    report["min_agreement"] = min(agreements) if agreements else None
    report["meets_target"] = (
        None if not agreements else bool(min(agreements) >= target_agreement)
    )
    return report


def agreement_summary(
    float_scores: np.ndarray,
    firmware_scores: np.ndarray,
    points: Sequence[DecisionPoint],
) -> float | None:
    """The lowest decision agreement over the working points (and the top class).

    Returns None when there is no decision to compare (regression without working
    points).
    """
    values = [
        _compare(
            _decide(float_scores, p.threshold), _decide(firmware_scores, p.threshold)
        )[0]
        for p in points
    ]
    if np.ndim(float_scores) == 2 and np.shape(float_scores)[1] > 1:
        values.append(
            float((np.argmax(float_scores, 1) == np.argmax(firmware_scores, 1)).mean())
        )
    return min(values) if values else None


def _quantiles(values: np.ndarray, qs: Sequence[float]) -> dict[str, float]:
    if not values.size:
        return {}
    return {f"{q:g}": float(v) for q, v in zip(qs, np.quantile(values, qs))}
