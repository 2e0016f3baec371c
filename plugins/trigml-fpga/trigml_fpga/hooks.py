"""Registration of the FPGA backends with trigml."""

from __future__ import annotations

from typing import Any

from trigml.hookspec import hookimpl

__all__ = ["trigml_register_backends"]


@hookimpl
def trigml_register_backends(register: Any) -> None:
    from trigml_fpga.backends import ConiferBackend, Hls4mlBackend
    from trigml_fpga.params import ConiferParams, Hls4mlParams

    register(
        "fpga.hls4ml",
        Hls4mlBackend,
        Hls4mlParams,
        "neural networks as hls4ml fixed-point firmware, emulated with g++",
    )
    register(
        "fpga.conifer",
        ConiferBackend,
        ConiferParams,
        "BDTs as conifer fixed-point firmware, emulated with g++",
    )
