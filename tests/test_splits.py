"""Split files, class lists, sample rules and the NTU inventory (harness/zsbench/splits.py)."""
from __future__ import annotations

import copy
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from zsbench.api import ZsbenchError
from zsbench.resources import splits_dir
from zsbench.splits import (FAMILIES, canonical_dataset, class_names, load_sample_rules,
                            load_split_family, load_split_file, normalise_name, read_split_file)
from zsbench_ntu.names import parse_ntu_stem
from zsbench_ntu.rules import apply_sample_rule, ntu_sample_names

SHARED = Path("/work/shared")
REFERENCE = SHARED / "reference"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="/work/shared not available")


# --------------------------------------------------------------------------------------
# shipped files
# --------------------------------------------------------------------------------------
def test_split_files_ship_with_the_product():
    assert not str(splits_dir()).startswith(str(SHARED))
    for family in FAMILIES:
        assert (splits_dir() / f"{family}.json").is_file()
    for name in ("classes/ntu60.txt", "classes/ntu120.txt", "classes/pku_mmd.txt",
                 "sample_rules.json", "ntu_inventory.json"):
        assert (splits_dir() / name).is_file()


@pytest.mark.parametrize("family,count", [("synse", 4), ("smie", 9), ("star", 17), ("purls", 8),
                                          ("one_shot", 3), ("cross_dataset", 6), ("sa_dvae", 9)])
def test_every_family_loads_and_validates(family, count):
    fam = load_split_file(family)
    splits = load_split_family(family)
    assert fam.family == family and len(splits) == count
    assert len({s.id for s in splits}) == count
    for info in fam.infos:
        s = info.split
        s.validate()
        assert not set(s.seen_classes) & set(s.unseen)
        assert info.sample_rules and info.group
        if family != "cross_dataset":
            names = class_names(s.dataset)
            assert [names[c] for c in s.unseen] == list(info.unseen_names)


def test_sizes_and_groups():
    sizes = {s.id: f"{len(s.seen_classes)}/{len(s.unseen)}" for s in load_split_family("synse")}
    assert sizes == {"synse_ntu60_55_5": "55/5", "synse_ntu60_48_12": "48/12",
                     "synse_ntu120_110_10": "110/10", "synse_ntu120_96_24": "96/24"}
    purls = {f"{len(s.seen_classes)}/{len(s.unseen)}" for s in load_split_family("purls")}
    assert purls == {"55/5", "48/12", "40/20", "30/30", "110/10", "96/24", "80/40", "60/60"}
    for family in ("smie", "sa_dvae"):
        counts = Counter((s.dataset, len(s.unseen)) for s in load_split_family(family))
        assert counts == {("ntu60", 5): 3, ("ntu120", 10): 3, ("pku_mmd1", 5): 3}, family
    sa = load_split_file("sa_dvae")
    assert {i.group for i in sa.infos} == {"55/5", "110/10", "46/5"}
    assert all(i.sample_rules == ("xsub",) and i.split.validation_unseen is None for i in sa.infos)
    assert any("split2, split3, split4" in n and "NOT verified" in n for n in sa.notes)
    star = load_split_file("star")
    pku = {i.split.id: i.sample_rules for i in star.infos if i.split.dataset == "pku_mmd1"}
    assert pku["star_pku_mmd1_46_5"] == pku["star_pku_mmd1_39_12"] == ("xsub", "xview")
    assert star.info("star_ntu120_110_10").sample_rules == ("xsub", "xset")
    one = {s.dataset: f"{len(s.seen_classes)}/{len(s.unseen)}" for s in load_split_family("one_shot")}
    assert one == {"ntu60": "50/10", "ntu120": "100/20", "pku_mmd1": "41/10"}


def test_synse_validation_classes_are_seen_classes():
    for info in load_split_file("synse").infos:
        s = info.split
        assert s.validation_unseen and set(s.validation_unseen) <= set(s.seen_classes)
        assert len(s.validation_unseen) == len(s.unseen)  # SynSE: k validation classes
    assert load_split_file("smie").infos[0].split.validation_unseen is None


def test_disagreements_are_recorded():
    smie7 = load_split_file("smie").info("smie_split_7").split
    star3 = load_split_file("star").info("star_pku_mmd1_random_split3").split
    assert smie7.unseen == (1, 9, 20, 34, 50) and star3.unseen == (4, 12, 16, 22, 36)
    assert any("[4, 12, 16, 22, 36]" in n for n in load_split_file("smie").notes)
    assert 42 in load_split_family("smie", "ntu120")[1].unseen
    assert 42 in load_split_family("smie", "ntu120")[2].unseen
    info = load_split_file("synse").info("synse_ntu120_110_10")
    assert "81 classes" in info.raw["validation"]["notes"]


