"""SynSE verb/noun split of class labels (zsbench_synse.pos): hand-checked examples and the
pinned output for every NTU-120 and PKU-MMD class name."""
from __future__ import annotations

from pathlib import Path

import pytest

from zsbench.names import class_names
from zsbench_synse.pos import analyse, split_label

FIXTURE = Path(__file__).parent / "fixtures" / "synse_pos_ntu120.tsv"


@pytest.mark.parametrize("name, verb, noun", [
    ("drink water", "drink", "water"),
    ("eat meal/snack", "eat", "meal/snack"),
    ("take off a hat/cap", "take off", "hat/cap"),
    ("put on a hat/cap", "put on", "hat/cap"),
    ("hand waving", "waving", "hand"),
    ("make a phone call/answer phone", "make/answer", "phone call/phone"),
    ("touch head (headache)", "touch", "head"),
    ("nod head/bow", "nod/bow", "head"),
    ("punching/slapping other person", "punching/slapping", "other person"),
    ("walking apart from each other", "walking apart", "each other"),
    ("bounce ball", "bounce", "ball"),
    ("ball up paper", "ball up", "paper"),
    ("cheers and drink", "drink", "cheers"),
    ("grab other person\u2019s stuff", "grab", "other person's stuff"),
    ("take something out of a bag", "take", "something bag"),
    ("nausea or vomiting condition", "vomiting", "nausea condition"),
])
def test_hand_checked_splits(name, verb, noun):
    assert split_label(name) == (verb, noun)


@pytest.mark.parametrize("name, verb, noun, fallback", [
    ("clapping", "clapping", "clapping", "n"),          # no noun: whole label
    ("standing up (from sitting position)", "standing up", "standing up", "n"),
    ("arm circles", "arm circles", "arm circles", "v"),  # plural -s at clause start: noun
    ("tennis bat swing", "tennis bat swing", "tennis bat swing", "v"),  # base form, not first
    ("thumb up", "thumb up", "thumb", "v"),
    ("high-five", "high-five", "high-five", "v"),      # hyphenated words are never verbs
])
def test_fallbacks(name, verb, noun, fallback):
    s = analyse(name)
    assert (s.verb, s.noun) == (verb, noun)
    assert s.verb_fallback == ("v" in fallback) and s.noun_fallback == ("n" in fallback)


def test_parentheses_option_keeps_the_aside():
    assert split_label("standing up (from sitting position)", keep_parentheses=True) == \
        ("standing up sitting", "position")
    assert split_label("touch chest (stomachache/heart pain)", keep_parentheses=True) == \
        ("touch", "chest stomachache/heart pain")


def test_relative_clause_and_embedded_benchmark_style_labels():
    assert split_label("wave right hand overhead while squatting, facing a partner who bows") \
        == ("wave squatting facing bows", "right hand partner")
    assert split_label("punch forward with both fists") == ("punch forward", "both fists")


def test_empty_label_is_refused():
    with pytest.raises(ValueError, match="empty"):
        analyse(" () / ")


def _fixture() -> list[list[str]]:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    return [ln.split("\t") for ln in lines if ln and not ln.startswith("#")]


def test_fixture_covers_every_ntu120_and_pku_name():
    rows = _fixture()
    for ds in ("ntu120", "pku_mmd"):
        assert [r[2] for r in rows if r[0] == ds] == class_names(ds if ds == "ntu120" else "pku_mmd1")


def test_every_ntu120_and_pku_name_matches_the_pinned_split():
    for ds, idx, name, verb, noun, fallback in _fixture():
        s = analyse(name)
        got = (s.verb, s.noun, ("v" if s.verb_fallback else "") + ("n" if s.noun_fallback else ""))
        assert got == (verb, noun, fallback), f"{ds} class {idx} {name!r}"
        assert verb.strip() and noun.strip()


# ---- the synse_pos text source -------------------------------------------------------
def _dataset(names):
    import numpy as np

    from zsbench.api import SkeletonDataset

    return SkeletonDataset(name="toy", class_names=list(names), labels=np.zeros(0, np.int64),
                           data=np.zeros((0, 3, 1, 25, 1), np.float32), fingerprint="toy")


def test_text_source_gives_verb_and_noun_kinds(tmp_path):
    from zsbench_synse.texts import SynsePosConfig, pos_texts

    ds = _dataset(["drink water", "hand waving", "clapping"])
    out = pos_texts(SynsePosConfig(), ds)
    assert out == {"verb": [["drink"], ["waving"], ["clapping"]],
                   "noun": [["water"], ["hand"], ["clapping"]]}
    data = tmp_path / "split.json"
    data.write_text('{"Clapping": ["clap", "hands"]}', encoding="utf-8")
    out = pos_texts(SynsePosConfig(path=data, overrides={"hand waving": ("wave", "hand")},
                                   verb_kind="v", noun_kind="n"), ds)
    assert out == {"v": [["drink"], ["wave"], ["clap"]], "n": [["water"], ["hand"], ["hands"]]}


def test_text_source_errors_say_what_to_fix(tmp_path):
    from zsbench.api import ZsbenchError
    from zsbench_synse.texts import SynsePosConfig, pos_texts

    ds = _dataset(["drink water"])
    with pytest.raises(ZsbenchError, match="not a class"):
        pos_texts(SynsePosConfig(overrides={"fly": ("fly", "air")}), ds)
    bad = tmp_path / "bad.json"
    bad.write_text('{"drink water": ["drink"]}', encoding="utf-8")
    with pytest.raises(ZsbenchError, match="two non-empty strings"):
        pos_texts(SynsePosConfig(path=bad), ds)
    bad.write_text("[1,", encoding="utf-8")
    with pytest.raises(ZsbenchError, match="not valid JSON"):
        pos_texts(SynsePosConfig(path=bad), ds)


def test_registered_source_is_the_default_for_verb_and_noun():
    from zsbench.plugins import load_plugins

    spec = load_plugins().text_sources.get("synse_pos")
    assert set(spec.default_for) == {"verb", "noun"}
