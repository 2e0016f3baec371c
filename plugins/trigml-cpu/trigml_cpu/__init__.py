"""CPU inference backends for trigml.

Registers ``cpu.onnxruntime``, ``cpu.xgboost``, ``cpu.compiled`` (tree ensembles through
a small C kernel), ``cpu.lut`` (bonsai lookup tables), ``cpu.torch`` (eager torch, for
graphs ONNX cannot express) and ``cpu.auto``, which times the runtimes able to read an
artifact and sends each batch to the fastest one for its size.
"""

from __future__ import annotations

__all__: list[str] = []