def test_cross_dataset_pairs_and_merged_space():
    fam = load_split_file("cross_dataset")
    assert Counter(p.direction for p in fam.pairs) == {"ntu60->pku_mmd1": 3, "pku_mmd1->ntu60": 3}
    smie = load_split_file("smie")
    for p in fam.pairs:
        k = p.raw["class_split"]
        ntu, pku = smie.info(f"smie_split_{k}").split, smie.info(f"smie_split_{k + 6}").split
        src, tgt = (ntu, pku) if p.source == "ntu60" else (pku, ntu)
        assert p.excluded == src.unseen and p.unseen == tgt.unseen
        split = p.class_split(("ntu60", "pku_mmd1"))
        off = 0 if p.source == "ntu60" else 60
        assert split.num_classes == 111
        assert set(split.seen_classes) == {off + c for c in src.seen_classes}
        assert set(split.unseen) == {(60 - off) + c for c in tgt.unseen}
        dropped = p.class_split(("ntu60", "pku_mmd1"), drop_overlap=True)
        assert len(dropped.seen_classes) == len(split.seen_classes) - len(p.name_overlap)
    first = fam.pairs[0]
    assert first.id == "ntu60_to_pku_mmd1_split1" and len(first.name_overlap) == 5
    mapping = fam.raw["class_name_map"]["pku_mmd1->ntu60"]
    pku, ntu = class_names("pku_mmd1"), class_names("ntu60")
    assert mapping and all(normalise_name(pku[a]) == normalise_name(ntu[b]) for a, b in mapping)
    assert len(load_split_family("cross_dataset", "pku_mmd")) == 6


# --------------------------------------------------------------------------------------
# against the reference (tests may read /work/shared; skipped where it is absent)
# --------------------------------------------------------------------------------------
@needs_reference
def test_class_lists_and_sample_rules_are_exact_copies():
    for name in ("ntu60.txt", "ntu120.txt", "pku_mmd.txt"):
        assert (splits_dir() / "classes" / name).read_bytes() == \
            (REFERENCE / "classes" / name).read_bytes()
    assert (splits_dir() / "sample_rules.json").read_bytes() == \
        (REFERENCE / "sample_rules.json").read_bytes()


@needs_reference
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "cross_dataset"])
def test_split_files_match_reference(family):
    ref = json.loads((REFERENCE / "splits" / f"{family}.json").read_text(encoding="utf-8"))
    fam = load_split_file(family)
    assert [s["id"] for s in ref["splits"]] == [i.split.id for i in fam.infos]
    for r in ref["splits"]:
        info = fam.info(r["id"])
        s = info.split
        assert s.dataset == r["dataset"] and s.num_classes == r["num_classes"]
        assert list(s.unseen) == r["unseen"] and list(info.unseen_names) == r["unseen_names"]
        assert len(s.seen_classes) == r["num_seen"]
        if "validation" in r:
            assert list(s.validation_unseen) == r["validation"]["unseen"]
            assert list(info.validation_names) == r["validation"]["unseen_names"]
        else:
            assert s.validation_unseen is None
        assert info.exemplars == (tuple(r["exemplars"]) if r.get("exemplars") else None)
        assert {x["ref"] for x in r["sources"]} <= set(s.sources)
        if "benchmarks" in r and family != "one_shot":
            assert set(r["benchmarks"]) <= set(info.sample_rules)


@needs_reference
def test_cross_dataset_matches_reference():
    ref = json.loads((REFERENCE / "splits" / "cross_dataset.json").read_text(encoding="utf-8"))
    ours = {p.raw["reference_id"]: p for p in load_split_file("cross_dataset").pairs}
    assert set(ours) == {r["id"] for r in ref["splits"]}
    for r in ref["splits"]:
        p = ours[r["id"]]
        assert (p.source, p.target) == (r["train"]["dataset"], r["test"]["dataset"])
        assert list(p.excluded) == r["train"]["excluded_unseen"]
        assert list(p.unseen) == r["test"]["unseen"]
        key = next(k for k in r if k.endswith("_training_class_name"))
        tnames = class_names(p.target)
        assert sorted(tnames[t] for t, _ in p.name_overlap) == sorted(r[key])


