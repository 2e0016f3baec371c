"""Hook specifications: how a plugin adds components to trigml.

Every hook follows the registration-callback pattern. trigml calls the hook once per
plugin, at discovery, and passes a ``register`` callable; the plugin calls it once per
component it provides. Hook implementations take exactly the argument named in the
specification and return nothing. The registered names are what users type in
configurations, so choose them as ``<experiment or family>.<name>`` (``lhcb.topo``,
``cpu.onnxruntime``) and keep them stable.

``register`` takes::

    register(name, factory, params=NoParams, description="")

``factory`` is called with an instance of ``params`` (a :class:`trigml.registry.Params`
subclass) and returns the component. Duplicate names are refused at discovery, naming
both distributions.

The hooks are grouped by the layer they feed: data (sources, sinks), models (algorithms,
model families, backends), and evaluation (metrics, demos).
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["HOOK_NAMES", "hookimpl", "hookspec"]

PROJECT = "trigml"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- data ----------------------------------------------------------------------------


@hookspec
def trigml_register_sources(register: Any) -> None:
    """Register event sources.

    Called once at discovery. A source factory returns an object following
    :class:`trigml.components.Source`: it yields :class:`trigml.components.Batch`
    objects of validated, columnar events. Built-in: ``root``, ``memory``, ``toy``.

    Parameters
    ----------
    register : callable
        ``register(name, factory, params=NoParams, description="")``.
    """


@hookspec
def trigml_register_sinks(register: Any) -> None:
    """Register decision sinks.

    Called once at discovery. A sink factory returns an object following
    :class:`trigml.components.Sink`, which receives one table of decisions per batch
    and writes it somewhere. Built-in: ``root`` (TTree ``decisions``) and ``memory``.

    Parameters
    ----------
    register : callable
        ``register(name, factory, params=NoParams, description="")``.
    """


@hookspec
def trigml_register_executors(register: Any) -> None:
    """Register executors, which drive a pipeline over a source's batches.

    Called once at discovery. An executor factory returns a
    :class:`trigml.runtime.Executor`. Built-in: ``local`` (one process, batches in
    order) and ``dask`` (chunks on a ``dask.distributed`` cluster).

    Parameters
    ----------
    register : callable
        ``register(name, factory, params=NoParams, description="")``.
    """


# -- models --------------------------------------------------------------------------


@hookspec
def trigml_register_algorithms(register: Any) -> None:
    """Register trigger or calibration algorithms.

    Called once at discovery. An algorithm factory returns a
    :class:`trigml.components.Algorithm`: it declares the event schema it reads, turns
    events into candidates with a feature matrix, makes labelled training sets, and
    turns candidate scores into event decisions. Built-in: ``cuts``.

    Parameters
    ----------
    register : callable
        ``register(name, factory, params=NoParams, description="")``.
    """


@hookspec
def trigml_register_model_families(register: Any) -> None:
    """Register model families (the things that train models).

    Called once at discovery. A family factory returns a
    :class:`trigml.components.ModelFamily`, which fits a model on a training set and
    saves it into an artifact directory in open formats (ONNX always). Built-in:
    ``cuts``.

    Parameters
    ----------
    register : callable
        ``register(name, factory, params=NoParams, description="")``.
    """


@hookspec
def trigml_register_backends(register: Any) -> None:
    """Register inference backends.

    Called once at discovery. A backend factory returns a
    :class:`trigml.components.Backend`, which loads a verified artifact into a scorer
    and may export it into a deployable form with a consistency report. Built-in:
    ``cpu.cuts``.

    Parameters
    ----------
    register : callable
        ``register(name, factory, params=NoParams, description="")``.
    """


# -- evaluation ----------------------------------------------------------------------


@hookspec
def trigml_register_metrics(register: Any) -> None:
    """Register named metrics for reports.

    Called once at discovery. A metric factory returns a callable
    ``metric(scores, labels, weights) -> dict[str, float]``. Built-in: ``auc``,
    ``efficiency``, ``agreement``.

    Parameters
    ----------
    register : callable
        ``register(name, factory, params=NoParams, description="")``.
    """


@hookspec
def trigml_register_demos(register: Any) -> None:
    """Register demos for ``trigml demo``.

    Called once at discovery. A demo factory returns a callable
    ``demo(out_dir: Path, console) -> int`` running a complete job (generate, train,
    export, run a menu) and returning an exit code. The demo named ``default`` runs
    when the user gives no name.

    Parameters
    ----------
    register : callable
        ``register(name, factory, params=NoParams, description="")``.
    """


HOOK_NAMES: dict[str, str] = {
    "trigml_register_sources": "source",
    "trigml_register_sinks": "sink",
    "trigml_register_executors": "executor",
    "trigml_register_algorithms": "algorithm",
    "trigml_register_model_families": "family",
    "trigml_register_backends": "backend",
    "trigml_register_metrics": "metric",
    "trigml_register_demos": "demo",
}
