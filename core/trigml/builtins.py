"""Components that ship with the core, registered through the same hooks as plugins."""

from __future__ import annotations

from typing import Any

from trigml.hookspec import hookimpl

__all__ = [
    "trigml_register_algorithms",
    "trigml_register_backends",
    "trigml_register_executors",
    "trigml_register_metrics",
    "trigml_register_model_families",
    "trigml_register_sinks",
    "trigml_register_sources",
]


@hookimpl
def trigml_register_sources(register: Any) -> None:
    from trigml.io.root import RootSource, RootSourceParams
    from trigml.toy import ToySource, ToySourceParams

    register(
        "root", RootSource, RootSourceParams, "events from ROOT TTrees or RNTuples"
    )
    register("toy", ToySource, ToySourceParams, "toy events for tests and examples")


@hookimpl
def trigml_register_sinks(register: Any) -> None:
    from trigml.io.memory import MemorySink
    from trigml.io.root import RootSink, RootSinkParams

    register("root", RootSink, RootSinkParams, "decisions as a ROOT TTree")
    register(
        "memory", lambda params: MemorySink(), description="decisions kept in memory"
    )


@hookimpl
def trigml_register_executors(register: Any) -> None:
    from trigml.dask_executor import DaskExecutor, DaskExecutorParams
    from trigml.runtime import ExecutorParams, LocalExecutor

    register(
        "local",
        LocalExecutor,
        ExecutorParams,
        "all batches in this process, in order",
    )
    register(
        "dask",
        DaskExecutor,
        DaskExecutorParams,
        "chunks on a dask.distributed cluster (a local one on 127.0.0.1 by default)",
    )


@hookimpl
def trigml_register_algorithms(register: Any) -> None:
    from trigml.cuts import CutsAlgorithm, CutsAlgorithmParams

    register("cuts", CutsAlgorithm, CutsAlgorithmParams, "candidates from named fields")


@hookimpl
def trigml_register_model_families(register: Any) -> None:
    from trigml.cuts import CutsFamily, CutsFamilyParams

    register(
        "cuts", CutsFamily, CutsFamilyParams, "rectangular cuts for a target efficiency"
    )


@hookimpl
def trigml_register_backends(register: Any) -> None:
    from trigml.cuts import CutsBackend

    register("cpu.cuts", CutsBackend, description="rectangular cuts with numpy")


@hookimpl
def trigml_register_metrics(register: Any) -> None:
    from trigml import metrics

    register("auc", lambda params: metrics.auc, description="area under the ROC curve")
    register(
        "agreement",
        lambda params: metrics.agreement,
        description="decision agreement between two scorers",
    )
