"""Dataset keys and official class names (shared by split files, datasets, presets and
reported numbers). Class lists are shipped in ``splits/classes/``."""
from __future__ import annotations

from functools import lru_cache

from .api import ZsbenchError
from .resources import splits_path

CLASS_FILES = {"ntu60": "classes/ntu60.txt", "ntu120": "classes/ntu120.txt",
               "pku_mmd1": "classes/pku_mmd.txt", "pku_mmd2": "classes/pku_mmd.txt"}
_ALIASES = {**dict.fromkeys(("ntu60", "nturgbd60"), "ntu60"),
            **dict.fromkeys(("ntu120", "nturgbd120"), "ntu120"),
            **dict.fromkeys(("pkummd1", "pkummd", "pku", "pku1", "pkummdi"), "pku_mmd1"),
            **dict.fromkeys(("pkummd2", "pku2", "pkummdii"), "pku_mmd2")}


def normalise_name(name: str) -> str:
    """Class-name comparison key: typographic apostrophes -> ', whitespace collapsed, casefold."""
    return " ".join(name.replace("\u2019", "'").replace("\u2018", "'").split()).casefold()


def canonical_dataset(name: str) -> str | None:
    """Split-file dataset key for a dataset name (``ntu60``, ``pku_mmd1``, ...), or None."""
    return _ALIASES.get("".join(ch for ch in name.lower() if ch.isalnum()))


def dataset_family(name: str | None) -> str | None:
    """The dataset family a name belongs to, as the papers' per-dataset settings and
    reported numbers use it: ``ntu60``, ``ntu120`` or ``pku_mmd`` (Part I or II); None
    for anything else (e.g. the embedded benchmark)."""
    key = canonical_dataset(name or "")
    return "pku_mmd" if key in ("pku_mmd1", "pku_mmd2") else key


@lru_cache(maxsize=None)
def _class_list(rel: str) -> tuple[str, ...]:
    return tuple(splits_path(rel).read_text(encoding="utf-8").splitlines())


def class_names(dataset: str) -> list[str]:
    """The official class names of a split-file dataset key (line i = class index i)."""
    key = canonical_dataset(dataset)
    if key is None:
        raise ZsbenchError(f"no class list for dataset {dataset!r}; known: {sorted(CLASS_FILES)}")
    return list(_class_list(CLASS_FILES[key]))
