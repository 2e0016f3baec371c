"""``cpu.torch``: torch eager execution, for graphs ONNX cannot express.

The network is rebuilt from ``arch.json`` and its ``state_dict`` by
``trigml_torch.arch.load_module`` (from the trigml-torch plugin, imported only when
this backend loads a model) and run under ``torch.inference_mode``.
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

__all__ = ["TorchBackend"]

log = logging.getLogger(__name__)


class _TorchScorer(CpuScorer):
    def __init__(self, artifact: Artifact, module: Any, backend: str) -> None:
        import torch

        super().__init__(artifact, backend)
        self._module = module
        self._torch = torch

    def _raw(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        if not x.flags.writeable:
            x = x.copy()
        with torch.inference_mode():
            out = self._module(torch.from_numpy(x))
        return out.numpy()  # type: ignore[no-any-return]


class TorchBackend(Backend):
    """Runs ``torch-arch`` + ``torch-state`` artifacts with torch on the CPU.

    Torch's thread count is a process-wide setting; loading a model sets it to
    ``threads`` (1 by default) and logs the change.
    """

    name = "cpu.torch"

    def __init__(self, params: ThreadParams | None = None) -> None:
        self.params = params or ThreadParams()

    def formats(self) -> Sequence[str]:
        return ["torch-arch", "torch-state"]

    def load(self, artifact: Artifact) -> CpuScorer:
        require_formats(artifact, self.name, ["torch-arch", "torch-state"])
        try:
            import torch

            from trigml_torch.arch import load_module
        except ImportError as exc:
            raise ModelError(
                f"backend '{self.name}' needs the trigml-torch plugin to rebuild "
                f"model '{artifact.card.name}' ({exc})",
                hint="pip install trigml-torch",
            ) from None
        if torch.get_num_threads() != self.params.threads:
            log.info("setting torch to %d thread(s)", self.params.threads)
            torch.set_num_threads(self.params.threads)
        module = load_module(artifact)
        module.train(False)
        return _TorchScorer(artifact, module, self.name)

    def describe(self) -> dict[str, Any]:
        import torch

        return {
            "backend": self.name,
            "torch": torch.__version__,
            **self.params.model_dump(),
        }
