"""Training orchestration: config → training set → model family → verified artifact.

The core owns the sequence so that every model, whatever its family, ends up as an
artifact with the same card, held-out sample and working points.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trigml.artifact import HOLDOUT_FILE, Artifact, save_artifact
from trigml.assemble import build, resolve_path
from trigml.components import Algorithm, ModelFamily, Source, TrainingSet
from trigml.configfile import ConfigFile
from trigml.errors import RunFailure, UsageError
from trigml.registry import Registry
from trigml.schema.card import ModelCard, OutputSpec, Provenance, WorkingPoint
from trigml.schema.config import TrainConfig

__all__ = ["HOLDOUT_ROWS", "default_working_points", "prepare_output", "train_model"]

log = logging.getLogger(__name__)

#: Rows of the validation set kept in ``holdout.npz`` for consistency checks.
HOLDOUT_ROWS = 200_000


def prepare_output(path: Path, *, overwrite: bool) -> None:
    """Create an empty output folder; an existing non-empty one needs ``overwrite``."""
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise UsageError(
                f"output directory {path} exists and is not empty",
                hint="pass --overwrite to replace it, or choose another --out",
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def default_working_points(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> list[WorkingPoint]:
    """Candidate-level working points at 50, 70 and 90% signal efficiency.

    Parameters
    ----------
    scores : ndarray, shape (n,)
        Float model scores on the validation set (higher is more signal-like).
    labels : ndarray, shape (n,)
        1 for signal, 0 for background.
    """
    y = np.asarray(labels) > 0
    if not y.any() or y.all() or scores.ndim != 1:
        return []
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    sig = np.sort(scores[y])
    points = []
    for eff in (0.5, 0.7, 0.9):
        threshold = float(sig[int(np.floor((1.0 - eff) * (len(sig) - 1)))])
        passed = scores >= threshold
        points.append(
            WorkingPoint(
                name=f"eff{int(eff * 100)}",
                threshold=threshold,
                signal_efficiency=float(w[y & passed].sum() / w[y].sum()),
                background_efficiency=float(w[~y & passed].sum() / w[~y].sum()),
            )
        )
    return points


def train_model(
    config: TrainConfig,
    registry: Registry,
    cfg: ConfigFile | None = None,
    *,
    overwrite: bool = False,
    output: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Artifact:
    """Train a model as a config says and save it as a verified artifact.

    Parameters
    ----------
    config : TrainConfig
    registry : Registry
    cfg : ConfigFile, optional
        The parsed config file, for relative paths and error locations.
    overwrite : bool
        Replace an existing output directory.
    output : Path, optional
        Overrides ``config.output``.
    progress : callable, optional
        ``progress(stage, done, total)`` for a progress bar; stages are ``data`` and
        ``fit``.
    """
    out = output or resolve_path(config.output, cfg)
    prepare_output(out, overwrite=overwrite)
    algorithm: Algorithm = build(
        registry, "algorithm", config.algorithm, cfg, ("algorithm",)
    )
    family: ModelFamily = build(registry, "family", config.family, cfg, ("family",))
    if progress is not None:
        family.progress = lambda done, total: progress("fit", done, total)
    source = _source(config, registry, cfg, algorithm)

    log.info("building the training set from %s", source.describe())
    data = algorithm.training_set(source, seed=config.seed)
    train, valid = data.split(config.valid_fraction, config.seed)
    log.info(
        "training %s on %d rows, validating on %d", family.name, len(train), len(valid)
    )

    model = family.fit(train, valid, seed=config.seed)
    kept = model.extra.get("features")
    if kept is not None and list(kept) != data.names:
        train, valid = _restrict(train, kept), _restrict(valid, kept)
    formats = family.save(model, out)

    scores = np.asarray(model.predict(valid.features))
    card = _card(
        config, algorithm, family, model, train, valid, scores, source, formats
    )
    card = algorithm.describe_card(card, valid, scores)
    _write_holdout(out, valid, scores)
    artifact = save_artifact(out, card)
    try:
        extra = algorithm.evaluate(valid, scores, out / "evaluation")
    except Exception as exc:
        raise RunFailure(f"evaluation of '{card.name}' failed: {exc}") from exc
    if extra:
        card = artifact.card.model_copy(
            update={"metrics": {**artifact.card.metrics, **extra}}
        )
        artifact = save_artifact(out, card)
    return artifact


def _source(
    config: TrainConfig,
    registry: Registry,
    cfg: ConfigFile | None,
    algorithm: Algorithm,
) -> Source:
    if config.source is not None:
        src: Source = build(registry, "source", config.source, cfg, ("source",))
        return src
    sim = algorithm.default_source(seed=config.seed, n_events=config.n_events)
    if sim is None:
        raise UsageError(
            f"algorithm '{algorithm.name}' has no built-in simulation; give a 'source'"
        )
    return sim


def _restrict(data: TrainingSet, names: list[str]) -> TrainingSet:
    index = [data.names.index(n) for n in names]
    return TrainingSet(
        features=data.features[:, index],
        labels=data.labels,
        weights=data.weights,
        features_spec=[data.features_spec[i] for i in index],
        task=data.task,
        classes=data.classes,
        aux=data.aux,
        description=data.description,
    )


def _card(
    config: TrainConfig,
    algorithm: Algorithm,
    family: ModelFamily,
    model: Any,
    train: TrainingSet,
    valid: TrainingSet,
    scores: np.ndarray,
    source: Source,
    formats: dict[str, str],
) -> ModelCard:
    from trigml import __version__

    features = [f.model_copy() for f in train.features_spec]
    scaling = model.extra.get("feature_scaling")
    if scaling is not None:
        offset, scale = (np.asarray(a, dtype=np.float64) for a in scaling)
        features = [
            f.model_copy(update={"offset": float(o), "scale": float(s)})
            for f, o, s in zip(features, offset, scale)
        ]
    outputs = (
        [OutputSpec(name=c) for c in train.classes]
        if train.task == "multiclass"
        else [OutputSpec(name="score")]
    )
    working_points = (
        default_working_points(scores, valid.labels, valid.weights)
        if train.task == "binary"
        else []
    )
    out_dir = resolve_path(config.output, None)
    return ModelCard(
        name=config.name or out_dir.name,
        algorithm=config.algorithm.type,
        family=config.family.type,
        task=train.task,
        features=features,
        outputs=outputs,
        classes=train.classes if train.task in ("binary", "multiclass") else [],
        formats=formats,
        provenance=Provenance(
            source=source.describe(),
            n_train=len(train),
            n_valid=len(valid),
            seed=config.seed,
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            trigml_version=__version__,
            config=config.model_dump(mode="json"),
        ),
        hyperparameters=_jsonable(model.hyperparameters),
        algorithm_params=config.algorithm.params,
        metrics=_jsonable(model.metrics),
        working_points=working_points,
    )


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars and arrays inside a structure to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_holdout(out: Path, valid: TrainingSet, scores: np.ndarray) -> None:
    rows = slice(0, HOLDOUT_ROWS)
    arrays: dict[str, Any] = {
        "features": valid.features[rows].astype(np.float32),
        "labels": np.asarray(valid.labels)[rows],
        "weights": np.asarray(valid.weights, dtype=np.float32)[rows],
        "scores": np.asarray(scores, dtype=np.float32)[rows],
    }
    for key, col in valid.aux.items():
        col = np.asarray(col)
        if col.dtype.kind in "biuf":
            arrays[f"aux_{key}"] = col[rows]
    np.savez_compressed(out / HOLDOUT_FILE, allow_pickle=False, **arrays)
