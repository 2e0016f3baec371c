"""``cpu.xgboost``: xgboost JSON models run with ``Booster.inplace_predict``.

The booster is read once at load and set to one thread; each call hands the float32
matrix to ``inplace_predict`` directly, never building a DMatrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trigml.artifact import Artifact
from trigml.components import Backend
from trigml.errors import ModelError
from trigml_cpu._base import CpuScorer, require_formats
from trigml_cpu.params import ThreadParams

__all__ = ["XGBoostBackend", "load_booster"]


def load_booster(path: Any, threads: int = 1, backend: str = "cpu.xgboost") -> Any:
    """Read an xgboost model file into a Booster using ``threads`` threads.

    Raises
    ------
    ModelError
        xgboost cannot read the file; names the file and backend.
    """
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise ModelError(
            f"{path}: backend '{backend}' cannot read the xgboost model ({first})"
        ) from None
    booster.set_param({"nthread": threads})
    return booster


class _XGBoostScorer(CpuScorer):
    def __init__(self, artifact: Artifact, booster: Any, backend: str) -> None:
        super().__init__(artifact, backend)
        if booster.num_features() != self.n_features:
            raise ModelError(
                f"{artifact.file('xgboost-json')}: the booster reads "
                f"{booster.num_features()} features but model '{self.model}' lists "
                f"{self.n_features} in its card"
            )
        self._predict = booster.inplace_predict

    def _raw(self, x: np.ndarray) -> np.ndarray:
        return self._predict(x, validate_features=False)  # type: ignore[no-any-return]


class XGBoostBackend(Backend):
    """Runs ``xgboost-json`` files with xgboost's in-place prediction."""

    name = "cpu.xgboost"

    def __init__(self, params: ThreadParams | None = None) -> None:
        self.params = params or ThreadParams()

    def formats(self) -> Sequence[str]:
        return ["xgboost-json"]

    def load(self, artifact: Artifact) -> CpuScorer:
        path = require_formats(artifact, self.name, ["xgboost-json"])["xgboost-json"]
        booster = load_booster(path, self.params.threads, self.name)
        return _XGBoostScorer(artifact, booster, self.name)

    def describe(self) -> dict[str, Any]:
        import xgboost as xgb

        return {
            "backend": self.name,
            "xgboost": xgb.__version__,
            **self.params.model_dump(),
        }
