"""STAR's official GZSL selection: the code's calibration grid evaluated on the TEST set.

``main_*_match.py`` calls a GZSL routine (``get_gzsl_acc4``) that the release lacks, with a
grid of calibration factors, and logs S/U/H for each; the reported numbers presumably take
the factor with the best H on the test set. Calibrated stacking on ``softmax(cos)`` (as the
same authors' STAR++ and Neuron do it) only needs, per test sample, the best seen class, the
best unseen class and their probability margin, which the method records with
``--set method.record_gzsl_margins=true`` (``details.star_gzsl_margins``)::

    python -m zsbench_star.official RESULT.json [--data-root DIR]

prints, per fold, S/U/H at the best factor of the grid (a test-set selection: a deviation,
printed as such) and at factor 0.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from zsbench_neuron.official import stacked_prediction

from .config import OFFICIAL_GAMMA_GRID


def gzsl_at(entry: dict[str, Any], target: np.ndarray, is_seen: np.ndarray,
            gamma: float) -> dict[str, float]:
    """Seen / unseen top-1 (%) and H after calibrated stacking with ``gamma``."""
    pred = stacked_prediction(np.asarray(entry["best_seen"]), np.asarray(entry["best_unseen"]),
                              np.asarray(entry["margin"]), gamma)
    hit = pred == target
    s = float(hit[is_seen].mean() * 100) if is_seen.any() else float("nan")
    u = float(hit[~is_seen].mean() * 100) if (~is_seen).any() else float("nan")
    s0, u0 = (0.0 if np.isnan(v) else v for v in (s, u))
    h = 2 * s0 * u0 / (s0 + u0) if s0 + u0 > 0 else 0.0
    return {"acc_seen": s, "acc_unseen": u, "h": h, "gamma": gamma}


def best_on_test(entry: dict[str, Any], target: np.ndarray, is_seen: np.ndarray,
                 grid: tuple[float, ...] = OFFICIAL_GAMMA_GRID) -> dict[str, float]:
    """The grid factor with the highest H on these (test) samples; first maximum wins."""
    return max((gzsl_at(entry, target, is_seen, g) for g in grid), key=lambda r: r["h"])


def official_numbers(record: dict[str, Any], labels: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for fold in record["folds"]:
        entry = fold.get("details", {}).get("star_gzsl_margins")
        if not entry or "dataset_index" not in entry:
            continue
        y = labels[np.asarray(entry["dataset_index"], dtype=np.int64)]
        is_seen = np.isin(y, sorted(fold["seen"]))
        rows.append({"fold": fold["name"], "zsl_acc": fold.get("metrics", {}).get("zsl_acc"),
        "best": best_on_test(entry, y, is_seen),
        "gamma0": gzsl_at(entry, y, is_seen, 0.0)})
    return rows


def main(argv: list[str] | None = None) -> int:
    from zsbench_neuron.official import read_official_rows

    rows = read_official_rows(
        argv, "STAR's GZSL numbers with the official "
        "calibration grid chosen on the test set, from a result "
        "record made with record_gzsl_margins=true",
        "the record has no star_gzsl_margins details (run with "
        "--set method.record_gzsl_margins=true)",
        lambda record, labels, args: official_numbers(record, labels))
    if isinstance(rows, int):
        return rows
    print(f"{'fold':30} {'ZSL acc':>8} {'GZSL S':>8} {'GZSL U':>8} {'GZSL H':>8}  gamma")
    for r in rows:
        for key, note in (("best", "best H on the TEST set (official, a deviation)"),
                          ("gamma0", "no calibration")):
            g = r[key]
            z = r["zsl_acc"] if key == "best" else None
            cells = [z, g["acc_seen"], g["acc_unseen"], g["h"]]
            print(f"{r['fold'] if key == 'best' else '':30} "
                  + " ".join(f"{c:8.2f}" if c is not None else f"{'':>8}" for c in cells)
                  + f"  {g['gamma']:g} ({note})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
