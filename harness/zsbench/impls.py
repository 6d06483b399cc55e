"""What each spec's ``impl`` must be, as typed Protocols a type checker can use.

A spec names its implementation lazily (``"package.module:Object"``); the core calls it
with the component's *validated* config instance (the pydantic model named by
``spec.config``, never a dict or None). Annotate your implementation with these Protocols
(or just match the signatures) and mypy/pyright will check it::

    from zsbench.impls import MethodImpl
    impl: type[MethodImpl] = MyMethod

Nothing here imports torch; encoders return ``torch.nn.Module`` objects typed as ``Any``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .api import ClassTexts, Fold, RunContext, SkeletonDataset, TestView, TrainView
    from .specs import PluginConfig, ProtocolSpec

#: text kind -> one list of strings per class, in the dataset's class order
TextsByKind = dict[str, list[list[str]]]


class DatasetLoader(Protocol):
    """``DatasetSpec.impl``: load (or generate) the dataset."""

    def __call__(self, config: Any, data_root: Path | None, /) -> "SkeletonDataset": ...


class FoldBuilder(Protocol):
    """``ProtocolSpec.impl``: turn the protocol's class splits and sample rules into folds."""

    def __call__(self, spec: "ProtocolSpec", dataset: "SkeletonDataset", config: Any, /
                 ) -> "list[Fold]": ...


class EncoderFactory(Protocol):
    """``SkeletonEncoderSpec.impl``: a ``torch.nn.Module`` mapping (N, C, T, V, M) to (N, D)."""

    def __call__(self, config: Any, /) -> Any: ...


class FeatureReader(Protocol):
    """``SkeletonEncoderSpec.impl`` with ``precomputed=True``: features per sample set
    (``train``, ``test_seen``, ``test_unseen``), their labels when the files bring their own
    sample sets (else None: the fold's indices are used), and a description recorded with
    the fold (must include ``trained_on``, the classes the features' encoder saw)."""

    def __call__(self, config: Any, dataset: "SkeletonDataset", fold: "Fold", /
                 ) -> "tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray] | None, dict[str, Any]]": ...


class TextSource(Protocol):
    """``TextSourceSpec.impl``: the strings of every class, per text kind provided."""

    def __call__(self, config: Any, dataset: "SkeletonDataset", /) -> TextsByKind: ...


@runtime_checkable
class TextEncoder(Protocol):
    """``TextEncoderSpec.impl`` is a class ``(config)`` whose instances follow this."""

    def identity(self) -> str:
        """A string naming the model and every option that changes embeddings (the
        embedding-cache key)."""
        ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), D) float array."""
        ...


@runtime_checkable
class MethodImpl(Protocol):
    """``MethodSpec.impl`` is a class ``(config)`` whose instances follow this (base class:
    ``zsbench.api.Method``, which also defines the optional hooks ``transductive_step`` and
    ``gzsl_decide``)."""

    def fit(self, train: "TrainView", ctx: "RunContext") -> None: ...

    def score(self, test: "TestView", candidates: "ClassTexts", ctx: "RunContext") -> Any:
        """(N, K) scores, numpy or torch, higher = more likely; K = len(candidates)."""
        ...


__all__ = ["DatasetLoader", "EncoderFactory", "FeatureReader", "FoldBuilder", "MethodImpl",
           "TextEncoder", "TextSource", "TextsByKind"]

if TYPE_CHECKING:  # pragma: no cover - keeps the names used
    _unused: "PluginConfig"
