"""``cpu.auto``: send each batch to the runtime that is fastest at its size.

No runtime wins everywhere: onnxruntime and the compiled kernel have little overhead
per call, xgboost's in-place prediction is strong on large batches, torch eager can
win on wide networks. At load, ``cpu.auto`` loads every runtime able to read the
artifact, leaves out any whose scores disagree with the artifact's held-out float
scores, times the rest side by side at a few batch sizes (1, 64, 10000 by default) on
held-out or random rows, and caches the choice per artifact content, machine and batch
size in ``cpu_auto.json`` of the trigml cache folder. Each ``predict`` then goes to the
choice for the nearest timed batch size (on a log scale).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from trigml.artifact import Artifact
from trigml.components import Backend, Scorer
from trigml.errors import ModelError
from trigml_cpu._base import READERS, CpuScorer
from trigml_cpu.cache import cache_dir, read_json, update_json
from trigml_cpu.params import AUTO_CANDIDATES, AutoParams

__all__ = ["CACHE_FILE", "AutoBackend", "AutoScorer", "calibration_rows"]

log = logging.getLogger(__name__)

#: File of the trigml cache folder holding the choices of ``cpu.auto``.
CACHE_FILE = "cpu_auto.json"
#: Rows compared between runtimes before timing them.
_AGREEMENT_ROWS = 2000


def _make_backend(name: str) -> Backend:
    from trigml_cpu.compiled import CompiledBackend
    from trigml_cpu.lut_backend import LutBackend
    from trigml_cpu.onnx_backend import OnnxRuntimeBackend
    from trigml_cpu.torch_backend import TorchBackend
    from trigml_cpu.xgboost_backend import XGBoostBackend

    makers: dict[str, Callable[[], Backend]] = {
        "cpu.compiled": CompiledBackend,
        "cpu.lut": LutBackend,
        "cpu.onnxruntime": OnnxRuntimeBackend,
        "cpu.torch": TorchBackend,
        "cpu.xgboost": XGBoostBackend,
    }
    return makers[name]()


class AutoScorer(Scorer):
    """Dispatches each batch by its size to one of several scorers.

    Attributes
    ----------
    choice : dict of int to str
        Runtime chosen for each calibrated batch size.
    events_per_s : dict of str to dict of int to float
        Measured throughput per runtime and batch size (empty when read from the
        cache or when only one runtime could load the model).
    from_cache : bool
    """

    def __init__(
        self,
        scorers: dict[str, CpuScorer],
        choice: dict[int, str],
        events_per_s: dict[str, dict[int, float]],
        *,
        from_cache: bool,
    ) -> None:
        sizes = sorted(choice)
        self.choice = {s: choice[s] for s in sizes}
        self.events_per_s = events_per_s
        self.from_cache = from_cache
        self.scorers = scorers
        # A batch goes to the calibrated size nearest on a log scale.
        self._bounds = [math.sqrt(a * b) for a, b in itertools.pairwise(sizes)]
        self._targets = [scorers[choice[s]] for s in sizes]

    def predict(self, features: np.ndarray) -> np.ndarray:
        n = len(features)
        for bound, scorer in zip(self._bounds, self._targets):
            if n < bound:
                return scorer.predict(features)
        return self._targets[-1].predict(features)

    def runtime_for(self, n: int) -> str:
        """Name of the runtime a batch of ``n`` rows goes to."""
        for bound, size in zip(self._bounds, self.choice):
            if n < bound:
                return self.choice[size]
        return self.choice[max(self.choice)]


class AutoBackend(Backend):
    """Picks the fastest exact CPU runtime per batch size, measured at load."""

    name = "cpu.auto"

    def __init__(self, params: AutoParams | None = None) -> None:
        self.params = params or AutoParams()

    def formats(self) -> Sequence[str]:
        names = self.params.candidates or AUTO_CANDIDATES
        return sorted({f for n in names for f in READERS[n]} | {"lut"})

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, **self.params.model_dump()}

    def load(self, artifact: Artifact) -> Scorer:
        scorers = self._load_runtimes(artifact)
        sizes = sorted(set(self.params.batch_sizes))
        if len(scorers) == 1:
            (only,) = scorers
            return AutoScorer(scorers, dict.fromkeys(sizes, only), {}, from_cache=False)

        key = _cache_key(artifact, sorted(scorers), sizes)
        path = cache_dir() / CACHE_FILE
        cached = None if self.params.recalibrate else read_json(path).get(key)
        choice = _valid_choice(cached, scorers, sizes)
        if choice is not None:
            log.info(
                "cpu.auto: model '%s' uses cached choice %s", artifact.card.name, choice
            )
            return AutoScorer(scorers, choice, {}, from_cache=True)

        rows = calibration_rows(artifact, max(sizes))
        scorers = _agreeing(artifact, scorers, rows, self.params.agreement)
        speed = _measure(scorers, rows, sizes, self.params.seconds_per_point)
        choice = {
            s: max(scorers, key=lambda n: (speed[n][s], -AUTO_CANDIDATES.index(n)))
            for s in sizes
        }
        update_json(
            path,
            key,
            {
                "model": artifact.card.name,
                "choice": {str(s): n for s, n in choice.items()},
                "events_per_s": {
                    n: {str(s): v for s, v in d.items()} for n, d in speed.items()
                },
                "measured": dt.datetime.now(dt.timezone.utc).isoformat(
                    timespec="seconds"
                ),
            },
        )
        log.info("cpu.auto: model '%s' calibrated: %s", artifact.card.name, choice)
        return AutoScorer(scorers, choice, speed, from_cache=False)

    def _load_runtimes(self, artifact: Artifact) -> dict[str, CpuScorer]:
        have = set(artifact.card.formats)
        names = [
            n
            for n in (self.params.candidates or AUTO_CANDIDATES)
            if all(f in have for f in READERS[n])
        ]
        if not names and "lut" in have:
            names = ["cpu.lut"]
        if not names:
            listed = ", ".join(sorted(have)) or "none"
            raise ModelError(
                f"model '{artifact.card.name}' at {artifact.path} has no format that "
                f"a cpu.auto runtime reads (it has: {listed}; cpu.auto reads "
                f"{', '.join(self.formats())})",
                hint="use the backend made for this format, or re-export the model",
            )
        scorers: dict[str, CpuScorer] = {}
        reasons = []
        for name in names:
            try:
                scorer = _make_backend(name).load(artifact)
            except ModelError as exc:
                log.info(
                    "cpu.auto: %s cannot run model '%s': %s",
                    name,
                    artifact.card.name,
                    exc.message,
                )
                reasons.append(f"{name}: {exc.message}")
                continue
            assert isinstance(scorer, CpuScorer)
            scorer.label = f"cpu.auto ({name})"
            scorers[name] = scorer
        if not scorers:
            raise ModelError(
                f"no CPU runtime could load model '{artifact.card.name}':\n  "
                + "\n  ".join(reasons)
            )
        return scorers


def _cache_key(artifact: Artifact, names: list[str], sizes: list[int]) -> str:
    return "|".join(
        [artifact.content_hash, _machine(), ",".join(names), ",".join(map(str, sizes))]
    )


def _machine() -> str:
    """A short fingerprint of the CPU, so that a shared home never mixes machines."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    text = f"{platform.machine()}:{model}:{os.cpu_count()}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _valid_choice(
    cached: Any, scorers: dict[str, CpuScorer], sizes: list[int]
) -> dict[int, str] | None:
    if not isinstance(cached, dict) or not isinstance(cached.get("choice"), dict):
        return None
    try:
        choice = {int(s): str(n) for s, n in cached["choice"].items()}
    except (TypeError, ValueError):
        return None
    if sorted(choice) != sizes or not set(choice.values()) <= set(scorers):
        return None
    return choice


