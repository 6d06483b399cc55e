"""Protocol plugins: folds from split files and builtin splits (plugins/zsbench_protocols)."""
from __future__ import annotations

import numpy as np
import pytest

from zsbench.api import ClassSplit, SkeletonDataset, ZsbenchError
from zsbench.splits import class_names, load_split_file
from zsbench_ntu.rules import apply_sample_rule, ntu_sample_names
from zsbench_protocols.cross import ConcatArray, merge_datasets
from zsbench_protocols.plugin import zsbench_protocols
from zsbench_protocols.protocols import check_no_leak
from zsbench_synthetic.config import SyntheticConfig

SPECS = {s.name: s for s in zsbench_protocols()}


def run(name: str, dataset: SkeletonDataset, **cfg):
    spec = SPECS[name]
    return spec.load()(spec, dataset, spec.config(**cfg))


def fake_ntu(key: str) -> SkeletonDataset:
    """The complete usable NTU sample set (names, ids, labels) with 1-value 'sequences'."""
    names = ntu_sample_names(key)
    arr = np.array([[int(n[i + 1:i + 4]) for i in (0, 4, 8, 12, 16)] for n in names])
    meta = {"setup": arr[:, 0], "camera": arr[:, 1], "subject": arr[:, 2], "replication": arr[:, 3]}
    rules = ("xsub", "xview") if key == "ntu60" else ("xsub", "xset")
    return SkeletonDataset(name=key, class_names=class_names(key), labels=arr[:, 4] - 1,
                           data=np.zeros((len(names), 1, 1, 1, 1), np.float32), fingerprint=key,
                           meta=meta, partitions={r: apply_sample_rule(key, r, meta) for r in rules},
                           sample_names=names)


def fake_pku(per_class: int = 4) -> SkeletonDataset:
    labels = np.repeat(np.arange(51), per_class)
    part = np.tile(np.arange(per_class) % 2 == 0, 51)
    return SkeletonDataset(name="pku_mmd1", class_names=class_names("pku_mmd1"), labels=labels,
                           data=np.ones((len(labels), 1, 1, 1, 1), np.float32), fingerprint="pku",
                           partitions={"xsub": part, "xview": ~part})


def toy(num_classes: int = 12) -> SkeletonDataset:
    """An embedded-benchmark-like dataset: subjects 1-4, cameras 1-3, setups 1-2."""
    grid = np.array([(c, s, cam, st) for c in range(num_classes) for s in (1, 2, 3, 4)
                     for cam in (1, 2, 3) for st in (1, 2)])
    meta = {"subject": grid[:, 1], "camera": grid[:, 2], "setup": grid[:, 3]}
    parts = {"xsub": np.isin(grid[:, 1], [1, 2]), "xview": grid[:, 2] != 1,
             "xset": grid[:, 3] == 2}

    def cs(i, unseen, **kw):
        return ClassSplit(id=f"toy_{i}", dataset="toy", num_classes=num_classes, unseen=unseen,
                          name=f"fold{i}", **kw)
    builtin = {
        "synse": [cs(0, (3, 7), validation_unseen=(1, 5)), cs(1, (0, 4, 8, 11))],
        "smie": [cs(0, (0, 5)), cs(1, (1, 6)), cs(2, (2, 9))],
        "star": [cs(0, (3, 7)), cs(1, (0, 4, 8, 11))],
        "purls": [cs(0, (3, 7)), cs(1, tuple(range(6)))],
        "one_shot": [cs(0, (2, 6, 10))],
        "sa_dvae": [cs(0, (3, 8)), cs(1, (4, 10)), cs(2, (7, 11))],
    }
    return SkeletonDataset(name="synthetic", class_names=[f"action {i}" for i in range(num_classes)],
                           labels=grid[:, 0], data=np.zeros((len(grid), 3, 4, 25, 2), np.float32),
                           fingerprint="toy", meta=meta, partitions=parts, builtin_splits=builtin)


@pytest.fixture(scope="module")
def ntu60():
    return fake_ntu("ntu60")


@pytest.fixture(scope="module")
def ntu120():
    return fake_ntu("ntu120")


