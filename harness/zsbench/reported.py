"""Numbers the papers report, shipped by each method plugin as CSV package data.

CSV columns (as ../shared/reference/reported_numbers.csv): source_paper, table, method,
variant, dataset, protocol, split, sample_rule, setting, metric, value, ...
"""
from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Any

from .api import ZsbenchError
from .specs import MethodConfig

METRIC_MAP = {("zsl", "acc"): "zsl_acc", ("gzsl", "acc_seen"): "gzsl_acc_seen",
              ("gzsl", "acc_unseen"): "gzsl_acc_unseen", ("gzsl", "h"): "gzsl_h"}


def read_reported(ref: str) -> list[dict[str, str]]:
    """Read ``"package:relative/path.csv"``."""
    if ":" not in ref:
        raise ZsbenchError(f"reported-numbers reference {ref!r} must look like 'package:file.csv'")
    pkg, rel = ref.split(":", 1)
    try:
        text = resources.files(pkg).joinpath(rel).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ZsbenchError(f"reported numbers {ref!r} not found: {exc}") from None
    return list(csv.DictReader(io.StringIO(text)))


def reported_for(comp: Any, dataset: str, folds: list[Any]) -> tuple[dict[str, float | None], str]:
    """The paper's numbers for this method/protocol/dataset/split size (default variant),
    preferring the method's own paper. Empty for the embedded benchmark."""
    ref = comp.method.reported
    if not ref or not folds:
        return {}, ""
    rows = read_reported(ref)
    sizes = {f"{len(f.seen)}/{len(f.unseen)}" for f in folds}
    if len(sizes) != 1:  # a paper's number is per split size: compare one size per run
        return {}, ""
    variant = (comp.method_cfg.reported_variant()
               if isinstance(comp.method_cfg, MethodConfig) else "default")
    rules = {f.sample_rule for f in folds} | {""}
    from .names import canonical_dataset

    want = canonical_dataset(dataset) or dataset
    hits = [r for r in rows if r.get("method") == comp.method.name
            and (canonical_dataset(r.get("dataset", "")) or r.get("dataset")) == want
            and r.get("protocol") == comp.protocol.name and r.get("split") in sizes
            and r.get("variant", "default") == variant and r.get("sample_rule", "") in rules]
    if not hits:
        return {}, ""
    own = [r for r in hits if r.get("source_paper") == comp.method.name]
    hits = own or hits
    out: dict[str, float | None] = {}
    for r in hits:
        key = METRIC_MAP.get((r.get("setting", ""), r.get("metric", "")))
        if key and key not in out:
            out[key] = float(r["value"])
    src = f"{hits[0].get('source_paper')} {hits[0].get('table')}"
    return out, src
