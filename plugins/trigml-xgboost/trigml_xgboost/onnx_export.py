"""ONNX export of a booster, checked against the native model before it is kept.

onnxmltools writes the trees as an ``ai.onnx.ml`` tree ensemble (opset 15, the newest it
supports). The integer class-label output is removed so that the graph has one output:
the class probabilities (shape (n, k), k = 2 for binary) or the regression value
(shape (n, 1)). The file is only accepted when onnxruntime reproduces the native
scores on validation rows.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from trigml.errors import ModelError

__all__ = [
    "ONNX_INPUT",
    "ONNX_OPSET",
    "ONNX_TOLERANCE",
    "booster_to_onnx",
    "verify_onnx",
]

log = logging.getLogger(__name__)

#: Name of the graph input (the shared convention of trigml ONNX files).
ONNX_INPUT = "features"
#: Default opset of the ``ai.onnx`` domain used by the converter.
ONNX_OPSET = 15
#: Largest accepted difference between ONNX and native scores, relative to
#: max(1, |score|) so that regression targets in GeV are judged fairly.
ONNX_TOLERANCE = 1e-5


def booster_to_onnx(booster: Any, n_features: int, name: str = "trigml-xgboost") -> Any:
    """Convert a trained booster into an ONNX model with a single float output.

    Parameters
    ----------
    booster : xgboost.Booster
        Trained without feature names.
    n_features : int
    name : str
        Graph name.

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    ModelError
        The converter refuses the booster (an objective it does not know).
    """
    import onnx
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    try:
        model = convert_xgboost(
            booster,
            name=name,
            initial_types=[(ONNX_INPUT, FloatTensorType([None, n_features]))],
            target_opset=ONNX_OPSET,
        )
    except Exception as exc:  # onnxmltools raises RuntimeError, KeyError, ...
        raise ModelError(
            f"ONNX conversion of the booster failed ({type(exc).__name__}: {exc})",
            hint="the default objectives (objective: auto) convert; others may not",
        ) from None

    graph = model.graph
    is_float = onnx.TensorProto.FLOAT
    keep = [o for o in graph.output if o.type.tensor_type.elem_type == is_float]
    if len(keep) != 1:
        names = [o.name for o in graph.output]
        raise ModelError(f"ONNX conversion gave outputs {names}; expected one float")
    del graph.output[:]
    graph.output.extend(keep)
    onnx.checker.check_model(model)
    return model


def verify_onnx(
    model_bytes: bytes, reference: np.ndarray, features: np.ndarray
) -> dict[str, float]:
    """Run the ONNX model with onnxruntime and compare with the native scores.

    Parameters
    ----------
    model_bytes : bytes
        Serialized ONNX model.
    reference : ndarray, shape (n,) or (n, k)
        Native scores of ``features``.
    features : ndarray, float32, shape (n, n_features)

    Returns
    -------
    dict
        ``max_abs_diff``, ``max_rel_diff`` (relative to max(1, |score|)), ``rows``
        and ``tolerance``.

    Raises
    ------
    ModelError
        The ONNX scores differ from the native ones by more than the tolerance.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        model_bytes, options, providers=["CPUExecutionProvider"]
    )
    x = np.ascontiguousarray(features, dtype=np.float32)
    (out,) = session.run(None, {ONNX_INPUT: x})
    ref = np.asarray(reference, dtype=np.float64)
    got = np.asarray(out, dtype=np.float64)
    if ref.ndim == 1:
        got = got[:, -1] if got.shape[1] == 2 else got[:, 0]
        if got.shape != ref.shape:  # pragma: no cover - converter layout changed
            raise ModelError(f"ONNX output shape {out.shape} does not fit {ref.shape}")
    diff = np.abs(got - ref)
    rel = diff / np.maximum(1.0, np.abs(ref))
    report = {
        "rows": len(x),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "max_rel_diff": float(rel.max()) if rel.size else 0.0,
        "tolerance": ONNX_TOLERANCE,
    }
    if report["max_rel_diff"] > ONNX_TOLERANCE:
        worst = int(np.unravel_index(np.argmax(rel), rel.shape)[0])
        native = np.ravel(ref[worst])[:3].tolist()
        onnx_value = np.ravel(got[worst])[:3].tolist()
        raise ModelError(
            f"the ONNX export disagrees with the native xgboost model: max difference "
            f"{report['max_abs_diff']:.3g} (row {worst}: native {native}, onnx "
            f"{onnx_value}) exceeds {ONNX_TOLERANCE:g}",
            hint="report this with the model.json; the xgboost-json file is correct",
        )
    log.info(
        "ONNX export agrees with xgboost on %d rows (max |diff| %.2g)",
        len(x),
        report["max_abs_diff"],
    )
    return report
