"""Parse NTU RGB+D ``.skeleton`` files (grammar: DATA_FORMATS.md §1.2).

Compiled path: when the optional extension ``zsbench_ntu._skeleton_c`` was built (any
install with a C compiler), it walks the file once and converts x, y, z bit-identically
to ``float()`` (an exact fast path for plain decimals, else the conversion behind
``float()``); it returns None for anything that is not a plain, well-formed file, which
then goes to the slow path below. ``ZSBENCH_PURE_PYTHON=1`` turns it off (tests compare
both paths).

Numpy fast path (no extension): read the whole file, find every token start with numpy,
walk the frame headers (a Python step per *frame*; bodies, lines and joints are located
by index arithmetic), check that every line holds exactly the grammar's tokens, and
convert only the x, y, z tokens with one call to numpy's C text reader. Any inconsistency sends the file to the
slow, line-by-line path, which either parses it (non-finite values, exotic spellings) or
raises a ``RawFormatError`` naming the file, the 1-based line and what was expected.

Body IDs are kept as strings (they are 17-digit integers that float64 cannot hold).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsbench.api import ZsbenchError

try:
    from . import _skeleton_c
except ImportError:  # built without a C compiler: the numpy fast path is used
    _skeleton_c = None

JOINTS = 25
JOINT_FIELDS = ("x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW",
                "orientationX", "orientationY", "orientationZ", "trackingState")
BODY_FIELDS = 10
_RECORD_TOKENS = 1 + BODY_FIELDS + len(JOINT_FIELDS) * JOINTS  # body line + J line + joints
_ALLOWED = b"0123456789.-+eE \t\r\n"
_JOINT_FIRST = BODY_FIELDS + 1 + len(JOINT_FIELDS) * np.arange(JOINTS)  # x token of each joint line
_LINE_FIRST = np.concatenate(([0, BODY_FIELDS], _JOINT_FIRST))  # first token of each record line


class RawFormatError(ZsbenchError):
    """A raw file does not follow its documented format. ``partial`` holds what could be
    read before the problem when that is meaningful (a truncated file)."""

    def __init__(self, path: str, line: int | None, message: str,
                 partial: "ParsedSkeleton | None" = None) -> None:
        where = f"{path}: line {line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.reason, self.partial = str(path), line, message, partial


@dataclass
class ParsedSkeleton:
    """One file as body records, in file order.

    ``frame[r]`` is the 0-based raw frame index of record ``r``, ``body_ids[r]`` its
    tracking ID (string), ``joints[r]`` its (25, 3) float32 x, y, z. ``body_codes[r]``,
    when the parser provides it, numbers the distinct IDs in order of first appearance.
    """

    path: str
    num_frames: int
    frame: np.ndarray
    body_ids: list[str]
    joints: np.ndarray
    truncated_line: int | None = None
    notes: dict[str, int] = field(default_factory=dict)
    body_codes: np.ndarray | None = None

    @property
    def num_records(self) -> int:
        return len(self.body_ids)


def parse_skeleton(path: str | Path, keep_truncated: bool = False) -> ParsedSkeleton:
    """Parse one ``.skeleton`` file. ``keep_truncated`` keeps the complete frames of a
    file that ends early instead of raising (the run records it)."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise RawFormatError(path, None, f"cannot read file: {exc.strerror or exc}") from exc
    fast = _parse_compiled(raw) if compiled_parser_enabled() else _parse_fast(raw)
    if fast is not None:
        num_frames, frames, ids, joints, codes = fast
        return ParsedSkeleton(path, num_frames, frames, ids, joints, body_codes=codes)
    return _parse_slow(raw, path, keep_truncated)


def compiled_parser_enabled() -> bool:
    """True when the compiled fast path is built and not turned off."""
    return _skeleton_c is not None and os.environ.get("ZSBENCH_PURE_PYTHON", "") in ("", "0")


def _parse_compiled(raw: bytes):
    res = _skeleton_c.parse(raw)
    if res is None:
        return None
    num_frames, frames, codes, unique_ids, xyz = res
    codes = np.frombuffer(codes, dtype=np.int64)
    nrec = len(codes)
    with np.errstate(over="ignore"):     # beyond float32: inf, dropped as non-finite later
        joints = np.frombuffer(xyz, dtype=np.float64).astype(np.float32).reshape(nrec, JOINTS, 3)
    ids = [unique_ids[c] for c in codes.tolist()]
    return num_frames, np.frombuffer(frames, dtype=np.int64).copy(), ids, joints, codes.copy()


