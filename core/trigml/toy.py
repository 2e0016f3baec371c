"""A small toy event generator, so the core can run end to end with no plugin.

Events carry four flat features ``x0``–``x3`` whose signal and background shapes
differ, a signal flag, a pile-up count and a jagged ``objects`` collection with a
transverse momentum per object. It stands in for real physics only in tests and
examples of the core; the experiment plugins bring faithful simulations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import awkward as ak
import numpy as np
from pydantic import Field

from trigml.components import Batch, ChunkRef, Source
from trigml.registry import Params

__all__ = ["ToySource", "ToySourceParams", "toy_events"]


class ToySourceParams(Params):
    """Parameters of the ``toy`` source."""

    n_events: int = Field(10_000, gt=0)
    seed: int = 0
    batch_size: int = Field(100_000, gt=0)
    signal_fraction: float = Field(0.5, ge=0.0, le=1.0)


def toy_events(n: int, seed: int, signal_fraction: float = 0.5) -> ak.Array:
    """Generate ``n`` toy events.

    Signal has larger ``x0`` and ``x1`` (GeV-like, exponential), smaller ``x2`` and a
    Gaussian ``x3`` shifted by one unit; ``objects.pt`` is exponential with a mean of
    5 GeV for signal and 2 GeV for background, 0–7 objects per event.
    """
    rng = np.random.default_rng(seed)
    sig = rng.random(n) < signal_fraction
    x0 = rng.exponential(np.where(sig, 4.0, 1.5)).astype(np.float32)
    x1 = rng.exponential(np.where(sig, 3.0, 1.0)).astype(np.float32)
    x2 = rng.exponential(np.where(sig, 0.5, 1.5)).astype(np.float32)
    x3 = (rng.normal(size=n) + sig).astype(np.float32)
    n_pv = rng.poisson(5.0, size=n).astype(np.int32)
    counts = rng.integers(0, 8, size=n)
    mean_pt = np.repeat(np.where(sig, 5.0, 2.0), counts)
    pt = rng.exponential(mean_pt).astype(np.float32)
    objects = ak.unflatten(ak.zip({"pt": pt}), counts)
    return ak.zip(
        {
            "x0": x0,
            "x1": x1,
            "x2": x2,
            "x3": x3,
            "nPV": n_pv,
            "is_signal": sig,
            "objects": objects,
        },
        depth_limit=1,
    )


class ToySource(Source):
    """Yields toy events in batches."""

    def __init__(self, params: ToySourceParams) -> None:
        self.params = params

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Batch]:
        for ref in self.chunks(columns):
            yield self.read_chunk(ref, columns)

    def chunks(self, columns: Sequence[str] | None = None) -> list[ChunkRef]:
        """One chunk of ``batch_size`` events after the other (the last one shorter)."""
        p = self.params
        refs = []
        for chunk, lo in enumerate(range(0, p.n_events, p.batch_size)):
            hi = min(lo + p.batch_size, p.n_events)
            refs.append(
                ChunkRef(
                    index=chunk,
                    start=lo,
                    n=hi - lo,
                    entry_start=lo,
                    entry_stop=hi,
                    origin=f"toy[{lo}:{hi}]",
                )
            )
        return refs

    def read_chunk(self, ref: ChunkRef, columns: Sequence[str] | None = None) -> Batch:
        """Generate the events of one chunk (seeded by the chunk number)."""
        p = self.params
        events = toy_events(
            ref.n,
            seed=p.seed * 1_000_003 + ref.index,
            signal_fraction=p.signal_fraction,
        )
        return Batch(events=events, start=ref.start, origin=ref.origin, chunk=ref.index)

    def describe(self) -> str:
        p = self.params
        return f"toy(n_events={p.n_events}, seed={p.seed})"
