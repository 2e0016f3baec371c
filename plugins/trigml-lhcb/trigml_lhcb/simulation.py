"""Built-in LHCb-like event generator for the topological trigger and ghost studies.

:func:`simulate_topo` makes events with primary vertices, prompt tracks, b-hadron signal
decays, prompt charm, b hadrons of minimum bias and ghosts, reconstructs tracks with the
VELO impact-parameter resolution and builds secondary-vertex candidates.
:func:`trigml_lhcb.ghostsim.simulate_ghost` makes tracks with the features of the
ghost classifier. :class:`LHCbSimSource` streams either as batches and
:func:`generate` writes them to ROOT files. Everything is vectorised over a batch and
seeded, so a (seed, batch size) pair always gives the same events.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import awkward as ak
import numpy as np
from pydantic import Field

from trigml.components import Batch, ChunkRef, Source
from trigml.errors import ConfigError, DataError
from trigml.registry import Params
from trigml_lhcb.decays import ChainDecays, FinalState, decay_chain
from trigml_lhcb.detector import (
    Conditions,
    PrimaryVertices,
    Tracks,
    heavy_hadrons,
    make_ghosts,
    make_primary_vertices,
    measure_tracks,
    prompt_particles,
    reconstructible,
    track_impact_parameters,
)
from trigml_lhcb.kinematics import invariant_mass_sq
from trigml_lhcb.modes import B_GENERIC, CHARM_GENERIC, MODES, mode_id
from trigml_lhcb.vertexing import SVCuts, build_secondary_vertices

__all__ = [
    "EVENT_TYPES",
    "Kind",
    "LHCbSimParams",
    "LHCbSimSource",
    "generate",
    "simulate_topo",
]

log = logging.getLogger(__name__)

Kind = Literal["signal-mix", "signal", "minbias", "ghost"]

#: Values of the ``event_type`` field.
EVENT_TYPES = {"minbias": 0, "signal": 1}

# Track categories (truth): 0 prompt, 1 signal b, 2 other b, 3 charm, 5 ghost;
# candidates whose tracks mix a heavy-hadron decay with anything else are 4.
_SIGNAL_B, _OTHER_B, _CHARM = 1, 2, 3


def _check_modes(modes: Sequence[str]) -> list[str]:
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(
            f"unknown LHCb signal mode(s) {unknown}",
            key="source.modes",
            hint=f"valid modes: {', '.join(MODES)}",
        )
    if not modes:
        raise ConfigError("no signal modes given", key="source.modes")
    return list(modes)


def simulate_topo(
    n_events: int,
    rng: np.random.Generator,
    *,
    kind: Literal["signal-mix", "signal", "minbias"] = "signal-mix",
    modes: Sequence[str] | None = None,
    minbias_fraction: float = 0.5,
    conditions: Conditions | None = None,
    cuts: SVCuts | None = None,
    first_event: int = 0,
) -> ak.Array:
    """Generate events for the topological trigger.

    Parameters
    ----------
    n_events : int
    rng : numpy Generator
    kind : {"signal-mix", "signal", "minbias"}
        ``signal`` gives one b-hadron signal decay per event, in equal shares of
        ``modes``; ``minbias`` gives inelastic collisions only (with their natural b
        and charm content); ``signal-mix`` mixes both, a fraction ``minbias_fraction``
        of minimum bias.
    modes : sequence of str, optional
        Signal modes (keys of :data:`trigml_lhcb.modes.MODES`); all by default.
    minbias_fraction : float
        Share of minimum-bias events for ``signal-mix``.
    conditions : Conditions, optional
    cuts : SVCuts, optional
        Candidate track selection and preselection.
    first_event : int
        Global number of the first event, stored in ``event_id``.

    Returns
    -------
    ak.Array
        One record per event; see ``docs/algorithms/lhcb.md`` for the fields.
    """
    cond = conditions or Conditions()
    cuts = cuts or SVCuts()
    names = _check_modes(list(modes) if modes is not None else list(MODES))

    # Event types and signal modes.
    if kind == "minbias":
        is_signal = np.zeros(n_events, dtype=bool)
    elif kind == "signal":
        is_signal = np.ones(n_events, dtype=bool)
    else:
        is_signal = rng.random(n_events) >= minbias_fraction
    mode = np.full(n_events, -1, dtype=np.int16)
    ids = np.array([mode_id(m) for m in names], dtype=np.int16)
    mode[is_signal] = ids[rng.integers(0, len(names), int(is_signal.sum()))]

    pvs = make_primary_vertices(rng, n_events, cond)
    parts = [prompt_particles(rng, pvs)]
    truth = _empty_truth(n_events)
    next_id = 0

    # Signal b hadrons, produced at each signal event's first primary vertex.
    for name in names:
        evs = np.flatnonzero(mode == mode_id(name))
        if len(evs) == 0:
            continue
        sig = MODES[name]
        p4 = heavy_hadrons(rng, len(evs), sig.chain.mass, cond.b_pt_mean)
        anc = next_id + np.arange(len(evs))
        next_id += len(evs)
        dec = decay_chain(
            rng,
            sig.chain,
            p4,
            pvs.true[pvs.first[evs]],
            evs,
            category=_SIGNAL_B,
            ancestor=anc,
        )
        _fill_signal_truth(truth, evs, p4, dec, sig.dalitz)
        parts.append(dec.particles)

    # b and charm hadrons of the underlying collisions.
    b_parts, n_b, next_id = _heavy_from_pvs(
        rng,
        pvs,
        cond.b_per_pv,
        [(c, 1.0) for c in B_GENERIC],
        cond.b_pt_mean,
        _OTHER_B,
        next_id,
    )
    c_parts, n_c, next_id = _heavy_from_pvs(
        rng,
        pvs,
        cond.charm_per_pv,
        list(CHARM_GENERIC),
        cond.charm_pt_mean,
        _CHARM,
        next_id,
    )
    parts += b_parts + c_parts

    # Reconstruction: acceptance and efficiency, ghosts, measurement.
    everything = FinalState.concat(parts)
    found = reconstructible(rng, everything, cond)
    real = _take(everything, found)
    n_real = np.bincount(real.event, minlength=n_events)
    ghosts = make_ghosts(rng, n_real, pvs, cond)
    recon = FinalState.concat([real, ghosts])
    order = np.lexsort((rng.random(len(recon)), recon.event))
    tracks = measure_tracks(rng, _take(recon, order), cond)

    pv_pos, pv_sig = pvs.padded()
    track_impact_parameters(tracks, pv_pos, pv_sig, pvs.count)
    svs = build_secondary_vertices(
        tracks, n_events, pv_pos, pv_sig, cuts, pv_count=pvs.count
    )

    n_sig_found = np.bincount(
        tracks.event[tracks.category == _SIGNAL_B], minlength=n_events
    )
    n_sig_needed = np.zeros(n_events, dtype=np.int64)
    for name in names:
        n_sig_needed[mode == mode_id(name)] = MODES[name].n_charged
    truth["signal_reco"] = is_signal & (n_sig_found == n_sig_needed)
    truth["n_b"] = n_b + is_signal
    truth["n_charm"] = n_c

    return _topo_array(n_events, first_event, is_signal, mode, pvs, truth, tracks, svs)


def _empty_truth(n_events: int) -> dict[str, np.ndarray]:
    return {
        "b_pt": np.full(n_events, -1.0),
        "b_eta": np.full(n_events, -1.0),
        "b_decay_time": np.full(n_events, -1.0),
        "b_flight": np.full(n_events, -1.0),
        "dalitz_m12sq": np.full(n_events, -1.0),
        "dalitz_m23sq": np.full(n_events, -1.0),
    }


def _fill_signal_truth(
    truth: dict[str, np.ndarray],
    evs: np.ndarray,
    p4: np.ndarray,
    dec: ChainDecays,
    dalitz: bool,
) -> None:
    pt = np.hypot(p4[:, 0], p4[:, 1])
    truth["b_pt"][evs] = pt
    truth["b_eta"][evs] = np.arcsinh(p4[:, 2] / pt)
    truth["b_decay_time"][evs] = dec.decay_time
    truth["b_flight"][evs] = dec.flight
    if dalitz:
        d = dec.head_daughters
        truth["dalitz_m12sq"][evs] = invariant_mass_sq(d[:, 0], d[:, 1])
        truth["dalitz_m23sq"][evs] = invariant_mass_sq(d[:, 1], d[:, 2])


def _heavy_from_pvs(
    rng: np.random.Generator,
    pvs: PrimaryVertices,
    probability: float,
    chains: list,
    pt_mean: float,
    category: int,
    next_id: int,
) -> tuple[list[FinalState], np.ndarray, int]:
    """Heavy hadrons made by collisions with ``probability`` each, decayed by chains."""
    n_events = len(pvs.count)
    made = np.flatnonzero(rng.random(len(pvs.event)) < probability)
    weights = np.array([w for _, w in chains], dtype=np.float64)
    which = rng.choice(len(chains), size=len(made), p=weights / weights.sum())
    out: list[FinalState] = []
    for i, (chain, _) in enumerate(chains):
        pv = made[which == i]
        if len(pv) == 0:
            continue
        p4 = heavy_hadrons(rng, len(pv), chain.mass, pt_mean)
        anc = next_id + np.arange(len(pv))
        next_id += len(pv)
        dec = decay_chain(
            rng, chain, p4, pvs.true[pv], pvs.event[pv], category=category, ancestor=anc
        )
        out.append(dec.particles)
    count = np.bincount(pvs.event[made], minlength=n_events)
    return out, count, next_id


def _take(parts: FinalState, rows: np.ndarray) -> FinalState:
    return FinalState(
        parts.event[rows],
        parts.p3[rows],
        parts.mass[rows],
        parts.charge[rows],
        parts.origin[rows],
        parts.category[rows],
        parts.ancestor[rows],
    )


def _jagged(columns: dict[str, np.ndarray], counts: np.ndarray) -> ak.Array:
    """A jagged array of records from flat, event-sorted columns."""
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    record = ak.contents.RecordArray(
        [ak.contents.NumpyArray(v) for v in columns.values()], list(columns)
    )
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), record))


def _topo_array(
    n_events: int,
    first_event: int,
    is_signal: np.ndarray,
    mode: np.ndarray,
    pvs: PrimaryVertices,
    truth: dict[str, np.ndarray],
    tracks: Tracks,
    svs: dict[str, np.ndarray],
) -> ak.Array:
    f32 = np.float32
    track_cols = {
        "pt": tracks.pt.astype(f32),
        "eta": tracks.eta.astype(f32),
        "phi": tracks.phi.astype(f32),
        "charge": tracks.charge.astype(np.int8),
        "ip": tracks.ip.astype(f32),
        "ipchi2": tracks.ipchi2.astype(f32),
        "chi2ndof": tracks.chi2ndof.astype(f32),
        "ndof": tracks.ndof.astype(np.int16),
        "origin": tracks.category.astype(np.int8),
        "is_ghost": tracks.category == 5,
        "from_signal": tracks.category == _SIGNAL_B,
    }
    sv_cols = {
        k: (v.astype(f32) if v.dtype == np.float64 else v)
        for k, v in svs.items()
        if k != "event"
    }
    fields = {
        "event_id": np.arange(first_event, first_event + n_events, dtype=np.int64),
        "event_type": is_signal.astype(np.int8),
        "mode": mode,
        "is_signal": is_signal,
        "signal_reco": truth.pop("signal_reco"),
        "nPV": pvs.count.astype(np.int32),
        "n_b": truth.pop("n_b").astype(np.int16),
        "n_charm": truth.pop("n_charm").astype(np.int16),
    }
    fields.update({k: v.astype(f32) for k, v in truth.items()})
    contents = [ak.contents.NumpyArray(v) for v in fields.values()]
    names = list(fields)
    for name, cols, counts in (
        ("tracks", track_cols, np.bincount(tracks.event, minlength=n_events)),
        ("svs", sv_cols, np.bincount(svs["event"], minlength=n_events)),
    ):
        contents.append(_jagged(cols, counts).layout)
        names.append(name)
    return ak.Array(ak.contents.RecordArray(contents, names, length=n_events))


class LHCbSimParams(Params):
    """Parameters of the ``lhcb.sim`` source (see :class:`LHCbSimSource`)."""

    n_events: int = Field(100_000, ge=1, description="Events in total.")
    seed: int = Field(1, description="Seed of the whole stream.")
    batch_size: int = Field(20_000, ge=1, description="Events per batch.")
    kind: Kind = Field("signal-mix", description="signal-mix, signal, minbias, ghost.")
    modes: list[str] | None = Field(None, description="Signal modes (all by default).")
    minbias_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Minimum-bias share of 'signal-mix'."
    )
    pv_mean: float | None = Field(
        None, gt=0, description="Mean number of primary vertices."
    )


class LHCbSimSource(Source):
    """Streams simulated LHCb events in batches.

    Parameters
    ----------
    n_events : int
        Events in total.
    seed : int
        Batch ``i`` is generated from the seed sequence ``(seed, i)``, so a given seed
        and batch size always give the same events, in any process.
    batch_size : int
    kind : {"signal-mix", "signal", "minbias", "ghost"}
    modes : sequence of str, optional
        Signal modes; all by default.
    minbias_fraction : float
        Share of minimum-bias events in ``signal-mix``.
    pv_mean : float, optional
        Mean number of primary vertices; the default conditions otherwise (1.7 for
        the topological simulation, 5.6 for the ghost simulation).
    """

    def __init__(
        self,
        n_events: int = 100_000,
        seed: int = 1,
        batch_size: int = 20_000,
        kind: Kind = "signal-mix",
        modes: Sequence[str] | None = None,
        minbias_fraction: float = 0.5,
        pv_mean: float | None = None,
    ) -> None:
        if n_events < 1 or batch_size < 1:
            raise ConfigError(
                f"n_events ({n_events}) and batch_size ({batch_size}) must be ≥ 1",
                key="source",
            )
        if not 0.0 <= minbias_fraction <= 1.0:
            raise ConfigError(
                f"minbias_fraction {minbias_fraction} is not in [0, 1]",
                key="source.minbias_fraction",
            )
        if kind not in ("signal-mix", "signal", "minbias", "ghost"):
            raise ConfigError(
                f"unknown simulation kind '{kind}'",
                key="source.kind",
                hint="use one of: signal-mix, signal, minbias, ghost",
            )
        self.n_events = n_events
        self.seed = seed
        self.batch_size = batch_size
        self.kind = kind
        self.modes = _check_modes(list(modes) if modes is not None else list(MODES))
        self.minbias_fraction = minbias_fraction
        self.pv_mean = pv_mean

    @classmethod
    def from_params(cls, params: LHCbSimParams) -> LHCbSimSource:
        """Build the source from validated configuration parameters."""
        return cls(**params.model_dump())

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Batch]:
        """Yield the events in batches of ``batch_size`` (the last one shorter)."""
        for ref in self.chunks(columns):
            yield self.read_chunk(ref, columns)

    def chunks(self, columns: Sequence[str] | None = None) -> list[ChunkRef]:
        """One chunk per batch; each is generated on its own from ``(seed, index)``."""
        refs = []
        for index, start in enumerate(range(0, self.n_events, self.batch_size)):
            stop = min(start + self.batch_size, self.n_events)
            refs.append(
                ChunkRef(
                    index=index,
                    start=start,
                    n=stop - start,
                    entry_start=start,
                    entry_stop=stop,
                    origin=f"lhcb.sim[{start}:{stop}]",
                )
            )
        return refs

    def read_chunk(self, ref: ChunkRef, columns: Sequence[str] | None = None) -> Batch:
        """Generate the events of one chunk."""
        rng = np.random.default_rng([self.seed, ref.index])
        events = self._generate(ref.n, rng, ref.start)
        if columns is not None:
            events = _select_columns(events, columns)
        return Batch(events, ref.start, origin=ref.origin, chunk=ref.index)

    def _generate(self, n: int, rng: np.random.Generator, start: int) -> ak.Array:
        if self.kind == "ghost":
            from trigml_lhcb.ghostsim import GhostConditions, simulate_ghost

            ghost_cond = (
                GhostConditions(pv_mean=self.pv_mean)
                if self.pv_mean is not None
                else GhostConditions()
            )
            return simulate_ghost(n, rng, conditions=ghost_cond, first_event=start)
        cond = Conditions(pv_mean=self.pv_mean) if self.pv_mean else Conditions()
        return simulate_topo(
            n,
            rng,
            kind=self.kind,
            modes=self.modes,
            minbias_fraction=self.minbias_fraction,
            conditions=cond,
            first_event=start,
        )

    def describe(self) -> str:
        """One line naming the generator settings."""
        pv = "" if self.pv_mean is None else f", pv_mean={self.pv_mean}"
        modes = "" if self.kind in ("minbias", "ghost") else f", modes={self.modes}"
        mix = (
            f", minbias_fraction={self.minbias_fraction}"
            if self.kind == "signal-mix"
            else ""
        )
        return (
            f"lhcb.sim(kind={self.kind}, n_events={self.n_events}, seed={self.seed}, "
            f"batch_size={self.batch_size}{modes}{mix}{pv})"
        )


def _select_columns(events: ak.Array, columns: Sequence[str]) -> ak.Array:
    """Keep only the named (dotted) fields, with their collections."""
    keep: dict[str, list[str] | None] = {}
    for dotted in columns:
        top, _, sub = dotted.partition(".")
        if top not in ak.fields(events):
            raise DataError(
                f"lhcb.sim has no field '{dotted}' "
                f"(has: {', '.join(ak.fields(events))})"
            )
        if not sub:
            keep[top] = None
        elif keep.get(top, []) is not None:
            keep.setdefault(top, []).append(sub)  # type: ignore[union-attr]
    out = {}
    for top, subs in keep.items():
        col = events[top]
        out[top] = col if subs is None else col[subs]
    return ak.zip(out, depth_limit=1)


def generate(
    path: str | Path,
    *,
    n_events: int,
    seed: int = 1,
    kind: Kind = "signal-mix",
    modes: Sequence[str] | None = None,
    minbias_fraction: float = 0.5,
    batch_size: int = 20_000,
    tree: str = "Events",
) -> Path:
    """Simulate events and write them to a ROOT file (TTree ``tree``).

    The file holds the same fields as the in-memory events, as flat and jagged
    branches, so that reading it back follows the same path as a user's own data.

    Parameters
    ----------
    path : str or Path
        Output ROOT file.
    n_events, seed, kind, modes, minbias_fraction, batch_size
        As for :class:`LHCbSimSource`.
    tree : str
        Name of the TTree.

    Returns
    -------
    Path
        The file written.
    """
    try:
        from trigml.io.root import write_events
    except ImportError as exc:
        raise DataError(
            f"cannot write {path}: the core's ROOT writer is unavailable ({exc})",
            hint="update trigml to a version with trigml.io.root",
        ) from None
    source = LHCbSimSource(
        n_events=n_events,
        seed=seed,
        batch_size=batch_size,
        kind=kind,
        modes=modes,
        minbias_fraction=minbias_fraction,
    )
    out = Path(path)
    log.info("writing %d %s events to %s", n_events, kind, out)
    write_events(out, (b.events for b in source.batches()), tree=tree)
    return out
