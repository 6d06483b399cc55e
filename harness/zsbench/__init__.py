"""zsbench: a benchmark harness for zero-shot skeleton-based action recognition.

Public API for plugin authors: ``hookimpl`` and the spec classes. Importing this package
never imports torch.
"""
from __future__ import annotations

import pluggy

from .api import (ClassSplit, ClassTexts, Fold, LeakageError, Method, RunContext, Sequences,
                  SkeletonDataset, TestView, TrainView, ZsbenchError)
from .specs import (DatasetSpec, EmptyConfig, MethodSpec, PluginConfig, ProtocolSpec,
                    SkeletonEncoderSpec, TextEncoderSpec, TextSourceSpec)

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("zsbench")

__all__ = [
    "__version__", "hookimpl", "ClassSplit", "ClassTexts", "Fold", "LeakageError", "Method",
    "RunContext", "Sequences", "SkeletonDataset", "TestView", "TrainView", "ZsbenchError", "DatasetSpec",
    "EmptyConfig", "MethodSpec", "PluginConfig", "ProtocolSpec", "SkeletonEncoderSpec",
    "TextEncoderSpec", "TextSourceSpec",
]
