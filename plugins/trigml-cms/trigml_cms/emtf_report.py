"""Figures of merit of L1 muon pT assignments: turn-ons, rate vs threshold, resolution.

Assignments (the BDT, its lookup table, the analytic Δφ formula) are compared the way
a trigger review does: each gets the L1 threshold at which its turn-on reaches 90% at
a given true pT, and their rates on a zero-bias-like sample are compared there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trigml.errors import DataError

__all__ = ["DEFAULT_INPUT_RATE_HZ", "LHC_RATE_HZ", "compare_assignments"]

log = logging.getLogger(__name__)

#: Rate of LHC crossings with collisions, Hz (40 MHz × 2808/3564).
LHC_RATE_HZ = 31.6e6
#: Assumed rate of crossings with an endcap track of pT > 2 GeV, Hz (1% of them);
#: it sets the absolute scale of rates only, never a ratio between assignments.
DEFAULT_INPUT_RATE_HZ = 0.01 * LHC_RATE_HZ

_TURN_ON_BINS = np.concatenate([np.arange(0.0, 30.0, 1.0), np.arange(30.0, 62.0, 4.0)])
_RES_BINS = np.array([2.0, 4.0, 6.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0, 250.0])


def compare_assignments(
    assigned: Mapping[str, np.ndarray],
    pt_true: np.ndarray,
    *,
    rate_assigned: Mapping[str, np.ndarray],
    rate_pt: np.ndarray | None = None,
    rate_weights: np.ndarray | None = None,
    input_rate_hz: float | None = None,
    at_pt: float = 22.0,
    out_dir: Path | None = None,
    label: str = "",
) -> dict[str, Any]:
    """Compare L1 pT assignments at equal 90% turn-on point.

    Parameters
    ----------
    assigned : mapping of str to ndarray
        Assigned pT (GeV) per muon of the efficiency sample, by assignment name; the
        first one is the reference of the rate ratios. Use 0 for a muon without a
        track of the modes considered.
    pt_true : ndarray
        True pT (GeV) of the efficiency sample.
    rate_assigned : mapping of str to ndarray
        Assigned pT per event of the rate sample, same names.
    rate_pt : ndarray, optional
        True pT of the rate sample (for the composition of what passes).
    rate_weights : ndarray, optional
        Event weights of the rate sample.
    input_rate_hz : float, optional
        Rate the rate sample stands for; :data:`DEFAULT_INPUT_RATE_HZ` by default.
    at_pt : float
        True pT (GeV) at which each turn-on must reach 90%.
    out_dir : Path, optional
        Where to write ``turn_on.png``, ``rate_vs_threshold.png`` and
        ``resolution.png``.
    label : str
        Title of the figures.

    Returns
    -------
    dict
        Per assignment: ``threshold_gev`` (the highest whose efficiency at
        ``at_pt`` is ≥ 90%), ``efficiency_at`` and ``rate_hz`` there,
        ``rate_hz_at_90`` (interpolated to exactly 90% between that threshold and
        the next step), ``turn_on_fit`` (erf fit: x50, x90, width, plateau) and the
        1/pT response and resolution (IQR/1.349 for 15-30 GeV); ``rate_ratio`` of
        each assignment's ``rate_hz_at_90`` to the first's; ``plots``.
    """
    from trigml.metrics import (
        fit_turn_on,
        rate_curve,
        response_bias_resolution,
        turn_on,
    )
    from trigml_cms.emtf import threshold_for_turn_on

    rate_in = input_rate_hz or DEFAULT_INPUT_RATE_HZ
    names = list(assigned)
    if not names:
        raise DataError("compare_assignments: no assignment given")
    pt_true = np.asarray(pt_true, dtype=np.float64)
    out: dict[str, Any] = {"at_pt_gev": at_pt, "input_rate_hz": rate_in, "label": label}
    curves, fits, rates, tables = {}, {}, {}, {}
    for name in names:
        pt_l1 = np.asarray(assigned[name], dtype=np.float64)
        thr = threshold_for_turn_on(pt_l1, pt_true, at_pt)
        window = np.abs(pt_true - at_pt) < 1.0
        curve = turn_on(pt_true, pt_l1 >= thr, _TURN_ON_BINS)
        entry: dict[str, Any] = {
            "threshold_gev": thr,
            "efficiency_at": float((pt_l1[window] >= thr).mean()),
        }
        try:
            fit = fit_turn_on(curve, p0=(thr, 0.2 * thr, 1.0))
            fits[f"{name} (L1 ≥ {thr:.1f} GeV)"] = fit
            entry["turn_on_fit"] = {
                k: fit.to_dict()[k] for k in ("x50", "x90", "width", "plateau")
            }
        except Exception as exc:  # a failed fit must not hide the measured points
            log.warning("turn-on fit of %s failed: %s", name, exc)
        curves[f"{name} (L1 ≥ {thr:.1f} GeV)"] = curve

        rate_l1 = np.asarray(rate_assigned[name], dtype=np.float64)
        passed = rate_l1 >= thr
        w = np.ones(len(rate_l1)) if rate_weights is None else np.asarray(rate_weights)
        entry["rate_fraction"] = float(w[passed].sum() / w.sum())
        entry["rate_hz"] = entry["rate_fraction"] * rate_in
        entry["rate_hz_at_90"] = (
            _rate_at_efficiency(pt_l1[window], rate_l1, w, thr, 0.9) * rate_in
        )
        if rate_pt is not None and passed.any():
            entry["passing_true_pt_quantiles"] = np.percentile(
                np.asarray(rate_pt)[passed], [10, 50, 90]
            ).tolist()
        cuts = np.arange(0.0, 60.5, 0.5)
        rates[name] = rate_curve(rate_l1, rate_in, cuts, weights=rate_weights)

        has = pt_l1 > 0
        tables[name] = response_bias_resolution(
            1.0 / pt_l1[has], 1.0 / pt_true[has], pt_true[has], _RES_BINS
        )
        core = has & (pt_true > 15.0) & (pt_true < 30.0)
        ratio = pt_true[core] / pt_l1[core]
        q25, q50, q75 = np.percentile(ratio, [25, 50, 75]) if core.any() else (0, 0, 0)
        entry["invpt_response_median_15_30"] = float(q50)
        entry["invpt_resolution_15_30"] = float((q75 - q25) / 1.349)
        out[name] = entry
    ref = out[names[0]]["rate_hz_at_90"]
    out["rate_ratio"] = {
        f"{n}/{names[0]}": (out[n]["rate_hz_at_90"] / ref if ref > 0 else float("inf"))
        for n in names[1:]
    }
    if out_dir is not None:
        out["plots"] = _plots(curves, fits, rates, tables, rate_in, out_dir, label)
    return out


def _rate_at_efficiency(
    pt_window: np.ndarray,
    rate_l1: np.ndarray,
    weights: np.ndarray,
    threshold: float,
    target: float,
) -> float:
    """Accepted fraction where the efficiency is exactly ``target``.

    L1 thresholds come in steps, so the efficiency at ``threshold`` exceeds the
    target a little; the accepted fraction is interpolated linearly in efficiency
    between ``threshold`` and the next higher assigned-pT value.
    """
    above = pt_window[pt_window > threshold]
    if len(above) == 0:
        return float(weights[rate_l1 >= threshold].sum() / weights.sum())
    nxt = float(above.min())
    eff = [(pt_window >= t).mean() for t in (threshold, nxt)]
    acc = [weights[rate_l1 >= t].sum() / weights.sum() for t in (threshold, nxt)]
    if eff[0] <= target or eff[0] == eff[1]:
        return float(acc[0])
    share = (eff[0] - target) / (eff[0] - eff[1])
    return float(acc[0] + share * (acc[1] - acc[0]))


def _plots(
    curves: dict[str, Any],
    fits: dict[str, Any],
    rates: dict[str, tuple[np.ndarray, np.ndarray]],
    tables: dict[str, Any],
    rate_in: float,
    out_dir: Path,
    label: str,
) -> list[str]:
    from trigml.plots import plot_rate_vs_threshold, plot_resolution, plot_turn_on

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_turn_on(curves, fits, out_dir / "turn_on.png", title=label or None),
        plot_rate_vs_threshold(
            rates,
            out_dir / "rate_vs_threshold.png",
            rate_in,
            xlabel=r"L1 $p_\mathrm{T}$ threshold [GeV]",
            title=label or None,
        ),
        plot_resolution(
            tables,
            out_dir / "resolution.png",
            title=(f"{label}: " if label else "") + r"$(1/p_\mathrm{T})$ response",
        ),
    ]
    return [str(p) for p in paths]
