"""From parsed body records to fixed 300-frame arrays (DATA_FORMATS.md §2 and §3.1).

Two reference selections:

* ``ctrgcn_array`` – the CTR-GCN pipeline shipped by Flora/Neuron/STAR: drop body-less
  frames, group records into tracks by body ID, denoise (length, spread), rank by motion,
  merge non-overlapping tracks into two actor slots, drop empty rows, translate to the
  first frame's SpineMid, pad to 300.
* ``stgcn_array`` – the ST-GCN/CrossCLR pipeline: the first two body records of each frame
  in file order, empty frames kept in place, no denoising or centring.

Counts of everything unusual go into ``notes`` (merged into the prepare report).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from zsbench.api import ZsbenchError

from .ntu_parse import ParsedSkeleton

MAX_FRAMES = 300
LENGTH_THRESHOLD = 11
SPREAD_RATIO = 0.8
NOISY_FRACTION = 0.69754


class SampleSkipped(ZsbenchError):
    """A sample the protocol excludes (empty skeleton, zero-length clip): skipped and
    counted under ``reason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _bump(notes: dict[str, int], key: str, n: int = 1) -> None:
    if n:
        notes[key] = notes.get(key, 0) + int(n)


def clean_records(p: ParsedSkeleton, notes: dict[str, int]):
    """Drop bodies with non-finite coordinates (absent in that frame) and repeated body IDs
    within one frame (the first occurrence is kept). Returns (frame, ids, joints)."""
    keep = np.isfinite(p.joints).all(axis=(1, 2))
    _bump(notes, "nonfinite_bodies", int((~keep).sum()))
    # repeated (frame, body ID) pairs: keep the first occurrence (vectorised over records)
    if p.body_codes is not None:
        code = p.body_codes
        distinct = int(code.max()) + 1 if len(code) else 0
    else:
        codes: dict[str, int] = {}
        code = np.fromiter((codes.setdefault(b, len(codes)) for b in p.body_ids),
                           dtype=np.int64, count=len(p.body_ids))
        distinct = len(codes)
    dup = 0
    if len(code):
        rows = np.flatnonzero(keep)
        key = p.frame[rows].astype(np.int64) * (distinct + 1) + code[rows]
        if len(np.unique(key)) != len(key):
            _, first = np.unique(key, return_index=True)
            repeated = np.ones(len(rows), dtype=bool)
            repeated[first] = False
            keep[rows[repeated]] = False
            dup = int(repeated.sum())
    _bump(notes, "duplicate_body_ids", dup)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        raise SampleSkipped(
            "empty", f"{p.path}: no usable body in any of its {p.num_frames} frame(s) "
            "(an empty skeleton; such samples are on the official missing-skeleton lists)")
    return p.frame[idx], [p.body_ids[i] for i in idx.tolist()], p.joints[idx]


def _crop_frames(length: int, notes: dict[str, int], long: str, path: str) -> int:
    if length > MAX_FRAMES:
        if long == "error":
            raise ZsbenchError(f"{path}: {length} frames, more than {MAX_FRAMES} "
                               "(--set long_sequences=crop keeps the first 300)")
        _bump(notes, "cropped_to_300")
        return MAX_FRAMES
    return length


def stgcn_array(p: ParsedSkeleton, notes: dict[str, int], long: str = "crop") -> np.ndarray:
    """(3, 300, 25, 2) float32: body record m < 2 of frame t (file order) -> slot m."""
    frame, _, joints = clean_records(p, notes)
    first = np.searchsorted(frame, frame, side="left")
    rank = np.arange(len(frame)) - first
    _bump(notes, "ignored_extra_bodies", int((rank >= 2).sum()))
    length = _crop_frames(p.num_frames, notes, long, p.path)
    sel = (rank < 2) & (frame < length)
    out = np.zeros((3, MAX_FRAMES, 25, 2), dtype=np.float32)
    out[:, frame[sel], :, rank[sel]] = joints[sel].transpose(0, 2, 1)
    return out


def _motion(j: np.ndarray) -> np.floating:
    return np.sum(np.var(j.reshape(-1, 3), axis=0))


