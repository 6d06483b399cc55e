"""Reported vs reproduced: the groups of a run (dataset x split size x sample rule), the
reference numbers each group matches (a paper's reported numbers, golden numbers of the
embedded benchmark, a baseline), and the command that would reproduce a reported number.

Used by ``zsbench check`` (the table and the exit status), by the reports (the leaderboard
tables in Markdown, CSV and HTML) and by the regression matrix (``zsbench.regression``).
"""
from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .reported import dataset_key, match_rows, metric_key, read_reported, row_source
from .results import METRICS, FoldRecord, ResultRecord

#: rows of reference numbers for a method plugin (None: none known)
RowsFor = Callable[[str], "list[dict[str, str]] | None"]
METRIC_LABELS = {"zsl_acc": "ZSL acc", "gzsl_acc_seen": "GZSL S", "gzsl_acc_unseen": "GZSL U",
                 "gzsl_h": "GZSL H"}


@dataclass
class Group:
    """The folds of a run that share a dataset, a split size and a sample rule: the unit a
    paper reports one number for (the mean over its folds)."""

    dataset: str
    split: str
    sample_rule: str
    folds: list[FoldRecord] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.split}" + (f" {self.sample_rule}" if self.sample_rule else "")

    def value(self, metric: str) -> float | None:
        vals = [f.metrics.get(metric) for f in self.folds]
        got = [v for v in vals if v is not None and not np.isnan(v)]
        return float(np.mean(got)) if got else None


def _group_dataset(rec: ResultRecord, fold: FoldRecord) -> str:
    """The dataset a fold's number belongs to: the run's dataset, or for a cross-dataset
    fold its direction (``ntu60->pku_mmd1``) as the reported numbers spell it."""
    from .names import canonical_dataset

    base = rec.datasets[0] if rec.datasets else fold.dataset
    if "->" not in fold.group:
        return base
    head = fold.group.split()[0]
    if all(canonical_dataset(side) for side in head.split("->")):
        return dataset_key(head)
    return f"{base} {fold.group}"


def record_groups(rec: ResultRecord) -> list[Group]:
    groups: dict[tuple[str, str, str], Group] = {}
    for f in rec.folds:
        ds = _group_dataset(rec, f)
        key = (ds, f"{len(f.seen)}/{len(f.unseen)}", f.sample_rule)
        groups.setdefault(key, Group(*key)).folds.append(f)
    return list(groups.values())


@dataclass
class Comparison:
    """One matched reference number and what the run reproduced."""

    rec: ResultRecord
    path: Path | None
    group: str
    metric: str
    reported: float
    reproduced: float
    source: str
    row: dict[str, str] | None = None

    @property
    def diff(self) -> float:
        return self.reproduced - self.reported

    def outside(self, tolerance: float, one_sided: bool = False) -> bool:
        return (self.diff < -tolerance) if one_sided else abs(self.diff) > tolerance


def compare_record(rec: ResultRecord, rows: list[dict[str, str]] | None,
                   baseline: dict[str, float] | None = None, path: Path | None = None
                   ) -> list[Comparison]:
    """Every reference number this record matches: rows (a paper's CSV rows or golden
    rows) per group; without a row match, the numbers the record carries from its run
    (``reported``, a ``baseline`` value replacing one of the same metric); and the
    whole-run ``baseline`` values."""
    out: list[Comparison] = []
    for g in record_groups(rec) if rows else []:
        chosen, _ = match_rows(rows or [], rec.plugin, rec.protocol, g.dataset, {g.split},
                               rec.reported_variant, {g.sample_rule})
        for metric, row in chosen.items():
            got = g.value(metric)
            if got is not None:
                out.append(Comparison(rec, path, g.label, metric, float(row["value"]), got,
                                      row_source(row), row))
    if not out:
        for metric, target in rec.reported.items():
            got = rec.summary.get(metric)
            if target is not None and got is not None and metric not in (baseline or {}):
                out.append(Comparison(rec, path, "mean of all folds", metric, target, got,
                                      rec.reported_source or "record"))
    for metric, target in (baseline or {}).items():
        got = rec.summary.get(metric)
        if target is not None and got is not None:
            out.append(Comparison(rec, path, "mean of all folds", metric, float(target), got,
                                  "baseline"))
    return out


def plugin_rows(plugins: Any | None = None) -> RowsFor:
    """Reported-number rows of installed method plugins, read once per method."""
    cache: dict[str, list[dict[str, str]] | None] = {}

    def rows_for(method: str) -> list[dict[str, str]] | None:
        if method not in cache:
            cache[method] = None
            spec = _method_spec(plugins, method)
            if spec is not None and spec.reported:
                cache[method] = read_reported(spec.reported)
        return cache[method]

    return rows_for


def golden_rows(data: Any, where: Any) -> list[dict[str, str]] | None:
    """The numbers of a golden file of the regression matrix as reference rows (None when
    ``data`` is not one)."""
    if not isinstance(data, dict) or not isinstance(data.get("numbers"), list):
        return None
    common = {"method": str(data.get("method", "")), "protocol": str(data.get("protocol", "")),
              "source_paper": "golden", "table": str(data.get("env", Path(str(where)).stem))}
    return [{**common, **{k: str(v) for k, v in r.items()}} for r in data["numbers"]]


