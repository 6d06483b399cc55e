"""Component specs: what a plugin returns from its registration hooks.

A spec is metadata plus a *lazy* reference to the implementation (``"pkg.module:Object"``)
and a pydantic config model whose defaults are the paper's settings. The core imports the
implementation only when a run needs it, so listing plugins never imports torch.
"""
from __future__ import annotations

import importlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PluginConfig(BaseModel):
    """Base for every plugin config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class EmptyConfig(PluginConfig):
    """Config for components that take no options."""


def load_object(ref: str) -> Any:
    """Import ``"pkg.module:Attr"`` (the attribute part may be dotted)."""
    if ":" not in ref:
        raise ValueError(f"implementation reference {ref!r} must look like 'package.module:Object'")
    mod_name, attr = ref.split(":", 1)
    obj: Any = importlib.import_module(mod_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Spec(BaseModel):
    """Common fields of every component spec."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    impl: str = Field(description="lazy implementation reference 'package.module:Object'")
    config: type[PluginConfig] = EmptyConfig
    description: str = ""
    # filled in by the core when the spec is registered
    plugin: str = ""
    distribution: str = ""

    def load(self) -> Any:
        return load_object(self.impl)


class DatasetSpec(Spec):
    """``impl`` is a callable ``(config, data_root: Path | None) -> SkeletonDataset``."""

    kind: Literal["dataset"] = "dataset"
    class_names_ref: str | None = Field(
        default=None, description="optional lazy reference to a list of class names")
    real: bool = Field(default=True, description="False for generated data (embedded benchmark)")
    prepare: str | None = Field(
        default=None, description="lazy reference to a callable used by `zsbench data prepare`: "
        "(name: str, raw: Path, out: Path, options: dict) -> Path")
    prepare_hint: str = ""
    run_defaults: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="defaults this dataset suggests per config section (e.g. the embedded "
        "benchmark sizes pretraining for a CPU); applied only to fields the chosen component "
        "has, under the user's own values, and recorded in the result")


class ProtocolSpec(Spec):
    """``impl`` is a callable ``(spec, dataset: SkeletonDataset, config) -> list[Fold]``."""

    kind: Literal["protocol"] = "protocol"
    family: str
    datasets: list[str] = Field(default_factory=list, description="real datasets it runs on")
    settings: list[Literal["zsl", "gzsl"]] = Field(default_factory=lambda: ["zsl", "gzsl"])
    aggregation: Literal["mean"] = "mean"
    default_dataset: str = "synthetic"
    sources: list[str] = Field(default_factory=list)


class SkeletonEncoderSpec(Spec):
    """``impl`` is a class/factory ``(config, num_classes) -> torch.nn.Module`` mapping
    (N, C, T, V, M) to (N, D) features; ``feature_dim`` is D for the default config."""

    kind: Literal["skeleton_encoder"] = "skeleton_encoder"
    feature_dim: int = 256
    precomputed: bool = Field(
        default=False, description="serves pre-extracted features: impl is then "
        "(config, dataset, fold) -> (features per set, labels per set or None, info)")


class TextSourceSpec(Spec):
    """``impl`` is a callable ``(config, dataset: SkeletonDataset) -> dict[text_kind,
    list[list[str]]]`` giving, per text kind it provides, the strings of every class."""

    kind: Literal["text_source"] = "text_source"
    text_kinds: list[str] = Field(default_factory=list)
    default_for: list[str] = Field(
        default_factory=list, description="kinds for which this source is chosen when a run "
        "names no text source (otherwise the first provider by name)")


class TextEncoderSpec(Spec):
    """``impl`` is a class ``(config)`` with ``identity() -> str`` and
    ``encode(list[str]) -> np.ndarray (n, D)``."""

    kind: Literal["text_encoder"] = "text_encoder"


class MethodSpec(Spec):
    """``impl`` is a class ``(config)`` following ``zsbench.api.Method``."""

    kind: Literal["method"] = "method"
    inputs: Literal["features", "sequences"] = "features"
    text_kinds: list[str] = Field(default_factory=lambda: ["name"])
    transductive: bool = False
    paper: str = ""
    reported: str | None = Field(
        default=None, description="lazy reference to a CSV (package:path) of reported numbers")
    default_encoder: str = "stgcn"


ANY_SPEC = (DatasetSpec, ProtocolSpec, SkeletonEncoderSpec, TextSourceSpec, TextEncoderSpec,
            MethodSpec)
