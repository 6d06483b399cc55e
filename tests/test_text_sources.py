"""Text sources: every reader on the real upstream files, and clear errors on bad files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zsbench.api import SkeletonDataset, ZsbenchError
from zsbench.resources import splits_path
from zsbench_text import configs as C
from zsbench_text import sources as S

UP = Path("/work/shared/upstream/texts")
needs_upstream = pytest.mark.skipif(not UP.is_dir(), reason="upstream text files not present")


def make_dataset(names: list[str], name: str = "toy", texts: dict | None = None) -> SkeletonDataset:
    return SkeletonDataset(name=name, class_names=list(names), labels=np.zeros(0, np.int64),
                           data=np.zeros((0, 3, 1, 25, 1), np.float32), fingerprint="test",
                           texts=texts or {})


def real(name: str) -> SkeletonDataset:
    names = splits_path(f"classes/{name}.txt").read_text(encoding="utf-8").splitlines()
    return make_dataset(names, name=name)


@pytest.fixture(scope="module")
def ntu60() -> SkeletonDataset:
    return real("ntu60")


@pytest.fixture(scope="module")
def ntu120() -> SkeletonDataset:
    return real("ntu120")


@pytest.fixture(scope="module")
def pku() -> SkeletonDataset:
    return real("pku_mmd")


# --------------------------------------------------------------------------------------
# Real upstream files
# --------------------------------------------------------------------------------------
@needs_upstream
@pytest.mark.parametrize("source,cfg,rel,ds,first", [
    (S.description, C.DescriptionConfig, "YujieOuO__SMIE/descriptions/ntu60_des.txt", "ntu60",
     '"Drink water" refers to the act of taking in water'),
    (S.description, C.DescriptionConfig, "YujieOuO__SMIE/descriptions/ntu120_des.txt",
     "ntu120", '"Drink water"'),
    (S.description, C.DescriptionConfig, "kaai520__PGFA/descriptions/pku_des.txt", "pku",
     '"Bow" is lowering one\'s head or body'),
    (S.skeleton_focused, C.SkeletonFocusedConfig, "kaai520__PGFA/descriptions/ntu_ska_gpt4.txt",
     "ntu60", 'In the "Drink water" action sequence'),
    (S.skeleton_focused, C.SkeletonFocusedConfig, "kaai520__PGFA/descriptions/pku_ska_gpt4.txt",
     "pku", 'In the "Bow" action sequence'),
    (S.parts, C.PartsConfig, "MartinXM__GAP/text/pasta_openai_t01.txt", "ntu120",
     "head tilts back slightly; hand grasps cup; arm lifts cup to mouth; hip remains "
     "stationary; leg remains stationary; foot remains stationary."),
    (S.gap_sentence, C.GapSentenceConfig, "MartinXM__GAP/text/sentence_openai_t01.txt",
     "ntu60", "The man is drinking water from a glass."),
    (S.msf_label, C.MsfLabelConfig, "EHZ9NIWI7__MSF-GZSSAR/sem_info/lb_120.csv", "ntu120",
     "drink water"),
    (S.msf_action, C.MsfActionConfig, "EHZ9NIWI7__MSF-GZSSAR/sem_info/ad_60.csv", "ntu60",
     "to take liquid into your mouth"),
    (S.msf_motion, C.MsfMotionConfig, "EHZ9NIWI7__MSF-GZSSAR/sem_info/md_60.csv", "ntu60",
     "fist and move the hand up to the head then look up"),
    (S.flora_csv, C.FloraCsvConfig, "cseeyangchen__Flora/semantics/pku51.csv", "pku",
     "bending the torso forward with a downward head tilt"),
    (S.flora_csv, C.FloraCsvConfig, "cseeyangchen__Flora/semantics/ntu120.csv", "ntu120",
     "fist and move the hand up to the head then look up"),
    (S.flora_llm, C.FloraLlmConfig, "cseeyangchen__Flora/semantics/pku51_llm.txt", "pku",
     '"Bow" refers to the act of bending the upper body forward'),
    (S.names, C.NamesConfig, "kaai520__PGFA/descriptions/ntu_labelmap.txt", "ntu60",
     "Drink water"),
    (S.names, C.NamesConfig, "MartinXM__GAP/text/ntu120_label_map.txt", "ntu120",
     "drink water"),
    (S.names, C.NamesConfig, "skelemoa__synse-zsl/language_data/labels.npy", "ntu120",
     "drink water"),
])
def test_reader_on_upstream_file(source, cfg, rel, ds, first, request):
    dataset = request.getfixturevalue(ds)
    out = source(cfg(path=UP / rel), dataset)
    (kind,) = out
    assert kind == cfg().kind
    texts = out[kind]
    assert len(texts) == dataset.num_classes
    assert texts[0][0].startswith(first)
    assert all(t and t == t.strip() for per_class in texts for t in per_class)


@needs_upstream
def test_known_strings_and_quirks(ntu60, ntu120, pku):
    des = S.description(C.DescriptionConfig(path=UP / "YujieOuO__SMIE/descriptions/ntu120_des.txt"),
                        ntu120)["description"]
    assert des[5][0].startswith("\u201cPickup\u201d")          # typographic quotes kept
    pgfa = S.description(C.DescriptionConfig(path=UP / "kaai520__PGFA/descriptions/ntu60_des.txt"),
                         ntu60)["description"]
    assert pgfa == des[:60]                                      # identical copies
    md = S.msf_motion(C.MsfMotionConfig(path=UP / "EHZ9NIWI7__MSF-GZSSAR/sem_info/md_60.csv"),
                      ntu60)["motion"]
    assert md[19][0] == md[19][0].strip()                        # trailing space stripped
    lb = S.msf_label(C.MsfLabelConfig(path=UP / "EHZ9NIWI7__MSF-GZSSAR/sem_info/lb_120.csv"),
                     ntu120)["name"]
    assert any("\u2019" in t[0] for t in lb)
    llm = S.flora_llm(C.FloraLlmConfig(path=UP / "cseeyangchen__Flora/semantics/pku51_llm.txt"),
                      pku)["description"]
    assert llm[11][0].endswith("as a form of transfer.")         # trailing tab stripped
    gap = S.parts(C.PartsConfig(path=UP / "MartinXM__GAP/text/pasta_openai_t01.txt"), ntu120)
    pgfa_parts = S.parts(C.PartsConfig(path=UP / "kaai520__PGFA/descriptions/ntu_parts_from_GAP.txt"),
                         ntu120)
    assert gap == pgfa_parts
    listed = S.parts(C.PartsConfig(path=UP / "MartinXM__GAP/text/pasta_openai_t01.txt",
                                   style="list"), ntu60)["parts"]
    assert len(listed) == 60 and all(len(p) == 6 for p in listed)
    assert listed[0][0] == "head tilts back slightly" and listed[0][5].startswith("foot")
    named = S.parts(C.PartsConfig(path=UP / "MartinXM__GAP/text/pasta_openai_t01.txt",
                                  include_name=True), ntu60)["parts"]
    assert named[0][0].startswith("drink water: head tilts")
    syn = S.gap_synonym(C.GapSynonymConfig(path=UP / "MartinXM__GAP/text/synonym_openai_t01.txt"),
                        ntu60)["synonym"]
    assert syn[0][:3] == ["drink water", "sip", "guzzle"]
    sent = S.gap_sentence(C.GapSentenceConfig(path=UP / "MartinXM__GAP/text/sentence_openai_t01.txt",
                                              split_sentences=True), ntu60)["sentence"]
    assert len(sent[0]) > 2 and sent[0][0] == "The man is drinking water from a glass."


@needs_upstream
@pytest.mark.parametrize("folder,ds,n", [("ntu", "ntu60", 60), ("ntu", "ntu120", 120),
                                         ("pku", "pku", 51)])
def test_neuron_phases(folder, ds, n, request):
    dataset = request.getfixturevalue(ds)
    out = S.neuron(C.NeuronConfig(path=UP / "cseeyangchen__Neuron/semantics" / folder), dataset)
    assert list(out) == ["neuron_spatial_cg", "neuron_spatial_mg", "neuron_spatial_fg",
                         "neuron_temporal_fp", "neuron_temporal_sp", "neuron_temporal_tp"]
    for texts in out.values():
        assert len(texts) == n and all(len(t) == 10 for t in texts)
    assert out["neuron_spatial_cg"][0][0].startswith(
        "arm lifts to mouth" if folder == "ntu" else "upper body leans forward")
    one = S.neuron(C.NeuronConfig(path=UP / "cseeyangchen__Neuron/semantics" / folder,
                                  phases=["temporal_tp"], kind_prefix="ph_"), dataset)
    assert list(one) == ["ph_temporal_tp"]


@needs_upstream
def test_wrong_dataset_files_are_refused(ntu60, pku):
    with pytest.raises(ZsbenchError, match=r"ntu120_des\.txt: class names do not match dataset "
                                           r"'pku_mmd'.*another dataset"):
        S.description(C.DescriptionConfig(path=UP / "YujieOuO__SMIE/descriptions/ntu120_des.txt"), pku)
    with pytest.raises(ZsbenchError, match=r"pku_des\.txt: 51 classes .* dataset 'ntu60' has "
                                           r"60: no text for class 51"):
        S.description(C.DescriptionConfig(path=UP / "YujieOuO__SMIE/descriptions/pku_des.txt"), ntu60)
    md120 = UP / "EHZ9NIWI7__MSF-GZSSAR/sem_info/md_120.csv"
    with pytest.raises(ZsbenchError, match=r"md_120\.csv: 120 classes but dataset 'ntu60' has "
                                           r"60.*allow_prefix"):
        S.msf_motion(C.MsfMotionConfig(path=md120), ntu60)
    out = S.msf_motion(C.MsfMotionConfig(path=md120, allow_prefix=True), ntu60)["motion"]
    assert len(out) == 60


# --------------------------------------------------------------------------------------
# Malformed files
# --------------------------------------------------------------------------------------
TOY = ["drink water", "eat meal", "sit down", "stand up"]
DES = ['"Drink water" is taking in water.', '"Eat meal" is eating food.',
       '"Sit down" is lowering onto a seat.', '"Stand up" is rising from a seat.']


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return p


def des(tmp_path, lines, ds=None):
    p = write(tmp_path, "toy_des.txt", "\r\n".join(lines))
    return S.description(C.DescriptionConfig(path=p), ds if ds is not None else make_dataset(TOY))


def test_crlf_and_trailing_blank_lines_are_accepted(tmp_path):
    p = write(tmp_path, "d.txt", "\r\n".join(DES) + "\r\n\r\n")
    out = S.description(C.DescriptionConfig(path=p), make_dataset(TOY))
    assert out == {"description": [[d] for d in DES]}


def test_missing_class(tmp_path):
    with pytest.raises(ZsbenchError, match=r"toy_des\.txt: 3 classes .* has 4: no text for "
                                           r"class 3 'stand up'"):
        des(tmp_path, DES[:3])


def test_missing_line_inside_longer_file(tmp_path):
    lines = DES + ['"Jump up" is jumping.']
    del lines[1]
    with pytest.raises(ZsbenchError, match=r"toy_des\.txt:2: class 'Sit down' is dataset class "
                                           r"2 'sit down' but sits at position 1"):
        des(tmp_path, lines)


def test_duplicate_class(tmp_path):
    with pytest.raises(ZsbenchError, match=r"duplicate class 'Drink water' at lines 1 and 2"):
        des(tmp_path, [DES[0], DES[0], DES[2], DES[3]])


def test_empty_line(tmp_path):
    with pytest.raises(ZsbenchError, match=r"toy_des\.txt:2: empty line"):
        des(tmp_path, [DES[0], "  ", DES[2], DES[3]])


def test_names_of_another_dataset(tmp_path):
    other = make_dataset(["bow", "clapping", "falling", "writing"], name="other")
    with pytest.raises(ZsbenchError, match=r"class names do not match dataset 'other' \(0 of 4 "
                                           r"agree.*another dataset"):
        des(tmp_path, DES, ds=other)


def test_csv_errors(tmp_path):
    ds = make_dataset(TOY)
    cases = {
        "idx,dcp\n1,a\n2,b\n2,c\n3,d": r"duplicate class id 2 at lines 3 and 4",
        "idx,dcp\n1,a\n2,b\n4,c\n5,d": r":4: class id 4 where 3 was expected",
        "idx,dcp\n1,a\n2,\n3,c\n4,d": r"md\.csv:3: class #2: text 1 is empty",
        "id,label\n1,a\n2,b\n3,c\n4,d": r"md\.csv:1: expected a header 'idx,<text column>'",
        "idx,dcp\n1,a\n2,b,x\n3,c\n4,d": r"md\.csv:3: expected 2 comma-separated fields",
    }
    for text, msg in cases.items():
        with pytest.raises(ZsbenchError, match=msg):
            S.msf_motion(C.MsfMotionConfig(path=write(tmp_path, "md.csv", text)), ds)
    ok = S.msf_motion(C.MsfMotionConfig(path=write(tmp_path, "md.csv", "idx,dcp\n1,a \n2,b\n3,c\n4,d")), ds)
    assert ok["motion"][0] == ["a"]


def test_pasta_errors(tmp_path):
    ds = make_dataset(TOY)
    row = "{};head a;hand b;arm c;hip d;leg e;foot f"
    good = "\n".join(row.format(n) for n in TOY)
    assert S.parts(C.PartsConfig(path=write(tmp_path, "p.txt", good)), ds)["parts"][1] == [
        "head a; hand b; arm c; hip d; leg e; foot f"]
    bad = good.replace("sit down;head a;hand b", "sit down;head a")
    with pytest.raises(ZsbenchError, match=r"p\.txt:3: expected 7 ';'-separated fields"):
        S.parts(C.PartsConfig(path=write(tmp_path, "p.txt", bad)), ds)
    empty = good.replace("stand up;head a", "stand up; ")
    with pytest.raises(ZsbenchError, match=r"p\.txt:4: class 'stand up': the head description "
                                           r"is empty"):
        S.parts(C.PartsConfig(path=write(tmp_path, "p.txt", empty)), ds)


def test_neuron_json_errors(tmp_path):
    ds = make_dataset(TOY)
    root = tmp_path / "sem"
    (root / "spatial").mkdir(parents=True)
    body = "{\n" + ",\n".join(f'    "{n}": ["x {n}", "y {n}"]' for n in TOY) + "\n}\n\n"
    (root / "spatial" / "spatial_cg.json").write_text(body, encoding="utf-8")
    out = S.neuron(C.NeuronConfig(path=root, phases=["spatial_cg"]), ds)
    assert out["neuron_spatial_cg"][3] == ["x stand up", "y stand up"]
    with pytest.raises(ZsbenchError, match=r"no spatial_mg\.json for phase 'spatial_mg'"):
        S.neuron(C.NeuronConfig(path=root, phases=["spatial_mg"]), ds)
    dup = body.replace('"eat meal"', '"drink water"')
    (root / "spatial" / "spatial_cg.json").write_text(dup, encoding="utf-8")
    with pytest.raises(ZsbenchError, match=r"duplicate class 'drink water' at lines 2 and 3"):
        S.neuron(C.NeuronConfig(path=root, phases=["spatial_cg"]), ds)
    empty = body.replace('"y sit down"', '""')
    (root / "spatial" / "spatial_cg.json").write_text(empty, encoding="utf-8")
    with pytest.raises(ZsbenchError, match=r"spatial_cg\.json:4: class 'sit down': text 2 is "
                                           r"empty"):
        S.neuron(C.NeuronConfig(path=root, phases=["spatial_cg"]), ds)
    (root / "spatial" / "spatial_cg.json").write_text(body[:-10], encoding="utf-8")
    with pytest.raises(ZsbenchError, match=r"spatial_cg\.json:\d+: invalid JSON"):
        S.neuron(C.NeuronConfig(path=root, phases=["spatial_cg"]), ds)


def test_bad_encoding_and_missing_file(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes(b'"Drink water" ok\n"Eat meal" caf\xe9\n')
    with pytest.raises(ZsbenchError, match=r"latin\.txt:2: not valid UTF-8"):
        S.description(C.DescriptionConfig(path=p), make_dataset(TOY))
    with pytest.raises(ZsbenchError, match=r"text file not found: .*nope\.txt"):
        S.description(C.DescriptionConfig(path=tmp_path / "nope.txt"), make_dataset(TOY))


# --------------------------------------------------------------------------------------
# zsbench JSON files (what a dataset ships) and the no-path fallback
# --------------------------------------------------------------------------------------
def zs_json(tmp_path: Path, kind: str, classes: list[tuple[str, list[str]]]) -> Path:
    p = tmp_path / f"{kind}.json"
    data = {"kind": kind, "classes": [{"name": n, "texts": t} for n, t in classes]}
    p.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return p


def test_dataset_shipped_texts_matched_by_name(tmp_path):
    names = ["whisper in other person's ear", "drink water", "kick"]
    path = zs_json(tmp_path, "description", [
        ("kick", ["k1"]), ("Whisper in other person\u2019s ear", ["w1", "w2"]),
        ("drink water", ["d1"])])
    ds = make_dataset(names, texts={"description": path})
    out = S.description(C.DescriptionConfig(), ds)
    assert out == {"description": [["w1", "w2"], ["d1"], ["k1"]]}
    ctx = zs_json(tmp_path, "context", [(n, [f"c {n}"]) for n in names])
    ds.texts["context"] = ctx
    assert S.dataset_texts(C.DatasetTextsConfig(), ds)["context"][2] == ["c kick"]
    assert S.context(C.ContextConfig(path=ctx), ds)["context"][0] == [f"c {names[0]}"]
    phases = zs_json(tmp_path, "phases", [(n, [f"start {n}", f"end {n}"]) for n in names])
    ds.texts["phases"] = phases
    assert S.phases(C.PhasesConfig(), ds)["phases"][1] == ["start drink water", "end drink water"]
    with pytest.raises(ZsbenchError, match=r"p\.txt: phase-wise texts are read from a zsbench "
                                           r"JSON file"):
        S.phases(C.PhasesConfig(path=write(tmp_path, "p.txt", "a\nb\nc")), ds)
    del ds.texts["phases"]
    with pytest.raises(ZsbenchError, match=r"no path given and dataset 'toy' ships no 'motion' "
                                           r"texts \(it ships: \['context', 'description'\]\)"):
        S.msf_motion(C.MsfMotionConfig(), ds)


def test_dataset_json_errors(tmp_path):
    names = ["drink water", "kick"]
    missing = zs_json(tmp_path, "description", [("drink water", ["d"])])
    with pytest.raises(ZsbenchError, match=r"no entry for 1 of the 2 classes .*'kick' \(class 1\)"):
        S.description(C.DescriptionConfig(), make_dataset(names, texts={"description": missing}))
    extra = zs_json(tmp_path, "description", [("kick", ["k"]), ("drink water", ["d"]),
                                              ("jump", ["j"])])
    with pytest.raises(ZsbenchError, match=r"1 classes are not classes of dataset 'toy' "
                                           r"\(first: 'jump' at line \d+\)"):
        S.description(C.DescriptionConfig(), make_dataset(names, texts={"description": extra}))
    dup = zs_json(tmp_path, "description", [("kick", ["k"]), ("Kick", ["k"])])
    with pytest.raises(ZsbenchError, match=r"duplicate class 'Kick' at lines 5 and 11"):
        S.description(C.DescriptionConfig(), make_dataset(names, texts={"description": dup}))
    empty = zs_json(tmp_path, "description", [("kick", ["k"]), ("drink water", [" "])])
    with pytest.raises(ZsbenchError, match=r"description\.json:11: class 'drink water': text 1 "
                                           r"is empty"):
        S.description(C.DescriptionConfig(), make_dataset(names, texts={"description": empty}))
    wrong = zs_json(tmp_path, "motion", [("kick", ["k"]), ("drink water", ["d"])])
    with pytest.raises(ZsbenchError, match=r"holds texts of kind 'motion', not 'description'"):
        S.description(C.DescriptionConfig(), make_dataset(names, texts={"description": wrong}))


def test_names_source(tmp_path):
    ds = make_dataset(TOY)
    assert S.names(C.NamesConfig(), ds)["name"][2] == ["sit down"]
    out = S.names(C.NamesConfig(template="a person doing {name}", kind="prompt"), ds)
    assert out["prompt"][0] == ["a person doing drink water"]
    with pytest.raises(ZsbenchError, match=r"bad template"):
        S.names(C.NamesConfig(template="{label}"), ds)
    np.save(tmp_path / "labels.npy", np.array(["Drink water", "eat meal", "sitting down",
                                               "stand up"]))
    assert S.names(C.NamesConfig(path=tmp_path / "labels.npy"), ds)["name"][2] == ["sitting down"]


def test_plugin_registration_does_not_import_torch():
    code = ("import sys, zsbench_text.plugin as p; s = p.zsbench_text_sources(); "
            "e = p.zsbench_text_encoders(); assert 'torch' not in sys.modules; "
            "print(len(s), len(e), sorted(x.name for x in s))")
    env_path = ":".join(sys.path)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=60)
    assert res.returncode == 0, res.stderr
    count_s, count_e, names = res.stdout.split(" ", 2)
    assert int(count_s) == 15 and int(count_e) == 2
    for name in ("names", "description", "skeleton_focused", "parts", "msf_motion", "phases",
                 "flora_llm", "context", "neuron", "dataset"):
        assert repr(name) in names
