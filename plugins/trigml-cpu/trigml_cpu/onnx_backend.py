"""``cpu.onnxruntime``: ONNX files run by onnxruntime, one session per loaded model.

The session is created once at load with one intra-op and one inter-op thread and
sequential execution, so that many scorers can run side by side in one process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from trigml.artifact import Artifact
from trigml.components import Backend
from trigml.errors import ModelError
from trigml_cpu._base import CpuScorer, require_formats
from trigml_cpu.params import ThreadParams

__all__ = ["OnnxRuntimeBackend", "onnx_session"]

log = logging.getLogger(__name__)

#: Output names preferred when a graph has several float outputs.
_PREFERRED_OUTPUTS = ("probabilities", "scores", "output", "variable")


def onnx_session(path: Any, threads: int = 1, backend: str = "cpu.onnxruntime") -> Any:
    """An onnxruntime session for ``path`` on the CPU with ``threads`` threads.

    Raises
    ------
    ModelError
        The file is not a model onnxruntime can load; names the file and backend.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelError(
            f"{path}: backend '{backend}' cannot load the ONNX file "
            f"({type(exc).__name__}: {first[:300]})",
            hint="re-export the model, or check that the file was copied completely",
        ) from None


class _OnnxScorer(CpuScorer):
    def __init__(self, artifact: Artifact, session: Any, backend: str) -> None:
        super().__init__(artifact, backend)
        path = artifact.file("onnx")
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(
                f"{path}: backend '{backend}' needs a graph with one input, found "
                f"{[i.name for i in inputs]}"
            )
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if isinstance(width, int) and width != self.n_features:
            raise ModelError(
                f"{path}: the ONNX graph reads {width} features but model "
                f"'{self.model}' lists {self.n_features} in its card"
            )
        self._input = inputs[0].name
        self._outputs = [_pick_output(session, path)]
        self._run = session.run

    def _raw(self, x: np.ndarray) -> np.ndarray:
        return self._run(self._outputs, {self._input: x})[0]  # type: ignore[no-any-return]


def _pick_output(session: Any, path: Any) -> str:
    outputs = [o for o in session.get_outputs() if o.type == "tensor(float)"]
    if not outputs:
        raise ModelError(f"{path}: the ONNX graph has no float output")
    for name in _PREFERRED_OUTPUTS:
        for out in outputs:
            if out.name == name:
                return str(out.name)
    return str(outputs[0].name)


class OnnxRuntimeBackend(Backend):
    """Runs ``onnx`` files with onnxruntime on the CPU."""

    name = "cpu.onnxruntime"

    def __init__(self, params: ThreadParams | None = None) -> None:
        self.params = params or ThreadParams()

    def formats(self) -> Sequence[str]:
        return ["onnx"]

    def load(self, artifact: Artifact) -> CpuScorer:
        path = require_formats(artifact, self.name, ["onnx"])["onnx"]
        session = onnx_session(path, self.params.threads, self.name)
        return _OnnxScorer(artifact, session, self.name)

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {
            "backend": self.name,
            "onnxruntime": ort.__version__,
            **self.params.model_dump(),
        }