def _parse_fast(raw: bytes):
    if not raw or raw.translate(None, _ALLOWED):
        return None  # letters (nan/inf, garbage) or odd bytes: the slow path decides
    a = np.frombuffer(raw, dtype=np.uint8)
    ws = a <= 32
    starts = np.empty(len(a), dtype=bool)
    starts[0] = not ws[0]
    np.less(ws[1:], ws[:-1], out=starts[1:])
    ts = np.flatnonzero(starts)
    n = len(ts)
    if n == 0:
        return None
    ts = np.append(ts, len(a))        # sentinel: token k spans raw[ts[k]:ts[k + 1]]
    # Walk the frame headers (one Python step per frame); bodies are located by arithmetic.
    hdr: list[int] = []
    nbs: list[int] = []
    try:
        num_frames = int(raw[ts[0]:ts[1]])
        if num_frames < 0:
            return None
        pos = 1
        for _ in range(num_frames):
            bodies = int(raw[ts[pos]:ts[pos + 1]])
            if bodies < 0:
                return None
            hdr.append(pos)
            nbs.append(bodies)
            pos += 1 + bodies * _RECORD_TOKENS
    except (ValueError, IndexError):
        return None
    if pos != n:
        return None
    nb = np.asarray(nbs, dtype=np.int64)
    nrec = int(nb.sum())
    frames = np.repeat(np.arange(num_frames, dtype=np.int64), nb)
    first_rec = np.cumsum(nb) - nb                             # record index of each frame's first
    rec_pos = (np.repeat(np.asarray(hdr, dtype=np.int64) + 1 - _RECORD_TOKENS * first_rec, nb)
               + _RECORD_TOKENS * np.arange(nrec, dtype=np.int64))
    # Every expected line starts with a token right after a newline, and the file holds no
    # other newline before its last token: each line holds exactly the grammar's tokens.
    line_first = np.concatenate((np.asarray(hdr, dtype=np.int64),
                                 (rec_pos[:, None] + _LINE_FIRST[None, :]).ravel()))
    if raw.count(b"\n", 0, int(ts[n - 1])) != len(line_first):
        return None
    if len(line_first) and not (a[ts[line_first] - 1] == 10).all():
        return None
    if nrec == 0:
        return num_frames, frames, [], np.zeros((0, JOINTS, 3), dtype=np.float32), None
    jc = ts[rec_pos + BODY_FIELDS]                             # joint counts must read "25"
    if not ((a[jc] == 50) & (a[jc + 1] == 53) & ws[jc + 2]).all():
        return None
    vals = _xyz_values(raw, a, ts, rec_pos)
    if vals is None:
        return None
    with np.errstate(over="ignore"):
        joints = vals.astype(np.float32).reshape(nrec, JOINTS, 3)
    id_start = ts[rec_pos].tolist()
    id_stop = ts[rec_pos + 1].tolist()
    ids = [raw[s:e].rstrip().decode("ascii") for s, e in zip(id_start, id_stop)]
    return num_frames, frames, ids, joints, None


def _xyz_values(raw: bytes, a: np.ndarray, ts: np.ndarray, rec_pos: np.ndarray) -> np.ndarray | None:
    """x, y, z of every joint line as float64 (``float()`` semantics), or None.

    The bytes from each joint line's x token up to its depthX token (x, y, z and their
    separators; the line structure was checked before) are gathered into one buffer of
    whitespace-separated numbers and converted by numpy's C text reader (which accepts
    exactly what ``float`` accepts for these characters and rounds the same way).
    """
    first = (rec_pos[:, None] + _JOINT_FIRST[None, :]).ravel()     # token index of each x
    start, stop = ts[first], ts[first + 3]
    lengths = stop - start
    offsets = np.repeat(start - (np.cumsum(lengths) - lengths), lengths)
    offsets += np.arange(len(offsets))
    buf = a[offsets]
    try:
        vals = np.loadtxt([buf.tobytes()], dtype=np.float64, comments=None, ndmin=1)
    except ValueError:
        return None
    return vals if vals.shape == (3 * len(first),) else None