# --------------------------------------------------------------------------------------
# validation rules fire on bad files
# --------------------------------------------------------------------------------------
def _write(tmp_path: Path, family: str, mutate) -> Path:
    data = copy.deepcopy(load_split_file(family).raw)
    mutate(data)
    path = tmp_path / f"{family}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


BAD_CASES = {
    "out_of_range": ("synse", lambda d: d["splits"][0].update(unseen=[10, 11, 19, 26, 60]),
                     r"'unseen'.*\[60\] outside 0\.\.59"),
    "overlap": ("smie", lambda d: d["splits"][0].update(seen=list(range(0, 10)), num_seen=10),
                r"smie_split_1.*both seen and unseen"),
    "validation_outside_seen": ("synse", lambda d: d["splits"][0]["validation"].update(
        unseen=[10, 1, 2, 3, 4], unseen_names=[class_names("ntu60")[c] for c in (10, 1, 2, 3, 4)]),
        r"synse_ntu60_55_5.*validation classes \[10\] are not seen"),
    "name_mismatch": ("purls", lambda d: d["splits"][2]["unseen_names"].__setitem__(1, "jump"),
                      r"purls\.json: split 'purls_ntu60_40_20': field 'unseen_names\[1\]'.*'jump'"),
    "validation_name": ("synse", lambda d: d["splits"][1]["validation"]["unseen_names"]
                        .__setitem__(0, "x"), r"field 'validation\.unseen_names\[0\]'"),
    "duplicate_id": ("star", lambda d: d["splits"][1].update(id=d["splits"][0]["id"]),
                     r"duplicate split id 'star_ntu60_55_5'"),
    "wrong_family": ("smie", lambda d: d.update(family="synse"), r"field 'family'"),
    "bad_rule": ("smie", lambda d: d["splits"][0].update(sample_rules=["xcam"]),
                 r"smie_split_1.*'sample_rules'"),
    "num_classes": ("one_shot", lambda d: d["splits"][0].update(num_classes=60),
                    r"oneshot_ntu120_official.*'num_classes'.*120 classes"),
    "unknown_dataset": ("purls", lambda d: d["splits"][0].update(dataset="kinetics"),
                        r"purls_ntu60_55_5.*'dataset'.*kinetics"),
    "exemplar_count": ("one_shot", lambda d: d["splits"][0]["exemplars"].pop(),
                       r"'exemplars': 19 exemplars for 20"),
    "cross_overlap": ("cross_dataset", lambda d: d["splits"][0]["name_overlap"].append(
        [1, 4, "drop"]), r"ntu60_to_pku_mmd1_split1.*'name_overlap\[5\]'"),
    "cross_names": ("cross_dataset", lambda d: d["splits"][1]["test"]["unseen_names"]
                    .__setitem__(0, "dropping"), r"pku_mmd1_to_ntu60_split1.*test\.unseen_names"),
    "missing_field": ("synse", lambda d: d["splits"][3].pop("unseen"),
                      r"synse_ntu120_96_24.*field 'unseen': missing"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_split_files_are_rejected(tmp_path, case):
    family, mutate, pattern = BAD_CASES[case]
    path = _write(tmp_path, family, mutate)
    with pytest.raises(ZsbenchError, match=pattern) as err:
        read_split_file(path, family)
    assert str(path) in str(err.value)


def test_unicode_apostrophe_is_normalised(tmp_path):
    def mutate(d):  # the ASCII apostrophe of class 56 written typographically
        d["splits"][0]["unseen_names"][4] = d["splits"][0]["unseen_names"][4].replace("'", "\u2019")
    fam = read_split_file(_write(tmp_path, "synse", mutate), "synse")
    assert "\u2019" in fam.infos[0].unseen_names[4]
    names = class_names("ntu120")
    assert "\u2019" in names[108] and "\u2019" in names[116] and "'" in names[56]
    assert normalise_name(names[108]) == "grab other person's stuff"
    assert names[:60] == class_names("ntu60")


def test_unreadable_files(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ZsbenchError, match=r"x\.json: invalid JSON at line 1"):
        read_split_file(bad)
    with pytest.raises(ZsbenchError, match="cannot read"):
        read_split_file(tmp_path / "missing.json")
    with pytest.raises(ZsbenchError, match="unknown split family 'foo'"):
        load_split_file("foo")
    assert canonical_dataset("PKU-MMD") == "pku_mmd1" and canonical_dataset("kinetics") is None


# --------------------------------------------------------------------------------------
# sample rules, checked on the NTU sample inventory
# --------------------------------------------------------------------------------------
def _ids(key: str) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    names = ntu_sample_names(key)
    arr = np.array([[int(n[i + 1:i + 4]) for i in (0, 4, 8, 12, 16)] for n in names])
    meta = {"setup": arr[:, 0], "camera": arr[:, 1], "subject": arr[:, 2]}
    return names, meta, arr[:, 4] - 1


def test_inventory_totals():
    rules = load_sample_rules()
    for key in ("ntu60", "ntu120"):
        usable, raw = ntu_sample_names(key), ntu_sample_names(key, usable=False)
        assert len(raw) == rules[key]["raw_samples"]
        assert len(usable) == rules[key]["usable_samples"]
        assert len(raw) - len(usable) == rules[key]["missing_skeleton_samples"]
    assert ntu_sample_names("ntu120")[:56578] == ntu_sample_names("ntu60")
    n = parse_ntu_stem("S018C003P008R001A061.skeleton")
    assert (n.setup, n.camera, n.subject, n.replication, n.action) == (18, 3, 8, 1, 61)
    with pytest.raises(ZsbenchError, match="not an NTU sample name"):
        parse_ntu_stem("A001C003P008R001S061")


def test_rule_id_lists_are_partitions():
    r = load_sample_rules()
    for key, n in (("ntu60", 40), ("ntu120", 106)):
        tr, te = set(r[key]["xsub"]["train_subject_ids"]), set(r[key]["xsub"]["test_subject_ids"])
        assert not tr & te and tr | te == set(range(1, n + 1))
    assert r["ntu60"]["xview"]["train_camera_ids"] == [2, 3]
    assert r["ntu120"]["xset"]["train_setup_ids"] == list(range(2, 33, 2))
    assert set(r["ntu60"]["xsub"]["train_subject_ids"]) <= set(r["ntu120"]["xsub"]["train_subject_ids"])


@pytest.mark.parametrize("key,rule", [("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"),
                                      ("ntu120", "xset")])
def test_sample_rules_reproduce_counts(key, rule):
    _, meta, _ = _ids(key)
    train = apply_sample_rule(key, rule, meta)
    counts = load_sample_rules()[key][rule]["counts"]
    assert (int(train.sum()), int((~train).sum())) == (counts["train"], counts["test"])


@pytest.mark.skipif(not (SHARED / "DATA_FORMATS.md").is_file(), reason="/work/shared absent")
def test_counts_agree_with_data_formats():
    text = (SHARED / "DATA_FORMATS.md").read_text(encoding="utf-8")
    found = re.findall(r"\| ([\d,]+) / ([\d,]+) \|", text)
    table = [(int(a.replace(",", "")), int(b.replace(",", ""))) for a, b in found][:4]
    r = load_sample_rules()
    assert table == [tuple(r[k][b]["counts"].values()) for k, b in
                     (("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset"))]


def test_sample_rule_errors():
    with pytest.raises(ZsbenchError, match="no rule 'xset'"):
        apply_sample_rule("ntu60", "xset", {"setup": np.array([1])})
    with pytest.raises(ZsbenchError, match="meta column 'camera'"):
        apply_sample_rule("ntu60", "xview", {"subject": np.array([1])})
    with pytest.raises(ZsbenchError, match="ntu60/ntu120 only"):
        apply_sample_rule("pku_mmd1", "xsub", {})


@pytest.mark.parametrize("family", ["synse", "smie", "star", "purls", "sa_dvae"])
def test_expected_sample_counts_are_consistent(family):
    """seen_train + unseen_train_excluded = rule train count, seen_test + unseen_test = rule
    test count, and every number re-derived per class from the inventory."""
    rules = load_sample_rules()
    cache: dict = {}
    for info in load_split_file(family).infos:
        s = info.split
        for rule, c in info.expected_sample_counts.items():
            assert rule in info.sample_rules
            total = rules[s.dataset][rule]["counts"]
            assert c["seen_train"] + c["unseen_train_excluded"] == total["train"]
            assert c["seen_test"] + c["unseen_test"] == total["test"]
            if (s.dataset, rule) not in cache:
                _, meta, labels = _ids(s.dataset)
                cache[(s.dataset, rule)] = (apply_sample_rule(s.dataset, rule, meta), labels)
            train, labels = cache[(s.dataset, rule)]
            unseen = np.isin(labels, s.unseen)
            assert c["unseen_test"] == int((~train & unseen).sum())
            assert c["seen_train"] == int((train & ~unseen).sum())
        if s.dataset.startswith("ntu") and family != "star":
            assert info.expected_sample_counts, s.id
