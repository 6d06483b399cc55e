"""PKU-MMD Parts I and II: raw text round trip, clip cutting by the label conventions,
split files, and the PKU rows of DATA_FORMATS.md §6."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsbench.api import ZsbenchError
from zsbench_ntu import synth
from zsbench_ntu.datasets import load_dataset
from zsbench_ntu.names import read_pku_split_file
from zsbench_ntu.ntu_parse import RawFormatError
from zsbench_ntu.pku_parse import read_pku_labels, read_pku_skeleton
from zsbench_ntu.prepare import prepare
from zsbench_ntu.store import load_store
from zsbench_ntu.config import DatasetConfig

RNG = np.random.default_rng(31)


def part1_tree(root: Path, videos: dict[str, tuple[np.ndarray, list]], split=True) -> Path:
    raw = root / "raw"
    for stem, (rows, labels) in videos.items():
        synth.write_pku_skeleton(raw / "PKU_Skeleton_Renew" / f"{stem}.txt", rows)
        synth.write_pku_labels(raw / "Train_Label_PKU_final" / f"{stem}.txt", labels)
    if split:
        stems = sorted(videos)
        synth.write_pku_split(raw / "Split" / "cross-subject.txt", stems[:-1], stems[-1:])
        synth.write_pku_split(raw / "Split" / "cross-view.txt",
                              [s for s in stems if not s.endswith("M")],
                              [s for s in stems if s.endswith("M")])
    return raw


def run(root: Path, name: str = "pku_mmd", **opts):
    opts = {"progress": False, "workers": 1, **opts}
    return load_store(prepare(name, root / "raw", root / "out", opts, log=lambda s: None))


def test_skeleton_text_round_trip_and_extra_columns(tmp_path):
    rows = RNG.normal(size=(17, 150)).astype(np.float32)
    for newline, extra in (("\n", 0), ("\r\n", 3)):
        path = synth.write_pku_skeleton(tmp_path / "v.txt", rows, newline=newline,
                                        extra_columns=extra)
        assert np.array_equal(read_pku_skeleton(path), rows)


def test_clips_follow_one_based_inclusive_labels(tmp_path):
    rows, labels = synth.random_pku_video(RNG, 400, 4)
    rows2, labels2 = synth.random_pku_video(RNG, 300, 3)
    part1_tree(tmp_path, {"0002-L": (rows, labels), "0002-M": (rows2, labels2),
                          "0003-R": synth.random_pku_video(RNG, 200, 2)})
    data, samples, m = run(tmp_path, frames=300)
    assert len(samples["name"]) == 9
    a, s, e, _ = labels[0]
    assert samples["name"][0] == f"F002V001C{a:03d}L001" and samples["label"][0] == a - 1
    clip = rows[s - 1: e]                                   # lines start..end, inclusive
    assert samples["length"][0] == e - s + 1 == len(clip)
    got = data[0].transpose(1, 3, 2, 0).reshape(300, 150)
    assert np.array_equal(got[: len(clip)], clip) and not got[len(clip):].any()
    assert samples["train_xsub"].tolist() == [True] * 7 + [False] * 2
    assert samples["train_xview"].tolist() == [True] * 4 + [False] * 3 + [True] * 2
    ds = load_dataset("pku_mmd", DatasetConfig(**{"frames": 300}), tmp_path / "out")
    assert ds.partitions["xsub"].tolist() == samples["train_xsub"].tolist()
    assert ds.meta["camera"].tolist() == [1] * 4 + [2] * 3 + [3] * 2
    assert ds.class_names[0] == "bow" and ds.num_classes == 51


def test_long_clip_centre_cropped_and_end_clamped(tmp_path):
    rows = np.zeros((500, 150), np.float32)
    rows[:, :75] = synth.synth_body(500, RNG).reshape(500, 75)
    part1_tree(tmp_path, {"0002-L": (rows, [[3, 1, 450, 1], [5, 460, 520, 2]])})
    data, samples, m = run(tmp_path, frames=300)
    got = data[0].transpose(1, 3, 2, 0).reshape(300, 150)
    assert np.array_equal(got, rows[75: 375])               # (450 - 300) // 2 = 75 dropped
    assert m["report"]["notes"]["label_end_clamped"] == 1 and samples["end"][1] == 500


def test_label_file_conventions(tmp_path):
    p = tmp_path / "l.txt"
    p.write_bytes(b"12,5,40,1,\r\n")                       # single line, trailing comma, CRLF
    (row,) = read_pku_labels(p)
    assert (row.action, row.start, row.end, row.confidence, row.row) == (12, 5, 40, 1, 1)
    p.write_text("1,5,40,1\n\n2, 41 ,60 , 2\n")
    assert [r.row for r in read_pku_labels(p)] == [1, 2]
    p.write_text("1,5,40,1\n52,1,9,1\n")
    with pytest.raises(RawFormatError, match=r"l\.txt: line 2: action id 52 outside 1..51"):
        read_pku_labels(p)
    p.write_text("1,5\n")
    with pytest.raises(RawFormatError, match="line 1: expected 'action_id, start_frame"):
        read_pku_labels(p)
    p.write_text("1,50,40,1\n")
    with pytest.raises(RawFormatError, match="line 1: invalid frame range 50..40"):
        read_pku_labels(p)


def test_malformed_skeleton_lines_name_the_line(tmp_path):
    rows = RNG.normal(size=(5, 150)).astype(np.float32)
    path = synth.write_pku_skeleton(tmp_path / "v.txt", rows)
    lines = path.read_text().splitlines()
    lines[2] = " ".join(lines[2].split()[:149])
    path.write_text("\n".join(lines))
    with pytest.raises(RawFormatError, match=r"v\.txt: line 3: expected at least 150 values"):
        read_pku_skeleton(path)
    lines[2] = lines[1].replace(lines[1].split()[7], "x1", 1)
    path.write_text("\n".join(lines))
    with pytest.raises(RawFormatError, match=r"line 3: value 8 is 'x1'"):
        read_pku_skeleton(path)


def test_zero_first_slot_missing_clips_and_nonfinite(tmp_path):
    rows, labels = synth.random_pku_video(RNG, 600, 21, num_classes=1)   # action 1 everywhere
    s, e = labels[3][1], labels[3][2]
    rows[s - 1: e, :75] = 0                                 # slot 0 empty -> skipped
    rows[labels[0][1] + 2, 10] = np.nan                     # one body absent in one frame
    part1_tree(tmp_path, {"0043-L": (rows, labels), "0044-L": synth.random_pku_video(RNG, 90, 1)})
    data, samples, m = run(tmp_path)
    r = m["report"]
    assert r["skipped"] == {"zero_first_slot": 1, "missing_list": 1}
    assert r["skipped_detail"]["missing_list"] == ["F043V001C001L021"]   # Part I list
    assert r["notes"]["nonfinite_bodies"] == 1 and np.isfinite(data).all()
    assert len(samples["name"]) == 20 and data.shape[1:] == (3, 50, 25, 2)


def test_leading_empty_frames_reference_or_fixed(tmp_path):
    rows = np.zeros((120, 150), np.float32)
    rows[10:100, :75] = synth.synth_body(90, RNG).reshape(90, 75)
    part1_tree(tmp_path, {"0002-L": (rows, [[4, 1, 100, 1]])})
    ref, _, mref = run(tmp_path, frames=64)
    fixed, _, mfix = run(tmp_path, frames=64, window="fixed")
    assert not ref[0, :, :7].any() and ref[0, :, 8:].any()  # 10 leading empty frames kept
    assert fixed[0, :, 0].any() and mfix["deviations"] == ["window=fixed"]
    assert mref["deviations"] == []


def test_shipped_part1_split_files_are_used_when_absent(tmp_path):
    part1_tree(tmp_path, {v: synth.random_pku_video(RNG, 60, 1) for v in
                          ("0002-L", "0002-M", "0291-L")}, split=False)
    data, samples, m = run(tmp_path)
    assert samples["train_xsub"].tolist() == [True, True, False]
    assert samples["train_xview"].tolist() == [True, False, True]
    assert m["provenance"]["split_files"].startswith("shipped copy")


def test_part2_names_no_label_shift_and_split_files_required(tmp_path):
    raw = tmp_path / "raw"
    videos = {"A05N09-R": synth.random_pku_video(RNG, 80, 2),
              "A01N01-L": synth.random_pku_video(RNG, 80, 1)}
    for stem, (rows, labels) in videos.items():
        labels[0][0] = 28
        synth.write_pku_skeleton(raw / "skeleton" / f"{stem}.txt", rows)
        synth.write_pku_labels(raw / "label" / f"{stem}.txt", labels)
    with pytest.raises(ZsbenchError, match="cross_subject_v2.txt and cross_view_v2.txt not found"):
        run(tmp_path, "pku_mmd2")
    synth.write_pku_split(raw / "Split" / "cross_subject_v2.txt", ["A01N01-L"], ["A05N09-R"])
    synth.write_pku_split(raw / "Split" / "cross_view_v2.txt", ["A05N09-R"], ["A01N01-L"])
    data, samples, m = run(tmp_path, "pku_mmd2")
    assert samples["name"][0] == "A001N001V001C028L001"
    assert samples["name"][1] == "A005N009V003C028L001"
    assert samples["label"][:2].tolist() == [27, 27]         # action - 1, never min-shifted
    assert samples["train_xsub"].tolist()[:2] == [True, False]


def test_split_file_parsing(tmp_path):
    p = tmp_path / "s.txt"
    p.write_bytes(b"Training videos: \r\n0002-L, 0002-M,, \r\nValidataion videos: \r\n0003-L")
    assert read_pku_split_file(p) == (["0002-L", "0002-M"], ["0003-L"])
    p.write_text("Training videos:\n0002-L\nValidataion videos:\n0002-L\n")
    with pytest.raises(ZsbenchError, match="both training .line 2. and test .line 4."):
        read_pku_split_file(p)
    p.write_text("0002-L\n")
    with pytest.raises(ZsbenchError, match="expected a .Training videos:. line"):
        read_pku_split_file(p)
