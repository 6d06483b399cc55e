"""Config models and the dataset table (pydantic only: cheap to import)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from zsbench.specs import PluginConfig

Frames = Literal[50, 64, 300]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    family: Literal["ntu", "pku"]
    classes_file: str            # under splits/classes/
    num_classes: int
    benchmarks: tuple[str, ...]  # partitions this dataset defines
    title: str
    part: int = 0                # PKU-MMD part
    max_setup: int = 0           # NTU: setups that belong to the dataset
    expected_raw: int = 0        # NTU raw file count (report only)
    expected_usable: int = 0     # NTU count after the missing-skeleton lists (report only)
    single_actor: Literal["zeros", "copy"] = "zeros"   # CTR-GCN reference padding


DATASETS: dict[str, DatasetInfo] = {
    "ntu60": DatasetInfo("ntu60", "ntu", "classes/ntu60.txt", 60, ("xsub", "xview"),
                         "NTU RGB+D 60", max_setup=17, expected_raw=56880,
                         expected_usable=56578, single_actor="zeros"),
    "ntu120": DatasetInfo("ntu120", "ntu", "classes/ntu120.txt", 120, ("xsub", "xset"),
                          "NTU RGB+D 120", max_setup=32, expected_raw=114480,
                          expected_usable=113945, single_actor="copy"),
    "pku_mmd": DatasetInfo("pku_mmd", "pku", "classes/pku_mmd.txt", 51, ("xsub", "xview"),
                           "PKU-MMD Part I", part=1),
    "pku_mmd2": DatasetInfo("pku_mmd2", "pku", "classes/pku_mmd.txt", 51, ("xsub", "xview"),
                            "PKU-MMD Part II (51-class id space)", part=2),
}


class DatasetConfig(PluginConfig):
    """Which copy of the dataset to load.

    ``form="prepared"`` (default) memory-maps the store written by ``zsbench data prepare``
    at ``<data_root>/<dataset>/frames<frames>/``. The other forms read files a user already
    holds (converted once into a store next to them, then memory-mapped): ``ctrgcn_npz``
    (``NTU60_CS.npz`` ..., Flora/STAR ``pkuv1_xsub.npz``), ``smie_npy`` (CrossCLR/AimCLR/SMIE
    ``xsub/train_position.npy`` + ``train_label.pkl``) and ``pyskl`` (``ntu60_3danno.pkl``).
    """

    form: Literal["prepared", "ctrgcn_npz", "smie_npy", "pyskl"] = "prepared"
    frames: Frames = Field(50, description="sequence length: 50 (SMIE/CrossCLR), 64 "
                           "(STAR/Neuron), 300 (CTR-GCN arrays)")
    path: str | None = Field(None, description="file or folder of a preprocessed form; "
                             "default: the documented place under the data root")
    benchmark: Literal["xsub", "xview", "xset"] | None = Field(
        None, description="benchmark file to read for ctrgcn_npz / smie_npy (default xsub)")
    cache: str | None = Field(None, description="where converted forms are stored "
                              "(default: <data_root>/<dataset>/imported)")


class PrepareOptions(PluginConfig):
    """Options of ``zsbench data prepare`` (``--frames`` and ``--set key=value``)."""

    frames: Frames = 50
    pipeline: Literal["auto", "ctrgcn", "stgcn"] = Field(
        "auto", description="NTU actor selection: ctrgcn (denoised, centred; default for 300 "
        "and 64 frames) or stgcn (first two bodies per frame; default for 50 frames)")
    resample: Literal["auto", "motion", "crop_resize"] = Field(
        "auto", description="50/64 frames: motion (CrossCLR/SMIE processor; default for 50 "
        "and PKU 64) or crop_resize (STAR/Neuron valid-frame resize; default for NTU 64)")
    single_actor: Literal["auto", "zeros", "copy"] = Field(
        "auto", description="CTR-GCN second slot of single-actor samples: zeros (NTU-60 "
        "script) or copy of actor 1 (NTU-120 script); auto follows the dataset's script")
    track_time: Literal["packed", "true"] = Field(
        "packed", description="reappearing body IDs: packed after first appearance "
        "(reference) or placed at their true frames (fixed)")
    window: Literal["reference", "fixed"] = Field(
        "reference", description="motion processor: first L frames (reference; keeps leading "
        "empty frames) or the span of valid frames (fixed)")
    crop_ratio: float = Field(1.0, gt=0, le=1, description="crop_resize: centre crop ratio")
    long_sequences: Literal["crop", "error"] = "crop"
    truncated: Literal["error", "keep"] = Field(
        "error", description="a truncated .skeleton file: stop with an error, or keep the "
        "complete frames read so far")
    on_error: Literal["stop", "skip"] = Field(
        "stop", description="a malformed file stops the run (completed chunks are kept) or "
        "is skipped and counted")
    missing_list: str = Field(
        "official", description="names excluded before parsing: 'official' (the dataset "
        "authors' missing-skeleton list, shipped: NTU-60 302, NTU-120 535, PKU-MMD I 4 "
        "clips), 'none', or a file with one name per line (replaces the official list); "
        "empty files not on the list are detected and skipped with a count")
    label_overlaps: Literal["error", "keep"] = Field(
        "error", description="PKU-MMD label rows whose frame ranges overlap (by more than "
        "one frame): stop with both lines named, or keep both clips (reference cutters)")
    skeleton_dir: str | None = None
    label_dir: str | None = None
    split_dir: str | None = None
    workers: int = Field(0, ge=0, description="worker processes (0 = one per CPU, at most 8, and at most "
                         "one per 1,000 inputs)")
    chunk_size: int = Field(256, ge=1, le=100000)
    progress: bool = True
    keep_work: bool = Field(False, description="keep the chunk folder after committing")
