"""Tables from result records: Markdown and CSV reports, and the regression check."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .compare import METRIC_LABELS, Comparison, Entry, command_groups, compare_record, fmt
from .reported import metric_key, row_source
from .results import METRICS, ResultRecord

COLUMNS = ("run_id", "plugin", "protocol", "dataset", "folds", *METRICS, "reported",
           "gzsl_rule", "deviations", "transductive", "zsl_acc_before_transductive_step")
BEFORE = "zsl_acc_before_transductive_step"


def _before(folds) -> str:
    vals = [f.details.get(BEFORE) for f in folds]
    vals = [v for v in vals if v is not None]
    return _fmt(sum(vals) / len(vals)) if vals else "-"


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def record_rows(rec: ResultRecord) -> list[dict[str, str]]:
    """One row for the run summary, then one per fold."""
    rules = sorted({f"{f.gzsl_rule['rule']}(gamma={f.gzsl_rule.get('gamma')})"
                    for f in rec.folds if f.gzsl_rule})
    reported = ", ".join(f"{k}={v:.2f}" for k, v in rec.reported.items() if v is not None)
    base = {"run_id": rec.run_id, "plugin": rec.plugin, "protocol": rec.protocol,
            "dataset": "+".join(rec.datasets), "folds": f"mean of {len(rec.folds)}",
            "reported": reported or "-", "gzsl_rule": "; ".join(rules) or "-",
            "deviations": ", ".join(rec.deviations) or "clean",
            "transductive": "yes" if rec.transductive else "no"}
    rows = [{**base, BEFORE: _before(rec.folds), **{m: _fmt(rec.summary.get(m)) for m in METRICS}}]
    for f in rec.folds:
        rows.append({**base, "folds": f.name, "reported": "", BEFORE: _before([f]),
                     **{m: _fmt(f.metrics.get(m)) for m in METRICS},
                     "gzsl_rule": (f"{f.gzsl_rule['rule']}(gamma={f.gzsl_rule.get('gamma')})"
                                   if f.gzsl_rule else "-")})
    return rows


def to_markdown(records: list[ResultRecord], per_fold: bool = True) -> str:
    out = io.StringIO()
    out.write("| " + " | ".join(COLUMNS) + " |\n")
    out.write("|" + "---|" * len(COLUMNS) + "\n")
    for rec in records:
        rows = record_rows(rec)
        for row in rows if per_fold else rows[:1]:
            out.write("| " + " | ".join(row[c] for c in COLUMNS) + " |\n")
    return out.getvalue()


def to_csv(records: list[ResultRecord]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(COLUMNS))
    w.writeheader()
    for rec in records:
        for row in record_rows(rec):
            w.writerow(row)
    return out.getvalue()


def summary_table(rec: ResultRecord) -> str:
    """Short console table printed at the end of ``zsbench run``."""
    lines = [f"{'fold':<28} {'ZSL acc':>8} {'GZSL S':>8} {'GZSL U':>8} {'GZSL H':>8}"]
    for f in rec.folds:
        m = f.metrics
        lines.append(f"{f.name:<28} " + " ".join(f"{_fmt(m.get(k)):>8}" for k in METRICS))
    for g, vals in rec.group_summary.items():
        lines.append(f"{'mean ' + g:<28} " + " ".join(f"{_fmt(vals.get(k)):>8}" for k in METRICS))
    lines.append(f"{'mean':<28} " + " ".join(f"{_fmt(rec.summary.get(k)):>8}" for k in METRICS))
    for k, v in rec.reported.items():
        if v is not None:
            lines.append(f"reported by the paper: {k} = {v:.2f} ({rec.reported_source})")
    if rec.deviations:
        lines.append("official-behaviour options in force (not a clean protocol): "
                     + ", ".join(rec.deviations))
    if rec.transductive:
        lines.append("transductive: this method uses the unlabelled test set at test time; "
                     f"ZSL accuracy before its test-time step: {_before(rec.folds)}")
    return "\n".join(lines)


def check_against(records: list[tuple[Path, ResultRecord]], baseline: dict[str, float] | None,
                  tolerance: float, compared: list[str] | None = None) -> list[str]:
    """Return a list of regressions: summary metrics more than ``tol`` away from the
    numbers each record carries (or the baseline's). Each comparison made is appended to
    ``compared`` (when given). ``zsbench check`` also matches the plugins' reported rows
    per split group (``zsbench.compare``)."""
    problems = []
    for path, rec in records:
        for c in compare_record(rec, None, baseline, path):
            if compared is not None:
                compared.append(f"{path}: {c.metric}")
            if c.outside(tolerance):
                problems.append(f"{path}: {c.metric} = {c.reproduced:.2f} differs from "
                                f"{c.reported:.2f} by more than {tolerance}")
    return problems


# --------------------------------------------------------------------------------------
# Leaderboard: per protocol, methods x dataset/split groups, reproduced vs reported
# --------------------------------------------------------------------------------------
LEADERBOARD_COLUMNS = ("run_id", "plugin", "protocol", "variant", "dataset", "split",
                       "sample_rule", "metric", "reproduced", "reported", "difference",
                       "reported_source", "deviations", "transductive", "folds", "created")


@dataclass
class Cell:
    reproduced: float | None
    reported: float | None
    source: str
    run_id: str

    @property
    def diff(self) -> float | None:
        if self.reproduced is None or self.reported is None:
            return None
        return self.reproduced - self.reported


@dataclass
class WideTable:
    """One protocol and metric: rows = method entries (plugin, variant, deviations),
    columns = dataset/split groups; the latest run wins a cell."""

    protocol: str
    metric: str
    columns: list[str]
    rows: list[tuple[str, list[str], bool, dict[str, Cell]]]   # label, deviations, transductive


def wide_tables(entries: list[Entry]) -> list[WideTable]:
    tables = []
    for protocol in sorted({e.rec.protocol for e in entries}):
        mine = sorted((e for e in entries if e.rec.protocol == protocol), key=lambda e: e.rec.created)
        for metric in ("zsl_acc", "gzsl_h"):
            if not any(e.reproduced.get(metric) is not None for e in mine):
                continue
            cols = list(dict.fromkeys(e.group.label for e in mine if e.reproduced.get(metric) is not None))
            rows: dict[tuple, tuple[str, list[str], bool, dict[str, Cell]]] = {}
            for e in mine:
                if e.reproduced.get(metric) is None:
                    continue
                key = (e.method_label, tuple(e.rec.deviations))
                row = rows.setdefault(key, (e.method_label, list(e.rec.deviations),
                                            e.rec.transductive, {}))
                rep = e.reported.get(metric)
                row[3][e.group.label] = Cell(e.reproduced[metric], rep[0] if rep else None,
                                             rep[1] if rep else "", e.rec.run_id)
            tables.append(WideTable(protocol, metric, cols,
                                    sorted(rows.values(), key=lambda r: (r[0], r[1]))))
    return tables


def row_label(label: str, deviations: list[str], transductive: bool) -> str:
    return label + (" †" if deviations else "") + (" ‡" if transductive else "")


LEGEND = ("reproduced / reported (difference); † official-behaviour options in force "
          "(not a clean protocol), ‡ transductive (uses the unlabelled test set)")


def leaderboard_markdown(entries: list[Entry]) -> str:
    out = io.StringIO()
    for t in wide_tables(entries):
        out.write(f"### {t.protocol}: {METRIC_LABELS[t.metric]}\n\n")
        out.write("| method | " + " | ".join(t.columns) + " |\n")
        out.write("|---|" + "---|" * len(t.columns) + "\n")
        for label, devs, trans, cells in t.rows:
            vals = []
            for c in t.columns:
                cell = cells.get(c)
                vals.append("" if cell is None else f"{fmt(cell.reproduced)} / {fmt(cell.reported)}"
                            + (f" ({fmt(cell.diff, signed=True)})" if cell.diff is not None else ""))
            out.write(f"| {row_label(label, devs, trans)} | " + " | ".join(vals) + " |\n")
        notes = [f"† {label}: {', '.join(devs)}" for label, devs, _, _ in t.rows if devs]
        out.write("\n" + LEGEND + ("\n" + "\n".join(notes) if notes else "") + "\n\n")
    return out.getvalue()


def leaderboard_rows(entries: list[Entry]) -> list[dict[str, str]]:
    """The leaderboard in long form: one row per run, group and measured metric."""
    rows = []
    for e in entries:
        for metric in METRICS:
            got = e.reproduced.get(metric)
            if got is None:
                continue
            rep = e.reported.get(metric)
            rows.append({"run_id": e.rec.run_id, "plugin": e.rec.plugin, "protocol": e.rec.protocol,
                         "variant": e.rec.reported_variant, "dataset": e.group.dataset,
                         "split": e.group.split, "sample_rule": e.group.sample_rule,
                         "metric": metric, "reproduced": fmt(got),
                         "reported": fmt(rep[0]) if rep else "",
                         "difference": fmt(got - rep[0], signed=True) if rep else "",
                         "reported_source": rep[1] if rep else "",
                         "deviations": ", ".join(e.rec.deviations) or "clean",
                         "transductive": "yes" if e.rec.transductive else "no",
                         "folds": str(len(e.group.folds)), "created": e.rec.created})
    return rows


def leaderboard_csv(entries: list[Entry]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(LEADERBOARD_COLUMNS))
    w.writeheader()
    w.writerows(leaderboard_rows(entries))
    return out.getvalue()


# --------------------------------------------------------------------------------------
# zsbench check: the comparison table and the commands behind each reported number
# --------------------------------------------------------------------------------------
def check_table(comparisons: list[Comparison], tolerance: float, one_sided: bool = False) -> str:
    head = (f"{'run':<44} {'group':<22} {'metric':<16} {'reported':>8} {'reproduced':>10} "
            f"{'diff':>7}  status  source")
    lines = [head]
    for c in comparisons:
        status = "FAIL" if c.outside(tolerance, one_sided) else "ok"
        lines.append(f"{c.rec.run_id:<44} {c.group:<22} {c.metric:<16} {c.reported:>8.2f} "
                     f"{c.reproduced:>10.2f} {fmt(c.diff, signed=True):>7}  {status:<6}  {c.source}")
    return "\n".join(lines)


def reproduce_listing(method: str, rows: list[dict[str, str]], comparisons: list[Comparison],
                      config_cls: Any = None) -> str:
    """Each reported number of ``method`` under the command that reproduces it, with the
    run of this check that matched it (if any)."""
    matched = {id(c.row): c for c in comparisons if c.row is not None}
    lines = [f"reported numbers of {method} and the run that reproduces each "
             f"(text sources and encoders of each paper: docs/methods/{method}.md):"]
    for command, rs in command_groups([r for r in rows if r.get("method") == method], config_cls):
        lines.append(f"  {command}")
        same: dict[tuple, list[dict[str, str]]] = {}     # one number quoted by several papers
        for r in rs:
            key = (r.get("dataset"), r.get("split"), r.get("sample_rule", ""), metric_key(r),
                   float(r["value"]))
            same.setdefault(key, []).append(r)
        for (dataset, split, rule, metric, value), quoted in same.items():
            label = f"{dataset} {split}" + (f" {rule}" if rule else "")
            hit = next((matched[id(r)] for r in quoted if id(r) in matched), None)
            seen = (f"reproduced {hit.reproduced:.2f} ({fmt(hit.diff, signed=True)}) by {hit.rec.run_id}"
                    if hit else "not in these results")
            sources = "; ".join(dict.fromkeys(row_source(r) for r in quoted))
            lines.append(f"    {label:<26} {metric:<16} {value:6.2f}  {sources:<30} {seen}")
    return "\n".join(lines)
