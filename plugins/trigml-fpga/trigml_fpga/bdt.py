"""BDTs as conifer firmware: xgboost JSON → conifer model → compiled emulation.

The xgboost Booster JSON is read directly rather than through conifer's xgboost
converter, to avoid two traps of that path with xgboost 3: a vector base score that
the converter turns into NaN for multiclass models, and cut values read back as
decimals (an event sitting exactly on a cut can then take the other branch). Cut
values are kept as the float32 numbers xgboost compares with, and the base score is
put in margin space from the objective.

The emulation is conifer's C++ ``conifer::BDT`` (the ``cpp`` backend, bit-identical to
the HLS C simulation). It reads the model from conifer's JSON at run time, so the
compiled library depends only on the fixed-point types and is shared by every model.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trigml.errors import ModelError
from trigml_fpga.emulation import FOREST_LOAD, FOREST_PREDICT, forest_source
from trigml_fpga.fixed import FixedType
from trigml_fpga.toolchain import (
    CompileJob,
    ap_include,
    compile_library,
    conifer_environment,
    conifer_include,
    json_include,
)

__all__ = [
    "Forest",
    "build_forest_library",
    "evaluate_margins",
    "feature_shifts",
    "forest_estimates",
    "read_xgboost_json",
    "write_forest_project",
]

log = logging.getLogger(__name__)

_PROBABILITY_OBJECTIVES = {"binary:logistic", "reg:logistic"}
_LOG_OBJECTIVES = {"count:poisson", "reg:gamma", "reg:tweedie"}
_SOFTMAX_OBJECTIVES = {"multi:softprob", "multi:softmax"}
_UNSUPPORTED = {
    "binary:hinge",
    "survival:cox",
    "survival:aft",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
}


@dataclass
class Tree:
    """One regression tree in conifer's layout (leaves have feature -2)."""

    feature: list[int]
    threshold: list[float]
    value: list[float]
    children_left: list[int]
    children_right: list[int]

    def depth(self) -> int:
        depth = [0] * len(self.feature)
        for i, (left, right) in enumerate(zip(self.children_left, self.children_right)):
            if left >= 0:
                depth[left] = depth[right] = depth[i] + 1
        return max(depth)


@dataclass
class Forest:
    """A boosted ensemble ready for conifer.

    Attributes
    ----------
    trees : list of list of Tree
        ``trees[iteration][output]``.
    base_margin : list of float
        Margin every event starts from, one per output.
    n_features : int
    objective : str
        xgboost objective name.
    link : str or None
        How margins become the model's output: ``sigmoid``, ``softmax``, ``exp`` or
        None (identity).
    shifts : ndarray of int
        Power-of-two shift of each feature: the firmware reads ``x / 2**shift``.
    """

    trees: list[list[Tree]]
    base_margin: list[float]
    n_features: int
    objective: str
    link: str | None
    shifts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def n_outputs(self) -> int:
        return len(self.base_margin)

    @property
    def max_depth(self) -> int:
        return max(t.depth() for trees in self.trees for t in trees)

    def shifted(self, shifts: np.ndarray) -> Forest:
        """This forest with every cut of feature i divided by ``2**shifts[i]``."""
        trees = [
            [
                Tree(
                    feature=t.feature,
                    threshold=[
                        math.ldexp(c, -int(shifts[f])) if f >= 0 else c
                        for f, c in zip(t.feature, t.threshold)
                    ],
                    value=t.value,
                    children_left=t.children_left,
                    children_right=t.children_right,
                )
                for t in per_output
            ]
            for per_output in self.trees
        ]
        return Forest(
            trees,
            self.base_margin,
            self.n_features,
            self.objective,
            self.link,
            np.asarray(shifts, dtype=int),
        )

    def ensemble_dict(self) -> dict[str, Any]:
        """conifer's ``ensembleDict``."""
        n_classes = 2 if self.n_outputs == 1 else self.n_outputs
        eye = np.eye(self.n_features, dtype=int)
        trees = []
        for per_output in self.trees:
            row = []
            for t in per_output:
                row.append(
                    {
                        "feature": t.feature,
                        "threshold": t.threshold,
                        "value": t.value,
                        "children_left": t.children_left,
                        "children_right": t.children_right,
                        "weight": [
                            eye[f].tolist() if f >= 0 else [0] * self.n_features
                            for f in t.feature
                        ],
                    }
                )
            trees.append(row)
        return {
            "max_depth": self.max_depth,
            "n_trees": len(self.trees),
            "n_classes": n_classes,
            "n_features": self.n_features,
            "trees": trees,
            "init_predict": list(self.base_margin),
            "norm": 1,
            "library": "xgboost",
            "splitting_convention": "<",
        }


