"""The golden numbers of the regression matrix as one Markdown table
(``python -m zsbench.regression golden``): what every built-in method scores on the embedded
benchmark, beside chance, with the seconds its recording run took."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

METRICS = ("zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h")


def _chance(split: str) -> str:
    """'35/5' -> '20.0' (100 / unseen classes); '' when the label has another form."""
    try:
        unseen = int(split.split("/")[1])
    except (IndexError, ValueError):
        return ""
    return f"{100.0 / unseen:.1f}" if unseen > 0 else ""


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def golden_rows(path: Path) -> list[dict[str, Any]]:
    """One row per (dataset, split, sample rule) of a golden file: its four metrics (None
    where the protocol has no such setting), plus the recording run's seconds and date."""
    data = json.loads(path.read_text(encoding="utf-8"))
    made = data.get("produced_by", {})
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for n in data.get("numbers", []):
        key = (n["dataset"], n["split"], n.get("sample_rule", ""))
        row = rows.setdefault(key, {"env": data["env"], "dataset": key[0], "split": key[1],
                                    "sample_rule": key[2], "seconds": made.get("seconds"),
                                    "created": str(made.get("created", ""))[:10]})
        row[n["metric"]] = n["value"]
    return list(rows.values())


def golden_table(envs: Sequence[str], golden_dir: Path) -> str:
    """Markdown: one line per environment and split, then the environments without a file."""
    lines = ["| environment | split | ZSL | chance | GZSL S / U / H | record run (s) | recorded |",
             "|---|---|---|---|---|---|---|"]
    missing = []
    for env in envs:
        path = golden_dir / f"{env}.json"
        if not path.exists():
            missing.append(env)
            continue
        for r in golden_rows(path):
            gzsl = " / ".join(_fmt(r.get(m)) for m in METRICS[1:]) if r.get("gzsl_h") is not None \
                else "-"
            seconds = "" if r["seconds"] is None else f"{float(r['seconds']):.0f}"
            where = f"{r['split']} {r['sample_rule']}"
            if r["dataset"] != "synthetic":         # e.g. the cross-dataset directions
                where = f"{r['dataset']}, {where}"
            lines.append(f"| `{env}` | {where} | {_fmt(r.get('zsl_acc'))} "
                         f"| {_chance(r['split'])} | {gzsl} | {seconds} | {r['created']} |")
    out = "\n".join(lines) + "\n"
    if missing:
        out += ("\nNo golden numbers yet: " + ", ".join(f"`{e}`" for e in missing)
                + " (`python -m zsbench.regression record --all --missing`).\n")
    return out