def test_registration():
    assert set(SPECS) == {"synse", "smie", "star", "purls", "one_shot", "cross_dataset", "sa_dvae"}
    for spec in SPECS.values():
        assert spec.family == spec.name and spec.default_dataset == "synthetic"
        assert set(spec.datasets) <= set(load_split_file(spec.family).datasets())
        assert spec.config.model_json_schema()["additionalProperties"] is False
        assert callable(spec.load())
    assert SPECS["synse"].settings == ["zsl", "gzsl"] and SPECS["one_shot"].settings == ["zsl"]
    with pytest.raises(Exception, match="extra"):
        SPECS["smie"].config(fold=1)


# --------------------------------------------------------------------------------------
# real datasets: fold sizes equal the split files' expected counts
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,cfg", [("synse", {}), ("synse", {"sample_rule": "xview"}),
                                      ("smie", {}), ("star", {}), ("star", {"split_set": "random"}),
                                      ("star", {"sample_rule": "xview"}), ("purls", {}),
                                      ("sa_dvae", {})])
def test_ntu60_folds_match_expected_counts(ntu60, name, cfg):
    folds = run(name, ntu60, **cfg)
    fam = load_split_file(name)
    assert folds and {f.dataset for f in folds} == {"ntu60"}
    for f in folds:
        check_no_leak(f, ntu60.labels)
        exp = fam.info(f.split.id).expected_sample_counts[f.sample_rule]
        assert (len(f.train), len(f.test_seen), len(f.test_unseen)) == \
            (exp["seen_train"], exp["seen_test"], exp["unseen_test"])
        part = ntu60.partitions[f.sample_rule]
        assert part[f.train].all() and not part[f.test_unseen].any() and not part[f.test_seen].any()
        assert f.sample_rule == cfg.get("sample_rule", "xsub")


@pytest.mark.parametrize("name,cfg,n", [("synse", {"sample_rule": "xset"}, 2), ("smie", {}, 3),
                                        ("purls", {}, 4), ("star", {"split_set": "all"}, 5),
                                        ("sa_dvae", {}, 3)])
def test_ntu120_folds_match_expected_counts(ntu120, name, cfg, n):
    folds = run(name, ntu120, **cfg)
    assert len(folds) == n
    for f in folds:
        check_no_leak(f, ntu120.labels)
        exp = load_split_file(name).info(f.split.id).expected_sample_counts[f.sample_rule]
        assert (len(f.train), len(f.test_unseen)) == (exp["seen_train"], exp["unseen_test"])


def test_groups_and_selection(ntu60):
    folds = run("synse", ntu60)
    assert [f.group for f in folds] == ["55/5", "48/12"]
    assert folds[0].name == "synse_ntu60_55_5/xsub"
    val = load_split_file("synse").info("synse_ntu60_55_5").split.validation_unseen
    assert folds[0].split.validation_unseen == val and len(val) == 5
    assert run("synse", ntu60, use_validation=False)[0].split.validation_unseen is None
    assert {f.group for f in run("smie", ntu60)} == {"55/5"}
    assert [f.split.id for f in run("purls", ntu60, splits=["40/20", "purls_ntu60_55_5"])] == \
        ["purls_ntu60_55_5", "purls_ntu60_40_20"]
    with pytest.raises(ZsbenchError, match=r"unknown split selection \['7/7'\]; available"):
        run("purls", ntu60, splits=["7/7"])
    with pytest.raises(ZsbenchError, match=r"smie\.json: split 'smie_split_1': field "
                                           r"'sample_rules' allows \['xsub'\], not 'xview'"):
        run("smie", ntu60, sample_rule="xview")


def renamed(data: SkeletonDataset, cls: int, name: str) -> SkeletonDataset:
    """``data`` with class ``cls`` renamed (a class list that disagrees with the split file)."""
    names = list(data.class_names)
    names[cls] = name
    return SkeletonDataset(name=data.name, class_names=names, labels=data.labels, data=data.data,
                           fingerprint="x", partitions=data.partitions)


