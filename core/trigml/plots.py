"""PNG figures of the shared metrics: ROC, turn-on, rate, resolution, agreement.

Each function takes arrays or results from :mod:`trigml.metrics` and a path, writes one
PNG and returns the path. Figures are drawn in an mplhep style inside a context manager
and without pyplot, so neither matplotlib's global style nor its backend changes.
matplotlib and mplhep are imported only when a figure is drawn.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from trigml.errors import UsageError
from trigml.metrics import (
    MetricInputError,
    ResolutionTable,
    TurnOn,
    TurnOnFit,
    _bool_1d,
    _float_1d,
    agreement,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_STYLE",
    "hep_style",
    "plot_agreement",
    "plot_efficiency_map_2d",
    "plot_efficiency_vs",
    "plot_rate_vs_threshold",
    "plot_resolution",
    "plot_roc",
    "plot_turn_on",
]

logger = logging.getLogger(__name__)

#: The mplhep style used unless a function is given another; ROOT's look belongs to
#: no single experiment. ``"LHCb2"``, ``"CMS"``, ``"ATLAS"`` and ``"ALICE"`` also work.
DEFAULT_STYLE = "ROOT"

#: Resolution of every PNG, dots per inch.
DPI = 100

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def hep_style(name: str = DEFAULT_STYLE) -> Iterator[None]:
    """Apply an mplhep style for the duration of a ``with`` block.

    Parameters
    ----------
    name : str
        Name of a style in ``mplhep.style`` (``"ROOT"``, ``"LHCb2"``, ``"CMS"``, ...).

    Raises
    ------
    UsageError
        No such style; the message lists the valid names.
    """
    import matplotlib.style
    import mplhep

    style = getattr(mplhep.style, name, None)
    if not isinstance(style, (dict, list, str)):
        valid = sorted(
            s
            for s in dir(mplhep.style)
            if not s.startswith("_") and isinstance(getattr(mplhep.style, s), dict)
        )
        raise UsageError(
            f"unknown plot style {name!r}", hint=f"valid styles: {', '.join(valid)}"
        )
    with matplotlib.style.context(style):
        yield


def _new_figure(ncols: int = 1, nrows: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    width, height = 10.0 * ncols, 8.0 if nrows == 1 else 11.0
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=True, **kwargs)
    return figure, axes


def _save(figure: Figure, path: PathLike) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=DPI)
    logger.info("wrote %s", target)
    return target


def _finish(axes: Axes, title: str | None, legend: bool = True) -> None:
    if legend and axes.get_legend_handles_labels()[0]:
        axes.legend()
    if title:
        axes.set_title(title)


def _require_series(func: str, name: str, series: Mapping[str, Any]) -> None:
    if not isinstance(series, Mapping) or len(series) == 0:
        raise MetricInputError(
            f"{func}: argument '{name}' must be a non-empty mapping of label to data"
        )


def plot_roc(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: PathLike,
    log_rejection: bool = True,
    *,
    title: str | None = None,
    style: str = DEFAULT_STYLE,
) -> Path:
    """ROC curves of one or more classifiers.

    Parameters
    ----------
    curves : mapping of str to (fpr, tpr)
        Legend label → background and signal efficiency arrays, as returned by
        :func:`trigml.metrics.roc_curve` (put the AUC into the label if wanted).
    path : str or path-like
        Where to write the PNG; parent folders are created.
    log_rejection : bool
        Background rejection 1/ε_bkg on a log axis against signal efficiency (the
        default), or the plain ROC, signal against background efficiency.
    title : str, optional
    style : str
        mplhep style name.

    Returns
    -------
    Path
        The PNG written.
    """
    func = "plot_roc"
    _require_series(func, "curves", curves)
    with hep_style(style):
        figure, axes = _new_figure()
        for label, (fpr, tpr) in curves.items():
            x = _float_1d(func, f"curves[{label!r}] fpr", fpr)
            y = _float_1d(func, f"curves[{label!r}] tpr", tpr)
            if log_rejection:
                keep = x > 0
                axes.plot(y[keep], 1.0 / x[keep], label=label)
            else:
                axes.plot(x, y, label=label)
        if log_rejection:
            axes.set_yscale("log")
            axes.set_xlabel("Signal efficiency")
            axes.set_ylabel(r"Background rejection $1/\varepsilon_\mathrm{bkg}$")
            axes.set_xlim(0.0, 1.0)
        else:
            axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="Random")
            axes.set_xlabel(r"Background efficiency $\varepsilon_\mathrm{bkg}$")
            axes.set_ylabel(r"Signal efficiency $\varepsilon_\mathrm{sig}$")
            axes.set_xlim(0.0, 1.0)
            axes.set_ylim(0.0, 1.05)
        _finish(axes, title)
        return _save(figure, path)


def plot_turn_on(
    curves: Mapping[str, TurnOn],
    fits: Mapping[str, TurnOnFit] | None,
    path: PathLike,
    xlabel: str = r"True $p_\mathrm{T}$ [GeV]",
    *,
    title: str | None = None,
    style: str = DEFAULT_STYLE,
) -> Path:
    """Turn-on curves with their error-function fits.

    Parameters
    ----------
    curves : mapping of str to TurnOn
        Legend label → binned efficiency from :func:`trigml.metrics.turn_on`.
    fits : mapping of str to TurnOnFit, optional
        Fits for some or all labels (from :func:`trigml.metrics.fit_turn_on`); drawn as
        lines, with the 50% and 90% points in the legend.
    path : str or path-like
        Where to write the PNG.
    xlabel : str
        Axis label of the binned quantity, with its unit.
    title : str, optional
    style : str
        mplhep style name.

    Returns
    -------
    Path
    """
    _require_series("plot_turn_on", "curves", curves)
    fits = fits or {}
    with hep_style(style):
        figure, axes = _new_figure()
        for label, curve in curves.items():
            filled = curve.n_total > 0
            fit = fits.get(label)
            text = label
            if fit is not None:
                text += f" ($x_{{50}}$ = {fit.x50:.3g}, $x_{{90}}$ = {fit.x90:.3g})"
            points = axes.errorbar(
                curve.centres[filled],
                curve.eff[filled],
                yerr=[curve.err_low[filled], curve.err_high[filled]],
                xerr=(curve.edges[1:] - curve.edges[:-1])[filled] / 2,
                linestyle="none",
                marker="o",
                markersize=5,
                label=text,
            )
            if fit is not None:
                x = np.linspace(curve.edges[0], curve.edges[-1], 400)
                colour = points[0].get_color()
                axes.plot(x, fit(x), color=colour, linestyle="--", linewidth=2)
        axes.axhline(1.0, color="grey", linestyle=":", linewidth=1)
        axes.set_xlabel(xlabel)
        axes.set_ylabel("Efficiency")
        axes.set_ylim(0.0, 1.15)
        _finish(axes, title)
        return _save(figure, path)


def plot_rate_vs_threshold(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: PathLike,
    input_rate_hz: float,
    *,
    xlabel: str = "Threshold on the score",
    budget_hz: float | None = None,
    title: str | None = None,
    style: str = DEFAULT_STYLE,
) -> Path:
    """Output rate against the threshold, with the accepted fraction on the right axis.

    Parameters
    ----------
    curves : mapping of str to (thresholds, rates_hz)
        Legend label → arrays from :func:`trigml.metrics.rate_curve`, rates in Hz.
    path : str or path-like
        Where to write the PNG.
    input_rate_hz : float
        Input rate, Hz; sets the right-hand axis (rate / input rate).
    xlabel : str
        Label of the threshold axis (with its unit when the threshold has one).
    budget_hz : float, optional
        A rate budget to mark with a horizontal line, Hz.
    title : str, optional
    style : str
        mplhep style name.

    Returns
    -------
    Path
    """
    func = "plot_rate_vs_threshold"
    _require_series(func, "curves", curves)
    if not (np.isfinite(input_rate_hz) and input_rate_hz > 0):
        raise MetricInputError(f"{func}: 'input_rate_hz' must be > 0: {input_rate_hz}")
    with hep_style(style):
        figure, axes = _new_figure()
        any_positive = False
        for label, (thresholds, rates) in curves.items():
            x = _float_1d(func, f"curves[{label!r}] thresholds", thresholds)
            y = _float_1d(func, f"curves[{label!r}] rates", rates)
            keep = y > 0
            any_positive |= bool(keep.any())
            axes.plot(x[keep], y[keep], label=label)
        if budget_hz is not None:
            axes.axhline(budget_hz, color="grey", linestyle="--", label="Budget")
        if any_positive:
            axes.set_yscale("log")
        axes.set_xlabel(xlabel)
        axes.set_ylabel("Rate [Hz]")
        fraction = axes.secondary_yaxis(
            "right",
            functions=(lambda r: r / input_rate_hz, lambda f: f * input_rate_hz),
        )
        fraction.set_ylabel("Fraction of input accepted")
        _finish(axes, title)
        return _save(figure, path)


def plot_efficiency_vs(
    var_centres: ArrayLike | Mapping[str, ArrayLike],
    effs: Mapping[str, ArrayLike],
    errs: Mapping[str, ArrayLike] | None,
    path: PathLike,
    xlabel: str,
    *,
    ylabel: str = "Efficiency",
    title: str | None = None,
    style: str = DEFAULT_STYLE,
) -> Path:
    """Efficiency of several series against one variable (decay time, η, pileup).

    Parameters
    ----------
    var_centres : array_like, float, shape (k,), or mapping of str to such arrays
        Bin centres shared by all series, or per series label.
    effs : mapping of str to array_like, float, shape (k,)
        Legend label → efficiency per bin.
    errs : mapping of str to array_like, optional
        Label → errors, shape (k,) for symmetric or (2, k) for (low, high) errors.
    path : str or path-like
        Where to write the PNG.
    xlabel : str
        Label of the variable, with its unit.
    ylabel : str
        Label of the efficiency axis.
    title : str, optional
    style : str
        mplhep style name.

    Returns
    -------
    Path
    """
    func = "plot_efficiency_vs"
    _require_series(func, "effs", effs)
    errs = errs or {}
    with hep_style(style):
        figure, axes = _new_figure()
        for label, eff in effs.items():
            centres = (
                var_centres[label] if isinstance(var_centres, Mapping) else var_centres
            )
            x = _float_1d(func, "var_centres", centres)
            y = np.asarray(eff, dtype=np.float64)
            if y.shape != x.shape:
                raise MetricInputError(
                    f"{func}: effs[{label!r}] has shape {y.shape}, "
                    f"var_centres {x.shape}"
                )
            yerr = None if label not in errs else np.asarray(errs[label], np.float64)
            axes.errorbar(x, y, yerr=yerr, marker="o", markersize=5, label=label)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.set_ylim(0.0, 1.15)
        _finish(axes, title)
        return _save(figure, path)


def _histogram2d(
    x: np.ndarray, y: np.ndarray, bins: Any, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``numpy.histogram2d`` with plain array types (its stubs reject float64 input)."""
    histogram: Any = np.histogram2d
    counts, x_edges, y_edges = histogram(x, y, bins=bins, weights=weights)
    return counts, x_edges, y_edges


