"""Config models of the text sources and encoders (pure pydantic: no torch import)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from zsbench.specs import PluginConfig

MatchMode = Literal["auto", "index", "name"]


class NamesConfig(PluginConfig):
    """Class names: the dataset's own names, or a label-map file (one name per line, or a
    1-D string ``.npy`` such as SynSE ``labels.npy``)."""

    path: Path | None = Field(default=None, description="label map (.txt or .npy); default: "
                              "the dataset's class_names")
    kind: str = "name"
    template: str = Field(default="{name}", description="format string applied to each name")
    match: MatchMode = "auto"
    allow_prefix: bool = False


class FileSourceConfig(PluginConfig):
    """Common options of every file-reading source.

    ``path`` unset: the dataset's own file of that kind (``dataset.texts[kind]``) is read.
    ``match``: ``auto`` matches by class name when the file's names are the dataset's names
    (any order), else by row order with a plausibility check of the names; ``index`` forces
    row order; ``name`` forces exact name matching (the file may hold extra classes).
    ``allow_prefix``: let a file without class names that has more rows than the dataset
    has classes serve it with its first rows (NTU-120 file for NTU-60).
    """

    path: Path | None = None
    kind: str = "text"
    match: MatchMode = "auto"
    allow_prefix: bool = False


class DescriptionConfig(FileSourceConfig):
    """SMIE/PGFA complete descriptions ``*_des.txt`` (also Flora ``*_llm.txt``)."""

    kind: str = "description"


class SkeletonFocusedConfig(FileSourceConfig):
    """PGFA skeleton-focused GPT-4 descriptions ``*_ska_gpt4.txt``."""

    kind: str = "skeleton_focused"


class PartsConfig(FileSourceConfig):
    """GAP "pasta" body-part descriptions (= PGFA ``ntu_parts_from_GAP.txt``)."""

    kind: str = "parts"
    style: Literal["joined", "list"] = Field(
        default="joined", description="joined: one string per class (the six part phrases "
        "joined with '; '); list: six strings per class (head, hand, arm, hip, leg, foot)")
    include_name: bool = Field(default=False, description="joined style: prefix the class "
                               "name ('<name>: head ...; hand ...')")


class GapSentenceConfig(FileSourceConfig):
    """GAP ``sentence_openai_t01.txt`` (name, several sentences)."""

    kind: str = "sentence"
    split_sentences: bool = False


class GapSynonymConfig(FileSourceConfig):
    """GAP ``synonym_openai_t01.txt`` (name, synonyms)."""

    kind: str = "synonym"
    include_name: bool = True


class MsfLabelConfig(FileSourceConfig):
    """MSF ``lb_{60,120}.csv`` class labels."""

    kind: str = "name"


class MsfActionConfig(FileSourceConfig):
    """MSF ``ad_{60,120}.csv`` action descriptions."""

    kind: str = "description"


class MsfMotionConfig(FileSourceConfig):
    """MSF ``md_{60,120}.csv`` motion descriptions (= Flora/SA-DVAE csv bodies)."""

    kind: str = "motion"


class FloraCsvConfig(FileSourceConfig):
    """Flora ``{ntu60,ntu120,pku51}.csv`` (``label`` column: motion descriptions)."""

    kind: str = "motion"


class FloraLlmConfig(FileSourceConfig):
    """Flora ``{ntu60,ntu120,pku51}_llm.txt`` (one LLM description per class)."""

    kind: str = "description"


class ContextConfig(FileSourceConfig):
    """DVTA-style context descriptions (not published upstream): a text file with one
    line per class, or a zsbench text JSON file."""

    kind: str = "context"


class PhasesConfig(FileSourceConfig):
    """Phase-wise descriptions (start / middle / end of the action, several strings per
    class) in a zsbench JSON file; the embedded benchmark ships them."""

    kind: str = "phases"


NEURON_PHASES = ("spatial_cg", "spatial_mg", "spatial_fg",
                 "temporal_fp", "temporal_sp", "temporal_tp")


class NeuronConfig(PluginConfig):
    """Neuron multi-turn side information: ``path`` is the folder holding
    ``spatial/spatial_{cg,mg,fg}.json`` and ``temporal/temporal_{fp,sp,tp}.json`` (e.g.
    ``semantics/ntu``); the JSON files may also sit directly in it."""

    path: Path | None = None
    phases: list[Literal["spatial_cg", "spatial_mg", "spatial_fg",
                         "temporal_fp", "temporal_sp", "temporal_tp"]] = Field(
        default_factory=lambda: list(NEURON_PHASES))
    kind_prefix: str = "neuron_"
    match: MatchMode = "auto"
    allow_prefix: bool = False


class DatasetTextsConfig(PluginConfig):
    """Texts the dataset ships itself (zsbench text JSON files)."""

    kinds: list[str] | None = Field(default=None, description="kinds to read; default all")


class SbertConfig(PluginConfig):
    """Sentence-BERT (sentence-transformers) text encoder."""

    model: str = Field(default="all-MiniLM-L6-v2", description="model name in the local "
                       "Hugging Face cache, or a local model folder")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:1, ...")
    batch_size: int = Field(default=64, ge=1)
    normalize: bool = Field(default=False, description="L2-normalise the embeddings "
                            "(all-MiniLM-L6-v2 already ends with a Normalize module)")
    show_progress: bool | None = Field(default=None, description="None: a progress bar "
                                       "when more than progress_threshold texts and stderr "
                                       "is a terminal (ZSBENCH_PROGRESS=0/1 overrides)")
    progress_threshold: int = 256
    allow_download: bool = Field(default=False, description="let sentence-transformers "
                                 "download a model that is not available locally")


class ClipConfig(PluginConfig):
    """CLIP text encoder (open_clip)."""

    model: str = Field(default="ViT-B-32", description="open_clip model name")
    pretrained: str = Field(default="openai", description="open_clip pretrained tag, a "
                            "local weights file, or 'random' (untrained weights: tests only)")
    cache_dir: Path | None = Field(default=None, description="where open_clip weights are "
                                   "looked for (default: the Hugging Face / open_clip cache)")
    seed: int = Field(default=0, description="initialisation seed for pretrained='random'")
    device: str = "auto"
    batch_size: int = Field(default=64, ge=1)
    normalize: bool = False
    show_progress: bool | None = None
    progress_threshold: int = 256
    allow_download: bool = False
