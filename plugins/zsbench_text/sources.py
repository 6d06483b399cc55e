"""Text sources: ``(config, dataset) -> {kind: [[str, ...] per class]}`` in class order.

Each file source reads one upstream format given ``config.path``; with no path it reads
the dataset's own zsbench JSON file of its kind (``dataset.texts[kind]``). A ``.json``
path given to a line-format source is read as a zsbench JSON text file (how regenerated
texts, e.g. DVTA contexts, are supplied).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from zsbench.api import SkeletonDataset, ZsbenchError

from . import formats
from .configs import (ContextConfig, DatasetTextsConfig, DescriptionConfig, FileSourceConfig,
                      FloraCsvConfig, FloraLlmConfig, GapSentenceConfig, GapSynonymConfig,
                      MsfActionConfig, MsfLabelConfig, MsfMotionConfig, NamesConfig,
                      NeuronConfig, PartsConfig, PhasesConfig, SkeletonFocusedConfig)
from .matching import Record, align

TextsByKind = dict[str, list[list[str]]]


def shipped_file(dataset: SkeletonDataset, kind: str, source: str, hint: str) -> Path:
    """The dataset's own text file of ``kind``, or an error saying what to configure."""
    path = dataset.texts.get(kind)
    if path is None:
        shipped = sorted(dataset.texts) or "none"
        raise ZsbenchError(
            f"text source {source!r}: no path given and dataset {dataset.name!r} ships no "
            f"{kind!r} texts (it ships: {shipped}); set path to {hint}")
    return Path(path)


def _read_shipped(dataset: SkeletonDataset, kind: str, source: str,
                  hint: str) -> list[list[str]]:
    path = shipped_file(dataset, kind, source, hint)
    return align(formats.read_zsbench_json(path, kind), dataset, path, strict_names=True)


def _file_source(config: FileSourceConfig, dataset: SkeletonDataset, source: str, hint: str,
                 reader: Callable[..., list[Record]], **options: Any) -> TextsByKind:
    if config.path is None:
        return {config.kind: _read_shipped(dataset, config.kind, source, hint)}
    path = Path(config.path).expanduser()
    if path.suffix.lower() == ".json":
        records, strict = formats.read_zsbench_json(path), True
    else:
        records, strict = reader(path, **options), False
    texts = align(records, dataset, path, match=config.match, allow_prefix=config.allow_prefix,
                  strict_names=strict)
    return {config.kind: texts}


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------
def names(config: NamesConfig, dataset: SkeletonDataset) -> TextsByKind:
    """Class names (the dataset's, or a label map), through ``config.template``."""
    if config.path is None:
        raw = list(dataset.class_names)
        for i, n in enumerate(raw):
            if not str(n).strip():
                raise ZsbenchError(f"dataset {dataset.name!r}: class {i} has an empty name")
    else:
        path = Path(config.path).expanduser()
        rows = align(formats.read_labelmap(path), dataset, path, match=config.match,
                     allow_prefix=config.allow_prefix)
        raw = [r[0] for r in rows]
    out = []
    for n in raw:
        try:
            out.append([config.template.format(name=str(n).strip())])
        except (KeyError, IndexError, ValueError) as exc:
            raise ZsbenchError(f"text source 'names': bad template {config.template!r} "
                               f"(use '{{name}}' for the class name): {exc}") from exc
    return {config.kind: out}


def description(config: DescriptionConfig, dataset: SkeletonDataset) -> TextsByKind:
    """SMIE/PGFA complete descriptions ``descriptions/{ntu60,ntu120,pku}_des.txt``."""
    return _file_source(config, dataset, "description", "a *_des.txt file",
                        formats.read_quoted_lines)


def skeleton_focused(config: SkeletonFocusedConfig, dataset: SkeletonDataset) -> TextsByKind:
    """PGFA skeleton-focused descriptions ``descriptions/{ntu,pku}_ska_gpt4.txt``."""
    return _file_source(config, dataset, "skeleton_focused", "a *_ska_gpt4.txt file",
                        formats.read_quoted_lines)


def parts(config: PartsConfig, dataset: SkeletonDataset) -> TextsByKind:
    """GAP ``pasta_openai_t01.txt`` / PGFA ``ntu_parts_from_GAP.txt`` body-part texts."""
    return _file_source(config, dataset, "parts", "pasta_openai_t01.txt or "
                        "ntu_parts_from_GAP.txt", formats.read_pasta, style=config.style,
                        include_name=config.include_name)


def gap_sentence(config: GapSentenceConfig, dataset: SkeletonDataset) -> TextsByKind:
    """GAP ``sentence_openai_t01.txt``."""
    return _file_source(config, dataset, "gap_sentence", "sentence_openai_t01.txt",
                        formats.read_gap_sentence, split_sentences=config.split_sentences)


