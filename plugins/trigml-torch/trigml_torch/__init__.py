"""trigml-torch: PyTorch model family for trigml.

The family ``torch`` trains MLPs, 1D/2D/3D CNNs, a small 3D U-Net, deep sets and
autoencoders, and saves them as ONNX plus a state_dict. Build a network with
:func:`trigml_torch.arch.build_module`, load one from an artifact with
:func:`trigml_torch.arch.load_module`. Importing this package does not import torch.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
