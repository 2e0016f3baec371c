"""Named b-hadron signal modes and the generic b and charm decays of minimum bias.

Each signal mode is a decay chain with a flag saying whether the topological trigger is
trained on it; modes held out of training measure how well the trigger generalises to
decays it never saw. Generic decays give the b and charm content of minimum-bias events.
The mixtures are plausible, not measured branching fractions.
"""

from __future__ import annotations

from dataclasses import dataclass

from trigml_lhcb.particles import PARTICLES, Decay, charged_leaves

__all__ = [
    "B_GENERIC",
    "CHARM_GENERIC",
    "DALITZ_MODE",
    "MODES",
    "SignalMode",
    "mode_id",
    "mode_names",
]


@dataclass(frozen=True)
class SignalMode:
    """A named signal decay.

    Attributes
    ----------
    name : str
        Name used in configurations and reports (``B0_Kpi``).
    chain : Decay
    held_out : bool
        True when the mode is kept out of training by default.
    dalitz : bool
        True for a direct three-body decay whose Dalitz variables (m12², m23² of the
        first, second and third daughters) are recorded.
    description : str
    """

    name: str
    chain: Decay
    held_out: bool = False
    dalitz: bool = False
    description: str = ""

    @property
    def n_charged(self) -> int:
        """Number of charged final-state particles."""
        return len(charged_leaves(self.chain))

    @property
    def missing_neutral(self) -> bool:
        """True when a neutral particle escapes (ν, π⁰), so the mass is below m_B."""
        return _has_neutral(self.chain)


def _has_neutral(node: Decay) -> bool:
    for d in node.daughters:
        if isinstance(d, Decay):
            if _has_neutral(d):
                return True
        elif PARTICLES[d].charge == 0:
            return True
    return False


_D0_KPI = Decay("D0", ("K+", "pi-"))

MODES: dict[str, SignalMode] = {
    m.name: m
    for m in (
        SignalMode(
            "B0_Kpi",
            Decay("B0", ("K+", "pi-")),
            description="B⁰ → K⁺π⁻, two-body, fully reconstructed",
        ),
        SignalMode(
            "Bp_KKpi",
            Decay("B+", ("K+", "K-", "pi+")),
            dalitz=True,
            description="B⁺ → K⁺K⁻π⁺, three-body phase space (Dalitz flatness mode)",
        ),
        SignalMode(
            "Bp_D0munu",
            Decay("B+", (_D0_KPI, "mu+", "nu")),
            description="B⁺ → D̄⁰μ⁺ν, D̄⁰ → K⁺π⁻: three tracks, a neutrino escapes",
        ),
        SignalMode(
            "B0_D0pipi",
            Decay("B0", (_D0_KPI, "pi+", "pi-")),
            description="B⁰ → D̄⁰π⁺π⁻, D̄⁰ → K⁺π⁻: four tracks, D flies",
        ),
        SignalMode(
            "Bs_Dspi",
            Decay("Bs", (Decay("Ds-", ("K+", "K-", "pi-")), "pi+")),
            held_out=True,
            description="B_s⁰ → D_s⁻π⁺, D_s⁻ → K⁺K⁻π⁻: four tracks",
        ),
        SignalMode(
            "Lb_Lcpi",
            Decay("Lb", (Decay("Lc+", ("p+", "K-", "pi+")), "pi-")),
            held_out=True,
            description="Λ_b⁰ → Λ_c⁺π⁻, Λ_c⁺ → pK⁻π⁺: four tracks",
        ),
        SignalMode(
            "Lb_pK",
            Decay("Lb", ("p+", "K-")),
            held_out=True,
            description="Λ_b⁰ → pK⁻, two-body",
        ),
        SignalMode(
            "B0_Dmunu",
            Decay("B0", (Decay("D-", ("K+", "pi-", "pi-")), "mu+", "nu")),
            held_out=True,
            description="B⁰ → D⁻μ⁺ν, D⁻ → K⁺π⁻π⁻: four tracks, a neutrino escapes",
        ),
    )
}

#: The three-body mode whose Dalitz plane the flatness studies use.
DALITZ_MODE = "Bp_KKpi"

_D0_KPIPI0 = Decay("D0", ("K-", "pi+", "pi0"))
_D0_K3PI = Decay("D0", ("K-", "pi+", "pi+", "pi-"))
_DP_KPIPI = Decay("D+", ("K-", "pi+", "pi+"))
_DS_KKPI = Decay("Ds+", ("K+", "K-", "pi+"))
_LC_PKPI = Decay("Lc+", ("p+", "K-", "pi+"))

#: Generic b-hadron decays of minimum-bias events, equally likely.
B_GENERIC: tuple[Decay, ...] = (
    Decay("B0", (Decay("D-", ("K+", "pi-", "pi-")), "pi+")),
    Decay("B+", (_D0_KPI, "pi+")),
    Decay("B+", (_D0_KPIPI0, "pi+")),
    Decay("B+", (_D0_KPI, "pi+", "pi0")),
    Decay("B0", (_D0_KPI, "pi+", "pi-")),
    Decay("B+", (_D0_K3PI, "pi+")),
    Decay("B0", (Decay("D-", ("K+", "pi-", "pi-")), "mu+", "nu")),
    Decay("B+", (_D0_KPIPI0, "mu+", "nu")),
    Decay("B+", (_D0_KPI, "mu+", "nu")),
    Decay("Bs", (Decay("Ds-", ("K+", "K-", "pi-")), "pi+")),
    Decay("Bs", (Decay("Ds-", ("K+", "K-", "pi-")), "mu+", "nu")),
    Decay("Lb", (_LC_PKPI, "pi-")),
    Decay("Lb", (_LC_PKPI, "mu-", "nu")),
    Decay("B0", ("K+", "pi-", "pi0")),
)

#: Prompt charm decays of minimum-bias events and their relative weights.
CHARM_GENERIC: tuple[tuple[Decay, float], ...] = (
    (_D0_KPI, 0.15),
    (_D0_KPIPI0, 0.25),
    (_D0_K3PI, 0.15),
    (_DP_KPIPI, 0.15),
    (Decay("D+", ("K-", "pi+", "pi+", "pi0")), 0.10),
    (_DS_KKPI, 0.10),
    (_LC_PKPI, 0.10),
)


def mode_names(*, held_out: bool | None = None) -> list[str]:
    """Names of the signal modes, all or only those (not) held out, in a fixed order."""
    return [n for n, m in MODES.items() if held_out is None or m.held_out == held_out]


def mode_id(name: str) -> int:
    """The integer stored in the ``mode`` event field for a mode name."""
    return list(MODES).index(name)