def gap_synonym(config: GapSynonymConfig, dataset: SkeletonDataset) -> TextsByKind:
    """GAP ``synonym_openai_t01.txt``."""
    return _file_source(config, dataset, "gap_synonym", "synonym_openai_t01.txt",
                        formats.read_gap_synonym, include_name=config.include_name)


def msf_label(config: MsfLabelConfig, dataset: SkeletonDataset) -> TextsByKind:
    """MSF ``sem_info/lb_{60,120}.csv`` class labels."""
    return _file_source(config, dataset, "msf_label", "sem_info/lb_{60,120}.csv",
                        formats.read_idx_csv, names=True)


def msf_action(config: MsfActionConfig, dataset: SkeletonDataset) -> TextsByKind:
    """MSF ``sem_info/ad_{60,120}.csv`` action descriptions."""
    return _file_source(config, dataset, "msf_action", "sem_info/ad_{60,120}.csv",
                        formats.read_idx_csv)


def msf_motion(config: MsfMotionConfig, dataset: SkeletonDataset) -> TextsByKind:
    """MSF ``sem_info/md_{60,120}.csv`` motion descriptions."""
    return _file_source(config, dataset, "msf_motion", "sem_info/md_{60,120}.csv",
                        formats.read_idx_csv)


def flora_csv(config: FloraCsvConfig, dataset: SkeletonDataset) -> TextsByKind:
    """Flora ``semantics/{ntu60,ntu120,pku51}.csv`` (``label`` column)."""
    return _file_source(config, dataset, "flora_csv", "semantics/{ntu60,ntu120,pku51}.csv",
                        formats.read_idx_csv)


def flora_llm(config: FloraLlmConfig, dataset: SkeletonDataset) -> TextsByKind:
    """Flora ``semantics/{ntu60,ntu120,pku51}_llm.txt``."""
    return _file_source(config, dataset, "flora_llm", "semantics/*_llm.txt",
                        formats.read_quoted_lines)


def context(config: ContextConfig, dataset: SkeletonDataset) -> TextsByKind:
    """DVTA-style context descriptions: one line per class (an optional quoted class name
    is checked like the SMIE files) or a zsbench JSON file."""
    return _file_source(config, dataset, "context", "a context file (one line per class, "
                        "or zsbench JSON)", formats.read_quoted_lines)


def _json_only(path: Path) -> list[Record]:
    raise ZsbenchError(f"{path}: phase-wise texts are read from a zsbench JSON file "
                       f"(.json: {{\"kind\": \"phases\", \"classes\": [{{\"name\": ..., "
                       f"\"texts\": [...]}}]}})")


def phases(config: PhasesConfig, dataset: SkeletonDataset) -> TextsByKind:
    """Phase-wise descriptions (zsbench JSON; no upstream file has this form: Neuron's
    per-phase files are the ``neuron`` source)."""
    return _file_source(config, dataset, "phases", "a zsbench JSON file", _json_only)


def neuron(config: NeuronConfig, dataset: SkeletonDataset) -> TextsByKind:
    """Neuron spatial (cg/mg/fg) and temporal (fp/sp/tp) side information, one kind per
    phase: ``<kind_prefix><phase>``, e.g. ``neuron_spatial_fg``."""
    if not config.phases:
        raise ZsbenchError("text source 'neuron': phases is empty")
    out: TextsByKind = {}
    for phase in dict.fromkeys(config.phases):
        kind = f"{config.kind_prefix}{phase}"
        if config.path is None:
            out[kind] = _read_shipped(dataset, kind, "neuron", "a Neuron semantics/<dataset> "
                                      "folder")
            continue
        root = Path(config.path).expanduser()
        group = phase.split("_")[0]
        candidates = [root / group / f"{phase}.json", root / f"{phase}.json"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise ZsbenchError(f"text source 'neuron': no {phase}.json for phase {phase!r}; "
                               f"looked for {', '.join(map(str, candidates))}")
        out[kind] = align(formats.read_neuron_json(path), dataset, path, match=config.match,
                          allow_prefix=config.allow_prefix)
    return out


def dataset_texts(config: DatasetTextsConfig, dataset: SkeletonDataset) -> TextsByKind:
    """Every text kind the dataset ships (or those named in ``kinds``)."""
    kinds = list(dataset.texts) if config.kinds is None else list(dict.fromkeys(config.kinds))
    if not kinds:
        raise ZsbenchError(f"text source 'dataset': dataset {dataset.name!r} ships no texts")
    return {k: _read_shipped(dataset, k, "dataset", "a file of another source") for k in kinds}
