"""The figures of merit every trigger line reports, implemented once for all plugins.

Classification (ROC, AUC, rejection, TPR at a fixed FPR), efficiency and rate at a
threshold, working points solved for a target efficiency or rate, turn-on curves with an
error-function fit, flatness of the signal efficiency (SDE, Theil, CvM as hep_ml defines
them), regression bias and resolution, and the agreement of two scorers. Every function
is plain vectorised numpy; per-event weights are optional wherever they make sense.

Conventions
-----------
* A candidate **passes** a threshold ``t`` when ``score >= t``.
* Weights must be finite and non-negative with a positive sum; negative weights (as
  sWeights can be) are refused.
* Bad input raises :class:`MetricInputError`, both a :class:`trigml.errors.DataError`
  and a :class:`ValueError`, naming the function and the argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trigml.errors import DataError, RunFailure

__all__ = [
    "DEFAULT_FLATNESS_EFFICIENCIES",
    "Agreement",
    "MetricInputError",
    "QuantileCoverage",
    "ResolutionTable",
    "TurnOn",
    "TurnOnFit",
    "agreement",
    "auc",
    "efficiency",
    "efficiency_at",
    "fit_turn_on",
    "flatness_bins",
    "flatness_cvm",
    "flatness_sde",
    "flatness_theil",
    "quantile_coverage",
    "rate_curve",
    "rate_hz",
    "rejection_at",
    "response_bias_resolution",
    "roc_curve",
    "score_difference_quantiles",
    "threshold_for_efficiency",
    "threshold_for_rate",
    "tpr_at_fpr",
    "turn_on",
    "weighted_quantile",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Global signal efficiencies at which SDE and Theil are averaged (hep_ml's default).
DEFAULT_FLATNESS_EFFICIENCIES: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)

#: Central 1-sigma coverage, used for the Clopper-Pearson intervals of turn-on curves.
_ONE_SIGMA_CL = 0.682689492137086

#: Slack on cumulative fractions when solving a working point, against round-off.
_FRACTION_TOL = 1e-9

#: The ratio of the interquartile range to the standard deviation of a Gaussian.
_IQR_TO_SIGMA = 1.349


class MetricInputError(DataError, ValueError):
    """Input to a metric is empty, of the wrong shape or length, or not finite."""


# --------------------------------------------------------------------------------------
# input checks


def _fail(
    func: str, name: str, problem: str, hint: str | None = None
) -> MetricInputError:
    return MetricInputError(f"{func}: argument '{name}' {problem}", hint=hint)


def _float_1d(func: str, name: str, values: ArrayLike) -> FloatArray:
    """``values`` as a non-empty, finite, 1-D float64 array."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise _fail(func, name, f"must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise _fail(func, name, "is empty; pass at least one entry")
    if array.dtype.kind not in "biuf":
        raise _fail(func, name, f"must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise _fail(
            func,
            name,
            f"has {bad.size} non-finite value(s), the first at index {bad[0]} "
            f"({array[bad[0]]})",
            hint="drop or repair NaN/inf entries before computing metrics",
        )
    return array


def _bool_1d(func: str, name: str, values: ArrayLike) -> BoolArray:
    """``values`` as a non-empty 1-D boolean array (bool, or numbers 0 and 1)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise _fail(func, name, f"must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise _fail(func, name, "is empty; pass at least one entry")
    if array.dtype == np.bool_:
        return array
    if array.dtype.kind not in "biuf":
        raise _fail(func, name, f"must be boolean or 0/1, got dtype {array.dtype}")
    binary = (array == 0) | (array == 1)
    if not binary.all():
        bad = np.unique(array[~binary])[:5]
        raise _fail(func, name, f"must hold only 0 and 1, found {bad.tolist()}")
    return array == 1


def _same_length(func: str, **arrays: np.ndarray) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"'{k}' has {v}" for k, v in lengths.items())
        raise MetricInputError(f"{func}: arguments differ in length: {listed}")
    return next(iter(lengths.values()))


def _weights(func: str, weights: ArrayLike | None, n: int) -> FloatArray:
    """Per-entry weights (ones when ``None``), finite, non-negative, positive sum."""
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = _float_1d(func, "weights", weights)
    if len(w) != n:
        raise _fail(func, "weights", f"has {len(w)} entries where {n} are expected")
    if (w < 0).any():
        raise _fail(
            func,
            "weights",
            f"has {int((w < 0).sum())} negative value(s)",
            hint="metrics need non-negative weights; fold sWeights into a histogram "
            "first",
        )
    if not w.sum() > 0:
        raise _fail(func, "weights", "sum to zero")
    return w


def _fraction(func: str, name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise _fail(func, name, f"must lie in [0, 1], got {value}")
    return value


def _positive(func: str, name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise _fail(func, name, f"must be a positive finite number, got {value}")
    return value


# --------------------------------------------------------------------------------------
# ROC and friends


def roc_curve(
    scores: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Receiver operating characteristic of a binary classifier.

    Parameters
    ----------
    scores : array_like, float, shape (n,)
        Classifier output; larger means more signal-like.
    labels : array_like, bool or 0/1, shape (n,)
        True (1) for signal, False (0) for background.
    weights : array_like, float, shape (n,), optional
        Per-candidate weights; all ones by default.

    Returns
    -------
    fpr : ndarray, float64, shape (k + 1,)
        Background efficiency at each threshold, non-decreasing from 0.
    tpr : ndarray, float64, shape (k + 1,)
        Signal efficiency at each threshold, non-decreasing from 0.
    thresholds : ndarray, float64, shape (k + 1,)
        The distinct scores in decreasing order, preceded by ``+inf`` (nothing
        passes). At ``thresholds[i]`` the candidates with ``score >= thresholds[i]``
        pass; tied scores therefore pass together and give one point.

    Raises
    ------
    MetricInputError
        Empty or non-finite input, mismatched lengths, or only one class present.
    """
    s, y, w = _binary_inputs("roc_curve", scores, labels, weights)

    order = np.argsort(s)[::-1]
    s, y, w = s[order], y[order], w[order]
    tp = np.cumsum(np.where(y, w, 0.0))
    fp = np.cumsum(np.where(y, 0.0, w))

    # one point per distinct score: the end of each run of tied scores
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
    tpr = np.r_[0.0, tp[ends]] / tp[-1]
    fpr = np.r_[0.0, fp[ends]] / fp[-1]
    thresholds = np.r_[np.inf, s[ends]]
    return fpr, tpr, thresholds