def plot_efficiency_map_2d(
    x: ArrayLike,
    y: ArrayLike,
    passed: ArrayLike,
    bins: int | tuple[ArrayLike, ArrayLike],
    path: PathLike,
    labels: tuple[str, str] = ("x", "y"),
    *,
    weights: ArrayLike | None = None,
    title: str | None = None,
    style: str = DEFAULT_STYLE,
) -> Path:
    """Efficiency in the cells of a plane, such as a Dalitz plot.

    Parameters
    ----------
    x, y : array_like, float, shape (n,)
        Coordinates of each candidate (e.g. m²(K π) and m²(π π), GeV²).
    passed : array_like, bool or 0/1, shape (n,)
        Decision per candidate.
    bins : int or (x_edges, y_edges)
        Bins per axis, or the edges, as for ``numpy.histogram2d``.
    path : str or path-like
        Where to write the PNG.
    labels : (str, str)
        Axis labels with units.
    weights : array_like, float, shape (n,), optional
    title : str, optional
    style : str
        mplhep style name.

    Returns
    -------
    Path
        Cells without candidates are left blank.
    """
    func = "plot_efficiency_map_2d"
    xs = _float_1d(func, "x", x)
    ys = _float_1d(func, "y", y)
    decision = _bool_1d(func, "passed", passed)
    if not len(xs) == len(ys) == len(decision):
        raise MetricInputError(
            f"{func}: 'x', 'y' and 'passed' differ in length: "
            f"{len(xs)}, {len(ys)}, {len(decision)}"
        )
    w = np.ones(len(xs)) if weights is None else _float_1d(func, "weights", weights)

    total, x_edges, y_edges = _histogram2d(xs, ys, bins, w)
    accepted, _, _ = _histogram2d(xs, ys, (x_edges, y_edges), w * decision)
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.ma.masked_where(total <= 0, accepted / total)

    with hep_style(style):
        figure, axes = _new_figure()
        mesh = axes.pcolormesh(x_edges, y_edges, eff.T, vmin=0.0, vmax=1.0)
        figure.colorbar(mesh, ax=axes, label="Efficiency")
        axes.set_xlabel(labels[0])
        axes.set_ylabel(labels[1])
        _finish(axes, title, legend=False)
        return _save(figure, path)


