"""Tests of trigml.metrics against values worked out by hand on tiny samples."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from trigml import metrics as m
from trigml.errors import DataError, RunFailure, TrigmlError

# --------------------------------------------------------------------------------------
# ROC, AUC, rejection, TPR at FPR


def test_roc_curve_four_points() -> None:
    fpr, tpr, thresholds = m.roc_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_auc_four_points() -> None:
    assert m.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auc_ties_count_one_half() -> None:
    # signal {0.6, 0.4} against background {0.4, 0.2}: pairs 1 + 1 + 1/2 + 1 of 4
    assert m.auc([0.6, 0.4, 0.4, 0.2], [1, 1, 0, 0]) == pytest.approx(3.5 / 4)
    assert m.auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == pytest.approx(0.5)


def test_roc_tied_scores_give_one_point() -> None:
    fpr, tpr, thresholds = m.roc_curve([0.5, 0.5, 0.5], [1, 0, 1])
    np.testing.assert_allclose(fpr, [0, 1])
    np.testing.assert_allclose(tpr, [0, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.5])


def test_auc_matches_pair_count_on_random_ties() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(400), 1)
    labels = rng.random(400) < 0.4
    sig, bkg = scores[labels][:, None], scores[~labels][None, :]
    expected = ((sig > bkg) + 0.5 * (sig == bkg)).mean()
    assert m.auc(scores, labels) == pytest.approx(expected, rel=1e-12)
    assert m.auc(-scores, labels) == pytest.approx(1 - expected, rel=1e-12)


def test_auc_integer_weights_equal_repetition() -> None:
    scores = np.array([0.9, 0.3, 0.6, 0.2, 0.6])
    labels = np.array([1, 0, 1, 0, 0])
    weights = np.array([2, 1, 3, 1, 2])
    repeated = np.repeat(scores, weights), np.repeat(labels, weights)
    assert m.auc(scores, labels, weights) == pytest.approx(m.auc(*repeated))


def _separated() -> tuple[np.ndarray, np.ndarray]:
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.5, 0.6, 0.7, 0.8])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    return scores, labels


def test_rejection_at_working_point() -> None:
    scores, labels = _separated()
    # cut at 0.7 keeps half the signal and one background of four
    assert m.rejection_at(scores, labels, 0.5) == pytest.approx(4.0)
    assert m.rejection_at(scores, labels, 1.0) == pytest.approx(4.0)
    assert m.rejection_at(scores, labels, 0.0) == math.inf


def test_rejection_interpolates_between_roc_points() -> None:
    # one tied pair: the ROC is the diagonal, so eps_bkg equals eps_sig
    assert m.rejection_at([0.5, 0.5], [1, 0], 0.25) == pytest.approx(4.0)


def test_tpr_at_fpr() -> None:
    scores, labels = _separated()
    assert m.tpr_at_fpr(scores, labels, fpr=0.1) == pytest.approx(0.0)
    assert m.tpr_at_fpr(scores, labels, fpr=0.25) == pytest.approx(1.0)
    assert m.tpr_at_fpr([0.5, 0.5], [1, 0], fpr=0.3) == pytest.approx(0.3)


def test_tpr_at_tiny_fpr_on_large_sample() -> None:
    rng = np.random.default_rng(5)
    background = rng.normal(size=400_000)
    signal = rng.normal(loc=4.0, size=1000)
    scores = np.r_[background, signal]
    labels = np.r_[np.zeros(400_000), np.ones(1000)]
    # the 4 highest background scores allow fpr = 1e-5
    cut = np.sort(background)[-4]
    expected = (signal >= cut).mean()
    tpr = m.tpr_at_fpr(scores, labels, fpr=1e-5)
    assert tpr == pytest.approx(expected, abs=2e-3)


# --------------------------------------------------------------------------------------
# efficiency, rate and working points


def test_efficiency_binomial_error() -> None:
    eff, err = m.efficiency([1, 1, 0, 1])
    assert eff == pytest.approx(0.75)
    assert err == pytest.approx(math.sqrt(0.75 * 0.25 / 4))


def test_efficiency_weighted() -> None:
    eff, err = m.efficiency([True, False], weights=[3.0, 1.0])
    assert eff == pytest.approx(0.75)
    # sqrt(3² · 0.25² + 1² · 0.75²) / 4
    assert err == pytest.approx(math.sqrt(9 * 0.0625 + 0.5625) / 4)


def test_efficiency_and_rate_at_threshold_with_ties() -> None:
    scores = [1.0, 2.0, 2.0, 3.0]
    assert m.efficiency_at(scores, 2.0)[0] == pytest.approx(0.75)
    assert m.rate_hz(scores, 2.0, input_rate_hz=1000.0) == pytest.approx(750.0)
    assert m.rate_hz(scores, 3.5, input_rate_hz=1000.0) == 0.0


@pytest.mark.parametrize(
    ("target", "expected"),
    [(0.2, 3.0), (0.5, 2.0), (0.8, 2.0), (0.81, 1.0), (1.0, 1.0)],
)
def test_threshold_for_efficiency_with_ties(target: float, expected: float) -> None:
    scores = [1.0, 2.0, 2.0, 2.0, 3.0]
    threshold = m.threshold_for_efficiency(scores, target)
    assert threshold == expected
    assert m.efficiency_at(scores, threshold)[0] >= target


def test_threshold_for_zero_efficiency_passes_nothing() -> None:
    threshold = m.threshold_for_efficiency([1.0, 2.0, 3.0], 0.0)
    assert threshold > 3.0
    assert m.efficiency_at([1.0, 2.0, 3.0], threshold)[0] == 0.0


def test_threshold_for_efficiency_weighted() -> None:
    scores, weights = [1.0, 2.0, 3.0], [1.0, 1.0, 2.0]
    assert m.threshold_for_efficiency(scores, 0.5, weights) == 3.0
    assert m.threshold_for_efficiency(scores, 0.6, weights) == 2.0


@pytest.mark.parametrize(
    ("budget_hz", "expected"), [(50.0, 3.0), (80.0, 2.0), (100.0, 1.0)]
)
def test_threshold_for_rate_with_ties(budget_hz: float, expected: float) -> None:
    scores = [1.0, 2.0, 2.0, 2.0, 3.0]
    threshold = m.threshold_for_rate(scores, budget_hz, input_rate_hz=100.0)
    assert threshold == expected
    assert m.rate_hz(scores, threshold, 100.0) <= budget_hz


def test_threshold_for_rate_below_one_event() -> None:
    scores = [1.0, 2.0, 2.0, 2.0, 3.0]
    threshold = m.threshold_for_rate(scores, 10.0, input_rate_hz=100.0)
    assert threshold > 3.0
    assert m.rate_hz(scores, threshold, 100.0) == 0.0


def test_threshold_for_rate_on_continuous_scores() -> None:
    scores = np.random.default_rng(2).random(100_000)
    threshold = m.threshold_for_rate(scores, 11.6e3, input_rate_hz=30e6)
    rate = m.rate_hz(scores, threshold, 30e6)
    assert rate <= 11.6e3
    assert rate > 11.6e3 - 300.0  # one event of 100k is 300 Hz


def test_rate_curve() -> None:
    thresholds, rates = m.rate_curve(
        [1.0, 2.0, 2.0, 3.0], 100.0, thresholds=[0, 1, 2, 2.5, 3, 4]
    )
    np.testing.assert_allclose(rates, [100, 100, 75, 25, 25, 0])
    thresholds, rates = m.rate_curve([1.0, 2.0, 2.0, 3.0], 100.0)
    assert len(thresholds) == 101
    assert (rates[0], rates[-1]) == pytest.approx((100.0, 25.0))
    assert (np.diff(rates) <= 0).all()


def test_rate_curve_weighted_matches_rate_hz() -> None:
    rng = np.random.default_rng(4)
    scores, weights = rng.random(1000), rng.random(1000)
    cuts, rates = m.rate_curve(scores, 31.6e6, weights=weights)
    expected = [m.rate_hz(scores, c, 31.6e6, weights) for c in cuts[::10]]
    np.testing.assert_allclose(rates[::10], expected, rtol=1e-12)


# --------------------------------------------------------------------------------------
# turn-on curves


def test_turn_on_counts_and_clopper_pearson() -> None:
    x = [0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 2.5, 9.0]
    passed = [1, 1, 1, 0, 0, 0, 1, 1]
    curve = m.turn_on(x, passed, bins=[0.0, 1.0, 2.0, 3.0, 4.0])

    np.testing.assert_allclose(curve.centres, [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(curve.n_total, [4, 2, 1, 0])
    np.testing.assert_allclose(curve.eff[:3], [0.75, 0.0, 1.0])
    assert np.isnan(curve.eff[3]) and np.isnan(curve.err_low[3])

    # 3 of 4: the lower end p has P(k >= 3 | p) = alpha/2, the upper end
    # P(k <= 3 | p) = 1 - p^4 = alpha/2
    alpha = 1 - 0.682689492137086
    low = 0.75 - curve.err_low[0]
    assert 4 * low**3 * (1 - low) + low**4 == pytest.approx(alpha / 2)
    assert 0.75 + curve.err_high[0] == pytest.approx((1 - alpha / 2) ** 0.25)
    # no passing entry of 2: [0, 1 - (alpha/2)^(1/2)]
    assert curve.err_low[1] == 0.0
    assert curve.err_high[1] == pytest.approx(1 - (alpha / 2) ** 0.5)
    # all of 1 pass: [(alpha/2)^(1/1), 1]
    assert curve.err_high[2] == 0.0
    assert curve.err_low[2] == pytest.approx(1 - alpha / 2)


def test_fit_turn_on_recovers_generated_parameters() -> None:
    from scipy.special import erf

    rng = np.random.default_rng(11)
    mu, sigma, plateau = 30.0, 5.0, 0.95
    pt = rng.uniform(0.0, 100.0, 200_000)
    probability = plateau / 2 * (1 + erf((pt - mu) / (math.sqrt(2) * sigma)))
    passed = rng.random(pt.size) < probability

    fit = m.fit_turn_on(m.turn_on(pt, passed, bins=np.linspace(0, 100, 51)))

    assert fit.mu == pytest.approx(mu, abs=4 * fit.mu_err + 0.05)
    assert fit.sigma == pytest.approx(sigma, abs=4 * fit.sigma_err + 0.05)
    assert fit.plateau == pytest.approx(plateau, abs=4 * fit.plateau_err + 1e-3)
    assert fit.x50 == pytest.approx(fit.mu)
    assert fit.x90 == pytest.approx(fit.mu + 1.2815516 * fit.sigma)
    assert fit.width == fit.sigma
    assert float(fit(np.array([fit.x90]))[0]) == pytest.approx(0.9 * fit.plateau)
    assert fit.ndf == 47
    assert fit.chi2 / fit.ndf < 2.0
    assert set(fit.to_dict()) >= {"x50", "x90", "plateau", "width"}


def test_fit_turn_on_needs_four_bins() -> None:
    curve = m.turn_on([1.0, 2.0, 3.0], [0, 1, 1], bins=3)
    with pytest.raises(m.MetricInputError, match="curve"):
        m.fit_turn_on(curve)


def test_fit_turn_on_failure_is_a_run_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.optimize

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(scipy.optimize, "curve_fit", fail)
    curve = m.turn_on(np.arange(10.0), np.arange(10) > 4, bins=5)
    with pytest.raises(RunFailure, match="did not converge"):
        m.fit_turn_on(curve)


# --------------------------------------------------------------------------------------
# flatness


def test_flatness_of_identical_cells_is_zero() -> None:
    # two cells holding exactly the same score distribution
    features = np.r_[np.zeros(500), np.ones(500)]
    scores = np.tile(np.arange(500.0), 2)
    assert m.flatness_sde(scores, features, n_bins=2) == pytest.approx(0.0, abs=1e-12)
    assert m.flatness_theil(scores, features, n_bins=2) == pytest.approx(0, abs=1e-12)
    assert m.flatness_cvm(scores, features, n_bins=2) == pytest.approx(0, abs=1e-12)


def test_flatness_of_a_step_efficiency() -> None:
    # the score is the feature itself: a cut at efficiency e keeps the top e of the
    # cells fully and rejects the others, so each cut has variance e(1 - e) and
    # Theil index -ln e
    x = np.arange(1000) / 1000
    effs = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    sde = m.flatness_sde(x, x)
    assert sde == pytest.approx(math.sqrt(np.mean(effs * (1 - effs))))
    assert sde == pytest.approx(math.sqrt(0.19))
    assert m.flatness_theil(x, x) == pytest.approx(-np.mean(np.log(effs)), rel=1e-6)
    assert m.flatness_sde(x, x, efficiencies=[0.5]) == pytest.approx(0.5)
    assert m.flatness_sde(x, x, binning="uniform") == pytest.approx(sde)


def test_flatness_cvm_by_hand() -> None:
    # global CDF at 1..4: 1/4 .. 1; cell {1, 3}: 1/2, 1/2, 1, 1; cell {2, 4}:
    # 0, 1/2, 1/2, 1; each cell's squared distance averages (1/16 + 1/16)/4
    scores = [1.0, 2.0, 3.0, 4.0]
    cells = [0.0, 1.0, 0.0, 1.0]
    assert m.flatness_cvm(scores, cells, n_bins=2) == pytest.approx(1 / 32)


def _cvm_reference(scores: np.ndarray, cells: np.ndarray, w: np.ndarray) -> float:
    """Straightforward evaluation of Σ_cells w_cell ∫ (F_cell − F)² dF."""
    total = w.sum()

    def cdf(sample: np.ndarray, weights: np.ndarray) -> np.ndarray:
        order = np.argsort(sample)
        cumulative = np.r_[0.0, np.cumsum(weights[order])]
        at = np.searchsorted(sample[order], scores, side="right")
        return cumulative[at] / weights.sum()

    f_global = cdf(scores, w)
    result = 0.0
    for cell in np.unique(cells):
        inside = cells == cell
        f_cell = cdf(scores[inside], w[inside])
        result += w[inside].sum() / total * np.sum(w / total * (f_cell - f_global) ** 2)
    return result


def test_flatness_cvm_matches_direct_evaluation_with_ties_and_weights() -> None:
    rng = np.random.default_rng(8)
    features = rng.random((600, 2))
    scores = np.round(rng.random(600) + 0.5 * features[:, 0], 1)
    weights = rng.random(600)
    cells, _ = m.flatness_bins(features, n_bins=3)
    expected = _cvm_reference(scores, cells, weights)
    assert m.flatness_cvm(scores, features, weights, n_bins=3) == pytest.approx(
        expected, rel=1e-9
    )


def test_flatness_weights_act_as_repetition() -> None:
    rng = np.random.default_rng(9)
    features = rng.random((200, 2))
    scores = rng.random(200) + features[:, 1]
    weights = rng.integers(1, 4, 200)
    repeated = np.repeat(scores, weights), np.repeat(features, weights, axis=0)
    # uniform binning: the edges do not move when entries are repeated
    for metric in (m.flatness_sde, m.flatness_theil, m.flatness_cvm):
        assert metric(
            scores, features, weights, n_bins=3, binning="uniform"
        ) == pytest.approx(metric(*repeated, n_bins=3, binning="uniform"))


def test_flatness_bins_grid() -> None:
    features = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    cells, n_cells = m.flatness_bins(features, n_bins=2, binning="uniform")
    assert n_cells == 4
    assert sorted(cells.tolist()) == [0, 1, 2, 3]
    with pytest.raises(m.MetricInputError, match="binning"):
        m.flatness_bins(features, binning="knn")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# regression


def test_response_bias_resolution_by_hand() -> None:
    pred = [1.0, 2.0, 3.0, 4.0, 10.0]
    true = [1.0, 1.0, 1.0, 1.0, 10.0]
    table = m.response_bias_resolution(pred, true, true, bins=[0.0, 5.0, 20.0, 30.0])
    # responses 1, 2, 3, 4: median 2.5, quartiles 1.75 and 3.25
    assert table.median[0] == pytest.approx(2.5)
    assert table.resolution[0] == pytest.approx(1.5 / 1.349)
    assert table.median[1] == pytest.approx(1.0)
    assert table.resolution[1] == pytest.approx(0.0)
    assert np.isnan(table.median[2])
    assert table.n.tolist() == [4, 1, 0]
    assert table.median_err[0] == pytest.approx(1.2533 * 1.5 / 1.349 / 2)

    difference = m.response_bias_resolution(pred, true, true, [0, 5], kind="difference")
    assert difference.median[0] == pytest.approx(1.5)


def test_response_ratio_refuses_zero_truth() -> None:
    with pytest.raises(m.MetricInputError, match="'true'"):
        m.response_bias_resolution([1.0, 2.0], [0.0, 1.0], [1.0, 2.0], bins=2)


def test_weighted_quantile() -> None:
    values = np.array([4.0, 1.0, 3.0, 2.0, 7.0])
    np.testing.assert_allclose(
        m.weighted_quantile(values, [0.1, 0.5, 0.8], np.ones(5)),
        np.quantile(values, [0.1, 0.5, 0.8]),
    )
    # a zero weight removes the entry
    weights = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    assert float(m.weighted_quantile(values, 0.5, weights)) == pytest.approx(2.5)


def test_quantile_coverage() -> None:
    true = np.array([1.0, 2.0, 3.0, 4.0])
    pred_q = np.column_stack([np.full(4, 1.0), np.full(4, 2.5), np.full(4, 10.0)])
    coverage = m.quantile_coverage(pred_q, true, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(coverage.coverage, [0.25, 0.5, 1.0])
    np.testing.assert_allclose(coverage.deviation, [0.0, 0.0, 0.25])
    assert coverage.err[0] == pytest.approx(math.sqrt(0.25 * 0.75 / 4))
    with pytest.raises(m.MetricInputError, match="pred_q"):
        m.quantile_coverage(pred_q, true, [0.25, 0.5])


# --------------------------------------------------------------------------------------
# agreement of two scorers


def test_agreement() -> None:
    result = m.agreement([1, 1, 0, 0, 1], [True, False, True, False, True])
    assert (result.n, result.n_agree) == (5, 3)
    assert result.fraction == pytest.approx(0.6)
    assert (result.n_a_only, result.n_b_only) == (1, 1)
    assert result.a_only.tolist() == [1]
    assert result.b_only.tolist() == [2]
    assert result.flips.tolist() == [1, 2]
    assert result.to_dict()["flips"] == [1, 2]


def test_score_difference_quantiles() -> None:
    quantiles = m.score_difference_quantiles(np.zeros(5), [0.0, -1.0, 2.0, 3.0, 4.0])
    assert list(quantiles) == [0.5, 0.9, 0.99, 0.999, 1.0]
    assert quantiles[0.5] == pytest.approx(2.0)
    assert quantiles[0.9] == pytest.approx(3.6)
    assert quantiles[1.0] == pytest.approx(4.0)
    # multiclass probabilities: every entry counts
    multiclass = m.score_difference_quantiles(np.zeros((2, 2)), [[0, 1], [3, 0]], [1.0])
    assert multiclass == {1.0: pytest.approx(3.0)}
    with pytest.raises(m.MetricInputError, match="shape"):
        m.score_difference_quantiles(np.zeros((2, 2)), np.zeros(4))


# --------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: m.roc_curve([], []), "scores"),
        (lambda: m.auc([0.1, 0.2], []), "labels"),
        (lambda: m.efficiency([]), "passed"),
        (lambda: m.threshold_for_efficiency([], 0.5), "scores"),
        (lambda: m.threshold_for_rate([], 1.0, 10.0), "scores_minbias"),
        (lambda: m.rate_curve([], 10.0), "scores_minbias"),
        (lambda: m.turn_on([], [], bins=3), "x_true"),
        (lambda: m.flatness_sde([], np.zeros((0, 2))), "scores"),
        (lambda: m.agreement([], [1]), "decisions_a"),
        (lambda: m.score_difference_quantiles([], []), "'a'"),
    ],
)
def test_empty_input_names_the_argument(call: object, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, DataError)
    assert isinstance(info.value, TrigmlError)


def test_one_class_only() -> None:
    with pytest.raises(m.MetricInputError, match="no background"):
        m.auc([0.1, 0.2], [1, 1])
    with pytest.raises(m.MetricInputError, match="no signal"):
        m.roc_curve([0.1, 0.2], [0, 0])


def test_bad_values_are_refused() -> None:
    with pytest.raises(m.MetricInputError, match=r"non-finite value.*index 1"):
        m.auc([0.1, np.nan], [0, 1])
    with pytest.raises(m.MetricInputError, match="only 0 and 1"):
        m.auc([0.1, 0.2], [0, 2])
    with pytest.raises(m.MetricInputError, match="differ in length"):
        m.auc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(m.MetricInputError, match="negative"):
        m.efficiency([1, 0], weights=[1.0, -1.0])
    with pytest.raises(m.MetricInputError, match="target"):
        m.threshold_for_efficiency([0.1, 0.2], 1.5)
    with pytest.raises(m.MetricInputError, match="input_rate_hz"):
        m.rate_hz([0.1, 0.2], 0.1, input_rate_hz=0.0)
    with pytest.raises(m.MetricInputError, match="one-dimensional"):
        m.efficiency_at(np.zeros((2, 2)), 0.5)


def test_large_samples_are_fast() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(1_000_000) < 0.5
    scores = rng.normal(size=labels.size) + labels
    start = time.perf_counter()
    m.auc(scores, labels)
    m.threshold_for_efficiency(scores[labels], 0.9)
    m.rate_curve(scores[~labels], 30e6)
    # a generous bound that still catches anything quadratic or per-event in Python
    assert time.perf_counter() - start < 5.0


def test_results_convert_to_strict_json() -> None:
    import json

    curve = m.turn_on([0.5, 0.5, 2.5], [1, 0, 1], bins=[0.0, 1.0, 2.0, 3.0])
    table = m.response_bias_resolution([1.0, 2.0], [1.0, 1.0], [0.5, 0.6], [0, 1, 2])
    for result in (curve.to_dict(), table.to_dict()):
        text = json.dumps(result, allow_nan=False)
        assert "null" in text  # the empty middle bin
    assert curve.to_dict()["eff"] == [0.5, None, 1.0]