def ctrgcn_sequence(p: ParsedSkeleton, notes: dict[str, int],
                    track_time: Literal["packed", "true"] = "packed") -> np.ndarray:
    """Stages A and B: a (T, 75) or (T, 150) float32 array (empty rows removed)."""
    frame, ids, joints = clean_records(p, notes)
    valid_frames = np.unique(frame)
    _bump(notes, "dropped_empty_frames", p.num_frames - len(valid_frames))
    vidx = np.searchsorted(valid_frames, frame)
    num_frames = len(valid_frames)
    groups: dict[str, list[int]] = {}
    for r, bid in enumerate(ids):
        groups.setdefault(bid, []).append(r)
    tracks = []
    reappear = 0
    for bid, recs in groups.items():
        v = vidx[recs]
        if track_time == "packed":
            rows = v[0] + np.arange(len(recs))
        else:
            rows = v
        if len(recs) > 1 and v[-1] - v[0] + 1 != len(recs):
            reappear += 1
        tracks.append({"id": bid, "joints": joints[recs], "rows": rows, "n": len(recs)})
    _bump(notes, "reappearing_body_ids", reappear)
    if len(tracks) == 1:
        return _one_actor(tracks[0], num_frames)
    for t in tracks:
        t["motion"] = _motion(t["joints"])
    survivors = [t for t in tracks if t["n"] > LENGTH_THRESHOLD]
    if not survivors:
        _bump(notes, "fallback_longest_track")
        longest = max(t["n"] for t in tracks)
        survivors = [next(t for t in tracks if t["n"] == longest)]
    if len(survivors) > 1:
        survivors = _spread_filter(survivors)
    _bump(notes, "discarded_tracks", len(tracks) - len(survivors))
    if len(survivors) == 1:
        seq = _one_actor(survivors[0], num_frames)
    else:
        ranked = sorted(survivors, key=lambda t: t["motion"], reverse=True)
        seq, unused = _two_actors(ranked, num_frames)
        _bump(notes, "discarded_tracks", unused)
    keep = seq.sum(axis=1) != 0
    return seq[keep]


def _one_actor(track: dict, num_frames: int) -> np.ndarray:
    seq = np.zeros((num_frames, 75), dtype=np.float32)
    seq[track["rows"]] = track["joints"].reshape(-1, 75)
    return seq


def _spread_filter(tracks: list[dict]) -> list[dict]:
    alive = list(tracks)
    for t in tracks:
        if len(alive) == 1:
            break
        j = t["joints"]
        xext = (j[:, :, 0].max(axis=1) - j[:, :, 0].min(axis=1)).astype(np.float64)
        yext = (j[:, :, 1].max(axis=1) - j[:, :, 1].min(axis=1)).astype(np.float64)
        valid = xext <= SPREAD_RATIO * yext
        noisy = t["n"] - int(valid.sum())
        if noisy == 0:
            continue
        if noisy / float(t["n"]) >= NOISY_FRACTION:
            alive.remove(t)
        else:
            t["motion"] = min(t["motion"], _motion(j[valid]))
    return alive


def _two_actors(ranked: list[dict], num_frames: int) -> tuple[np.ndarray, int]:
    seq = np.zeros((num_frames, 150), dtype=np.float32)
    a1 = ranked[0]
    seq[a1["rows"], :75] = a1["joints"].reshape(-1, 75)
    s1, e1 = int(a1["rows"][0]), int(a1["rows"][-1])
    s2, e2 = 0, 0
    unused = 0
    for t in ranked[1:]:
        s, e = int(t["rows"][0]), int(t["rows"][-1])
        if min(e1, e) - max(s1, s) <= 0:
            seq[t["rows"], :75] = t["joints"].reshape(-1, 75)
            s1, e1 = min(s, s1), max(e, e1)
        elif min(e2, e) - max(s2, s) <= 0:
            seq[t["rows"], 75:] = t["joints"].reshape(-1, 75)
            s2, e2 = min(s, s2), max(e, e2)
        else:
            unused += 1
    return seq, unused


def translate(seq: np.ndarray, path: str = "") -> np.ndarray:
    """Stage C step 1: subtract actor 1's SpineMid of its first present frame; absent
    actor blocks (sum 0 before translation) stay exactly zero."""
    seq = np.array(seq, dtype=np.float32, copy=True)
    width = seq.shape[1]
    present = np.flatnonzero(np.any(seq[:, :75] != 0, axis=1))
    if len(present) == 0:
        raise SampleSkipped("all_zero", f"{path}: every coordinate of the main actor is 0")
    if width == 150:
        miss1 = seq[:, :75].sum(axis=1) == 0
        miss2 = seq[:, 75:].sum(axis=1) == 0
    origin = seq[present[0], 3:6].copy()
    seq -= np.tile(origin, width // 3)
    if width == 150:
        seq[miss1, :75] = 0
        seq[miss2, 75:] = 0
    return seq


def pad_300(seq: np.ndarray, single_actor: Literal["zeros", "copy"], notes: dict[str, int],
            long: str = "crop", path: str = "") -> np.ndarray:
    """Stage C step 2 for one sample: (3, 300, 25, 2) float32."""
    length = _crop_frames(len(seq), notes, long, path)
    out = np.zeros((3, MAX_FRAMES, 25, 2), dtype=np.float32)
    actors = seq.shape[1] // 75
    body = seq[:length].reshape(length, actors, 25, 3).transpose(3, 0, 2, 1)
    out[:, :length, :, :actors] = body
    if actors == 1 and single_actor == "copy":
        out[:, :length, :, 1:] = body
    return out


def ctrgcn_array(p: ParsedSkeleton, notes: dict[str, int], single_actor: str = "zeros",
                 track_time: str = "packed", long: str = "crop") -> np.ndarray:
    """The whole CTR-GCN pipeline for one file: (3, 300, 25, 2) float32."""
    seq = ctrgcn_sequence(p, notes, track_time=track_time)  # type: ignore[arg-type]
    seq = translate(seq, p.path)
    return pad_300(seq, single_actor, notes, long=long, path=p.path)  # type: ignore[arg-type]
