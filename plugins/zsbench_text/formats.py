"""Readers for the per-class text files exactly as the official repositories publish them.

Every reader returns a list of :class:`Record` (line, class name or None, texts) in file
order; :func:`zsbench_text.matching.align` maps them onto a dataset's classes. Lines are
split with ``str.splitlines()`` (CRLF and LF files both occur) and stripped; blank lines at
the end of a file are ignored, a blank line inside it is an error.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from zsbench.api import ZsbenchError

from .matching import Record, loc

PART_NAMES = ("head", "hand", "arm", "hip", "leg", "foot")
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201c\u201d]+)[\"\u201d]")


def read_text(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise ZsbenchError(f"text file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ZsbenchError(f"{path}:{line}: not valid UTF-8 ({exc.reason})") from exc
    return text.lstrip("\ufeff")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped line) for every line up to the last non-blank one; a blank
    line before that is an error (it would shift every later class)."""
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            raise ZsbenchError(f"{path}:{no}: empty line (class #{len(out) + 1} has no text)")
        out.append((no, line.strip()))
    if not out:
        raise ZsbenchError(f"{path}: the file is empty")
    return out


def quoted_name(line: str) -> str | None:
    """The first quoted string of a line ("Drink water" or \u201cPickup\u201d), without the
    trailing punctuation some files put inside the quotes ("Sitting down,")."""
    m = _QUOTED.search(line)
    if not m:
        return None
    return m.group(1).strip().rstrip(",.;:").strip() or None


def read_quoted_lines(path: Path) -> list[Record]:
    """One text per line, the class name quoted in it (SMIE/PGFA ``*_des.txt``, Flora
    ``*_llm.txt``, PGFA ``*_ska_gpt4.txt``). A line without a quoted name is matched by
    position only."""
    return [Record(no, quoted_name(line), [line]) for no, line in read_lines(path)]


def read_labelmap(path: Path) -> list[Record]:
    """Class names, one per line (PGFA ``*_labelmap.txt``, GAP ``ntu120_label_map.txt``),
    or a 1-D string array ``.npy`` (SynSE ``labels.npy``, loaded without pickle)."""
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise ZsbenchError(f"label map not found: {path}")
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ZsbenchError(f"{path}: not a plain .npy string array ({exc})") from exc
        if arr.ndim != 1 or arr.dtype.kind not in "US":
            raise ZsbenchError(f"{path}: expected a 1-D string array, got {arr.dtype} "
                               f"{arr.shape}")
        names = [str(x.decode() if isinstance(x, bytes) else x).strip() for x in arr]
        return [Record(i + 1, n, [n]) for i, n in enumerate(names)]
    return [Record(no, line, [line]) for no, line in read_lines(path)]


def read_idx_csv(path: Path, *, names: bool = False) -> list[Record]:
    """MSF ``{lb,ad,md}_{60,120}.csv`` and Flora ``*.csv``: a header ``idx,<column>`` then
    ``<1-based class id>,<text>`` rows. ``names``: the text column is the class name."""
    rows = read_lines(path)
    header_no, header = rows[0]
    cols = next(csv.reader([header]))
    if len(cols) != 2 or cols[0].strip() != "idx":
        raise ZsbenchError(f"{path}:{header_no}: expected a header 'idx,<text column>', "
                           f"got {header!r}")
    out: list[Record] = []
    seen: dict[int, int] = {}
    for no, line in rows[1:]:
        fields = next(csv.reader([line]))
        if len(fields) != 2:
            raise ZsbenchError(f"{path}:{no}: expected 2 comma-separated fields (idx,text), "
                               f"found {len(fields)}")
        try:
            idx = int(fields[0])
        except ValueError:
            raise ZsbenchError(f"{path}:{no}: class id {fields[0]!r} is not an integer") from None
        if idx in seen:
            raise ZsbenchError(f"{path}: duplicate class id {idx} at lines {seen[idx]} and {no}")
        seen[idx] = no
        if idx != len(out) + 1:
            raise ZsbenchError(f"{path}:{no}: class id {idx} where {len(out) + 1} was expected "
                               f"(missing class {len(out) + 1}, or rows out of order)")
        text = fields[1].strip()
        out.append(Record(no, text if names else None, [text]))
    if not out:
        raise ZsbenchError(f"{path}: no data rows after the header")
    return out


