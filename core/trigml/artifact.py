"""Model artifacts: a directory with ``card.json`` and model files in open formats.

:func:`save_artifact` hashes every file into the card; :func:`load_artifact` refuses a
directory whose files do not match their recorded sha256, so a tampered or half-copied
model never runs. Arrays that travel with a model (a lookup table, the held-out sample
for consistency checks) are stored as ``.npz`` and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from trigml.errors import ModelError
from trigml.schema.card import ModelCard

__all__ = [
    "CARD_FILE",
    "HOLDOUT_FILE",
    "Artifact",
    "load_artifact",
    "read_npz",
    "save_artifact",
    "sha256_file",
]

CARD_FILE = "card.json"
HOLDOUT_FILE = "holdout.npz"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A verified model artifact.

    Attributes
    ----------
    path : Path
        The artifact directory.
    card : ModelCard
    """

    path: Path
    card: ModelCard

    def file(self, fmt: str) -> Path:
        """Path of the model file of format ``fmt`` (``onnx``, ``xgboost-json`` …)."""
        try:
            return self.path / self.card.formats[fmt]
        except KeyError:
            have = ", ".join(self.card.formats) or "none"
            raise ModelError(
                f"model '{self.card.name}' at {self.path} has no '{fmt}' file "
                f"(formats: {have})"
            ) from None

    def holdout(self) -> dict[str, np.ndarray]:
        """The held-out sample saved at training time (features, labels, scores)."""
        path = self.path / HOLDOUT_FILE
        if not path.exists():
            raise ModelError(f"model '{self.card.name}' has no {HOLDOUT_FILE}")
        return read_npz(path)

    def scale(self, features: np.ndarray) -> np.ndarray:
        """Apply the card's per-feature standardisation, ``(x - offset) / scale``.

        Every backend calls this before its model, so that scaling lives in the card
        and the model files hold the network alone.
        """
        offset = np.array([f.offset for f in self.card.features], dtype=np.float32)
        scale = np.array([f.scale for f in self.card.features], dtype=np.float32)
        if not offset.any() and (scale == 1.0).all():
            return np.ascontiguousarray(features, dtype=np.float32)
        return np.asarray((features - offset) / scale, dtype=np.float32)

    def to_scores(self, raw: np.ndarray, scaled: np.ndarray) -> np.ndarray:
        """Turn a model's raw output into the scores working points cut on.

        Binary models give the signal probability, shape (n,); a two-column output
        keeps column 1. Multiclass models give probabilities, shape (n, k). Regression
        models give their targets. Anomaly models (autoencoders) output a
        reconstruction, and the score is its mean squared error against the scaled
        input.
        """
        out = np.asarray(raw, dtype=np.float32)
        task = self.card.task
        if task == "anomaly":
            recon = out.reshape(scaled.shape)
            return np.asarray(np.mean((recon - scaled) ** 2, axis=1), dtype=np.float32)
        if task == "binary" and out.ndim == 2:
            return out[:, -1] if out.shape[1] <= 2 else out[:, 0]
        if out.ndim == 2 and out.shape[1] == 1:
            return out[:, 0]
        return out

    @property
    def content_hash(self) -> str:
        """One sha256 over all file hashes, identifying the artifact's content."""
        joined = "".join(f"{k}:{v};" for k, v in sorted(self.card.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` file without ever unpickling objects."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_artifact(directory: Path, card: ModelCard) -> Artifact:
    """Hash every file of ``directory`` into ``card`` and write ``card.json``.

    Parameters
    ----------
    directory : Path
        Directory already holding the model files named in ``card.formats``.
    card : ModelCard
    """
    missing = [f for f in card.formats.values() if not (directory / f).is_file()]
    if missing:
        raise ModelError(f"cannot save model '{card.name}': missing files {missing}")
    files = {
        p.relative_to(directory).as_posix(): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != CARD_FILE
    }
    card = card.model_copy(update={"files": files})
    (directory / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n")
    return Artifact(directory, card)


def load_artifact(directory: str | Path) -> Artifact:
    """Read and verify an artifact directory.

    Raises
    ------
    ModelError
        The directory or card is missing or malformed, a recorded file is missing, or a
        file's sha256 differs from the card's.
    """
    path = Path(directory)
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise ModelError(
            f"{path}: not a model artifact (no {CARD_FILE})",
            hint="train one with 'trigml train CONFIG'",
        )
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_text()))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ModelError(f"{card_path}: invalid model card: {exc}") from None
    for name, expected in card.files.items():
        file = path / name
        if not file.is_file():
            raise ModelError(f"{path}: file '{name}' listed in the card is missing")
        actual = sha256_file(file)
        if actual != expected:
            raise ModelError(
                f"{path}: hash mismatch for '{name}' (card {expected[:12]}…, "
                f"file {actual[:12]}…); the file was changed after training",
                hint="retrain, or restore the original file",
            )
    for fmt, name in card.formats.items():
        if name not in card.files:
            raise ModelError(f"{path}: {fmt} file '{name}' has no hash in the card")
    return Artifact(path, card)
