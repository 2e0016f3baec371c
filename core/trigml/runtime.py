"""The streaming runtime: batches → validation → candidates → scores → decisions.

A :class:`Menu` is an assembled run configuration. :func:`process_batch` does all the
work for one batch and is a pure function of the menu and the batch, so an executor can
run it anywhere (in this process, or on a Dask worker) and hand the
:class:`BatchResult` back to be merged in input order by :class:`RunAccounting`. Every
input event ends in exactly one place: a decided row, or the rejected count with its
reason; the accounting refuses to finish when the numbers do not balance.

A chunk that fails is tried again up to the executor's ``retries``; one that still
fails becomes a :class:`ChunkFailure`, which fails the run or, under the executor's
``on_failure: reject``, turns its events into rejected rows. With a
:class:`~trigml.journal.RunJournal`, every chunk's result is also kept on disk so that
an interrupted run can be finished later with the same outputs.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import awkward as ak
import numpy as np
from pydantic import Field

from trigml.artifact import Artifact
from trigml.components import Algorithm, Backend, Batch, ChunkRef, Scorer, Sink, Source
from trigml.errors import (
    ConfigError,
    DataError,
    ModelError,
    PluginError,
    RunFailure,
    UsageError,
)
from trigml.registry import Params
from trigml.schema.events import EventSchema, Policy, validate_batch
from trigml.schema.report import ChunkReport, LineReport, RunReport, TimingReport

if TYPE_CHECKING:
    from trigml.journal import RunJournal

__all__ = [
    "FATAL_ERRORS",
    "BatchResult",
    "ChunkFailure",
    "Executor",
    "ExecutorParams",
    "FailurePolicy",
    "Line",
    "LocalExecutor",
    "Menu",
    "RunAccounting",
    "describe_error",
    "plan_chunks",
    "process_batch",
    "run_chunk",
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
        Time spent per stage (``read``, ``validate``, each line) on this batch.
    origin : str
        Where the batch came from, for messages.
    retries : list of str
        Why earlier attempts at this chunk failed (empty when the first one worked).
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
    retries: list[str] = field(default_factory=list)


@dataclass
class ChunkFailure:
    """A chunk that failed on every attempt, in place of its :class:`BatchResult`.

    Attributes
    ----------
    chunk, start, n : int
        Position of the chunk in the input.
    origin : str
    reasons : list of str
        Why each attempt failed, in order.
    """

    chunk: int
    start: int
    n: int
    origin: str
    reasons: list[str]

    @classmethod
    def of(cls, ref: ChunkRef, reasons: list[str]) -> ChunkFailure:
        return cls(ref.index, ref.start, ref.n, ref.origin, list(reasons))


#: Errors that no retry can cure and that concern the whole run, not one chunk: a
#: wrong configuration, a missing plugin, a model that does not fit its algorithm.
FATAL_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    UsageError,
    PluginError,
    ModelError,
)


def describe_error(exc: BaseException) -> str:
    """One line for a failed attempt: the error's type and its first line."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
        "status": checked.reason_index,
    }
    if menu.signal_field:
        table["is_signal"] = ak.to_numpy(batch.events[menu.signal_field]).astype(bool)
    n_candidates: dict[str, int] = {}
    for line in menu.lines:
        line.scorer  # noqa: B018 - load (compile, calibrate) outside the timing
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


def run_chunk(menu: Menu, ref: ChunkRef) -> BatchResult:
    """Read one chunk of the menu's source and process it (one unit of work).

    Executors call this in their own process or on a remote worker; it needs only
    the menu (without sinks) and the chunk reference.
    """
    t0 = time.perf_counter()
    try:
        batch = menu.source.read_chunk(ref, menu.columns())
    except BaseException:
        # a retry opens the file afresh rather than through a handle that failed
        menu.source.close()
        raise
    if len(batch) != ref.n or batch.start != ref.start:
        raise DataError(
            f"{ref.origin}: the source gave {len(batch)} events from {batch.start}, "
            f"the run planned {ref.n} from {ref.start}; the input changed"
        )
    read = time.perf_counter() - t0
    result = process_batch(menu, batch)
    result.seconds = {"read": read, **result.seconds}
    return result


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
    if scores.ndim == 2:
        scores = np.asarray(line.algorithm.discriminant(scores))
    if scores.ndim != 1:
        raise ModelError(
            f"line '{line.name}': model '{line.artifact.card.name}' gives scores of "
            f"shape {scores.shape}; a trigger line needs one score per candidate",
            hint="use an algorithm that reduces multiclass outputs to a discriminant",
        )
    fired = line.algorithm.decide(scores, cands, n_events, line.threshold)
    best = line.algorithm.event_scores(scores, cands, n_events).astype(np.float32)
    return fired, best, len(cands)


