"""Parameters of the ``xgboost`` model family, as written in a training config.

The top level holds the usual boosting settings; three optional blocks switch on
feature pruning (``prune``), flat-efficiency training (``flat``) and the discretised
bonsai lookup table (``bonsai``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from trigml.registry import Params
from trigml_xgboost.distributed import DistributedParams

__all__ = [
    "MAX_BONSAI_CELLS",
    "BonsaiParams",
    "FlatParams",
    "PruneParams",
    "XGBoostParams",
]

#: Largest bonsai grid (cells of the lookup table) the family agrees to build: 2**26
#: float32 cells are 256 MiB.
MAX_BONSAI_CELLS = 2**26

Objective = Literal[
    "auto",
    "binary:logistic",
    "multi:softprob",
    "reg:squarederror",
    "reg:pseudohubererror",
    "reg:absoluteerror",
]


class PruneParams(Params):
    """Drop the least important feature while the validation metric holds.

    Attributes
    ----------
    tolerance : float
        Largest loss of the metric accepted, against the model with every feature:
        absolute for ``auc``, relative (0.005 = 0.5%) for ``resolution``.
    metric : {"auto", "auc", "resolution"}
        ``auto`` is ``auc`` for classification, ``resolution`` for regression.
    min_features : int
        Never prune below this many features.
    """

    tolerance: float = Field(0.005, ge=0.0, le=1.0)
    metric: Literal["auto", "auc", "resolution"] = "auto"
    min_features: int = Field(1, ge=1)


class FlatParams(Params):
    """Flat signal efficiency over the uniform variables (uBoost-like reweighting).

    Attributes
    ----------
    features : list of str
        Columns of ``TrainingSet.aux`` the signal efficiency should not depend on
        (Dalitz coordinates, decay time).
    strength : float
        Exponent of the per-stage reweighting; 0 trains a plain BDT, larger values
        trade more AUC for flatness.
    n_bins : int
        Equal-population bins per uniform variable.
    stages : int
        Number of reweighting steps; the trees are split evenly between them.
    """

    features: list[str] = Field(min_length=1)
    strength: float = Field(1.0, ge=0.0, le=10.0)
    n_bins: int = Field(10, ge=2, le=100)
    stages: int = Field(10, ge=1, le=200)


class BonsaiParams(Params):
    """Discretise every feature and tabulate the response (a bonsai BDT).

    Attributes
    ----------
    bins : int or list of int
        Bins per feature, one number for all or one per model feature in card order.
    strategy : {"quantile"}
        Bin edges at quantiles of the training sample.
    """

    bins: int | list[int] = 8
    strategy: Literal["quantile"] = "quantile"

    @field_validator("bins")
    @classmethod
    def _positive(cls, value: int | list[int]) -> int | list[int]:
        values = value if isinstance(value, list) else [value]
        if not values or any(v < 1 or v > 4096 for v in values):
            raise ValueError("bins must be between 1 and 4096 per feature")
        return value


class XGBoostParams(Params):
    """Parameters of the ``xgboost`` family.

    Attributes
    ----------
    n_estimators : int
        Boosting rounds at most (trees per class for multiclass).
    max_depth : int
    learning_rate : float
    subsample : float
        Fraction of rows sampled per tree.
    colsample : float
        Fraction of features sampled per tree.
    early_stopping_rounds : int or None
        Stop when the validation loss has not improved for this many rounds; the
        saved model keeps the best round only. None trains all rounds.
    min_child_weight : float
    reg_lambda : float
        L2 regularisation of the leaf values.
    objective : str
        ``auto`` takes it from the training set's task (``binary:logistic``,
        ``multi:softprob``, ``reg:squarederror``).
    n_threads : int
        Threads xgboost trains with.
    max_bin : int
        Histogram bins of the ``hist`` tree method.
    log_every : int
        Log the validation loss every this many rounds.
    prune, flat, bonsai
        Optional blocks, see :class:`PruneParams`, :class:`FlatParams`,
        :class:`BonsaiParams`.
    distributed
        Optional: train on a Dask cluster with ``xgboost.dask``, see
        :class:`trigml_xgboost.distributed.DistributedParams` (not with ``flat``).
    """

    n_estimators: int = Field(200, ge=1, le=100_000)
    max_depth: int = Field(6, ge=1, le=16)
    learning_rate: float = Field(0.1, gt=0.0, le=1.0)
    subsample: float = Field(1.0, gt=0.0, le=1.0)
    colsample: float = Field(1.0, gt=0.0, le=1.0)
    early_stopping_rounds: int | None = Field(20, ge=1)
    min_child_weight: float = Field(1.0, ge=0.0)
    reg_lambda: float = Field(1.0, ge=0.0)
    objective: Objective = "auto"
    n_threads: int = Field(1, ge=1)
    max_bin: int = Field(256, ge=2, le=65_536)
    log_every: int = Field(50, ge=1)
    prune: PruneParams | None = None
    flat: FlatParams | None = None
    bonsai: BonsaiParams | None = None
    distributed: DistributedParams | None = None
