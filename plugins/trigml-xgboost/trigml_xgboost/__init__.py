"""Gradient-boosted decision trees for trigml, trained with xgboost.

Registers the ``xgboost`` model family: boosted trees with sample weights and early
stopping, backward feature pruning, flat-efficiency training over chosen variables and
bonsai (discretised) lookup tables, saved as xgboost JSON and verified ONNX.
"""

from __future__ import annotations

__all__: list[str] = []
