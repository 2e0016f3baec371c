"""``cpu.compiled``: boosted trees evaluated by a small C kernel compiled on first use.

The xgboost JSON model is laid out as perfect binary trees (a node's children sit at
2k+1 and 2k+2; leaves reached early are repeated below +inf thresholds), which the
kernel in ``kernels/cpu_kernels.c`` walks without branches, a block of events at a time.
The kernel is compiled once per machine with the system C compiler (see
:mod:`trigml_cpu.native`); without a compiler the backend reports a clear error and
``cpu.auto`` uses the other runtimes.
Scores equal xgboost's to float32 rounding of the leaf sums.
"""

from __future__ import annotations

import ctypes
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trigml.artifact import Artifact
from trigml.components import Backend
from trigml.errors import ModelError
from trigml.registry import NoParams
from trigml_cpu._base import CpuScorer, require_formats
from trigml_cpu.native import FLAGS, TreeEnsembleStruct, kernel_library

__all__ = [
    "MAX_DEPTH",
    "CompiledBackend",
    "PerfectForest",
    "forest_from_xgboost_json",
]

log = logging.getLogger(__name__)

#: Deepest tree the dense layout accepts (2**12 leaves per tree).
MAX_DEPTH = 12
#: Classes the kernel sums at most (its accumulator size).
MAX_GROUPS = 64
#: Rows copied into preallocated buffers instead of passing their own pointers.
_SMALL_BATCH = 256

# Link functions of the kernel: 0 identity, 1 logistic, 2 softmax.
_LINK = {
    "binary:logistic": 1,
    "reg:logistic": 1,
    "multi:softprob": 2,
    "reg:squarederror": 0,
    "reg:pseudohubererror": 0,
    "reg:absoluteerror": 0,
    "binary:logitraw": 0,
}

# Objectives whose base_score xgboost stores as a probability (margin = logit).
_PROBABILITY_BASE = {"binary:logistic", "reg:logistic"}

_NODE = np.dtype([("threshold", "<f4"), ("feature", "<i4")])


@dataclass
class PerfectForest:
    """A tree ensemble padded to perfect binary trees of one depth.

    Attributes
    ----------
    nodes : ndarray, structured (threshold float32, feature int32)
        Shape (n_trees, 2**depth - 1); the walk goes right when x >= threshold.
    leaves : ndarray, float32, shape (n_trees, 2**depth)
    group : ndarray, int32, shape (n_trees,)
        Output (class) each tree adds to.
    base : ndarray, float32, shape (n_groups,)
        Base margin of each output.
    depth : int
    link : int
        0 identity, 1 logistic, 2 softmax.
    n_features : int
    """

    nodes: np.ndarray
    leaves: np.ndarray
    group: np.ndarray
    base: np.ndarray
    depth: int
    link: int
    n_features: int

    @property
    def n_groups(self) -> int:
        return len(self.base)


def _floats(text: str | float) -> list[float]:
    """Parse xgboost's number or bracketed vector (``"[5E-1]"``, ``"[1,2]"``)."""
    if isinstance(text, int | float):
        return [float(text)]
    return [float(v) for v in str(text).strip("[]").split(",") if v.strip()]


def forest_from_xgboost_json(doc: dict[str, Any], where: str) -> PerfectForest:
    """Lay out an xgboost JSON model (``Booster.save_model`` output) as a forest.

    Parameters
    ----------
    doc : dict
        The parsed model file.
    where : str
        File name for messages.

    Raises
    ------
    ModelError
        A booster or objective the kernel does not evaluate (dart, linear,
        categorical splits, multi-target, trees deeper than :data:`MAX_DEPTH`).
    """
    try:
        learner = doc["learner"]
        booster = learner["gradient_booster"]
        objective = learner["objective"]["name"]
        model_param = learner["learner_model_param"]
    except (KeyError, TypeError) as exc:
        raise ModelError(
            f"{where}: not an xgboost JSON model (missing {exc})"
        ) from None
    if booster.get("name") != "gbtree":
        raise _unsupported(where, f"booster '{booster.get('name')}'")
    if objective not in _LINK:
        raise _unsupported(where, f"objective '{objective}'")
    if int(model_param.get("num_target", 1)) > 1:
        raise _unsupported(where, "several regression targets")

    n_groups = max(1, int(model_param.get("num_class", 0)))
    if n_groups > MAX_GROUPS:
        raise _unsupported(where, f"{n_groups} classes (at most {MAX_GROUPS})")
    base = np.array(_floats(model_param["base_score"]), dtype=np.float64)
    if len(base) == 1:
        base = np.repeat(base, n_groups)
    if objective in _PROBABILITY_BASE:
        base = np.log(base / (1.0 - base))
    trees = booster["model"]["trees"]
    group = np.asarray(booster["model"].get("tree_info", [0] * len(trees)), np.int32)
    nodes, leaves, depth = _perfect_layout(trees, where)
    return PerfectForest(
        nodes=nodes,
        leaves=leaves,
        group=group,
        base=base.astype(np.float32),
        depth=depth,
        link=_LINK[objective],
        n_features=int(model_param["num_feature"]),
    )


