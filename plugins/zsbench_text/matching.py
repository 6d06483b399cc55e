"""Match the class entries of a text file to the classes of a dataset.

Upstream files name their classes in many spellings ("Drink water", "drink water",
"sit down" / "sitting down", "pick up" / "pickup"), so matching is exact by name when the
file uses the dataset's own names, and otherwise by row order with a plausibility check
of the names: a row whose name is exactly another class's name (a missing, duplicated or
reordered line) is an error, and so is a file whose names mostly disagree with the
dataset's (a file for another dataset).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from zsbench.api import SkeletonDataset, ZsbenchError

AGREEMENT_MIN = 0.75
_STOP = frozenset("a an the to of on at with from something other person one and or s in "
                  "into his her each another say self".split())
_QUOTES = {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
           "\u2014": "-"}


@dataclass
class Record:
    """One class entry of a text file."""

    line: int            # 1-based line where the entry starts
    name: str | None     # the class name as the file writes it (None: the format has none)
    texts: list[str]


def norm_name(name: str) -> str:
    """Comparison form of a class name: NFKC, typographic quotes and dashes made plain
    (U+2019 -> '), lower case, single spaces."""
    name = unicodedata.normalize("NFKC", name)
    for a, b in _QUOTES.items():
        name = name.replace(a, b)
    return " ".join(name.lower().split())


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) >= 3 and word[-1] == word[-2] and word[-1] not in "ls":
        word = word[:-1]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def name_tokens(name: str) -> frozenset[str]:
    return frozenset(_stem(t) for t in re.findall(r"[a-z0-9]+", norm_name(name))
                     if t not in _STOP)


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", norm_name(name))


def names_agree(a: str, b: str) -> bool:
    """True when two spellings plausibly name the same class (shared content word, or the
    same letters once spaces and punctuation are removed)."""
    return bool(name_tokens(a) & name_tokens(b)) or _squash(a) == _squash(b)


def loc(path: Path, line: int) -> str:
    """``file:line`` (just ``file`` when the line is unknown)."""
    return f"{path}:{line}" if line > 0 else str(path)


def _where(path: Path, rec: Record) -> str:
    return loc(path, rec.line)


def _label(rec: Record, pos: int) -> str:
    return f"class {rec.name!r}" if rec.name else f"class #{pos + 1}"


def check_records(records: Sequence[Record], path: Path) -> None:
    """Empty texts and duplicate class names."""
    if not records:
        raise ZsbenchError(f"{path}: no class entries found")
    seen: dict[str, Record] = {}
    for pos, rec in enumerate(records):
        if not rec.texts:
            raise ZsbenchError(f"{_where(path, rec)}: {_label(rec, pos)} has no texts")
        for j, text in enumerate(rec.texts):
            if not isinstance(text, str) or not text.strip():
                raise ZsbenchError(f"{_where(path, rec)}: {_label(rec, pos)}: text {j + 1} is "
                                   f"empty")
        if rec.name is not None:
            if not rec.name.strip():
                raise ZsbenchError(f"{_where(path, rec)}: class #{pos + 1} has an empty name")
            key = norm_name(rec.name)
            if key in seen:
                raise ZsbenchError(
                    f"{path}: duplicate class {rec.name!r} at lines {seen[key].line} and "
                    f"{rec.line}")
            seen[key] = rec


def align(records: Sequence[Record], dataset: SkeletonDataset, path: Path, *,
          match: str = "auto", allow_prefix: bool = False,
          strict_names: bool = False) -> list[list[str]]:
    """Return the texts of every dataset class, in the dataset's class order.

    ``strict_names``: the format is keyed by the dataset's own names (zsbench JSON), so
    only exact name matching is allowed.
    """
    check_records(records, path)
    n, ds_names = dataset.num_classes, list(dataset.class_names)
    ds_norm = [norm_name(c) for c in ds_names]
    has_names = all(r.name is not None for r in records)
    by_name_only = strict_names or match == "name"
    if by_name_only and not has_names:
        raise ZsbenchError(f"{path}: this format has no class names to match by; "
                           f"use match: index")
    if (by_name_only or match == "auto") and has_names:
        pos = {norm_name(r.name or ""): k for k, r in enumerate(records)}
        missing = [i for i, c in enumerate(ds_norm) if c not in pos]
        if not missing:
            order = [pos[c] for c in ds_norm]
            used = set(order)
            extra = [r for k, r in enumerate(records) if k not in used]
            if not extra or match == "name" or order == list(range(n)):
                return [list(records[k].texts) for k in order]
            raise ZsbenchError(
                f"{path}: {len(extra)} classes are not classes of dataset {dataset.name!r} "
                f"(first: {extra[0].name!r} at line {extra[0].line}); is the file for another "
                f"dataset? (match: name takes the dataset's classes from a larger file)")
        if by_name_only:
            shown = ", ".join(f"{ds_names[i]!r} (class {i})" for i in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise ZsbenchError(f"{path}: no entry for {len(missing)} of the {n} classes of "
                               f"dataset {dataset.name!r}: {shown}{more}")
    return _align_by_index(records, dataset, path, allow_prefix)


def _align_by_index(records: Sequence[Record], dataset: SkeletonDataset, path: Path,
                    allow_prefix: bool) -> list[list[str]]:
    n, ds_names = dataset.num_classes, list(dataset.class_names)
    if len(records) < n:
        last = records[-1].line
        raise ZsbenchError(
            f"{path}: {len(records)} classes (file ends at line {last}) but dataset "
            f"{dataset.name!r} has {n}: no text for class {len(records)} "
            f"{ds_names[len(records)]!r} and after (missing lines, or a file for another "
            f"dataset?)")
    named = [i for i in range(n) if records[i].name is not None]
    if len(records) > n and not named and not allow_prefix:
        raise ZsbenchError(
            f"{path}: {len(records)} classes but dataset {dataset.name!r} has {n}; is the "
            f"file for another dataset? (allow_prefix: true uses its first {n} rows)")
    ds_norm = [norm_name(c) for c in ds_names]
    ds_index = {c: i for i, c in enumerate(ds_norm)}
    ds_squash = {_squash(c): i for i, c in enumerate(ds_names)}
    disagree: list[int] = []
    conflicts: list[tuple[int, int]] = []
    for i in named:
        name = records[i].name or ""
        if names_agree(name, ds_names[i]):
            continue
        disagree.append(i)
        j = ds_index.get(norm_name(name), ds_squash.get(_squash(name)))
        if j is not None and j != i:
            conflicts.append((i, j))
    shift = ""
    if conflicts:
        i, j = conflicts[0]
        shift = (f"{_where(path, records[i])}: class {records[i].name!r} is dataset class {j} "
                 f"{ds_names[j]!r} but sits at position {i}, where {ds_names[i]!r} is "
                 f"expected (missing, duplicated or reordered line?)")
    if named and (len(named) - len(disagree)) / len(named) < AGREEMENT_MIN:
        i = disagree[0]
        raise ZsbenchError(
            f"{path}: class names do not match dataset {dataset.name!r} "
            f"({len(named) - len(disagree)} of {len(named)} agree; e.g. line "
            f"{records[i].line} {records[i].name!r} vs class {i} {ds_names[i]!r}): is the "
            f"file for another dataset?" + (f" Also {shift}" if shift else ""))
    if shift:
        raise ZsbenchError(shift)
    return [list(records[i].texts) for i in range(n)]
