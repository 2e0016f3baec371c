"""Hook implementations of trigml-xgboost: the ``xgboost`` model family."""

from __future__ import annotations

from typing import Any

from trigml.hookspec import hookimpl
from trigml_xgboost.params import XGBoostParams

__all__ = ["trigml_register_model_families"]


def _make_family(params: XGBoostParams) -> Any:
    from trigml_xgboost.family import XGBoostFamily

    return XGBoostFamily(params)


@hookimpl
def trigml_register_model_families(register: Any) -> None:
    """Register the ``xgboost`` family (boosted trees, pruning, flat, bonsai)."""
    register(
        "xgboost",
        _make_family,
        params=XGBoostParams,
        description="boosted decision trees (xgboost) with feature pruning, "
        "flat-efficiency training and bonsai lookup tables; JSON + ONNX",
    )
