"""The streaming runtime: batches → validation → candidates → scores → decisions.

A :class:`Menu` is an assembled run configuration. :func:`process_batch` does all the
work for one batch and is a pure function of the menu and the batch, so an executor can
run it anywhere (in this process, or on a Dask worker) and hand the
:class:`BatchResult` back to be merged in input order by :class:`RunAccounting`. Every
input event ends in exactly one place: a decided row, or the rejected count with its
reason; the accounting refuses to finish when the numbers do not balance.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from trigml.artifact import Artifact
from trigml.components import Algorithm, Backend, Batch, Scorer, Sink, Source
from trigml.errors import DataError, ModelError, RunFailure
from trigml.registry import NoParams
from trigml.schema.events import EventSchema, Policy, validate_batch
from trigml.schema.report import LineReport, RunReport, TimingReport

__all__ = [
    "BatchResult",
    "Executor",
    "Line",
    "LocalExecutor",
    "Menu",
    "RunAccounting",
    "process_batch",
    "run_menu",
]

log = logging.getLogger(__name__)

#: Status code of a decided event in the ``status`` column of the decisions table.
DECIDED = 0


@dataclass
class Line:
    """One trigger line, ready to run.

    Attributes
    ----------
    name : str
    algorithm : Algorithm
    artifact : Artifact
    backend : Backend
    threshold : float
        Candidate score at or above which a candidate passes.
    working_point : str
        Name of the working point the threshold came from ("" for a bare number).
    """

    name: str
    algorithm: Algorithm
    artifact: Artifact
    backend: Backend
    threshold: float
    working_point: str = ""
    _scorer: Scorer | None = field(default=None, repr=False)

    @property
    def scorer(self) -> Scorer:
        """The backend's scorer, loaded on first use (so it loads on each worker)."""
        if self._scorer is None:
            self._scorer = self.backend.load(self.artifact)
        return self._scorer

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_scorer"] = None
        return state


@dataclass
class Menu:
    """An assembled run: source, lines, sinks and the rules of the run."""

    source: Source
    lines: list[Line]
    sinks: list[Sink] = field(default_factory=list)
    policy: Policy = "reject"
    input_rate_hz: float | None = None
    signal_field: str | None = None
    config_file: str = ""

    @property
    def schema(self) -> EventSchema:
        merged = EventSchema()
        for line in self.lines:
            merged = merged.merge(line.algorithm.event_schema())
        return merged

    def columns(self) -> list[str]:
        cols = self.schema.columns()
        if self.signal_field and self.signal_field not in cols:
            cols.append(self.signal_field)
        return cols


@dataclass
class BatchResult:
    """What one batch produced.

    Attributes
    ----------
    chunk, start, n : int
        Position of the batch in the input.
    table : dict of str to ndarray
        One row per input event: ``event`` (global index), ``status`` (0 decided,
        otherwise a code into ``reason_names`` + 1), a bool column per line and a
        float32 ``<line>_score`` column (best candidate score, -inf without one).
    reasons : dict of str to int
        Rejected events of this batch by reason.
    reason_names : list of str
    n_candidates : dict of str to int
    seconds : dict of str to float
        Time spent per stage (``validate``, each line) on this batch.
    """

    chunk: int
    start: int
    n: int
    table: dict[str, np.ndarray]
    reasons: dict[str, int]
    reason_names: list[str]
    n_candidates: dict[str, int]
    seconds: dict[str, float]
    origin: str = ""


def process_batch(menu: Menu, batch: Batch) -> BatchResult:
    """Validate one batch, run every line on it and build its decisions table."""
    n = len(batch)
    t0 = time.perf_counter()
    checked = validate_batch(
        batch.events, menu.schema, policy=menu.policy, origin=batch.origin
    )
    all_kept = bool(checked.keep.all())
    events = batch.events if all_kept else batch.events[checked.keep]
    seconds = {"validate": time.perf_counter() - t0}
    table: dict[str, np.ndarray] = {
        "event": np.arange(batch.start, batch.start + n, dtype=np.int64),
        "status": checked.reason_index.astype(np.int16),
    }
    if menu.signal_field:
        table["is_signal"] = ak.to_numpy(batch.events[menu.signal_field]).astype(bool)
    n_candidates: dict[str, int] = {}
    for line in menu.lines:
        t1 = time.perf_counter()
        fired, best, n_cand = _run_line(line, events, batch.origin)
        seconds[line.name] = time.perf_counter() - t1
        if not all_kept:
            # rejected events get no decision and no score
            fired = _scatter(fired, checked.keep, False)
            best = _scatter(best, checked.keep, -np.inf)
        table[line.name] = fired
        table[f"{line.name}_score"] = best
        n_candidates[line.name] = n_cand
    return BatchResult(
        chunk=batch.chunk,
        start=batch.start,
        n=n,
        table=table,
        reasons=checked.reasons,
        reason_names=checked.reason_names,
        n_candidates=n_candidates,
        seconds=seconds,
        origin=batch.origin,
    )


