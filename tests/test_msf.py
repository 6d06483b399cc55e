"""MSF plugin: text fusion against the official train.py (tests/fidelity/msf.npz), the
semantic subsets of Tables 6-7, presets, a tiny fit/score and one end-to-end run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from zsbench.testing import check_plugin  # noqa: E402
from zsbench_msf.config import MSFConfig  # noqa: E402
from zsbench_msf.method import MSF, fuse_texts  # noqa: E402

from test_cada_vae import FAST, FAST_SETS, problem  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_single_thread")
FIDELITY = Path(__file__).parent / "fidelity"
KINDS = ("name", "description", "motion")


def test_fusion_matches_official():
    ref = np.load(FIDELITY / "msf.npz")
    parts = {m: ref[f"fusion_in/{m}"] for m in ("lb", "ad", "md")}
    for mode in ("lb", "ad_md", "lb_ad_md"):
        got = fuse_texts([parts[m] for m in mode.split("_")])
        np.testing.assert_allclose(got, ref[f"fusion/{mode}"], atol=1e-6)
    # one normalisation of the concatenation is not the per-part normalisation
    per_part = fuse_texts([parts["ad"], parts["md"]], normalize_after_concat=False)
    np.testing.assert_allclose(np.linalg.norm(per_part, axis=1), np.sqrt(2), atol=1e-5)
    assert not np.allclose(per_part / np.sqrt(2), ref["fusion/ad_md"], atol=1e-3)


def test_text_modes_and_presets():
    assert MSFConfig().needs().text_kinds == ["name", "description", "motion"]
    assert MSFConfig(text_mode="ad_md").needs().text_kinds == ["description", "motion"]
    assert MSFConfig(text_mode="md").reported_variant() == "text_md"
    assert MSFConfig(text_mode="lb", kind_map={"lb": "name", "ad": "x", "md": "parts"}
                     ).needs().text_kinds == ["name"]
    for bad in ("lb_lb", "xx", "lb__ad", ""):
        with pytest.raises(ValueError):
            MSFConfig(text_mode=bad)
    with pytest.raises(ValueError):
        MSFConfig(kind_map={"lb": "name"})
    cfg = MSFConfig()
    assert cfg.cycle_length_for("ntu60", 12) == 1700 and cfg.cycle_length_for("ntu120", 10) == 1900
    assert MSFConfig(cycle_source="paper").cycle_length_for("ntu60", 5) == 1900
    assert cfg.text_kl_variant() == "synse" and cfg.official_gate("ntu120", 24) == (0.5, 2.0)
    assert cfg.latent_for("ntu120") == 200 and cfg.gate_holdout == 0.2


def test_fit_score_uses_the_fused_texts():
    train, test, cand, y, ctx = problem(kinds=KINDS)
    m = MSF(MSFConfig(**FAST))
    m.fit(train, ctx)
    rows = m.text_rows(cand)
    assert rows.shape == (5, 18)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    s = m.score(test, cand, ctx)
    assert s.shape == (len(y), 5) and np.mean(s.argmax(1) == y - 25) >= 0.5   # chance 0.2
    one = MSF(MSFConfig(**FAST, text_mode="md"))
    assert one.text_rows(cand).shape == (5, 6)
    missing = MSF(MSFConfig(**FAST, kind_map={"lb": "name", "ad": "parts", "md": "motion"}))
    with pytest.raises(Exception, match="parts"):
        missing.fit(train, ctx)


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["method", "calibrated_stacking"])
def test_end_to_end_embedded_benchmark(tmp_path, zs_cache, rule):
    record, _ = check_plugin("msf", out=tmp_path / "out", cache_dir=zs_cache,
                             extra=FAST_SETS + [f"gzsl_rule={rule}", "method.text_mode=ad_md"])
    fold = record.folds[0]
    assert fold.metrics["zsl_acc"] is not None and fold.metrics["gzsl_h"] is not None
    if rule == "method":
        assert "gate" in fold.details