def read_golden_dir(folder: Path) -> dict[str, list[dict[str, str]]]:
    """Golden rows per method from every ``*.json`` golden file in ``folder``."""
    import json

    out: dict[str, list[dict[str, str]]] = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            rows = golden_rows(json.loads(path.read_text()), path)
        except (OSError, ValueError):
            rows = None
        for r in rows or []:
            out.setdefault(r["method"], []).append(r)
    return out


def with_golden(rows_for: RowsFor, golden: dict[str, list[dict[str, str]]]) -> RowsFor:
    """Reported rows plus the golden rows of the same method."""
    def both(method: str) -> list[dict[str, str]] | None:
        rows = (rows_for(method) or []) + golden.get(method, [])
        return rows or None

    return both


def _method_spec(plugins: Any | None, method: str) -> Any:
    from .plugins import load_plugins

    plugins = plugins if plugins is not None else load_plugins()
    return plugins.methods.get(method) if method in plugins.methods.names() else None


# --------------------------------------------------------------------------------------
# The command that would reproduce a reported number
# --------------------------------------------------------------------------------------
def _choices(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    out: list[Any] = []
    for arg in typing.get_args(annotation):
        out += _choices(arg)
    return out


def _is_str(annotation: Any) -> bool:
    return annotation is str or str in typing.get_args(annotation)


@functools.lru_cache(maxsize=1024)
def variant_option(config_cls: Any, variant: str) -> tuple[str, bool] | None:
    """``("key=value", label_only)`` selecting the reported ``variant`` through one option
    of the method config (``("", False)``: the defaults do): an option with choices, or a
    string option set to a suffix of the variant name, first (it changes what runs), else
    a field that only labels the variant (``label_only``: the row's other options are to
    be set by hand). Every candidate is confirmed by the config's ``reported_variant()``.
    None when no single option does."""
    try:
        if config_cls().reported_variant() == variant:
            return ("", False)
    except Exception:   # a config without usable defaults: search below
        pass
    fields = getattr(config_cls, "model_fields", {})
    pieces = variant.split("_")
    suffixes = ["_".join(pieces[i:]) for i in range(len(pieces))]
    tried: list[tuple[str, Any]] = [(n, c) for n, f in fields.items() for c in _choices(f.annotation)]
    tried += [(n, v) for n, f in fields.items() if n != "variant" and _is_str(f.annotation)
              for v in suffixes]
    tried += [(n, variant) for n in fields if n == "variant"]
    for name, value in tried:
        try:
            ok = config_cls(**{name: value}).reported_variant() == variant
        except Exception:   # a value the config refuses: not this one
            continue
        if ok:
            return f"{name}={value}", name == "variant"
    return None


def reproduce_command(row: dict[str, str], config_cls: Any = None,
                      data_root: str = "DIR") -> str:
    """The ``zsbench run`` command whose record carries this reported number (the run
    computes every split size and metric of the dataset; ``zsbench check`` matches them)."""
    method, protocol = row.get("method", ""), row.get("protocol", "")
    dataset = row.get("dataset", "").split("->")[0].strip()
    parts = [f"zsbench run --plugin {method} --protocol {protocol} --dataset {dataset} "
             f"--data-root {data_root}"]
    if row.get("sample_rule"):
        parts.append(f"--set protocol.sample_rule={row['sample_rule']}")
    variant = row.get("variant") or "default"
    opt = variant_option(config_cls, variant) if config_cls is not None else ("", False)
    if opt and opt[0]:
        parts.append(f"--set method.{opt[0]}")
        if opt[1]:
            parts.append(f"  # + the options of variant {variant!r} (docs/methods/{method}.md)")
    elif opt is None or (config_cls is None and variant != "default"):
        parts.append(f"  # variant {variant!r}: set its options (docs/methods/{method}.md)")
    return " ".join(parts)


def command_groups(rows: list[dict[str, str]], config_cls: Any = None, data_root: str = "DIR"
                   ) -> list[tuple[str, list[dict[str, str]]]]:
    """Reported rows with a known metric, grouped by the command that reproduces them."""
    out: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        if metric_key(r):
            out.setdefault(reproduce_command(r, config_cls, data_root), []).append(r)
    return list(out.items())


# --------------------------------------------------------------------------------------
# Leaderboard entries: one per (run, group)
# --------------------------------------------------------------------------------------
@dataclass
class Entry:
    rec: ResultRecord
    path: Path | None
    group: Group
    reproduced: dict[str, float | None]
    reported: dict[str, tuple[float, str]]

    @property
    def method_label(self) -> str:
        v = self.rec.reported_variant
        return self.rec.plugin + (f" [{v}]" if v and v != "default" else "")


def leaderboard(records: list[tuple[Path | None, ResultRecord]], rows_for: RowsFor | None
                ) -> list[Entry]:
    entries = []
    for path, rec in records:
        rows = rows_for(rec.plugin) if rows_for else None
        groups = record_groups(rec)
        for g in groups:
            chosen, _ = (match_rows(rows, rec.plugin, rec.protocol, g.dataset, {g.split},
                                    rec.reported_variant, {g.sample_rule}) if rows else ({}, []))
            rep = {m: (float(r["value"]), row_source(r)) for m, r in chosen.items()}
            if not rep and len(groups) == 1:
                rep = {m: (v, rec.reported_source or "record") for m, v in rec.reported.items()
                       if v is not None}
            entries.append(Entry(rec, path, g, {m: g.value(m) for m in METRICS}, rep))
    return entries


def fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    if abs(v) < 0.005:
        v = 0.0          # no "-0.00"
    return f"{v:+.2f}" if signed else f"{v:.2f}"