def _scatter(values: np.ndarray, keep: np.ndarray, fill: float | bool) -> np.ndarray:
    out = np.full(len(keep), fill, dtype=values.dtype)
    out[keep] = values
    return out


def _run_line(
    line: Line, events: ak.Array, origin: str
) -> tuple[np.ndarray, np.ndarray, int]:
    n_events = len(events)
    cands = line.algorithm.candidates(events)
    expected = line.artifact.card.feature_names
    if cands.names != expected:
        raise ModelError(
            f"line '{line.name}': model '{line.artifact.card.name}' expects features "
            f"{expected}, algorithm '{line.algorithm.name}' builds {cands.names}",
            hint="use the algorithm and parameters the model was trained with "
            "(see its card.json)",
        )
    if len(cands) == 0:
        empty = np.full(n_events, -np.inf, dtype=np.float32)
        return np.zeros(n_events, dtype=bool), empty, 0
    try:
        scores = line.scorer.predict(cands.features)
    except (DataError, ModelError):
        raise
    except Exception as exc:
        raise RunFailure(
            f"line '{line.name}': backend '{line.backend.name}' failed on {origin}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ModelError(
            f"line '{line.name}': model '{line.artifact.card.name}' gives scores of "
            f"shape {scores.shape}; a trigger line needs one score per candidate",
            hint="use an algorithm that reduces multiclass outputs to a discriminant",
        )
    fired = line.algorithm.decide(scores, cands, n_events, line.threshold)
    best = line.algorithm.event_scores(scores, cands, n_events).astype(np.float32)
    return fired, best, len(cands)


class Executor(abc.ABC):
    """Drives :func:`process_batch` over a source and hands results back in order."""

    name = ""

    @abc.abstractmethod
    def map(self, menu: Menu) -> Iterator[BatchResult]:
        """Yield one :class:`BatchResult` per batch of the source, in input order."""


class LocalExecutor(Executor):
    """Runs every batch in this process, one after the other."""

    name = "local"

    def __init__(self, params: NoParams | None = None) -> None:
        self.params = params

    def map(self, menu: Menu) -> Iterator[BatchResult]:
        for batch in menu.source.batches(menu.columns()):
            yield process_batch(menu, batch)


_RESERVOIR = 1_000_000