FailurePolicy = Literal["fail", "reject"]


class ExecutorParams(Params):
    """Parameters every executor takes: how failing chunks are handled.

    Attributes
    ----------
    retries : int
        Times a failing chunk is tried again before it counts as failed.
    on_failure : {"fail", "reject"}
        What a chunk that failed on every attempt does: ``fail`` the run (exit code
        1, after the other chunks are done, so that ``--resume`` redoes only the
        failed ones) or ``reject`` its events with the reason "chunk failed: …".
    """

    retries: int = Field(2, ge=0)
    on_failure: FailurePolicy = "fail"


class Executor(abc.ABC):
    """Drives the work over a source's chunks and hands results back in order.

    Attributes
    ----------
    name : str
        Registered name, recorded in the run report.
    retries : int
    on_failure : {"fail", "reject"}
        See :class:`ExecutorParams`.
    """

    name = ""
    retries = 0
    on_failure: FailurePolicy = "fail"

    @abc.abstractmethod
    def map(
        self,
        menu: Menu,
        *,
        chunks: list[ChunkRef] | None = None,
        skip: Collection[int] = (),
    ) -> Iterator[BatchResult | ChunkFailure]:
        """Yield one result per chunk of the source, in input order.

        Parameters
        ----------
        menu : Menu
        chunks : list of ChunkRef, optional
            The source's chunks, when the caller has planned them already.
        skip : collection of int
            Chunk numbers done by an earlier attempt at the run: nothing is yielded
            for them.

        Yields
        ------
        BatchResult or ChunkFailure
            A chunk's result, or its failure after ``retries`` retries.
        """


def plan_chunks(menu: Menu) -> list[ChunkRef] | None:
    """The source's chunks for the menu's columns, or None if it cannot split."""
    if not menu.source.splittable:
        return None
    return menu.source.chunks(menu.columns())


class LocalExecutor(Executor):
    """Runs every chunk in this process, one after the other.

    A source that cannot be split is read through its ``batches()``; a batch that
    fails then fails the run, since a broken stream of batches cannot be retried.

    Parameters
    ----------
    params : ExecutorParams, optional
    """

    name = "local"

    def __init__(self, params: ExecutorParams | None = None) -> None:
        self.params = params or ExecutorParams()
        self.retries = self.params.retries
        self.on_failure = self.params.on_failure

    def map(
        self,
        menu: Menu,
        *,
        chunks: list[ChunkRef] | None = None,
        skip: Collection[int] = (),
    ) -> Iterator[BatchResult | ChunkFailure]:
        refs = chunks if chunks is not None else plan_chunks(menu)
        if refs is None:
            yield from self._map_batches(menu, skip)
            return
        done = set(skip)
        try:
            for ref in refs:
                if ref.index not in done:
                    yield self._attempt(menu, ref)
        finally:
            menu.source.close()

    def _attempt(self, menu: Menu, ref: ChunkRef) -> BatchResult | ChunkFailure:
        reasons: list[str] = []
        while True:
            try:
                result = run_chunk(menu, ref)
            except FATAL_ERRORS:
                raise
            except Exception as exc:
                reasons.append(describe_error(exc))
                if len(reasons) > self.retries:
                    log.warning(
                        "%s failed %d times: %s", ref.origin, len(reasons), reasons[-1]
                    )
                    return ChunkFailure.of(ref, reasons)
                log.warning("%s failed, trying again: %s", ref.origin, reasons[-1])
                continue
            result.retries = reasons
            return result

    @staticmethod
    def _map_batches(menu: Menu, skip: Collection[int]) -> Iterator[BatchResult]:
        done = set(skip)
        for batch in menu.source.batches(menu.columns()):
            if batch.chunk not in done:
                yield process_batch(menu, batch)


_RESERVOIR = 1_000_000


