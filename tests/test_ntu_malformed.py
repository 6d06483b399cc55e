"""DATA_FORMATS.md §6, NTU rows: every malformed or unusual input gives the documented
behaviour (an error naming file and line, or a counted and reported skip/repair)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsbench.api import ZsbenchError
from zsbench_ntu import synth
from zsbench_ntu.ntu_parse import RawFormatError, parse_skeleton
from zsbench_ntu.ntu_select import SampleSkipped, ctrgcn_array, ctrgcn_sequence, stgcn_array
from zsbench_ntu.prepare import prepare
from zsbench_ntu.store import load_store

RNG = np.random.default_rng(11)


def stem(i: int, action: int = 1) -> str:
    return f"S001C00{1 + i % 3}P{1 + i // 3:03d}R001A{action:03d}"


def good(raw: Path, i: int, length: int = 30) -> Path:
    return synth.write_skeleton(raw / f"{stem(i)}.skeleton",
                                synth.random_ntu_frames(RNG, length=length, two_bodies=False))


def run(tmp: Path, name: str = "ntu60", **opts):
    opts.setdefault("progress", False)
    opts.setdefault("workers", 1)
    folder = prepare(name, tmp / "raw", tmp / "out", opts, log=lambda s: None)
    return load_store(folder)


def track(bid: str, start: int, n: int, centre=None):
    return (bid, start, synth.synth_body(n, RNG, centre=centre))


def test_missing_list_and_empty_files_are_skipped_and_counted(tmp_path):
    raw = tmp_path / "raw"
    for i in range(3):
        good(raw, i)
    (raw / f"{stem(3)}.skeleton").write_text("0\n")                  # frame count 0
    (raw / f"{stem(4)}.skeleton").write_text("3\n0\n0\n0\n")         # no body at all
    lst = tmp_path / "missing.txt"
    lst.write_text(f"{stem(1)}\n\n")
    data, samples, m = run(tmp_path, missing_list=str(lst))
    assert list(samples["name"]) == [stem(0), stem(2)]
    assert m["report"]["excluded_before_parsing"] == {"missing_list": 1}
    assert m["report"]["skipped"] == {"empty": 2}
    assert sorted(m["report"]["skipped_detail"]["empty"]) == [stem(3), stem(4)]
    with pytest.raises(SampleSkipped, match=stem(4)):
        stgcn_array(parse_skeleton(raw / f"{stem(4)}.skeleton"), {})


def test_the_official_missing_skeleton_list_is_shipped_and_applied_by_default(tmp_path):
    listed = "S001C002P005R002A008"                   # first name of the official NTU-60 list
    raw = tmp_path / "raw"
    good(raw, 0)
    synth.write_skeleton(raw / f"{listed}.skeleton", synth.random_ntu_frames(RNG, length=30))
    _, samples, m = run(tmp_path)
    assert list(samples["name"]) == [stem(0)]
    assert m["report"]["excluded_before_parsing"] == {"missing_list": 1}
    assert m["pipeline"]["missing_list"] == "official" and not m["deviations"]
    _, samples, m = run(tmp_path, missing_list="none")
    assert sorted(samples["name"]) == sorted([stem(0), listed])
    assert "missing_list=none" in m["deviations"]
    from zsbench_ntu.config import DATASETS
    from zsbench_ntu.discover import missing_names
    assert len(missing_names(DATASETS["ntu60"], "official")) == 302
    ntu120 = missing_names(DATASETS["ntu120"], "official")
    assert len(ntu120) == 535 and missing_names(DATASETS["ntu60"], "official") < ntu120


def test_empty_frames_inside_a_sequence(tmp_path):
    frames = synth.frames_from_tracks(12, [track("1", 0, 12)], empty=[3, 4])
    p = parse_skeleton(synth.write_skeleton(tmp_path / "a.skeleton", frames))
    notes: dict = {}
    seq = ctrgcn_sequence(p, notes)
    assert seq.shape == (10, 75) and notes["dropped_empty_frames"] == 2   # time compressed
    arr = stgcn_array(p, {})
    assert not arr[:, 3:5].any() and arr[:, 2].any() and arr[:, 5].any()  # kept in place


def _two_track_file(tmp_path, a_frames, b_frames):
    a = synth.synth_body(len(a_frames), RNG, centre=[-0.5, 0, 3])
    b = synth.synth_body(len(b_frames), RNG, centre=[0.6, 0, 3])
    frames = [[] for _ in range(max(a_frames + b_frames) + 1)]
    for k, t in enumerate(a_frames):
        frames[t].append(("100", a[k]))
    for k, t in enumerate(b_frames):
        frames[t].append(("200", b[k]))
    return parse_skeleton(synth.write_skeleton(tmp_path / "x.skeleton", frames)), a, b


def test_reappearing_body_is_packed_by_default_and_placed_truly_on_request(tmp_path):
    a_frames = list(range(0, 8)) + list(range(12, 20))
    p, a, b = _two_track_file(tmp_path, a_frames, list(range(20)))
    notes: dict = {}
    packed = ctrgcn_sequence(p, notes)
    true = ctrgcn_sequence(p, {}, track_time="true")
    assert notes["reappearing_body_ids"] == 1
    slot_a = 0 if np.allclose(packed[0, :75], a[0].ravel()) else 1
    cols = slice(75 * slot_a, 75 * slot_a + 75)
    assert np.array_equal(packed[:16, cols], a.reshape(16, 75))          # contiguous from 0
    assert np.array_equal(true[a_frames, cols], a.reshape(16, 75))       # true frames
    assert not true[8:12, cols].any()


def test_more_than_two_bodies(tmp_path):
    tracks = [track(str(k), 0, 20, centre=[k - 1.0, 0, 3]) for k in range(3)]
    p = parse_skeleton(synth.write_skeleton(tmp_path / "x.skeleton",
                                            synth.frames_from_tracks(20, tracks)))
    notes: dict = {}
    seq = ctrgcn_sequence(p, notes)
    assert seq.shape == (20, 150) and notes["discarded_tracks"] == 1
    notes = {}
    arr = stgcn_array(p, notes)
    assert notes["ignored_extra_bodies"] == 20
    assert np.array_equal(arr[:, :20, :, 0].transpose(1, 2, 0), tracks[0][2])
    assert np.array_equal(arr[:, :20, :, 1].transpose(1, 2, 0), tracks[1][2])


def test_all_tracks_short_falls_back_to_the_longest(tmp_path):
    t1, t2 = track("1", 0, 5), track("2", 5, 8)
    p = parse_skeleton(synth.write_skeleton(tmp_path / "x.skeleton",
                                            synth.frames_from_tracks(13, [t1, t2])))
    notes: dict = {}
    seq = ctrgcn_sequence(p, notes)
    assert notes["fallback_longest_track"] == 1
    assert np.array_equal(seq, t2[2].reshape(8, 75))


def test_same_body_id_twice_in_a_frame_keeps_the_first(tmp_path):
    t = track("9", 0, 15)
    frames = synth.frames_from_tracks(15, [t])
    frames[4].append(("9", t[2][4] + 1.0))
    p = parse_skeleton(synth.write_skeleton(tmp_path / "x.skeleton", frames))
    notes: dict = {}
    seq = ctrgcn_sequence(p, notes)
    assert notes["duplicate_body_ids"] == 1 and np.array_equal(seq, t[2].reshape(15, 75))


def test_truncated_file_errors_with_line_or_keeps_complete_frames(tmp_path):
    raw = tmp_path / "raw"
    good(raw, 0)
    frames = synth.frames_from_tracks(10, [track("1", 0, 10)])
    text = synth.skeleton_text(frames[:6], num_frames=10)
    bad = raw / f"{stem(1)}.skeleton"
    bad.write_text(text)
    nlines = len(text.splitlines())
    with pytest.raises(ZsbenchError, match=rf"{stem(1)}\.skeleton: line {nlines + 1}: file ends early"):
        run(tmp_path)
    data, samples, m = run(tmp_path, truncated="keep")
    assert m["report"]["notes"]["truncated_kept"] == 1 and "truncated=keep" in m["deviations"]
    assert samples["length"][list(samples["name"]).index(stem(1))] == 6
    cut = "\n".join(text.splitlines()[:40])        # ends inside a body's joint lines
    bad.write_text(cut)
    with pytest.raises(RawFormatError, match=r"line 41: file ends early .*joint"):
        parse_skeleton(bad)


def _corrupt(tmp_path, line_no: int, new_line: str) -> Path:
    frames = synth.frames_from_tracks(4, [track("1", 0, 4)])
    lines = synth.skeleton_text(frames).splitlines()
    lines[line_no - 1] = new_line
    path = tmp_path / "raw" / f"{stem(5)}.skeleton"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_joint_line_with_wrong_token_count(tmp_path):
    path = _corrupt(tmp_path, 10, "0.1 0.2 0.3 1 2 3 4 5 6 7 8")
    with pytest.raises(RawFormatError, match=r"line 10: joint line 6 of frame 1 body 1: "
                                             r"expected 12 values .* got 11"):
        parse_skeleton(path)


def test_non_numeric_token_names_line_and_field(tmp_path):
    path = _corrupt(tmp_path, 12, "0.1 0.2 abc 1 2 3 4 5 6 7 8 2")
    with pytest.raises(RawFormatError, match=r"line 12: .*field 3 \(z\) is 'abc'"):
        parse_skeleton(path)
    good(tmp_path / "raw", 0)
    data, samples, m = run(tmp_path, on_error="skip")       # skipped and counted
    assert list(samples["name"]) == [stem(0)] and m["report"]["skipped"] == {"error": 1}
    assert "line 12" in m["report"]["skipped_detail"]["error"][0]


def test_joint_count_other_than_25(tmp_path):
    path = _corrupt(tmp_path, 4, "24")
    with pytest.raises(RawFormatError, match=r"line 4: frame 1 body 1 has 24 joints; NTU "
                                             r"skeletons have 25"):
        parse_skeleton(path)


def test_non_finite_body_is_absent_in_that_frame(tmp_path):
    t1, t2 = track("1", 0, 14), track("2", 0, 14, centre=[1, 0, 3])
    t1[2][3, 7, 1] = np.nan
    t2[2][5, 0, 0] = np.inf
    p = parse_skeleton(synth.write_skeleton(tmp_path / "x.skeleton",
                                            synth.frames_from_tracks(14, [t1, t2])))
    notes: dict = {}
    arr = stgcn_array(p, notes)
    assert notes["nonfinite_bodies"] == 2 and np.isfinite(arr).all()
    assert np.array_equal(arr[:, 3, :, 0].T, t2[2][3])     # body 2 moved to slot 0 there
    assert not arr[:, 3, :, 1].any()


def test_exact_zero_joint_is_kept_as_data(tmp_path):
    t = track("1", 0, 6)
    t[2][2, 5] = 0.0
    p = parse_skeleton(synth.write_skeleton(tmp_path / "x.skeleton",
                                            synth.frames_from_tracks(6, [t])))
    arr = stgcn_array(p, {})
    assert not arr[:, 2, 5, 0].any() and arr[:, 2, 4, 0].all()
    assert ctrgcn_sequence(p, {}).shape == (6, 75)


def test_body_ids_equal_as_floats_stay_two_tracks(tmp_path):
    a, b = "72057594037931101", "72057594037931102"
    t1 = (a, 0, synth.synth_body(15, RNG, centre=[-0.5, 0, 3]))
    t2 = (b, 0, synth.synth_body(15, RNG, centre=[0.5, 0, 3]))
    p = parse_skeleton(synth.write_skeleton(tmp_path / "x.skeleton",
                                            synth.frames_from_tracks(15, [t1, t2])))
    assert ctrgcn_sequence(p, {}).shape == (15, 150)


def test_crlf_and_unsorted_nested_folders(tmp_path):
    raw = tmp_path / "raw"
    for i, sub in ((4, "b"), (0, "a"), (2, "b"), (1, "a")):
        synth.write_skeleton(raw / sub / f"{stem(i)}.skeleton",
                             synth.random_ntu_frames(RNG, length=20), newline="\r\n")
    data, samples, m = run(tmp_path)
    assert list(samples["name"]) == sorted(stem(i) for i in (0, 1, 2, 4))


def test_sequences_longer_than_300_frames(tmp_path):
    raw = tmp_path / "raw"
    synth.write_skeleton(raw / f"{stem(0)}.skeleton",
                         synth.frames_from_tracks(310, [track("1", 0, 310)]))
    data, samples, m = run(tmp_path, frames=300)
    assert m["report"]["notes"]["cropped_to_300"] == 1 and data[0, :, 299].any()
    with pytest.raises(ZsbenchError, match="310 frames, more than 300"):
        run(tmp_path, frames=300, long_sequences="error")


def test_single_actor_second_slot(tmp_path):
    raw = tmp_path / "raw"
    synth.write_skeleton(raw / f"{stem(0)}.skeleton",
                         synth.frames_from_tracks(20, [track("1", 0, 20)]))
    d60, _, m60 = run(tmp_path, frames=300)
    assert d60[0, :, :20, :, 0].any() and not d60[0, ..., 1].any() and not m60["deviations"]
    d120, _, m120 = run(tmp_path, "ntu120", frames=300)
    assert np.array_equal(d120[0, ..., 1], d120[0, ..., 0]) and not m120["deviations"]
    d, _, m = run(tmp_path, frames=300, single_actor="copy")
    assert np.array_equal(d[0, ..., 1], d[0, ..., 0]) and m["deviations"] == ["single_actor=copy"]
    p = parse_skeleton(raw / f"{stem(0)}.skeleton")
    assert np.array_equal(ctrgcn_array(p, {}, "zeros"), d60[0])
