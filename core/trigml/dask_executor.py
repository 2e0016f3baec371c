"""The ``dask`` executor: a run's chunks processed on a ``dask.distributed`` cluster.

The source is planned as chunks on the client (:meth:`Source.chunks`); each chunk is
one task that reads it and processes it on a worker (:func:`trigml.runtime.run_chunk`),
and the results come back to the client to be merged in input order. The menu, without
its sinks, is sent to every worker once; each worker loads the lines' models lazily on
first use and keeps them for its later chunks. Dask is imported only when a run uses
this executor (``pip install 'trigml[dask]'``).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections import deque
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import Field

from trigml.components import ChunkRef
from trigml.errors import RunFailure, UsageError
from trigml.runtime import (
    FATAL_ERRORS,
    BatchResult,
    ChunkFailure,
    Executor,
    ExecutorParams,
    Menu,
    describe_error,
    plan_chunks,
    run_chunk,
)

__all__ = ["DaskExecutor", "DaskExecutorParams"]

log = logging.getLogger(__name__)

_INSTALL_HINT = "install the optional dependencies: pip install 'trigml[dask]'"


class DaskExecutorParams(ExecutorParams):
    """Parameters of the Dask executor.

    Attributes
    ----------
    address : str, optional
        Address of a running scheduler (``tcp://10.0.0.5:8786``). Without one, the
        run starts a local cluster listening on 127.0.0.1 only, and stops it at the
        end.
    n_workers : int
        Worker processes of the local cluster.
    threads_per_worker : int
        Threads per worker of the local cluster; one thread per process suits the
        backends best.
    max_in_flight : int, optional
        Chunks handed to the cluster ahead of the oldest one not yet merged, which
        bounds the results waiting in memory; twice the cluster's threads by default.
    connect_timeout_s : float
        Time allowed to reach the scheduler, in seconds.
    """

    address: str | None = None
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    max_in_flight: int | None = Field(None, ge=1)
    connect_timeout_s: float = Field(30.0, gt=0)


class DaskExecutor(Executor):
    """Runs chunks as ``dask.distributed`` tasks and yields their results in order.

    A chunk whose task raises, or whose worker dies while running it, is submitted
    again up to ``retries`` times; the reasons are recorded with its result. On the
    local cluster the scheduler gives up on a task at the first worker death
    (``allowed_failures=0``), so that every death reaches this executor and the run
    report; a remote scheduler follows its own ``distributed.scheduler.
    allowed-failures`` setting and re-runs such tasks itself.

    Parameters
    ----------
    params : DaskExecutorParams, optional
    """

    name = "dask"

    def __init__(self, params: DaskExecutorParams | None = None) -> None:
        self.params = params or DaskExecutorParams()
        self.retries = self.params.retries
        self.on_failure = self.params.on_failure

    def map(
        self,
        menu: Menu,
        *,
        chunks: list[ChunkRef] | None = None,
        skip: Collection[int] = (),
    ) -> Iterator[BatchResult | ChunkFailure]:
        refs = chunks if chunks is not None else plan_chunks(menu)
        if refs is None:
            menu.source.chunks(menu.columns())  # raises the source's own error
            raise UsageError(f"the source {menu.source.describe()} cannot be split")
        menu.source.close()  # planning may leave a file open here; workers read
        done = set(skip)
        todo = [ref for ref in refs if ref.index not in done]
        if not todo:
            return
        with self._client() as client:
            shipped = dataclasses.replace(menu, sinks=[])
            yield from _Stream(self, client, shipped, todo).run()

    @contextmanager
    def _client(self) -> Iterator[Any]:
        """A client of the configured scheduler, or of a new local cluster."""
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise UsageError(
                f"the dask executor needs dask.distributed ({exc})", hint=_INSTALL_HINT
            ) from exc
        _quiet_distributed()
        p = self.params
        if p.address:
            try:
                client = Client(p.address, timeout=p.connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                raise RunFailure(
                    f"cannot reach the Dask scheduler at {p.address} ({exc})",
                    hint="start it with 'dask scheduler' and its workers with "
                    "'dask worker ADDRESS', or leave 'address' out for a local cluster",
                ) from exc
            with client:
                yield client
            return
        log.info("starting a local Dask cluster: %d worker(s)", p.n_workers)
        cluster = LocalCluster(
            n_workers=p.n_workers,
            threads_per_worker=p.threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # no dashboard; the scheduler's small HTTP endpoint on any free port
            scheduler_kwargs={
                "allowed_failures": 0,
                "dashboard": False,
                "dashboard_address": "127.0.0.1:0",
            },
        )
        with cluster, Client(cluster) as client:
            yield client


def _quiet_distributed() -> None:
    """Keep distributed's progress messages out of the run's log unless debugging.

    Importing distributed sets its loggers to INFO; they are raised to WARNING
    unless the root logger shows DEBUG messages.
    """
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    for name in ("distributed", "distributed.scheduler", "distributed.nanny"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


class _Stream:
    """Submits chunks within a window, retries failures, yields results in order."""

    def __init__(
        self, executor: DaskExecutor, client: Any, menu: Menu, todo: list[ChunkRef]
    ) -> None:
        from distributed import as_completed

        self.executor = executor
        self.client = client
        self.menu = menu
        self.todo = todo
        self.token = uuid.uuid4().hex[:8]
        self.menu_future = self._scatter()
        threads = sum(client.nthreads().values()) or 1
        self.window = executor.params.max_in_flight or max(2, 2 * threads)
        self.running: dict[Any, ChunkRef] = {}
        self.reasons: dict[int, list[str]] = {}
        self.ready: dict[int, BatchResult | ChunkFailure] = {}
        self.completed = as_completed()

    def _scatter(self) -> Any:
        try:
            return self.client.scatter(self.menu, broadcast=True, hash=False)
        except (TypeError, AttributeError, ImportError) as exc:
            cause: BaseException = exc
            while cause.__cause__ is not None or cause.__context__ is not None:
                cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
            raise RunFailure(
                "the menu cannot be sent to the Dask workers "
                f"({describe_error(cause)[:300]})",
                hint="a source, algorithm or backend holds something that cannot "
                "travel to another process (an open file or session); it must load "
                "such things lazily, as lines load their models",
            ) from exc

    def _submit(self, ref: ChunkRef) -> None:
        attempt = len(self.reasons.get(ref.index, []))
        future = self.client.submit(
            run_chunk,
            self.menu_future,
            ref,
            key=f"trigml-chunk-{ref.index}-{attempt}-{self.token}",
        )
        self.running[future] = ref
        self.completed.add(future)

    def run(self) -> Iterator[BatchResult | ChunkFailure]:
        # TODO(dask-merge): every result comes back to this process to be merged and
        # written in order, which bounds the run's rate whatever the cluster's size;
        # workers could write their own decisions files and send back only counts.
        waiting = deque(self.todo)
        merged = 0
        submitted = 0
        while merged < len(self.todo):
            while waiting and submitted - merged < self.window:
                self._submit(waiting.popleft())
                submitted += 1
            future = next(self.completed)
            ref = self.running.pop(future)
            self._settle(future, ref)
            while merged < len(self.todo) and self.todo[merged].index in self.ready:
                yield self.ready.pop(self.todo[merged].index)
                merged += 1

    def _settle(self, future: Any, ref: ChunkRef) -> None:
        """Record a finished task's result, or retry or give up on its chunk."""
        reasons = self.reasons.setdefault(ref.index, [])
        if future.status == "finished":
            result: BatchResult = future.result()
            result.retries = list(reasons)
            self.ready[ref.index] = result
            return
        reason = self._failure_reason(future)
        reasons.append(reason)
        if len(reasons) > self.executor.retries:
            log.warning("%s failed %d times: %s", ref.origin, len(reasons), reason)
            self.ready[ref.index] = ChunkFailure.of(ref, reasons)
            return
        log.warning("%s failed, trying again: %s", ref.origin, reason)
        if self.menu_future.status != "finished":
            # every worker holding the menu is gone: send it again
            self.menu_future = self._scatter()
        self._submit(ref)

    @staticmethod
    def _failure_reason(future: Any) -> str:
        from distributed.scheduler import KilledWorker

        if future.status == "cancelled":
            return "the task was cancelled by the scheduler (lost or restarted)"
        exc = future.exception()
        if isinstance(exc, FATAL_ERRORS):
            raise exc
        if isinstance(exc, KilledWorker):
            return f"the worker running it died ({describe_error(exc)})"
        return describe_error(exc)