class RunAccounting:
    """Merges batch results in order, writes sinks, and builds the run report.

    Parameters
    ----------
    menu : Menu
    out_dir : Path
    on_failure : {"fail", "reject"}
        What a :class:`ChunkFailure` does (see :class:`ExecutorParams`).
    """

    def __init__(
        self, menu: Menu, out_dir: Path, *, on_failure: FailurePolicy = "fail"
    ) -> None:
        self.menu = menu
        self.out_dir = out_dir
        self.on_failure = on_failure
        self.retried: list[ChunkReport] = []
        self.failed: list[ChunkReport] = []
        self.resumed = 0
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
        self.batch_sizes: dict[str, list[int]] = {}
        self.scores: dict[str, list[np.ndarray]] = {
            line.name: [] for line in menu.lines
        }
        self.signal: list[np.ndarray] = []
        self._kept = 0
        self._opened = False
        self._broken = False

    def _open(self, table: dict[str, np.ndarray]) -> None:
        dtypes = {k: v.dtype for k, v in table.items()}
        for sink in self.menu.sinks:
            sink.open(self.out_dir, dtypes)
        self._writer = _SinkWriter(self.menu.sinks)
        self._opened = True

    def _advance(self, chunk: int, start: int, n: int) -> None:
        if start != self.next_start:
            raise RunFailure(
                f"batch {chunk} starts at event {start}, expected "
                f"{self.next_start}: batches arrived out of order or one was lost"
            )
        self.next_start = start + n

    def add_failure(self, failure: ChunkFailure) -> None:
        """Account for a chunk that failed on every attempt.

        Under ``on_failure="reject"`` its events become rejected rows with the
        reason "chunk failed: …"; otherwise the chunk is recorded, the sinks receive
        nothing more (their rows would no longer be in order) and :meth:`finish`
        fails the run.
        """
        rejected = self.on_failure == "reject"
        self.failed.append(
            ChunkReport(
                chunk=failure.chunk,
                origin=failure.origin,
                start=failure.start,
                n_events=failure.n,
                attempts=len(failure.reasons),
                reasons=failure.reasons,
                outcome="rejected" if rejected else "failed",
            )
        )
        if rejected:
            self.add(_failed_result(self.menu, failure))
            return
        self._advance(failure.chunk, failure.start, failure.n)
        self._broken = True

    def add(self, result: BatchResult) -> None:
        """Account for one batch; batches must arrive in input order."""
        self._advance(result.chunk, result.start, result.n)
        if result.retries:
            self.retried.append(
                ChunkReport(
                    chunk=result.chunk,
                    origin=result.origin,
                    start=result.start,
                    n_events=result.n,
                    attempts=len(result.retries) + 1,
                    reasons=result.retries,
                    outcome="retried",
                )
            )
        if self._broken:
            return
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
        room = _RESERVOIR - self._kept
        if signal is not None and room > 0:
            self.signal.append(_head(signal[decided], room))
        self._kept += int(decided.sum())
        self.n_any += int(any_fired.sum())
        for stage, sec in result.seconds.items():
            self.batch_seconds.setdefault(stage, []).append(sec)
            self.batch_sizes.setdefault(stage, []).append(result.n)
        if not self._opened:
            self._open(table)
        self._writer.write(table)

    def _keep_scores(self, name: str, scores: np.ndarray) -> None:
        room = _RESERVOIR - sum(len(s) for s in self.scores[name])
        if room > 0:
            self.scores[name].append(_head(scores, room))

    def finish(self, plugins: dict[str, str] | None = None) -> RunReport:
        """Close sinks, check that every event is accounted for, build the report.

        Raises
        ------
        RunFailure
            A chunk failed under ``on_failure="fail"``, or events are unaccounted.
        DataError
            The source gave no events at all.
        """
        outputs: list[str] = []
        if self._opened:
            self._writer.close()
            for sink in self.menu.sinks:
                outputs += [str(p) for p in sink.close()]
        if self._broken:
            raise _chunks_failed(self.failed)
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
            s: _timing(secs, self.batch_sizes[s])
            for s, secs in self.batch_seconds.items()
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
            retried_chunks=self.retried,
            failed_chunks=self.failed,
            resumed_chunks=self.resumed,
        )

    def line_scores(self, name: str) -> np.ndarray:
        """Event scores of decided events kept for plots (at most a million)."""
        parts = self.scores[name]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _head(values: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` values, copied when cut, so that no view keeps the rest alive."""
    return values if len(values) <= n else values[:n].copy()


def _failed_result(menu: Menu, failure: ChunkFailure) -> BatchResult:
    """The rows of a failed chunk, all rejected with the reason of its last failure."""
    n = failure.n
    reason = f"chunk failed: {failure.reasons[-1]}"
    table: dict[str, np.ndarray] = {
        "event": np.arange(failure.start, failure.start + n, dtype=np.int64),
        "status": np.ones(n, dtype=np.int16),
    }
    if menu.signal_field:
        # unknown for events that could not be read; rejected rows never count
        table["is_signal"] = np.zeros(n, dtype=bool)
    for line in menu.lines:
        table[line.name] = np.zeros(n, dtype=bool)
        table[f"{line.name}_score"] = np.full(n, -np.inf, dtype=np.float32)
    return BatchResult(
        chunk=failure.chunk,
        start=failure.start,
        n=n,
        table=table,
        reasons={reason: n},
        reason_names=[reason],
        n_candidates={},
        seconds={},
        origin=failure.origin,
    )


def _chunks_failed(failed: list[ChunkReport]) -> RunFailure:
    lost = [f for f in failed if f.outcome == "failed"]
    n_events = sum(f.n_events for f in lost)
    listed = "; ".join(
        f"chunk {f.chunk} ({f.origin}): {f.reasons[-1]}" for f in lost[:5]
    )
    if len(lost) > 5:
        listed += f"; and {len(lost) - 5} more"
    return RunFailure(
        f"{len(lost)} chunk(s) failed on every attempt, so {n_events} events are "
        f"neither decided nor rejected: {listed}",
        hint="fix the cause and finish the run with 'trigml run CONFIG --out OUT "
        "--resume' (only the missing chunks run again), or set 'on_failure: reject' "
        "in the executor's parameters to count such events as rejected",
    )


class _SinkWriter:
    """Writes decision tables to the sinks on a background thread, in order.

    Compressing and writing a batch's decisions (LZ4 or ZSTD release the GIL) then
    overlaps with reading and scoring the next batch. At most two tables wait; an
    error in a sink is raised on the next write or at close.
    """

    def __init__(self, sinks: list[Sink]) -> None:
        import queue
        import threading

        self.sinks = sinks
        self.pending: queue.Queue[dict[str, np.ndarray] | None] = queue.Queue(2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="trigml-sinks")
        self.thread.daemon = True
        self.thread.start()

    def _loop(self) -> None:
        while True:
            table = self.pending.get()
            if table is None:
                return
            if self.error is not None:
                continue
            try:
                for sink in self.sinks:
                    sink.write(table)
            except BaseException as exc:  # handed to the caller's thread
                self.error = exc

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def write(self, table: dict[str, np.ndarray]) -> None:
        self._raise()
        self.pending.put(table)

    def close(self) -> None:
        self.pending.put(None)
        self.thread.join()
        self._raise()


def _timing(seconds: list[float], sizes: list[int]) -> TimingReport:
    total = float(sum(seconds))
    n = sum(sizes)
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
    journal: RunJournal | None = None,
) -> tuple[RunReport, RunAccounting]:
    """Run a menu to the end and return the report and the accounting.

    Parameters
    ----------
    menu : Menu
    executor : Executor
    out_dir : Path
        Folder of the sinks' outputs (created if needed).
    progress : callable, optional
        Called with the number of events of each finished batch.
    plugins : dict of str to str, optional
        Distribution → version, recorded in the report.
    journal : RunJournal, optional
        Keeps every chunk's result on disk as it comes, and provides those of an
        earlier, interrupted attempt (:meth:`RunJournal.begin`), which are merged in
        input order with the new ones instead of being computed again.

    Raises
    ------
    RunFailure
        A chunk failed on every attempt under ``on_failure: fail``, or events are
        unaccounted for; the journal, if any, keeps what was done.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    accounting = RunAccounting(menu, out_dir, on_failure=executor.on_failure)
    t0 = time.perf_counter()
    refs = plan_chunks(menu)
    done = journal.begin(menu, refs) if journal is not None else []
    outcomes = executor.map(menu, chunks=refs, skip=done)
    try:
        for outcome, replayed in _with_replayed(outcomes, done, journal):
            if isinstance(outcome, ChunkFailure):
                if journal is not None:
                    journal.record_failure(outcome)
                accounting.add_failure(outcome)
            else:
                if replayed:
                    accounting.resumed += 1
                elif journal is not None:
                    journal.record(outcome)
                accounting.add(outcome)
            if progress is not None:
                progress(outcome.n)
    finally:
        # stop the executor's generator (a cluster, open files) even on errors
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
        if journal is not None:
            journal.close()
    report = accounting.finish(plugins)
    report.executor = executor.name
    wall = time.perf_counter() - t0
    report.timing["total"] = TimingReport(
        seconds=wall, events_per_second=report.n_input / wall if wall > 0 else 0.0
    )
    log.info("run finished: %d events in %.2f s", report.n_input, wall)
    return report, accounting


def _with_replayed(
    outcomes: Iterable[BatchResult | ChunkFailure],
    done: list[int],
    journal: RunJournal | None,
) -> Iterator[tuple[BatchResult | ChunkFailure, bool]]:
    """New outcomes merged in chunk order with the journal's earlier results.

    Yields (outcome, True) for a result read back from the journal and
    (outcome, False) for a new one.
    """
    if journal is None:
        for outcome in outcomes:
            yield outcome, False
        return
    earlier = sorted(done)
    i = 0
    for outcome in outcomes:
        while i < len(earlier) and earlier[i] < outcome.chunk:
            yield journal.load(earlier[i]), True
            i += 1
        yield outcome, False
    for chunk in earlier[i:]:
        yield journal.load(chunk), True
