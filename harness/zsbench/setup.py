"""Resolve a RunConfig into concrete components (specs + validated configs).

This is pure metadata work (no torch): ``zsbench run`` fails here, before any heavy
import, on unknown names or invalid values.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api import DatasetInfo, ZsbenchError
from .config import RunConfig, validate_section
from .plugins import PluginSet
from .specs import (DatasetSpec, MethodConfig, MethodNeeds, MethodSpec, PluginConfig,
                    ProtocolSpec, SkeletonEncoderSpec, TextEncoderSpec, TextSourceSpec)


def default_cache_dir() -> Path:
    env = os.environ.get("ZSBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "zsbench"


@dataclass
class Components:
    cfg: RunConfig
    method: MethodSpec
    method_cfg: PluginConfig
    protocol: ProtocolSpec
    protocol_cfg: PluginConfig
    dataset: DatasetSpec
    dataset_cfg: PluginConfig
    encoder: SkeletonEncoderSpec | None
    encoder_cfg: PluginConfig | None
    pretrain_cfg: Any
    text_encoder: TextEncoderSpec
    text_encoder_cfg: PluginConfig
    text_sources: list[tuple[TextSourceSpec, PluginConfig]]
    text_kinds: list[str]
    cache_dir: Path

    def config_dump(self, dataset: DatasetInfo | None = None) -> dict[str, Any]:
        """Every effective value: the method's options as resolved for ``dataset``
        (``MethodConfig.resolved``: per-dataset presets filled in) and the rest as given."""
        d = self.cfg.model_dump(mode="json", exclude={"sections"})
        method_cfg = self.method_cfg
        if dataset is not None and isinstance(method_cfg, MethodConfig):
            method_cfg = method_cfg.resolved(dataset)
        d.update({
            "method": method_cfg.model_dump(mode="json"),
            "protocol_options": self.protocol_cfg.model_dump(mode="json"),
            "dataset_options": self.dataset_cfg.model_dump(mode="json"),
            "encoder_options": self.encoder_cfg.model_dump(mode="json") if self.encoder_cfg else None,
            "pretrain": self.pretrain_cfg.model_dump(mode="json") if self.pretrain_cfg is not None else None,
            "text_encoder_options": self.text_encoder_cfg.model_dump(mode="json"),
            "text_sources": {s.name: c.model_dump(mode="json") for s, c in self.text_sources},
            "text_kinds": self.text_kinds,
        })
        return d


def method_needs(spec: MethodSpec, method_cfg: PluginConfig) -> MethodNeeds:
    """What the method declared it needs: its config's ``needs()`` (``MethodConfig``),
    falling back to the spec's ``text_kinds`` and ``default_encoder``."""
    needs = method_cfg.needs() if isinstance(method_cfg, MethodConfig) else MethodNeeds()
    if not isinstance(needs, MethodNeeds):
        raise ZsbenchError(f"method {spec.name!r}: {type(method_cfg).__name__}.needs() returned "
                           f"{type(needs).__name__}, expected zsbench.specs.MethodNeeds")
    return MethodNeeds(text_kinds=list(dict.fromkeys(needs.text_kinds or spec.text_kinds)),
                       encoder=needs.encoder or spec.default_encoder or None)


def resolve(plugins: PluginSet, cfg: RunConfig) -> Components:
    method = plugins.methods.get(cfg.plugin)
    protocol = plugins.protocols.get(cfg.protocol)
    dataset = plugins.datasets.get(cfg.dataset or protocol.default_dataset)
    from .names import canonical_dataset

    key = dataset.split_key or canonical_dataset(dataset.name)
    if (dataset.real and protocol.datasets
            and key not in {canonical_dataset(d) for d in protocol.datasets}):
        raise ZsbenchError(
            f"protocol {protocol.name!r} is not defined on dataset {dataset.name!r}; it runs on "
            f"{', '.join(protocol.datasets)} and on the embedded benchmark 'synthetic'")
    sugg = dataset.run_defaults
    method_sugg = {**sugg.get("method", {}), **sugg.get(f"method:{method.name}", {})}
    method_cfg = validate_section(cfg, "method", method.config, method.name, method_sugg)
    protocol_cfg = validate_section(cfg, "protocol", protocol.config, protocol.name)
    dataset_cfg = validate_section(cfg, "dataset", dataset.config, dataset.name)
    encoder = encoder_cfg = pretrain_cfg = None
    needs = method_needs(method, method_cfg)
    enc_name = cfg.encoder or needs.encoder
    if enc_name:
        encoder = plugins.encoders.get(enc_name)
        encoder_cfg = validate_section(cfg, "encoder", encoder.config, encoder.name,
                                       {**sugg.get("encoder", {}),
                                        **sugg.get(f"encoder:{encoder.name}", {})})
    if method.inputs == "features":
        from .pretrain import PretrainConfig

        pretrain_cfg = validate_section(cfg, "pretrain", PretrainConfig, "pretraining stage",
                                        sugg.get("pretrain"))
    elif cfg.sections.get("pretrain"):
        raise ZsbenchError(f"method {method.name!r} trains its encoder end to end; "
                           "the 'pretrain' section does not apply")
    text_encoder = plugins.text_encoders.get(cfg.text_encoder)
    text_encoder_cfg = validate_section(cfg, "text_encoder", text_encoder.config, text_encoder.name)
    kinds = list(needs.text_kinds or [])
    text_sections = cfg.sections.get("text", {})
    source_names = cfg.text_sources or _sources_for_kinds(plugins, kinds)
    sources = []
    for name in source_names:
        spec = plugins.text_sources.get(name)
        opts = text_sections.get(name, {})
        if not isinstance(opts, dict):
            raise ZsbenchError(f"config section text.{name} must be a table")
        sources.append((spec, _validate(spec.config, opts, f"text source {name!r}")))
    unknown = set(text_sections) - set(source_names)
    if unknown:
        raise ZsbenchError(f"text options given for sources not in use: {sorted(unknown)} "
                           f"(in use: {source_names})")
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    return Components(cfg, method, method_cfg, protocol, protocol_cfg, dataset, dataset_cfg,
                      encoder, encoder_cfg, pretrain_cfg, text_encoder, text_encoder_cfg,
                      sources, kinds, cache)


def _validate(model: type[PluginConfig], data: dict[str, Any], where: str) -> PluginConfig:
    from .config import validate_model

    return validate_model(model, data, where)


def _sources_for_kinds(plugins: PluginSet, kinds: list[str]) -> list[str]:
    chosen: list[str] = []
    for kind in kinds:
        providers = [s.name for s in plugins.text_sources if kind in s.default_for]
        providers += [s.name for s in plugins.text_sources if kind in s.text_kinds]
        if not providers:
            known = sorted({k for s in plugins.text_sources for k in s.text_kinds})
            raise ZsbenchError(f"no text source provides kind {kind!r} (known kinds: {', '.join(known)})")
        if providers[0] not in chosen:
            chosen.append(providers[0])
    return chosen
