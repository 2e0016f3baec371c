"""Registration of the LHCb components with trigml."""

from __future__ import annotations

from typing import Any

from trigml.hookspec import hookimpl

__all__ = [
    "trigml_register_algorithms",
    "trigml_register_demos",
    "trigml_register_sources",
]


def _topo(params: Any) -> Any:
    from trigml_lhcb.topo import TopoAlgorithm

    return TopoAlgorithm(params)


def _ghost(params: Any) -> Any:
    from trigml_lhcb.ghost import GhostAlgorithm

    return GhostAlgorithm(params)


def _sim(params: Any) -> Any:
    from trigml_lhcb.simulation import LHCbSimSource

    return LHCbSimSource.from_params(params)


@hookimpl
def trigml_register_algorithms(register: Any) -> None:
    """Register ``lhcb.topo`` and ``lhcb.ghost``."""
    from trigml_lhcb.ghost import GhostParams
    from trigml_lhcb.topo import TopoParams

    register(
        "lhcb.topo",
        _topo,
        params=TopoParams,
        description="LHCb topological trigger on 2-, 3- and 4-track vertices",
    )
    register(
        "lhcb.ghost",
        _ghost,
        params=GhostParams,
        description="LHCb ghost-track classifier on track-fit and hit-count features",
    )


@hookimpl
def trigml_register_sources(register: Any) -> None:
    """Register the ``lhcb.sim`` event generator."""
    from trigml_lhcb.simulation import LHCbSimParams

    register(
        "lhcb.sim",
        _sim,
        params=LHCbSimParams,
        description="LHCb-like events: b-hadron signal modes, minimum bias, ghosts",
    )


def _demo(quick: bool) -> Any:
    def factory(params: Any) -> Any:
        from trigml_lhcb.demo import run_demo

        return lambda out, console: run_demo(out, console, quick=quick)

    return factory


@hookimpl
def trigml_register_demos(register: Any) -> None:
    """Register the LHCb demo as the default one, and a quick variant for tests."""
    description = "LHCb topological trigger and ghost classifier, CPU and FPGA"
    register("default", _demo(False), description=description)
    register("lhcb", _demo(False), description=description)
    register(
        "lhcb-quick", _demo(True), description="the LHCb demo on a tenth of the events"
    )
