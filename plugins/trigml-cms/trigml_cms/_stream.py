"""Seeded, batch-size independent streaming of simulated events.

A simulation makes events in fixed-size blocks, each block drawn from its own child of
one :class:`numpy.random.SeedSequence`; batches are cut from the block stream. The same
seed therefore gives the same events whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import awkward as ak
import numpy as np

from trigml.errors import DataError

__all__ = ["BLOCK_SIZE", "generate", "project", "stream"]

#: Events per block; part of the definition of a seeded sample, do not change lightly.
BLOCK_SIZE = 16_384

BlockMaker = Callable[[np.random.Generator, int], ak.Array]


def _blocks(n_events: int, seed: int, make_block: BlockMaker) -> Iterator[ak.Array]:
    n_blocks = -(-n_events // BLOCK_SIZE)
    children = np.random.SeedSequence(seed).spawn(n_blocks)
    for i, child in enumerate(children):
        n = min(BLOCK_SIZE, n_events - i * BLOCK_SIZE)
        yield make_block(np.random.default_rng(child), n)


def stream(
    n_events: int, seed: int, batch_size: int, make_block: BlockMaker
) -> Iterator[ak.Array]:
    """Yield ``n_events`` events in batches of ``batch_size`` (the last may be short).

    Parameters
    ----------
    n_events : int
        Total number of events.
    seed : int
        Seed of the whole sample.
    batch_size : int
        Events per yielded array.
    make_block : callable
        ``make_block(rng, n) -> ak.Array`` simulating ``n`` events.
    """
    pending: list[ak.Array] = []
    n_pending = 0
    for block in _blocks(n_events, seed, make_block):
        pending.append(block)
        n_pending += len(block)
        while n_pending >= batch_size:
            joined = pending[0] if len(pending) == 1 else ak.concatenate(pending)
            yield joined[:batch_size]
            rest = joined[batch_size:]
            pending = [rest] if len(rest) else []
            n_pending = len(rest)
    if n_pending:
        yield pending[0] if len(pending) == 1 else ak.concatenate(pending)


def generate(n_events: int, seed: int, make_block: BlockMaker) -> ak.Array:
    """All ``n_events`` events of a seeded sample in one array."""
    blocks = list(_blocks(n_events, seed, make_block))
    return blocks[0] if len(blocks) == 1 else ak.concatenate(blocks)


def project(events: ak.Array, columns: Sequence[str] | None, origin: str) -> ak.Array:
    """Keep only the fields named by dotted ``columns`` (all when None).

    Raises
    ------
    DataError
        A requested field does not exist in the simulation.
    """
    if columns is None:
        return events
    wanted: dict[str, list[str] | None] = {}
    for dotted in columns:
        top, _, sub = dotted.partition(".")
        if top not in ak.fields(events):
            have = ", ".join(ak.fields(events))
            raise DataError(
                f"{origin}: the simulation has no field '{top}' (has: {have})"
            )
        if sub:
            if wanted.get(top, []) is not None:
                wanted.setdefault(top, []).append(sub)  # type: ignore[union-attr]
        else:
            wanted[top] = None
    out = {}
    for top, subs in wanted.items():
        col = events[top]
        out[top] = col if subs is None else col[sorted(set(subs))]
    return ak.zip(out, depth_limit=1)