def _parse_slow(raw: bytes, path: str, keep_truncated: bool) -> ParsedSkeleton:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RawFormatError(path, line, "bytes that are not text (not UTF-8/ASCII)") from None
    lines = text.split("\n")
    last = len(lines)
    while last and not lines[last - 1].strip():
        last -= 1
    frames: list[int] = []
    ids: list[str] = []
    joints: list[np.ndarray] = []
    complete = {"frames": 0, "records": 0}

    def partial(line_no: int) -> ParsedSkeleton:
        k = complete["records"]
        arr = np.stack(joints[:k]) if k else np.zeros((0, JOINTS, 3), np.float32)
        return ParsedSkeleton(path, complete["frames"], np.asarray(frames[:k], np.int64),
                              ids[:k], arr, truncated_line=line_no)

    def get(i: int, what: str) -> list[str]:
        if i >= last:
            if keep_truncated and complete["frames"]:
                raise _Truncated(partial(i + 1))
            raise RawFormatError(
                path, i + 1, f"file ends early (truncated): expected {what}; "
                f"{complete['frames']} complete frame(s) were read (--set truncated=keep keeps them)",
                partial(i + 1))
        toks = lines[i].split()
        if not toks:
            raise RawFormatError(path, i + 1, f"empty line, expected {what}")
        return toks

    def get_int(i: int, what: str) -> int:
        toks = get(i, what)
        if len(toks) != 1:
            raise RawFormatError(path, i + 1, f"expected {what} (one integer), got {len(toks)} values")
        try:
            value = int(toks[0])
        except ValueError:
            raise RawFormatError(path, i + 1,
                                 f"expected {what} (an integer), got {toks[0]!r}") from None
        if value < 0:
            raise RawFormatError(path, i + 1, f"expected {what} (>= 0), got {value}")
        return value

    try:
        num_frames = get_int(0, "the number of frames")
        i = 1
        for f in range(num_frames):
            nb = get_int(i, f"the number of bodies of frame {f + 1}")
            i += 1
            for b in range(nb):
                what = f"frame {f + 1} body {b + 1}"
                info = get(i, f"the body-info line of {what}")
                if len(info) != BODY_FIELDS:
                    raise RawFormatError(path, i + 1, f"body-info line of {what}: expected "
                                         f"{BODY_FIELDS} values, got {len(info)}")
                nj = get_int(i + 1, f"the number of joints of {what}")
                if nj != JOINTS:
                    raise RawFormatError(path, i + 2, f"{what} has {nj} joints; NTU skeletons "
                                         f"have {JOINTS}")
                i += 2
                xyz = np.empty((JOINTS, 3), dtype=np.float64)
                for j in range(JOINTS):
                    toks = get(i, f"joint {j + 1} of {what}")
                    if len(toks) != len(JOINT_FIELDS):
                        raise RawFormatError(
                            path, i + 1, f"joint line {j + 1} of {what}: expected 12 values "
                            f"({' '.join(JOINT_FIELDS)}), got {len(toks)}")
                    for k, tok in enumerate(toks):
                        try:
                            v = float(tok)
                        except ValueError:
                            raise RawFormatError(
                                path, i + 1, f"joint line {j + 1} of {what}: field {k + 1} "
                                f"({JOINT_FIELDS[k]}) is {tok!r}, not a number") from None
                        if k < 3:
                            xyz[j, k] = v
                    i += 1
                frames.append(f)
                ids.append(info[0])
                with np.errstate(over="ignore"):
                    joints.append(xyz.astype(np.float32))
            complete["frames"] = f + 1
            complete["records"] = len(ids)
        if i < last:
            raise RawFormatError(path, i + 1, f"unexpected content after the last of "
                                 f"{num_frames} frames: {lines[i].strip()[:40]!r}")
    except _Truncated as tr:
        return tr.parsed
    return ParsedSkeleton(
        path, num_frames, np.asarray(frames, np.int64), ids,
        np.stack(joints) if joints else np.zeros((0, JOINTS, 3), np.float32))


class _Truncated(Exception):
    def __init__(self, parsed: ParsedSkeleton) -> None:
        super().__init__("truncated")
        self.parsed = parsed
