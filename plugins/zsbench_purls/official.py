"""PURLS' official test accuracy (quirk Q1: the true class's descriptions query the skeleton).

The released ``test_step`` pools each test sample with the eight descriptions of its
ground-truth class, projects it and scores only the global output against every candidate's
global description. That needs the label at test time, so it is not a zero-shot evaluation
and the core cannot compute it. With ``--set method.official_true_label_queries=true`` the
method records, per test sample and possible query class, the resulting prediction (under
``details.purls_true_label`` of each fold); this module picks the entry of the true class::

    python -m zsbench_purls.official RESULT.json [--data-root DIR]
"""
from __future__ import annotations

from typing import Any

import numpy as np


def true_label_predictions(entry: dict[str, Any], target: np.ndarray) -> np.ndarray:
    """The official prediction of every sample: its row's entry for its true class."""
    queries = [int(c) for c in entry["query_classes"]]
    col = {c: i for i, c in enumerate(queries)}
    missing = sorted(set(int(t) for t in target) - set(queries))
    if missing:
        raise ValueError(f"true classes {missing} are not among the recorded query classes")
    preds = np.asarray(entry["predictions"], dtype=np.int64).reshape(len(target), len(queries))
    return preds[np.arange(len(target)), [col[int(t)] for t in target]]


def official_numbers(record: dict[str, Any], labels: np.ndarray) -> list[dict[str, Any]]:
    """Per fold: the true-label-query accuracy (%) of the ZSL test set and, when recorded,
    of the seen and unseen parts of the GZSL test set."""
    rows = []
    for fold in record["folds"]:
        entry = fold.get("details", {}).get("purls_true_label")
        if not entry:
            continue
        row: dict[str, Any] = {"fold": fold["name"]}
        for setting, e in entry.items():
            y = labels[np.asarray(e["dataset_index"], dtype=np.int64)]
            hit = true_label_predictions(e, y) == y
            if setting == "zsl":
                row["zsl_acc"] = float(hit.mean() * 100) if len(hit) else float("nan")
            else:
                seen = np.isin(y, fold["seen"])
                row["gzsl_seen"] = float(hit[seen].mean() * 100) if seen.any() else float("nan")
                row["gzsl_unseen"] = float(hit[~seen].mean() * 100) if (~seen).any() else \
                    float("nan")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    from zsbench_neuron.official import read_official_rows

    rows = read_official_rows(
        argv, "PURLS' official (true-label query) accuracy "
        "from a record made with official_true_label_queries=true",
        "the record has no purls_true_label details (run with "
        "--set method.official_true_label_queries=true)",
        lambda record, labels, args: official_numbers(record, labels))
    if isinstance(rows, int):
        return rows
    print(f"{'fold':30} {'ZSL acc':>8} {'GZSL S':>8} {'GZSL U':>8}  (true-label queries: "
          "not zero-shot)")
    for r in rows:
        cells = [r.get("zsl_acc"), r.get("gzsl_seen"), r.get("gzsl_unseen")]
        print(f"{r['fold']:30} " + " ".join(f"{c:8.2f}" if c is not None else f"{'-':>8}"
                                             for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
