"""Run configuration: a config file (TOML or YAML) plus ``--set key=value`` overrides,
validated once by pydantic models with ``extra="forbid"``.

Keys: top-level ``RunConfig`` fields (``seed = 1``) and per-component sections
(``method.lr``, ``encoder.hidden_channels``, ``dataset.num_classes``, ``protocol.x``,
``pretrain.epochs``, ``text_encoder.model``, ``text.<source>.path``), which are validated
against the config model of the chosen plugin.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .api import ZsbenchError
from .registry import did_you_mean

SECTIONS = ("method", "encoder", "dataset", "protocol", "pretrain", "text_encoder", "text")


class RunConfig(BaseModel):
    """Everything that defines a run. Component sections are validated separately against
    each plugin's own model (see ``validate_section``)."""

    model_config = ConfigDict(extra="forbid")

    plugin: str = Field(description="method plugin name, e.g. devise")
    protocol: str = "synse"
    dataset: str | None = Field(default=None, description="default: the protocol's default")
    data_root: Path | None = None
    out: Path = Path("results")
    cache_dir: Path | None = Field(default=None, description="default: $ZSBENCH_CACHE or ~/.cache/zsbench")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    encoder: str | None = Field(default=None, description="skeleton encoder; default: the method's")
    text_encoder: str = "sbert"
    text_sources: list[str] | None = Field(
        default=None, description="text source plugins; default: those providing the kinds the method needs")
    text_control: Literal["real", "random"] = Field(
        default="real", description="'random' replaces text embeddings by random vectors (a control)")
    settings: list[Literal["zsl", "gzsl"]] | None = None
    gzsl_rule: Literal["calibrated_stacking", "argmax", "method"] = "calibrated_stacking"
    gzsl_calibration: Literal["seen_quantile", "validation_gamma"] = Field(
        default="seen_quantile", description="how calibrated stacking's gamma reaches the "
        "final model: 'seen_quantile' keeps the share of seen samples the validation gamma "
        "moves to unseen classes, measured on each model's own seen samples (transfers "
        "between separately trained end-to-end models); 'validation_gamma' uses the "
        "validation model's gamma as it is")
    gzsl_validation: Literal["shared_features", "retrain_encoder"] = Field(
        default="shared_features", description="features for the gamma-validation fit of "
        "two-stage methods: the fold's (whose encoder saw the validation classes, as in SynSE's "
        "protocol) or those of an encoder pretrained again on the validation-seen classes only "
        "(unbiased, twice the pretraining cost)")
    model_selection: Literal["method", "best_on_test"] = Field(
        default="method", description="'method': the method's own rule (last epoch, or "
        "validation classes carved from the seen ones); 'best_on_test': the method scores "
        "the fold's unseen TEST samples after every epoch and keeps the best epoch, as the "
        "official SMIE, PGFA and DVTA training loops do (an official-behaviour option, "
        "recorded as the deviation 'model_selection_on_test'; methods that offer it call "
        "RunContext.test_selection)")
    accuracy: Literal["per_sample", "batch_mean"] = Field(
        default="per_sample", description="ZSL accuracy: per_sample (top-1 over test samples, "
        "clean) or batch_mean (the mean of per-batch accuracies over the test set in dataset "
        "order, as the official SMIE, PGFA and DVTA test loops compute it: an official-"
        "behaviour option, recorded as a deviation). Both are always in the fold details.")
    accuracy_batch_size: int | None = Field(
        default=None, ge=1, description="test batch size for batch_mean; default: the "
        "method's MethodSpec.official_test_batch_size, else 64")
    folds: list[str] | None = Field(default=None, description="run only these fold names")
    diagnostics: Literal["off", "metrics", "tsne"] = Field(
        default="off", description="feature diagnostics of unseen test features before/after "
        "the method's alignment (zsbench.diagnostics): 'metrics' = Fisher ratio and "
        "silhouette in the fold details; 'tsne' = also a t-SNE plot beside the record (slow)")
    run_id: str | None = None
    sections: dict[str, dict[str, Any]] = Field(default_factory=dict)


