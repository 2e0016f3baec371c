"""Hook implementations of trigml-torch: the ``torch`` model family."""

from __future__ import annotations

from typing import Any

from trigml.hookspec import hookimpl
from trigml_torch.specs import TorchParams

__all__ = ["trigml_register_model_families"]


def _make_family(params: TorchParams) -> Any:
    from trigml_torch.family import TorchFamily

    return TorchFamily(params)


@hookimpl
def trigml_register_model_families(register: Any) -> None:
    """Register the ``torch`` family (MLP, CNN, 3D U-Net, deep sets, autoencoder)."""
    register(
        "torch",
        _make_family,
        params=TorchParams,
        description="PyTorch networks: MLP, 1D/2D/3D CNN, 3D U-Net, deep sets, "
        "autoencoder; ONNX + state_dict",
    )
