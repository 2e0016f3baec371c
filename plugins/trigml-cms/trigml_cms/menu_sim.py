"""A source for trigger menus that run both CMS algorithms on the same events.

Each event pairs one endcap muon track from the zero-bias-like sample of
:mod:`trigml_cms.emtf_sim` with one jet from :mod:`trigml_cms.btag_sim` in a QCD-like
flavour mix. The two are simulated independently; a menu reads the muon fields in its
EMTF lines and the jet fields in its b-tagging lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import awkward as ak
import numpy as np
from pydantic import Field

from trigml.components import Batch, Source
from trigml.registry import Params
from trigml_cms._stream import generate, project, stream
from trigml_cms.btag_sim import BtagSimParams, FlavourMix, simulate_btag
from trigml_cms.emtf_sim import Composition, EmtfSimParams, simulate_emtf

__all__ = ["MenuSimParams", "MenuSimSource"]


def _qcd_mix() -> FlavourMix:
    return FlavourMix(b=0.05, bb=0.01, c=0.09, light=0.85)


class MenuSimParams(Params):
    """Parameters of the ``cms.menu_sim`` source.

    Attributes
    ----------
    n_events, seed, batch_size : int
    muons : Composition
        Fractions of the zero-bias-like muon sample.
    jets : FlavourMix
        Jet flavour fractions (QCD-like by default: 85% light).
    """

    n_events: int = Field(200_000, gt=0)
    seed: int = 1
    batch_size: int = Field(100_000, gt=0)
    muons: Composition = Field(default_factory=Composition)
    jets: FlavourMix = Field(default_factory=_qcd_mix)


class MenuSimSource(Source):
    """The ``cms.menu_sim`` source: a muon track and a jet per event."""

    def __init__(self, params: MenuSimParams | None = None) -> None:
        self.params = params or MenuSimParams()
        self._muons = EmtfSimParams(spectrum="falling", composition=self.params.muons)
        self._jets = BtagSimParams(composition=self.params.jets)

    def _block(self, rng: np.random.Generator, n: int) -> ak.Array:
        mu_rng, jet_rng = rng.spawn(2)
        muons = simulate_emtf(mu_rng, n, self._muons)
        jets = simulate_btag(jet_rng, n, self._jets)
        fields = {k: muons[k] for k in ak.fields(muons)}
        fields.update({k: jets[k] for k in ak.fields(jets)})
        return ak.zip(fields, depth_limit=1)

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Batch]:
        p = self.params
        start = 0
        for chunk, events in enumerate(
            stream(p.n_events, p.seed, p.batch_size, self._block)
        ):
            origin = f"{self.describe()}[{start}:{start + len(events)}]"
            yield Batch(project(events, columns, origin), start, origin, chunk)
            start += len(events)

    def events(self) -> ak.Array:
        """The whole sample in one array."""
        return generate(self.params.n_events, self.params.seed, self._block)

    def describe(self) -> str:
        p = self.params
        return f"cms.menu_sim(n_events={p.n_events}, seed={p.seed})"
