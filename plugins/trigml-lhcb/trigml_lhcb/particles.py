"""Particle properties and decay chains used by the LHCb simulation.

Masses (GeV) and proper decay lengths cτ (µm) follow the PDG averages. A decay chain is
a small static tree of :class:`Decay` nodes; the generator walks it once per batch, so
every node is handled for all events at once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PARTICLES",
    "Decay",
    "Particle",
    "charged_leaves",
]


@dataclass(frozen=True)
class Particle:
    """A particle species.

    Attributes
    ----------
    name : str
    mass : float
        Mass, GeV.
    ctau : float
        Proper decay length cτ, µm; 0 for particles that do not fly before decaying
        (or are stable on the scale of the VELO).
    charge : int
        Electric charge in units of e; neutral particles leave no track.
    """

    name: str
    mass: float
    ctau: float = 0.0
    charge: int = 0


def _table(*parts: Particle) -> dict[str, Particle]:
    return {p.name: p for p in parts}


PARTICLES: dict[str, Particle] = _table(
    Particle("pi+", 0.13957039, 0.0, +1),
    Particle("pi-", 0.13957039, 0.0, -1),
    Particle("K+", 0.493677, 0.0, +1),
    Particle("K-", 0.493677, 0.0, -1),
    Particle("p+", 0.93827209, 0.0, +1),
    Particle("p~-", 0.93827209, 0.0, -1),
    Particle("mu+", 0.1056584, 0.0, +1),
    Particle("mu-", 0.1056584, 0.0, -1),
    Particle("pi0", 0.1349768),
    Particle("nu", 0.0),
    Particle("gamma", 0.0),
    Particle("B0", 5.27966, 455.4),
    Particle("B+", 5.27934, 491.1),
    Particle("Bs", 5.36692, 455.7),
    Particle("Lb", 5.61960, 441.0),
    Particle("D0", 1.86484, 122.9),
    Particle("D+", 1.86966, 311.8, +1),
    Particle("D-", 1.86966, 311.8, -1),
    Particle("Ds+", 1.96835, 151.2, +1),
    Particle("Ds-", 1.96835, 151.2, -1),
    Particle("Lc+", 2.28646, 60.7, +1),
)


@dataclass(frozen=True)
class Decay:
    """One decay in a chain: a parent and its ordered daughters.

    A daughter is either a particle name (stable on the VELO scale) or another
    :class:`Decay`, which flies by its own cτ before decaying. Daughters are
    distributed according to n-body phase space.

    Attributes
    ----------
    parent : str
        Key of :data:`PARTICLES`.
    daughters : tuple of (str or Decay)
    """

    parent: str
    daughters: tuple[str | Decay, ...]

    def __post_init__(self) -> None:
        if self.parent not in PARTICLES:
            raise ValueError(f"unknown particle '{self.parent}' in a decay chain")
        for d in self.daughters:
            if isinstance(d, str) and d not in PARTICLES:
                raise ValueError(
                    f"unknown particle '{d}' in the decay of {self.parent}"
                )
        if len(self.daughters) < 2:
            raise ValueError(f"decay of {self.parent} needs at least two daughters")
        if sum(_mass(d) for d in self.daughters) >= PARTICLES[self.parent].mass:
            raise ValueError(f"decay of {self.parent} is kinematically forbidden")

    @property
    def mass(self) -> float:
        """Mass of the parent, GeV."""
        return PARTICLES[self.parent].mass

    @property
    def ctau(self) -> float:
        """Proper decay length of the parent, µm."""
        return PARTICLES[self.parent].ctau


def _mass(node: str | Decay) -> float:
    return node.mass if isinstance(node, Decay) else PARTICLES[node].mass


def charged_leaves(node: Decay) -> list[str]:
    """Names of the charged final-state particles of a chain, depth first."""
    out: list[str] = []
    for d in node.daughters:
        if isinstance(d, Decay):
            out += charged_leaves(d)
        elif PARTICLES[d].charge != 0:
            out.append(d)
    return out