def _numbers(text: Any) -> list[float]:
    if isinstance(text, int | float):
        return [float(text)]
    return [float(v) for v in str(text).strip("[] ").split(",") if v.strip()]


def _to_margin(values: list[float], objective: str) -> list[float]:
    if objective in _PROBABILITY_OBJECTIVES:
        return [math.log(v / (1.0 - v)) for v in values]
    if objective in _LOG_OBJECTIVES:
        return [math.log(v) for v in values]
    return values


def _link(objective: str) -> str | None:
    if objective in _PROBABILITY_OBJECTIVES:
        return "sigmoid"
    if objective in _SOFTMAX_OBJECTIVES:
        return "softmax"
    if objective in _LOG_OBJECTIVES:
        return "exp"
    return None


def _read_tree(doc: dict[str, Any], weight: float, where: str) -> Tree:
    size_leaf = int(doc.get("tree_param", {}).get("size_leaf_vector", "1") or 1)
    if size_leaf > 1:
        raise ModelError(
            f"{where}: vector-leaf trees (multi_strategy) are not supported"
        )
    if any(int(s) != 0 for s in doc.get("split_type", [])):
        raise ModelError(f"{where}: categorical splits are not supported by conifer")
    left = [int(v) for v in doc["left_children"]]
    right = [int(v) for v in doc["right_children"]]
    cond = np.asarray(doc["split_conditions"], dtype=np.float32).astype(np.float64)
    index = [int(v) for v in doc["split_indices"]]
    leaf = [lc < 0 for lc in left]
    return Tree(
        feature=[-2 if is_leaf else f for f, is_leaf in zip(index, leaf)],
        threshold=[-2.0 if is_leaf else float(c) for c, is_leaf in zip(cond, leaf)],
        value=[float(c) * weight if is_leaf else 0.0 for c, is_leaf in zip(cond, leaf)],
        children_left=[-1 if is_leaf else v for v, is_leaf in zip(left, leaf)],
        children_right=[-1 if is_leaf else v for v, is_leaf in zip(right, leaf)],
    )


