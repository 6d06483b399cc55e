"""Split files, their class lists and the sample rules (all shipped as data).

The split files ``splits/<family>.json`` use the format described in docs/protocols.md
("Split file format"). Loading validates every split: indices in range, seen and unseen
disjoint, validation classes inside the seen set, and each recorded class name equal to the
dataset's class list (after normalisation: U+2019/U+2018 -> ``'``, whitespace collapsed,
case folded). Errors name the file, the split id and the field.

Public functions::

    load_split_family(family, dataset=None) -> list[ClassSplit]
    load_split_file(family) -> SplitFamily          (metadata: SplitFamily.info(split_id))
    read_split_file(path) -> SplitFamily            (any file in the same format)
    class_names(dataset) -> list[str]               (splits/classes/*.txt)
    check_class_names(info, names, where)           (names of a loaded dataset)
    load_sample_rules()                             (sample_rules.json, as shipped)

Dataset knowledge (NTU file names, the NTU sample inventory, computing xsub/xview/xset
masks from subject/camera/setup ids) belongs to the dataset plugin (``zsbench_ntu``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence


from .api import ClassSplit, ZsbenchError
from .names import CLASS_FILES, canonical_dataset, class_names, normalise_name  # noqa: F401
from .resources import load_json, splits_path

FAMILIES = ("synse", "smie", "star", "purls", "one_shot", "cross_dataset", "sa_dvae")
FORMAT = "zsbench-splits/1"
SAMPLE_RULES = ("xsub", "xview", "xset", "all")


# --------------------------------------------------------------------------------------
# Split files
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitInfo:
    """One split of a split file: the ClassSplit plus the metadata the file records."""

    split: ClassSplit
    group: str
    unseen_names: tuple[str, ...]
    sample_rules: tuple[str, ...]
    validation_names: tuple[str, ...] = ()
    expected_sample_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    exemplars: tuple[str, ...] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def default_rule(self) -> str:
        return self.sample_rules[0]

@dataclass(frozen=True)
class CrossPair:
    """A cross-dataset entry: train on ``source`` minus ``excluded``, test on ``target``'s
    ``unseen`` classes. ``name_overlap`` = (target class, source training class) pairs whose
    names are identical."""

    id: str
    direction: str
    group: str
    source: str
    target: str
    excluded: tuple[int, ...]
    unseen: tuple[int, ...]
    name_overlap: tuple[tuple[int, int], ...]
    raw: Mapping[str, Any] = field(default_factory=dict)

    def class_split(self, order: Sequence[str], drop_overlap: bool = False) -> ClassSplit:
        """The split in the merged class space of ``order`` (dataset keys; class ids of the
        second dataset are offset by the first's class count)."""
        sizes = [len(class_names(d)) for d in order]
        offset = {d: sum(sizes[:i]) for i, d in enumerate(order)}
        if self.source not in offset or self.target not in offset:
            raise ZsbenchError(f"cross-dataset pair {self.id!r} needs datasets "
                               f"{self.source!r} and {self.target!r}, got {list(order)}")
        drop = set(self.excluded) | ({s for _, s in self.name_overlap} if drop_overlap else set())
        n_src = len(class_names(self.source))
        seen = tuple(offset[self.source] + c for c in range(n_src) if c not in drop)
        unseen = tuple(offset[self.target] + c for c in self.unseen)
        return ClassSplit(id=self.id + ("+dropoverlap" if drop_overlap else ""),
                          dataset="+".join(order), num_classes=sum(sizes), unseen=unseen,
                          name=str(self.raw.get("name", "")), seen=seen,
                          sources=(f"{self.source}:{self.raw['train']['split']}",
                                   f"{self.target}:{self.raw['test']['split']}"),
                          notes=f"{self.direction}; train {self.source} "
                                f"{self.raw['train']['split']}, test {self.target} "
                                f"{self.raw['test']['split']}")


@dataclass(frozen=True)
class SplitFamily:
    family: str
    path: Path
    description: str
    sample_rule: Mapping[str, Any]
    notes: tuple[str, ...]
    infos: tuple[SplitInfo, ...]
    pairs: tuple[CrossPair, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)

    def splits(self, dataset: str | None = None) -> list[ClassSplit]:
        key = canonical_dataset(dataset) if dataset else None
        return [i.split for i in self.infos if key is None or i.split.dataset == key]

    def datasets(self) -> list[str]:
        if self.pairs:
            return sorted({p.source for p in self.pairs} | {p.target for p in self.pairs})
        return sorted({i.split.dataset for i in self.infos})

    def info(self, split_id: str) -> SplitInfo:
        for i in self.infos:
            if i.split.id == split_id:
                return i
        raise ZsbenchError(f"{self.path}: no split {split_id!r}; known: "
                           f"{[i.split.id for i in self.infos]}")


class _Ctx:
    """Error helper: messages name the file, the split id and the field."""

    def __init__(self, path: Path, sid: str = "") -> None:
        self.path, self.sid = path, sid

    def fail(self, fld: str, msg: str) -> ZsbenchError:
        sid = f"split {self.sid!r}: " if self.sid else ""
        return ZsbenchError(f"{self.path}: {sid}field {fld!r}: {msg}")

    def get(self, obj: Mapping[str, Any], key: str, typ: type, prefix: str = "") -> Any:
        if key not in obj:
            raise self.fail(prefix + key, "missing")
        val = obj[key]
        if not isinstance(val, typ) or isinstance(val, bool):
            raise self.fail(prefix + key, f"expected {typ.__name__}, got {type(val).__name__}")
        return val

    def indices(self, obj: Mapping[str, Any], key: str, n: int, prefix: str = "") -> tuple[int, ...]:
        vals = self.get(obj, key, list, prefix)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            raise self.fail(prefix + key, "class indices must be integers")
        bad = sorted(v for v in vals if not 0 <= v < n)
        if bad:
            raise self.fail(prefix + key, f"class indices {bad} outside 0..{n - 1}")
        if len(set(vals)) != len(vals):
            raise self.fail(prefix + key, "duplicate class indices")
        return tuple(vals)

    def names(self, obj: Mapping[str, Any], key: str, idx: Sequence[int], dataset: str,
              prefix: str = "") -> tuple[str, ...]:
        names = self.get(obj, key, list, prefix)
        ref = class_names(dataset)
        if len(names) != len(idx):
            raise self.fail(prefix + key, f"{len(names)} names for {len(idx)} class indices")
        for pos, (c, nm) in enumerate(zip(idx, names)):
            if normalise_name(str(nm)) != normalise_name(ref[c]):
                raise self.fail(f"{prefix}{key}[{pos}]", f"name {nm!r} does not match class {c} "
                                f"{ref[c]!r} of {CLASS_FILES[dataset]}")
        return tuple(names)


def _dataset_key(ctx: _Ctx, obj: Mapping[str, Any], prefix: str = "") -> str:
    ds = ctx.get(obj, "dataset", str, prefix)
    if ds not in CLASS_FILES:
        raise ctx.fail(prefix + "dataset", f"unknown dataset {ds!r}; known: {sorted(CLASS_FILES)}")
    return ds


def _parse_split(ctx: _Ctx, s: Mapping[str, Any]) -> SplitInfo:
    ds = _dataset_key(ctx, s)
    n = len(class_names(ds))
    if ctx.get(s, "num_classes", int) != n:
        raise ctx.fail("num_classes", f"{s['num_classes']} but {CLASS_FILES[ds]} has {n} classes")
    unseen = ctx.indices(s, "unseen", n)
    unseen_names = ctx.names(s, "unseen_names", unseen, ds)
    seen = ctx.indices(s, "seen", n) if "seen" in s else None  # optional explicit seen set
    n_seen = len(seen) if seen is not None else n - len(unseen)
    for key, want in (("num_unseen", len(unseen)), ("num_seen", n_seen)):
        if key in s and s[key] != want:
            raise ctx.fail(key, f"{s[key]} but the class lists give {want}")
    val_unseen = None
    val_names: tuple[str, ...] = ()
    if s.get("validation") is not None:
        v = ctx.get(s, "validation", dict)
        val_unseen = ctx.indices(v, "unseen", n, "validation.")
        val_names = ctx.names(v, "unseen_names", val_unseen, ds, "validation.")
    rules = tuple(ctx.get(s, "sample_rules", list))
    bad = [r for r in rules if r not in SAMPLE_RULES]
    if not rules or bad:
        raise ctx.fail("sample_rules", f"{list(rules)}: each must be one of {list(SAMPLE_RULES)}")
    srcs = tuple(str(x.get("ref", x)) if isinstance(x, dict) else str(x)
                 for x in s.get("sources", []))
    split = ClassSplit(id=s["id"], dataset=ds, num_classes=n, unseen=unseen, seen=seen,
                       name=str(s.get("name", "")), validation_unseen=val_unseen,
                       sources=srcs, notes=str(s.get("notes", "")))
    try:
        split.validate(str(ctx.path))
    except ZsbenchError as exc:
        raise ZsbenchError(f"{exc} (fields 'unseen' / 'validation.unseen')") from None
    ex = s.get("exemplars")
    if ex is not None and len(ex) != len(unseen):
        raise ctx.fail("exemplars", f"{len(ex)} exemplars for {len(unseen)} unseen classes")
    return SplitInfo(split=split, group=str(s.get("group") or s.get("name") or s["id"]),
                     unseen_names=unseen_names, sample_rules=rules, validation_names=val_names,
                     expected_sample_counts=dict(s.get("expected_sample_counts") or {}),
                     exemplars=tuple(ex) if ex is not None else None, raw=dict(s))


def _parse_pair(ctx: _Ctx, s: Mapping[str, Any]) -> CrossPair:
    tr = ctx.get(s, "train", dict)
    te = ctx.get(s, "test", dict)
    src, tgt = _dataset_key(ctx, tr, "train."), _dataset_key(ctx, te, "test.")
    if src == tgt:
        raise ctx.fail("test.dataset", f"same dataset as train ({src!r})")
    excluded = ctx.indices(tr, "excluded", len(class_names(src)), "train.")
    ctx.names(tr, "excluded_names", excluded, src, "train.")
    unseen = ctx.indices(te, "unseen", len(class_names(tgt)), "test.")
    ctx.names(te, "unseen_names", unseen, tgt, "test.")
    if not unseen:
        raise ctx.fail("test.unseen", "no unseen classes")
    overlap = []
    for pos, item in enumerate(s.get("name_overlap", [])):
        t, c = int(item[0]), int(item[1])
        if t not in unseen or c in excluded or not 0 <= c < len(class_names(src)) or \
                normalise_name(class_names(tgt)[t]) != normalise_name(class_names(src)[c]):
            raise ctx.fail(f"name_overlap[{pos}]", f"{item!r} is not a test class with the name "
                           "of a training class")
        overlap.append((t, c))
    return CrossPair(id=s["id"], direction=str(s.get("direction", f"{src}->{tgt}")),
                     group=str(s.get("group") or f"{src}->{tgt}"), source=src, target=tgt,
                     excluded=excluded, unseen=unseen, name_overlap=tuple(overlap), raw=dict(s))


def read_split_file(path: Path | str, family: str | None = None) -> SplitFamily:
    """Parse and validate a split file (any path; ``load_split_file`` reads the shipped ones)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ZsbenchError(f"split file {path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ZsbenchError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    ctx = _Ctx(path)
    if not isinstance(data, dict):
        raise ZsbenchError(f"{path}: top level must be an object")
    if data.get("format") != FORMAT:
        raise ctx.fail("format", f"{data.get('format')!r}, expected {FORMAT!r}")
    fam = ctx.get(data, "family", str)
    if family is not None and fam != family:
        raise ctx.fail("family", f"{fam!r}, expected {family!r}")
    if data.get("index_base", 0) != 0:
        raise ctx.fail("index_base", "only 0-based class indices are supported")
    entries = ctx.get(data, "splits", list)
    infos, pairs, seen_ids = [], [], set()
    for pos, s in enumerate(entries):
        if not isinstance(s, dict) or not isinstance(s.get("id"), str) or not s["id"]:
            raise ctx.fail(f"splits[{pos}].id", "missing or not a string")
        if s["id"] in seen_ids:
            raise ctx.fail(f"splits[{pos}].id", f"duplicate split id {s['id']!r}")
        seen_ids.add(s["id"])
        sctx = _Ctx(path, s["id"])
        if fam == "cross_dataset":
            pairs.append(_parse_pair(sctx, s))
        else:
            infos.append(_parse_split(sctx, s))
    if pairs:  # canonical merged class space: NTU-60 first
        infos = [SplitInfo(split=p.class_split(("ntu60", "pku_mmd1")), group=p.group,
                           unseen_names=tuple(p.raw["test"]["unseen_names"]),
                           sample_rules=(str(p.raw.get("sample_rules", {}).get("test", "xsub")),),
                           raw=p.raw) for p in pairs]
    return SplitFamily(family=fam, path=path, description=str(data.get("description", "")),
                       sample_rule=dict(data.get("sample_rule") or {}),
                       notes=tuple(data.get("notes") or ()), infos=tuple(infos),
                       pairs=tuple(pairs), raw=data)


@lru_cache(maxsize=None)
def load_split_file(family: str) -> SplitFamily:
    """The shipped split file of a protocol family, validated."""
    if family not in FAMILIES:
        raise ZsbenchError(f"unknown split family {family!r}; known: {list(FAMILIES)}")
    return read_split_file(splits_path(f"{family}.json"), family)


def load_split_family(family: str, dataset: str | None = None) -> list[ClassSplit]:
    """The class splits of a family (optionally only those of one dataset). Cross-dataset
    splits are expressed in the merged class space ``ntu60+pku_mmd1`` (PKU ids offset by 60)."""
    fam = load_split_file(family)
    if family == "cross_dataset" and dataset is not None:
        key = canonical_dataset(dataset)
        return [i.split for i, p in zip(fam.infos, fam.pairs) if key in (p.source, p.target)]
    return fam.splits(dataset)


def check_class_names(info: SplitInfo, names: Sequence[str], where: str) -> None:
    """Check a loaded dataset's class names against the names a split records."""
    split = info.split
    if len(names) != split.num_classes:
        raise ZsbenchError(f"{where}: {len(names)} classes, but split {split.id!r} "
                           f"({split.dataset}) expects {split.num_classes}")
    pairs = list(zip(split.unseen, info.unseen_names))
    if split.validation_unseen:
        pairs += list(zip(split.validation_unseen, info.validation_names))
    for c, nm in pairs:
        if normalise_name(names[c]) != normalise_name(nm):
            raise ZsbenchError(f"{where}: class {c} is {names[c]!r}, but split {split.id!r} "
                               f"({split.dataset}) names it {nm!r}")


# --------------------------------------------------------------------------------------
# Sample rules
# --------------------------------------------------------------------------------------
def load_sample_rules() -> dict[str, Any]:
    """``sample_rules.json``: benchmark id lists, counts and sources."""
    return load_json("sample_rules.json")
