"""Sample names: NTU stems, PKU-MMD video stems and clip names, PKU split files.

All ids are the 1-based ids written in the names; a class label is ``action - 1``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from zsbench.api import ZsbenchError

NTU_STEM = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")
PKU1_VIDEO = re.compile(r"^(\d{4})-([LMR])$")
PKU2_VIDEO = re.compile(r"^A(\d{2})N(\d{2})-([LMR])$")
VIEW_IDS = {"L": 1, "M": 2, "R": 3}


@dataclass(frozen=True)
class NtuName:
    """The five fields of an NTU file stem ``SsssCcccPpppRrrrAaaa`` (1-based ids)."""

    stem: str
    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        return self.action - 1


def parse_ntu_stem(stem: str, where: str = "") -> NtuName:
    """Parse ``S001C002P003R002A013`` (an optional ``.skeleton`` suffix is removed)."""
    if stem.endswith(".skeleton"):
        stem = stem[: -len(".skeleton")]
    m = NTU_STEM.match(stem)
    if not m:
        loc = f"{where}: " if where else ""
        raise ZsbenchError(
            f"{loc}{stem!r} is not an NTU sample name (expected SsssCcccPpppRrrrAaaa, "
            "e.g. S001C002P003R002A013)")
    s, c, p, r, a = (int(g) for g in m.groups())
    return NtuName(stem, s, c, p, r, a)


def is_ntu_stem(stem: str) -> bool:
    return NTU_STEM.match(stem) is not None


@dataclass(frozen=True)
class PkuVideo:
    """A PKU-MMD video stem: Part I ``0002-L``; Part II ``A05N09-R``."""

    stem: str
    part: int
    number: int        # Part I video number; Part II: 100 * aa + nn
    view: int          # L=1, M=2, R=3

    def clip_name(self, action: int, row: int) -> str:
        """Name of the clip cut from label row ``row`` (1-based), as the reference cutter
        names it: Part I ``F043V001C001L021``, Part II ``A005N009V003C028L004``."""
        if self.part == 1:
            return f"F{self.number % 1000:03d}V{self.view:03d}C{action:03d}L{row:03d}"
        aa, nn = divmod(self.number, 100)
        return f"A{aa:03d}N{nn:03d}V{self.view:03d}C{action:03d}L{row:03d}"


def parse_pku_video(stem: str, part: int) -> PkuVideo | None:
    """Parse a video stem of the given part, or None if it is not one."""
    if part == 1:
        m = PKU1_VIDEO.match(stem)
        if not m:
            return None
        return PkuVideo(stem, 1, int(m.group(1)), VIEW_IDS[m.group(2)])
    m = PKU2_VIDEO.match(stem)
    if not m:
        return None
    return PkuVideo(stem, 2, 100 * int(m.group(1)) + int(m.group(2)), VIEW_IDS[m.group(3)])


PKU_CLIP = re.compile(r"^(?:F(\d{3})|A(\d{3})N(\d{3}))V(\d{3})C(\d{3})L(\d{3})$")


def parse_pku_clip(name: str) -> tuple[int, int, int, int]:
    """``(video number, view, action, row)`` of a clip name (``.skeleton`` suffix allowed)."""
    if name.endswith(".skeleton"):
        name = name[: -len(".skeleton")]
    m = PKU_CLIP.match(name)
    if not m:
        raise ZsbenchError(f"{name!r} is not a PKU-MMD clip name (e.g. F043V001C001L021)")
    f, aa, nn, v, c, row = m.groups()
    number = int(f) if f is not None else 100 * int(aa) + int(nn)
    return number, int(v), int(c), int(row)


def read_pku_split_file(path: Path) -> tuple[list[str], list[str]]:
    """Read a PKU-MMD split file: header, training stems, header, test stems.

    Tolerant of trailing spaces, CRLF, empty items and a missing final newline. Returns
    ``(train_stems, test_stems)``; a stem listed in both is an error.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise ZsbenchError(f"{path}: cannot read PKU-MMD split file: {exc}") from exc
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    heads = [k for k, (_, ln) in enumerate(lines)
             if ln.lower().startswith(("training", "validataion", "validation", "test"))]
    if len(heads) != 2 or not lines[heads[0]][1].lower().startswith("training"):
        raise ZsbenchError(
            f"{path}: expected a 'Training videos:' line, a comma-separated list, a "
            "'Validataion videos:' line and a comma-separated list; found "
            f"{len(heads)} header line(s) in {len([ln for _, ln in lines if ln])} non-empty lines")

    def items(block: list[tuple[int, str]]) -> tuple[list[str], int]:
        out = [x.strip() for _, ln in block for x in ln.split(",") if x.strip()]
        return out, (block[0][0] if block else 0)

    (train, train_line) = items(lines[heads[0] + 1: heads[1]])
    (test, test_line) = items(lines[heads[1] + 1:])
    both = sorted(set(train) & set(test))
    if both:
        raise ZsbenchError(
            f"{path}: {len(both)} video(s) listed as both training (line {train_line}) and "
            f"test (line {test_line}): {both[:5]}")
    return train, test
