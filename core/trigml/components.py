"""The interfaces between the core and the components that plugins provide.

A run streams :class:`Batch` objects from a :class:`Source`; for each line of the menu
an :class:`Algorithm` turns the events into :class:`Candidates`, a :class:`Scorer`
loaded by a :class:`Backend` scores them, and the algorithm turns scores into one
decision per event. Training asks the algorithm for a :class:`TrainingSet` and a
:class:`ModelFamily` for a model, saved as an artifact (:mod:`trigml.artifact`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import awkward as ak

    from trigml.artifact import Artifact
    from trigml.schema.card import FeatureSpec, ModelCard
    from trigml.schema.events import EventSchema

__all__ = [
    "Algorithm",
    "Backend",
    "Batch",
    "Candidates",
    "ChunkRef",
    "ExportResult",
    "ModelFamily",
    "Scorer",
    "Sink",
    "Source",
    "TrainedModel",
    "TrainingSet",
]


@dataclass
class Batch:
    """A chunk of events from a source.

    Attributes
    ----------
    events : ak.Array
        One record per event with flat fields and jagged collections.
    start : int
        Index of the first event of the batch in the whole input (0-based, over all
        files of the source, in input order).
    origin : str
        Where the batch came from, for messages (``file.root:tree[0:100000]``).
    chunk : int
        Sequence number of the batch within the source.
    """

    events: ak.Array
    start: int
    origin: str = ""
    chunk: int = 0

    def __len__(self) -> int:
        return len(self.events)


@dataclass(frozen=True)
class ChunkRef:
    """A piece of a source small enough to describe and read on its own, anywhere.

    A chunk reference is a few numbers and a path, cheap to send to another process
    or machine; :meth:`Source.read_chunk` turns it into a :class:`Batch`.

    Attributes
    ----------
    index : int
        Sequence number of the chunk within the source (``Batch.chunk``).
    start : int
        Index of the chunk's first event in the whole input (over all files).
    n : int
        Number of events in the chunk.
    file : str
        The file the chunk lies in ("" for a generated source).
    entry_start, entry_stop : int
        Entry range of the chunk within ``file`` (or within the generator's stream).
    origin : str
        Where the chunk comes from, for messages (``file.root:tree[0:100000]``).
    """

    index: int
    start: int
    n: int
    file: str = ""
    entry_start: int = 0
    entry_stop: int = 0
    origin: str = ""


@dataclass
class Candidates:
    """Candidates built from a batch, with an index back to their event.

    Attributes
    ----------
    features : ndarray, float32, shape (n_candidates, n_features)
        Feature matrix in the order of ``names``.
    event_index : ndarray, int64, shape (n_candidates,)
        Index of each candidate's event within the batch, non-decreasing: the
        candidates of one event are contiguous and events come in batch order.
    names : list of str
        Feature names.
    aux : dict of str to ndarray
        Per-candidate extra columns (truth labels, kinematics for plots).
    per_event : bool
        True when the candidates are the events themselves (``event_index`` is
        ``arange(n_events)``), which lets decisions skip the candidate-to-event step.
    """

    features: np.ndarray
    event_index: np.ndarray
    names: list[str]
    aux: dict[str, np.ndarray] = field(default_factory=dict)
    per_event: bool = False

    def __len__(self) -> int:
        return len(self.event_index)


@dataclass
class TrainingSet:
    """A labelled feature matrix for a model family.

    Attributes
    ----------
    features : ndarray, float32, shape (n, n_features)
    labels : ndarray, shape (n,) or (n, n_targets)
        Class index for classification, target value for regression.
    weights : ndarray, float32, shape (n,)
    features_spec : list of FeatureSpec
        Names, units and descriptions of the columns of ``features``.
    task : str
        ``binary``, ``multiclass``, ``regression`` or ``anomaly``.
    classes : list of str
        Class names for classification.
    aux : dict of str to ndarray
        Per-row extra columns kept for evaluation (decay time, Dalitz variables, truth).
    description : str
        Where the rows came from, recorded as provenance in the model card.
    """

    features: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    features_spec: list[FeatureSpec]
    task: str = "binary"
    classes: list[str] = field(default_factory=lambda: ["background", "signal"])
    aux: dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features_spec]

    def subset(self, rows: np.ndarray) -> TrainingSet:
        """Rows ``rows`` (an index or boolean mask) of this set."""
        return TrainingSet(
            features=self.features[rows],
            labels=self.labels[rows],
            weights=self.weights[rows],
            features_spec=self.features_spec,
            task=self.task,
            classes=self.classes,
            aux={k: v[rows] for k, v in self.aux.items()},
            description=self.description,
        )

    def split(self, fraction: float, seed: int) -> tuple[TrainingSet, TrainingSet]:
        """Shuffle and split into (first, second) with ``fraction`` in the second.

        When ``aux`` holds a ``group`` column (an event number, say), rows sharing a
        group stay on one side, so that event-level figures (an event fires if any of
        its candidates passes) can be computed on either side; ``fraction`` is then
        the fraction of groups.
        """
        rng = np.random.default_rng(seed)
        if "group" in self.aux:
            groups, row_group = np.unique(self.aux["group"], return_inverse=True)
            second = rng.permutation(len(groups))[
                round(len(groups) * (1.0 - fraction)) :
            ]
            in_second = np.isin(row_group.ravel(), second)
            return self.subset(~in_second), self.subset(in_second)
        order = rng.permutation(len(self))
        cut = round(len(self) * (1.0 - fraction))
        return self.subset(order[:cut]), self.subset(order[cut:])


class Source(abc.ABC):
    """Yields batches of events.

    The pipeline tells the source which fields it needs through ``columns`` so that a
    file-backed source reads nothing else.

    A source that can be split also implements :meth:`chunks` and
    :meth:`read_chunk`: the run is then planned as a list of small chunk references
    that any process can read independently, which distributed executors and
    resumed runs need. ``read_chunk(ref)`` for each ``ref`` of ``chunks()`` must give
    the same events as ``batches()``, in the same order and the same batch bounds.
    """

    @abc.abstractmethod
    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Batch]:
        """Yield batches in input order.

        Parameters
        ----------
        columns : sequence of str, optional
            Dotted field names (``tracks.pt``, ``nPV``) the consumer needs; None reads
            everything.
        """

    @property
    def splittable(self) -> bool:
        """Whether the source implements :meth:`chunks` and :meth:`read_chunk`."""
        cls = type(self)
        return (
            cls.chunks is not Source.chunks and cls.read_chunk is not Source.read_chunk
        )

    def chunks(self, columns: Sequence[str] | None = None) -> list[ChunkRef]:
        """Plan the whole input as chunks, in input order.

        Parameters
        ----------
        columns : sequence of str, optional
            The fields that will be read, as for :meth:`batches` (a source whose
            chunk size is a memory size needs them to size its chunks).

        Raises
        ------
        UsageError
            The source cannot be split (the default).
        """
        raise _cannot_split(self)

    def read_chunk(self, ref: ChunkRef, columns: Sequence[str] | None = None) -> Batch:
        """Read one chunk planned by :meth:`chunks` (in any process).

        Raises
        ------
        UsageError
            The source cannot be split (the default).
        DataError
            The chunk's events cannot be read.
        """
        raise _cannot_split(self)

    def close(self) -> None:  # noqa: B027 - optional, nothing to release by default
        """Release what :meth:`read_chunk` keeps open between calls (optional)."""

    def describe(self) -> str:
        """One line for reports and model-card provenance."""
        return type(self).__name__


def _cannot_split(source: Source) -> Exception:
    from trigml.errors import UsageError

    return UsageError(
        f"the source {source.describe()} cannot be split into chunks, which "
        "distributed runs need",
        hint="use the local executor, or a source that can be split (root, toy)",
    )


class Sink(abc.ABC):
    """Receives one table of decisions per batch."""

    @abc.abstractmethod
    def open(self, out_dir: Path, columns: Mapping[str, np.dtype]) -> None:
        """Prepare to write the given columns into ``out_dir``."""

    @abc.abstractmethod
    def write(self, table: Mapping[str, np.ndarray]) -> None:
        """Write one batch: equal-length columns, one row per input event."""

    @abc.abstractmethod
    def close(self) -> list[Path]:
        """Finish writing and return the files written."""


class Algorithm(abc.ABC):
    """Turns events into candidates and candidate scores into decisions."""

    #: Name of the component, set by the registry-facing factory.
    name: str = ""

    @abc.abstractmethod
    def event_schema(self) -> EventSchema:
        """The collections and fields this algorithm reads."""

    @abc.abstractmethod
    def candidates(self, events: ak.Array) -> Candidates:
        """Build candidates and their feature matrix for a batch of events."""

    @abc.abstractmethod
    def training_set(self, source: Source, *, seed: int) -> TrainingSet:
        """Read the source and return labelled candidates for training."""

    def default_source(self, *, seed: int, n_events: int) -> Source | None:
        """A built-in simulation to use when a config names no source."""
        return None

    def decide(
        self, scores: np.ndarray, cands: Candidates, n_events: int, threshold: float
    ) -> np.ndarray:
        """Event decisions: an event fires when any of its candidates passes.

        Parameters
        ----------
        scores : ndarray, float32, shape (n_candidates,)
        cands : Candidates
        n_events : int
        threshold : float

        Returns
        -------
        ndarray of bool, shape (n_events,)
        """
        if cands.per_event:
            return np.asarray(scores >= threshold)
        fired = np.zeros(n_events, dtype=bool)
        fired[cands.event_index[scores >= threshold]] = True
        return fired

    def discriminant(self, scores: np.ndarray) -> np.ndarray:
        """One score per candidate from a model with several outputs.

        A trigger line cuts on one number per candidate; algorithms whose models
        give class probabilities (b, c, light …) override this to combine them (for
        example P(b) + P(bb)). The default returns ``scores`` unchanged, and a line
        refuses a result that is still two-dimensional.
        """
        return scores

    def event_scores(
        self, scores: np.ndarray, cands: Candidates, n_events: int
    ) -> np.ndarray:
        """The highest candidate score per event (-inf where there is none).

        Candidates come in event order, so each event's candidates form one run of
        ``event_index`` and a single ``maximum.reduceat`` finds the best of each.
        """
        if cands.per_event:
            return np.asarray(scores, dtype=np.float32)
        best = np.full(n_events, -np.inf, dtype=np.float32)
        index = cands.event_index
        if len(index) == 0:
            return best
        starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
        best[index[starts]] = np.maximum.reduceat(scores.astype(np.float32), starts)
        return best

    def describe_card(
        self, card: ModelCard, valid: TrainingSet, scores: np.ndarray
    ) -> ModelCard:
        """Add algorithm-specific content (working points, metrics) to a new card.

        Parameters
        ----------
        card : ModelCard
            The card the core filled: features, family, hyperparameters, default
            candidate-level working points.
        valid : TrainingSet
            The validation rows, with their ``aux`` columns.
        scores : ndarray
            The float model's scores on ``valid`` (see ``Artifact.to_scores``).
        """
        return card

    def evaluate(
        self, valid: TrainingSet, scores: np.ndarray, out_dir: Path
    ) -> dict[str, Any]:
        """Algorithm-specific figures and plots written after training (optional)."""
        return {}


@dataclass
class TrainedModel:
    """A model a family has fitted, before it is saved.

    Attributes
    ----------
    model : object
        The family's native object (booster, torch module, cut table).
    predict : callable
        ``predict(features) -> scores`` in float, the reference for every backend.
    hyperparameters : dict
    metrics : dict
        Training-time figures (best iteration, validation loss, feature importance).
    """

    model: Any
    predict: Any
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class ModelFamily(abc.ABC):
    """Fits models and saves them in open formats.

    A family reports training progress through :meth:`report_progress` (boosting
    rounds, epochs); the command line sets :attr:`progress` to draw a progress bar.
    """

    name: str = ""
    #: ``progress(done, total)``, set by the caller; None when nobody listens.
    progress: Callable[[int, int], None] | None = None

    def report_progress(self, done: int, total: int) -> None:
        """Tell the caller that ``done`` of ``total`` training steps are finished."""
        if self.progress is not None:
            self.progress(done, total)

    @abc.abstractmethod
    def fit(self, train: TrainingSet, valid: TrainingSet, *, seed: int) -> TrainedModel:
        """Fit a model on ``train`` with early stopping on ``valid``."""

    @abc.abstractmethod
    def save(self, model: TrainedModel, directory: Path) -> dict[str, str]:
        """Write model files into ``directory``; return ``{format: file name}``.

        ONNX (format ``onnx``) is always written where the model can be expressed in
        it; the native format is written where it is safe to read back.
        """


class Scorer(abc.ABC):
    """A loaded model ready to score feature matrices."""

    @abc.abstractmethod
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores for ``features`` (float32, shape (n, n_features)).

        Returns shape (n,) for a single output and (n, n_outputs) otherwise.
        """


@dataclass
class ExportResult:
    """What an export wrote and measured."""

    directory: Path
    files: list[Path]
    report: dict[str, Any]


class Backend(abc.ABC):
    """Loads artifacts into scorers; may export them into a deployable form."""

    name: str = ""

    @abc.abstractmethod
    def formats(self) -> Sequence[str]:
        """Artifact formats this backend reads, in order of preference."""

    @abc.abstractmethod
    def load(self, artifact: Artifact) -> Scorer:
        """Return a scorer for a verified artifact."""

    def export(self, artifact: Artifact, out_dir: Path) -> ExportResult:
        """Write a deployable form of the artifact with a consistency report."""
        from trigml.export import cpu_export

        return cpu_export(self, artifact, out_dir)

    def describe(self) -> Mapping[str, Any]:
        """Settings to record in reports."""
        return {"backend": self.name}
