"""Accounting of a run: every event decided or rejected, batches merged in order."""

from __future__ import annotations

import numpy as np
import pytest

from trigml.artifact import load_artifact
from trigml.cuts import CutsAlgorithm, CutsAlgorithmParams, CutsBackend
from trigml.errors import DataError, RunFailure
from trigml.io.memory import MemorySink
from trigml.runtime import Line, LocalExecutor, Menu, RunAccounting, run_menu
from trigml.toy import ToySource, ToySourceParams


def make_menu(model, n_events=3000, batch=1000, **kw):
    line = Line(
        name="cuts",
        algorithm=CutsAlgorithm(CutsAlgorithmParams(features=["x0", "x1", "x2"])),
        artifact=load_artifact(model),
        backend=CutsBackend(),
        threshold=0.0,
    )
    source = ToySource(ToySourceParams(n_events=n_events, batch_size=batch, seed=5))
    return Menu(source=source, lines=[line], sinks=[MemorySink()], **kw)


def test_every_event_is_accounted_for(cuts_model, tmp_path):
    menu = make_menu(cuts_model, signal_field="is_signal", input_rate_hz=1e6)
    report, _ = run_menu(menu, LocalExecutor(), tmp_path)
    assert report.n_input == report.n_decided == 3000 and report.n_batches == 3
    (line,) = report.lines
    assert line.rate_hz == pytest.approx(1e6 * line.n_accepted / 3000)
    assert 0.6 < line.metrics["signal_efficiency"] < 0.8  # tuned to 70%
    assert line.metrics["background_efficiency"] < 0.35
    assert line.timing.events_per_second > 0 and line.timing.latency_p99_us > 0
    table = menu.sinks[0].table
    np.testing.assert_array_equal(table["event"], np.arange(3000))


def test_out_of_order_batches_are_refused(cuts_model, tmp_path):
    menu = make_menu(cuts_model)
    results = list(LocalExecutor().map(menu))
    accounting = RunAccounting(menu, tmp_path)
    accounting.add(results[0])
    with pytest.raises(RunFailure, match="out of order or one was lost"):
        accounting.add(results[2])


def test_missing_events_fail_the_run(cuts_model, tmp_path):
    menu = make_menu(cuts_model)
    accounting = RunAccounting(menu, tmp_path)
    for result in LocalExecutor().map(menu):
        accounting.add(result)
    accounting.n_decided -= 1
    with pytest.raises(RunFailure, match="1 events are neither decided nor rejected"):
        accounting.finish()


def test_zero_events_is_an_error(cuts_model, tmp_path):
    menu = make_menu(cuts_model)
    with pytest.raises(DataError, match="zero events"):
        RunAccounting(menu, tmp_path).finish()


def test_line_travels_without_its_scorer(cuts_model):
    import copy

    line = make_menu(cuts_model).lines[0]
    line.scorer  # noqa: B018 - loads the scorer
    assert line.__getstate__()["_scorer"] is None
    twin = copy.deepcopy(line)
    assert twin._scorer is None and twin.threshold == 0.0


class _TwoColumns:
    """A scorer giving two class probabilities per candidate."""

    name = "test.two"

    def formats(self):
        return ["cuts-json"]

    def load(self, artifact):
        return self

    def predict(self, features):
        p = 1.0 / (1.0 + np.exp(-features[:, 0]))
        return np.stack([1.0 - p, p], axis=1).astype(np.float32)


class _SignalColumn(CutsAlgorithm):
    def discriminant(self, scores):
        return scores[:, 1]


def test_two_dimensional_scores_need_a_discriminant(cuts_model, tmp_path):
    from trigml.errors import ModelError

    menu = make_menu(cuts_model)
    menu.lines[0].backend = _TwoColumns()
    with pytest.raises(ModelError, match="one score per candidate"):
        run_menu(menu, LocalExecutor(), tmp_path / "a")

    menu = make_menu(cuts_model)
    params = CutsAlgorithmParams(features=["x0", "x1", "x2"])
    menu.lines[0].algorithm = _SignalColumn(params)
    menu.lines[0].backend = _TwoColumns()
    menu.lines[0].threshold = 0.9
    report, _ = run_menu(menu, LocalExecutor(), tmp_path / "b")
    assert report.n_decided == 3000 and 0 < report.lines[0].n_accepted < 3000
