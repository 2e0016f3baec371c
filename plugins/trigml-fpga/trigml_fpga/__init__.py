"""trigml-fpga: models as FPGA firmware, emulated bit by bit on the CPU.

Two backends: ``fpga.hls4ml`` for neural networks (hls4ml) and ``fpga.conifer`` for
BDTs (conifer). Both compile the fixed-point C++ that HLS would synthesise with g++,
report how quantisation changes the trigger decisions, and estimate latency and
resources. Nothing here needs Vivado.
"""

from __future__ import annotations

from importlib import metadata

from trigml_fpga.backends import ConiferBackend, FirmwareScorer, Hls4mlBackend
from trigml_fpga.fixed import FixedType, parse_fixed
from trigml_fpga.params import ConiferParams, Hls4mlParams, LayerPrecision
from trigml_fpga.toolchain import ToolchainError, VivadoRequired

try:
    __version__ = metadata.version("trigml-fpga")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ConiferBackend",
    "ConiferParams",
    "FirmwareScorer",
    "FixedType",
    "Hls4mlBackend",
    "Hls4mlParams",
    "LayerPrecision",
    "ToolchainError",
    "VivadoRequired",
    "__version__",
    "parse_fixed",
]
