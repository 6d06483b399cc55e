"""Regenerate the split files in this folder from the reference data (run once, by hand).

    python splits/_generate.py splits [--reference /work/shared/reference] [--family F ...]
    python splits/_generate.py inventory --raw-names A.txt [B.txt ...] \
        --missing60 NTU_RGBD_samples_with_missing_skeletons.txt \
        --missing120 NTU_RGBD120_samples_with_missing_skeletons.txt

``splits`` rewrites ``<family>.json`` (synse, smie, star, purls, one_shot, cross_dataset,
sa_dvae; ``--family NAME`` for only some) in the zsbench split format (docs/protocols.md,
"Split file format") from the reference ``splits/*.json``. ``inventory`` rewrites
``ntu_inventory.json`` (the NTU sample set as setups x performers plus the official
missing-skeleton lists) from plain name lists. The product never runs this script: it reads
only the generated files.
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORMAT = "zsbench-splits/1"
CLASS_FILES = {"ntu60": "classes/ntu60.txt", "ntu120": "classes/ntu120.txt",
               "pku_mmd1": "classes/pku_mmd.txt", "pku_mmd2": "classes/pku_mmd.txt"}
RULES_REF = "sample_rules.json"
COUNT_NOTE = ("expected_sample_counts: NTU only, derived by the reference from the usable NTU "
              "sample list (56,578 / 113,945 samples) with the rules of sample_rules.json; "
              "seen_train = training-part samples of seen classes, unseen_train_excluded = "
              "training-part samples of unseen classes (never used), seen_test / unseen_test = "
              "test-part samples of seen / unseen classes. tests/test_splits.py re-derives them "
              "from ntu_inventory.json.")

FAMILY_RULES = {
    "synse": {
        "default": "xsub",
        "train": "training-part samples of seen classes (SynSE train.npy)",
        "test_unseen": "test-part samples of unseen classes (ZSL test set, ztest.npy)",
        "test_seen": "test-part samples of seen classes (GZSL adds them, gtest.npy)",
        "validation": "SynSE validation split: validation-unseen classes carved from the seen "
                      "classes; used for the GZSL gate / calibration, never the test set",
        "rules_key": "zero_shot_sample_rules.synse_msf_purls",
        "note": "The NTU benchmark of SynSE/MSF/PURLS pre-extracted features is not stated in "
                "their repositories (usually described as xsub) [unverified]; STAR/Neuron "
                "report the same class splits under NTU-60 xsub/xview and NTU-120 xsub/xset.",
    },
    "smie": {
        "default": "xsub",
        "train": "xsub training-part samples whose class is seen",
        "test_unseen": "xsub test-part samples whose class is unseen (ZSL evaluation set)",
        "test_seen": "xsub test-part samples of seen classes (written by SMIE split.py, not "
                     "used by the ZSL evaluation)",
        "rules_key": "zero_shot_sample_rules.smie_pgfa_dvta",
        "note": "SMIE/PGFA/DVTA use the cross-subject benchmark only; PKU-MMD = Part I.",
    },
    "star": {
        "default": "xsub",
        "train": "training-part samples whose class is seen",
        "test_unseen": "test-part samples whose class is unseen (ZSL)",
        "test_seen": "test-part samples of seen classes (GZSL test = all test-part samples)",
        "rules_key": "zero_shot_sample_rules.star_neuron_flora",
        "note": "Benchmarks: NTU-60 xsub/xview, NTU-120 xsub/xset, PKU-MMD xsub/xview; each "
                "benchmark is a separate result (never averaged together).",
    },
    "purls": {
        "default": "xsub",
        "train": "training-part samples of seen classes",
        "test_unseen": "test-part samples of unseen classes",
        "test_seen": "test-part samples of seen classes",
        "rules_key": "zero_shot_sample_rules.synse_msf_purls",
        "note": "PURLS reuses the SynSE feature layout; its benchmark is not stated "
                "(xsub assumed) [unverified].",
    },
    "one_shot": {
        "default": "all",
        "train": "'all': every sample of the auxiliary (seen) classes; partition rules: "
                 "training-part samples of seen classes",
        "test_unseen": "samples of the novel (unseen) classes minus the support exemplars "
                       "('all': every sample; partition rules: test-part samples)",
        "test_seen": "none for 'all'; test-part samples of seen classes otherwise",
        "support": "one labelled exemplar per novel class, given at test time and excluded "
                   "from scoring: the listed exemplar where the split names one and the "
                   "dataset has sample names, otherwise the first candidate test sample of "
                   "the class in dataset order (or a seeded random one)",
        "rules_key": "official NTU RGB+D 120 one-shot protocol (see split sources)",
        "note": "PGFA's NTU-60 50/10 and PKU 41/10 exemplars and sample rule are not public "
                "[unverified]; zsbench applies the official NTU-120 rule ('all') to them too.",
    },
    "cross_dataset": {
        "default": "xsub",
        "train": "xsub training-part samples of the source dataset's seen classes",
        "test_unseen": "xsub test-part samples of the target dataset's unseen classes",
        "test_seen": "none (ZSL only)",
        "rules_key": "zero_shot_sample_rules.smie_pgfa_dvta (PGFA: 'similar to Setting I')",
        "note": "Which sample partition PGFA uses is not stated [unverified]; xsub as in "
                "Setting I.",
    },
    "sa_dvae": {
        "default": "xsub",
        "train": "training-part samples of seen classes",
        "test_unseen": "test-part samples of unseen classes (ZSL evaluation set)",
        "test_seen": "test-part samples of seen classes (not used: the protocol is ZSL only)",
        "rules_key": "zero_shot_sample_rules.star_neuron_flora",
        "note": "SA-DVAE trains its own ST-GCN features per split (mmaction2); the sample "
                "partition is not stated in its repository [unverified]; xsub assumed (the "
                "reference records xsub for the NTU entries).",
    },
}

FAMILY_NOTES = {
    "synse": [
        "1-based vs 0-based: the SynSE README lists unseen classes as 1-based action ids "
        "(A11, ...); all npy files and code lists are 0-based; after id-1 all sources agree.",
        "MSF label_splits/rs100_0.npy (validation-seen set of NTU-120 110/10) holds 81 classes, "
        "not 100 (the seen classes >= 100 are missing); zsbench uses the SynSE rule "
        "validation seen = seen minus validation unseen.",
        "MSF label_splits/rs10.npy is a misnamed duplicate of rs110.npy (not used).",
    ],
    "smie": [
        "SMIE numbers the nine folds split_1..split_9 globally (PKU = 7, 8, 9); STAR/Neuron/Flora "
        "number split1..3 per dataset and their PKU split1/split2 are SMIE split_8/split_9.",
        "PKU third fold: SMIE/PGFA/DVTA split_7 = [1, 9, 20, 34, 50] (= the fixed STAR 46/5 "
        "split); STAR/Neuron/Flora use [4, 12, 16, 22, 36] instead (star.json "
        "star_pku_mmd1_random_split3).",
        "NTU-120 folds overlap: class 42 (falling) is unseen in both split_5 and split_6; the "
        "NTU-60 and PKU folds are pairwise disjoint.",
    ],
    "star": [
        "PKU third random split: STAR/Neuron/Flora use [4, 12, 16, 22, 36]; SMIE's third PKU fold "
        "is [1, 9, 20, 34, 50]. Neuron's paper says its three combinations are the same as "
        "SMIE's, but its code differs for this fold.",
        "Neuron (seed 004) describes NTU-120 xset as 'even camera IDs'; the code splits by "
        "setup id (even = train). zsbench follows the code.",
        "PKU-MMD Part II reuses the Part I index lists in the 51-class id space; which classes "
        "occur in Part II is unverified; no seed paper reports Part II.",
        "STAR's 'val' split is a sample subset (35 training samples per seen class), not a "
        "class split; not recorded.",
    ],
    "purls": [
        "55/5, 48/12, 110/10, 96/24 are the SynSE splits; 40/20, 30/30, 80/40, 60/60 are PURLS "
        "splits (Flora carries the same sets).",
    ],
    "one_shot": [
        "PGFA lists the PKU novel classes unsorted ([10, 30, 40, 0, 5, 35, 45, 15, 20, 25]); kept "
        "in unseen_order_in_source.",
        "Whether PGFA uses exactly the official NTU-120 exemplars is unverified.",
    ],
    "cross_dataset": [
        "Only the PGFA paper text describes this protocol; no code exists. The pairing "
        "'NTU split k with PKU split k' is the natural reading of 'Class Split 1/2/3' "
        "[unverified].",
        "Name overlap (derived, not a source disagreement): in NTU-60 -> PKU split 1 and 3 all 5 "
        "PKU test classes (split 2: 4 of 5) have a character-identical name among the NTU-60 "
        "training classes, so those 'unseen' actions are seen under the same name in training "
        "(name_overlap; the protocol option name_overlap=drop_from_train removes them).",
    ],
    "sa_dvae": [
        "SINGLE SOURCE: the unseen sets come from Flora utils/utils.py ('sadave' tasks) only; "
        "SA-DVAE's own label_splits are only in its resources download and were not compared.",
        "SA-DVAE's run script (scripts/train_eval_average_random_split.sh) names the NTU splits "
        "split2, split3, split4 and the PKU-MMD splits split1-split3; Flora numbers all of them "
        "split1-split3. The mapping SA-DVAE NTU split2-4 -> split1-3 here is assumed in order "
        "and NOT verified.",
        "Not SMIE's splits: no unseen set equals a SMIE, STAR or SynSE set (derived here; "
        "each shares at most two classes with a SMIE fold).",
        "The three folds of a dataset are not disjoint (derived here): NTU-60 split1 and split2 "
        "share class 15 (wear a shoe), NTU-120 split2 and split3 share class 110 (step on "
        "foot); the PKU-MMD folds are pairwise disjoint.",
        "No validation classes: the run script's validation folders (..._val_...) come with the "
        "feature download; the class lists are not published, so zsbench runs ZSL only.",
    ],
}


def read_classes(dataset: str) -> list[str]:
    return (HERE / CLASS_FILES[dataset]).read_text(encoding="utf-8").splitlines()


def norm(name: str) -> str:
    return " ".join(name.replace("\u2019", "'").replace("\u2018", "'").split()).casefold()


def sources(entries: list[dict]) -> list[dict]:
    out = []
    for s in entries:
        if "ref" in s:
            out.append({"ref": s["ref"], "what": s.get("what", "")})
        else:
            out.append({"ref": "paper: " + s.get("paper", ""), "what": ""})
    return out


def size_of(s: dict) -> str:
    return f"{s['num_classes'] - len(s['unseen'])}/{len(s['unseen'])}"


def convert_counts(counts: dict | None) -> dict | None:
    if not counts:
        return None
    if "auxiliary_samples" in counts:  # one-shot official
        return {"all": {"seen_train": counts["auxiliary_samples"],
                        "unseen_test": counts["test_samples_excluding_exemplars"],
                        "unseen_total": counts["evaluation_samples_including_exemplars"],
                        "seen_test": 0}}
    return counts


def convert_split(family: str, s: dict) -> dict:
    ds = s["dataset"]
    out: dict = {"id": s["id"], "dataset": ds, "name": s["name"], "group": size_of(s),
                 "num_classes": s["num_classes"], "num_seen": s["num_seen"],
                 "num_unseen": s["num_unseen"], "unseen": s["unseen"],
                 "unseen_names": s["unseen_names"]}
    if family == "star" and "random" in s["id"]:
        out["group"] += " random"
    if "validation" in s:
        v = s["validation"]
        val: dict = {"unseen": v["unseen"], "unseen_names": v["unseen_names"],
                     "seen_rule": "validation seen = seen classes minus validation unseen",
                     "sources": sources(v["sources"])}
        if v.get("anomaly"):
            val["notes"] = v["anomaly"]
        out["validation"] = val
    if family == "smie":
        rules = ["xsub"]
    elif family == "one_shot":
        rules = ["all", "xsub"]
    else:
        rules = s.get("benchmarks") or ["xsub"]
    out["sample_rules"] = rules
    counts = convert_counts(s.get("expected_sample_counts"))
    if counts:
        out["expected_sample_counts"] = counts
    for key in ("smie_split_number", "paper_name", "pgfa_name", "exemplars",
                "unseen_order_in_source"):
        if s.get(key) is not None:
            out[key] = s[key]
    out["sources"] = sources(s["sources"])
    notes = [s.get("notes", ""), s.get("sample_rule", "")]
    if s.get("expected_sample_counts_note"):
        notes.append(s["expected_sample_counts_note"])
    out["notes"] = " ".join(n for n in notes if n)
    return out


def name_overlap(train_ds: str, excluded: list[int], test_ds: str, unseen: list[int]) -> list:
    train_names = {norm(n): i for i, n in enumerate(read_classes(train_ds)) if i not in excluded}
    test_names = read_classes(test_ds)
    return [[u, train_names[norm(test_names[u])], test_names[u]] for u in unseen
            if norm(test_names[u]) in train_names]


def convert_cross(s: dict, smie: dict[int, dict]) -> dict:
    tr, te = s["train"], s["test"]
    k = int(re.search(r"(\d+)$", s["class_split"]).group(1))
    train_split = {"ntu60": k, "pku_mmd1": k + 6}[tr["dataset"]]
    assert smie[train_split]["unseen"] == tr["excluded_unseen"], s["id"]
    assert smie[te["smie_split"]]["unseen"] == te["unseen"], s["id"]
    direction = f"{tr['dataset']}->{te['dataset']}"
    return {
        "id": f"{tr['dataset']}_to_{te['dataset']}_split{k}", "direction": direction,
        "group": direction, "class_split": k, "name": s["class_split"],
        "train": {"dataset": tr["dataset"], "split": f"smie_split_{train_split}",
                  "excluded": tr["excluded_unseen"], "excluded_names": tr["excluded_unseen_names"]},
        "test": {"dataset": te["dataset"], "split": f"smie_split_{te['smie_split']}",
                 "unseen": te["unseen"], "unseen_names": te["unseen_names"]},
        "name_overlap": name_overlap(tr["dataset"], tr["excluded_unseen"], te["dataset"],
                                     te["unseen"]),
        "sample_rules": {"train": "xsub", "test": "xsub"},
        "reference_id": s["id"],
    }


def class_name_map(a: str, b: str) -> list[list[int]]:
    bn = {norm(n): i for i, n in enumerate(read_classes(b))}
    return [[i, bn[norm(n)]] for i, n in enumerate(read_classes(a)) if norm(n) in bn]


def dump(obj: dict) -> str:
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    # one line per list of scalars (compact, still diff-friendly)
    pat = re.compile(r"\[\s*((?:-?\d+|\"(?:[^\"\\]|\\.)*\")(?:,\s*(?:-?\d+|\"(?:[^\"\\]|\\.)*\"))*)\s*\]")
    return pat.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",\n")) + "]",
                   text) + "\n"


FAMILIES = ("synse", "smie", "star", "purls", "one_shot", "cross_dataset", "sa_dvae")
#: descriptions written here instead of the reference's (which addresses its collector)
DESCRIPTION = {
    "sa_dvae": "SA-DVAE random class splits (Li et al., ECCV 2024; pha123661/SA-DVAE "
               "scripts/train_eval_average_random_split.sh): three folds each of NTU-60 55/5, "
               "NTU-120 110/10 and PKU-MMD Part I 46/5, result = mean over the three folds of a "
               "dataset. SINGLE SOURCE: the unseen sets are Flora's copy (cseeyangchen/Flora "
               "utils/utils.py, tasks '<dataset>_..._sadave_split1..3'); SA-DVAE ships its "
               "label_splits only in a download (resources/label_splits is empty at "
               "pha123661/SA-DVAE@90d99b837d7d24cc414f77ea121621982d52cf41), so they are NOT "
               "cross-checked, and the mapping of SA-DVAE's NTU split2-split4 to split1-split3 "
               "here is NOT verified. These are not SMIE's splits. No validation classes.",
}


def build_splits(reference: Path, families: list[str] | None = None) -> None:
    ref_splits = reference / "splits"
    smie_ref = json.loads((ref_splits / "smie.json").read_text(encoding="utf-8"))
    smie = {s["smie_split_number"]: s for s in smie_ref["splits"]}
    for family in families or FAMILIES:
        ref = json.loads((ref_splits / f"{family}.json").read_text(encoding="utf-8"))
        rule = FAMILY_RULES[family]
        out: dict = {
            "format": FORMAT, "family": family,
            "description": DESCRIPTION.get(family, ref["description"]),
            "index_base": 0,
            "seen_rule": "seen classes = every class of the dataset not listed in unseen",
            "class_lists": {d: p for d, p in CLASS_FILES.items()},
            "sample_rule": {**rule, "rules_file": RULES_REF},
            "generated_from": f"reference/splits/{family}.json by splits/_generate.py",
            "notes": FAMILY_NOTES[family],
        }
        if family == "cross_dataset":
            out["seen_rule"] = ("train classes = every class of the source dataset not in "
                                "train.excluded; test classes = test.unseen of the target")
            out["sources"] = sources(ref["sources"])
            out["verification"] = ref["verification"]
            out["class_name_map"] = {
                "pku_mmd1->ntu60": class_name_map("pku_mmd1", "ntu60"),
                "note": "[pku index, ntu60 index] pairs whose class names are identical "
                        "(after U+2019 -> ' and case folding); derived here"}
            out["splits"] = [convert_cross(s, smie) for s in ref["splits"]]
        else:
            out["count_note"] = COUNT_NOTE
            out["splits"] = [convert_split(family, s) for s in ref["splits"]]
        (HERE / f"{family}.json").write_text(dump(out), encoding="utf-8")
        print(f"wrote {family}.json ({len(out['splits'])} splits)")


def build_inventory(raw_files: list[Path], missing60: Path, missing120: Path) -> None:
    names = set()
    for f in raw_files:
        names |= {ln.strip() for ln in f.read_text().splitlines() if len(ln.strip()) == 20}
    per_setup: dict[int, set[int]] = defaultdict(set)
    cells: dict[tuple[int, int], set[tuple[int, int, int]]] = defaultdict(set)
    for n in names:
        s, c, p, r, a = (int(n[i:i + 3]) for i in (1, 5, 9, 13, 17))
        per_setup[s].add(p)
        cells[(s, p)].add((c, r, a))
    for (s, p), got in cells.items():
        acts = range(1, 61) if s <= 17 else range(61, 121)
        full = {(c, r, a) for c in (1, 2, 3) for r in (1, 2) for a in acts}
        if got != full:
            raise SystemExit(f"setup {s} performer {p}: not a full camera x replication x action "
                             "block; the inventory format cannot describe it")

    def missing(path: Path) -> list[str]:
        return sorted(ln.strip() for ln in path.read_text().splitlines() if len(ln.strip()) == 20)

    out = {
        "format": "zsbench-ntu-inventory/1",
        "description": "The NTU RGB+D 60/120 sample set. Every performer listed for a setup was "
                       "recorded with cameras 1-3 and replications 1-2 for every action of the "
                       "setup (A001-A060 for S001-S017, A061-A120 for S018-S032): 114,480 raw "
                       "samples (NTU-60 = S001-S017, 56,880). Usable = raw minus the official "
                       "missing-skeleton list (NTU-60: 302 -> 56,578; NTU-120: 535 -> 113,945).",
        "setups": {str(s): sorted(ps) for s, ps in sorted(per_setup.items())},
        "cameras": [1, 2, 3], "replications": [1, 2],
        "actions": {"1-17": [1, 60], "18-32": [61, 120]},
        "missing": {"ntu60": missing(missing60), "ntu120": missing(missing120)},
        "sources": [
            {"ref": "Thomasc33/SGN-NTU120:skes_available_name.txt@"
                    "e6d5ee8676c2df8b66b665d316c3e7c8fc78e60d",
             "what": "110,746 names; with samples_with_missing_skeletons.txt of the same commit "
                     "(3,734 names) the union is the 114,480 raw NTU-120 samples"},
            {"ref": "shahroudy/NTURGB-D:Matlab/NTU_RGBD_samples_with_missing_skeletons.txt@"
                    "ac2ebc87e6e9777ea6bac67e65e53b325b903f74", "what": "302 names (NTU-60)"},
            {"ref": "shahroudy/NTURGB-D:Matlab/NTU_RGBD120_samples_with_missing_skeletons.txt@"
                    "ac2ebc87e6e9777ea6bac67e65e53b325b903f74", "what": "535 names (NTU-120)"},
        ],
    }
    (HERE / "ntu_inventory.json").write_text(dump(out), encoding="utf-8")
    print(f"wrote ntu_inventory.json ({len(names)} raw samples)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("splits")
    sp.add_argument("--reference", type=Path, default=Path("/work/shared/reference"))
    sp.add_argument("--family", action="append", choices=FAMILIES,
                    help="regenerate only this family (repeatable); default: all")
    inv = sub.add_parser("inventory")
    inv.add_argument("--raw-names", type=Path, nargs="+", required=True)
    inv.add_argument("--missing60", type=Path, required=True)
    inv.add_argument("--missing120", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "splits":
        build_splits(args.reference, args.family)
    else:
        build_inventory(args.raw_names, args.missing60, args.missing120)


if __name__ == "__main__":
    main()