def test_real_dataset_class_names_are_checked(ntu60):
    bad = renamed(ntu60, 19, "wear a hat")
    with pytest.raises(ZsbenchError, match=r"class 19 is 'wear a hat', but split 'smie_split_1'"):
        run("smie", bad)
    assert len(run("smie", bad, check_class_names=False)) == 3
    names = [n.replace("\u2019", "'").upper() for n in class_names("ntu120")]
    ok = SkeletonDataset(name="NTU-120", class_names=names, labels=np.arange(120),
                         data=np.zeros((120, 1, 1, 1, 1)), fingerprint="y",
                         partitions={"xsub": np.arange(120) % 2 == 0})
    folds = run("synse", ok)  # U+2019 and case differences are accepted
    assert [f.split.id for f in folds] == ["synse_ntu120_110_10", "synse_ntu120_96_24"]
    empty = SkeletonDataset(name="ntu120", class_names=names, labels=np.arange(120),
                            data=np.zeros((120, 1, 1, 1, 1)), fingerprint="y",
                            partitions={"xsub": np.isin(np.arange(120), folds[0].split.unseen)
                                                   | (np.arange(120) % 2 == 0)})
    with pytest.raises(ZsbenchError, match=r"fold 'synse_ntu120_110_10/xsub': no test samples"):
        run("synse", empty)


def test_unknown_dataset_lists_supported():
    plain = toy()
    plain.builtin_splits = {}
    plain.name = "kinetics"
    for name, spec in SPECS.items():
        with pytest.raises(ZsbenchError, match=rf"protocol '{name}' does not support dataset "
                                               rf"'kinetics': it runs on {spec.datasets[0]}"):
            spec.load()(spec, plain, spec.config())


def test_missing_partition():
    data = toy()
    data.partitions.pop("xview")
    with pytest.raises(ZsbenchError, match=r"has no sample partition 'xview'; available: "
                                           r"\['xset', 'xsub'\]"):
        run("star", data, sample_rule="xview")
    data.partitions["xsub"] = np.ones(3, bool)
    with pytest.raises(ZsbenchError, match=r"partitions\['xsub'\] must be a boolean array"):
        run("smie", data)


# --------------------------------------------------------------------------------------
# embedded benchmark (builtin splits)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["synse", "smie", "star", "purls", "sa_dvae"])
@pytest.mark.parametrize("rule", [None, "xview", "xset"])
def test_builtin_splits(name, rule):
    data = toy()
    folds = run(name, data, **({"sample_rule": rule} if rule else {}))
    assert [f.split for f in folds] == data.builtin_splits[name]
    for f in folds:
        check_no_leak(f, data.labels)
        part = data.partitions[rule or "xsub"]
        assert part[f.train].all() and not part[f.test_unseen].any()
        assert set(data.labels[f.test_unseen]) == set(f.split.unseen)
        assert set(data.labels[f.train]) == set(f.split.seen_classes)
        assert len(f.train) + len(f.test_seen) == int(np.isin(data.labels, f.split.seen_classes).sum())
        assert f.group == f"{12 - len(f.split.unseen)}/{len(f.split.unseen)}"
    assert [f.split.id for f in run(name, data, splits=["fold1"])] == ["toy_1"]


def test_builtin_split_errors():
    data = toy()
    data.builtin_splits["smie"] = [ClassSplit(id="bad", dataset="toy", num_classes=10, unseen=(1,))]
    with pytest.raises(ZsbenchError, match=r"builtin_splits\['smie'\]: split 'bad' has 10 classes"):
        run("smie", data)
    data.builtin_splits["smie"] = [ClassSplit(id="bad2", dataset="toy", num_classes=12, unseen=(1,),
                                              seen=(1, 2))]
    with pytest.raises(ZsbenchError, match="both seen and unseen"):
        run("smie", data)


def test_excluded_classes_are_dropped():
    data = toy()
    data.builtin_splits["smie"] = [ClassSplit(id="ex", dataset="toy", num_classes=12, unseen=(0,),
                                              seen=(1, 2, 3))]
    (f,) = run("smie", data)
    assert set(data.labels[f.train]) == {1, 2, 3} and set(data.labels[f.test_seen]) == {1, 2, 3}