@functools.cache
def _yaml12_bool_loader() -> type:
    """A ``yaml.SafeLoader`` subclass (built once, on first use) whose implicit booleans are
    YAML 1.2's: ``true`` / ``false`` only."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                 re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    return Loader


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2 booleans: only ``true`` / ``false`` (any case) are
    booleans, so option values such as ``off``, ``on``, ``yes``, ``no`` (``autocast=off``,
    ``diagnostics: off``) stay the strings the configs expect instead of YAML 1.1's
    ``False`` / ``True``."""
    import yaml

    return yaml.load(text, Loader=_yaml12_bool_loader())  # noqa: S506 - a SafeLoader subclass


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value: JSON/YAML scalars and lists (booleans: ``true``/``false``
    only); anything else is a string."""
    import yaml

    try:
        return yaml_load(text)
    except yaml.YAMLError:
        return text


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ZsbenchError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ZsbenchError(f"config file {path}: expected .toml, .yaml, .yml or .json")
    except ZsbenchError:
        raise
    except Exception as exc:
        raise ZsbenchError(f"config file {path}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise ZsbenchError(f"config file {path}: top level must be a table/mapping")
    return data


def apply_override(data: dict[str, Any], assignment: str) -> None:
    if "=" not in assignment:
        raise ZsbenchError(f"--set {assignment!r}: expected key=value (e.g. method.lr=0.01)")
    key, value = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ZsbenchError(f"--set {assignment!r}: empty key")
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ZsbenchError(f"--set {assignment!r}: {p!r} is not a section")
        node = nxt
    node[parts[-1]] = parse_value(value)


def build_run_config(base: dict[str, Any], overrides: list[str]) -> RunConfig:
    """``base`` holds top-level fields and (as tables) component sections; a section name
    that is also a field (``protocol``, ``dataset``, ``encoder``, ``text_encoder``) is a
    section when its value is a table. ``--set section.key=value`` always targets the
    section; ``--set key=value`` the top-level field."""
    data = json.loads(json.dumps(base, default=str))
    sections: dict[str, Any] = {}
    for k in list(data):
        if k in SECTIONS and isinstance(data[k], dict):
            sections[k] = data.pop(k)
        elif k == "sections" and isinstance(data[k], dict):
            sections.update(data.pop(k))
    for assignment in overrides:
        key = assignment.split("=", 1)[0].strip()
        if "." in key and key.split(".", 1)[0] in SECTIONS:
            apply_override(sections, assignment)
        else:
            apply_override(data, assignment)
    for k, v in sections.items():
        if not isinstance(v, dict):
            raise ZsbenchError(f"config section {k!r} must be a table of key = value")
    data["sections"] = sections
    return validate_model(RunConfig, data, where="run config")


def format_validation_error(exc: ValidationError, model: type[BaseModel], where: str) -> str:
    lines = [f"invalid {where}:"]
    fields = list(model.model_fields)
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        inp = err.get("input")
        if err["type"] == "extra_forbidden":
            name = str(err["loc"][-1])
            lines.append(f"  - unknown field {loc!r}{did_you_mean(name, fields)} "
                         f"(allowed: {', '.join(fields)})")
            continue
        msg = err["msg"]
        if err["type"] == "literal_error":
            msg = f"must be one of {err.get('ctx', {}).get('expected', '')}"
        lines.append(f"  - field {loc!r}: got {inp!r}; {msg}")
    return "\n".join(lines)


def validate_model(model: type[BaseModel], data: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ZsbenchError(format_validation_error(exc, model, where)) from None


def validate_section(cfg: RunConfig, section: str, model: type[BaseModel], component: str,
                     extra: dict[str, Any] | None = None) -> Any:
    """Validate a component's section; ``extra`` holds suggested defaults (only those the
    model knows are used), overridden by the user's values."""
    data = {k: v for k, v in (extra or {}).items() if k in model.model_fields}
    data.update(cfg.sections.get(section, {}))
    return validate_model(model, data, where=f"{section} config of {component!r}")
