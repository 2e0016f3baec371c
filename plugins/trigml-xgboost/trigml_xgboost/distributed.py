"""Training one booster on a ``dask.distributed`` cluster with ``xgboost.dask``.

The rows of the training and validation samples are cut into row blocks, one per
worker thread by default, and sent to the workers; xgboost then builds each tree from
histograms that the workers compute on their own rows and combine. The result is a
plain booster, saved and exported like one trained in a single process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from pydantic import Field

from trigml.errors import RunFailure, UsageError
from trigml.registry import Params

__all__ = ["DistributedParams", "train_distributed"]

log = logging.getLogger(__name__)


class DistributedParams(Params):
    """Where and how to train with ``xgboost.dask``.

    Attributes
    ----------
    address : str, optional
        Address of a running Dask scheduler (``tcp://10.0.0.5:8786``). Without one,
        training starts a cluster on 127.0.0.1 with ``n_workers`` worker processes
        and stops it afterwards.
    n_workers : int
        Worker processes of the local cluster.
    threads_per_worker : int
        Threads of each worker of the local cluster.
    partitions : int, optional
        Row blocks the samples are cut into; one per worker thread by default.
    connect_timeout_s : float
        Time allowed to reach the scheduler, in seconds.
    """

    address: str | None = None
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    partitions: int | None = Field(None, ge=1)
    connect_timeout_s: float = Field(30.0, gt=0)


@contextmanager
def cluster_client(params: DistributedParams) -> Iterator[Any]:
    """A client of the configured scheduler, or of a new cluster on 127.0.0.1."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise UsageError(
            f"distributed xgboost training needs dask.distributed ({exc})",
            hint="pip install 'trigml[dask]'",
        ) from exc
    if params.address:
        try:
            client = Client(params.address, timeout=params.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise RunFailure(
                f"cannot reach the Dask scheduler at {params.address} ({exc})",
                hint="start it with 'dask scheduler', or leave 'address' out to "
                "train on a local cluster",
            ) from exc
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=params.n_workers,
            threads_per_worker=params.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def train_distributed(
    booster_params: dict[str, Any],
    dist: DistributedParams,
    train: Any,
    valid: Any,
    *,
    rounds: int,
    early_stopping_rounds: int | None,
    start: Any = None,
) -> tuple[Any, list[float]]:
    """Train with ``xgboost.dask``; return the booster and the validation history.

    Parameters
    ----------
    booster_params : dict
        xgboost parameters, as for ``xgboost.train``.
    dist : DistributedParams
    train, valid : Rows
        Feature matrices, labels and weights of both samples.
    rounds : int
        Boosting rounds to add.
    early_stopping_rounds : int, optional
    start : xgboost.Booster, optional
        Continue from this booster.

    Returns
    -------
    booster : xgboost.Booster
        Every round trained (not yet cut to the best one).
    history : list of float
        The validation metric after each round.
    """
    import dask.array as da
    import xgboost as xgb
    import xgboost.dask  # the submodule is not imported by xgboost itself

    metric = booster_params["eval_metric"]
    with cluster_client(dist) as client:
        parts = dist.partitions or max(1, sum(client.nthreads().values()))

        def blocks(values: np.ndarray) -> Any:
            rows = max(1, -(-len(values) // parts))
            return da.from_array(values, chunks=(rows, *values.shape[1:]))

        def matrix(rows: Any) -> Any:
            return xgb.dask.DaskDMatrix(
                client,
                blocks(rows.features),
                blocks(np.asarray(rows.labels)),
                weight=blocks(rows.weights),
            )

        log.info(
            "training on the Dask cluster at %s: %d row blocks over %d worker(s)",
            client.scheduler.address,
            parts,
            len(client.nthreads()),
        )
        output = xgb.dask.train(
            client,
            booster_params,
            matrix(train),
            num_boost_round=rounds,
            evals=[(matrix(valid), "valid")],
            early_stopping_rounds=early_stopping_rounds,
            xgb_model=start,
            verbose_eval=False,
        )
    history = [float(v) for v in output["history"]["valid"][metric]]
    return output["booster"], history