# --------------------------------------------------------------------------------------
# sa_dvae (SA-DVAE's own random splits)
# --------------------------------------------------------------------------------------
SA_DVAE_UNSEEN = {  # Flora utils/utils.py 'sadave' tasks (reference/splits/sa_dvae.json)
    "ntu60": [(0, 8, 15, 28, 46), (15, 19, 23, 47, 50), (29, 37, 38, 45, 55)],
    "ntu120": [(0, 4, 6, 7, 24, 37, 54, 59, 97, 113), (63, 79, 86, 92, 98, 100, 103, 110, 111, 117),
               (9, 14, 17, 44, 60, 75, 81, 89, 108, 110)],
    "pku_mmd1": [(10, 19, 27, 38, 48), (0, 9, 17, 30, 42), (18, 24, 31, 43, 45)],
}


def test_sa_dvae_spec_and_file():
    spec = SPECS["sa_dvae"]
    assert spec.settings == ["zsl"] and spec.datasets == ["ntu60", "ntu120", "pku_mmd1"]
    assert "no validation" in spec.description
    assert any(s.startswith("pha123661/SA-DVAE:scripts/train_eval_average_random_split.sh@90d99b8")
               for s in spec.sources)
    assert any(s.startswith("cseeyangchen/Flora:utils/utils.py@") for s in spec.sources)
    fam = load_split_file("sa_dvae")
    assert "SINGLE SOURCE" in fam.description and "NOT verified" in fam.description
    smie = {frozenset(s.unseen) for s in load_split_file("smie").splits()}
    for ds, unseen in SA_DVAE_UNSEEN.items():
        splits = fam.splits(ds)
        assert [s.unseen for s in splits] == unseen
        assert all(s.validation_unseen is None for s in splits)
        assert not {frozenset(u) for u in unseen} & smie  # not SMIE's splits


def test_sa_dvae_folds_ntu(ntu60, ntu120):
    for data, size in ((ntu60, "55/5"), (ntu120, "110/10")):
        folds = run("sa_dvae", data)
        assert [f.split.unseen for f in folds] == SA_DVAE_UNSEEN[data.name]
        assert {f.group for f in folds} == {size} and {f.sample_rule for f in folds} == {"xsub"}
        assert [f.name for f in folds] == [f"sadvae_{data.name}_split{i}/xsub" for i in (1, 2, 3)]
        for f in folds:
            check_no_leak(f, data.labels)
            assert f.split.validation_unseen is None
    with pytest.raises(ZsbenchError, match=r"sa_dvae\.json: split 'sadvae_ntu60_split1': field "
                                           r"'sample_rules' allows \['xsub'\], not 'xview'"):
        run("sa_dvae", ntu60, sample_rule="xview")
    assert [f.split.id for f in run("sa_dvae", ntu60, splits=["sadvae_ntu60_split3"])] == \
        ["sadvae_ntu60_split3"]


def test_sa_dvae_folds_pku():
    data = fake_pku()
    folds = run("sa_dvae", data)
    assert [f.split.unseen for f in folds] == SA_DVAE_UNSEEN["pku_mmd1"]
    for f in folds:
        check_no_leak(f, data.labels)
        assert f.group == "46/5"
        # 4 samples per class, 2 in each part: 46 seen classes train, 5 unseen classes test
        assert (len(f.train), len(f.test_unseen), len(f.test_seen)) == (92, 10, 92)
        assert set(data.labels[f.test_unseen]) == set(f.split.unseen)
    with pytest.raises(ZsbenchError, match=r"class 10 is 'jump', but split 'sadvae_pku_mmd1_split1'"):
        run("sa_dvae", renamed(data, 10, "jump"))