def _unsupported(where: str, what: str) -> ModelError:
    return ModelError(
        f"{where}: backend 'cpu.compiled' does not evaluate {what}",
        hint="use cpu.xgboost or cpu.onnxruntime for this model",
    )


def _perfect_layout(
    trees: list[dict[str, Any]], where: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pad every tree to the ensemble's depth, all trees at once, level by level."""
    left_parts, right_parts, feature_parts, value_parts, roots = [], [], [], [], []
    offset = 0
    for tree in trees:
        if any(int(t) != 0 for t in tree.get("split_type", [])):
            raise _unsupported(where, "categorical splits")
        left = np.asarray(tree["left_children"], np.int64)
        roots.append(offset)
        left_parts.append(np.where(left < 0, -1, left + offset))
        right = np.asarray(tree["right_children"], np.int64)
        right_parts.append(np.where(right < 0, -1, right + offset))
        feature_parts.append(np.asarray(tree["split_indices"], np.int32))
        value_parts.append(np.asarray(tree["split_conditions"], np.float32))
        offset += len(left)
    left = np.concatenate(left_parts) if trees else np.zeros(0, np.int64)
    right = np.concatenate(right_parts) if trees else np.zeros(0, np.int64)
    feature = np.concatenate(feature_parts) if trees else np.zeros(0, np.int32)
    value = np.concatenate(value_parts) if trees else np.zeros(0, np.float32)

    current = np.asarray(roots, np.int64)[:, None]
    levels_n, levels_t = [], []
    depth = 0
    while len(current) and (left[current] >= 0).any():
        if depth == MAX_DEPTH:
            raise _unsupported(where, f"trees deeper than {MAX_DEPTH} levels")
        leaf = left[current] < 0
        levels_t.append(np.where(leaf, np.float32(np.inf), value[current]))
        levels_n.append(np.where(leaf, 0, feature[current]))
        below = np.stack(
            [
                np.where(leaf, current, left[current]),
                np.where(leaf, current, right[current]),
            ],
            axis=-1,
        )
        current = below.reshape(len(current), -1)
        depth += 1
    if depth == 0:  # every tree is a single leaf: give them one always-left split
        levels_t.append(np.full((len(roots), 1), np.inf, np.float32))
        levels_n.append(np.zeros((len(roots), 1), np.int32))
        current = np.repeat(current, 2, axis=1)
        depth = 1

    nodes = np.empty((len(roots), 2**depth - 1), dtype=_NODE)
    nodes["threshold"] = np.concatenate(levels_t, axis=1)
    nodes["feature"] = np.concatenate(levels_n, axis=1)
    leaves = np.ascontiguousarray(value[current], dtype=np.float32)
    return nodes, leaves, depth


# -- the scorer ------------------------------------------------------------------


class _CompiledScorer(CpuScorer):
    checks_nan = True

    def __init__(self, artifact: Artifact, forest: PerfectForest, backend: str) -> None:
        super().__init__(artifact, backend)
        if forest.n_features != self.n_features:
            raise ModelError(
                f"{artifact.file('xgboost-json')}: the booster reads "
                f"{forest.n_features} features but model '{self.model}' lists "
                f"{self.n_features} in its card"
            )
        self._forest = forest  # keeps the arrays the structure points to alive
        self._fn = kernel_library().trigml_trees_predict
        self._ensemble = TreeEnsembleStruct(
            forest.nodes.ctypes.data,
            forest.leaves.ctypes.data,
            forest.group.ctypes.data,
            forest.base.ctypes.data,
            len(forest.group),
            forest.depth,
            forest.n_groups,
            forest.link,
            forest.n_features,
        )
        self._model_ptr = ctypes.addressof(self._ensemble)
        self._width = () if forest.n_groups == 1 else (forest.n_groups,)
        self._x_buf = np.empty((_SMALL_BATCH, forest.n_features), np.float32)
        self._out_buf = np.empty((_SMALL_BATCH, *self._width), np.float32)
        self._x_ptr = self._x_buf.ctypes.data
        self._out_ptr = self._out_buf.ctypes.data
        self._lock = threading.Lock()

    def _raw(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        if n <= _SMALL_BATCH:
            with self._lock:
                self._x_buf[:n] = x
                nans = self._fn(self._model_ptr, self._x_ptr, n, self._out_ptr)
                out = self._out_buf[:n].copy()
        else:
            out = np.empty((n, *self._width), np.float32)
            nans = self._fn(self._model_ptr, x.ctypes.data, n, out.ctypes.data)
        if nans:
            self.refuse_nan(x)
        return out


class CompiledBackend(Backend):
    """Runs ``xgboost-json`` tree ensembles with the compiled C kernel."""

    name = "cpu.compiled"

    def __init__(self, params: NoParams | None = None) -> None:
        self.params = params

    def formats(self) -> Sequence[str]:
        return ["xgboost-json"]

    def load(self, artifact: Artifact) -> CpuScorer:
        path = require_formats(artifact, self.name, ["xgboost-json"])["xgboost-json"]
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{path}: backend '{self.name}' cannot read the xgboost JSON ({exc})"
            ) from None
        forest = forest_from_xgboost_json(doc, str(path))
        return _CompiledScorer(artifact, forest, self.name)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "compiler_flags": " ".join(FLAGS)}