class RunAccounting:
    """Merges batch results in order, writes sinks, and builds the run report."""

    def __init__(self, menu: Menu, out_dir: Path) -> None:
        self.menu = menu
        self.out_dir = out_dir
        self.reason_codes: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.n_input = 0
        self.n_decided = 0
        self.n_any = 0
        self.n_batches = 0
        self.next_start = 0
        self.accepted = {line.name: 0 for line in menu.lines}
        self.accepted_signal = {line.name: 0 for line in menu.lines}
        self.n_signal = 0
        self.candidates = {line.name: 0 for line in menu.lines}
        self.batch_seconds: dict[str, list[float]] = {}
        self.batch_sizes: list[int] = []
        self.scores: dict[str, list[np.ndarray]] = {
            line.name: [] for line in menu.lines
        }
        self.signal: list[np.ndarray] = []
        self._kept = 0
        self._opened = False

    def _open(self, table: dict[str, np.ndarray]) -> None:
        dtypes = {k: v.dtype for k, v in table.items()}
        for sink in self.menu.sinks:
            sink.open(self.out_dir, dtypes)
        self._opened = True

    def add(self, result: BatchResult) -> None:
        """Account for one batch; batches must arrive in input order."""
        if result.start != self.next_start:
            raise RunFailure(
                f"batch {result.chunk} starts at event {result.start}, expected "
                f"{self.next_start}: batches arrived out of order or one was lost"
            )
        self.next_start = result.start + result.n
        table = dict(result.table)
        status = table["status"]
        if result.reason_names:
            remap = np.zeros(len(result.reason_names) + 1, dtype=np.int16)
            for i, reason in enumerate(result.reason_names):
                code = self.reason_codes.setdefault(reason, len(self.reason_codes) + 1)
                remap[i + 1] = code
            table["status"] = remap[status]
        for reason, count in result.reasons.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count
        decided = status == DECIDED
        self.n_input += result.n
        self.n_decided += int(decided.sum())
        self.n_batches += 1
        any_fired = np.zeros(result.n, dtype=bool)
        signal = table.get("is_signal")
        if signal is not None:
            self.n_signal += int((signal & decided).sum())
        for line in self.menu.lines:
            fired = table[line.name]
            any_fired |= fired
            self.accepted[line.name] += int(fired.sum())
            if signal is not None:
                self.accepted_signal[line.name] += int((fired & signal).sum())
            self.candidates[line.name] += result.n_candidates.get(line.name, 0)
            self._keep_scores(line.name, table[f"{line.name}_score"][decided])
        if signal is not None:
            self.signal.append(signal[decided][: max(0, _RESERVOIR - self._kept)])
        self._kept += int(decided.sum())
        self.n_any += int(any_fired.sum())
        for stage, sec in result.seconds.items():
            self.batch_seconds.setdefault(stage, []).append(sec)
        self.batch_sizes.append(result.n)
        if not self._opened:
            self._open(table)
        for sink in self.menu.sinks:
            sink.write(table)

    def _keep_scores(self, name: str, scores: np.ndarray) -> None:
        room = _RESERVOIR - sum(len(s) for s in self.scores[name])
        if room > 0:
            self.scores[name].append(scores[:room])

    def finish(self, plugins: dict[str, str] | None = None) -> RunReport:
        """Close sinks, check that every event is accounted for, build the report."""
        outputs: list[str] = []
        for sink in self.menu.sinks:
            if self._opened:
                outputs += [str(p) for p in sink.close()]
        if self.n_input == 0:
            raise DataError(
                f"the source {self.menu.source.describe()} gave zero events",
                hint="check the input files and the source's entry range",
            )
        lost = self.n_input - self.n_decided - sum(self.rejected.values())
        if lost != 0:
            raise RunFailure(
                f"{lost} events are neither decided nor rejected; the run is incomplete"
            )
        timing = {
            s: _timing(secs, self.batch_sizes) for s, secs in self.batch_seconds.items()
        }
        rate = self.menu.input_rate_hz
        lines = []
        for line in self.menu.lines:
            acc = self.accepted[line.name]
            eff = acc / self.n_decided if self.n_decided else 0.0
            metrics: dict[str, Any] = {}
            if self.n_signal:
                metrics["signal_efficiency"] = (
                    self.accepted_signal[line.name] / self.n_signal
                )
                n_bkg = self.n_decided - self.n_signal
                if n_bkg:
                    metrics["background_efficiency"] = (
                        acc - self.accepted_signal[line.name]
                    ) / n_bkg
            lines.append(
                LineReport(
                    name=line.name,
                    algorithm=line.algorithm.name,
                    model=line.artifact.card.name,
                    backend=line.backend.name,
                    threshold=line.threshold,
                    working_point=line.working_point,
                    n_decided=self.n_decided,
                    n_accepted=acc,
                    n_candidates=self.candidates[line.name],
                    efficiency=eff,
                    rate_hz=eff * rate if rate else None,
                    timing=timing.get(line.name, TimingReport()),
                    metrics=metrics,
                )
            )
        from trigml import __version__

        return RunReport(
            trigml_version=__version__,
            config_file=self.menu.config_file,
            source=self.menu.source.describe(),
            n_input=self.n_input,
            n_decided=self.n_decided,
            n_accepted_any=self.n_any,
            rejected=dict(sorted(self.rejected.items())),
            n_batches=self.n_batches,
            input_rate_hz=rate,
            lines=lines,
            timing=timing,
            outputs=outputs,
            plugins=plugins or {},
        )

    def line_scores(self, name: str) -> np.ndarray:
        """Event scores of decided events kept for plots (at most a million)."""
        parts = self.scores[name]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _timing(seconds: list[float], sizes: list[int]) -> TimingReport:
    total = float(sum(seconds))
    n = sum(sizes[: len(seconds)])
    per_event = np.array(
        [s / max(k, 1) * 1e6 for s, k in zip(seconds, sizes)], dtype=np.float64
    )
    return TimingReport(
        seconds=total,
        events_per_second=n / total if total > 0 else 0.0,
        latency_p50_us=float(np.percentile(per_event, 50)) if len(per_event) else 0.0,
        latency_p99_us=float(np.percentile(per_event, 99)) if len(per_event) else 0.0,
    )


def run_menu(
    menu: Menu,
    executor: Executor,
    out_dir: Path,
    *,
    progress: Callable[[int], None] | None = None,
    plugins: dict[str, str] | None = None,
) -> tuple[RunReport, RunAccounting]:
    """Run a menu to the end and return the report and the accounting.

    Parameters
    ----------
    progress : callable, optional
        Called with the number of events of each finished batch.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    accounting = RunAccounting(menu, out_dir)
    t0 = time.perf_counter()
    for result in executor.map(menu):
        accounting.add(result)
        if progress is not None:
            progress(result.n)
    report = accounting.finish(plugins)
    wall = time.perf_counter() - t0
    report.timing["total"] = TimingReport(
        seconds=wall, events_per_second=report.n_input / wall if wall > 0 else 0.0
    )
    log.info("run finished: %d events in %.2f s", report.n_input, wall)
    return report, accounting
