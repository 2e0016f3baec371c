"""Vectorised decay of heavy hadrons through a chain, with flight before each decay.

A hadron of momentum p and mass m flies ``L = βγ cτ · Exp(1)`` along its direction,
with βγ = p/m, then decays by phase space; unstable daughters fly and decay in turn.
The charged final-state particles are collected in a flat table with their production
point, so that the detector model can turn them into tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trigml_lhcb.kinematics import boost, phase_space
from trigml_lhcb.particles import PARTICLES, Decay

__all__ = [
    "C_LIGHT_UM_PER_PS",
    "ChainDecays",
    "FinalState",
    "decay_chain",
]

#: Speed of light, µm/ps.
C_LIGHT_UM_PER_PS = 299.792458


@dataclass
class FinalState:
    """A flat table of charged final-state particles.

    Attributes
    ----------
    event : ndarray, int64, shape (n,)
        Event of each particle within the batch.
    p3 : ndarray, float64, shape (n, 3)
        True momentum, GeV.
    mass : ndarray, float64, shape (n,)
        True mass, GeV.
    charge : ndarray, int8, shape (n,)
    origin : ndarray, float64, shape (n, 3)
        Production point, mm.
    category : ndarray, int8, shape (n,)
        0 prompt, 1 signal b, 2 other b, 3 charm, 5 ghost.
    ancestor : ndarray, int64, shape (n,)
        Identifier of the heavy hadron the particle descends from, unique within the
        batch; -1 for prompt particles and ghosts.
    """

    event: np.ndarray
    p3: np.ndarray
    mass: np.ndarray
    charge: np.ndarray
    origin: np.ndarray
    category: np.ndarray
    ancestor: np.ndarray

    def __len__(self) -> int:
        return len(self.event)

    @staticmethod
    def concat(parts: list[FinalState]) -> FinalState:
        """One table from several, in order."""
        return FinalState(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in (
                    "event",
                    "p3",
                    "mass",
                    "charge",
                    "origin",
                    "category",
                    "ancestor",
                )
            )
        )

    @staticmethod
    def empty() -> FinalState:
        """A table with no particles."""
        return FinalState(
            np.zeros(0, np.int64),
            np.zeros((0, 3)),
            np.zeros(0),
            np.zeros(0, np.int8),
            np.zeros((0, 3)),
            np.zeros(0, np.int8),
            np.zeros(0, np.int64),
        )


@dataclass
class ChainDecays:
    """What one batch of decays of a chain produced.

    Attributes
    ----------
    particles : FinalState
        Charged final-state particles of every decay.
    decay_time : ndarray, float64, shape (n,)
        Proper decay time of the head hadron, ps.
    flight : ndarray, float64, shape (n,)
        Flight distance of the head hadron, mm.
    head_daughters : ndarray, float64, shape (n, k, 4)
        Four-vectors of the head's daughters in its rest frame, GeV.
    """

    particles: FinalState
    decay_time: np.ndarray
    flight: np.ndarray
    head_daughters: np.ndarray


def decay_chain(
    rng: np.random.Generator,
    chain: Decay,
    p4: np.ndarray,
    vertex: np.ndarray,
    event: np.ndarray,
    *,
    category: int,
    ancestor: np.ndarray,
) -> ChainDecays:
    """Fly and decay ``len(p4)`` head hadrons through ``chain``.

    Parameters
    ----------
    rng : numpy Generator
    chain : Decay
    p4 : ndarray, float64, shape (n, 4)
        Lab four-momenta of the head hadrons, GeV.
    vertex : ndarray, float64, shape (n, 3)
        Production points, mm.
    event : ndarray, int64, shape (n,)
        Event of each head hadron within the batch.
    category : int
        Category code given to every final-state particle.
    ancestor : ndarray, int64, shape (n,)
        Identifier of each head hadron.
    """
    out: list[FinalState] = []
    time, flight, rest = _fly_and_decay(
        rng, chain, p4, vertex, event, category, ancestor, out
    )
    particles = FinalState.concat(out) if out else FinalState.empty()
    return ChainDecays(particles, time, flight, rest)


def _fly_and_decay(
    rng: np.random.Generator,
    node: Decay,
    p4: np.ndarray,
    vertex: np.ndarray,
    event: np.ndarray,
    category: int,
    ancestor: np.ndarray,
    out: list[FinalState],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(p4)
    p = np.linalg.norm(p4[:, :3], axis=1)
    direction = p4[:, :3] / np.maximum(p, 1e-12)[:, None]

    # Proper decay length in µm, then lab flight in mm.
    proper = node.ctau * rng.exponential(size=n)
    flight = proper * (p / node.mass) * 1e-3
    decay_vertex = vertex + flight[:, None] * direction
    time = proper / C_LIGHT_UM_PER_PS

    masses = [_node_mass(d) for d in node.daughters]
    rest = phase_space(rng, node.mass, masses, n)
    lab = boost(rest, (p4[:, :3] / p4[:, 3:4])[:, None, :])

    for i, daughter in enumerate(node.daughters):
        if isinstance(daughter, Decay):
            _fly_and_decay(
                rng, daughter, lab[:, i], decay_vertex, event, category, ancestor, out
            )
            continue
        info = PARTICLES[daughter]
        if info.charge == 0:
            continue
        out.append(
            FinalState(
                event=event,
                p3=lab[:, i, :3],
                mass=np.full(n, info.mass),
                charge=np.full(n, info.charge, dtype=np.int8),
                origin=decay_vertex,
                category=np.full(n, category, dtype=np.int8),
                ancestor=ancestor,
            )
        )
    return time, flight, rest


def _node_mass(node: str | Decay) -> float:
    return node.mass if isinstance(node, Decay) else PARTICLES[node].mass