def calibration_rows(artifact: Artifact, n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows to time with: held-out rows repeated as needed, else random rows.

    Random rows follow the card's scaling: ``offset + scale * N(0, 1)`` per feature.
    """
    n_features = len(artifact.card.features)
    try:
        rows = np.asarray(artifact.holdout()["features"], dtype=np.float32)
    except (ModelError, KeyError):
        rows = np.zeros((0, n_features), np.float32)
    if rows.ndim == 2 and rows.shape[1] == n_features:
        rows = rows[np.isfinite(rows).all(axis=1)]
    else:
        rows = np.zeros((0, n_features), np.float32)
    if len(rows) == 0:
        rng = np.random.default_rng(seed)
        offset = np.array([f.offset for f in artifact.card.features], np.float32)
        scale = np.array([f.scale for f in artifact.card.features], np.float32)
        rows = (offset + scale * rng.standard_normal((n, n_features))).astype(
            np.float32
        )
    reps = -(-n // len(rows))
    return np.ascontiguousarray(np.tile(rows, (reps, 1))[:n])


def _agreeing(
    artifact: Artifact,
    scorers: dict[str, CpuScorer],
    rows: np.ndarray,
    tolerance: float,
) -> dict[str, CpuScorer]:
    """The scorers whose scores match the held-out float scores (or each other)."""
    x, reference = _agreement_sample(artifact, rows)
    outputs = {
        name: np.asarray(s.predict(x), np.float64) for name, s in scorers.items()
    }
    first = next(iter(outputs.values()))
    if reference is None or reference.shape != first.shape:
        reference = first

    def deviation(out: np.ndarray) -> float:
        if out.shape != reference.shape:
            return math.inf
        scale = np.maximum(1.0, np.abs(reference))
        return float(np.max(np.abs(out - reference) / scale))

    kept = {n: s for n, s in scorers.items() if deviation(outputs[n]) <= tolerance}
    for name in scorers.keys() - kept.keys():
        log.warning(
            "cpu.auto: leaving %s out for model '%s': its scores differ from the "
            "float model's by %.3g (tolerance %.3g)",
            name,
            artifact.card.name,
            deviation(outputs[name]),
            tolerance,
        )
    return kept or {next(iter(scorers)): next(iter(scorers.values()))}


def _agreement_sample(
    artifact: Artifact, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Held-out rows with their float scores, or calibration rows and None."""
    try:
        hold = artifact.holdout()
    except ModelError:
        return rows[:_AGREEMENT_ROWS], None
    features, scores = hold.get("features"), hold.get("scores")
    n_features = len(artifact.card.features)
    if (
        features is None
        or scores is None
        or features.ndim != 2
        or features.shape[1] != n_features
        or len(scores) != len(features)
    ):
        return rows[:_AGREEMENT_ROWS], None
    finite = np.isfinite(features).all(axis=1)
    x = np.ascontiguousarray(features[finite][:_AGREEMENT_ROWS], dtype=np.float32)
    if len(x) == 0:
        return rows[:_AGREEMENT_ROWS], None
    return x, np.asarray(scores[finite][:_AGREEMENT_ROWS], np.float64)


def _measure(
    scorers: dict[str, CpuScorer],
    rows: np.ndarray,
    sizes: list[int],
    seconds: float,
) -> dict[str, dict[int, float]]:
    """Events per second of each scorer at each size, runtimes interleaved."""
    best = {name: dict.fromkeys(sizes, math.inf) for name in scorers}
    for size in sizes:
        x = np.ascontiguousarray(rows[:size])
        for scorer in scorers.values():
            scorer.predict(x)  # warm-up: first-call allocations, lazy init
        for _ in range(3):
            for name, scorer in scorers.items():
                best[name][size] = min(
                    best[name][size], _time_per_call(scorer, x, seconds / 3)
                )
    return {n: {s: s / t for s, t in per.items()} for n, per in best.items()}


def _time_per_call(scorer: Scorer, x: np.ndarray, seconds: float) -> float:
    calls = 0
    start = time.perf_counter()
    while True:
        scorer.predict(x)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / calls
