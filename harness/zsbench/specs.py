"""Component specs: what a plugin returns from its registration hooks.

A spec is metadata plus a *lazy* reference to the implementation (``"pkg.module:Object"``)
and a pydantic config model whose defaults are the paper's settings. The core imports the
implementation only when a run needs it, so listing plugins never imports torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    from .api import DatasetInfo


class PluginConfig(BaseModel):
    """Base for every plugin config model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class MethodNeeds(BaseModel):
    """What a method needs from the run, when it depends on the method's options.

    ``text_kinds``: the text kinds the method reads (None = ``MethodSpec.text_kinds``);
    ``encoder``: the skeleton encoder to use (None = ``MethodSpec.default_encoder``; the
    user's ``--encoder`` always wins).
    """

    model_config = ConfigDict(extra="forbid")

    text_kinds: list[str] | None = None
    encoder: str | None = None


class MethodConfig(PluginConfig):
    """Base for method configs. Override ``needs()`` when the text kinds or the encoder a
    method uses depend on its options; the core reads nothing else from a method config."""

    def needs(self) -> MethodNeeds:
        return MethodNeeds()

    def resolved(self, dataset: "DatasetInfo") -> "MethodConfig":
        """This config with every value a per-dataset preset decides filled in (what the
        record shows); default: unchanged."""
        return self

    def reported_variant(self) -> str:
        """The ``variant`` column of the method's reported numbers this configuration is
        compared with (``default`` = the paper's main row)."""
        return "default"


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
    description: str = Field("", description="one line shown by `zsbench list` (first line "
                             "only); further lines are for the docs")
    # filled in by the core when the spec is registered
    plugin: str = ""
    distribution: str = ""

    def load(self) -> Any:
        return load_object(self.impl)


class DatasetSpec(Spec):
    """``impl`` is a ``zsbench.impls.DatasetLoader``:
    ``(config, data_root: Path | None) -> SkeletonDataset``."""

    kind: Literal["dataset"] = "dataset"
    family: str = Field("", description="family handed to methods as ctx.dataset.family "
                        "(per-dataset presets, reported numbers); '' = the dataset's name")
    split_key: str | None = Field(
        default=None, description="the dataset key of the shipped split files and class "
        "lists this dataset's class indices follow (ntu60, ntu120, pku_mmd1, pku_mmd2); None "
        "= it follows none (the protocols then use the dataset's own builtin_splits)")
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
        "benchmark sizes pretraining for a CPU): keys 'pretrain', 'encoder', 'method', and "
        "'encoder:<name>' / 'method:<name>' for one component (over the plain key); applied "
        "only to fields the chosen component has, under the user's own values, and recorded "
        "in the result")


BOTH_SETTINGS: tuple[Literal["zsl", "gzsl"], ...] = ("zsl", "gzsl")


class ProtocolSpec(Spec):
    """``impl`` is a ``zsbench.impls.FoldBuilder``:
    ``(spec, dataset: SkeletonDataset, config) -> list[Fold]``."""

    kind: Literal["protocol"] = "protocol"
    family: str
    datasets: list[str] = Field(default_factory=list, description="real datasets it runs on")
    settings: list[Literal["zsl", "gzsl"]] = Field(default_factory=lambda: list(BOTH_SETTINGS))
    aggregation: Literal["mean"] = "mean"
    default_dataset: str = "synthetic"
    sources: list[str] = Field(default_factory=list)


class SkeletonEncoderSpec(Spec):
    """``impl`` is a ``zsbench.impls.EncoderFactory`` ``(config) -> torch.nn.Module``
    mapping (N, C, T, V, M) to (N, D) features (``feature_dim`` is D for the default
    config), or, with ``precomputed=True``, a ``zsbench.impls.FeatureReader``."""

    kind: Literal["skeleton_encoder"] = "skeleton_encoder"
    feature_dim: int = 256
    precomputed: bool = Field(
        default=False, description="serves pre-extracted features: impl is then "
        "(config, dataset, fold) -> (features per set, labels per set or None, info)")


class TextSourceSpec(Spec):
    """``impl`` is a ``zsbench.impls.TextSource`` ``(config, dataset: SkeletonDataset) ->
    dict[text_kind, list[list[str]]]`` giving, per kind it provides, every class's strings."""

    kind: Literal["text_source"] = "text_source"
    text_kinds: list[str] = Field(default_factory=list)
    default_for: list[str] = Field(
        default_factory=list, description="kinds for which this source is chosen when a run "
        "names no text source (otherwise the first provider by name)")


class TextEncoderSpec(Spec):
    """``impl`` is a class ``(config)`` following ``zsbench.impls.TextEncoder``:
    ``identity() -> str`` and ``encode(list[str]) -> np.ndarray (n, D)``."""

    kind: Literal["text_encoder"] = "text_encoder"


class MethodSpec(Spec):
    """``impl`` is a class ``(config)`` following ``zsbench.impls.MethodImpl`` (base class
    ``zsbench.api.Method``). ``config`` should subclass ``MethodConfig``."""

    kind: Literal["method"] = "method"
    inputs: Literal["features", "sequences"] = Field(
        "features", description="features: pooled features of the seen-class-pretrained "
        "encoder; sequences: lazy (N, C, T, V, M) views, the method trains its own encoder")
    text_kinds: list[str] = Field(default_factory=lambda: ["name"],
                                  description="text kinds read (MethodConfig.needs may refine)")
    transductive: bool = False
    paper: str = Field("", description="citation; shown by `zsbench list` and in records")
    official_test_batch_size: int | None = Field(
        default=None, ge=1, description="the official test loader's batch size (for the "
        "batch-averaged accuracy of --set accuracy=batch_mean); None = 64")
    reported: str | None = Field(
        default=None, description="lazy reference to a CSV (package:path) of reported numbers")
    default_encoder: str = Field("stgcn", description="skeleton encoder used unless the "
                                 "config's needs() or the user's --encoder say otherwise")
    smoke_overrides: dict[str, Any] = Field(
        default_factory=dict, description="method options for a seconds-long smoke run "
        "(`zsbench check-plugin`, conformance tests): e.g. {'num_cycles': 1} for a method "
        "whose training length is not called `epochs`")


ANY_SPEC = (DatasetSpec, ProtocolSpec, SkeletonEncoderSpec, TextSourceSpec, TextEncoderSpec,
            MethodSpec)
