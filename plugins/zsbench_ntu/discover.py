"""Find the raw inputs of a dataset under ``--raw`` (and the PKU-MMD split files)."""
from __future__ import annotations

import os
from importlib import resources as ilr
from pathlib import Path

from zsbench.api import ZsbenchError
from zsbench.resources import load_json

from .config import DatasetInfo, PrepareOptions
from .names import is_ntu_stem, parse_ntu_stem, parse_pku_video, read_pku_split_file

PKU_FOLDERS = {
    1: (("PKU_Skeleton_Renew", "skeleton", "Skeleton"),
        ("Train_Label_PKU_final", "label", "Label", "Label_PKUMMD")),
    2: (("skeleton", "Skeleton_v2", "PKU_Skeleton_Renew"),
        ("label", "Label_PKUMMD_v2", "Train_Label_PKU_final")),
}
PKU_SPLIT_FILES = {1: ("cross-subject.txt", "cross-view.txt"),
                   2: ("cross_subject_v2.txt", "cross_view_v2.txt")}
SHIPPED_PKU1_SPLITS = ("pku_mmd1_cross-subject.txt", "pku_mmd1_cross-view.txt")


def read_name_list(path: str | Path) -> set[str]:
    """A list of sample/clip stems, one per line (a '.skeleton' suffix is dropped)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ZsbenchError(f"{p}: cannot read the name list: {exc}") from exc
    out = set()
    for line in text.splitlines():
        s = line.strip()
        if s.endswith(".skeleton"):
            s = s[: -len(".skeleton")]
        if s:
            out.add(s)
    return out


def missing_names(info: DatasetInfo, setting: str) -> set[str]:
    """The names excluded before parsing: ``official`` = the list shipped with zsbench
    (NTU-60: 302 and NTU-120: 535 samples from the dataset authors' repository, PKU-MMD
    Part I: the clips listed in the sample rules; none for Part II), ``none``, or the
    names in the file ``setting``."""
    if setting == "none":
        return set()
    if setting != "official":
        return read_name_list(setting)
    if info.family == "ntu":
        return set(load_json("ntu_inventory.json")["missing"][info.name])
    rules = load_json("sample_rules.json")
    return set(rules.get(f"pku_mmd{info.part}", {}).get("missing_clips", []))


def unreadable(path: str, exc: OSError, opts: PrepareOptions, report: dict[str, int]) -> None:
    """An input that cannot even be listed or stat'ed (a dangling symbolic link, a folder
    without permission): an error naming it, or, with ``on_error=skip``, a count."""
    if opts.on_error == "skip":
        report["unreadable"] = report.get("unreadable", 0) + 1
        return
    if os.path.islink(path) and not os.path.exists(path):
        what = f"a broken symbolic link (to {os.readlink(path)}, which does not exist)"
    else:
        what = f"cannot be read ({exc.strerror or exc})"
    raise ZsbenchError(f"{path}: {what}. Fix or remove it, or rerun with --set on_error=skip "
                       "to skip and count such inputs.")


def _stat(path: str, opts: PrepareOptions, report: dict[str, int]) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError as exc:
        unreadable(path, exc, opts, report)
        return None


def discover_ntu(info: DatasetInfo, raw: Path, opts: PrepareOptions,
                 report: dict[str, int]) -> list[list]:
    """Sorted ``[path, stem, size, mtime_ns]`` of the dataset's usable ``.skeleton`` files."""
    found: dict[str, str] = {}

    def walk_error(exc: OSError) -> None:
        unreadable(exc.filename or str(raw), exc, opts, report)

    for dirpath, dirnames, filenames in os.walk(raw, onerror=walk_error, followlinks=True):
        dirnames.sort()
        for fn in filenames:
            if not fn.endswith(".skeleton"):
                continue
            stem = fn[: -len(".skeleton")]
            path = os.path.join(dirpath, fn)
            if not is_ntu_stem(stem):
                report["unrecognised_names"] = report.get("unrecognised_names", 0) + 1
                continue
            if stem in found:
                raise ZsbenchError(f"sample {stem} found twice: {found[stem]} and {path}; "
                                   "keep one copy")
            found[stem] = path
    if not found:
        raise ZsbenchError(f"no NTU .skeleton files (SsssCcccPpppRrrrAaaa.skeleton) under {raw}")
    missing = missing_names(info, opts.missing_list)
    items = []
    for stem in sorted(found):
        n = parse_ntu_stem(stem)
        if n.setup > info.max_setup or n.action > info.num_classes:
            report["not_in_dataset"] = report.get("not_in_dataset", 0) + 1
            continue
        if stem in missing:
            report["missing_list"] = report.get("missing_list", 0) + 1
            continue
        st = _stat(found[stem], opts, report)
        if st is not None:
            items.append([found[stem], stem, st.st_size, st.st_mtime_ns])
    if not items:
        raise ZsbenchError(f"no {info.title} samples among the {len(found)} .skeleton files "
                           f"under {raw} (setups 1-{info.max_setup}, actions 1-{info.num_classes})")
    return items


