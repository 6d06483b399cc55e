"""Text bank: sources merged, every class covered, embeddings cached on disk (content
addressed), corrupted cache files detected and rebuilt, random control bank."""
from __future__ import annotations

import hashlib
import json
import sys
import types
import warnings

import numpy as np
import pytest

from zsbench import textbank as tb
from zsbench.api import ClassTexts, SkeletonDataset, ZsbenchError
from zsbench.specs import PluginConfig, TextEncoderSpec, TextSourceSpec
from zsbench_text.plugin import zsbench_text_sources

NAMES = ["drink water", "eat meal", "sit down", "stand up"]
DIM = 8


class CountingConfig(PluginConfig):
    scale: float = 1.0


class CountingEncoder:
    """Deterministic fake encoder (vector from the text's hash) that counts its calls."""

    calls: list[int] = []

    def __init__(self, config: CountingConfig) -> None:
        self.config = config

    def identity(self) -> str:
        return f"counting:scale={self.config.scale}"

    def encode(self, texts: list[str]) -> np.ndarray:
        CountingEncoder.calls.append(len(texts))
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:DIM], np.uint8)
                for t in texts]
        return (np.stack(rows).astype(np.float32) / 255.0) * self.config.scale


def _toy_source(config: PluginConfig, dataset: SkeletonDataset) -> dict:
    return {"description": [[f"{n} is an action.", f"people {n}"] for n in dataset.class_names]}


def _bad_source(config: PluginConfig, dataset: SkeletonDataset) -> dict:
    return {"motion": [["x"]] * (dataset.num_classes - 1)}


@pytest.fixture(autouse=True)
def fake_module(monkeypatch):
    mod = types.ModuleType("zsbench_test_fakes")
    mod.CountingEncoder = CountingEncoder
    mod.toy_source = _toy_source
    mod.bad_source = _bad_source
    monkeypatch.setitem(sys.modules, "zsbench_test_fakes", mod)
    CountingEncoder.calls = []


ENC = TextEncoderSpec(name="counting", impl="zsbench_test_fakes:CountingEncoder",
                      config=CountingConfig)
TOY = TextSourceSpec(name="toy", impl="zsbench_test_fakes:toy_source",
                     text_kinds=["description"])
BAD = TextSourceSpec(name="bad", impl="zsbench_test_fakes:bad_source", text_kinds=["motion"])
NAMES_SRC = {s.name: s for s in zsbench_text_sources()}["names"]


def dataset(names=NAMES) -> SkeletonDataset:
    return SkeletonDataset(name="toy", class_names=list(names), labels=np.zeros(0, np.int64),
                           data=np.zeros((0, 3, 1, 25, 1), np.float32), fingerprint="t")


def build(cache, sources=None, config=None, **kw) -> ClassTexts:
    sources = sources if sources is not None else [(NAMES_SRC, None), (TOY, None)]
    # the core hands every impl a validated config instance
    sources = [(spec, spec.config.model_validate(c or {})) for spec, c in sources]
    return tb.build_class_texts(dataset(), sources, (ENC, ENC.config.model_validate(config or {})),
                                cache, **kw)


def shard_files(cache):
    return sorted((cache / "text_embeddings").glob("*/shard-*.npy"))


def test_build_covers_every_class_and_merges_kinds(tmp_path):
    seen = []
    bank = build(tmp_path, progress=lambda it, desc: seen.append(desc) or it)
    assert bank.class_ids.tolist() == [0, 1, 2, 3] and bank.class_names == NAMES
    assert bank.kinds == ["name", "description"]
    assert bank.texts["name"][2] == ["sit down"]
    assert bank.texts["description"][1] == ["eat meal is an action.", "people eat meal"]
    assert [e.shape for e in bank.embeddings["description"]] == [(2, DIM)] * 4
    ref = CountingEncoder(CountingConfig()).encode(["people stand up"])[0]
    np.testing.assert_array_equal(bank.embeddings["description"][3][1], ref)
    assert bank.matrix("name").shape == (4, DIM)
    assert CountingEncoder.calls[:1] == [12]               # 12 distinct texts, one chunk
    assert seen == ["encoding 12 texts (counting)"]
    sub = bank.subset([3, 1])
    assert sub.texts["name"] == [["stand up"], ["eat meal"]]


def test_second_build_encodes_nothing(tmp_path):
    first = build(tmp_path)
    assert CountingEncoder.calls == [12]
    second = build(tmp_path)
    assert CountingEncoder.calls == [12]                    # zero encode() calls
    for kind in first.kinds:
        for a, b in zip(first.embeddings[kind], second.embeddings[kind]):
            np.testing.assert_array_equal(a, b)
    other = build(tmp_path, config={"scale": 2.0})          # another identity: own cache
    assert CountingEncoder.calls[-1] == 12
    np.testing.assert_allclose(other.matrix("name"), 2 * first.matrix("name"), rtol=1e-6)


