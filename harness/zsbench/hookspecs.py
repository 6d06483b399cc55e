"""The zsbench plugin contract: every hook a plugin may implement.

This module is the plugin author's manual. A plugin is a module (or object) whose
functions are decorated with ``zsbench.hookimpl`` and whose name is registered under the
``zsbench`` entry-point group of its distribution::

    [project.entry-points.zsbench]
    mymethod = "zsbench_mymethod.plugin"

Call order during ``zsbench run``:

1. Registration hooks (``zsbench_datasets``, ``zsbench_protocols``,
   ``zsbench_skeleton_encoders``, ``zsbench_text_sources``, ``zsbench_text_encoders``,
   ``zsbench_methods``) are called once when the registry is built, in no guaranteed order.
   Each returns a list of *specs* (see ``zsbench.specs``); the core merges them into
   registries keyed by name. A duplicate name is an error naming both distributions. A hook
   that raises marks its plugin as broken (shown by ``zsbench plugins``); the others keep
   working.
2. ``zsbench_run_start(record)`` once, after config validation.
3. For each fold: ``zsbench_fold_end(record, fold)`` after the fold's metrics are computed.
4. ``zsbench_run_end(record)`` once, after ``result.json`` is written.

Every ``impl`` is called with its component's validated config instance (the pydantic
model named by ``spec.config``). Implementations may accept a subset of a hook's arguments
(pluggy "opt-in arguments"). An observer hook that raises marks its plugin broken; the run
goes on and writes its record.
Registration hooks must not import heavy modules (torch): specs reference their
implementation lazily as ``"package.module:Object"``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .specs import (DatasetSpec, MethodSpec, ProtocolSpec, SkeletonEncoderSpec,
                        TextEncoderSpec, TextSourceSpec)

PROJECT = "zsbench"
hookspec = pluggy.HookspecMarker(PROJECT)


# --------------------------------------------------------------------------------------
# Registration: return lists of specs. Called once per registry build.
# --------------------------------------------------------------------------------------
@hookspec
def zsbench_datasets() -> "list[DatasetSpec]":
    """Declare datasets.

    :return: a list of ``DatasetSpec``. ``impl`` names a ``zsbench.impls.DatasetLoader``
        ``(config, data_root) -> SkeletonDataset``; ``prepare`` (optional) names a callable
        used by ``zsbench data prepare``; ``family`` is what methods see as
        ``ctx.dataset.family``.
    """


@hookspec
def zsbench_protocols() -> "list[ProtocolSpec]":
    """Declare evaluation protocols.

    :return: a list of ``ProtocolSpec``. ``impl`` names a ``zsbench.impls.FoldBuilder``
        ``(spec, dataset, config) -> list[Fold]`` that turns the protocol's class splits and
        sample rules into folds for one dataset.
    """


@hookspec
def zsbench_skeleton_encoders() -> "list[SkeletonEncoderSpec]":
    """Declare skeleton encoders.

    :return: a list of ``SkeletonEncoderSpec``. ``impl`` names a
        ``zsbench.impls.EncoderFactory`` ``(config) -> torch.nn.Module`` mapping
        (N, C, T, V, M) to (N, D) (or a ``FeatureReader`` when ``precomputed``).
    """


@hookspec
def zsbench_text_sources() -> "list[TextSourceSpec]":
    """Declare text sources (class names, descriptions of some kind).

    :return: a list of ``TextSourceSpec``. ``impl`` names a ``zsbench.impls.TextSource``
        ``(config, dataset) -> dict[kind, list[list[str]]]`` (one list of strings per class,
        in the dataset's class order).
    """


@hookspec
def zsbench_text_encoders() -> "list[TextEncoderSpec]":
    """Declare text encoders.

    :return: a list of ``TextEncoderSpec``. ``impl`` names a class ``(config)`` following
        ``zsbench.impls.TextEncoder``: ``identity() -> str`` (used as the embedding-cache key) and
        ``encode(texts: list[str]) -> numpy.ndarray`` of shape (len(texts), D).
    """


@hookspec
def zsbench_methods() -> "list[MethodSpec]":
    """Declare methods (aligners).

    :return: a list of ``MethodSpec``. ``impl`` names a class ``(config)`` following
        ``zsbench.impls.MethodImpl``: ``fit(train: TrainView, ctx: RunContext)`` and
        ``score(test: TestView, candidates: ClassTexts, ctx) -> (N, K) array``; see
        ``zsbench.api.Method`` for the optional hooks (transductive step, own GZSL gate).
        ``config`` should subclass ``zsbench.specs.MethodConfig``: its ``needs()`` declares
        the text kinds and skeleton encoder when they depend on options. ``ctx.dataset``
        (``DatasetInfo``: name, family, num_classes, class_names) and ``ctx.protocol``
        describe the run.
    """


# --------------------------------------------------------------------------------------
# Observers: loggers and trackers. Return values are ignored.
# --------------------------------------------------------------------------------------
@hookspec
def zsbench_run_start(record: "dict[str, Any]") -> None:
    """Called once before the first fold with the (incomplete) result record."""


@hookspec
def zsbench_fold_end(record: "dict[str, Any]", fold: "dict[str, Any]") -> None:
    """Called after each fold with the record so far and the fold's entry."""


@hookspec
def zsbench_run_end(record: "dict[str, Any]") -> None:
    """Called once after ``result.json`` has been written."""