def read_xgboost_json(path: Path) -> Forest:
    """Read an xgboost Booster saved with ``save_model("model.json")``.

    Raises
    ------
    ModelError
        The file is not a Booster JSON, or uses a feature conifer cannot emulate
        (vector leaves, categorical splits, ranking or survival objectives).
    """
    try:
        learner = json.loads(Path(path).read_text())["learner"]
        params = learner["learner_model_param"]
        objective = learner["objective"]["name"]
        booster = learner["gradient_booster"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: not an xgboost Booster JSON ({exc})") from None
    if objective in _UNSUPPORTED:
        raise ModelError(f"{path}: objective '{objective}' is not supported")
    if int(params.get("num_target", "1") or 1) > 1:
        raise ModelError(f"{path}: multi-target models are not supported")
    if booster["name"] == "dart":
        drop = [float(w) for w in booster.get("weight_drop", [])]
        model = booster["gbtree"]["model"]
    elif booster["name"] == "gbtree":
        drop = []
        model = booster["model"]
    else:
        raise ModelError(f"{path}: booster '{booster['name']}' is not a tree ensemble")

    n_groups = max(1, int(params.get("num_class", "0") or 0))
    base = _numbers(params.get("base_score", "0.5"))
    if len(base) == 1:
        base *= n_groups
    if len(base) != n_groups:
        raise ModelError(f"{path}: {len(base)} base scores for {n_groups} outputs")
    info = [int(g) for g in model["tree_info"]]
    per_group: list[list[Tree]] = [[] for _ in range(n_groups)]
    for i, (doc, group) in enumerate(zip(model["trees"], info)):
        weight = drop[i] if drop else 1.0
        per_group[group].append(_read_tree(doc, weight, f"{path}: tree {i}"))
    counts = {len(g) for g in per_group}
    if len(counts) != 1:
        raise ModelError(f"{path}: outputs have different numbers of trees {counts}")
    trees = [list(row) for row in zip(*per_group)]
    return Forest(
        trees=trees,
        base_margin=_to_margin(base, objective),
        n_features=int(params["num_feature"]),
        objective=objective,
        link=_link(objective),
        shifts=np.zeros(int(params["num_feature"]), dtype=int),
    )


def evaluate_margins(forest: Forest, x: np.ndarray) -> np.ndarray:
    """Float margins of the forest, vectorised over events: (n, n_outputs) float64.

    Used to check that the conversion reproduces the trained model before any
    fixed-point arithmetic; cuts compare float32 inputs like xgboost does.
    """
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    out = np.tile(np.asarray(forest.base_margin, dtype=np.float64), (len(x), 1))
    rows = np.arange(len(x))
    for per_output in forest.trees:
        for k, tree in enumerate(per_output):
            feature = np.asarray(tree.feature)
            threshold = np.asarray(tree.threshold)
            left = np.asarray(tree.children_left)
            right = np.asarray(tree.children_right)
            value = np.asarray(tree.value)
            node = np.zeros(len(x), dtype=np.int64)
            while True:
                inner = feature[node] >= 0
                if not inner.any():
                    break
                f = np.where(inner, feature[node], 0)
                go_left = x[rows, f] < threshold[node]
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
            out[:, k] += value[node]
    return out


def feature_shifts(forest: Forest, precision: FixedType) -> np.ndarray:
    """Per-feature power-of-two shifts so that each feature's cuts fill the range.

    A feature whose largest cut magnitude is c gets the shift s with
    ``c / 2**s`` just below ``2**(I-1)``; values beyond the range saturate, which
    keeps them on the same side of every cut. Shifts are limited to ±32.
    """
    top = np.zeros(forest.n_features)
    for per_output in forest.trees:
        for t in per_output:
            for f, c in zip(t.feature, t.threshold):
                if f >= 0:
                    top[f] = max(top[f], abs(c))
    head = precision.integer - (1 if precision.signed else 0)
    shifts = np.zeros(forest.n_features, dtype=int)
    used = top > 0
    shifts[used] = np.floor(np.log2(top[used])).astype(int) + 1 - head
    return np.clip(shifts, -32, 32)


def write_forest_project(
    forest: Forest,
    folder: Path,
    project: str,
    *,
    input_t: FixedType,
    score_t: FixedType,
    part: str,
    clock_period_ns: float,
    unroll: bool,
) -> tuple[Path, Any]:
    """Write conifer's Vitis HLS project of the forest.

    Returns
    -------
    model_json : Path
        conifer's JSON of the model (read by the C++ emulation).
    model : conifer.backends.xilinxhls.XilinxHLSModel
    """
    import conifer

    config = {
        "backend": "xilinxhls",
        "output_dir": str(folder),
        "project_name": project,
        "input_precision": input_t.cpp(),
        "threshold_precision": input_t.cpp(),
        "score_precision": score_t.cpp(),
        "xilinx_part": part,
        "clock_period": clock_period_ns,
        "unroll": unroll,
    }
    with conifer_environment():
        model = conifer.model.make_model(forest.ensemble_dict(), config)
        model.write()
    return folder / f"{project}.json", model


def forest_estimates(
    model: Any, forest: Forest, clock_period_ns: float
) -> dict[str, Any]:
    """conifer's latency and LUT/FF estimates, with the size of the ensemble."""
    from conifer.utils.performance import performance_estimates

    logging.getLogger("conifer.utils.performance.prediction").setLevel(logging.ERROR)
    try:
        raw = performance_estimates(model)
    except Exception as exc:  # conifer's estimator models can fail on odd shapes
        log.warning("conifer's performance estimate failed: %s", exc)
        raw = {}
    n_nodes = sum(len(t.feature) for row in forest.trees for t in row)
    n_leaves = sum(sum(f < 0 for f in t.feature) for row in forest.trees for t in row)
    latency = raw.get("latency")
    return {
        "kind": "conifer's experimental estimate, not from synthesis",
        "latency_cycles_estimate": latency,
        "latency_ns_estimate": (
            round(latency * clock_period_ns, 2) if latency is not None else None
        ),
        "lut_estimate": raw.get("lut"),
        "ff_estimate": raw.get("ff"),
        "clock_period_ns": clock_period_ns,
        "n_trees": len(forest.trees),
        "n_outputs": forest.n_outputs,
        "max_depth": forest.max_depth,
        "n_nodes": int(n_nodes),
        "n_leaves": int(n_leaves),
        "dsp_estimate": 0,
    }


def build_forest_library(
    folder: Path, input_t: FixedType, score_t: FixedType
) -> dict[str, Any]:
    """Compile conifer's C++ BDT for one set of types into ``folder``.

    Two translation units compile in parallel: the JSON reader (at -O1, it runs
    once per model) and the prediction loop (at -O3).
    """
    (folder / "forest.h").write_text(
        forest_source(input_t.cpp(), input_t.cpp(), score_t.cpp())
    )
    (folder / "forest_load.cpp").write_text(FOREST_LOAD)
    (folder / "forest_predict.cpp").write_text(FOREST_PREDICT)
    seconds = compile_library(
        [
            CompileJob(folder / "forest_predict.cpp", "-O3"),
            CompileJob(folder / "forest_load.cpp", "-O1"),
        ],
        folder / "forest.so",
        includes=[folder, ap_include(), json_include(), conifer_include()],
        cwd=folder,
        standard="c++14",
    )
    return {
        "input_t": input_t.cpp(),
        "score_t": score_t.cpp(),
        "compile_seconds": round(seconds, 2),
    }
