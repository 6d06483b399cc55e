"""Tables from result records: Markdown and CSV reports, and the regression check."""
from __future__ import annotations

import csv
import io
from pathlib import Path

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
    """Return a list of regressions: summary metrics below reported (or baseline) - tol.
    Each comparison made is appended to ``compared`` (when given)."""
    problems = []
    for path, rec in records:
        targets = dict(rec.reported)
        if baseline:
            targets.update(baseline)
        for metric, target in targets.items():
            got = rec.summary.get(metric)
            if target is None or got is None:
                continue
            if compared is not None:
                compared.append(f"{path}: {metric}")
            if got < target - tolerance:
                problems.append(f"{path}: {metric} = {got:.2f} is below {target:.2f} - {tolerance}")
    return problems