def plot_resolution(
    table: ResolutionTable | Mapping[str, ResolutionTable],
    path: PathLike,
    xlabel: str = r"True $p_\mathrm{T}$ [GeV]",
    *,
    unit: str = "",
    title: str | None = None,
    style: str = DEFAULT_STYLE,
) -> Path:
    """Median response (top) and resolution (bottom) in bins of a variable.

    Parameters
    ----------
    table : ResolutionTable or mapping of str to ResolutionTable
        From :func:`trigml.metrics.response_bias_resolution`; a mapping draws one
        series per label (e.g. a DNN against the standard calibration).
    path : str or path-like
        Where to write the PNG.
    xlabel : str
        Label of the binning variable, with its unit.
    unit : str
        Unit of the response for ``kind="difference"`` tables (e.g. ``"cm"``).
    title : str, optional
    style : str
        mplhep style name.

    Returns
    -------
    Path
    """
    tables = {"": table} if isinstance(table, ResolutionTable) else dict(table)
    _require_series("plot_resolution", "table", tables)
    kinds = {t.kind for t in tables.values()}
    if len(kinds) > 1:
        raise MetricInputError(
            "plot_resolution: tables mix response kinds "
            f"{sorted(kinds)}; draw ratio and difference separately"
        )
    ratio = kinds == {"ratio"}
    suffix = "" if ratio or not unit else f" [{unit}]"
    with hep_style(style):
        figure, (top, bottom) = _new_figure(nrows=2, sharex=True)
        for label, entry in tables.items():
            half = (entry.edges[1:] - entry.edges[:-1]) / 2
            points = top.errorbar(
                entry.centres,
                entry.median,
                yerr=entry.median_err,
                xerr=half,
                linestyle="none",
                marker="o",
                markersize=5,
                label=label or None,
            )
            bottom.errorbar(
                entry.centres,
                entry.resolution,
                yerr=entry.resolution_err,
                xerr=half,
                linestyle="none",
                marker="o",
                markersize=5,
                color=points[0].get_color(),
            )
        top.axhline(1.0 if ratio else 0.0, color="grey", linestyle=":", linewidth=1)
        top.set_ylabel("Median pred/true" if ratio else f"Median pred − true{suffix}")
        bottom.set_ylabel("IQR/1.349 of pred/true" if ratio else f"IQR/1.349{suffix}")
        bottom.set_xlabel(xlabel)
        _finish(top, title)
        return _save(figure, path)