def _binary_inputs(
    func: str, scores: ArrayLike, labels: ArrayLike, weights: ArrayLike | None
) -> tuple[FloatArray, BoolArray, FloatArray]:
    s = _float_1d(func, "scores", scores)
    y = _bool_1d(func, "labels", labels)
    n = _same_length(func, scores=s, labels=y)
    w = _weights(func, weights, n)
    if not (w[y].sum() > 0 and w[~y].sum() > 0):
        which = "signal (1)" if not w[y].sum() > 0 else "background (0)"
        raise _fail(
            func,
            "labels",
            f"holds no {which} entries with positive weight; a ROC needs both classes",
        )
    return s, y, w


def auc(
    scores: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None
) -> float:
    """Area under the ROC curve.

    Equal to the probability that a random signal candidate scores higher than a random
    background one, with ties counted as one half (the Mann-Whitney statistic).

    Parameters
    ----------
    scores, labels, weights
        As for :func:`roc_curve`.

    Returns
    -------
    float
        AUC in [0, 1]; 0.5 for a classifier that does not separate the classes.
    """
    fpr, tpr, _ = roc_curve(scores, labels, weights)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def rejection_at(
    scores: ArrayLike,
    labels: ArrayLike,
    signal_efficiency: float,
    weights: ArrayLike | None = None,
) -> float:
    """Background rejection 1/ε_bkg at a given signal efficiency.

    The background efficiency is read off the ROC curve at the first point reaching
    ``signal_efficiency``, interpolated linearly from the point before it (which is
    what randomly mixing the two neighbouring cuts would give).

    Parameters
    ----------
    scores, labels, weights
        As for :func:`roc_curve`.
    signal_efficiency : float
        Target signal efficiency in [0, 1].

    Returns
    -------
    float
        1/ε_bkg; ``inf`` when no background passes.
    """
    target = _fraction("rejection_at", "signal_efficiency", signal_efficiency)
    fpr, tpr, _ = roc_curve(scores, labels, weights)

    i = int(np.searchsorted(tpr, target - _FRACTION_TOL, side="left"))
    i = min(i, len(tpr) - 1)
    if i == 0 or tpr[i] <= target:
        eps_bkg = float(fpr[i])
    else:
        slope = (fpr[i] - fpr[i - 1]) / (tpr[i] - tpr[i - 1])
        eps_bkg = float(fpr[i - 1] + (target - tpr[i - 1]) * slope)
    return math.inf if eps_bkg <= 0 else 1.0 / eps_bkg


def tpr_at_fpr(
    scores: ArrayLike,
    labels: ArrayLike,
    fpr: float = 1e-5,
    weights: ArrayLike | None = None,
) -> float:
    """Signal efficiency at a fixed background efficiency (anomaly triggers).

    The largest signal efficiency whose background efficiency does not exceed ``fpr``,
    interpolated linearly towards the next ROC point.

    Parameters
    ----------
    scores, labels, weights
        As for :func:`roc_curve`.
    fpr : float
        Background (false-positive) efficiency in [0, 1]; 1e-5 by default.

    Returns
    -------
    float
        TPR in [0, 1]. With fewer than ``1/fpr`` background candidates the answer is
        limited by their count; keep at least ten times that many.
    """
    target = _fraction("tpr_at_fpr", "fpr", fpr)
    fprs, tprs, _ = roc_curve(scores, labels, weights)

    j = int(np.searchsorted(fprs, target + _FRACTION_TOL, side="right")) - 1
    if j >= len(fprs) - 1 or fprs[j] >= target:
        return float(tprs[j])
    slope = (tprs[j + 1] - tprs[j]) / (fprs[j + 1] - fprs[j])
    return float(tprs[j] + (target - fprs[j]) * slope)


# --------------------------------------------------------------------------------------
# efficiency, rate and working points


def efficiency(
    passed: ArrayLike, weights: ArrayLike | None = None
) -> tuple[float, float]:
    """Fraction of candidates (or events) that pass, with its binomial error.

    Parameters
    ----------
    passed : array_like, bool or 0/1, shape (n,)
        Decision per entry.
    weights : array_like, float, shape (n,), optional
        Per-entry weights.

    Returns
    -------
    eff : float
        Σ w·passed / Σ w.
    err : float
        Binomial standard error, sqrt(Σ w²(passed − eff)²) / Σ w, which reduces to
        sqrt(eff(1 − eff)/n) for unit weights (0 at eff = 0 or 1; use
        :func:`turn_on` for Clopper-Pearson intervals).
    """
    p = _bool_1d("efficiency", "passed", passed)
    w = _weights("efficiency", weights, len(p))

    total = w.sum()
    eff = float(np.dot(w, p) / total)
    err = float(np.sqrt(np.dot(w * w, (p - eff) ** 2)) / total)
    return eff, err


def efficiency_at(
    scores: ArrayLike, threshold: float, weights: ArrayLike | None = None
) -> tuple[float, float]:
    """Efficiency of the cut ``score >= threshold``, with its binomial error.

    Parameters
    ----------
    scores : array_like, float, shape (n,)
        Scores of the sample (signal for an efficiency, minimum bias for a rate).
    threshold : float
        Cut value.
    weights : array_like, float, shape (n,), optional
        Per-entry weights.

    Returns
    -------
    eff, err : float
        As for :func:`efficiency`.
    """
    s = _float_1d("efficiency_at", "scores", scores)
    return efficiency(s >= threshold, weights)


def rate_hz(
    scores_minbias: ArrayLike,
    threshold: float,
    input_rate_hz: float,
    weights: ArrayLike | None = None,
) -> float:
    """Output rate of the cut ``score >= threshold`` on minimum-bias events.

    Parameters
    ----------
    scores_minbias : array_like, float, shape (n,)
        One score per minimum-bias (zero-bias) event; for candidate-level scores, pass
        the highest candidate score of each event.
    threshold : float
        Cut value.
    input_rate_hz : float
        Rate of events entering the trigger, Hz (LHC bunch crossings with collisions:
        about 31.6e6; LHCb HLT1 input: 30e6).
    weights : array_like, float, shape (n,), optional
        Per-event weights.

    Returns
    -------
    float
        Accepted fraction × ``input_rate_hz``, Hz.
    """
    rate_in = _positive("rate_hz", "input_rate_hz", input_rate_hz)
    s = _float_1d("rate_hz", "scores_minbias", scores_minbias)
    eff, _ = efficiency(s >= threshold, weights)
    return eff * rate_in


