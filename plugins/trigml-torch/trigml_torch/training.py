"""The training loop of the torch family: losses, mini-batches, early stopping.

Everything here works on tensors already scaled by :mod:`trigml_torch.family`.
Importing this module imports torch.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trigml.errors import RunFailure
from trigml_torch.arch import TriggerNet
from trigml_torch.specs import TorchParams

__all__ = [
    "EpochCallback",
    "FitResult",
    "Rows",
    "row_loss",
    "run_module",
    "torch_threads",
    "train_loop",
]

logger = logging.getLogger(__name__)

#: Called after every epoch with ``epoch``, ``epochs``, ``train_loss``,
#: ``valid_loss``, ``lr`` and ``best_epoch``.
EpochCallback = Callable[[dict[str, Any]], None]

_EVAL_BATCH = 8192


@dataclass
class Rows:
    """Scaled inputs, prepared targets and weights of one sample.

    Attributes
    ----------
    x : Tensor, float32, shape (n, n_inputs)
    y : Tensor, shape (n, n_targets) float32, or (n,) int64 class indices
    w : Tensor, float32, shape (n,)
    """

    x: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class FitResult:
    """What :func:`train_loop` measured; the module holds the best weights."""

    best_epoch: int
    best_loss: float
    history: list[dict[str, float]]
    stopped_early: bool


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op torch threads, then restore the old count."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def row_loss(
    kind: str,
    z: torch.Tensor,
    y: torch.Tensor,
    *,
    quantiles: torch.Tensor | None = None,
    huber_delta: float = 1.0,
) -> torch.Tensor:
    """Loss of every row, shape (n,).

    Parameters
    ----------
    kind : {"bce", "ce", "mse", "huber", "pinball"}
    z : Tensor, shape (n, n_outputs)
        Network outputs before the final activation (logits for bce and ce).
    y : Tensor
        Targets: (n, 1) in {0, 1} for bce, (n,) class indices for ce, (n, n_outputs)
        for mse and huber, (n, 1) for pinball.
    quantiles : Tensor, shape (n_outputs,), optional
        Quantile of each output, for pinball.
    huber_delta : float
    """
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(z, y, reduction="none")[:, 0]
    if kind == "ce":
        return F.cross_entropy(z, y, reduction="none")
    if kind == "mse":
        return ((z - y) ** 2).mean(dim=1)
    if kind == "huber":
        return F.huber_loss(z, y, reduction="none", delta=huber_delta).mean(dim=1)
    if kind == "pinball":
        if quantiles is None:
            raise ValueError("the pinball loss needs quantiles")
        diff = y - z
        return torch.maximum(quantiles * diff, (quantiles - 1.0) * diff).mean(dim=1)
    raise ValueError(f"unknown loss '{kind}'")


def _mean_loss(
    module: TriggerNet, rows: Rows, loss: Callable[..., torch.Tensor]
) -> float:
    module.train(False)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(rows), _EVAL_BATCH):
            part = slice(start, start + _EVAL_BATCH)
            per_row = loss(module.logits(rows.x[part]), rows.y[part])
            total += float((per_row * rows.w[part]).sum())
    return total / float(rows.w.sum())


def _scheduler(
    optimiser: torch.optim.Optimizer, params: TorchParams
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    if params.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, params.epochs)
    if params.schedule == "plateau":
        wait = max(1, (params.patience or 9) // 3)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimiser, factor=0.5, patience=wait
        )
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda _: 1.0)


def train_loop(
    module: TriggerNet,
    train: Rows,
    valid: Rows,
    params: TorchParams,
    *,
    loss_kind: str,
    seed: int,
    callback: EpochCallback | None = None,
) -> FitResult:
    """Train ``module`` with AdamW and early stopping; leave the best weights in it.

    Parameters
    ----------
    module : TriggerNet
        The network; its ``logits`` are trained, its final activation is not used.
    train, valid : Rows
    params : TorchParams
    loss_kind : str
        A resolved loss name (not ``auto``).
    seed : int
        Seeds the order of the mini-batches. Weight initialisation and dropout are
        seeded by the caller through ``torch.manual_seed``.
    callback : callable, optional
        Called after every epoch (see :data:`EpochCallback`).

    Raises
    ------
    RunFailure
        The loss became NaN or infinite.
    """
    quantiles = torch.tensor(params.quantiles, dtype=torch.float32)

    def loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return row_loss(
            loss_kind, z, y, quantiles=quantiles, huber_delta=params.huber_delta
        )

    optimiser = torch.optim.AdamW(
        module.parameters(), lr=params.lr, weight_decay=params.weight_decay
    )
    scheduler = _scheduler(optimiser, params)
    rng = np.random.default_rng(seed)
    n = len(train)
    # A last mini-batch of one row would break batch normalisation: fold it in.
    starts = [s for s in range(0, n, params.batch_size) if n - s > 1 or s == 0]
    w_total = float(train.w.sum())

    best = FitResult(0, math.inf, [], False)
    best_state = copy.deepcopy(module.state_dict())
    stale = 0
    for epoch in range(1, params.epochs + 1):
        module.train()
        order = torch.from_numpy(rng.permutation(n))
        seen = 0.0
        for i, start in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else n
            idx = order[start:stop]
            w = train.w[idx]
            per_row = loss(module.logits(train.x[idx]), train.y[idx])
            batch_loss = (per_row * w).sum() / w.sum().clamp_min(1e-12)
            optimiser.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimiser.step()
            seen += float((per_row.detach() * w).sum())
        train_loss = seen / w_total
        valid_loss = _mean_loss(module, valid, loss)
        if not (math.isfinite(train_loss) and math.isfinite(valid_loss)):
            raise RunFailure(
                f"torch training diverged at epoch {epoch}: train loss {train_loss}, "
                f"validation loss {valid_loss}",
                hint="lower family.lr, or set family.scale: standard",
            )
        lr = optimiser.param_groups[0]["lr"]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(valid_loss)
        else:
            scheduler.step()

        if valid_loss < best.best_loss:
            best.best_loss, best.best_epoch, stale = valid_loss, epoch, 0
            best_state = copy.deepcopy(module.state_dict())
        else:
            stale += 1
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "valid_loss": valid_loss,
            "lr": lr,
        }
        best.history.append(record)
        logger.info(
            "epoch %d/%d: train loss %.5g, validation loss %.5g, lr %.3g",
            epoch,
            params.epochs,
            train_loss,
            valid_loss,
            lr,
        )
        if callback is not None:
            callback({**record, "epochs": params.epochs, "best_epoch": best.best_epoch})
        if params.patience is not None and stale >= params.patience:
            best.stopped_early = epoch < params.epochs
            logger.info(
                "early stop after epoch %d: no better validation loss for %d epochs",
                epoch,
                stale,
            )
            break

    module.load_state_dict(best_state)
    module.train(False)
    return best


def run_module(module: torch.nn.Module, scaled: np.ndarray) -> np.ndarray:
    """Outputs of ``module`` (with its final activation) on scaled rows, float32."""
    module.train(False)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(scaled), _EVAL_BATCH * 8):
            block = torch.from_numpy(scaled[start : start + _EVAL_BATCH * 8])
            outputs.append(module(block).numpy())
        if not outputs:
            n_out = module(torch.zeros(1, scaled.shape[1])).shape[1]
            return np.zeros((0, n_out), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32, copy=False)
