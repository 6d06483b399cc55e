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
from .results import METRICS
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


def dataset_key(name: str) -> str:
    """Comparison key of a dataset name as reported-number rows and records spell it:
    the split-file key (``ntu60``, ``pku_mmd1``...), each side of a cross-dataset pair
    (``ntu60->pku_mmd1``), or the name itself (e.g. ``synthetic``)."""
    from .names import canonical_dataset

    if "->" in name:
        return "->".join(canonical_dataset(p) or p.strip() for p in name.split("->"))
    return canonical_dataset(name) or name


def match_rows(rows: list[dict[str, str]], method: str, protocol: str, dataset: str,
               splits: set[str], variant: str, sample_rules: set[str]
               ) -> tuple[dict[str, dict[str, str]], list[dict[str, str]]]:
    """The rows of ``rows`` for this method/protocol/dataset/split size/variant/sample rule,
    one per metric (``zsl_acc``...), preferring the method's own paper. Returns (metric ->
    row, every row that matched)."""
    want = dataset_key(dataset)
    rules = set(sample_rules) | {""}
    hits = [r for r in rows if r.get("method") == method and r.get("protocol") == protocol
            and dataset_key(r.get("dataset", "")) == want and r.get("split") in splits
            and (r.get("variant") or "default") == variant
            and r.get("sample_rule", "") in rules]
    own = [r for r in hits if r.get("source_paper") == method]
    out: dict[str, dict[str, str]] = {}
    for r in own or hits:
        key = metric_key(r)
        if key and key not in out:
            out[key] = r
    return out, hits


def metric_key(row: dict[str, str]) -> str | None:
    """``zsl_acc``/``gzsl_h``... of a reported-number row: its CSV setting+metric columns,
    or a metric column that already names one (golden numbers)."""
    metric = row.get("metric", "")
    return METRIC_MAP.get((row.get("setting", ""), metric)) or (metric if metric in METRICS else None)


def row_source(row: dict[str, str]) -> str:
    return f"{row.get('source_paper', '')} {row.get('table', '')}".strip()


def variant_of(method_cfg: Any) -> str:
    """The reported-numbers ``variant`` a method configuration corresponds to."""
    return method_cfg.reported_variant() if isinstance(method_cfg, MethodConfig) else "default"


def reported_for(comp: Any, dataset: str, folds: list[Any]) -> tuple[dict[str, float | None], str]:
    """The paper's numbers for this method/protocol/dataset/split size (default variant),
    preferring the method's own paper. Empty for the embedded benchmark."""
    ref = comp.method.reported
    if not ref or not folds:
        return {}, ""
    sizes = {f"{len(f.seen)}/{len(f.unseen)}" for f in folds}
    if len(sizes) != 1:  # a paper's number is per split size: compare one size per run
        return {}, ""
    variant = variant_of(comp.method_cfg)
    chosen, _ = match_rows(read_reported(ref), comp.method.name, comp.protocol.name, dataset,
                           sizes, variant, {f.sample_rule for f in folds})
    if not chosen:
        return {}, ""
    out: dict[str, float | None] = {k: float(r["value"]) for k, r in chosen.items()}
    return out, row_source(next(iter(chosen.values())))
