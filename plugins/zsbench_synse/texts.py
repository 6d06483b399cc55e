"""The ``synse_pos`` text source: verb and noun phrases of every class label.

Phrases come from the rule-based splitter of :mod:`zsbench_synse.pos`, or are given as data
(``overrides`` in the config, or ``path`` = a JSON object ``{"class name": ["verb phrase",
"noun phrase"], ...}``; names are matched after normalisation), e.g. SynSE's own vocabulary
when it is available.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from zsbench.api import SkeletonDataset, ZsbenchError
from zsbench.names import normalise_name
from zsbench.specs import PluginConfig

from .pos import split_label


class SynsePosConfig(PluginConfig):
    """Options of the ``synse_pos`` text source (verb and noun phrases of class labels)."""

    keep_parentheses: bool = Field(False, description="split the words of parenthesised "
                                   "asides too (default: asides are dropped)")
    verb_kind: str = Field("verb", min_length=1)
    noun_kind: str = Field("noun", min_length=1)
    path: Path | None = Field(None, description="JSON object {class name: [verb phrase, noun "
                              "phrase]} giving the split as data (classes not in it are split "
                              "by the rules)")
    overrides: dict[str, tuple[str, str]] = Field(
        default_factory=dict, description="class name -> (verb phrase, noun phrase); wins "
        "over path and the rules")


def _read_overrides(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ZsbenchError(f"text source 'synse_pos': cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ZsbenchError(f"text source 'synse_pos': {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ZsbenchError(f"text source 'synse_pos': {path} must hold a JSON object "
                           "{\"class name\": [\"verb phrase\", \"noun phrase\"], ...}")
    return data


def _check_pair(name: str, pair: Any, where: str) -> tuple[str, str]:
    if (not isinstance(pair, (list, tuple)) or len(pair) != 2
            or not all(isinstance(p, str) and p.strip() for p in pair)):
        raise ZsbenchError(f"text source 'synse_pos': {where}: class {name!r} needs "
                           f"[\"verb phrase\", \"noun phrase\"] (two non-empty strings), got "
                           f"{pair!r}")
    return pair[0].strip(), pair[1].strip()


def pos_texts(config: SynsePosConfig, dataset: SkeletonDataset) -> dict[str, list[list[str]]]:
    """``{verb_kind: [[verb phrase] per class], noun_kind: [[noun phrase] per class]}``."""
    if config.verb_kind == config.noun_kind:
        raise ZsbenchError("text source 'synse_pos': verb_kind and noun_kind must differ")
    given: dict[str, tuple[str, str]] = {}
    sources = []
    if config.path is not None:
        path = Path(config.path).expanduser()
        sources.append((str(path), _read_overrides(path)))
    if config.overrides:
        sources.append(("overrides", dict(config.overrides)))
    known = {normalise_name(n) for n in dataset.class_names}
    for where, table in sources:
        for name, pair in table.items():
            key = normalise_name(str(name))
            if key not in known:
                raise ZsbenchError(f"text source 'synse_pos': {where}: {name!r} is not a class "
                                   f"of dataset {dataset.name!r}")
            given[key] = _check_pair(str(name), pair, where)
    verbs, nouns = [], []
    for i, name in enumerate(dataset.class_names):
        if not str(name).strip():
            raise ZsbenchError(f"dataset {dataset.name!r}: class {i} has an empty name")
        pair = given.get(normalise_name(name))
        if pair is None:
            try:
                pair = split_label(name, keep_parentheses=config.keep_parentheses)
            except ValueError as exc:
                raise ZsbenchError(f"text source 'synse_pos': class {i}: {exc}") from exc
        verbs.append([pair[0]])
        nouns.append([pair[1]])
    return {config.verb_kind: verbs, config.noun_kind: nouns}
