"""The real-data path end to end, with generated raw NTU files (never real data):
`zsbench data prepare ntu60` -> the ntu60 dataset plugin -> the synse protocol's real split
file -> DeViSE -> a record carrying the number the paper reports for that split."""
import json

import numpy as np
import pytest

from zsbench.cli import main
from zsbench_ntu import synth


@pytest.fixture(scope="module")
def raw_ntu60(tmp_path_factory):
    raw = tmp_path_factory.mktemp("nturgbd_skeletons")
    rng = np.random.default_rng(0)
    for action in range(1, 61):
        for subject in (1, 2, 3, 6):          # 1, 2 are xsub training subjects; 3, 6 test
            stem = f"S001C001P{subject:03d}R001A{action:03d}"
            synth.write_skeleton(raw / f"{stem}.skeleton", synth.random_ntu_frames(rng, length=40))
    return raw


def test_prepare_then_run_devise_on_ntu60_synse(raw_ntu60, tmp_path, capsys):
    data_root = tmp_path / "data"
    assert main(["data", "prepare", "ntu60", "--raw", str(raw_ntu60), "--out", str(data_root),
                 "--frames", "50"]) == 0
    out = tmp_path / "out"
    code = main(["run", "--plugin", "devise", "--protocol", "synse", "--dataset", "ntu60",
                 "--data-root", str(data_root), "--out", str(out), "--run-id", "real",
                 "--device", "cpu", "--cache-dir", str(tmp_path / "cache"),
                 "--set", 'protocol.splits=["55/5"]', "--set", "settings=[zsl]",
                 "--set", "encoder.hidden_channels=8", "--set", "pretrain.epochs=1",
                 "--set", "method.epochs=2"])
    err = capsys.readouterr().err
    assert code == 0, err
    rec = json.loads((out / "real" / "result.json").read_text())
    (fold,) = rec["folds"]
    assert fold["unseen"] == [10, 11, 19, 26, 56]           # SynSE NTU-60 55/5
    assert fold["n_train"] == 55 * 2 and fold["n_test_unseen"] == 5 * 2
    assert rec["reported"] == {"zsl_acc": 60.72}            # SynSE's DeViSE number
    assert rec["datasets"] == ["ntu60"]