def test_only_new_texts_are_encoded(tmp_path):
    build(tmp_path, sources=[(NAMES_SRC, None)])
    assert CountingEncoder.calls == [4]
    build(tmp_path)
    assert CountingEncoder.calls == [4, 8]                  # the 8 description strings


def test_no_cache_dir(tmp_path):
    build(None)
    build(None)
    assert CountingEncoder.calls == [12, 12]


@pytest.mark.parametrize("damage", ["flip_npy", "truncate_npy", "bad_json", "wrong_shape",
                                    "nan", "missing_npy"])
def test_corrupted_cache_is_rebuilt_with_a_warning(tmp_path, damage):
    first = build(tmp_path)
    (npy,) = shard_files(tmp_path)
    index = npy.with_suffix(".json")
    if damage == "flip_npy":
        raw = bytearray(npy.read_bytes())
        raw[-3] ^= 0xFF
        npy.write_bytes(bytes(raw))
    elif damage == "truncate_npy":
        npy.write_bytes(npy.read_bytes()[:100])
    elif damage == "bad_json":
        index.write_text("{not json", encoding="utf-8")
    elif damage == "wrong_shape":
        meta = json.loads(index.read_text())
        meta["shape"] = [12, DIM + 1]
        index.write_text(json.dumps(meta))
    elif damage == "nan":
        arr = np.load(npy)
        arr[0, 0] = np.nan
        np.save(npy, arr)
        meta = json.loads(index.read_text())
        meta["npy_sha256"] = hashlib.sha256(npy.read_bytes()).hexdigest()
        index.write_text(json.dumps(meta))
    elif damage == "missing_npy":
        npy.unlink()
    with pytest.warns(RuntimeWarning, match=r"text embedding cache: .*shard-.*\.json is corrupt"):
        again = build(tmp_path)
    assert CountingEncoder.calls == [12, 12]                # everything encoded again
    np.testing.assert_array_equal(again.matrix("description"), first.matrix("description"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(tmp_path)                                     # rebuilt cache is clean
    assert CountingEncoder.calls == [12, 12]


def test_shards_are_compacted(tmp_path, monkeypatch):
    monkeypatch.setattr(tb, "CHUNK", 1)
    monkeypatch.setattr(tb, "MAX_SHARDS", 3)
    first = build(tmp_path)
    assert CountingEncoder.calls == [1] * 12
    assert len(shard_files(tmp_path)) == 1                  # 12 shards merged into one
    second = build(tmp_path)
    assert len(CountingEncoder.calls) == 12
    np.testing.assert_array_equal(second.matrix("name"), first.matrix("name"))


def test_errors(tmp_path):
    with pytest.raises(ZsbenchError, match=r"text kind 'name' is given by both text sources "
                                           r"'names' and 'names'.*set a different `kind`"):
        build(tmp_path, sources=[(NAMES_SRC, None), (NAMES_SRC, None)])
    ok = build(tmp_path, sources=[(NAMES_SRC, None), (NAMES_SRC, {"kind": "label"})])
    assert ok.kinds == ["name", "label"]
    with pytest.raises(ZsbenchError, match=r"text source 'bad', kind 'motion': expected texts "
                                           r"for 4 classes of dataset 'toy', got 3"):
        build(tmp_path, sources=[(BAD, None)])
    with pytest.raises(ZsbenchError, match=r"no text sources given"):
        build(tmp_path, sources=[])


def test_random_class_texts(tmp_path):
    bank = build(tmp_path)
    rnd = tb.random_class_texts(bank, seed=7)
    assert rnd.kinds == bank.kinds and rnd.texts == bank.texts
    assert rnd.class_ids.tolist() == bank.class_ids.tolist()
    for kind in bank.kinds:
        for a, b in zip(bank.embeddings[kind], rnd.embeddings[kind]):
            assert a.shape == b.shape and b.dtype == np.float32
            np.testing.assert_allclose(np.linalg.norm(b, axis=1), np.linalg.norm(a, axis=1),
                                       rtol=1e-5)
            assert not np.allclose(a, b)
    same = tb.random_class_texts(bank, seed=7)
    np.testing.assert_array_equal(same.matrix("description"), rnd.matrix("description"))
    sub = tb.random_class_texts(bank.subset([2, 0]), seed=7)  # consistent on subsets
    np.testing.assert_array_equal(sub.matrix("name"), rnd.matrix("name")[[2, 0]])
    other = tb.random_class_texts(bank, seed=8)
    assert not np.allclose(other.matrix("name"), rnd.matrix("name"))
