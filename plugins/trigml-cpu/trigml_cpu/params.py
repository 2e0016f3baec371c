"""Parameters of the CPU backends, as written in a menu line or export config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trigml.registry import Params

__all__ = ["AUTO_CANDIDATES", "AutoParams", "LutParams", "ThreadParams"]

#: Runtimes ``cpu.auto`` may choose from, in order of preference on a tie. All give
#: the float model's scores; the bonsai table (``cpu.lut``) is an approximation and is
#: used only when an artifact has nothing else.
AUTO_CANDIDATES = ("cpu.compiled", "cpu.onnxruntime", "cpu.xgboost", "cpu.torch")

Candidate = Literal["cpu.compiled", "cpu.onnxruntime", "cpu.xgboost", "cpu.torch"]


class ThreadParams(Params):
    """Threads of one runtime session.

    One thread per session is the default: on trigger farms one parallelises over
    processes, and a second thread rarely helps small batches.
    """

    threads: int = Field(1, ge=1, le=256)


class LutParams(Params):
    """Parameters of ``cpu.lut``.

    Attributes
    ----------
    native : bool
        Use the compiled lookup kernel when a C compiler is available (several
        times faster than numpy on large batches); otherwise, or when False, bin
        with ``numpy.searchsorted``. Both give identical scores.
    """

    native: bool = True


class AutoParams(Params):
    """Parameters of ``cpu.auto``.

    Attributes
    ----------
    batch_sizes : list of int
        Batch sizes timed at load; each call is sent to the runtime fastest at the
        nearest of them (on a log scale).
    candidates : list of str, optional
        Runtimes to consider (default: all that can read the artifact).
    recalibrate : bool
        Ignore a cached choice and time again.
    seconds_per_point : float
        Time spent measuring one runtime at one batch size (three repeats).
    agreement : float
        Largest score difference, relative to max(1, |score|), accepted between a
        runtime and the artifact's held-out float scores; runtimes beyond it are
        left out.
    """

    batch_sizes: list[int] = Field(
        default_factory=lambda: [1, 64, 10_000], min_length=1
    )
    candidates: list[Candidate] | None = None
    recalibrate: bool = False
    seconds_per_point: float = Field(0.03, gt=0.0, le=10.0)
    agreement: float = Field(1e-4, gt=0.0)
