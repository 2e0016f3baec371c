"""The run report written as ``report.json`` by ``trigml run``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ChunkReport", "LineReport", "RunReport", "TimingReport"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimingReport(_Strict):
    """Throughput and per-event latency of one stage, from per-batch timing."""

    seconds: float = 0.0
    events_per_second: float = 0.0
    latency_p50_us: float = 0.0
    latency_p99_us: float = 0.0


class LineReport(_Strict):
    """Outcome of one trigger line over the whole input."""

    name: str
    algorithm: str
    model: str
    backend: str
    threshold: float
    working_point: str = ""
    n_decided: int = 0
    n_accepted: int = 0
    n_candidates: int = 0
    efficiency: float = 0.0
    rate_hz: float | None = None
    timing: TimingReport = Field(default_factory=TimingReport)
    metrics: dict[str, Any] = Field(default_factory=dict)


class ChunkReport(_Strict):
    """A chunk of the input that failed at least once.

    ``outcome`` is ``retried`` when a later attempt worked, ``rejected`` when every
    attempt failed and its events were counted as rejected (``on_failure: reject``),
    and ``failed`` when every attempt failed and the run failed with it.
    """

    chunk: int = Field(description="Sequence number of the chunk in the input.")
    origin: str = Field("", description="File, tree and entry range of the chunk.")
    start: int = Field(0, description="Index of its first event in the whole input.")
    n_events: int = 0
    attempts: int = Field(1, description="Attempts made, the last one included.")
    reasons: list[str] = Field(
        default_factory=list, description="Why each failed attempt failed, in order."
    )
    outcome: Literal["retried", "rejected", "failed"]


class RunReport(_Strict):
    """Everything a run did, and where every input event ended.

    ``n_input == n_decided + sum(rejected.values())`` always holds; a run whose
    accounting does not balance fails instead of writing a report.
    """

    trigml_version: str
    config_file: str = ""
    source: str = ""
    executor: str = "local"
    n_input: int = 0
    n_decided: int = 0
    n_accepted_any: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    n_batches: int = 0
    input_rate_hz: float | None = None
    lines: list[LineReport] = Field(default_factory=list)
    timing: dict[str, TimingReport] = Field(default_factory=dict)
    outputs: list[str] = Field(default_factory=list)
    plugins: dict[str, str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    retried_chunks: list[ChunkReport] = Field(
        default_factory=list,
        description="Chunks that failed, then worked when tried again.",
    )
    failed_chunks: list[ChunkReport] = Field(
        default_factory=list,
        description="Chunks that failed on every attempt; their events are rejected "
        "with the reason 'chunk failed: ...'.",
    )
    resumed_chunks: int = Field(
        0, description="Chunks whose results came from an earlier, interrupted attempt."
    )