def read_pasta(path: Path, *, style: str = "joined", include_name: bool = False) -> list[Record]:
    """GAP ``pasta_openai_t01.txt`` / PGFA ``ntu_parts_from_GAP.txt``: seven ';'-separated
    fields ``name;head;hand;arm;hip;leg;foot`` per line."""
    out = []
    for no, line in read_lines(path):
        fields = [f.strip() for f in line.split(";")]
        if len(fields) != 1 + len(PART_NAMES):
            raise ZsbenchError(f"{path}:{no}: expected 7 ';'-separated fields "
                               f"(name;head;hand;arm;hip;leg;foot), found {len(fields)}")
        name, parts = fields[0], fields[1:]
        for part, text in zip(PART_NAMES, parts):
            if not text:
                raise ZsbenchError(f"{path}:{no}: class {name!r}: the {part} description is "
                                   f"empty")
        if style == "list":
            texts = parts
        else:
            joined = "; ".join(parts)
            texts = [f"{name}: {joined}" if include_name else joined]
        out.append(Record(no, name, texts))
    return out


def read_gap_sentence(path: Path, *, split_sentences: bool = False) -> list[Record]:
    """GAP ``sentence_openai_t01.txt``: ``<name>,<several sentences>`` (split at the first
    comma)."""
    out = []
    for no, line in read_lines(path):
        if "," not in line:
            raise ZsbenchError(f"{path}:{no}: expected '<class name>,<text>'")
        name, text = (s.strip() for s in line.split(",", 1))
        if not text:
            raise ZsbenchError(f"{path}:{no}: class {name!r}: the text is empty")
        texts = ([s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
                 if split_sentences else [text])
        out.append(Record(no, name, texts))
    return out


def read_gap_synonym(path: Path, *, include_name: bool = True) -> list[Record]:
    """GAP ``synonym_openai_t01.txt``: ``<name>,<syn>, <syn>, ...``."""
    out = []
    for no, line in read_lines(path):
        fields = [f.strip() for f in line.split(",")]
        name, syns = fields[0], fields[1:]
        for k, s in enumerate(syns):
            if not s:
                raise ZsbenchError(f"{path}:{no}: class {name!r}: synonym {k + 1} is empty")
        if not syns:
            raise ZsbenchError(f"{path}:{no}: class {name!r} has no synonyms")
        out.append(Record(no, name, ([name] if include_name else []) + syns))
    return out


def _json_load(path: Path, text: str, hook: Any = None) -> Any:
    try:
        return json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        raise ZsbenchError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc


def _key_lines(text: str, pattern: str) -> list[int]:
    return [text.count("\n", 0, m.start()) + 1 for m in re.finditer(pattern, text, re.M)]


def read_neuron_json(path: Path) -> list[Record]:
    """Neuron ``semantics/{ntu,pku}/{spatial,temporal}/*.json``: an object mapping each
    class name (in class order) to a list of descriptions (10 upstream)."""
    text = read_text(path)
    dupes: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        dupes.extend(k for i, k in enumerate(keys) if k in keys[:i])
        return dict(pairs)

    data = _json_load(path, text, hook)
    if not isinstance(data, dict):
        raise ZsbenchError(f"{path}: expected a JSON object mapping class names to lists of "
                           f"strings, got {type(data).__name__}")
    lines = _key_lines(text, r'^\s*"(?:[^"\\]|\\.)*"\s*:')
    if dupes:
        lk = _key_lines(text, r'^\s*' + re.escape(json.dumps(dupes[0])) + r'\s*:')
        raise ZsbenchError(f"{path}: duplicate class {dupes[0]!r} at lines "
                           f"{' and '.join(map(str, lk))}")
    out = []
    for k, (name, texts) in enumerate(data.items()):
        line = lines[k] if len(lines) == len(data) else 0
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ZsbenchError(f"{loc(path, line)}: class {name!r}: expected a list of strings")
        out.append(Record(line, name, [t.strip() for t in texts]))
    return out


def read_zsbench_json(path: Path, kind: str | None = None) -> list[Record]:
    """The zsbench text file a dataset ships: ``{"kind": k, "classes": [{"name": ...,
    "texts": [...]}, ...]}`` (matched to the dataset by name)."""
    text = read_text(path)
    data = _json_load(path, text)
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise ZsbenchError(f"{path}: expected {{\"kind\": ..., \"classes\": [{{\"name\": ..., "
                           f"\"texts\": [...]}}, ...]}}")
    if kind is not None and data.get("kind", kind) != kind:
        raise ZsbenchError(f"{path}: holds texts of kind {data.get('kind')!r}, not {kind!r}")
    lines = _key_lines(text, r'"name"\s*:')
    out = []
    for k, entry in enumerate(data["classes"]):
        line = lines[k] if len(lines) == len(data["classes"]) else 0
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ZsbenchError(f"{loc(path, line)}: class entry {k + 1} has no \"name\" string")
        texts = entry.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ZsbenchError(f"{loc(path, line)}: class {entry['name']!r}: \"texts\" must be a "
                               f"list of strings")
        out.append(Record(line, entry["name"], [t.strip() for t in texts]))
    return out