def _cumulative_pass(
    func: str, name: str, scores: ArrayLike, weights: ArrayLike | None
) -> tuple[FloatArray, FloatArray]:
    """Distinct scores in decreasing order and the weighted fraction passing each."""
    s = _float_1d(func, name, scores)
    w = _weights(func, weights, len(s))

    order = np.argsort(s)[::-1]
    s, w = s[order], w[order]
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
    cumulative = np.cumsum(w)
    return s[ends], cumulative[ends] / cumulative[-1]


def threshold_for_efficiency(
    scores: ArrayLike, target: float, weights: ArrayLike | None = None
) -> float:
    """The highest threshold whose efficiency reaches ``target``.

    Parameters
    ----------
    scores : array_like, float, shape (n,)
        Scores of the sample the efficiency refers to (usually signal).
    target : float
        Wanted efficiency in [0, 1].
    weights : array_like, float, shape (n,), optional
        Per-entry weights.

    Returns
    -------
    float
        A score value ``t`` from ``scores`` such that the fraction with
        ``score >= t`` is at least ``target`` and raising ``t`` to the next
        distinct score would fall below it. Tied scores pass or fail together, so
        the efficiency reached can exceed ``target``. For ``target == 0`` the value
        just above the largest score (nothing passes) is returned.
    """
    func = "threshold_for_efficiency"
    goal = _fraction(func, "target", target)
    values, passing = _cumulative_pass(func, "scores", scores, weights)
    return float(_cuts_for_efficiencies(values, passing, np.array([goal]))[0])


def _cuts_for_efficiencies(
    values: FloatArray, passing: FloatArray, targets: FloatArray
) -> FloatArray:
    """Thresholds of :func:`threshold_for_efficiency` for several targets at once."""
    i = np.searchsorted(passing, targets - _FRACTION_TOL, side="left")
    cuts = values[np.minimum(i, len(values) - 1)]
    return np.where(targets <= 0, np.nextafter(values[0], np.inf), cuts)


def threshold_for_rate(
    scores_minbias: ArrayLike,
    target_rate_hz: float,
    input_rate_hz: float,
    weights: ArrayLike | None = None,
) -> float:
    """The lowest threshold whose output rate does not exceed ``target_rate_hz``.

    Parameters
    ----------
    scores_minbias : array_like, float, shape (n,)
        One score per minimum-bias event.
    target_rate_hz : float
        Rate budget of the line, Hz.
    input_rate_hz : float
        Rate of events entering the trigger, Hz.
    weights : array_like, float, shape (n,), optional
        Per-event weights.

    Returns
    -------
    float
        A score value ``t`` from ``scores_minbias`` with rate(``score >= t``) ≤ the
        budget, such that the next lower distinct score would exceed it. Ties can
        leave the rate below the budget. When even the highest score alone exceeds
        the budget, the value just above it (rate 0) is returned.
    """
    func = "threshold_for_rate"
    rate_in = _positive(func, "input_rate_hz", input_rate_hz)
    budget = float(target_rate_hz)
    if not (math.isfinite(budget) and budget >= 0):
        raise _fail(func, "target_rate_hz", f"must be finite and >= 0, got {budget}")
    values, passing = _cumulative_pass(func, "scores_minbias", scores_minbias, weights)

    i = int(np.searchsorted(passing, budget / rate_in + _FRACTION_TOL, side="right"))
    if i == 0:
        return float(np.nextafter(values[0], np.inf))
    return float(values[i - 1])


