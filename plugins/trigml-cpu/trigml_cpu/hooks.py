"""Hook implementations of trigml-cpu: the CPU inference backends."""

from __future__ import annotations

from typing import Any

from trigml.hookspec import hookimpl
from trigml.registry import NoParams
from trigml_cpu.params import AutoParams, LutParams, ThreadParams

__all__ = ["trigml_register_backends"]


def _onnxruntime(params: ThreadParams) -> Any:
    from trigml_cpu.onnx_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(params)


def _xgboost(params: ThreadParams) -> Any:
    from trigml_cpu.xgboost_backend import XGBoostBackend

    return XGBoostBackend(params)


def _compiled(params: NoParams) -> Any:
    from trigml_cpu.compiled import CompiledBackend

    return CompiledBackend(params)


def _lut(params: LutParams) -> Any:
    from trigml_cpu.lut_backend import LutBackend

    return LutBackend(params)


def _torch(params: ThreadParams) -> Any:
    from trigml_cpu.torch_backend import TorchBackend

    return TorchBackend(params)


def _auto(params: AutoParams) -> Any:
    from trigml_cpu.auto import AutoBackend

    return AutoBackend(params)


@hookimpl
def trigml_register_backends(register: Any) -> None:
    """Register the CPU backends: auto, onnxruntime, xgboost, compiled, lut, torch."""
    register(
        "cpu.auto",
        _auto,
        params=AutoParams,
        description="fastest exact CPU runtime per batch size, timed at load and "
        "cached",
    )
    register(
        "cpu.onnxruntime",
        _onnxruntime,
        params=ThreadParams,
        description="ONNX models with onnxruntime, one thread per session",
    )
    register(
        "cpu.xgboost",
        _xgboost,
        params=ThreadParams,
        description="xgboost JSON models with Booster.inplace_predict",
    )
    register(
        "cpu.compiled",
        _compiled,
        params=NoParams,
        description="xgboost tree ensembles with a C kernel compiled on first use",
    )
    register(
        "cpu.lut",
        _lut,
        params=LutParams,
        description="bonsai lookup tables (lut.npz): one table lookup per candidate",
    )
    register(
        "cpu.torch",
        _torch,
        params=ThreadParams,
        description="torch eager execution of trigml-torch networks (needs "
        "trigml-torch)",
    )