def _first_dir(raw: Path, override: str | None, candidates: tuple[str, ...], what: str) -> Path:
    if override:
        p = Path(override).expanduser()
        if not p.is_dir():
            raise ZsbenchError(f"{what} folder {p} does not exist")
        return p
    for c in candidates:
        if (raw / c).is_dir():
            return raw / c
    raise ZsbenchError(f"no {what} folder under {raw}: looked for {', '.join(candidates)} "
                       f"(or pass --set {what.split()[0]}_dir=DIR)")


def pku_split_files(part: int, raw: Path, opts: PrepareOptions) -> tuple[Path, Path, str]:
    """The (cross-subject, cross-view) split files and where they came from."""
    names = PKU_SPLIT_FILES[part]
    places = [Path(opts.split_dir).expanduser()] if opts.split_dir else []
    places += [raw / "Split", raw / "split", raw]
    for place in places:
        files = [place / n for n in names]
        if all(f.is_file() for f in files):
            return files[0], files[1], str(place)
    if part == 1:
        base = ilr.files("zsbench_ntu")
        files = [Path(str(base / n)) for n in SHIPPED_PKU1_SPLITS]
        if all(f.is_file() for f in files):
            return files[0], files[1], "shipped copy of the PKU-MMD Part I split files"
    raise ZsbenchError(f"PKU-MMD Part {part} split files {names[0]} and {names[1]} not found; "
                       f"looked in {', '.join(str(p) for p in places)} "
                       "(pass --set split_dir=DIR)")


def discover_pku(info: DatasetInfo, raw: Path, opts: PrepareOptions,
                 report: dict[str, int]) -> tuple[list[list], list[str], dict[str, str]]:
    """Sorted ``[video, skeleton, labels, train_xsub, train_xview, size, mtime_ns]`` items,
    the missing-clip names, and provenance notes."""
    part = info.part
    skel_dir = _first_dir(raw, opts.skeleton_dir, PKU_FOLDERS[part][0], "skeleton")
    label_dir = _first_dir(raw, opts.label_dir, PKU_FOLDERS[part][1], "label")
    xsub_file, xview_file, split_src = pku_split_files(part, raw, opts)
    xsub_train, xsub_test = (set(x) for x in read_pku_split_file(xsub_file))
    xview_train, xview_test = (set(x) for x in read_pku_split_file(xview_file))
    items = []
    try:
        entries = sorted(os.listdir(skel_dir))
    except OSError as exc:
        raise ZsbenchError(f"{skel_dir}: cannot list the skeleton folder "
                           f"({exc.strerror or exc})") from None
    for entry in entries:
        if not entry.endswith(".txt"):
            continue
        stem = entry[:-4]
        if parse_pku_video(stem, part) is None:
            report["unrecognised_names"] = report.get("unrecognised_names", 0) + 1
            continue
        label = label_dir / entry
        if not label.is_file():
            if os.path.lexists(label):         # a broken link or not a file
                unreadable(str(label), OSError(0, "not a readable file"), opts, report)
                continue
            report["videos_without_labels"] = report.get("videos_without_labels", 0) + 1
            continue
        in_sub = stem in xsub_train or stem in xsub_test
        in_view = stem in xview_train or stem in xview_test
        if not (in_sub and in_view):
            report["not_in_split_files"] = report.get("not_in_split_files", 0) + 1
            continue
        st, lst = _stat(str(skel_dir / entry), opts, report), _stat(str(label), opts, report)
        if st is None or lst is None:
            continue
        items.append([stem, str(skel_dir / entry), str(label), stem in xsub_train,
                      stem in xview_train, st.st_size + lst.st_size,
                      st.st_mtime_ns + lst.st_mtime_ns])
    if not items:
        raise ZsbenchError(f"no PKU-MMD Part {part} videos (skeleton + label file, listed in the "
                           f"split files) in {skel_dir} and {label_dir}")
    missing = missing_names(info, opts.missing_list)
    provenance = {"skeleton_dir": str(skel_dir), "label_dir": str(label_dir),
                  "split_files": split_src}
    return items, sorted(missing), provenance