def rate_curve(
    scores_minbias: ArrayLike,
    input_rate_hz: float,
    thresholds: ArrayLike | None = None,
    weights: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Output rate as a function of the threshold.

    Parameters
    ----------
    scores_minbias : array_like, float, shape (n,)
        One score per minimum-bias event.
    input_rate_hz : float
        Rate of events entering the trigger, Hz.
    thresholds : array_like, float, shape (k,), optional
        Thresholds to evaluate; 101 evenly spaced values from the lowest to the
        highest score by default.
    weights : array_like, float, shape (n,), optional
        Per-event weights.

    Returns
    -------
    thresholds : ndarray, float64, shape (k,)
    rates : ndarray, float64, shape (k,)
        Rate of ``score >= threshold``, Hz.
    """
    func = "rate_curve"
    rate_in = _positive(func, "input_rate_hz", input_rate_hz)
    s = _float_1d(func, "scores_minbias", scores_minbias)
    w = _weights(func, weights, len(s))
    if thresholds is None:
        cuts = np.linspace(s.min(), s.max(), 101)
    else:
        cuts = _float_1d(func, "thresholds", thresholds)

    order = np.argsort(s)
    s_sorted = s[order]
    # weight at or above each sorted position
    above = np.r_[np.cumsum(w[order][::-1])[::-1], 0.0]
    first_passing = np.searchsorted(s_sorted, cuts, side="left")
    return cuts, above[first_passing] / above[0] * rate_in


# --------------------------------------------------------------------------------------
# turn-on curves


def _json_list(values: FloatArray) -> list[float | None]:
    """Floats for JSON, with None where a value is NaN (strict JSON has no NaN)."""
    return [None if math.isnan(v) else float(v) for v in values.tolist()]


@dataclass(frozen=True)
class TurnOn:
    """Efficiency against a true (or offline) quantity, in bins.

    Attributes
    ----------
    edges : ndarray, float64, shape (k + 1,)
        Bin edges, in the unit of the binned quantity (GeV for pT).
    centres : ndarray, float64, shape (k,)
    eff : ndarray, float64, shape (k,)
        Weighted efficiency per bin; NaN for an empty bin.
    err_low, err_high : ndarray, float64, shape (k,)
        Distances from ``eff`` to the lower and upper end of the central 68.3%
        Clopper-Pearson interval (for weighted entries, computed with the effective
        number of entries (Σw)²/Σw²); NaN for an empty bin.
    n_total, n_passed : ndarray, float64, shape (k,)
        Sum of weights of all and of passing entries per bin (counts for unit
        weights).
    """

    edges: FloatArray
    centres: FloatArray
    eff: FloatArray
    err_low: FloatArray
    err_high: FloatArray
    n_total: FloatArray
    n_passed: FloatArray

    @property
    def err(self) -> FloatArray:
        """Symmetrised error per bin, the mean of ``err_low`` and ``err_high``."""
        return (self.err_low + self.err_high) / 2.0

    def to_dict(self) -> dict[str, list[float | None]]:
        """JSON-friendly lists; an empty bin's NaN becomes None."""
        return {
            "edges": _json_list(self.edges),
            "eff": _json_list(self.eff),
            "err_low": _json_list(self.err_low),
            "err_high": _json_list(self.err_high),
            "n_total": _json_list(self.n_total),
            "n_passed": _json_list(self.n_passed),
        }


def _bin_edges(func: str, values: FloatArray, bins: int | ArrayLike) -> FloatArray:
    if isinstance(bins, (int, np.integer)):
        if bins < 1:
            raise _fail(func, "bins", f"must be at least 1, got {bins}")
        low, high = float(values.min()), float(values.max())
        if high == low:
            high = low + 1.0
        return np.linspace(low, high, int(bins) + 1)
    edges = _float_1d(func, "bins", bins)
    if len(edges) < 2 or not (np.diff(edges) > 0).all():
        raise _fail(func, "bins", "must be at least two strictly increasing edges")
    return edges


def _float_bincount(index: NDArray[np.intp], weights: FloatArray, k: int) -> FloatArray:
    """Sum of ``weights`` per bin ``0..k-1``."""
    return np.asarray(np.bincount(index, weights=weights, minlength=k), np.float64)


def _bin_index(values: FloatArray, edges: FloatArray) -> NDArray[np.intp]:
    """Bin of each value, ``-1`` outside; the last bin includes its upper edge."""
    index = np.searchsorted(edges, values, side="right") - 1
    index[values == edges[-1]] = len(edges) - 2
    index[(values < edges[0]) | (values > edges[-1])] = -1
    return index


def turn_on(
    x_true: ArrayLike,
    passed: ArrayLike,
    bins: int | ArrayLike,
    weights: ArrayLike | None = None,
) -> TurnOn:
    """Binned efficiency against a true quantity (a trigger turn-on curve).

    Parameters
    ----------
    x_true : array_like, float, shape (n,)
        True or offline quantity per object, e.g. offline pT in GeV.
    passed : array_like, bool or 0/1, shape (n,)
        Whether the trigger fired for the object.
    bins : int or array_like of float
        Number of uniform bins between the lowest and highest ``x_true``, or the bin
        edges. Entries outside the edges are ignored.
    weights : array_like, float, shape (n,), optional
        Per-object weights.

    Returns
    -------
    TurnOn
        Efficiency per bin with Clopper-Pearson errors at 68.3% coverage.
    """
    from scipy.special import betaincinv

    func = "turn_on"
    x = _float_1d(func, "x_true", x_true)
    p = _bool_1d(func, "passed", passed)
    n = _same_length(func, x_true=x, passed=p)
    w = _weights(func, weights, n)
    edges = _bin_edges(func, x, bins)

    index = _bin_index(x, edges)
    inside = index >= 0
    k = len(edges) - 1
    cell = index[inside]
    total = _float_bincount(cell, w[inside], k)
    sum_w2 = _float_bincount(cell, w[inside] ** 2, k)
    passing = _float_bincount(cell, (w * p)[inside], k)

    filled = total > 0
    eff = np.full(k, np.nan)
    eff[filled] = passing[filled] / total[filled]
    # effective counts make the interval right for weighted entries
    n_eff = np.where(filled, total**2 / np.where(filled, sum_w2, 1.0), 0.0)
    k_eff = np.where(filled, eff, 0.0) * n_eff
    alpha = 1.0 - _ONE_SIGMA_CL
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = betaincinv(k_eff, n_eff - k_eff + 1, alpha / 2)
        upper = betaincinv(k_eff + 1, n_eff - k_eff, 1 - alpha / 2)
    lower = np.where(k_eff <= 0, 0.0, lower)
    upper = np.where(k_eff >= n_eff, 1.0, upper)
    err_low = np.where(filled, eff - lower, np.nan)
    err_high = np.where(filled, upper - eff, np.nan)

    return TurnOn(
        edges=edges,
        centres=(edges[1:] + edges[:-1]) / 2.0,
        eff=eff,
        err_low=np.clip(err_low, 0.0, None),
        err_high=np.clip(err_high, 0.0, None),
        n_total=total,
        n_passed=passing,
    )


def _erf_turn_on(x: FloatArray, mu: float, sigma: float, plateau: float) -> FloatArray:
    from scipy.special import erf

    result: FloatArray = plateau / 2.0 * (1.0 + erf((x - mu) / (math.sqrt(2) * sigma)))
    return result


@dataclass(frozen=True)
class TurnOnFit:
    """Error-function fit ``plateau/2 · (1 + erf((x − mu)/(√2·sigma)))``.

    Attributes
    ----------
    mu, sigma, plateau : float
        Fitted parameters; ``mu`` and ``sigma`` in the unit of the binned quantity.
    mu_err, sigma_err, plateau_err : float
        Their standard errors from the fit covariance.
    chi2 : float
        χ² of the fit with the symmetrised bin errors.
    ndf : int
        Number of fitted bins minus three.
    """

    mu: float
    sigma: float
    plateau: float
    mu_err: float
    sigma_err: float
    plateau_err: float
    chi2: float
    ndf: int

    @property
    def x50(self) -> float:
        """Where the efficiency reaches 50% of the plateau (equal to ``mu``)."""
        return self.x_at(0.5)

    @property
    def x90(self) -> float:
        """Where the efficiency reaches 90% of the plateau, ``mu + 1.2816·sigma``."""
        return self.x_at(0.9)

    @property
    def width(self) -> float:
        """The Gaussian width ``sigma`` of the turn-on."""
        return self.sigma

    def x_at(self, fraction: float) -> float:
        """Where the efficiency reaches ``fraction`` (in (0, 1)) of the plateau."""
        from scipy.special import erfinv

        if not 0.0 < fraction < 1.0:
            raise _fail("TurnOnFit.x_at", "fraction", f"must lie in (0, 1): {fraction}")
        return float(self.mu + math.sqrt(2) * self.sigma * erfinv(2 * fraction - 1))

    def __call__(self, x: ArrayLike) -> FloatArray:
        """The fitted efficiency at ``x``."""
        return _erf_turn_on(
            np.asarray(x, dtype=np.float64), self.mu, self.sigma, self.plateau
        )

    def to_dict(self) -> dict[str, float]:
        """The parameters and derived points, for a report or a model card."""
        return {
            "mu": self.mu,
            "sigma": self.sigma,
            "plateau": self.plateau,
            "mu_err": self.mu_err,
            "sigma_err": self.sigma_err,
            "plateau_err": self.plateau_err,
            "x50": self.x50,
            "x90": self.x90,
            "width": self.width,
            "chi2": self.chi2,
            "ndf": float(self.ndf),
        }


def fit_turn_on(
    curve: TurnOn, p0: tuple[float, float, float] | None = None
) -> TurnOnFit:
    """Fit an error function to a turn-on curve.

    Parameters
    ----------
    curve : TurnOn
        The binned efficiency; empty bins are skipped.
    p0 : tuple of float, optional
        Start values ``(mu, sigma, plateau)``; by default ``mu`` where the curve first
        reaches half its maximum, ``sigma`` a tenth of the range, ``plateau`` the
        maximum.

    Returns
    -------
    TurnOnFit

    Raises
    ------
    MetricInputError
        Fewer than four non-empty bins.
    RunFailure
        The fit did not converge.
    """
    from scipy.optimize import curve_fit

    filled = curve.n_total > 0
    if filled.sum() < 4:
        raise _fail(
            "fit_turn_on",
            "curve",
            f"has {int(filled.sum())} non-empty bins; an erf fit needs at least 4",
        )
    x, y = curve.centres[filled], curve.eff[filled]
    # bins at 0 or 1 have a one-sided interval; keep a floor so none dominates
    sigma_y = np.maximum(curve.err[filled], 1e-3)

    if p0 is None:
        top = float(max(y.max(), 1e-3))
        mu0 = float(x[np.argmax(y >= top / 2)])
        p0 = (mu0, float(x.max() - x.min()) / 10.0, top)
    spread = float(curve.edges[-1] - curve.edges[0])
    bounds = (
        [curve.edges[0] - spread, 1e-6 * spread, 0.0],
        [curve.edges[-1] + spread, 10.0 * spread, 1.0],
    )
    p_start = np.clip(np.asarray(p0, dtype=np.float64), bounds[0], bounds[1])
    try:
        params, cov = curve_fit(
            _erf_turn_on,
            x,
            y,
            p0=p_start,
            sigma=sigma_y,
            absolute_sigma=True,
            bounds=bounds,
            maxfev=10_000,
        )
    except (RuntimeError, ValueError) as exc:
        raise RunFailure(
            f"fit_turn_on: the erf fit did not converge ({exc})",
            hint="pass start values p0=(mu, sigma, plateau) or use wider bins",
        ) from exc

    errors = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    residual = (y - _erf_turn_on(x, *params)) / sigma_y
    return TurnOnFit(
        mu=float(params[0]),
        sigma=float(params[1]),
        plateau=float(params[2]),
        mu_err=float(errors[0]),
        sigma_err=float(errors[1]),
        plateau_err=float(errors[2]),
        chi2=float(np.sum(residual**2)),
        ndf=int(len(x) - 3),
    )


# --------------------------------------------------------------------------------------
# flatness of the signal efficiency


def flatness_bins(
    uniform_features: ArrayLike,
    n_bins: int = 10,
    binning: Literal["quantile", "uniform"] = "quantile",
) -> tuple[NDArray[np.intp], int]:
    """Cell of each candidate in a grid over the variables efficiency should be flat in.

    Parameters
    ----------
    uniform_features : array_like, float, shape (n,) or (n, d)
        The variables (Dalitz coordinates, decay time, mass).
    n_bins : int
        Bins per axis; the grid has ``n_bins**d`` cells.
    binning : {"quantile", "uniform"}
        ``"quantile"`` (the default, as hep_ml does): edges at the quantiles of each
        axis, so each axis bin holds about the same number of candidates.
        ``"uniform"``: evenly spaced edges from the lowest to the highest value.

    Returns
    -------
    cells : ndarray, intp, shape (n,)
        Flat index of each candidate's cell.
    n_cells : int
    """
    func = "flatness_bins"
    features = np.asarray(uniform_features)
    if features.ndim == 1:
        features = features[:, None]
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise _fail(
            func,
            "uniform_features",
            f"must have shape (n, d) with n, d >= 1, got {features.shape}",
        )
    if n_bins < 1:
        raise _fail(func, "n_bins", f"must be at least 1, got {n_bins}")
    if binning not in ("quantile", "uniform"):
        raise _fail(
            func, "binning", f"must be 'quantile' or 'uniform', got {binning!r}"
        )

    axes = []
    for j in range(features.shape[1]):
        column = _float_1d(func, f"uniform_features[:, {j}]", features[:, j])
        if binning == "quantile":
            inner = np.quantile(column, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
        else:
            inner = np.linspace(column.min(), column.max(), n_bins + 1)[1:-1]
        axes.append(np.searchsorted(inner, column, side="right"))
    shape = (n_bins,) * features.shape[1]
    cells = np.ravel_multi_index(tuple(axes), shape)
    return cells.astype(np.intp), int(np.prod(shape))


def _flatness_inputs(
    func: str,
    scores: ArrayLike,
    uniform_features: ArrayLike,
    weights: ArrayLike | None,
    n_bins: int,
    binning: Literal["quantile", "uniform"],
) -> tuple[FloatArray, FloatArray, NDArray[np.intp], int]:
    s = _float_1d(func, "scores", scores)
    w = _weights(func, weights, len(s))
    features = np.asarray(uniform_features)
    if len(features) != len(s):
        raise MetricInputError(
            f"{func}: arguments differ in length: 'scores' has {len(s)}, "
            f"'uniform_features' has {len(features)}"
        )
    cells, n_cells = flatness_bins(features, n_bins, binning)
    return s, w, cells, n_cells


def _bin_efficiencies(
    func: str,
    s: FloatArray,
    w: FloatArray,
    cells: NDArray[np.intp],
    n_cells: int,
    efficiencies: Sequence[float],
) -> tuple[FloatArray, FloatArray]:
    """Per-cut, per-cell efficiency (shape (cuts, cells)) and cell weights."""
    if len(efficiencies) == 0:
        raise _fail(
            func, "efficiencies", "is empty; pass global efficiencies to cut at"
        )
    targets = np.array([_fraction(func, "efficiencies", e) for e in efficiencies])
    cell_weight = _float_bincount(cells, w, n_cells)
    filled = cell_weight > 0
    values, passing = _cumulative_pass(func, "scores", s, w)
    rows = []
    for cut in _cuts_for_efficiencies(values, passing, targets):
        passed = _float_bincount(cells, w * (s >= cut), n_cells)
        rows.append(passed[filled] / cell_weight[filled])
    return np.asarray(rows), cell_weight[filled] / cell_weight.sum()


def flatness_sde(
    scores: ArrayLike,
    uniform_features: ArrayLike,
    weights: ArrayLike | None = None,
    n_bins: int = 10,
    efficiencies: Sequence[float] = DEFAULT_FLATNESS_EFFICIENCIES,
    binning: Literal["quantile", "uniform"] = "quantile",
) -> float:
    """Standard deviation of the efficiency across bins (SDE), as hep_ml defines it.

    For each global cut giving signal efficiency ε in ``efficiencies``, the
    efficiencies of the cells of a grid over ``uniform_features`` are compared with
    their weighted mean; SDE = sqrt(mean over cuts of the cell-weighted variance).

    Parameters
    ----------
    scores : array_like, float, shape (n,)
        Scores of **signal** candidates only.
    uniform_features : array_like, float, shape (n,) or (n, d)
        Variables the efficiency should not depend on.
    weights : array_like, float, shape (n,), optional
        Per-candidate weights; a cell weighs the sum of its weights.
    n_bins : int
        Bins per axis (10 by default).
    efficiencies : sequence of float
        Global efficiencies of the cuts (0.5, 0.6, ..., 0.9 by default); each cut
        is :func:`threshold_for_efficiency` of the target.
    binning : {"quantile", "uniform"}
        Equal-population (default) or evenly spaced bins per axis, see
        :func:`flatness_bins`.

    Returns
    -------
    float
        0 for a perfectly flat efficiency; at most 0.5.
    """
    func = "flatness_sde"
    s, w, cells, n_cells = _flatness_inputs(
        func, scores, uniform_features, weights, n_bins, binning
    )
    effs, cell_w = _bin_efficiencies(func, s, w, cells, n_cells, efficiencies)
    means = effs @ cell_w
    variances = ((effs - means[:, None]) ** 2) @ cell_w
    return float(np.sqrt(variances.mean()))


def flatness_theil(
    scores: ArrayLike,
    uniform_features: ArrayLike,
    weights: ArrayLike | None = None,
    n_bins: int = 10,
    efficiencies: Sequence[float] = DEFAULT_FLATNESS_EFFICIENCIES,
    binning: Literal["quantile", "uniform"] = "quantile",
) -> float:
    """Theil index of the cell efficiencies, averaged over global cuts (hep_ml).

    For each cut, with r = ε_cell / (cell-weighted mean ε), the index is the
    cell-weighted mean of r·ln r (r floored at 1e-10, so an empty cell adds nothing).

    Parameters
    ----------
    scores, uniform_features, weights, n_bins, efficiencies, binning
        As for :func:`flatness_sde`.

    Returns
    -------
    float
        0 for a perfectly flat efficiency; -ln ε when only a fraction ε of the cells
        (by weight) pass and all of them fully.
    """
    func = "flatness_theil"
    s, w, cells, n_cells = _flatness_inputs(
        func, scores, uniform_features, weights, n_bins, binning
    )
    effs, cell_w = _bin_efficiencies(func, s, w, cells, n_cells, efficiencies)
    means = effs @ cell_w
    ratio = np.maximum(effs / means[:, None], 1e-10)
    return float(((ratio * np.log(ratio)) @ cell_w).mean())


def flatness_cvm(
    scores: ArrayLike,
    uniform_features: ArrayLike,
    weights: ArrayLike | None = None,
    n_bins: int = 10,
    binning: Literal["quantile", "uniform"] = "quantile",
) -> float:
    """Binned Cramér-von Mises flatness (hep_ml's ``BinBasedCvM``).

    For each cell of the grid, the score distribution F_cell is compared with the
    distribution F of all candidates::

        CvM = Σ_cells w_cell · ∫ (F_cell(s) − F(s))² dF(s)

    with w_cell the cell's share of the total weight. It needs no global cuts, so it
    takes no ``efficiencies``. The integral is exact (computed with prefix sums in
    O(n log n)); tied scores are handled as one step of each distribution.

    Parameters
    ----------
    scores, uniform_features, weights, n_bins, binning
        As for :func:`flatness_sde`; ``scores`` of signal candidates only.

    Returns
    -------
    float
        0 when every cell has the global score distribution.
    """
    func = "flatness_cvm"
    s, w, cells, _ = _flatness_inputs(
        func, scores, uniform_features, weights, n_bins, binning
    )
    keep = w > 0
    s, w, cells = s[keep], w[keep], cells[keep]
    n = len(s)

    order = np.argsort(s)
    s, w, cells = s[order], w[order], cells[order]
    total = w.sum()

    # runs of tied scores: every position sees the CDFs at the end of its run
    new_run = np.r_[True, s[1:] != s[:-1]]
    run_of = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_end = np.r_[run_start[1:], n] - 1
    cumulative = np.cumsum(w)
    f_global = cumulative[run_end[run_of]] / total
    measure = w / total
    # prefix sums of dF, F·dF and F²·dF over positions
    p0 = np.r_[0.0, np.cumsum(measure)]
    p1 = np.r_[0.0, np.cumsum(measure * f_global)]
    p2 = np.r_[0.0, np.cumsum(measure * f_global**2)]

    # positions grouped by cell, in increasing score within each cell
    # (a stable sort keeps them in score order; radix sort on 16-bit keys is fast)
    cell_total = np.bincount(cells, weights=w)
    key = cells.astype(np.uint16) if len(cell_total) <= 65536 else cells
    by_cell = np.argsort(key, kind="stable")
    cell_sorted = cells[by_cell]
    first = np.r_[True, cell_sorted[1:] != cell_sorted[:-1]]
    running = np.cumsum(w[by_cell])
    offset = np.maximum.accumulate(np.where(first, running - w[by_cell], 0.0))
    f_cell = (running - offset) / cell_total[cell_sorted]

    # F_cell holds its value from the run of an entry up to the run of the next entry
    # of the same cell, or to the end
    has_next = np.r_[~first[1:], False]
    following = np.r_[by_cell[1:], 0]
    start = run_start[run_of[by_cell]]
    end = np.where(has_next, run_start[run_of[following]], n)
    segment = (
        f_cell**2 * (p0[end] - p0[start])
        - 2 * f_cell * (p1[end] - p1[start])
        + (p2[end] - p2[start])
    )
    per_cell = np.bincount(cell_sorted, weights=segment, minlength=len(cell_total))
    # before its first entry a cell's CDF is 0
    per_cell[cell_sorted[first]] += p2[start[first]]

    cell_share = cell_total / total
    return float(per_cell @ cell_share)


# --------------------------------------------------------------------------------------
# regression


def weighted_quantile(
    values: ArrayLike, q: float | ArrayLike, weights: ArrayLike | None = None
) -> FloatArray:
    """Quantiles with per-entry weights, equal to ``numpy.quantile`` for unit weights.

    The sorted values are placed at cumulative positions (S_i − w_i)/(S_n − w_n), with
    S_i the running sum of weights, and interpolated linearly; entries of zero weight
    are ignored.

    Parameters
    ----------
    values : array_like, float, shape (n,)
    q : float or array_like of float
        Quantiles in [0, 1].
    weights : array_like, float, shape (n,), optional

    Returns
    -------
    ndarray, float64
        One value per quantile (shape of ``q``).
    """
    func = "weighted_quantile"
    v = _float_1d(func, "values", values)
    qs = np.asarray(q, dtype=np.float64)
    if ((qs < 0) | (qs > 1)).any() or not np.isfinite(qs).all():
        raise _fail(func, "q", f"must lie in [0, 1], got {qs.tolist()}")
    if weights is None:
        result: FloatArray = np.quantile(v, qs)
        return np.asarray(result, dtype=np.float64)
    w = _weights(func, weights, len(v))

    keep = w > 0
    v, w = v[keep], w[keep]
    order = np.argsort(v)
    v, w = v[order], w[order]
    if len(v) == 1:
        return np.full(qs.shape, v[0])
    running = np.cumsum(w)
    position = (running - w) / (running[-1] - w[-1])
    return np.asarray(np.interp(qs, position, v), dtype=np.float64)


@dataclass(frozen=True)
class ResolutionTable:
    """Response and resolution of a regression in bins of a variable.

    Attributes
    ----------
    edges : ndarray, float64, shape (k + 1,)
        Bin edges in the unit of the binned variable.
    centres : ndarray, float64, shape (k,)
    n : ndarray, int64, shape (k,)
        Entries per bin.
    median : ndarray, float64, shape (k,)
        Median response per bin (the bias: 1 for ``ratio``, 0 for ``difference``
        means unbiased); NaN for an empty bin.
    resolution : ndarray, float64, shape (k,)
        Interquartile range / 1.349 of the response per bin (equal to sigma for a
        Gaussian); NaN for an empty bin.
    median_err, resolution_err : ndarray, float64, shape (k,)
        Gaussian approximations of their errors, 1.2533·resolution/√n and
        resolution/√(2n), using the effective number of entries for weights.
    kind : str
        ``"ratio"`` (pred/true) or ``"difference"`` (pred − true).
    """

    edges: FloatArray
    centres: FloatArray
    n: NDArray[np.int64]
    median: FloatArray
    resolution: FloatArray
    median_err: FloatArray
    resolution_err: FloatArray
    kind: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly lists for a report or a model card; NaN becomes None."""
        return {
            "kind": self.kind,
            "edges": _json_list(self.edges),
            "n": self.n.tolist(),
            "median": _json_list(self.median),
            "resolution": _json_list(self.resolution),
            "median_err": _json_list(self.median_err),
            "resolution_err": _json_list(self.resolution_err),
        }


def response_bias_resolution(
    pred: ArrayLike,
    true: ArrayLike,
    bin_var: ArrayLike,
    bins: int | ArrayLike,
    weights: ArrayLike | None = None,
    kind: Literal["ratio", "difference"] = "ratio",
) -> ResolutionTable:
    """Median response and IQR/1.349 resolution in bins of a variable.

    Parameters
    ----------
    pred : array_like, float, shape (n,)
        Regressed quantity (e.g. calibrated jet pT, GeV).
    true : array_like, float, shape (n,)
        Its true value, same unit.
    bin_var : array_like, float, shape (n,)
        Variable to bin in (true pT in GeV, η, pileup).
    bins : int or array_like of float
        Number of uniform bins over ``bin_var``, or bin edges; entries outside are
        ignored.
    weights : array_like, float, shape (n,), optional
    kind : {"ratio", "difference"}
        Response pred/true (default; ``true`` must not be 0) or pred − true (for
        quantities that can be zero, such as a distortion correction).

    Returns
    -------
    ResolutionTable
    """
    func = "response_bias_resolution"
    p = _float_1d(func, "pred", pred)
    t = _float_1d(func, "true", true)
    v = _float_1d(func, "bin_var", bin_var)
    n = _same_length(func, pred=p, true=t, bin_var=v)
    w = _weights(func, weights, n)
    if kind == "ratio":
        if (t == 0).any():
            raise _fail(
                func,
                "true",
                f"has {int((t == 0).sum())} zero value(s); the ratio is undefined",
                hint="use kind='difference'",
            )
        response = p / t
    elif kind == "difference":
        response = p - t
    else:
        raise _fail(func, "kind", f"must be 'ratio' or 'difference', got {kind!r}")
    edges = _bin_edges(func, v, bins)

    index = _bin_index(v, edges)
    k = len(edges) - 1
    median = np.full(k, np.nan)
    resolution = np.full(k, np.nan)
    n_eff = np.zeros(k)
    counts = np.bincount(index[index >= 0], minlength=k).astype(np.int64)
    order = np.argsort(index)
    bounds = np.searchsorted(index[order], np.arange(-1, k + 1))
    for b in range(k):
        members = order[bounds[b + 1] : bounds[b + 2]]
        wb = w[members]
        if len(members) == 0 or not wb.sum() > 0:
            continue
        q25, q50, q75 = weighted_quantile(
            response[members], [0.25, 0.5, 0.75], None if weights is None else wb
        )
        median[b] = q50
        resolution[b] = (q75 - q25) / _IQR_TO_SIGMA
        n_eff[b] = wb.sum() ** 2 / np.sum(wb**2)

    with np.errstate(invalid="ignore", divide="ignore"):
        median_err = np.where(n_eff > 0, 1.2533 * resolution / np.sqrt(n_eff), np.nan)
        resolution_err = np.where(n_eff > 0, resolution / np.sqrt(2.0 * n_eff), np.nan)
    return ResolutionTable(
        edges=edges,
        centres=(edges[1:] + edges[:-1]) / 2.0,
        n=counts,
        median=median,
        resolution=resolution,
        median_err=median_err,
        resolution_err=resolution_err,
        kind=kind,
    )


@dataclass(frozen=True)
class QuantileCoverage:
    """How often the truth lies below each predicted quantile.

    Attributes
    ----------
    q : ndarray, float64, shape (k,)
        Nominal quantiles.
    coverage : ndarray, float64, shape (k,)
        Observed fraction with ``true <= pred_q``; equal to ``q`` when calibrated.
    err : ndarray, float64, shape (k,)
        Binomial error of ``coverage``.
    """

    q: FloatArray
    coverage: FloatArray
    err: FloatArray

    @property
    def deviation(self) -> FloatArray:
        """``coverage − q`` per quantile."""
        return self.coverage - self.q


def quantile_coverage(
    pred_q: ArrayLike,
    true: ArrayLike,
    q: float | Sequence[float],
    weights: ArrayLike | None = None,
) -> QuantileCoverage:
    """Observed coverage of predicted quantiles.

    Parameters
    ----------
    pred_q : array_like, float, shape (n,) or (n, k)
        Predicted quantiles, one column per entry of ``q``.
    true : array_like, float, shape (n,)
        True values, same unit.
    q : float or sequence of float
        The nominal quantile of each column, in [0, 1].
    weights : array_like, float, shape (n,), optional

    Returns
    -------
    QuantileCoverage
    """
    func = "quantile_coverage"
    t = _float_1d(func, "true", true)
    nominal = np.atleast_1d(np.asarray(q, dtype=np.float64))
    predicted = np.asarray(pred_q, dtype=np.float64)
    if predicted.ndim == 1:
        predicted = predicted[:, None]
    if predicted.ndim != 2 or predicted.shape != (len(t), len(nominal)):
        raise _fail(
            func,
            "pred_q",
            f"must have shape ({len(t)}, {len(nominal)}) to match 'true' and 'q', "
            f"got {np.asarray(pred_q).shape}",
        )
    if not np.isfinite(predicted).all():
        raise _fail(func, "pred_q", "has non-finite values")
    for value in nominal:
        _fraction(func, "q", value)
    w = _weights(func, weights, len(t))

    below = t[:, None] <= predicted
    total = w.sum()
    coverage = (w @ below) / total
    err = np.sqrt((w**2) @ ((below - coverage) ** 2)) / total
    return QuantileCoverage(q=nominal, coverage=coverage, err=err)


# --------------------------------------------------------------------------------------
# agreement between two scorers


@dataclass(frozen=True)
class Agreement:
    """Decision agreement of two scorers on the same events.

    Attributes
    ----------
    n : int
        Number of events compared.
    n_agree : int
        Events where both decide the same.
    n_a_only, n_b_only : int
        Events accepted by ``a`` only and by ``b`` only.
    a_only, b_only : ndarray, int64
        Indices of those events.
    """

    n: int
    n_agree: int
    n_a_only: int
    n_b_only: int
    a_only: NDArray[np.int64]
    b_only: NDArray[np.int64]

    @property
    def fraction(self) -> float:
        """Fraction of events with the same decision."""
        return self.n_agree / self.n

    @property
    def flips(self) -> NDArray[np.int64]:
        """Indices of all events whose decision differs, in increasing order."""
        return np.sort(np.r_[self.a_only, self.b_only]).astype(np.int64)

    def to_dict(self, max_indices: int = 100) -> dict[str, Any]:
        """Counts and the first ``max_indices`` flipped event indices."""
        return {
            "n": self.n,
            "n_agree": self.n_agree,
            "fraction": self.fraction,
            "n_a_only": self.n_a_only,
            "n_b_only": self.n_b_only,
            "flips": self.flips[:max_indices].tolist(),
        }


def agreement(decisions_a: ArrayLike, decisions_b: ArrayLike) -> Agreement:
    """Compare the decisions of two scorers (e.g. trained model and deployed model).

    Parameters
    ----------
    decisions_a, decisions_b : array_like, bool or 0/1, shape (n,)
        Decisions on the same events in the same order.

    Returns
    -------
    Agreement
    """
    a = _bool_1d("agreement", "decisions_a", decisions_a)
    b = _bool_1d("agreement", "decisions_b", decisions_b)
    n = _same_length("agreement", decisions_a=a, decisions_b=b)

    a_only = np.flatnonzero(a & ~b).astype(np.int64)
    b_only = np.flatnonzero(b & ~a).astype(np.int64)
    return Agreement(
        n=n,
        n_agree=n - len(a_only) - len(b_only),
        n_a_only=len(a_only),
        n_b_only=len(b_only),
        a_only=a_only,
        b_only=b_only,
    )


def score_difference_quantiles(
    a: ArrayLike,
    b: ArrayLike,
    qs: Sequence[float] = (0.5, 0.9, 0.99, 0.999, 1.0),
) -> dict[float, float]:
    """Quantiles of the absolute score difference |a − b| between two scorers.

    Parameters
    ----------
    a, b : array_like, float, shape (n,) or (n, k)
        Scores of the same candidates in the same order; for multiclass scores every
        class probability counts as one entry.
    qs : sequence of float
        Quantiles in [0, 1]; 1.0 gives the largest difference.

    Returns
    -------
    dict of float to float
        Quantile → |a − b| at that quantile (linear interpolation).
    """
    func = "score_difference_quantiles"
    first, second = np.asarray(a), np.asarray(b)
    if first.shape != second.shape:
        raise MetricInputError(
            f"{func}: arguments differ in shape: 'a' has {first.shape}, "
            f"'b' has {second.shape}"
        )
    x = _float_1d(func, "a", first.reshape(-1))
    y = _float_1d(func, "b", second.reshape(-1))
    if len(qs) == 0:
        raise _fail(func, "qs", "is empty")
    values = weighted_quantile(np.abs(x - y), list(qs))
    return {float(q): float(v) for q, v in zip(qs, values)}