def plot_agreement(
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    path: PathLike,
    threshold: float,
    labels: tuple[str, str] = ("Offline", "Online"),
    *,
    bins: int = 100,
    title: str | None = None,
    style: str = DEFAULT_STYLE,
) -> Path:
    """Two scorers on the same candidates: score against score, and their difference.

    Parameters
    ----------
    scores_a, scores_b : array_like, float, shape (n,)
        Scores of the same candidates in the same order (e.g. the trained float model
        and the deployed firmware emulation).
    path : str or path-like
        Where to write the PNG.
    threshold : float
        Working point; drawn on both axes, and the decision agreement at it is shown
        in the title.
    labels : (str, str)
        Names of the two scorers.
    bins : int
        Bins per axis of the 2-D histogram and of the difference histogram.
    title : str, optional
        Prefix of the title.
    style : str
        mplhep style name.

    Returns
    -------
    Path
    """
    from matplotlib.colors import LogNorm

    func = "plot_agreement"
    a = _float_1d(func, "scores_a", scores_a)
    b = _float_1d(func, "scores_b", scores_b)
    if len(a) != len(b):
        raise MetricInputError(
            f"{func}: 'scores_a' has {len(a)} entries, 'scores_b' {len(b)}"
        )
    decisions = agreement(a >= threshold, b >= threshold)
    counts, a_edges, b_edges = _histogram2d(a, b, bins)
    difference = b - a

    with hep_style(style):
        figure, (left, right) = _new_figure(ncols=2)
        mesh = left.pcolormesh(
            a_edges,
            b_edges,
            np.ma.masked_where(counts <= 0, counts).T,
            norm=LogNorm(vmin=1.0, vmax=max(float(counts.max()), 1.0)),
        )
        figure.colorbar(mesh, ax=left, label="Candidates")
        left.axvline(threshold, color="red", linestyle="--", linewidth=1.5)
        left.axhline(threshold, color="red", linestyle="--", linewidth=1.5)
        left.set_xlabel(f"{labels[0]} score")
        left.set_ylabel(f"{labels[1]} score")

        right.hist(difference, bins=bins, histtype="step", linewidth=2)
        right.set_yscale("log")
        right.set_xlabel(f"{labels[1]} − {labels[0]} score")
        right.set_ylabel("Candidates")

        heading = (
            f"Decision agreement {decisions.fraction:.4%} at threshold "
            f"{threshold:.4g}; {decisions.n_a_only} {labels[0]} only, "
            f"{decisions.n_b_only} {labels[1]} only"
        )
        figure.suptitle(f"{title}: {heading}" if title else heading, fontsize="small")
        return _save(figure, path)