def test_sa_dvae_is_listed(capsys):
    from zsbench.cli import main

    assert main(["list", "protocols"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "sa_dvae" in ln)
    assert "SA-DVAE random splits" in line


# --------------------------------------------------------------------------------------
# one-shot
# --------------------------------------------------------------------------------------
def test_one_shot_official_ntu120(ntu120):
    (f,) = run("one_shot", ntu120)
    info = load_split_file("one_shot").info("oneshot_ntu120_official")
    exp = info.expected_sample_counts["all"]
    assert f.sample_rule == "all" and f.group == "100/20"
    assert (len(f.train), len(f.test_unseen), len(f.test_seen)) == \
        (exp["seen_train"], exp["unseen_test"], 0)
    assert [ntu120.sample_names[i] for i in f.support] == list(info.exemplars)
    assert len(f.support) + len(f.test_unseen) == exp["unseen_total"]
    check_no_leak(f, ntu120.labels)
    assert list(ntu120.labels[f.support]) == sorted(f.split.unseen)


def test_one_shot_exemplar_errors(ntu120):
    names = list(ntu120.sample_names)
    names[names.index("S018C003P008R001A061")] = "S018C003P008R001A061x"
    renamed = SkeletonDataset(name="ntu120", class_names=ntu120.class_names, labels=ntu120.labels,
                              data=ntu120.data, fingerprint="r", partitions=ntu120.partitions,
                              sample_names=[n[:20] if n.endswith("x") else n for n in names])
    renamed.sample_names[names.index("S018C003P008R001A061x")] = "S018C003P008R001A062"
    with pytest.raises(ZsbenchError, match=r"one_shot\.json: split 'oneshot_ntu120_official': "
                                           r"field 'exemplars\[10\]'"):
        run("one_shot", renamed)
    nameless = SkeletonDataset(name="ntu120", class_names=ntu120.class_names, labels=ntu120.labels,
                               data=ntu120.data, fingerprint="n", partitions=ntu120.partitions)
    with pytest.raises(ZsbenchError, match="field 'exemplars' names samples.*no sample_names"):
        run("one_shot", nameless)
    (f,) = run("one_shot", nameless, use_listed_exemplars=False)
    assert len(f.support) == 20 and len(f.test_unseen) == 18924


@pytest.mark.parametrize("seed", [None, 3])
def test_one_shot_pgfa_and_builtin(ntu60, seed):
    (f,) = run("one_shot", ntu60, support_seed=seed)
    assert f.split.unseen == (0, 6, 12, 18, 24, 30, 36, 42, 48, 54)
    assert len(f.support) == 10 and not np.isin(f.support, f.test_unseen).any()
    check_no_leak(f, ntu60.labels)
    (x,) = run("one_shot", ntu60, sample_rule="xsub", support_seed=seed)
    assert not ntu60.partitions["xsub"][x.support].any()  # support from the test part
    data = toy()
    (b,) = run("one_shot", data, support_seed=seed)
    assert b.sample_rule == "xsub" and list(data.labels[b.support]) == [2, 6, 10]
    check_no_leak(b, data.labels)
    per_class = np.bincount(data.labels[b.test_unseen], minlength=12)
    assert list(per_class[[2, 6, 10]]) == [11, 11, 11]


# --------------------------------------------------------------------------------------
# cross-dataset
# --------------------------------------------------------------------------------------
def test_concat_array():
    a = np.arange(12, dtype=np.float32).reshape(3, 2, 1, 1, 2)
    b = 100 + np.arange(8, dtype=np.float32).reshape(2, 2, 1, 1, 2)
    c = ConcatArray([a, b])
    full = np.concatenate([a, b])
    assert c.shape == full.shape and len(c) == 5 and c.ndim == 5
    for key in (0, 4, -1, slice(1, 4), [4, 0, 3], np.array([True, False, False, True, True]),
                (np.array([1, 3]), 0)):
        np.testing.assert_array_equal(c[key], full[key])
    np.testing.assert_array_equal(np.asarray(c), full)
    with pytest.raises(ZsbenchError, match="cannot merge sample arrays"):
        ConcatArray([a, np.zeros((1, 3, 1, 1, 2))])


def test_cross_dataset_real(ntu60):
    pku = fake_pku()
    with pytest.raises(ZsbenchError, match=r"needs the partner dataset 'pku_mmd': set config\.loader"):
        run("cross_dataset", ntu60)
    calls = []

    def loader(name):
        calls.append(name)
        return pku
    folds = run("cross_dataset", ntu60, loader=loader)
    assert calls == ["pku_mmd"] and len(folds) == 6
    merged = folds[0].data_source
    assert merged.name == "ntu60+pku_mmd1" and merged.num_classes == 111
    assert len(merged) == len(ntu60) + len(pku) and merged.data[len(ntu60)].sum() == 1
    domain = merged.meta["domain"]
    for f in folds:
        check_no_leak(f, merged.labels)
        src = 0 if f.group == "ntu60->pku_mmd1" else 1
        assert (domain[f.train] == src).all() and (domain[f.test_unseen] == 1 - src).all()
        assert len(f.test_seen) == 0 and f.data_source is merged
        part = merged.partitions["xsub"]
        assert part[f.train].all() and not part[f.test_unseen].any()
    f1 = folds[0]
    assert f1.split.id == "ntu60_to_pku_mmd1_split1"
    assert sorted(merged.labels[f1.test_unseen] - 60) == sorted([1, 9, 20, 34, 50] * 2)
    assert {f.group for f in run("cross_dataset", ntu60, loader=loader, direction="forward")} == \
        {"ntu60->pku_mmd1"}
    back = run("cross_dataset", pku, loader=lambda n: ntu60, direction="forward", splits=["2"])
    assert [f.split.id for f in back] == ["pku_mmd1_to_ntu60_split2"]
    strict = run("cross_dataset", ntu60, loader=loader, name_overlap="drop_from_train", splits=["1"])
    pair = load_split_file("cross_dataset").pairs[0]
    dropped = {c for _, c in pair.name_overlap}
    assert not np.isin(merged.labels[strict[0].train], list(dropped)).any()
    assert strict[0].group == "ntu60->pku_mmd1 drop_overlap"


def test_cross_dataset_checks_partner(ntu60):
    pku = fake_pku()
    with pytest.raises(ZsbenchError, match=r"loader returned 'ntu60' for 'pku_mmd'"):
        run("cross_dataset", ntu60, loader=lambda n: ntu60)
    bad = SkeletonDataset(name="pku_mmd1", class_names=["x"] * 51, labels=pku.labels, data=pku.data,
                          fingerprint="b", partitions=pku.partitions)
    with pytest.raises(ZsbenchError, match=r"dataset 'pku_mmd1': class 0 is 'x'"):
        run("cross_dataset", ntu60, loader=lambda n: bad)
    other = SkeletonDataset(name="pku_mmd1", class_names=pku.class_names, labels=pku.labels,
                            data=pku.data, fingerprint="l", partitions=pku.partitions, layout="coco17")
    with pytest.raises(ZsbenchError, match="different skeleton layouts"):
        merge_datasets(ntu60, other)


def test_cross_dataset_embedded_analogue():
    data = toy()
    folds = run("cross_dataset", data)
    assert len(folds) == 6 and {f.group for f in folds} == {"xview:A->B", "xview:B->A"}
    cam1 = data.meta["camera"] == 1  # xview test part = domain B
    for f in folds:
        check_no_leak(f, data.labels)
        a_to_b = f.group.endswith("A->B")
        assert (cam1[f.train] != a_to_b).all() and (cam1[f.test_unseen] == a_to_b).all()
        assert len(f.test_seen) == 0 and f.data_source is None
    assert len(run("cross_dataset", data, direction="backward", domain_rule="xsub")) == 3


def test_protocols_on_the_embedded_benchmark():
    synthetic = pytest.importorskip("zsbench_synthetic")
    data = synthetic.load_synthetic(SyntheticConfig(num_classes=12, sequences=240, frames=20, num_subjects=4), None)
    for name, spec in SPECS.items():
        folds = spec.load()(spec, data, spec.config())
        assert folds, name
        for f in folds:
            check_no_leak(f, data.labels)
            assert f.dataset == "synthetic" and f.data_source is None
            rule = "xview" if name == "cross_dataset" else "xsub"
            assert f.sample_rule == rule
        if name == "one_shot":
            assert all(len(f.support) == len(f.split.unseen) for f in folds)
        elif name != "cross_dataset":
            assert [f.split for f in folds] == data.builtin_splits[name]
