"""STAR's side information: the ``star_parts`` text source and the tensors the network reads.

``star_parts`` gives, per class, one string per body part (head, hand, arm, hip, leg, foot)
composed as ``Text_Prompt.py`` does: ``<class name> + ',' + <part sentence>``. It reads a
STAR part-description file (``name; Head: ...; Hand: ...; ...`` per line), or, without a
path, the dataset's own ``parts`` texts (six per class; the embedded benchmark ships them)
with the dataset's class names.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from zsbench.api import ClassTexts, SkeletonDataset, ZsbenchError

from .config import PART_NAMES, StarPartsConfig

TextsByKind = dict[str, list[list[str]]]


def _compose(template: str, name: str, part: str) -> str:
    """The fields as split, unstripped (the code joins ``name + ',' + ' Head: ...'``)."""
    try:
        return template.format(name=name, part=part)
    except (KeyError, IndexError, ValueError) as exc:
        raise ZsbenchError(f"text source 'star_parts': bad template {template!r} (use "
                           f"'{{name}}' and '{{part}}'): {exc}") from exc


def read_part_file(path: Path, template: str) -> list:
    """STAR ``*_part_descriptions.txt``: ``name; Head: ...; ...; Foot: ...`` per line, split
    on ';' as ``Text_Prompt.py`` does (fields after the seventh are ignored there, e.g. the
    trailing ';' of NTU line 5 ``drop``). Returns matching records of the six composed
    strings."""
    from zsbench_text import formats
    from zsbench_text.matching import Record

    out = []
    for no, line in formats.read_lines(path):
        fields = line.split(";")
        extra = [f for f in fields[1 + len(PART_NAMES):] if f.strip()]
        if len(fields) < 1 + len(PART_NAMES) or extra:
            raise ZsbenchError(f"{path}:{no}: expected 7 ';'-separated fields "
                               f"(name; Head: ...; Hand: ...; Arm: ...; Hip: ...; Leg: ...; "
                               f"Foot: ...), found {len(fields)}")
        name, parts = fields[0].strip(), fields[1:1 + len(PART_NAMES)]
        for part, text in zip(PART_NAMES, parts):
            if not text.strip():
                raise ZsbenchError(f"{path}:{no}: class {name!r}: the {part} description is "
                                   "empty")
        out.append(Record(no, name, [_compose(template, fields[0], p) for p in parts]))
    return out


def star_parts(config: StarPartsConfig, dataset: SkeletonDataset) -> TextsByKind:
    """``{kind: [[name,head], [name,hand], ... six strings] per class}``."""
    from zsbench_text import formats
    from zsbench_text.matching import align
    from zsbench_text.sources import shipped_file

    if config.path is not None:
        path = Path(config.path).expanduser()
        records = read_part_file(path, config.template)
        return {config.kind: align(records, dataset, path, allow_prefix=config.allow_prefix)}
    path = shipped_file(dataset, "parts", "star_parts", "a STAR *_part_descriptions.txt file")
    per_class = align(formats.read_zsbench_json(path, "parts"), dataset, path,
                      strict_names=True)
    out = []
    for i, (name, parts) in enumerate(zip(dataset.class_names, per_class)):
        if len(parts) != len(PART_NAMES):
            raise ZsbenchError(f"text source 'star_parts': {path}: class {i} {name!r} has "
                               f"{len(parts)} part texts; STAR needs {len(PART_NAMES)} "
                               f"({', '.join(PART_NAMES)})")
        out.append([_compose(config.template, str(name), p) for p in parts])
    return {config.kind: out}


# ------------------------------------------------------------------------------ tensors
def name_matrix(bank: ClassTexts, kind: str) -> np.ndarray:
    """(K, D) label embeddings: the first string of ``kind`` per class."""
    if kind not in bank.embeddings:
        raise ZsbenchError(f"STAR needs the text kind {kind!r} (class names); loaded kinds: "
                           f"{bank.kinds}")
    return bank.matrix(kind, reduce="first")


def part_tensor(bank: ClassTexts, kind: str, num_parts: int) -> np.ndarray:
    """(K, P, D) part-description embeddings, one row per body part and class."""
    if kind not in bank.embeddings:
        raise ZsbenchError(f"STAR needs the text kind {kind!r} ({num_parts} body-part "
                           f"descriptions per class); loaded kinds: {bank.kinds}. The "
                           "'star_parts' text source builds it from a STAR part-description "
                           "file (--set text.star_parts.path=...) or the dataset's 'parts' "
                           "texts")
    rows = []
    for cid, emb in zip(bank.class_ids, bank.embeddings[kind]):
        emb = np.asarray(emb, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != num_parts:
            raise ZsbenchError(f"STAR: text kind {kind!r} has {emb.shape[0]} strings for class "
                               f"{int(cid)}, expected one per body part ({num_parts}, as "
                               "method.parts defines them)")
        rows.append(emb)
    return np.stack(rows)
