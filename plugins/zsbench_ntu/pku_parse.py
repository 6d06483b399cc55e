"""PKU-MMD raw files: continuous skeleton text and label files (DATA_FORMATS.md §4.1).

Skeleton file: one line per frame, >= 150 whitespace-separated numbers (two bodies x 25
joints x xyz; only the first 150 are used). Label file: ``action, start, end, confidence``
per line (1-based action id, 1-based inclusive frames).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ntu_parse import RawFormatError

VALUES = 150


def read_pku_skeleton(path: str | Path, notes: dict[str, int] | None = None) -> np.ndarray:
    """(F, 150) float32. Lines with fewer than 150 values or non-numbers are errors naming
    the line; extra columns are dropped; a body with non-finite values is zeroed in that
    frame (counted as ``nonfinite_bodies``)."""
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RawFormatError(path, None, f"cannot read file: {exc.strerror or exc}") from exc
    a = np.frombuffer(raw, dtype=np.uint8)
    if len(a) == 0:
        raise RawFormatError(path, None, "empty skeleton file")
    ws = a <= 32
    starts = np.empty(len(a), dtype=bool)
    starts[0] = not ws[0]
    np.less(ws[1:], ws[:-1], out=starts[1:])
    line_start = np.concatenate(([0], np.flatnonzero(a[:-1] == 10) + 1))
    counts = np.add.reduceat(starts, line_start, dtype=np.int64)
    last = len(counts)
    while last and counts[last - 1] == 0:
        last -= 1
    counts = counts[:last]
    short = np.flatnonzero(counts < VALUES)
    if len(short):
        line = int(short[0]) + 1
        raise RawFormatError(path, line, f"expected at least {VALUES} values (2 bodies x 25 "
                             f"joints x xyz), got {int(counts[short[0]])}")
    rows = None
    if len(counts) and (counts == counts[0]).all():
        try:
            vals = np.array(raw.split(), dtype=np.float64)
        except ValueError:
            vals = None
        if vals is not None and len(vals) == counts[0] * len(counts):
            rows = vals.reshape(len(counts), -1)[:, :VALUES]
    if rows is None:
        rows = _slow_rows(raw, path)
    rows = rows.astype(np.float32)
    finite = np.isfinite(rows.reshape(len(rows), 2, 75)).all(axis=2)
    if not finite.all():
        bad = ~finite
        rows.reshape(len(rows), 2, 75)[bad] = 0.0
        if notes is not None:
            notes["nonfinite_bodies"] = notes.get("nonfinite_bodies", 0) + int(bad.sum())
    return rows


def _slow_rows(raw: bytes, path: str) -> np.ndarray:
    text = raw.decode("utf-8", errors="replace")
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    out = np.empty((len(lines), VALUES), dtype=np.float64)
    for i, line in enumerate(lines):
        toks = line.split()
        if len(toks) < VALUES:
            raise RawFormatError(path, i + 1, f"expected at least {VALUES} values, got {len(toks)}")
        for k, tok in enumerate(toks[:VALUES]):
            try:
                out[i, k] = float(tok)
            except ValueError:
                raise RawFormatError(path, i + 1, f"value {k + 1} is {tok!r}, not a number") from None
        for k, tok in enumerate(toks[VALUES:], start=VALUES):
            try:
                float(tok)
            except ValueError:
                raise RawFormatError(path, i + 1, f"value {k + 1} is {tok!r}, not a number") from None
    return out


@dataclass(frozen=True)
class LabelRow:
    action: int       # 1-based
    start: int        # 1-based inclusive
    end: int          # 1-based inclusive
    confidence: int | None
    line: int         # line in the label file
    row: int          # 1-based index of the instance (the ``L`` of the clip name)


def read_pku_labels(path: str | Path, num_classes: int = 51) -> list[LabelRow]:
    """Parse a label file line by line (single-line files, CRLF and trailing commas are
    fine). Errors name the file and line."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise RawFormatError(path, None, f"cannot read label file: {exc}") from exc
    rows: list[LabelRow] = []
    for i, line in enumerate(text.splitlines(), start=1):
        items = [x.strip() for x in line.split(",")]
        items = [x for x in items if x]
        if not items:
            continue
        if len(items) not in (3, 4):
            raise RawFormatError(path, i, "expected 'action_id, start_frame, end_frame, "
                                 f"confidence', got {len(items)} values: {line.strip()[:60]!r}")
        try:
            vals = [int(float(x)) if float(x).is_integer() else None for x in items]
        except ValueError:
            vals = [None]
        if any(v is None for v in vals):
            raise RawFormatError(path, i, f"expected integers, got {line.strip()[:60]!r}")
        action, start, end = vals[0], vals[1], vals[2]
        if not 1 <= action <= num_classes:
            raise RawFormatError(path, i, f"action id {action} outside 1..{num_classes}")
        if start < 1 or end < start:
            raise RawFormatError(path, i, f"invalid frame range {start}..{end} "
                                 "(1-based, inclusive, start <= end expected)")
        rows.append(LabelRow(action, start, end, vals[3] if len(vals) == 4 else None, i,
                             len(rows) + 1))
    return rows


def check_label_rows(rows: list[LabelRow], path: str | Path, overlaps: str = "error"
                     ) -> tuple[list[LabelRow], list[tuple[LabelRow, LabelRow]]]:
    """Rows that give clips, and the ``(duplicate, earlier row)`` pairs left out.

    A row equal to an earlier one (same action, start and end) would store the same clip
    twice: it is left out (the caller counts it). Two different rows whose frame ranges
    share more than one frame contradict each other; with ``overlaps="error"`` that is a
    ``RawFormatError`` naming both lines, with ``"keep"`` both are kept (as the reference
    cutters do). Ranges touching in one boundary frame are not an overlap.
    """
    kept: list[LabelRow] = []
    dups: list[tuple[LabelRow, LabelRow]] = []
    seen: dict[tuple[int, int, int], LabelRow] = {}
    for r in rows:
        first = seen.get((r.action, r.start, r.end))
        if first is not None:
            dups.append((r, first))
            continue
        seen[(r.action, r.start, r.end)] = r
        kept.append(r)
    if overlaps == "error":
        by_start = sorted(kept, key=lambda r: (r.start, r.line))
        reach = None                 # the row reaching furthest among those started so far
        for r in by_start:
            if reach is not None and min(reach.end, r.end) - r.start >= 1:
                a, b = sorted((reach, r), key=lambda x: x.line)
                raise RawFormatError(str(path), b.line, (
                    f"frames {b.start}..{b.end} (action {b.action}) overlap line {a.line} "
                    f"(frames {a.start}..{a.end}, action {a.action}) by "
                    f"{min(a.end, b.end) - max(a.start, b.start) + 1} frames; fix the label "
                    "file, or keep both clips as the reference cutters do with "
                    "--set label_overlaps=keep"))
            if reach is None or r.end > reach.end:
                reach = r
    return kept, dups

